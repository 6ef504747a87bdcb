"""Where the tool keeps its own files: the state folder (``.reconciler`` or ``RECONCILER_STATE_DIR``).

It holds the embedded tenant by default, the apply journal, lock files and crash logs. Nothing in it is
secret: tokens are never written anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["state_dir"]


def state_dir() -> Path:
    return Path(os.environ.get("RECONCILER_STATE_DIR") or ".reconciler")
