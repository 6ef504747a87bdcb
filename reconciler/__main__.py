"""``python -m reconciler``."""

from __future__ import annotations

from reconciler.cli.main import main

raise SystemExit(main())
