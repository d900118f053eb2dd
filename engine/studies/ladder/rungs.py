"""A ladder read back from the store: one ``Rung`` per run tagged ``ladder:<id>`` (latency band, CUDA-graph replay,
GPU time, build and calibration time, engine size, accuracy) and the stored ladders; the table the chart and page
show is figure.py's."""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import ConfigError
from engine.quantization.schemes import FLAVOUR_NAMES
from engine.result import DEGENERATE_REFERENCE, QuantizationReport, RunResult
from engine.store import RunNotFound, RunStore
from engine.studies.judging import figure_problem, gpu_time_absence
from engine.studies.ladder.plan import LADDER_TAG, step_label
from engine.studies.record import find_study
from engine.studies.statistics import GPU_TIME, GRAPH_REPLAY


@dataclass(frozen=True)
class Rung:
    """One measured step of the ladder."""

    label: str
    scheme: str  # "none" for the unquantized steps
    precision: str  # what the unquantized layers (weight-only: all activations) ran in
    runtime: str  # "tensorrt" | "eager" | "fake_quant" (ModelOpt's simulation in PyTorch)
    median_ms: float
    p10_ms: float
    p90_ms: float
    rel_l2: float | None = None  # output against eager fp32; 0 for the eager fp32 reference itself
    top1_agreement: float | None = None
    build_s: float | None = None
    calibration_s: float | None = None
    engine_bytes: int | None = None
    quantization: QuantizationReport | None = None
    run_id: str = ""
    where: str = ""  # device and flavour, e.g. "NVIDIA H200, TensorRT-RTX"
    reference_degenerate: bool = False  # the eager fp32 output was ~0: its accuracy figures say nothing
    gpu_ms: float | None = None  # GPU kernel time per inference (None: not measured)
    gpu_low_ms: float | None = None  # fastest / slowest trace window
    gpu_high_ms: float | None = None
    kernels: float | None = None  # kernels per inference
    plan: str | None = None  # engine plan fingerprint: equal -> the same kernels
    gpu_absence: str = ""  # why there is no GPU time (engine.studies.judging.gpu_time_absence)
    flavour: str = ""  # "tensorrt" | "tensorrt_rtx" where it ran ("" unknown): what the ladder's coverage reads
    compute_capability: str = ""
    graph_ms: float | None = None  # CUDA-graph replay median (None: not captured)
    graph_low_ms: float | None = None  # its p10 / p90
    graph_high_ms: float | None = None
    replay_problem: str = "not attempted"  # why the replay cannot judge this rung ("" when it can)
    gpu_problem: str = "not measured"  # why the GPU time cannot (engine.studies.judging.figure_problem)

    @property
    def quantized(self) -> bool:
        return self.scheme != "none"

    @property
    def conversion_problem(self) -> bool:
        return self.quantization is not None and self.quantization.conversion_problem


def rung_from_result(result: RunResult) -> Rung:
    c = result.request["compile"]
    scheme = c.get("quantization", "none")
    precision = c.get("quant_base_precision", "fp16") if scheme != "none" else c["precision"]
    q = result.quantization
    accuracy = result.accuracy
    if q is not None:
        accuracy = q.engine_vs_eager or q.fake_quant_vs_eager
    rel = (
        accuracy.rel_l2 if accuracy else (0.0 if precision == "fp32" and result.request["backend"] == "eager" else None)
    )
    g, gr = result.gpu_time, result.graph_replay
    return Rung(
        label=step_label(scheme, precision),
        scheme=scheme,
        precision=precision,
        runtime=result.request["backend"],
        median_ms=result.latency.median_ms,
        p10_ms=result.latency.p10_ms,
        p90_ms=result.latency.p90_ms,
        rel_l2=rel,
        top1_agreement=accuracy.top1_agreement if accuracy else None,
        build_s=result.build_s,
        calibration_s=result.stages_s.get("calibration_s"),
        engine_bytes=result.engine_bytes or None,
        quantization=q,
        run_id=result.run_id,
        where=_where(result.env),
        reference_degenerate=any(w.startswith(DEGENERATE_REFERENCE) for w in result.warnings),
        gpu_ms=g.median_ms if g else None,
        gpu_low_ms=g.min_ms if g else None,
        gpu_high_ms=g.max_ms if g else None,
        kernels=g.kernels_per_inference if g else None,
        plan=result.plan_fingerprint,
        gpu_absence=gpu_time_absence(result),
        flavour=str(result.env.get("flavour") or ""),
        compute_capability=str(result.env.get("compute_capability") or ""),
        graph_ms=gr.median_ms if gr is not None and gr.captured else None,
        graph_low_ms=gr.p10_ms if gr is not None and gr.captured else None,
        graph_high_ms=gr.p90_ms if gr is not None and gr.captured else None,
        replay_problem=figure_problem(result, GRAPH_REPLAY),
        gpu_problem=figure_problem(result, GPU_TIME),
    )


def _where(env: dict) -> str:
    flavour = env.get("flavour", "none")
    device = env.get("device_name", "")
    return f"{device}, {FLAVOUR_NAMES[flavour]}" if flavour in ("tensorrt", "tensorrt_rtx") else device


def load_ladder(store: RunStore, ladder_id: str) -> list[Rung]:
    """A ladder's rungs: its stored record's finished steps, else the runs tagged ``ladder:<id>`` (a bundled
    sample); raises ``ConfigError`` when there are none."""
    study = find_study(store, ladder_id, "ladder")
    ids = (study.run_ids if study is not None else []) or store.runs_with_tag(f"{LADDER_TAG}{ladder_id}")
    rungs = []
    for run_id in ids:
        try:
            rungs.append(rung_from_result(store.get(run_id)))
        except RunNotFound:  # deleted since
            continue
    if not rungs:
        raise ConfigError("ladder", f"no runs are tagged with ladder {ladder_id!r}; run the ladder first")
    return rungs


def list_ladders(store: RunStore) -> list[str]:
    """Ladder ids found in the store's run tags, newest first."""
    runs = store.list_runs()
    seen: dict[str, str] = {}
    for r in runs.itertuples():
        for t in str(r.tags).split(","):
            if t.startswith(LADDER_TAG):
                lid = t[len(LADDER_TAG) :]
                seen[lid] = max(seen.get(lid, ""), str(r.created_at))
    return sorted(seen, key=lambda lid: seen[lid], reverse=True)
