import functools
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FIXTURES = ROOT / "tests" / "fixtures"  # a copy of shared/fixtures (recorded on a real GPU, see its README)


@functools.lru_cache(maxsize=1)
def gpu_skip_reason() -> str | None:
    import torch

    if not torch.cuda.is_available():
        return "no NVIDIA GPU"
    try:
        import torch_tensorrt  # noqa: F401
    except Exception as e:  # raises without a driver or without TensorRT
        return f"torch_tensorrt unavailable: {e}"
    return None


# fixtures that start real processes (job workers, a dashboard server, a browser, a Redis server): a test using one,
# directly or through another fixture, is marked slow and left out of the fast tier
PROCESS_FIXTURES = frozenset({"system", "dashboard", "browser_page", "redis_url", "ladder_page"})
FAST_LEAVES_OUT = ("slow", "browser", "gpu")


def pytest_addoption(parser):
    parser.addoption(
        "--fast",
        action="store_true",
        help="the fast tier: unit and recorded-sample tests only (no workers, servers, browser or GPU)",
    )


def pytest_configure(config):
    # fixed seeds: hypothesis draws the same examples on every run (a failure reproduces; CI does not flake on a draw)
    from hypothesis import settings

    settings.register_profile("fixed", derandomize=True, print_blob=True)
    settings.load_profile("fixed")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        if "gpu" in item.keywords:
            reason = gpu_skip_reason()
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))
    if config.getoption("fast"):
        kept = [item for item in items if not any(m in item.keywords for m in FAST_LEAVES_OUT)]
        if len(kept) < len(items):
            config.hook.pytest_deselected(items=[item for item in items if item not in kept])
            items[:] = kept
    # files holding a test marked slow run first (a stable sort: the order within a file is kept), so that under
    # pytest-xdist (./dev.sh test) the long ones start at once instead of leaving one worker busy at the end
    slow_files = {item.path for item in items if "slow" in item.keywords}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.fixture(autouse=True)
def _main_module_kept():
    """Streamlit's AppTest runs a page as ``__main__`` and leaves ``sys.modules["__main__"]`` pointing at its
    temporary script (``AppTest.from_function``'s file calls ``__args``): a process this test process spawns
    afterwards (``JobProcess``, multiprocessing's spawn) re-runs that file as its main and dies with a NameError.
    Under pytest-xdist whichever test ran after one in the same worker failed with EOFError."""
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    yield
    sys.modules["__main__"] = main
    if main is not None and getattr(main, "__file__", None) != main_file:
        if main_file is None:
            del main.__file__
        else:
            main.__file__ = main_file


WANTS_WORKERS = pytest.StashKey[bool]()
FULL_TIER_ONLY = "starts job workers: runs in the full tier (./dev.sh test)"


@pytest.fixture(autouse=True)
def _fast_tier_starts_no_workers(request, monkeypatch):
    """In the fast tier a test that reaches for job workers is skipped (it runs in the full tier): the markers above
    catch the fixtures that start processes, this catches a test that builds its own job system or clicks a page
    button that submits. The refusal may be raised in a page's script thread (AppTest), where a skip would read as
    a failure: ``pytest_runtest_makereport`` turns the outcome of such a test into the skip it is."""
    if not request.config.getoption("fast"):
        return
    from engine.jobs.system import JobSystem

    def refuse(*args, **kwargs):
        request.node.stash[WANTS_WORKERS] = True
        pytest.skip(FULL_TIER_ONLY)

    monkeypatch.setattr(JobSystem, "ensure_workers", refuse)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if item.stash.get(WANTS_WORKERS, False) and report.failed:
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {FULL_TIER_ONLY}")


@pytest.fixture
def store(tmp_path, monkeypatch):
    from engine.store import RunStore

    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    return RunStore(tmp_path / "data")


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"recorded GPU fixtures missing at {FIXTURES}")
    return FIXTURES


@pytest.fixture
def system(tmp_path, monkeypatch):
    """A job system with its own data directory and the embedded SQLite queue; its workers stop afterwards."""
    from engine import jobs

    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv(jobs.QUEUE_URL_ENV, raising=False)
    s = jobs.JobSystem(tmp_path / "data")
    yield s
    # clean-up only (the graceful stop is checked by tests of its own): a worker tearing down torch on a busy
    # machine takes seconds, so it is SIGKILLed after 2 s (its job process dies with it)
    s.stop_workers(timeout_s=2)
