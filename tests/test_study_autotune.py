"""An auto-tune is a stored study like a sweep, a ladder or a batch sweep: its record is created at submit (kind
"autotune", the plan), each configuration it measures is added as a member by the engine as it is evaluated, and
its state follows its job, settled by the supervisor with no page open."""

from __future__ import annotations

import pytest

from engine.settings.request import RunRequest
from engine.studies import record
from engine.studies.autotune.job import search_status, submit_autotune
from engine.studies.autotune.stored import load_report, plan_autotune, run_plan, save_plan
from engine.studies.autotune.study_record import DEFAULTS_LABEL, record_search
from engine.studies.statistics import END_TO_END
from engine.studies.sweeps import MIN_BLOCK_SIZE_KNOB, PRECISION_KNOB
from tests.test_autotune import LIMITS, SPACE, TINY, StubEvaluate
from tests.test_jobs import finished, tiny, wait_until


def test_each_configuration_the_search_evaluates_is_a_member_of_its_study(store):
    plan = plan_autotune(RunRequest.from_dict(TINY), space=SPACE, constraints=LIMITS, n_trials=6, seed=3)
    save_plan(store.root, plan)
    evaluate = CachedStub()
    report = run_plan(store.root, plan, store, evaluate, should_stop=lambda: len(evaluate.calls) > 3)
    study = record.load_study(store, plan.autotune_id, kind="autotune")
    assert study.plan["knobs"] == list(SPACE) and study.plan["n_trials"] == 6 and study.plan["model"] == "resnet18"
    assert study.plan["objective"] == END_TO_END  # the runtime knob is searched: the host's work counts
    # one member per evaluation, in order, the first the defaults run: exactly the runs the search measured
    assert [m.label for m in study.points][0] == DEFAULTS_LABEL
    assert study.run_ids == [f"stub-{n}" for n in range(1, len(evaluate.calls) + 1)]
    assert len(study.points) == len(evaluate.calls)
    assert set(study.run_ids) >= set(report.trials["run_id"])
    assert "precision=" in study.points[1].label and "min_block_size=" in study.points[1].label
    # no job ran it (run_plan called directly): the search point was never submitted, nothing is on its way
    assert study.state == "incomplete" and study.missing == [study.driver]
    assert study.counts_text == f"{len(evaluate.calls)} of 7 measured, 1 missing"

    # a resume measures the defaults again (the store answers them: same run) and adds only what is new
    measured = len(study.points)
    run_plan(store.root, plan, store, evaluate)
    resumed = record.load_study(store, plan.autotune_id)
    assert [m.label for m in resumed.points].count(DEFAULTS_LABEL) == 1
    assert resumed.points[:measured] == study.points and len(resumed.points) > measured
    assert len(load_report(store.root, plan.autotune_id, store).trials) == 6
    assert ("autotune" in [k for _, k, _, _ in record.list_studies(store)]) and record.list_studies(
        store, "sweep"
    ) == []


class CachedStub(StubEvaluate):
    """The stub answering a request measured before with the run it had, as the store's cache does."""

    def __init__(self):
        super().__init__()
        self.seen = {}

    def __call__(self, request: RunRequest):
        key = repr(request.to_dict())
        if key not in self.seen:
            self.seen[key] = super().__call__(request)
        return self.seen[key]


def test_an_auto_tune_job_settles_its_study_with_no_page_open(system):
    """The search runs as a job; nothing polls it (no page, no search_status): the job process adds each trial's
    run, the supervisor settles the study from its job. Then `python -m engine report --study <id>` opens it."""
    plan = plan_autotune(tiny(), space={PRECISION_KNOB: ["fp32", "bf16"], MIN_BLOCK_SIZE_KNOB: [5]}, n_trials=2, seed=0)
    job = submit_autotune(plan, system=system)
    queued = record.load_study(system.store, plan.autotune_id, kind="autotune")
    assert queued.state in ("running", "finished") and queued.driver.job_id == job.job_id
    assert plan.autotune_id in [sid for sid, *_ in record.list_studies(system.store, "autotune")]
    assert finished(system, job.job_id, timeout_s=240).state == "done"

    study = wait_until(lambda: (s := record.load_study(system.store, plan.autotune_id)).state == "finished" and s, 600)
    report = load_report(system.store.root, plan.autotune_id, system.store)
    assert study.missing == [] and set(report.trials["run_id"]) <= set(study.run_ids)
    assert len(study.run_ids) == 2  # the defaults run is fp32 at min_block_size 5: the same run as one trial
    for run_id in study.run_ids:
        assert f"autotune:{plan.autotune_id}" in system.store.get(run_id).tags
    assert search_status(plan.autotune_id, system).progress.complete

    from engine.__main__ import main

    out = system.root / "at.html"
    assert main(["report", "--study", plan.autotune_id, "-o", str(out)]) == 0
    assert "Auto-tune" in out.read_text()


def test_a_search_planned_before_records_existed_gets_one_when_it_resumes(store):
    plan = plan_autotune(RunRequest.from_dict(TINY), space={PRECISION_KNOB: ["fp32", "fp16"]}, n_trials=2)
    save_plan(store.root, plan)
    assert record.find_study(store, plan.autotune_id) is None
    study = record_search(store, plan)
    assert study.kind == "autotune" and study.state == "incomplete" and study.plan["planned_points"] == 3
    assert record_search(store, plan) == study  # once
    with pytest.raises(ValueError, match="resumes through its own job"):
        record.resume_study(store, plan.autotune_id, lambda r: "never")
