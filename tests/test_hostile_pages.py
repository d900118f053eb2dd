"""Pages under hostile input (issue 15): inputs JSON that crashed the Profile page (defect 5), and text from URLs
that was rendered as markdown, links and images included (defect 6)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import jobs

ROOT = Path(__file__).resolve().parent.parent
LINK = "[Session expired - sign in again](https://example.com/login)"
IMAGE = "![x](https://example.com/pixel.png)"


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRTDASH_SAMPLES_DIR", str(tmp_path / "no-samples"))
    monkeypatch.setenv(jobs.AUTOSTART_ENV, "0")  # these tests submit nothing that should run
    return tmp_path / "data"


@pytest.mark.parametrize(
    "text, field",
    [
        ('[{"name": "x", "shape": [1, 3, 8, 8], "dim_names": 5}]', "model.inputs.x.dim_names"),
        ("[" * 100_000, "model.inputs"),
        ('[{"name": "x", "shape": [1, 3, 8, 8], "min_shape": {"a": [1]}}]', "model.inputs.x.min_shape"),
    ],
)
def test_the_profile_page_explains_inputs_it_cannot_use_and_keeps_its_run_button(data, text, field):
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=600).run()
    at.text_area(key="knob:model.inputs").input(text).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(field in c.value for c in at.caption), [c.value for c in at.caption]
    run = at.button[0]
    assert run.label == "Run" and not run.disabled
    run.click().run()
    assert not at.exception
    assert any(field in e.value and "Nothing was submitted" in e.value for e in at.error)
    assert jobs.list_jobs() == []


def unescaped(value: str) -> str:
    """What the reader sees of escaped markdown text (the word joiner that keeps a URL from becoming a link is
    invisible)."""
    return re.sub(r"\\(.)", r"\1", value).replace("\u2060", "")


def _markdown_free(value: str) -> bool:
    """No link or image can form: every bracket is escaped, and no bare URL is left for GFM to link."""
    return not re.search(r"(?<!\\)([\[\]]|://)", value) and "\\[" in value


@pytest.mark.parametrize("page", ["compare", "layers", "history"])
def test_run_ids_from_a_link_are_shown_as_text(data, page):
    at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=600)
    from engine.store import RunStore

    store = RunStore(data)
    store.import_run((ROOT / "samples" / "resnet18_fp16.json.gz").read_bytes())
    at.query_params["run"] = [LINK, IMAGE]
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = [e.value for e in at.error if "does not exist" in e.value]
    assert shown and all(_markdown_free(v) for v in shown), shown
    assert any(LINK in unescaped(v) for v in shown) and (page == "layers" or any(IMAGE in unescaped(v) for v in shown))


def test_a_field_error_quoting_the_users_text_is_shown_as_text(data):
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=600).run()
    at.text_input(key="knob:model.input_shape").input(f"3,{LINK}").run()
    at.button[0].click().run()
    assert not at.exception
    errors = [e.value for e in at.error if "model.input_shape" in e.value]
    assert errors and all(_markdown_free(v) for v in errors), errors
