"""Test support for reconciler's own tests and benchmarks, one importable package (the product never
imports it; an import-linter contract keeps it so).

- ``scenarios``: seeded desired states, a tenant with objects made outside reconciler planted in it,
  the checks on what a run leaves, the command line as a child process, fault and crash runs.
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
