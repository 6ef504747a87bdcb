"""What the CLI tests share: the check that bad input is refused with file and line, applying nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler.providers.local import LocalProvider


def assert_apply_refused(project: Path, run: Callable[..., Any], file: str, line: int, message: str) -> None:
    """``apply configs`` exits 1 naming ``file:line`` and ``message``, without a traceback, and the local
    tenant of ``project`` holds no configuration afterwards."""
    r = run("apply", "configs", "--auto-approve")
    assert r.code == 1
    assert f"{file}:{line}:" in r.err and message in r.err, r.err
    assert "Traceback" not in r.err
    assert LocalProvider(project / ".reconciler" / "tenant.db").read_all() == ()
