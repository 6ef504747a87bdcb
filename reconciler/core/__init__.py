"""The functional core: desired-state model, diff and plan.

Pure by rule (enforced by the import-linter contract in pyproject.toml): no providers, git, click, YAML,
HTTP or SQLite here, and no I/O of any kind. Everything is a frozen value or a function of values.
"""
