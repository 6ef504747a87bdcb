"""Fixtures for the Graph tests: the emulator in-process (a thread) or as a child process, on 127.0.0.1.

After each test, no file under its folder (journal, lock holders, plan files, crash logs) may hold the
token the tests use; the search is ``reconciler.testing.scenarios.find_secret``.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from graph_support import TOKEN, StartEmulator, spawn

from reconciler.emulator import Emulator, EmulatorConfig
from reconciler.testing.scenarios import find_secret


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Journals and locks of apply runs go to the test's folder; no real credentials are picked up.
    monkeypatch.setenv("RECONCILER_STATE_DIR", str(tmp_path / "state"))
    for name in ("RECONCILER_GRAPH_TOKEN", "RECONCILER_TARGET", "RECONCILER_EMULATOR_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    yield
    assert find_secret(TOKEN, {}, [tmp_path]) == []


@pytest.fixture
def start_emulator(tmp_path: Path) -> Iterator[StartEmulator]:
    """Start an emulator thread over ``db`` (default: the test's tenant.db); stopped after the test."""
    started: list[Emulator] = []

    def start(db: Path | None = None, **config: Any) -> Emulator:
        config.setdefault("record", True)
        emulator = Emulator(db or tmp_path / "tenant.db", EmulatorConfig(**config)).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(start_emulator: StartEmulator) -> Emulator:
    """An emulator that requires ``TOKEN``."""
    return start_emulator(token=TOKEN)


@pytest.fixture
def emulator_process(tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen[str], str]]]:
    """Start the emulator command as a child; returns (process, url). Stopped after the test."""
    children: list[subprocess.Popen[str]] = []

    def start(
        *args: str, module: tuple[str, ...] = ("-m", "reconciler", "emulator")
    ) -> tuple[subprocess.Popen[str], str]:
        proc = spawn([*module, "--store", str(tmp_path / "tenant.db"), "--port", "0", *args])
        children.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:"), (
            line,
            proc.stderr.read() if proc.stderr else "",
        )
        return proc, line.split()[-1]

    yield start
    for proc in children:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
