"""Pieces of the service in-process: readiness, when drift began, the snapshot of a plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.engine.reconcile import LoopOptions
from reconciler.errors import StateError
from reconciler.providers.local import LocalProvider
from reconciler.serve.app import Service
from reconciler.serve.loop import ServeLoop
from reconciler.serve.metrics import Metrics
from reconciler.serve.view import Overview, read_overview


def _service(read: object, probe: object) -> Service:
    metrics = Metrics(
        lambda: Overview(
            target="t", loop={}, snapshot_at=None, snapshot_commit=None, plan_error=None, last_success_at=None
        ),
        lambda: False,
    )
    return Service(
        target="local:/nowhere",
        branch="main",
        source="src",
        metrics=metrics,
        on_push=lambda _push: None,
        probe_target=probe,  # type: ignore[arg-type]
        read=read,  # type: ignore[arg-type]
    )


def test_readiness_names_what_cannot_be_read() -> None:
    def broken_store(_target: str) -> Overview:
        raise StateError("the state store at sqlite:/x cannot be opened")

    def broken_target() -> None:
        raise OSError("connection refused")

    def fine_store(target: str) -> Overview:
        return Overview(target, {}, None, None, None, None)

    assert "state store" in str(_service(broken_store, lambda: None).readiness())
    problem = _service(fine_store, broken_target).readiness()
    assert problem is not None and "target cannot be read" in problem and "connection refused" in problem
    assert _service(fine_store, lambda: None).readiness() is None


@pytest.fixture
def loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ServeLoop:
    monkeypatch.setenv("RECONCILER_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "repo").mkdir()
    provider = LocalProvider(str(tmp_path / "tenant.db"))
    options = LoopOptions(source=str(tmp_path / "repo"), paths=("configs",))
    metrics = Metrics(lambda: read_overview(provider.target), lambda: False)
    return ServeLoop(options, provider, metrics)


def _drift(seen: str, *fields: str) -> dict[str, dict[str, object]]:
    changes = [{"field": f, "git": "a", "live": "b", "seenAt": seen} for f in fields]
    return {"alpha": {"actions": ["update"], "fields": list(fields), "changes": changes}}


def test_drift_is_dated_from_when_it_was_first_seen(loop: ServeLoop) -> None:
    loop.status.drift = _drift("2026-12-06T10:00:00+00:00", "settings.notificationEmail")
    assert loop._drift_since() == {"alpha": {"settings.notificationEmail": "2026-12-06T10:00:00+00:00"}}
    loop.status.drift = _drift("2026-12-06T10:05:00+00:00", "settings.notificationEmail", "scope")
    assert loop._drift_since() == {
        "alpha": {
            "settings.notificationEmail": "2026-12-06T10:00:00+00:00",
            "scope": "2026-12-06T10:05:00+00:00",
        }
    }
    # Healed, then drifted again: dated anew.
    loop.status.drift = {}
    assert loop._drift_since() == {}
    loop.status.drift = _drift("2026-12-06T11:00:00+00:00", "scope")
    assert loop._drift_since() == {"alpha": {"scope": "2026-12-06T11:00:00+00:00"}}
    loop.provider.close()
