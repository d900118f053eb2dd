"""Issue 28's ranked problems a newcomer met on the pages, each checked on what the page shows (streamlit AppTest,
the bundled samples recorded on the H200 in a fresh data directory)."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """A fresh data directory with the bundled samples, as a fresh clone's first visit sees them."""
    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRTDASH_SAMPLES_DIR", str(SAMPLES))
    return tmp_path / "data"


def page(name: str, **query: str | list[str]) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=600)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _bundled_run_ids() -> set[str]:
    ids = {json.loads(gzip.decompress(p.read_bytes()))["result"]["run_id"] for p in SAMPLES.glob("*.json.gz")}
    for p in (SAMPLES / "localisations").glob("*.json.gz"):
        ids |= {run["result"]["run_id"] for run in json.loads(gzip.decompress(p.read_bytes()))["runs"]}
    return ids


def _history_count(at: AppTest) -> tuple[int, int]:
    caption = next(c.value for c in at.caption if " runs · " in c.value)
    shown, total = re.match(r"([\d,]+) of ([\d,]+) runs", caption).groups()
    return int(shown.replace(",", "")), int(total.replace(",", ""))


def test_history_lists_every_bundled_run_on_first_view(fresh):
    """Problem 9: History counted 51 runs, then 58 once "Where it breaks" had been opened (its bundles' runs were
    installed lazily, by that page)."""
    first = page("history")
    no_exception(first)
    assert _history_count(first) == (len(_bundled_run_ids()),) * 2
    no_exception(page("localise"))
    assert _history_count(page("history")) == _history_count(first)


def test_sweeps_computes_only_the_open_tab_and_offers_no_eager_knob_sweep(fresh):
    """Problem 7: the Sweeps page computed all five tabs on every visit (11-23 s before it settled), and on CPU offered
    a 5-run eager min_block_size sweep that its own caption called pointless."""
    from engine import capabilities

    at = page("sweep")
    no_exception(at)
    keys = {w.key for w in at.selectbox}
    assert "sweep:knob1" in keys  # the open tab: Run a sweep
    assert not keys & {"tune:chosen", "batch:chosen", "sweep:chosen"}, keys  # the others: not computed
    if not capabilities.detect().can_compile:  # a CPU machine: the form's backend is eager
        assert at.selectbox(key="sweep:knob1").options == ["precision"]
        assert not any("ignores compile knobs" in c.value for c in at.caption)
    at.session_state["sweeps_tab"] = "Batch sweep"  # a click on the tab
    at.run()
    no_exception(at)
    assert "batch:chosen" in {w.key for w in at.selectbox} and "sweep:knob1" not in {w.key for w in at.selectbox}


def test_a_link_to_a_study_opens_its_tab(fresh):
    at = page("sweep", batch="resnet50_fp16_batch_h200")
    no_exception(at)
    assert at.selectbox(key="batch:chosen").value == "resnet50_fp16_batch_h200"
    assert "sweep:knob1" not in {w.key for w in at.selectbox}


NOISY = "resnet50_fp16_optunset_r2"  # recorded on the H200: p10-p90 1.056-2.146 ms around a 1.110 ms median
QUIET = "resnet18_fp16"


def _sample_id(name: str) -> str:
    return json.loads(gzip.decompress((SAMPLES / f"{name}.json.gz").read_bytes()))["result"]["run_id"]


def test_a_run_whose_spread_makes_its_median_unreliable_says_so(fresh):
    """Problem 1: a CPU run whose p10-p90 spanned 529-2206 ms showed its median as fact, with no noise warning."""
    noisy = page("profile", run=_sample_id(NOISY))
    no_exception(noisy)
    (warning,) = [w.value for w in noisy.warning if w.value.startswith("Noisy run")]
    assert "1.056 ms to 2.146 ms" in warning and "GPU time" in warning
    quiet = page("profile", run=_sample_id(QUIET))
    no_exception(quiet)
    assert not [w.value for w in quiet.warning if w.value.startswith("Noisy run")]
    compare = page("compare", run=[_sample_id(QUIET), _sample_id(NOISY)])
    no_exception(compare)
    assert [c.value for c in compare.caption if "noisy: its median is unreliable" in c.value]
