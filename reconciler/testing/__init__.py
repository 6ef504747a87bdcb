"""Test support for reconciler's own tests and benchmarks, one importable package (the product never
imports it; an import-linter contract keeps it so).

- ``scenarios``: fault and crash runs, made of ``desired_states`` (seeded desired states),
  ``tenant_checks`` (objects made outside reconciler planted in the tenant, and the checks on what a run
  leaves) and ``commands`` (the command line as a child process; a secret searched for in its output).
- ``hostile``: hostile inputs (plan files, YAML, expressions, spoiled Graph answers) fed to the command
  line in this process, each judged on how it ended.
- ``killswitch``: ``python -m reconciler.testing.killswitch ARGS`` runs the command line and kills it
  with SIGKILL after a chosen write.
- ``gitrepos``: real git repositories in temporary folders with pinned authors and dates.
- ``corpus``: synthetic desired states, N configuration files of M mappings each.
- ``appliers``: many ``reconciler apply`` processes at once against one target, and the checks on the
  journal they leave.

I/O: none on import; each module says what it does.
"""
