"""The whole dashboard in Debian chromium: profile a small model on CPU from the Profile page, wait for
its chart, profile a second one, open Compare with both runs, read the values the user sees, and save
screenshots of every page under test-artifacts/."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHART = "[data-testid='stPlotlyChart'] .main-svg"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _streamlit(tmp: Path, **extra_env: str):
    """``streamlit run dashboard.py`` on a free port with its own data directory; yields the base URL. Stops the
    server and the job supervisor it started (a process of its own: it outlives the server by design)."""
    port = _free_port()
    env = {
        **os.environ,
        "TRTDASH_DATA_DIR": str(tmp / "data"),
        "TRTDASH_SAMPLES_DIR": str(tmp / "no-samples"),
        "PYTHONPATH": str(ROOT),
        **extra_env,
    }
    log = open(tmp / "streamlit.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "dashboard.py",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
            # a file saved under pages/ mid-test would make streamlit rescan it
            "--server.fileWatcherType",
            "none",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 600
        while True:
            try:
                if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"streamlit did not start: {(tmp / 'streamlit.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        from engine.jobs import JobSystem

        JobSystem(tmp / "data").stop_workers(timeout_s=10)


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """A running dashboard and its data directory."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: apt-get install chromium")
    tmp = tmp_path_factory.mktemp("browser")
    with _streamlit(tmp) as base:
        yield base, tmp / "data"


@pytest.fixture(scope="module")
def browser_page(dashboard):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        yield page
        browser.close()


def _settle(page) -> None:
    """Wait until streamlit has finished running the script."""
    page.wait_for_selector("[data-testid='stApp']")
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=300_000,
    )
    page.wait_for_timeout(300)


def _screenshot(page, name: str) -> None:
    """The whole page: streamlit scrolls inside its main container, so grow the viewport to fit it."""
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": min(max(int(height), 1000), 7000)})
    page.wait_for_timeout(800)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    page.set_viewport_size({"width": 1400, "height": 1000})


def _set(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    _settle(page)


def _run_from_profile_page(page, base: str, batch_size: int) -> str:
    page.goto(f"{base}/")  # the entry page: Profile (the root address switches to /profile)
    page.get_by_role("heading", name="Profile a model").wait_for(timeout=300_000)  # a cold server imports torch first
    _settle(page)
    _set(page, "Input shape (without batch)", "3,32,32")
    _set(page, "Batch size", str(batch_size))
    _set(page, "Warm-up iterations", "2")
    _set(page, "Timed iterations", "10")
    _set(page, "Profiling iterations", "2")
    page.get_by_role("button", name=re.compile(r"^\W*Run$")).click()
    try:
        page.wait_for_url(re.compile(r"[?&]run=[\w-]+"), timeout=300_000)
        page.wait_for_selector(CHART, timeout=300_000)
    except Exception:
        _screenshot(page, f"profile_failed_b{batch_size}")  # what the user saw instead
        raise
    _settle(page)
    return re.search(r"[?&]run=([\w-]+)", page.url).group(1)


def test_profile_then_compare_in_a_real_browser(dashboard, browser_page):
    from engine.store import RunStore

    base, data_dir = dashboard
    page = browser_page
    first = _run_from_profile_page(page, base, batch_size=1)
    nav = _sidebar(page)
    assert "Compare" in nav and "common" not in nav  # dashboard.py's st.navigation, not the pages/ folder
    _screenshot(page, "profile")
    second = _run_from_profile_page(page, base, batch_size=2)
    assert first != second
    store = RunStore(data_dir)
    one, two = store.get(first), store.get(second)
    assert (one.request["model"]["batch_size"], two.request["model"]["batch_size"]) == (1, 2)

    page.goto(f"{base}/compare?run={first}&run={second}")
    _settle(page)
    page.wait_for_selector(CHART)
    page.get_by_text("Settings that differ").wait_for()
    page.wait_for_timeout(1000)
    text = page.inner_text("[data-testid='stMain']")
    assert "Compare runs" in text
    assert "Runs side by side" in page.content()
    assert "Latency per inference" in page.content()
    # the two runs are named by their id tails, and the knob that differs is listed
    assert first[-8:] in text and second[-8:] in text
    assert "model.batch_size: 1 · 2" in text
    # the medians the store holds, and the speedup of the second run against the first (the baseline): per
    # sample, as the batch sizes differ (the throughput ratio), with the batch named before any number
    from engine.run_figures import e2e_figure

    assert e2e_figure(one).value in text and e2e_figure(two).value in text  # "12.345 ms"; "1118 ms" from 100 ms
    from engine.compare.cards import delta_words

    speedup = two.latency.throughput_per_s / one.latency.throughput_per_s
    assert delta_words(speedup, (1 / speedup - 1) * 100) in text  # "12.3% faster", "2.30× slower"
    assert "Differs: batch (1 · 2). Judged on end-to-end latency per sample" in text
    assert f"batch=2 {second[-8:]}" in text  # the card names what differs
    assert "does not exist" not in text and "Traceback" not in text
    _screenshot(page, "compare")

    for name, query, shown in (
        ("layers", f"run={first}", "Slowest 20 layers"),
        ("segmentation", f"run={first}", "This run has no segmentation"),
        ("history", f"run={first}&run={second}", "Shareable link"),
    ):
        page.goto(f"{base}/{name}?{query}")
        _settle(page)
        page.get_by_text(shown).first.wait_for()
        page.wait_for_timeout(800)
        body = page.inner_text("[data-testid='stMain']")
        assert "Traceback" not in body and "does not exist" not in body, name
        _screenshot(page, name)
    assert first in page.inner_text("[data-testid='stMain']")  # History lists the run

    page.goto(f"{base}/layers?run=20200101-000000-deadbeef")
    _settle(page)
    page.get_by_text("does not exist").wait_for()  # the clear message, not a blank page or a traceback
    assert "Traceback" not in page.inner_text("[data-testid='stMain']")


def _sidebar(page) -> str:
    page.wait_for_selector("[data-testid='stSidebarNav']")
    return page.inner_text("[data-testid='stSidebarNav']")


def test_shared_link_opened_first_on_a_fresh_server(tmp_path, browser_page):
    from engine.store import RunStore

    store = RunStore(tmp_path / "data")  # two runs recorded on the H200, as a colleague's store would hold them
    ids = [store.import_run((ROOT / "samples" / f"resnet18_{p}.json.gz").read_bytes()) for p in ("fp16", "fp32")]
    medians = [f"{store.get(i).latency.median_ms:.3f} ms" for i in ids]
    link = "/compare?" + "&".join(f"run={i}" for i in ids)
    with _streamlit(tmp_path) as base:
        browser_page.goto(base + link)
        # the first script run of a fresh server goes through dashboard.py's navigation (ui.navigation)
        browser_page.wait_for_function(
            "() => (document.querySelector(\"[data-testid='stSidebarNav']\") || {innerText: ''})"
            ".innerText.includes('Sweeps')",
            timeout=300_000,
        )
        _settle(browser_page)
        assert "common" not in _sidebar(browser_page)
        browser_page.wait_for_function(
            f"() => document.querySelector(\"[data-testid='stMain']\").innerText.includes('{medians[1]}')",
            timeout=300_000,
        )
        main = browser_page.inner_text("[data-testid='stMain']")
        assert "Compare runs" in main and all(m in main for m in medians)
        assert browser_page.url.endswith(link)  # the link still names both runs


NAVIGATION = ["Profile", "Layers", "Engine", "Segmentation", "Compare", "Sweeps", "Where it breaks", "History"]
# what used to live in pages/ beside the page scripts and showed as pages on a fresh server's first load
HELPERS = {
    "access",
    "batch tab",
    "common",
    "figures",
    "form",
    "jobs",
    "job panel",
    "knobs",
    "ladder tab",
    "localisation",
    "localise start",
    "markdown",
    "model form",
    "run picker",
    "store",
    "timing",
    "url picker",
}
# every state of the sidebar's page list and of the main area, from the first paint on
RECORD_STATES = """
window.__states = [];
const t0 = performance.now();
new MutationObserver(() => {
  const nav = [...document.querySelectorAll("[data-testid='stSidebarNavLink'] span[label]")]
    .map(s => s.getAttribute('label'));
  const main = document.querySelector("[data-testid='stMain']");
  const text = main ? main.innerText.trim().slice(0, 80) : '';
  const last = window.__states[window.__states.length - 1];
  if (!last || last.nav.join('|') !== nav.join('|') || (last.text === '') !== (text === ''))
    window.__states.push({ms: Math.round(performance.now() - t0), nav, text});
}).observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
"""


@pytest.mark.parametrize(
    "name, link, title",
    [
        ("root", "/", "Profile a model"),
        ("layers", "/layers?run={fp16}", "Per-layer latency"),
        ("compare", "/compare?runs={fp16},{fp32}", "Compare runs"),
    ],
)
def test_a_cold_servers_first_load_shows_only_the_navigations_pages(tmp_path, browser_page, name, link, title):
    """Issue 16: the first page load of a fresh server listed the helper modules of pages/ as pages, with a blank
    page, for about two seconds. Every state the sidebar and the main area go through is recorded from the first
    paint: no helper ever shows as a page, Streamlit's legacy pages/ list (file names) shows for a moment at most,
    the navigation's own pages stay, and the page draws within seconds."""
    from engine.store import RunStore

    store = RunStore(tmp_path / "data")
    fp16, fp32 = (store.import_run((ROOT / "samples" / f"resnet18_{p}.json.gz").read_bytes()) for p in ("fp16", "fp32"))
    link = link.format(fp16=fp16, fp32=fp32)
    page = browser_page.context.browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    page.add_init_script(RECORD_STATES)
    try:
        with _streamlit(tmp_path) as base:
            page.goto(base + link)
            page.get_by_role("heading", name=title).wait_for()
            _settle(page)
            page.wait_for_timeout(1000)
            states = page.evaluate("window.__states")
            nav = [s for s in states if s["nav"]]
            assert nav and nav[-1]["nav"] == NAVIGATION, states
            assert not [s for s in nav if HELPERS & {label.lower() for label in s["nav"]}], nav
            shown_ms = [s["ms"] for s in nav]
            first_nav = next(s["ms"] for s in nav if s["nav"] == NAVIGATION)
            # Streamlit's legacy list of the pages/ folder, until dashboard.py's navigation replaces it
            legacy_ms = first_nav - shown_ms[0]
            assert legacy_ms < 1000, nav
            assert all(s["nav"] == NAVIGATION for s in nav if s["ms"] >= first_nav), nav
            drawn = next(s["ms"] for s in states if s["text"])
            titled_ms = page.evaluate("performance.now()")  # an upper bound: the title was waited for above
            assert drawn - first_nav < 5000, states  # never a blank page once the navigation shows
            if name == "layers":
                page.get_by_text("Layers profiled").wait_for()
                assert page.url.endswith(f"/layers?run={fp16}")
            if name == "compare":
                page.get_by_text(f"{store.get(fp16).latency.median_ms:.3f} ms").first.wait_for()
                assert page.url.endswith(f"/compare?run={fp16}&run={fp32}")
            main = page.inner_text("[data-testid='stMain']")
            assert "Traceback" not in main and "does not exist" not in main
            print(
                f"{name}: legacy list {legacy_ms} ms, main drawn {drawn - first_nav} ms after the navigation, "
                f"title by {titled_ms:.0f} ms"
            )
            _screenshot(page, f"cold_first_load_{name}")
    finally:
        page.close()


TEAM, ADMIN = "team-secret-4711", "admin-secret-0815"


def test_team_mode_sign_in_wrong_password_and_a_delete_refused_to_a_non_admin(tmp_path, browser_page):
    """Issue 15, defect 1: a team password guards the dashboard; deleting runs needs the admin password."""
    from engine.store import RunStore

    store = RunStore(tmp_path / "data")
    run_id = store.import_run((ROOT / "samples" / "resnet18_fp16.json.gz").read_bytes())
    page = browser_page
    with _streamlit(tmp_path, TRTDASH_TEAM_PASSWORD=TEAM, TRTDASH_ADMIN_PASSWORD=ADMIN) as base:
        page.goto(f"{base}/history?run={run_id}")
        page.get_by_label("Your name").wait_for(timeout=300_000)
        assert "Run history" not in page.inner_text("body")  # nothing but the sign-in page
        page.get_by_label("Your name").fill("mallory")
        page.get_by_label("Team password").fill("guess")
        page.get_by_role("button", name=re.compile("Sign in")).click()
        page.get_by_text("Wrong team password.").wait_for(timeout=300_000)
        _settle(page)
        assert "Run history" not in page.inner_text("body") and "Signed in as" not in page.inner_text("body")
        _screenshot(page, "sign_in_wrong_password")

        page.get_by_label("Your name").fill("mallory")
        page.get_by_label("Team password").fill(TEAM)
        page.get_by_role("button", name=re.compile("Sign in")).click()
        page.get_by_text("Signed in as").wait_for(timeout=300_000)  # and the link's page opens
        assert "mallory" in page.inner_text("[data-testid='stSidebar']")
        page.get_by_text("Selected runs").wait_for(timeout=300_000)
        _settle(page)
        page.get_by_text(re.compile(r"Yes, delete 1 run")).click()
        _settle(page)
        page.get_by_role("button", name=re.compile("Delete selected")).click()
        page.get_by_text("Only an admin may delete runs").wait_for(timeout=300_000)
        _screenshot(page, "delete_refused_to_non_admin")
        assert RunStore(tmp_path / "data").exists(run_id)  # refused: still stored

        page.get_by_text("Admin", exact=True).click()  # unlock admin in the sidebar
        page.get_by_label("Admin password").fill(ADMIN)
        page.get_by_role("button", name="Unlock admin").click()
        page.get_by_text("· admin").wait_for(timeout=300_000)
        _settle(page)
        if not page.get_by_role("checkbox", name=re.compile(r"Yes, delete 1 run")).is_checked():
            page.get_by_text(re.compile(r"Yes, delete 1 run")).click()
            _settle(page)
        page.get_by_role("button", name=re.compile("Delete selected")).click()
        _settle(page)
        page.wait_for_function("() => !document.body.innerText.includes('Selected runs')", timeout=300_000)
        assert not RunStore(tmp_path / "data").exists(run_id)  # the admin's delete went through
        body = (tmp_path / "streamlit.log").read_text()
        assert TEAM not in body and ADMIN not in body  # passwords are never logged


def _sign_in(page, base: str, name: str) -> None:
    page.goto(f"{base}/")
    page.get_by_label("Your name").wait_for(timeout=300_000)
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Team password").fill(TEAM)
    page.get_by_role("button", name=re.compile("Sign in")).click()
    page.get_by_text("Signed in as").wait_for(timeout=300_000)
    page.get_by_text("Profile a model").wait_for(timeout=300_000)
    _settle(page)


def _submit_small_profile(page) -> None:
    """The Profile page's Run with small CPU settings (the same for every caller: identical requests)."""
    _set(page, "Input shape (without batch)", "3,32,32")
    _set(page, "Batch size", "1")
    _set(page, "Warm-up iterations", "2")
    _set(page, "Timed iterations", "10")
    _set(page, "Profiling iterations", "2")
    page.get_by_role("button", name=re.compile(r"^\W*Run$")).click()
    _settle(page)


def test_team_mode_a_joiners_cancel_stops_following_and_the_owners_job_runs_to_completion(tmp_path, browser_page):
    """Issue 25, finding 1: bob's request joined alice's job and the Cancel of his job panel cancelled her job.
    The workers start only once bob has cancelled (the job waits queued until then: no race with its run)."""
    from engine.jobs import JobSystem
    from engine.store import RunStore

    env = {"TRTDASH_TEAM_PASSWORD": TEAM, "TRTDASH_ADMIN_PASSWORD": ADMIN, "TRTDASH_AUTOSTART_WORKERS": "0"}
    with _streamlit(tmp_path, **env) as base:
        browser = browser_page.context.browser
        contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(2)]
        alice, bob = (c.new_page() for c in contexts)
        try:
            for page, name in ((alice, "alice"), (bob, "bob")):
                page.set_default_timeout(60_000)
                _sign_in(page, base, name)
            _submit_small_profile(alice)
            alice.get_by_text(re.compile(r"queued")).first.wait_for()
            system = JobSystem(tmp_path / "data")
            (job,) = system.list_jobs()
            assert job.submitted_by == "alice" and job.state == "queued"

            _submit_small_profile(bob)
            cancel = bob.get_by_role("button", name=re.compile(r"^\W*Cancel$"))
            cancel.wait_for()
            assert [j.job_id for j in system.list_jobs()] == [job.job_id]  # bob's request joined alice's job
            cancel.click()
            bob.get_by_text("You stopped following").wait_for()
            _settle(bob)
            _screenshot(bob, "joiner_cancel_stops_following")
            assert cancel.count() == 0  # bob's view follows the job no more
            after = system.get(job.job_id)
            assert after.state == "queued" and not after.cancel_requested, after

            system.ensure_workers()  # now the job runs: alice's page follows it to its run
            alice.wait_for_url(re.compile(r"[?&]run=[\w-]+"), timeout=600_000)
            alice.wait_for_selector(CHART)
            run_id = re.search(r"[?&]run=([\w-]+)", alice.url).group(1)
            done = system.get(job.job_id)
            assert done.state == "done" and done.run_id == run_id, (done.state, done.error)
            assert RunStore(tmp_path / "data").get(run_id).submitted_by == "alice"
        finally:
            for c in contexts:
                c.close()


def test_a_link_whose_run_id_is_markdown_shows_as_text(dashboard, browser_page):
    """Issue 15, defect 6: URL text was rendered as markdown in error boxes (a link, an image fetch)."""
    from engine.store import RunStore

    base, data_dir = dashboard
    RunStore(data_dir).import_run((ROOT / "samples" / "resnet18_fp16.json.gz").read_bytes())  # a run to pick
    page = browser_page
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(
        f"{base}/compare?run=[Session expired - sign in again](https://example.com/login)"
        "&run=![x](https://example.com/pixel.png)"
    )
    _settle(page)
    page.get_by_text("does not exist").first.wait_for()
    main = page.locator("[data-testid='stMain']")
    assert main.locator("a[href*='example.com']").count() == 0
    assert main.locator("img[src*='example.com']").count() == 0
    assert "[Session expired - sign in again](https://example.com/login)" in main.inner_text().replace("\u2060", "")
    from urllib.parse import urlsplit

    assert not [u for u in requests if urlsplit(u).hostname == "example.com"]  # no image was fetched
    _screenshot(page, "link_text_shown_as_text")
