"""Files through the CLI: every file a user names is read through one bounded reader (devices and named
pipes refused at once, sizes capped), files the tool writes are private whatever the umask, and settings
from the environment are checked before they are used."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from support.security import Sandbox


def _fifo(folder: Path) -> Path:
    path = folder / "pipe.yaml"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("kind", ["/dev/zero", "fifo"])
@pytest.mark.parametrize(
    "command",
    [
        ["preview", "configs", "--config", "alpha", "--object", "{file}"],
        ["directory", "load", "{file}"],
        ["apply", "{file}"],
        ["validate", "{file}"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_devices_and_pipes_are_refused_without_reading(
    box: Sandbox, tmp_path: Path, kind: str, command: list[str]
) -> None:
    file = "/dev/zero" if kind == "/dev/zero" else str(_fifo(tmp_path))
    ran = box.run(*(part.replace("{file}", file) for part in command))
    assert ran.code == 1, ran.text
    assert "Traceback" not in ran.text
    assert "not a regular file" in ran.err, ran.err


def test_an_object_file_over_the_limit_is_refused(box: Sandbox, tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as fh:
        fh.truncate(65 * 1024 * 1024)  # sparse: costs no disk
    for args in (
        ["preview", "configs", "--config", "alpha", "--object", str(big)],
        ["directory", "load", str(big)],
    ):
        ran = box.run(*args)
        assert ran.code == 1 and "the limit is" in ran.err, ran.text


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_and_plan_files_are_private_whatever_the_umask(box: Sandbox) -> None:
    ran = box.run("plan", "configs", "--out", "plan.json", umask=0)
    assert ran.code == 0, ran.text
    assert _mode(box.repo / "plan.json") == 0o600
    assert box.run("apply", "plan.json", umask=0).code == 0
    assert _mode(box.state) == 0o700
    assert _mode(box.state / "tenant.state.db") == 0o600  # the journal's store, next to the tenant


def test_the_default_local_tenant_is_in_the_state_folder_given(box: Sandbox, tmp_path: Path) -> None:
    state = tmp_path / "elsewhere" / "state"
    ran = box.run("apply", "configs", "--auto-approve", env={"RECONCILER_STATE_DIR": str(state)})
    assert ran.code == 0, ran.text
    assert (state / "tenant.db").is_file()
    assert not (box.repo / ".reconciler").exists()
    ran = box.run("status", env={"RECONCILER_STATE_DIR": str(state)})
    assert "alpha" in ran.out, ran.text


def test_a_named_pipe_as_the_journal_ends_cleanly_before_any_change(box: Sandbox) -> None:
    box.state.mkdir()
    os.mkfifo(box.state / "tenant.state.db")  # the state store (journal, lock) of the default tenant
    ran = box.run("apply", "configs", "--auto-approve")
    assert ran.code == 1, ran.text
    assert "not a regular file" in ran.err and "Traceback" not in ran.text
    assert box.configurations() == {}


@pytest.mark.parametrize(
    "token", ["tökén-with-umlauts", "abc\r\nX-Injected: 1", "two words"], ids=["non-ascii", "crlf", "space"]
)
def test_a_malformed_token_is_one_clear_error_and_never_printed(box: Sandbox, token: str) -> None:
    ran = box.run(
        "plan", "configs", "--target", "graph+http://127.0.0.1:9", env={"RECONCILER_GRAPH_TOKEN": token}
    )
    assert ran.code == 1, ran.text
    assert "RECONCILER_GRAPH_TOKEN" in ran.err and "Traceback" not in ran.text
    assert token.strip().split()[0] not in ran.text
    assert not list(box.state.glob("crash-*")) if box.state.exists() else True


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RECONCILER_GRAPH_CONCURRENCY", "99999999999999999999"),
        ("RECONCILER_GRAPH_CONCURRENCY", "0"),
        ("RECONCILER_GRAPH_CONCURRENCY", "many"),
        ("RECONCILER_GRAPH_TIMEOUT", "nan"),
        ("RECONCILER_GRAPH_TIMEOUT", "inf"),
        ("RECONCILER_GRAPH_TIMEOUT", "-1"),
    ],
)
def test_numeric_settings_are_range_checked(box: Sandbox, name: str, value: str) -> None:
    ran = box.run(
        "plan",
        "configs",
        "--target",
        "graph+http://127.0.0.1:9",
        env={name: value, "RECONCILER_GRAPH_TOKEN": "dev-token"},
    )
    assert ran.code == 1, ran.text
    assert name in ran.err and "Traceback" not in ran.text
