"""Fixtures for the engine tests: the emulator in-process on 127.0.0.1 (``start_emulator``) and, for every
test here, no token left in any file under its folder (``graph_isolation``); defined in ``support.graph``."""

from __future__ import annotations

from support.graph import graph_isolation, start_emulator

__all__ = ["graph_isolation", "start_emulator"]
