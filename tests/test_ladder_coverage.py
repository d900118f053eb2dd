"""The quantization answer says what it covered: every scheme with tried / failed / refused (who, why) / left out,
read from the bundled ladder samples (recorded on the H200 with TensorRT-RTX 1.4) on this CPU machine."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from engine.quantization import schemes
from engine.report.document import Paragraph, Table, render
from engine.report.studies import ladder_report
from engine.settings.defaults import QUANT_SCHEMES
from engine.store import RunStore
from engine.studies import ladder
from engine.studies.ladder.coverage import (
    COVERAGE_COLUMNS,
    FAILED,
    NOT_REQUESTED,
    NOT_RUN,
    REFUSED,
    TRIED,
    StepOutcomes,
)

ROOT = Path(__file__).resolve().parent.parent
# what the H200 + TensorRT-RTX ladders recorded: two schemes measured, the four others refused by someone
H200_RTX = {
    "int8": (REFUSED, schemes.BY_FLAVOUR),
    "int8_smoothquant": (REFUSED, schemes.BY_FLAVOUR),
    "int8_weight_only": (TRIED, ""),
    "fp8": (TRIED, ""),
    "int4_awq": (REFUSED, schemes.BY_TORCH_TENSORRT),
    "nvfp4": (REFUSED, schemes.BY_GPU),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> RunStore:
    s = RunStore(tmp_path_factory.mktemp("data"))
    s.import_samples(ROOT / "samples")
    return s


@pytest.mark.parametrize("ladder_id", ["vit_b_16_b8_h200", "resnet50_b8_h200"])
def test_every_scheme_of_a_bundled_ladder_has_a_status_and_reason(store, ladder_id):
    rungs = ladder.load_ladder(store, ladder_id)
    coverage = ladder.ladder_coverage(rungs, ladder.step_outcomes(store, ladder_id))
    assert [c.scheme for c in coverage] == list(QUANT_SCHEMES[1:])
    assert {c.scheme: (c.status, c.refused_by) for c in coverage} == H200_RTX
    by_scheme = {c.scheme: c for c in coverage}
    assert by_scheme["int8"].reason == schemes.RTX_INT8_ACTIVATIONS
    assert by_scheme["int4_awq"].reason == schemes.TORCH_TRT_INT4
    assert "Blackwell" in by_scheme["nvfp4"].reason and "9.0" in by_scheme["nvfp4"].reason
    tried = {r.scheme: r.run_id for r in rungs if r.quantized}
    assert {c.scheme: c.run_id for c in coverage if c.status == TRIED} == tried


def test_the_report_lists_every_scheme_with_its_status(store):
    report = ladder_report(store, "vit_b_16_b8_h200", ladder.DEFAULT_TOLERANCE_REL_L2)
    blocks = [b for section in report.sections for b in section.blocks]
    table = next(b.frame for b in blocks if isinstance(b, Table) and list(b.frame.columns) == COVERAGE_COLUMNS)
    assert dict(zip(table["scheme"], table["status"], strict=True)) == {s: v[0] for s, v in H200_RTX.items()}
    assert any(isinstance(b, Paragraph) and b.text.startswith("6 quantization schemes") for b in blocks)
    html = render(report).decode()
    assert "TensorRT-RTX does not support int8 activation quantization" in html and "int4_awq" in html


def test_the_same_rungs_on_full_tensorrt_hopper_leave_int8_to_the_user():
    """On full TensorRT the int8 schemes are not refused: a ladder that left them out says so, not 'refused'."""
    rungs = [
        ladder.Rung(
            "fp8/fp16",
            "fp8",
            "fp16",
            "tensorrt",
            1.0,
            1.0,
            1.0,
            run_id="r1",
            flavour="tensorrt",
            compute_capability="9.0",
        ),
    ]
    coverage = {c.scheme: c for c in ladder.ladder_coverage(rungs)}
    assert coverage["fp8"].status == TRIED
    assert coverage["int8"].status == NOT_REQUESTED and coverage["int8_smoothquant"].status == NOT_REQUESTED
    assert coverage["int4_awq"].refused_by == schemes.BY_TORCH_TENSORRT
    blackwell = [dataclasses.replace(rungs[0], compute_capability="10.0")]
    assert {c.scheme: c for c in ladder.ladder_coverage(blackwell)}["nvfp4"].status == NOT_REQUESTED


def test_a_recorded_ladder_names_its_failed_and_unfinished_steps():
    rungs = [
        ladder.Rung("fp16", "none", "fp16", "tensorrt", 1.0, 1.0, 1.0, flavour="tensorrt_rtx", compute_capability="9.0")
    ]
    outcomes = StepOutcomes(
        refused={"int8": "recorded refusal"},
        unfinished={"fp8": ("failed", "EnginePrecisionMismatch: ..."), "int8_weight_only": ("cancelled", "")},
    )
    coverage = {c.scheme: c for c in ladder.ladder_coverage(rungs, outcomes)}
    assert (coverage["fp8"].status, coverage["fp8"].reason) == (FAILED, "EnginePrecisionMismatch: ...")
    assert (coverage["int8_weight_only"].status, coverage["int8_weight_only"].reason) == (NOT_RUN, "cancelled")
    assert (coverage["int8"].status, coverage["int8"].reason) == (REFUSED, "recorded refusal")
    assert "failed fp8" in ladder.coverage_summary(tuple(coverage.values()))


def test_the_ladder_tab_shows_every_scheme_with_its_status(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TRTDASH_SAMPLES_DIR", raising=False)
    RunStore(tmp_path / "data").import_samples()
    at = AppTest.from_file(str(ROOT / "pages" / "sweep.py"), default_timeout=600)
    at.session_state["sweeps_tab"] = "Precision ladder"  # only the open tab is computed
    at.run()
    assert not at.exception
    frames = [d.value for d in at.dataframe if list(d.value.columns) == COVERAGE_COLUMNS]
    assert len(frames) == 1
    assert dict(zip(frames[0]["scheme"], frames[0]["status"], strict=True)) == {s: v[0] for s, v in H200_RTX.items()}
    assert any("Quantization schemes covered" in m.value for m in at.markdown)
