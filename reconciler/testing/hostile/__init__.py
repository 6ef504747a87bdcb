"""Hostile inputs for the command line: plan files, YAML, expressions and Graph answers.

Each case is fed to the real entry point (``reconciler.cli.main.main``, in this process, with its
output captured) and must end cleanly: a case that must be rejected exits 1 with an ``error:`` line;
one that is valid input exits 0 (or 2); none may print a traceback, exit 3, hang, write to the target,
or leave the token in its output or files. Graph answers come from a small server on 127.0.0.1 that
serves the emulator's answers spoiled one way or another (``GRAPH_CASES``).

``run_corpus(folder, seeds)`` runs the fixed cases plus seeded random ones and returns a ``Tally``;
``benchmarks/reliability.py`` prints it and ``tests/adversarial`` asserts on it. The modules: ``cases``
(a case, the command line run in this process, the project, the tally), ``files`` (plan files, YAML,
expressions), ``graph`` (spoiled Graph answers) and ``corpus`` (all of them, run and tallied).

I/O: files under the folder it is given; one HTTP server thread on 127.0.0.1 per Graph case; the
process environment and standard streams, swapped while a case runs.
"""

from __future__ import annotations

from reconciler.testing.hostile.cases import (
    ACCEPT,
    EITHER,
    REJECT,
    Case,
    Outcome,
    Project,
    Tally,
    make_project,
    run_main,
    tenant_digest,
)
from reconciler.testing.hostile.corpus import run_case, run_corpus
from reconciler.testing.hostile.files import expression_cases, plan_file_cases, yaml_cases
from reconciler.testing.hostile.graph import GRAPH_CASES, graph_case

__all__ = [
    "ACCEPT",
    "EITHER",
    "GRAPH_CASES",
    "REJECT",
    "Case",
    "Outcome",
    "Project",
    "Tally",
    "expression_cases",
    "graph_case",
    "make_project",
    "plan_file_cases",
    "run_case",
    "run_corpus",
    "run_main",
    "tenant_digest",
    "yaml_cases",
]
