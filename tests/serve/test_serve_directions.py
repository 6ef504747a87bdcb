"""``serve``'s loop plans an Entra ID -> AD configuration as ``plan`` and ``apply`` do: the dashboard's plan
of a create shows what ``plan`` shows, and after the pass that creates it, the snapshot's plan and the
next pass find nothing to do."""

from __future__ import annotations

from pathlib import Path

from support.serve import new_repo

from reconciler.core.plan import Action, PlanOptions, Provenance
from reconciler.engine.operations import make_plan
from reconciler.engine.reconcile import LoopOptions, PassResult
from reconciler.git.repo import sync_branch
from reconciler.git.source import WorkTree
from reconciler.git.source import load as load_source
from reconciler.providers.local import LocalProvider
from reconciler.serve import snapshot
from reconciler.serve.loop import ServeLoop
from reconciler.serve.metrics import Metrics
from reconciler.serve.view import read_overview
from reconciler.state import open_store

GROUPS = (Path(__file__).resolve().parents[2] / "examples" / "configs" / "contoso-groups.yaml").read_text()


def test_an_entra_to_ad_configuration_reconciles_with_no_drift_under_serve(
    tmp_path: Path, state_dir: Path
) -> None:
    source = new_repo(tmp_path)
    source.write("configs/contoso-groups.yaml", GROUPS)
    commit = source.commit("an Entra ID -> AD configuration")
    provider = LocalProvider(str(tmp_path / "tenant.db"))
    try:
        options = LoopOptions(source=str(source.path), paths=("configs",), self_heal=True)
        loop = ServeLoop(options, provider, Metrics(lambda: read_overview(provider.target), lambda: False))
        # Before the first pass: the dashboard's plan of the create is the plan command's.
        sync_branch(str(source.path), "main", loop.cache)  # the clone a pass fetches first
        state = load_source(WorkTree((str(source.path / "configs"),))).result.state
        planned = make_plan(state, provider, PlanOptions(), Provenance())
        shown = loop._plan(commit, provider.read_all())
        assert [c.action for c in planned.changes] == [Action.CREATE, Action.START]
        assert shown.changes == planned.changes
        assert (shown.held, shown.warnings) == (planned.held, planned.warnings)

        assert loop.run_pass() is PassResult.APPLIED
        held = {o.name: o.settings.direction.value for o in provider.read_all()}
        assert held == {"contoso-groups": "entraToAd"}

        # The snapshot stored after the pass is planned from the same commit: nothing pending.
        stored = open_store(provider.target).get_status(provider.target, snapshot.SNAPSHOT_KEY) or {}
        assert stored.get("commit", commit) == commit and not stored.get("planError")
        plan = loop._plan(commit, provider.read_all())
        assert [(c.action.value, c.name) for c in plan.changes] == [] and plan.held == ()

        assert loop.run_pass() is PassResult.IN_SYNC
        assert loop.status.drift == {}
    finally:
        provider.close()
