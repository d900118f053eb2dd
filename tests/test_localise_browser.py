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
            timeout=300_000,
        )
        _settle(browser_page)
        nav = _sidebar(browser_page)
        assert "localise start" not in nav.lower() and "common" not in nav  # only dashboard.py's pages
        browser_page.wait_for_selector(CHART, timeout=300_000)
        browser_page.get_by_text("Error through resnet18").first.wait_for()
        main = browser_page.inner_text("[data-testid='stMain']")
        assert sentence.split(";")[0] in main and "Traceback" not in main
        assert "Finding the layer builds a TensorRT engine per step" in main  # no GPU here: said
        assert browser_page.url.endswith("/localise?localise=outlier")
        ARTIFACTS.mkdir(exist_ok=True)
        _screenshot(browser_page, "localise")


def test_the_recorded_localisations_open_from_the_picker(tmp_path, browser_page):
    """A fresh server with the bundled samples: each H200 localisation picked from the list shows its sentence, its
    steps chart and no traceback (screenshots localise_<id>.png)."""
    from engine.studies.localisation.records import read_bundle
    from tests.test_browser import ROOT

    bundles = sorted((ROOT / "samples" / "localisations").glob("*.json.gz"))
    studies = [read_bundle(p.read_bytes())[0] for p in bundles]
    assert len(studies) == 2
    with _streamlit(tmp_path, TRTDASH_SAMPLES_DIR=str(ROOT / "samples")) as base:
        browser_page.goto(f"{base}/localise")
        browser_page.get_by_text("Where it breaks").first.wait_for(timeout=300_000)
        for study in studies:
            picker = browser_page.locator("[data-testid='stSelectbox']").filter(has_text="Localisation")
            picker.click()
            browser_page.get_by_role("option").filter(has_text=study.localisation_id).first.click()
            browser_page.get_by_text(study.summary()[:80]).first.wait_for(timeout=300_000)
            browser_page.wait_for_selector(CHART, timeout=300_000)
            _settle(browser_page)
            main = browser_page.inner_text("[data-testid='stMain']")
            assert study.summary()[:200] in main.replace("\n", " ") and "Traceback" not in main
            assert "Builds: modules kept in fp16" in main
            ARTIFACTS.mkdir(exist_ok=True)
            _screenshot(browser_page, f"localise_{study.localisation_id}")
