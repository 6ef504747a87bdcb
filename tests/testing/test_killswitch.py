"""The crash tests' kill switch: ``python -m reconciler.testing.killswitch``, never the product itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.engine.journal import read_runs
from reconciler.errors import ConfigError
from reconciler.providers import open_target
from reconciler.providers.local import LocalProvider
from reconciler.testing.killswitch import KILL_ENV, KillSwitch, with_kill_switch

CONFIG = """\
apiVersion: cloudsync/v1
kind: Configuration
metadata: {name: %s}
spec: {domain: %s.contoso.com, notificationEmail: ops@%s.contoso.com}
"""


def test_the_product_never_reads_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KILL_ENV, "1")
    plain = open_target(f"local:{tmp_path / 't.db'}")
    assert isinstance(plain, LocalProvider)
    wrapped = with_kill_switch(plain, "3")
    assert isinstance(wrapped, KillSwitch) and wrapped.target == plain.target
    assert wrapped.read_all() == ()
    wrapped.close()


@pytest.mark.parametrize("value", ["x", "0", "http:", "http:-1"])
def test_a_bad_setting_is_a_config_error(tmp_path: Path, value: str) -> None:
    provider = LocalProvider(tmp_path / "t.db")
    with pytest.raises(ConfigError, match=KILL_ENV):
        with_kill_switch(provider, value)
    provider.close()


def test_http_needs_a_graph_target(tmp_path: Path) -> None:
    provider = LocalProvider(tmp_path / "t.db")
    with pytest.raises(ConfigError, match="Graph target"):
        with_kill_switch(provider, "http:1")
    provider.close()


def test_the_process_dies_after_the_write_and_before_its_journal_entry(tmp_path: Path) -> None:
    for name in ("alpha", "beta"):
        (tmp_path / f"{name}.yaml").write_text(CONFIG % (name, name, name))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update(RECONCILER_STATE_DIR=str(tmp_path / "state"), **{KILL_ENV: "1"})
    target = f"local:{tmp_path / 'tenant.db'}"
    args = ["apply", str(tmp_path), "--auto-approve", "--parallelism", "1", "--target", target]
    done = subprocess.run(
        [sys.executable, "-m", "reconciler.testing.killswitch", *args],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL
    (run,) = read_runs(target)
    assert run.result == "interrupted"
    # The create was carried out; its change-end entry was never written.
    assert [(c["action"], c["outcome"]) for c in run.changes][:1] == [("create", "interrupted")]
    tenant = LocalProvider(tmp_path / "tenant.db")
    assert len(tenant.read_all()) == 1
    tenant.close()
