"""The journal after a crash: a line cut short does not take the next run's entries with it."""

from __future__ import annotations

import threading
from pathlib import Path

from reconciler.engine.journal import Journal, read_runs


def test_an_entry_after_a_line_cut_short_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    first = Journal(path)
    first.write("run-start", kind="apply", target="local:x")
    first.write("change-start", name="alpha", action="create")
    with open(path, "ab") as fh:
        fh.write(b'{"time": "2026-11-26T07:00:00", "run": "' + first.run_id.encode() + b'", "event": "chan')
    second = Journal(path)
    second.write("run-start", kind="restart", target="local:x")
    second.write("run-end", result="ok")
    runs = {r.run: r for r in read_runs(path)}
    assert runs[first.run_id].result == "interrupted"
    assert [c["outcome"] for c in runs[first.run_id].changes] == ["interrupted"]
    assert runs[second.run_id].kind == "restart" and runs[second.run_id].result == "ok"


def test_entries_of_threads_never_share_a_line(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    long_error = "x" * 20_000  # longer than any I/O buffer

    def write(n: int) -> None:
        for i in range(50):
            journal.write("change-end", name=f"c{n}-{i}", action="update", outcome="failed", error=long_error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 201
