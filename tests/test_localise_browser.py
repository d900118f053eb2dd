"""The Where-it-breaks page in Debian chromium, opened first on a fresh server through a shared link
(``/localise?localise=<id>``): the navigation, the result sentence and the error-growth chart the user sees."""

from __future__ import annotations

import importlib.util

import pytest

from tests.test_browser import ARTIFACTS, CHART, CHROMIUM, CHROMIUM_ARGS, _screenshot, _settle, _sidebar, _streamlit

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("modelopt") is None, reason="nvidia-modelopt not installed"),
]


@pytest.fixture
def browser_page():
    from pathlib import Path

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        yield page
        browser.close()


def test_a_shared_localisation_link_on_a_fresh_server(tmp_path, browser_page):
    from engine.studies.localisation.records import LocalisationRecords
    from tests.localise_fixtures import outlier_study

    study = outlier_study()
    records = LocalisationRecords(tmp_path / "data")
    records.save(study)
    sentence = records.load("outlier").summary()
    with _streamlit(tmp_path) as base:
        browser_page.goto(f"{base}/localise?localise=outlier")
        browser_page.wait_for_function(
            "() => (document.querySelector(\"[data-testid='stSidebarNav']\") || {innerText: ''})"
            ".innerText.includes('Where it breaks')",
            timeout=60_000,
        )
        _settle(browser_page)
        nav = _sidebar(browser_page)
        assert "localise start" not in nav.lower() and "common" not in nav  # only dashboard.py's pages
        browser_page.wait_for_selector(CHART, timeout=60_000)
        browser_page.get_by_text("Error through resnet18").first.wait_for()
        main = browser_page.inner_text("[data-testid='stMain']")
        assert sentence.split(";")[0] in main and "Traceback" not in main
        assert "Finding the layer builds a TensorRT engine per step" in main  # no GPU here: said
        assert browser_page.url.endswith("/localise?localise=outlier")
        ARTIFACTS.mkdir(exist_ok=True)
        _screenshot(browser_page, "localise")
