"""The dashboard in a real browser: Debian's headless Chromium, driven by Playwright, with JavaScript off.

It loads the overview and configuration pages of the ``scene`` service (drift, a quarantine and a held
delete made on purpose) and checks what a person sees there; screenshots are saved under
``tests/artifacts/serve/`` (ignored by git; CI can keep them).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.serve import HOSTILE_EMAIL, Scene

CHROMIUM = os.environ.get("RECONCILER_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "serve"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def page(scene: Scene) -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's chromium package (.ci/run does as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            # No JavaScript: the dashboard must work without it.
            context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
            yield context.new_page()
            context.close()
        finally:
            browser.close()


def _row(page: Any, name: str) -> Any:
    return page.locator("table.configurations tbody tr").filter(
        has=page.get_by_role("link", name=name, exact=True)
    )


def test_the_overview_shows_each_configuration_status(page: Any, scene: Scene) -> None:
    page.goto(scene.served.url + "/", wait_until="load")
    assert page.title().startswith("reconciler: local:")
    expected = {"alpha": "drifted", "bravo": "quarantined", "charlie": "in sync", "delta": "held delete"}
    for name, status in expected.items():
        row = _row(page, name)
        assert row.count() == 1, name
        assert row.locator(".status").inner_text() == status
        assert row.locator("td").nth(2).inner_text() == f"{name}.example.com"
        assert "1 organizational unit: OU=Sales" in row.locator("td").nth(3).inner_text()
    assert "1 held back" in _row(page, "delta").inner_text()
    loop = page.get_by_role("region", name="Reconcile loop").inner_text()
    assert "Last run" in loop and "Next run" in loop and scene.head[:12] in loop
    assert page.get_by_role("region", name="Recent runs").locator("tbody tr").count() >= 2
    # The stylesheet loaded (the policy allows it): a status is drawn as a coloured label.
    colour = page.locator(".status-in-sync").first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(218, 251, 225)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)
    assert (ARTIFACTS / "overview.png").stat().st_size > 1000


def test_a_drifted_configuration_shows_its_drift_plan_and_history(page: Any, scene: Scene) -> None:
    page.goto(scene.served.url + "/", wait_until="load")
    page.get_by_role("link", name="alpha", exact=True).click()
    page.wait_for_url("**/configurations/alpha")
    assert page.get_by_role("heading", level=1).inner_text() == "alpha drifted"
    drift = page.get_by_role("region", name="Drift").locator("tbody tr")
    assert drift.count() == 1
    cells = [drift.locator("td").nth(i).inner_text() for i in range(4)]
    assert cells[0] == "settings.notificationEmail"
    assert cells[1] == '"ops@alpha.example.com"'
    # The live value, markup and all, shown as text.
    assert cells[2] == f'"{HOSTILE_EMAIL}"'
    assert cells[3].startswith("20")
    plan = page.get_by_role("region", name="Pending plan").locator("pre").first.inner_text()
    assert "configuration.alpha" in plan and "notificationEmail" in plan and HOSTILE_EMAIL in plan
    history = page.get_by_role("region", name="Recent history").inner_text()
    assert "create" in history and "ok" in history
    assert page.locator("b").count() == 0
    page.screenshot(path=str(ARTIFACTS / "configuration-alpha.png"), full_page=True)


def test_a_job_in_sync_shows_its_last_run_and_counts(page: Any, scene: Scene) -> None:
    page.goto(scene.served.url + "/configurations/charlie", wait_until="load")
    assert page.get_by_role("heading", level=1).inner_text() == "charlie in sync"
    health = page.get_by_role("region", name="Health")
    terms, values = health.locator("dt").all_inner_texts(), health.locator("dd").all_inner_texts()
    facts = dict(zip(terms, values, strict=True))
    assert facts["Last sync"] == "Succeeded at 2026-12-06T10:00:00Z"
    labels = ("Objects in scope", "Objects exported", "Objects imported", "Objects with errors")
    counts = [facts[k] for k in labels]
    assert counts == ["120", "7", "130", "2"]
    assert "No drift" in page.get_by_role("region", name="Drift").inner_text()
    assert "Nothing pending" in page.get_by_role("region", name="Pending plan").inner_text()


def test_a_quarantined_job_shows_the_service_reason(page: Any, scene: Scene) -> None:
    page.goto(scene.served.url + "/configurations/bravo", wait_until="load")
    health = page.get_by_role("region", name="Health").inner_text()
    assert "Quarantine" in health and "TooManyDeletes" in health
    page.screenshot(path=str(ARTIFACTS / "configuration-bravo.png"), full_page=True)
