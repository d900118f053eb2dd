"""Which run Layers and Segmentation open on when no run is named: the newest that holds what they show, said when
it is not the newest (engine.run_parts), on the recorded H100 runs (tests/fixtures)."""

import dataclasses

from engine import run_parts
from engine.store import new_run_id
from tests.fixture_runs import trt_profiled_run, trt_relu_forced_run


def test_the_newest_run_holding_the_part_is_opened_and_the_newest_is_said_to_lack_it(fixtures_dir):
    profiled, relu = trt_profiled_run(fixtures_dir), trt_relu_forced_run(fixtures_dir)
    opened = run_parts.opening([relu, profiled], run_parts.LAYER_PROFILE)
    assert opened.run_id == profiled.run_id
    assert opened.note == (
        f"Opened the newest run with a layer profile, {profiled.label}. The newest run, "
        f"{relu.label}, has none: no per-layer table was stored with it."
    )
    assert run_parts.opening([relu, profiled], run_parts.SEGMENTATION) == run_parts.Opening(relu.run_id, "")
    opened = run_parts.opening([profiled, relu], run_parts.SEGMENTATION)
    assert opened.run_id == relu.run_id and "the TensorRT backend recorded none for it" in opened.note


def test_the_scan_stops_at_the_first_run_that_holds_it(fixtures_dir):
    profiled, relu = trt_profiled_run(fixtures_dir), trt_relu_forced_run(fixtures_dir)
    read = []

    def newest_first():
        for run in (relu, profiled, relu):
            read.append(run.run_id)
            yield run

    assert run_parts.opening(newest_first(), run_parts.LAYER_PROFILE).run_id == profiled.run_id
    assert read == [relu.run_id, profiled.run_id]


def test_why_a_run_has_no_layer_profile_or_segmentation(fixtures_dir):
    relu = trt_relu_forced_run(fixtures_dir)
    off = dataclasses.replace(
        relu,
        run_id=new_run_id(),
        request={**relu.request, "measure": {**relu.request["measure"], "layer_profile": False}},
    )
    assert run_parts.LAYER_PROFILE.absence(off) == "it was recorded with per-layer profiling off"
    eager = dataclasses.replace(relu, request={**relu.request, "backend": "eager"}, segmentation=None)
    assert run_parts.SEGMENTATION.absence(eager) == "eager runs execute the whole model in PyTorch"


def test_when_no_run_holds_it_the_newest_opens_and_no_run_means_none(fixtures_dir):
    relu = trt_relu_forced_run(fixtures_dir)
    assert run_parts.opening([relu], run_parts.LAYER_PROFILE) == run_parts.Opening(
        relu.run_id, "No stored run has a layer profile: opened the newest run."
    )
    assert run_parts.opening([], run_parts.SEGMENTATION) is None
