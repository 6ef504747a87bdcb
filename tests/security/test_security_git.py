"""Git as untrusted input, through the CLI: no option injection through a source, no transport beyond
https, ssh and file, no command from a repository's own configuration, clean errors for odd refs, no
reads outside the repository through links, and submodules refused the same way from disk and commit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.security import Sandbox, configuration


def _clean_failure(ran_code: int, text: str) -> None:
    assert ran_code == 1, text
    assert "Traceback" not in text


@pytest.mark.parametrize(
    "source",
    [
        "--upload-pack=touch {marker}",
        "ext::sh -c touch% {marker}",
        "fd::17",
        "http://127.0.0.1:9/repo.git",
    ],
)
def test_a_reconcile_source_cannot_run_a_command(box: Sandbox, tmp_path: Path, source: str) -> None:
    marker = tmp_path / "PWNED"
    ran = box.run("reconcile", "configs", "--repo", source.format(marker=marker), "--once")
    _clean_failure(ran.code, ran.text)
    assert not marker.exists()


def test_a_local_folder_is_still_a_source(box: Sandbox) -> None:
    ran = box.run("reconcile", "configs", "--repo", str(box.repo), "--once", "--branch", "main")
    assert ran.code == 0, ran.text


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "configs", "--ref", "HEAD"],
        ["validate", "configs", "--ref", "HEAD"],
        ["plan", "configs", "--changed-since", "HEAD"],
        ["diff", "HEAD", "HEAD", "configs"],
        ["plan", "configs"],
    ],
    ids=lambda a: " ".join(a[:3]),
)
def test_the_repositorys_own_config_runs_nothing(box: Sandbox, tmp_path: Path, args: list[str]) -> None:
    marker = tmp_path / "PWNED"
    box.git("config", "core.fsmonitor", f"touch {marker}; false")
    box.git("config", "core.hooksPath", str(tmp_path / "hooks"))
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for hook in ("post-checkout", "pre-commit", "post-index-change", "reference-transaction"):
        (hooks / hook).write_text(f"#!/bin/sh\ntouch {marker}\n")
        (hooks / hook).chmod(0o755)
    box.write("configs/alpha.yaml", configuration("alpha", extra="  enabled: false\n"))
    ran = box.run(*args)
    assert ran.code in (0, 2), ran.text
    assert not marker.exists()


@pytest.mark.parametrize("ref", ["@{-1}", "HEAD:configs/alpha.yaml", "HEAD^{tree}", "--output=x", "nope"])
def test_odd_refs_give_a_clean_error(box: Sandbox, ref: str) -> None:
    for args in (["plan", "configs", "--ref", ref], ["plan", "configs", "--changed-since", ref]):
        ran = box.run(*args)
        _clean_failure(ran.code, ran.text)
        assert "not a commit" in ran.err or "cannot" in ran.err, ran.err
    assert not (box.repo / "x").exists()


def test_a_top_level_folder_linked_outside_the_repository_is_not_read(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text(configuration("leak", extra="  restartToken: TOPSECRET-VALUE\n"))
    os.symlink(outside, sandbox.repo / "configs")
    sandbox.commit("a link to a folder outside")
    for args in (["validate", "configs"], ["plan", "configs"], ["plan", "configs", "--format", "json"]):
        ran = sandbox.run(*args)
        _clean_failure(ran.code, ran.text)
        assert "leads outside its repository" in ran.err
        assert "TOPSECRET" not in ran.text


def test_a_given_path_outside_the_repository_is_refused_for_a_commit(box: Sandbox, tmp_path: Path) -> None:
    ran = box.run("plan", str(tmp_path), "--ref", "HEAD")
    _clean_failure(ran.code, ran.text)
    assert "outside the repository" in ran.err


def test_a_submodule_in_a_desired_state_folder_is_an_error_from_disk_and_from_a_commit(
    box: Sandbox, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    box.git("init", "-q", "-b", "main", cwd=other)
    (other / "ghost.yaml").write_text(configuration("ghost"))
    box.git("add", "-A", cwd=other)
    box.git("commit", "-q", "-m", "ghost", cwd=other)
    box.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(other), "configs/team")
    base = box.git("rev-parse", "HEAD")
    box.commit("a submodule under configs")
    runs = [
        ["validate", "configs"],
        ["plan", "configs"],
        ["plan", "configs", "--ref", "HEAD"],
        ["plan", "configs", "--changed-since", base],
        ["diff", base, "HEAD", "configs"],
    ]
    for args in runs:
        ran = box.run(*args)
        _clean_failure(ran.code, ran.text)
        assert "submodule" in ran.err, (args, ran.err)
        assert "ghost" not in ran.out
