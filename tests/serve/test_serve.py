"""``reconciler serve`` over real HTTP: metrics, pages, probes and the push webhook, against a local tenant
with drift, a quarantine and a held delete made on purpose (the ``scene`` fixture)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml
from support.serve import HOSTILE_EMAIL, SECRET, WAIT, Scene, signed, wait_for

from reconciler.serve.webhook import MAX_BODY_BYTES


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_metrics_count_every_status_and_what_the_loop_did(scene: Scene) -> None:
    samples = scene.served.metrics()
    statuses = {
        "in_sync": 1,
        "drifted": 1,
        "changes_pending": 0,
        "held_delete": 1,
        "quarantined": 1,
        "error": 0,
        "unmanaged": 0,
    }
    for status, count in statuses.items():
        assert _value(samples, "reconciler_configurations", status=status) == count, status
    # alpha's e-mail is the one drifted field; the plan owes its update and bravo's start, and holds
    # delta's delete back.
    assert _value(samples, "reconciler_drifted_fields") == 1
    assert _value(samples, "reconciler_held_deletes") == 1
    assert _value(samples, "reconciler_pending_changes") >= 1
    assert _value(samples, "reconciler_state_store_up") == 1
    assert _value(samples, "reconciler_active_loop") == 1
    last = _value(samples, "reconciler_last_successful_reconcile_timestamp_seconds")
    assert time.time() - 3600 < last <= time.time() + 1
    # What this process did: three passes or more (first apply, the push, the drift pass), each timed;
    # the first apply's changes all succeeded.
    passes = sum(v for (name, _), v in samples.items() if name == "reconciler_reconcile_passes_total")
    assert passes >= 3
    assert _value(samples, "reconciler_reconcile_duration_seconds_count") == passes
    assert _value(samples, "reconciler_apply_changes_total", outcome="ok") >= 4
    assert _value(samples, "reconciler_webhook_requests_total", result="accepted") >= 2


def test_pages_show_values_as_text_and_hold_no_controls(scene: Scene) -> None:
    served = scene.served
    pages = {path: served.get(path) for path in ("/", "/configurations/alpha", "/configurations/bravo")}
    for path, page in pages.items():
        assert page.status_code == 200, path
        assert page.headers["content-type"].startswith("text/html")
        assert "script-src" not in page.headers["content-security-policy"]
        assert "default-src 'none'" in page.headers["content-security-policy"]
        html = page.text
        # Read-only and without scripts: nothing to click that could change the target.
        for tag in ("<script", "<form", "<button", "<input"):
            assert tag not in html, (path, tag)
        assert '<meta http-equiv="refresh"' in html
    alpha = pages["/configurations/alpha"].text
    assert "&lt;b&gt;portal&lt;/b&gt;@alpha.example.com" in alpha
    assert HOSTILE_EMAIL not in alpha
    assert "TooManyDeletes" in pages["/configurations/bravo"].text
    assert served.get("/configurations/nobody").status_code == 404
    for method in ("POST", "PUT", "DELETE"):
        assert served.client.request(method, served.url + "/configurations/alpha").status_code == 405


def test_no_page_log_or_metric_shows_the_webhook_secret(scene: Scene) -> None:
    served = scene.served
    texts = [served.get(p).text for p in ("/", "/configurations/alpha", "/metrics", "/readyz")]
    texts.append(served.stderr())
    for text in texts:
        assert SECRET not in text


def test_probes(scene: Scene) -> None:
    assert scene.served.get("/healthz").text == "ok\n"
    ready = scene.served.get("/readyz")
    assert (ready.status_code, ready.text) == (200, "ready\n")


def _post(scene: Scene, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return scene.served.client.post(scene.served.url + "/hooks/git", content=body, headers=headers)


def _unauthorized(scene: Scene) -> float:
    return scene.served.metrics().get(
        ("reconciler_webhook_requests_total", (("result", "unauthorized"),)), 0.0
    )


def test_webhook_refuses_wrong_and_missing_signatures_and_counts_them(scene: Scene) -> None:
    before = _unauthorized(scene)
    body = json.dumps({"ref": "refs/heads/main", "after": "1" * 40}).encode()
    refused = [
        {"X-GitHub-Event": "push"},  # no signature at all
        {"X-GitHub-Event": "push", "X-Hub-Signature-256": signed(body, "another secret")},
        {"X-GitHub-Event": "push", "X-Hub-Signature-256": signed(body + b" ")},  # another body's
        {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha1=" + "0" * 40},
        {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET + "x"},
        {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": ""},
    ]
    for headers in refused:
        answer = _post(scene, body, headers)
        assert answer.status_code == 401, headers
        assert SECRET not in answer.text
    assert _unauthorized(scene) == before + len(refused)


def test_webhook_starts_one_pass_per_delivery_and_none_for_a_replay(scene: Scene) -> None:
    served = scene.served
    started = served.stderr().count("starting a pass")
    body = json.dumps({"ref": "refs/heads/main", "after": scene.head, "delivery": time.time_ns()}).encode()
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": signed(body)}
    first = _post(scene, body, headers)
    assert (first.status_code, first.json()["result"]) == (202, "accepted")
    again = _post(scene, body, headers)
    assert (again.status_code, again.json()["result"]) == (200, "duplicate")
    # GitLab's form: the token header, the same body (already handled).
    gitlab = _post(scene, body, {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET})
    assert gitlab.json()["result"] == "duplicate"
    passes = _passes(scene)
    wait_for(lambda: _passes(scene) > passes, what="the push's pass")
    assert served.stderr().count("starting a pass") == started + 1


def _passes(scene: Scene) -> float:
    samples = scene.served.metrics()
    return sum(v for (name, _), v in samples.items() if name == "reconciler_reconcile_passes_total")


def test_webhook_ignores_other_branches_and_events(scene: Scene) -> None:
    for payload, event in (
        ({"ref": "refs/heads/feature", "after": "2" * 40}, "push"),
        ({"ref": "refs/tags/v1", "after": "3" * 40}, "push"),
        ({"zen": "Keep it logically awesome."}, "ping"),
        ({"ref": "refs/heads/main", "after": "0" * 40, "deleted": True}, "push"),
    ):
        body = json.dumps(payload).encode()
        answer = _post(scene, body, {"X-GitHub-Event": event, "X-Hub-Signature-256": signed(body)})
        assert (answer.status_code, answer.json()["result"]) == (200, "ignored"), payload


def test_webhook_refuses_bodies_over_the_limit(scene: Scene) -> None:
    body = b"{" + b" " * MAX_BODY_BYTES + b"}"
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": signed(body)}
    assert _post(scene, body, headers).status_code == 413

    # Without a length given up front (chunked): refused once the limit is passed.
    def chunks() -> object:
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b" " * 65536

    answer = scene.served.client.post(
        scene.served.url + "/hooks/git", content=chunks(), headers={"X-GitHub-Event": "push"}
    )
    assert answer.status_code == 413
    samples = scene.served.metrics()
    assert samples[("reconciler_webhook_requests_total", (("result", "too_large"),))] >= 2


def test_a_signed_body_that_is_not_json_is_a_bad_request(scene: Scene) -> None:
    body = b"ref=refs/heads/main"
    answer = _post(scene, body, {"X-GitHub-Event": "push", "X-Hub-Signature-256": signed(body)})
    assert answer.status_code == 400


def test_status_from_state_shows_the_health_the_pages_show(scene: Scene) -> None:
    """One health snapshot: what serve's loop recorded is what ``status --from-state`` shows elsewhere."""
    env = {k: v for k, v in scene.repo.env.items() if not k.startswith("RECONCILER_")}
    env.update(RECONCILER_STATE_DIR=str(scene.served.state_dir), NO_COLOR="1")
    args = ["status", "--from-state", "--format", "json", "--target", scene.served.target]
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert done.returncode == 2, done.stderr  # bravo is quarantined
    doc = json.loads(done.stdout)
    assert doc["by"]["command"] == "reconciler serve" and doc["complete"] is True
    rows = {row["name"]: row for row in doc["configurations"]}
    assert rows["bravo"]["status"]["quarantineReason"] == "TooManyDeletes"
    assert [name for name, row in sorted(rows.items()) if not row["healthy"]] == ["bravo"]
    page = scene.served.get("/configurations/bravo").text
    assert "TooManyDeletes" in page
    # Each job besides the provisioning job (password hash sync here) has its own part of the page.
    others = [j["templateId"] for j in rows["charlie"]["jobs"] if j["templateId"] != "AD2AADProvisioning"]
    assert others
    page = scene.served.get("/configurations/charlie").text
    assert all(f"<code>{template}</code>" in page for template in others)


def test_an_address_in_use_or_a_bad_one_is_one_clear_error(scene: Scene) -> None:
    port = scene.served.url.rsplit(":", 1)[1]
    env = dict(scene.repo.env, RECONCILER_STATE_DIR=str(scene.served.state_dir))
    for listen, message in (
        (f"127.0.0.1:{port}", f"cannot listen on 127.0.0.1:{port}"),
        ("nowhere", "HOST:PORT"),
    ):
        args = ["serve", "configs", "--repo", str(scene.repo.path), "--target", scene.served.target]
        done = subprocess.run(
            [sys.executable, "-m", "reconciler", *args, "--listen", listen],
            env=env,
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
        assert done.returncode == 1, done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr


ROOT = Path(__file__).resolve().parents[2]


def test_docs_list_every_metric_served_and_the_alert_sample_is_the_example(scene: Scene) -> None:
    doc = (ROOT / "docs" / "serve.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(reconciler_[a-z_]+)` \|", doc, re.MULTILINE))
    served = {name for name, _ in scene.served.metrics()}
    suffixes = ("_total", "_created", "_bucket", "_count", "_sum")
    families = {next((n[: -len(s)] for s in suffixes if n.endswith(s)), n) for n in served}
    families |= {n for n in served if n.endswith("_total")}
    for name in documented:
        assert name in families, name
    for name in families:
        assert name in documented or f"{name}_total" in documented, name
    block = re.search(r"```yaml\n(groups:.*?)```", doc, re.DOTALL)
    assert block is not None
    example = ROOT / "examples" / "prometheus" / "reconciler-alerts.yaml"
    rules = yaml.safe_load(example.read_text(encoding="utf-8"))
    assert rules == yaml.safe_load(block.group(1))
    exprs = " ".join(r["expr"] for r in rules["groups"][0]["rules"])
    for name in re.findall(r"reconciler_[a-z_]+", exprs):
        assert name in documented, name
    for manifest in yaml.safe_load_all((ROOT / "examples" / "kubernetes" / "reconciler.yaml").read_text()):
        if manifest["kind"] == "Deployment":
            (container,) = manifest["spec"]["template"]["spec"]["containers"]
            assert container["args"][0] == "serve"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
