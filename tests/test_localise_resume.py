"""Going on with a stopped localisation (``resume``, ``python -m engine localise --resume``, the page's Go on):
a study cancelled at any point and resumed makes the same builds, in the same order, as one never stopped; a search
out of builds goes on with a larger budget and ends where an uninterrupted search with that budget ends; what cannot
go on is refused with the reason. Scripted builds on the recorded resnet50 candidates (no GPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.studies.localisation import driver
from engine.studies.localisation.bisect import BUDGET, FOUND
from engine.studies.localisation.figures import StepFigures
from engine.studies.localisation.records import LocalisationRecords, read_bundle
from engine.studies.localisation.resume import resume, resume_offer
from engine.studies.localisation.study import Localisation
from tests.localise_fixtures import ScriptedRunner

RESNET50 = Path(__file__).resolve().parent.parent / "samples" / "localisations" / "resnet50_b8_fp8_fp16_h200.json.gz"
CULPRITS = {"layer3.2.conv2", "layer4.1.conv1"}
NAN, FINE = StepFigures(None, 0.0, 80, gpu_ms=1.0), StepFigures(0.03, 1.0, 0, gpu_ms=0.7)


def _study(max_builds: int | None = None) -> Localisation:
    recorded, _ = read_bundle(RESNET50.read_bytes())
    return Localisation(
        "r", recorded.created_at, recorded.base, recorded.candidates, recorded.criterion, max_builds=max_builds
    )


def _answer(request):
    if request.compile.quantization == "none":
        return FINE
    return FINE if CULPRITS <= set(request.compile.keep_high_precision) else NAN


def _held_at(n: int):
    """Answers like ``_answer``, but the ``n``-th build (0-based) stays queued: the study is cut there."""
    count = iter(range(10_000))

    def answer(request):
        return None if next(count) == n else _answer(request)

    return answer


def _trace(study: Localisation) -> list[tuple[str, tuple[str, ...], bool | None]]:
    return [(s.role, tuple(s.kept), s.passed) for s in study.steps]


def _round_trip(study: Localisation) -> Localisation:
    return Localisation.from_dict(json.loads(json.dumps(study.to_dict())))  # as the records keep it


@pytest.fixture(scope="module")
def whole() -> Localisation:
    study = _study()
    driver.run(study, ScriptedRunner(_answer), poll_s=0)
    assert study.outcome == FOUND and set(study.answer) == CULPRITS
    return study


@pytest.mark.parametrize("cut", [0, 1, 2, 5, 9, 13])
def test_a_study_cancelled_anywhere_goes_on_to_the_same_builds_and_answer(whole, cut):
    study = _study()
    runner = ScriptedRunner(_held_at(cut))
    for _ in range(50):  # as far as it gets: the held build keeps the search waiting
        driver.advance(study, runner)
    driver.cancel(study, runner)
    assert study.status == "cancelled" and [s.state for s in study.steps].count("cancelled") == 1
    done_before = [s for s in study.steps if s.state == "done"]
    study = _round_trip(study)
    resume(study)
    assert study.status == "running" and all(s.state == "done" for s in study.steps)
    if cut >= 2:  # what finished is kept, with its figures; the cut build is gone
        assert [s.figures for s in study.steps] == [s.figures for s in done_before]
    again = ScriptedRunner(_answer)
    driver.run(study, again, poll_s=0)
    assert _trace(study) == _trace(whole) and study.outcome == FOUND and study.answer == whole.answer
    assert study.builds == whole.builds and [s.index for s in study.steps] == list(range(len(study.steps)))
    # only what was cut short was built again (the unfixed build and the reference together)
    assert len(again.requests) == len(whole.steps) - len(done_before) + (1 if cut < 2 else 0)


def test_a_search_out_of_builds_goes_on_with_a_larger_budget(whole):
    study = _study(max_builds=4)
    driver.run(study, ScriptedRunner(_answer), poll_s=0)
    assert study.outcome == BUDGET and study.builds == 4
    with pytest.raises(ConfigError, match="used its whole budget of 4 builds: give a larger max_builds") as e:
        resume(study)
    assert e.value.field == "max_builds"
    with pytest.raises(ConfigError, match="4 search builds are used already: give more than 4"):
        resume(study, 4)
    assert study.status == "done" and study.outcome == BUDGET  # a refused resume changes nothing
    study = _round_trip(study)
    resume(study, 40)
    assert study.status == "running" and study.budget == 40 and study.search.max_builds == 40
    driver.run(study, ScriptedRunner(_answer), poll_s=0)
    assert _trace(study) == _trace(whole) and study.outcome == FOUND


def test_the_unfixed_or_reference_failing_goes_on_by_building_both_again():
    study = _study()
    oom = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    driver.run(study, ScriptedRunner(lambda r: oom if r.compile.quantization == "none" else _answer(r)), poll_s=0)
    assert study.status == "failed" and resume_offer(study).startswith("Going on builds the failed step")
    resume(study)
    assert study.steps == []
    driver.run(study, ScriptedRunner(_answer), poll_s=0)
    assert study.outcome == FOUND and [s.role for s in study.steps[:2]] == ["unfixed", "reference"]


def test_what_cannot_go_on_is_refused_with_the_reason(whole):
    assert resume_offer(whole) == ""
    with pytest.raises(ConfigError, match=r"r is finished \(found\): there is nothing to go on with"):
        resume(whole)
    running = _study()
    with pytest.raises(ConfigError, match="r is running already: follow it instead"):
        resume(running)


def test_the_cli_refuses_a_sample_a_finished_study_and_an_unknown_id(whole, tmp_path, monkeypatch, capsys):
    from engine.__main__ import main

    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRTDASH_SAMPLES_DIR", str(RESNET50.parent.parent))
    LocalisationRecords().import_samples()
    LocalisationRecords().save(whole)
    for lid, said in [
        ("resnet50_b8_fp8_fp16_h200", "is a recorded sample: start a localisation of your own"),
        ("r", "r is finished (found)"),
        ("nope", "No localisation 'nope' is stored"),
    ]:
        assert main(["localise", "--resume", lid]) == 2
        assert said in capsys.readouterr().err
    assert LocalisationRecords().load("r").to_dict() == whole.to_dict()  # nothing changed
