"""Profile's generative mode in AppTest: a tiny decoder run on CPU from the form (a fresh process, the CLI's path),
its figures and verdict shown; bad input refused at the form; History lists the stored run."""

import pytest
from streamlit.testing.v1 import AppTest

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRTDASH_SAMPLES_DIR", str(tmp_path / "no-samples"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=600)
    at.run()
    at.radio(key="profile_mode").set_value("Generate (decoder models: prefill and decode apart)").run()
    return at


def _tiny(at):
    at.selectbox(key="gen_model").select("hf/tiny-gpt2")
    at.text_input(key="gen_prompts").input("8")
    at.text_input(key="gen_contexts").input("16,32")
    at.text_input(key="gen_batches").input("1,2")
    at.number_input(key="gen_new").set_value(4)


def test_a_prompt_longer_than_the_model_is_refused_at_the_form(app):
    _tiny(app)
    app.text_input(key="gen_prompts").input("200").run()
    assert any("prompt_lengths" in e.value and "128" in e.value for e in app.error)
    assert app.button(key="gen_run").disabled


def test_a_tiny_run_from_the_form_shows_its_figures_and_history_lists_it(app, tmp_path):
    _tiny(app)
    app.run()
    app.button(key="gen_run").click().run()
    assert not app.exception and not [e.value for e in app.error]
    labels = [m.label for m in app.metric]
    assert "Time to first token" in labels and "Decode step" in labels
    assert any("best tokens/s" in m.value or "no batch keeps" in m.value for m in app.markdown)
    history = AppTest.from_file(str(ROOT / "pages" / "history.py"), default_timeout=600)
    history.run()
    assert not history.exception
    assert len(history.dataframe[0].value) == 1  # the generative runs' table, first on the page
