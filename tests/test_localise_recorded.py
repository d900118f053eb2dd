"""The localisations recorded on the H200 (``samples/localisations/``, scripts/record_localisations.py, TensorRT-RTX
1.4, batch 8, tolerance rel. L2 0.1) read on the CPU: each replays through the search, the resnet50 FP8 one reads as
FP8 breaking the engine module by module, the vit_b_16 FP8 one as quantization error undone by six modules kept
in fp16, past two crashed builds; and the driver over a scripted runner: a crashed search build counts as not passing
and the search goes on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.studies.localisation import driver, reading
from engine.studies.localisation.bisect import BUDGET, FOUND, Bisection
from engine.studies.localisation.figures import StepFigures
from engine.studies.localisation.records import read_bundle
from engine.studies.localisation.study import Localisation
from tests.localise_fixtures import ScriptedRunner, recorded_answers

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "localisations"
BUNDLES = sorted(SAMPLES.glob("*.json.gz"))
RESNET50 = SAMPLES / "resnet50_b8_fp8_fp16_h200.json.gz"
VIT = SAMPLES / "vit_b_16_b8_fp8_fp16_h200.json.gz"
CRASH = (
    "AcceleratorError: CUDA error: an illegal memory access was encountered\n"
    "CUDA kernel errors might be asynchronously reported at some other API call"
)


def _load(path: Path) -> tuple[Localisation, list[dict]]:
    if not path.exists():
        pytest.skip(f"{path.name} is not bundled")
    return read_bundle(path.read_bytes())


def test_both_recordings_are_bundled():
    assert [p.name for p in BUNDLES] == [RESNET50.name, VIT.name]


@pytest.mark.parametrize("path", BUNDLES, ids=[p.name for p in BUNDLES])
def test_a_recorded_localisation_replays_through_the_search(path):
    """Every recorded build was the one the search asked for, passed or failed by the criterion on its figures, and
    the search reaches the recorded state; the bundle stays small and carries the runs worth opening."""
    assert path.stat().st_size < 80 * 1024
    study, runs = read_bundle(path.read_bytes())
    assert study.is_sample and study.status in ("done", "failed") and study.measured_on == "engine"
    unfixed = study.step("unfixed")
    assert unfixed is not None and not unfixed.passed
    s = Bisection.start(study.candidates, study.budget)
    for step in (x for x in study.steps if x.role in ("search", "confirm")):
        assert tuple(step.kept) == s.next_keep() and step.role == ("confirm" if s.next_may_answer else "search")
        if step.state == "failed" and not step.crashed:  # the study stopped there (recorded before crashes counted)
            assert study.status == "failed" and step is study.steps[-1]
            break
        assert step.passed == (not step.crashed and study.criterion.passes(step.figures))
        s = s.record(tuple(step.kept), step.passed)
    assert s.outcome == study.outcome and s.answer == study.search.answer and s.builds == study.builds
    if study.outcome in (FOUND, BUDGET):
        fix = study.fix_step
        assert fix.passed and fix.figures.finite and fix.run_id in {r["result"]["run_id"] for r in runs}
        assert study.error_growth is not None
    assert {r["result"]["run_id"] for r in runs} >= {unfixed.run_id, study.step("reference").run_id}


# -- resnet50 FP8: every module tried alone breaks the engine ------------------------------------------------------
def test_resnet50_fp8_reads_as_fp8_breaking_the_engine_module_by_module():
    study, _ = _load(RESNET50)
    assert study.outcome == BUDGET and study.builds == study.budget == 14
    breaks = reading.alone_breaks(study)
    assert [b.module for b in breaks] == ["layer4.2.conv3", "layer4.2.conv2"]
    for b in breaks:
        low = [c for c in study.candidates if c not in b.failed.kept]
        assert sorted(low) == sorted([b.module, *b.beside]) and not b.failed.passed and not b.failed.figures.finite
        # the modules beside it were in FP8 in a build that passed, with it kept
        assert b.passing.passed and b.module in b.passing.kept and not set(b.beside) & set(b.passing.kept)
    assert breaks[0].beside == ("avgpool", "fc") and breaks[0].failed.index + 1 == 8
    unfixed, reference = study.step("unfixed").figures, study.step("reference").figures
    assert unfixed.gpu_ms > reference.gpu_ms  # FP8 slower than fp16 on this stack
    conv3 = study.error_growth.unit("layer4.2.conv3")
    conv2 = study.error_growth.unit("layer4.2.conv2")
    assert conv3["act_max"] <= 448 < conv2["act_max"]  # one within FP8's range, one beyond: not one layer's range
    summary = study.summary()
    assert summary.startswith("FP8 breaks the engine in every module the search tried alone (2), not at one place: ")
    assert (
        "with only layer4.2.conv3 in FP8 (beside avgpool, fc, which pass in FP8) the output still holds "
        f"{breaks[0].failed.figures.nonfinite} NaN/inf values, and with only layer4.2.conv2 too" in summary
    )
    assert "not one layer's range: on the PyTorch side layer4.2.conv3 input activation max 293 ≤ 448" in summary
    assert f"FP8 on this stack costs {unfixed.gpu_ms:.3g} ms vs fp16 {reference.gpu_ms:.3g} ms" in summary
    assert "Within 14 builds the smallest passing set keeps 54 modules of 56 in fp16" in summary
    assert "No small set found" not in summary


def test_one_module_alone_in_low_precision_is_named_without_a_passing_witness():
    """A build with exactly one candidate in FP8 (all others kept) that fails names that module alone; a failure
    with two modules in FP8 and no passing build covering one of them names nothing."""
    study, _ = _load(RESNET50)
    steps = [s for s in study.steps if s.role in ("unfixed", "reference")]
    fails = StepFigures(None, 0.0, 8, e2e_ms=1.0)
    from engine.studies.localisation.study import Step

    two = Step(2, "search", study.candidates[:-2], state="done", figures=fails, passed=False, why="NaN")
    study.steps = [*steps, two]
    assert reading.alone_breaks(study) == [] and reading.alone_reading(study) == ""
    one = Step(3, "search", study.candidates[:-1], state="done", figures=fails, passed=False, why="NaN")
    study.steps.append(one)
    (b,) = reading.alone_breaks(study)
    assert b.module == "fc" and b.beside == () and b.passing is None
    text = reading.alone_reading(study)
    assert text.startswith("fc breaks the engine alone: with only fc in FP8 the output still holds 8 NaN/inf values")
    assert "fc input activation max" in text


def test_a_search_where_every_module_breaks_alone_ends_on_the_budget_with_that_reading():
    """Scripted on the recorded resnet50 candidates and reference: every build with any module in FP8 returns NaN."""
    study, _ = _load(RESNET50)
    study = Localisation(
        "every", study.created_at, study.base, study.candidates, study.criterion, error_growth=study.error_growth
    )
    nan = StepFigures(None, 0.0, 8000, gpu_ms=1.06)
    fine = StepFigures(0.03, 1.0, 0, gpu_ms=0.70)
    everything = set(study.candidates)

    def answer(request):
        if request.compile.quantization == "none":
            return fine
        return fine if set(request.compile.keep_high_precision) == everything else nan

    driver.run(study, ScriptedRunner(answer), poll_s=0)
    assert study.outcome == BUDGET and study.builds == study.budget
    breaks = reading.alone_breaks(study)
    assert len(breaks) >= 2 and all(b.beside == () for b in breaks)
    assert [b.module for b in breaks[:2]] == study.candidates[:-3:-1]  # fc, then avgpool
    assert study.summary().startswith("FP8 breaks the engine in every module the search tried alone")
    assert "FP8 on this stack costs 1.06 ms vs fp16 0.7 ms" in study.summary()


# -- crashed builds --------------------------------------------------------------------------------------------------
def test_a_crashed_search_build_counts_as_not_passing_and_the_search_goes_on():
    study, _ = _load(RESNET50)
    study = Localisation("crash", study.created_at, study.base, study.candidates, study.criterion)
    culprit = "layer3.2.conv2"
    nan, fine = StepFigures(None, 0.0, 80), StepFigures(0.03, 1.0, 0)
    searched = []

    def answer(request):
        if request.compile.quantization == "none":
            return fine
        kept = set(request.compile.keep_high_precision)
        if kept:
            searched.append(len(kept))
            if len(searched) == 2:  # the second search build crashes, whatever it kept
                return CRASH
        return fine if culprit in kept else nan

    driver.run(study, ScriptedRunner(answer), poll_s=0)
    assert study.status == "done", study.summary()
    crashed = [s for s in study.steps if s.crashed]
    assert len(crashed) == 1 and crashed[0].index == 3 and crashed[0].state == "failed"
    step = crashed[0]
    assert step.passed is False and step.why == CRASH and step.figures is None
    assert len(study.steps) > 4 and study.builds == study.search.builds  # the search went on; the crash counted
    assert (
        f"Step 4 ({len(step.kept)} kept) crashed: CUDA illegal memory access — counted as not passing."
        in study.summary()
    )
    table = study.steps_table()
    row = table[table["step"] == 4].iloc[0]
    assert row["crashed"] and row["why"] == "crashed: CUDA illegal memory access — counted as not passing"
    back = Localisation.from_dict(json.loads(json.dumps(study.to_dict())))
    assert back.steps[3].crashed and back.summary() == study.summary()
    # the crashed build kept the culprit (it would have passed): read as failing, the search looks above it
    assert culprit in step.kept and study.answer is not None and culprit in study.answer


@pytest.mark.parametrize("role, index", [("unfixed", 1), ("reference", 2)])
def test_the_unfixed_or_reference_build_crashing_still_ends_the_study(role, index):
    study, _ = _load(RESNET50)
    study = Localisation("x", study.created_at, study.base, study.candidates, study.criterion)

    def answer(request):
        is_reference = request.compile.quantization == "none"
        if is_reference == (role == "reference"):
            return "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
        return StepFigures(0.5, 0.5, 0)

    driver.run(study, ScriptedRunner(answer), poll_s=0)
    assert study.status == "failed" and not any(s.crashed for s in study.steps)
    assert study.summary().startswith(f"The localisation stopped: step {index} ({role}) failed: out of GPU memory.")


# -- vit_b_16 FP8: quantization error, two crashed builds, recorded over three calls (resumed twice) ---------------
def test_the_vit_recording_reads_as_quantization_error_with_its_crashes_and_the_top1_it_lost():
    study, runs = _load(VIT)
    assert study.status == "done" and study.outcome == FOUND and study.budget == 20 and study.builds == 19
    crashed = [s for s in study.steps if s.crashed]
    assert [(s.index + 1, len(s.kept)) for s in crashed] == [(4, 12), (11, 5)]
    assert all(reading.crash_label(s.why) == "CUDA illegal memory access" for s in crashed)
    unfixed, reference, fix = study.step("unfixed").figures, study.step("reference").figures, study.fix_step
    assert unfixed.finite and abs(unfixed.rel_l2 - unfixed.fake_quant_rel_l2) < 0.01  # the engine = fake-quant
    assert len(fix.kept) == 6 and fix.figures.rel_l2 < 0.1 < unfixed.rel_l2
    assert fix.figures.top1_agreement < unfixed.top1_agreement == 1.0
    assert fix.figures.gpu_ms < reference.gpu_ms  # the fix is still faster than fp16
    summary = study.summary()
    assert summary.startswith(
        f"The unfixed fp8/fp16 engine is sound: it gives rel. L2 {unfixed.rel_l2:.3g}, top-1 agreement 100%, "
        f"0 NaN; the fake-quantized model's own rel. L2 is {unfixed.fake_quant_rel_l2:.3g}: the unfixed engine's "
        "error is quantization error, not a conversion fault, only beyond the tolerance 0.1. Keeping 6 modules in "
        f"fp16 gives rel. L2 {fix.figures.rel_l2:.3g}, top-1 agreement 88%"
    )
    assert "breaks at" not in summary  # nothing breaks: the kept modules undo quantization error
    assert "Its top-1 agreement fell from 100% to 88% while its rel. L2 fell" in summary
    assert "one changed class of the 8 inputs moves top-1 by 12.5%" in summary
    assert summary.endswith(
        "Step 4 (12 kept) crashed: CUDA illegal memory access — counted as not passing; step 11 (5 kept) crashed: "
        "CUDA illegal memory access — counted as not passing."
    )
    assert fix.run_id in {r["result"]["run_id"] for r in runs}


def test_the_vit_recording_replays_through_the_driver_crashes_included():
    """Its builds answered by what they recorded (the two crashes included), the driver makes the same 21 builds in
    the same order and reaches the same answer: the crash path that ran on the H200 is the one tested here."""
    recorded, _ = _load(VIT)
    study = Localisation(
        "vit_again", recorded.created_at, recorded.base, recorded.candidates, recorded.criterion, max_builds=20
    )
    driver.run(study, ScriptedRunner(recorded_answers(recorded)), poll_s=0)
    trace = [(s.role, s.kept, s.passed, s.crashed) for s in study.steps]
    assert trace == [(s.role, s.kept, s.passed, s.crashed) for s in recorded.steps]
    assert study.outcome == recorded.outcome and study.answer == recorded.answer


def test_a_top1_the_criterion_asks_for_is_not_said_to_have_fallen():
    recorded, _ = _load(VIT)
    asked = Localisation.from_dict({**recorded.to_dict(), "criterion": {"tolerance_rel_l2": 0.1, "min_top1": 0.8}})
    assert "Its top-1 agreement fell" in recorded.summary() and "Its top-1 agreement fell" not in asked.summary()


def test_a_study_stopped_by_a_crash_before_crashes_counted_reads_as_stopped():
    """Studies stored before a crashed search build counted as not passing end at the crash (status failed); they
    still read with what they measured."""
    recorded, _ = _load(VIT)
    old = Localisation.from_dict(recorded.to_dict())
    old.steps = old.steps[:4]
    old.steps[3].crashed, old.status, old.outcome = False, "failed", ""
    summary = old.summary()
    assert summary.startswith(
        "The localisation stopped at step 4 (search, 12 kept): its build crashed (CUDA illegal memory access)"
    )
    assert "keeping 25 of 51 modules in fp16 passed (step 3: rel. L2 0.0699" in summary


def test_the_cli_lists_and_shows_the_recorded_localisations(tmp_path, monkeypatch, capsys):
    from engine.__main__ import main

    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TRTDASH_SAMPLES_DIR", raising=False)
    assert main(["localise", "--list"]) == 0
    listed = capsys.readouterr().out
    assert all(p.name.removesuffix(".json.gz") in listed for p in BUNDLES)
    assert main(["localise", "--show", "resnet50_b8_fp8_fp16_h200"]) == 0
    out = capsys.readouterr().out
    assert "step 16 confirm     2 kept  fail" in out
    assert "FP8 breaks the engine in every module the search tried alone (2)" in out


def test_a_crash_of_the_build_keeping_every_candidate_is_not_read_as_unfixable_precision():
    study, _ = _load(RESNET50)
    study = Localisation("verify", study.created_at, study.base, study.candidates, study.criterion)
    everything = set(study.candidates)

    def answer(request):
        if request.compile.quantization == "none":
            return StepFigures(0.001, 1.0, 0)
        return CRASH if set(request.compile.keep_high_precision) == everything else StepFigures(None, 0.0, 8)

    driver.run(study, ScriptedRunner(answer), poll_s=0)
    assert study.outcome == "unfixable" and study.steps[-1].crashed and len(study.steps[-1].kept) == 56
    assert study.summary().startswith(
        "The build keeping all 56 candidate modules in fp16 crashed (CUDA illegal memory access): the search "
        "cannot tell whether keeping them fixes fp8/fp16"
    )


def test_the_error_growth_labels_sit_on_their_lines_apart():
    """The recorded vit_b_16 crosses the tolerance at its last unit (heads.head): that label runs leftwards, and the
    tolerance's label sits at the tolerance on the log axis (add_hline's own label did not), so they do not meet."""
    import math

    from engine.charts.localisation import error_growth

    study, _ = _load(SAMPLES / "vit_b_16_b8_fp8_fp16_h200.json.gz")
    growth = study.error_growth
    assert growth is not None
    notes = {a.text.split(":")[0].split(" ")[0]: a for a in error_growth(growth).layout.annotations if a.text}
    first, tol = notes["first"], notes["tolerance"]
    assert first.text == "first beyond: heads.head" and first.xanchor == "right"
    assert tol.text == f"tolerance {growth.tolerance:g}" and tol.y == pytest.approx(math.log10(growth.tolerance))
    assert tol.xanchor == "left" and tol.xref.endswith("domain")
