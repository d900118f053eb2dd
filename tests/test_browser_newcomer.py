"""Issue 28's newcomer walk in Debian chromium, on a server holding the bundled samples: every page opens from its
own address (no "Page not found"), and the Sweeps page settles quickly on a warm server (its tabs are computed when
opened, not all five on every visit)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT, _screenshot, _settle, _streamlit

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES = {  # url path -> the page's title
    "profile": "Profile a model",
    "layers": "Per-layer latency",
    "segmentation": "Graph segmentation",
    "compare": "Compare runs",
    "sweep": "Sweeps and auto-tune",
    "localise": "Where it breaks",
    "history": "Run history",
}
SWEEPS_SETTLED_S = 2.0  # the goal: navigation to settled, warm server


@pytest.fixture(scope="module")
def samples_dashboard(tmp_path_factory):
    """A running dashboard whose data directory gets the bundled samples (as a fresh clone's does)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: apt-get install chromium")
    tmp = tmp_path_factory.mktemp("newcomer")
    with _streamlit(tmp, TRTDASH_SAMPLES_DIR=str(ROOT / "samples")) as base:
        yield base


@pytest.fixture(scope="module")
def page(samples_dashboard):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(90_000)
        yield page
        browser.close()


def _main(page) -> str:
    return page.inner_text("[data-testid='stMain']")


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_opens_from_its_own_address(samples_dashboard, page, path):
    """Problem 2: opening /profile directly popped up "Page not found" (the default page was served at / only)."""
    page.goto(f"{samples_dashboard}/{path}")
    page.get_by_role("heading", name=PAGES[path]).wait_for()
    _settle(page)
    assert page.get_by_text("Page not found").count() == 0
    assert page.url.split("?")[0].endswith(f"/{path}")
    assert "Traceback" not in _main(page)


def test_the_root_address_opens_profile_with_the_links_runs(samples_dashboard, page):
    page.goto(f"{samples_dashboard}/?run=20261124-043412-5b65487a")
    page.get_by_text("Result:").first.wait_for()
    _settle(page)
    assert page.get_by_text("Page not found").count() == 0
    assert "/profile?run=20261124-043412-5b65487a" in page.url


RUNNING = (
    "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
    " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')"
)


def _navigation_s(page, base: str, start: str, link: str, drawn) -> float:
    """Seconds from a click on the sidebar's ``link`` (on page ``start``) until ``drawn`` (a locator) shows and the
    script has finished: how a user moves between pages on a warm server."""
    page.goto(f"{base}/{start}")
    page.get_by_role("heading", name=PAGES[start]).wait_for()
    _settle(page)
    started = time.perf_counter()
    page.locator("[data-testid='stSidebarNav']").get_by_text(link, exact=True).click()
    drawn(page).wait_for()
    page.wait_for_function(RUNNING, timeout=300_000)
    return time.perf_counter() - started


def test_sweeps_settles_quickly_on_a_warm_server(samples_dashboard, page):
    """Problem 7: the Sweeps page computed all five tabs on every visit, 11-23 s before it settled (9.6 s here before
    the fix); now only the open tab is computed. The goal is under 2 s from the sidebar's link to settled; on a
    loaded machine (this one is shared by several test runs) the browser alone can take that long, so the test also
    accepts Sweeps settling as fast as History, a page with no tabs, measured alongside it."""

    def sweeps(p):
        return p.get_by_role("button", name="Run sweep")

    def history(p):
        return p.get_by_text("Shareable link").or_(p.get_by_text("Select runs to compare"))

    _navigation_s(page, samples_dashboard, "history", "Sweeps", sweeps)  # warm: imports, capabilities, samples
    moved = min(_navigation_s(page, samples_dashboard, "history", "Sweeps", sweeps) for _ in range(3))
    plain = min(_navigation_s(page, samples_dashboard, "sweep", "History", history) for _ in range(3))
    verdict = "PASS" if moved < SWEEPS_SETTLED_S else "FAIL"
    print(f"RESULT sweeps_settled navigation_s={moved:.2f} history_s={plain:.2f} goal={SWEEPS_SETTLED_S} {verdict}")
    _screenshot(page, "newcomer_sweeps")
    assert moved < max(SWEEPS_SETTLED_S, 1.25 * plain), (moved, plain)
    page.goto(f"{samples_dashboard}/sweep")
    page.get_by_role("tab", name="Batch sweep").click()  # another tab is computed when opened
    page.get_by_text("Stored batch sweeps").wait_for()
    _settle(page)
    assert "Traceback" not in _main(page)
