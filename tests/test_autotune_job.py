"""Auto-tune as a job: the search's Optuna study stored in the data directory (resumable after a cancel, a cancel
within a trial, a crash), a bad knob or constraint named before anything runs, and the Sweeps page's Auto-tune tab
starting a search that survives page reruns and a new tab, cancelled and resumed from the page."""

from __future__ import annotations

import re
import time
from pathlib import Path

import optuna
import pytest
from streamlit.testing.v1 import AppTest

from engine import jobs
from engine.backends.base import Cancelled
from engine.errors import ConfigError
from engine.settings.request import RunRequest
from engine.studies import autotune as at
from engine.studies.autotune.job import search_status
from engine.studies.autotune.stored import (
    AutotuneNotFound,
    list_plans,
    load_plan,
    load_report,
    optuna_storage,
    plan_autotune,
    run_plan,
    save_plan,
)
from engine.studies.autotune.stored_trials import INTERRUPTED_ATTR
from engine.studies.sweeps import MIN_BLOCK_SIZE_KNOB, OPTIMIZATION_LEVEL_KNOB, PRECISION_KNOB
from tests.test_autotune import LIMITS, SPACE, TINY, StubEvaluate

ROOT = Path(__file__).resolve().parent.parent
KNOB_COLUMNS = [*SPACE, "median_ms", "feasible", "run_id"]


def _stored_plan(store, n_trials=12):
    plan = plan_autotune(RunRequest.from_dict(TINY), space=SPACE, constraints=LIMITS, n_trials=n_trials, seed=3)
    save_plan(store.root, plan)
    return plan


def _study(store, plan):
    return optuna.load_study(study_name=plan.autotune_id, storage=optuna_storage(store.root))


# -- the stored study -------------------------------------------------------------------------------------
def test_a_stopped_search_resumes_its_stored_study_keeping_the_trials_done(store):
    plan = _stored_plan(store)
    evaluate = StubEvaluate()
    first = run_plan(store.root, plan, store, evaluate, should_stop=lambda: len(evaluate.calls) > 5)
    assert len(first.trials) == 5  # defaults + 5 trials, then stopped between trials
    assert [p.autotune_id for p in list_plans(store.root)] == [plan.autotune_id]
    first_calls = len(evaluate.calls)

    # a new process (a fresh storage object) resumes the same study: the 5 trials count towards the 12
    resumed = run_plan(store.root, load_plan(store.root, plan.autotune_id), store, evaluate)
    assert len(resumed.trials) == 12 and resumed.trials["trial"].tolist() == list(range(12))
    assert resumed.trials[KNOB_COLUMNS].head(5).equals(first.trials[KNOB_COLUMNS])
    # the resumed run measured the defaults again (answered by the store's cache on the queue), then only new trials
    assert evaluate.calls[first_calls] == evaluate.calls[0] and len(evaluate.calls) - first_calls <= 1 + 7
    assert len(_study(store, plan).trials) == 12
    # the report opens from the stored study alone (the stub's runs are not in the store: no best run, same trials)
    rebuilt = load_report(store.root, plan.autotune_id, store)
    assert rebuilt.trials[KNOB_COLUMNS].equals(resumed.trials[KNOB_COLUMNS])
    assert rebuilt.best.params == resumed.best.params and rebuilt.notes[0] == resumed.notes[0]  # the objective
    assert search_status(plan.autotune_id, jobs.JobSystem(store.root)).text().startswith("Finished: 12 of 12")


def test_a_trial_cancelled_or_crashed_midway_is_measured_again_on_resume(store):
    plan = _stored_plan(store, n_trials=8)

    class CancelThird(StubEvaluate):
        def __call__(self, request):
            if len(self.calls) == 3:  # defaults, trial 0, trial 1, then cancel within trial 2
                self.calls.append(request)
                raise Cancelled("job cancelled")
            return super().__call__(request)

    evaluate = CancelThird()
    with pytest.raises(Cancelled):
        run_plan(store.root, plan, store, evaluate)
    study = _study(store, plan)
    interrupted = [t for t in study.trials if t.user_attrs.get(INTERRUPTED_ATTR)]
    assert len(interrupted) == 1  # the cancelled trial, not counted
    assert search_status(plan.autotune_id, jobs.JobSystem(store.root)).progress.trials_done == 2
    # then a crash: the next process takes the queued point and dies with the trial running
    crashed = study.ask({k: optuna.distributions.CategoricalDistribution(tuple(v)) for k, v in SPACE.items()})
    assert crashed.params == interrupted[0].params

    report = run_plan(store.root, plan, store, StubEvaluate())
    assert len(report.trials) == 8 and report.trials["error"].eq("").all()
    # the interrupted point is the next one measured, with the very knob values cancelled earlier
    measured_again = {k: report.trials.loc[2, k] for k in SPACE}
    assert measured_again == {k: interrupted[0].params[k] for k in SPACE}
    states = [t.state for t in _study(store, plan).trials]
    assert states.count(optuna.trial.TrialState.RUNNING) == 0


def test_a_bad_knob_value_or_constraint_is_named_before_anything_runs(store):
    base = RunRequest.from_dict(TINY)
    with pytest.raises(ConfigError) as e:
        plan_autotune(base, space={"compile.bogus": [1]})
    assert e.value.field == "compile.bogus" and "not a searchable knob" in e.value.message
    with pytest.raises(ConfigError) as e:
        plan_autotune(base, space={OPTIMIZATION_LEVEL_KNOB: [2, 9]})
    assert e.value.field == OPTIMIZATION_LEVEL_KNOB and "9 is above the maximum 5" in e.value.message
    with pytest.raises(ConfigError) as e:
        at.Constraints(max_build_s=-1.0)
    assert e.value.field == "autotune.max_build_s" and "must be above 0" in e.value.message
    with pytest.raises(ConfigError) as e:
        plan_autotune(base, space={PRECISION_KNOB: ["fp32"]}, n_trials=0)
    assert e.value.field == "autotune.n_trials"
    with pytest.raises(AutotuneNotFound, match="No stored auto-tune 'at-nope'"):
        load_plan(store.root, "at-nope")
    assert list_plans(store.root) == []


# -- the page ---------------------------------------------------------------------------------------------
@pytest.fixture
def app(store, monkeypatch):
    monkeypatch.delenv(jobs.QUEUE_URL_ENV, raising=False)
    monkeypatch.setenv("TRTDASH_SAMPLES_DIR", str(store.root / "no-samples"))
    yield _tab()
    jobs.stop_workers()


def _tab(autotune_id: str | None = None) -> AppTest:
    """The Sweeps page as a new browser tab would open it (optionally from a link to a search)."""
    at_ = AppTest.from_file(str(ROOT / "pages" / "sweep.py"), default_timeout=600)
    at_.session_state["sweeps_tab"] = "Auto-tune"  # only the open tab is computed
    if autotune_id:
        at_.query_params["autotune"] = autotune_id
    return at_


def _fill_tiny(page, precisions=("fp32", "bf16")):
    page.selectbox(key="tune:model.source").set_value("resnet18")
    page.text_input(key="tune:model.input_shape").set_value("3,32,32")
    page.number_input(key="tune:measure.warmup_iters").set_value(1)
    page.number_input(key="tune:measure.timed_iters").set_value(5)
    page.multiselect(key="tune:prec").set_value(list(precisions))
    page.multiselect(key="tune:knobs").set_value([PRECISION_KNOB, MIN_BLOCK_SIZE_KNOB])
    page.slider(key="tune:trials").set_value(4)
    return page.run()


def _search(page):
    return next(b for b in page.button if b.label == "Search").click().run()


def _errors(page):
    return [re.sub(r"\\(.)", r"\1", e.value) for e in page.error]


def _autotune_jobs():
    return [j for j in jobs.list_jobs() if j.kind == "autotune"]


def test_a_bad_constraint_on_the_page_is_named_and_nothing_is_queued(app):
    app.run()
    _search(_fill_tiny(app, precisions=()))
    assert any("autotune.precisions" in e and "allow at least one precision" in e for e in _errors(app))
    assert jobs.list_jobs() == [] and "autotune" not in app.query_params


def test_a_search_survives_page_reruns_and_a_new_tab_and_resumes_after_a_cancel(app, store):
    app.run()
    _search(_fill_tiny(app))
    assert not app.exception and not _errors(app), _errors(app)
    autotune_id = app.query_params["autotune"]
    autotune_id = autotune_id[0] if isinstance(autotune_id, list) else autotune_id
    (job,) = _autotune_jobs()
    assert job.request["model"]["source"] == "resnet18" and job.key == f"autotune:{autotune_id}"
    # cancel from the page: queued (the workers are starting) or running, it stops and says how far it got
    next(b for b in app.button if b.label == "Cancel search").click().run()
    deadline = time.monotonic() + 600
    while search_status(autotune_id).active and time.monotonic() < deadline:
        time.sleep(0.2)
    app.run()
    assert any(c.value.startswith("Cancelled after") and "Resume to continue" in c.value for c in app.caption)
    done_before = search_status(autotune_id).progress.trials_done

    next(b for b in app.button if b.label == "Resume").click().run()
    assert not app.exception and not _errors(app), _errors(app)
    resumed = search_status(autotune_id).job
    assert resumed is not None and resumed.active and resumed.job_id != job.job_id
    for _ in range(3):  # reruns of the page that started it: nothing is submitted again, nothing stops
        app.run()
        assert not app.exception and [j.job_id for j in _autotune_jobs()] == [resumed.job_id, job.job_id]
    tab = _tab(autotune_id)  # a new tab (the first one closed): it follows the same job from the link
    deadline = time.monotonic() + 600
    while search_status(autotune_id).active and time.monotonic() < deadline:
        tab.run()
        assert not tab.exception and not _errors(tab), _errors(tab)
        time.sleep(0.5)
    tab.run()
    status = search_status(autotune_id)
    assert status.job.state == "done" and status.progress.trials_done == 4 >= done_before
    assert tab.selectbox(key="tune:chosen").value == autotune_id
    report = load_report(store.root, autotune_id, store)
    assert f"**{report.summary()}**" in [m.value for m in tab.markdown]
    frame = next(d.value for d in tab.dataframe if "best_so_far_ms" in d.value.columns)
    assert len(frame) == 4 and frame["run_id"].tolist() == report.trials["run_id"].tolist()
    assert all(store.exists(r) for r in frame["run_id"])  # every trial is a stored run
    assert report.best is not None and report.best.params[PRECISION_KNOB] in ("fp32", "bf16")
    assert any(c.value.startswith("Finished: 4 of 4 trials") for c in tab.caption)


# -- the CLI ----------------------------------------------------------------------------------------------
def test_the_cli_runs_a_stored_search_that_resumes_and_names_a_bad_knob(store, capsys):
    import json

    from engine.__main__ import main

    args = [
        "autotune",
        "--model",
        "resnet18",
        "--input-shape",
        "3,32,32",
        "--device",
        "cpu",
        "--warmup-iters",
        "1",
        "--timed-iters",
        "5",
        "--precisions",
        "fp32,bf16",
    ]
    assert main([*args, "--knobs", "compile.precision,compile.bogus"]) == 2
    assert "error: compile.bogus: is not a searchable knob" in capsys.readouterr().err
    assert main([*args, "--trials", "2", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert [t[PRECISION_KNOB] for t in first["trials"]] == ["fp32", "bf16"]
    assert first["best_run_id"] in {t["run_id"] for t in first["trials"]} and store.exists(first["best_run_id"])
    # the same stored search, as the dashboard would open it
    assert load_report(store.root, first["autotune_id"], store).summary() == first["summary"]
    assert main(["autotune", "--resume", first["autotune_id"], "--json"]) == 0  # complete: nothing new measured
    assert json.loads(capsys.readouterr().out)["trials"] == first["trials"]
    assert main(["autotune", "--resume", "at-nope"]) == 2
    assert "No stored auto-tune 'at-nope'" in capsys.readouterr().err


def test_the_study_is_read_while_another_process_writes_it(store):
    """The job process writes trials while pages poll the same SQLite file: neither waits out a lock error."""
    import subprocess
    import sys

    plan = _stored_plan(store, n_trials=24)
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from engine.store import RunStore; "
            "from engine.studies.autotune.stored import load_plan, run_plan; "
            "from tests.test_autotune import StubEvaluate; "
            "root = sys.argv[1]; run_plan(root, load_plan(root, sys.argv[2]), RunStore(root), StubEvaluate())",
            str(store.root),
            plan.autotune_id,
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    system = jobs.JobSystem(store.root)
    while writer.poll() is None:
        seen.append(search_status(plan.autotune_id, system).progress.trials_done)
        load_report(store.root, plan.autotune_id, store)
    assert writer.returncode == 0, writer.stderr.read()
    assert seen == sorted(seen) and len(set(seen)) > 1  # progress read while it grew, never going back
    assert search_status(plan.autotune_id, system).progress.trials_done == 24
