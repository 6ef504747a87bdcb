"""What several tests of one folder share, one module per test folder: ``support.graph`` (emulators in
this process or as a child, providers pointed at them), ``support.providers`` (the contract tests'
harness and its back doors), ``support.config`` (sample desired states), ``support.provisioning`` (the
example directories and their objects), ``support.serve`` (``reconciler serve`` as a child process) and
``support.security`` (a sandboxed checkout and command line).

Only tests use these; what benchmarks use as well is in ``reconciler.testing``. Tests import them as
``support.<folder>``: pytest puts ``tests/`` on the import path (``pythonpath`` in pyproject.toml).
"""
