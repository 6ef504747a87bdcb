"""Fixtures for the Graph tests: the emulator in-process (a thread) or as a child process, on 127.0.0.1,
and, for every test here, no token left in any file under its folder. Defined in ``support.graph``
(the emulator tests use the same ones)."""

from __future__ import annotations

from support.graph import emulator, emulator_process, graph_isolation, start_emulator

__all__ = ["emulator", "emulator_process", "graph_isolation", "start_emulator"]
