"""The precision ladder: fp32, fp16 and each quantization scheme this GPU and flavour allow, for one
model and batch size, and the written verdict from the measured numbers.

A ladder's runs are ordinary stored runs tagged ``ladder:<ladder_id>``. Reading them back gives one
``Rung`` per run (latency band, build + calibration time, engine size, accuracy); ``verdict`` names
the fastest scheme within the user's accuracy tolerance and how much it gains against the fastest
unquantized build (fp16 on any recent GPU), or says that no scheme beats it and why.

A ladder launched from the dashboard runs each step as one job on the queue (``LadderExecution``,
the sweep's group mechanics with the ladder's tag), so a cancelled or half-failed ladder still
shows what it measured.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from engine.capabilities import Capabilities, scheme_options
from engine.errors import ConfigError
from engine.judging import END_TO_END, GPU_TIME, METRIC_NAMES, gpu_time_absence
from engine.judging import format_ms as format_figure
from engine.quantization.accuracy import conversion_problem_text
from engine.quantization.schemes import FLAVOUR_NAMES, SCHEMES
from engine.result import DEGENERATE_REFERENCE, QuantizationReport, RunResult
from engine.runner import check_request
from engine.settings.defaults import QUANT_SCHEMES
from engine.settings.request import RunRequest, validate
from engine.store import RunStore
from engine.sweeps import CancelFn, JobView, StatusFn, SubmitFn, SweepExecution, SweepPlan, SweepPoint

LADDER_TAG = "ladder:"
UNQUANTIZED = ("fp32", "fp16")
DEFAULT_TOLERANCE_REL_L2 = 0.05     # relative L2 error of the output against eager fp32
# build stages as the TensorRT backend names them (engine.sweeps.BUILD_STAGES follows the same names)
BUILD_STAGES = ("export_s", "partition_s", "build_s", "compile_s")
# every rung measures its accuracy against eager fp32 (the verdict weighs it); no eager baseline per rung:
# the ladder compares builds with one another, and the baseline would time the eager model once per rung
LADDER_MEASURE = {"accuracy": True, "compare_eager": False}


# -- planning ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LadderStep:
    label: str              # "fp16", "int8_weight_only/fp32"
    request: RunRequest


@dataclass(frozen=True)
class LadderPlan:
    ladder_id: str
    base: RunRequest
    steps: tuple[LadderStep, ...]
    skipped: tuple[tuple[str, str], ...] = ()    # (scheme, why this GPU / flavour / install cannot run it)

    @property
    def tags(self) -> list[str]:
        return [f"{LADDER_TAG}{self.ladder_id}"]


def step_label(scheme: str, precision: str) -> str:
    return precision if scheme == "none" else f"{scheme}/{precision}"


def new_ladder_id(base: RunRequest) -> str:
    model = re.sub(r"[^A-Za-z0-9_.-]+", "_", base.model.source)
    return f"{model}_b{base.model.batch_size}_{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"


def ladder_base(raw: dict[str, Any]) -> RunRequest:
    """The request every step starts from, from a form's plain values (validated; ``ConfigError`` names
    the field): the tensorrt backend, with the ladder's measurement settings (``LADDER_MEASURE``)."""
    measure = {**(raw.get("measure") or {}), **LADDER_MEASURE}
    return validate(RunRequest.from_dict({**raw, "backend": "tensorrt", "measure": measure}))


def plan_ladder(base: RunRequest, caps: Capabilities, *, base_precision: str | None = None,
                schemes: Sequence[str] | None = None, ladder_id: str | None = None) -> LadderPlan:
    """fp32, fp16 and each requested scheme (None: all; empty: none) that the capability matrix allows here.

    Quantized steps run their unquantized layers in ``base_precision`` (default: the base request's
    ``quant_base_precision``). Schemes the matrix refuses are listed in ``skipped`` with the reason.
    """
    base = base.with_changes(backend="tensorrt", **{"compile.quantization": "none"})
    precision = base_precision or base.compile.quant_base_precision
    wanted = [s for s in (QUANT_SCHEMES if schemes is None else schemes) if s != "none"]
    for s in wanted:
        if s not in SCHEMES:
            raise ConfigError("ladder.schemes", f"{s!r} is not a scheme; known: {', '.join(QUANT_SCHEMES[1:])}")
    steps = [LadderStep(p, base.with_changes(**{"compile.precision": p})) for p in UNQUANTIZED]
    options = scheme_options(caps)
    skipped = []
    for s in wanted:
        reason = options[s]
        if reason:
            skipped.append((s, reason))
            continue
        request = base.with_changes(**{"compile.quantization": s, "compile.quant_base_precision": precision,
                                       "compile.precision": precision})
        steps.append(LadderStep(step_label(s, precision), request))
    return LadderPlan(ladder_id or new_ladder_id(base), base, tuple(steps), tuple(skipped))


def plan_problem(plan: LadderPlan, caps: Capabilities) -> ConfigError | None:
    """Why this machine cannot run some step of the plan (``capabilities.check_request``), or None."""
    for step in plan.steps:
        try:
            check_request(step.request, caps)
        except ConfigError as e:
            if e.field == "backend":     # the eager backend is no way out: every rung is a TensorRT build
                reason = caps.disabled_reason("backend", "tensorrt") or e.message
                return ConfigError("backend", f"a precision ladder builds TensorRT engines, which this machine "
                                              f"cannot do (tensorrt {reason.rstrip('.')}); open a recorded "
                                              "ladder below instead")
            return e
    return None


# -- running on the job queue ---------------------------------------------------------------------
@dataclass(frozen=True)
class _LadderRuns(SweepPlan):
    """A ladder plan in the shape ``SweepExecution`` runs: its steps as points, tagged as a ladder."""

    ladder_tags: tuple[str, ...] = ()

    @property
    def tags(self) -> list[str]:
        return list(self.ladder_tags)


@dataclass(frozen=True)
class StepProgress:
    """One step of a running ladder and what its job is doing."""

    step: LadderStep
    job: JobView
    hint: str = ""           # what to do about a failure, when the queue said

    @property
    def text(self) -> str:
        detail = f" ({self.job.detail})" if self.job.detail and self.job.state == "running" else ""
        return f"{self.step.label}: {self.job.state}{detail}"


class LadderExecution(SweepExecution):
    """A ladder's steps on a job queue: submitted, polled and cancelled together, each finished run
    tagged ``ladder:<id>`` as soon as it is seen (the mechanics of ``SweepExecution``)."""

    def __init__(self, plan: LadderPlan, store: RunStore, submit_fn: SubmitFn, status_fn: StatusFn,
                 cancel_fn: CancelFn):
        self.ladder = plan
        self.hints: dict[str, str] = {}

        def status(job_id: str) -> Any:
            job = status_fn(job_id)
            hint = job.get("hint") if isinstance(job, dict) else getattr(job, "hint", "")
            self.hints[job_id] = str(hint or "")
            return job

        runs = _LadderRuns(plan.ladder_id, plan.base, (), tuple(SweepPoint(s.request, ()) for s in plan.steps),
                           ladder_tags=tuple(plan.tags))
        super().__init__(runs, store, submit_fn, status, cancel_fn)

    def progress(self) -> list[StepProgress]:
        """Every step with its job's state, polled now."""
        return [StepProgress(step, ps.view, self.hints.get(ps.job_id or "", ""))
                for step, ps in zip(self.ladder.steps, self.poll(), strict=True)]

    def status_text(self, what: str = "Ladder") -> str:
        return super().status_text(what)


# -- reading runs back ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Rung:
    """One measured step of the ladder."""

    label: str
    scheme: str                       # "none" for the unquantized steps
    precision: str                    # what the unquantized layers (weight-only: all activations) ran in
    runtime: str                      # "tensorrt" | "eager" | "fake_quant" (ModelOpt's simulation in PyTorch)
    median_ms: float
    p10_ms: float
    p90_ms: float
    rel_l2: float | None = None       # output against eager fp32; 0 for the eager fp32 reference itself
    top1_agreement: float | None = None
    build_s: float | None = None
    calibration_s: float | None = None
    engine_bytes: int | None = None
    quantization: QuantizationReport | None = None
    run_id: str = ""
    where: str = ""                   # device and flavour, e.g. "NVIDIA H200, TensorRT-RTX"
    reference_degenerate: bool = False  # the eager fp32 output was ~0: its accuracy figures say nothing
    gpu_ms: float | None = None       # GPU kernel time per inference (None: not measured)
    gpu_low_ms: float | None = None   # fastest / slowest trace window
    gpu_high_ms: float | None = None
    kernels: float | None = None      # kernels per inference
    plan: str | None = None           # engine plan fingerprint: equal -> the same kernels
    gpu_absence: str = ""             # why there is no GPU time (engine.judging.gpu_time_absence)

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
    rel = accuracy.rel_l2 if accuracy else (0.0 if precision == "fp32" and result.request["backend"] == "eager"
                                             else None)
    build = [result.stages_s[s] for s in BUILD_STAGES if s in result.stages_s]
    g = result.gpu_time
    return Rung(label=step_label(scheme, precision), scheme=scheme, precision=precision,
                runtime=result.request["backend"], median_ms=result.latency.median_ms,
                p10_ms=result.latency.p10_ms, p90_ms=result.latency.p90_ms, rel_l2=rel,
                top1_agreement=accuracy.top1_agreement if accuracy else None,
                build_s=sum(build) if build else None, calibration_s=result.stages_s.get("calibration_s"),
                engine_bytes=result.engine_bytes or None, quantization=q, run_id=result.run_id,
                where=_where(result.env),
                reference_degenerate=any(w.startswith(DEGENERATE_REFERENCE) for w in result.warnings),
                gpu_ms=g.median_ms if g else None, gpu_low_ms=g.min_ms if g else None,
                gpu_high_ms=g.max_ms if g else None, kernels=g.kernels_per_inference if g else None,
                plan=result.plan_fingerprint, gpu_absence=gpu_time_absence(result))


def _where(env: dict) -> str:
    flavour = env.get("flavour", "none")
    device = env.get("device_name", "")
    return f"{device}, {FLAVOUR_NAMES[flavour]}" if flavour in ("tensorrt", "tensorrt_rtx") else device


def load_ladder(store: RunStore, ladder_id: str) -> list[Rung]:
    ids = store.runs_with_tag(f"{LADDER_TAG}{ladder_id}")
    if not ids:
        raise ConfigError("ladder", f"no runs are tagged with ladder {ladder_id!r}; run the ladder first")
    return [rung_from_result(store.get(i)) for i in ids]


def ladder_table(rungs: Iterable[Rung]) -> pd.DataFrame:
    """One row per rung, fastest first: what the ladder chart and table show."""
    rows = []
    for r in rungs:
        q = r.quantization
        fq = q.fake_quant_vs_eager if q else None
        conv = q.engine_vs_fake_quant if q else None
        rows.append({
            "label": r.label, "scheme": r.scheme, "precision": r.precision, "runtime": r.runtime,
            "median_ms": r.median_ms, "p10_ms": r.p10_ms, "p90_ms": r.p90_ms, "gpu_ms": r.gpu_ms,
            "gpu_low_ms": r.gpu_low_ms, "gpu_high_ms": r.gpu_high_ms, "kernels": r.kernels, "plan": r.plan,
            "build_s": r.build_s,
            "calibration_s": r.calibration_s, "engine_bytes": r.engine_bytes, "rel_l2": r.rel_l2,
            "top1_agreement": r.top1_agreement,
            "fake_quant_rel_l2": fq.rel_l2 if fq else None,
            "conversion_rel_l2": conv.rel_l2 if conv else None,
            "conversion_problem": r.conversion_problem, "run_id": r.run_id})
    df = pd.DataFrame(rows)
    if not len(df):
        return df
    # fastest first on the figure the verdict judges: GPU time when every rung has it
    by = "gpu_ms" if df["gpu_ms"].notna().all() else "median_ms"
    return df.sort_values(by, kind="stable").reset_index(drop=True)


# -- the verdict ------------------------------------------------------------------------------------
@dataclass
class LadderVerdict:
    headline: str
    lines: list[str] = field(default_factory=list)
    best: Rung | None = None           # fastest scheme within tolerance
    reference: Rung | None = None      # fastest unquantized rung
    speedup: float | None = None       # reference median / best median

    def markdown(self) -> str:
        return "\n".join([f"**{self.headline}**", "", *(f"- {line}" for line in self.lines)])


def within_tolerance(rung: Rung, tolerance_rel_l2: float, min_top1: float | None = None) -> bool:
    if rung.rel_l2 is None or not math.isfinite(rung.rel_l2) or rung.rel_l2 > tolerance_rel_l2 \
            or rung.conversion_problem:
        return False
    return min_top1 is None or rung.top1_agreement is None or rung.top1_agreement >= min_top1


@dataclass(frozen=True)
class _Figure:
    """The figure a ladder is judged on: GPU time when every rung has it (precision and quantization change
    kernels), else end-to-end latency, with the reason."""

    metric: str
    reason: str = ""

    @classmethod
    def of(cls, rungs: Sequence[Rung]) -> _Figure:
        if rungs and all(r.gpu_ms is not None for r in rungs):
            return cls(GPU_TIME)
        reasons = sorted({r.gpu_absence for r in rungs if r.gpu_ms is None and r.gpu_absence})
        return cls(END_TO_END, "; ".join(reasons))

    def ms(self, r: Rung) -> float:
        return r.gpu_ms if self.metric == GPU_TIME and r.gpu_ms is not None else r.median_ms

    def text(self, r: Rung) -> str:
        if self.metric == GPU_TIME:
            return f"GPU time {format_figure(self.ms(r), GPU_TIME)} (end-to-end {fmt_ms(r.median_ms)})"
        return fmt_ms(r.median_ms)

    def short(self, r: Rung) -> str:
        return format_figure(self.ms(r), GPU_TIME) if self.metric == GPU_TIME else fmt_ms(r.median_ms)

    def within_noise(self, a: Rung, b: Rung) -> str:
        """Why the gap between two rungs is no clear difference ("" when it is one)."""
        if a.plan is not None and a.plan == b.plan and a.where == b.where:
            return "the same engine plan: no difference"
        if self.metric == GPU_TIME:
            lo = [r.gpu_low_ms for r in (a, b)]
            hi = [r.gpu_high_ms for r in (a, b)]
            if None in lo or None in hi:
                return ""
            overlap = (a.gpu_low_ms or 0) <= (b.gpu_high_ms or 0) and (b.gpu_low_ms or 0) <= (a.gpu_high_ms or 0)
            return "the GPU-time windows overlap: within noise" if overlap else ""
        overlap = a.p10_ms <= b.p90_ms and b.p10_ms <= a.p90_ms
        return "the p10-p90 bands overlap: within noise" if overlap else ""


def verdict(rungs: Sequence[Rung], *, tolerance_rel_l2: float = DEFAULT_TOLERANCE_REL_L2,
            min_top1: float | None = None, where: str = "") -> LadderVerdict:
    """Fastest scheme within the accuracy tolerance against the fastest unquantized rung, on GPU time when
    every rung has it (else end-to-end latency, saying why).

    ``where`` names the GPU and flavour (or CPU) for the text, e.g. "NVIDIA H200, TensorRT-RTX";
    by default the rungs' own, when they all agree.
    """
    plain = [r for r in rungs if not r.quantized]
    if not plain:
        raise ConfigError("ladder", "the ladder has no fp32 or fp16 run to compare the schemes with")
    fig = _Figure.of(rungs)
    reference = min(plain, key=fig.ms)
    places = {r.where for r in rungs}
    where = where or (places.pop() if len(places) == 1 else "")
    on = f" on {where}" if where else ""
    by = " on GPU time" if fig.metric == GPU_TIME else ""
    tol = f"rel. L2 ≤ {tolerance_rel_l2:g}" + (f", top-1 agreement ≥ {min_top1:.0%}" if min_top1 is not None else "")
    lines = [*_plan_lines(rungs), _reference_line(reference, plain, fig)]
    quantized = sorted((r for r in rungs if r.quantized), key=fig.ms)
    for r in quantized:
        lines.append(_rung_line(r, reference, tolerance_rel_l2, min_top1, fig))
    if any(r.quantization is not None and not r.quantization.calibration_meaningful for r in quantized):
        lines.append("Calibrated on random tensors: accuracy figures are not meaningful for real data.")
    if fig.metric == END_TO_END and fig.reason:
        lines.append(f"Judged on {METRIC_NAMES[END_TO_END]}: GPU time {fig.reason} for some rungs.")
    if not quantized:
        return LadderVerdict(f"No quantization scheme was measured{on}; {reference.label} is the fastest build.",
                             lines, None, reference)
    if any(r.reference_degenerate for r in rungs):
        # NaN/inf or a flagged conversion is wrong whatever the reference: only the others compete on latency
        sound = [r for r in quantized if not r.conversion_problem and (r.rel_l2 is None or math.isfinite(r.rel_l2))]
        if not sound:
            return LadderVerdict(f"Accuracy cannot be judged for this ladder{on} (the reference output is ~0), and "
                                 f"every scheme's engine output is broken: keep {reference.label} "
                                 f"({fig.short(reference)}).", lines, None, reference)
        fastest = min(sound, key=fig.ms)
        ratio = fig.ms(reference) / fig.ms(fastest)
        lines.append("Accuracy cannot be judged: the eager fp32 reference output is ~0 (random weights; "
                     "torchvision's ViT, for one, starts its classification head at zero), so every rel. L2 and "
                     "top-1 figure here is meaningless. Use pretrained weights or your own model file.")
        pace = f"{ratio:.2f}× faster" if ratio >= 1 else f"{1 / ratio:.2f}× slower"
        return LadderVerdict(f"Accuracy cannot be judged for this ladder{on} (the reference output is ~0); by "
                             f"latency alone (schemes with sound output) {fastest.label} takes "
                             f"{fig.short(fastest)} against {reference.label} {fig.short(reference)} "
                             f"({pace}{by}).", lines, None, reference)
    ok = [r for r in quantized if within_tolerance(r, tolerance_rel_l2, min_top1)]
    if not ok:
        return LadderVerdict(f"No scheme stays within the accuracy tolerance ({tol}){on}: keep "
                             f"{reference.label} ({fig.short(reference)}).", lines, None, reference)
    best = ok[0]
    speedup = fig.ms(reference) / fig.ms(best)
    if fig.ms(best) < fig.ms(reference):
        if fig.metric == GPU_TIME or (best.plan is not None and best.plan == reference.plan):
            noise = fig.within_noise(best, reference)
            band = f" ({noise})" if noise else ""
        else:
            band = "" if best.p90_ms < reference.p10_ms else " (the p10-p90 bands overlap: within noise)"
        headline = (f"{best.label} is the fastest within tolerance ({tol}){on}: {fig.short(best)} against "
                    f"{reference.label} {fig.short(reference)}, {speedup:.2f}× faster{by}{band}.")
        return LadderVerdict(headline, lines, best, reference, speedup)
    headline = (f"No scheme beats {reference.label}{on}: the fastest within tolerance, {best.label}, takes "
                f"{fig.short(best)} against {fig.short(reference)} ({1 / speedup:.2f}× slower{by}).")
    why = [w for w in dict.fromkeys(why_not_faster(r, reference) for r in ok) if w]
    return LadderVerdict(headline, [*lines, *(f"Why: {w}" for w in why)], best, reference, speedup)


def _plan_lines(rungs: Sequence[Rung]) -> list[str]:
    """Rungs that built the same engine plan, said before any figure: the same kernels, whatever the scheme."""
    groups: list[list[Rung]] = []
    for r in rungs:
        if r.plan is None:
            continue
        for g in groups:
            if g[0].plan == r.plan and g[0].where == r.where:
                g.append(r)
                break
        else:
            groups.append([r])
    return [f"{' and '.join(r.label for r in g)} built the same engine plan: the same kernels, so any latency gap "
            "between them is noise (the quantization changed nothing TensorRT runs)." for g in groups if len(g) > 1]


def why_not_faster(rung: Rung, reference: Rung | None = None) -> str:
    """The likely reason a quantized rung is no faster than the unquantized one, from what it was."""
    spec = SCHEMES[rung.scheme]
    if reference is not None and rung.plan is not None and rung.plan == reference.plan:
        return (f"{rung.label} built the same engine plan as {reference.label}: TensorRT ran the same kernels, so "
                "the quantization bought nothing here.")
    if rung.runtime != "tensorrt":
        return ("the quantized model ran in PyTorch: ModelOpt's fake quantization simulates "
                f"{spec.weights.upper()} with extra quantize/dequantize ops in {rung.precision} arithmetic, so it "
                "measures the quantization error, never the speed. Compile it with TensorRT on a GPU.")
    if spec.weight_only and rung.precision == "fp32":
        return (f"{spec.label} over fp32 activations: the arithmetic still runs in fp32, only the weights "
                "shrink; compare it over fp16, or with a scheme that quantizes activations.")
    if spec.weight_only:
        return (f"{spec.label} keeps {rung.precision} arithmetic: it pays off where reading weights dominates "
                "(large Linear layers at small batch), not in convolutions or at large batch.")
    return (f"{spec.label} ran slower than the unquantized build: layers the flavour does not quantize run "
            "between Q/DQ pairs with reformatting around them. The Layers page shows each layer's precision.")


def _reference_line(reference: Rung, plain: Sequence[Rung], fig: _Figure | None = None) -> str:
    fig = fig or _Figure(END_TO_END)
    others = [r for r in plain if r is not reference]
    text = f"Reference: {reference.label}, the fastest unquantized build, {fig.text(reference)}"
    if reference.kernels is not None:
        text += f", {reference.kernels:.0f} kernels"
    if others:
        o = min(others, key=fig.ms)
        text += f" ({fig.ms(o) / fig.ms(reference):.2f}× faster than {o.label})"
    return text + "."


def _rung_line(r: Rung, reference: Rung, tolerance: float, min_top1: float | None,
               fig: _Figure | None = None) -> str:
    fig = fig or _Figure(END_TO_END)
    ratio = fig.ms(reference) / fig.ms(r)
    speed = f"{ratio:.2f}× faster" if ratio >= 1 else f"{1 / ratio:.2f}× slower"
    acc = _accuracy_text(r)
    if r.top1_agreement is not None:
        acc += f", top-1 {r.top1_agreement:.0%}"
    extras = []
    if r.calibration_s is not None:
        extras.append(f"calibration {r.calibration_s:.1f} s")
    if r.build_s is not None:
        extras.append(f"build {r.build_s:.1f} s")
    if r.engine_bytes:
        extras.append(f"engine {r.engine_bytes / 2**20:.1f} MiB")
    status = "within tolerance" if within_tolerance(r, tolerance, min_top1) else "outside tolerance"
    noise = fig.within_noise(r, reference)
    text = f"{r.label}: {fig.text(r)} ({speed} than {reference.label}{'; ' + noise if noise else ''}), {acc}, {status}"
    text += f" ({', '.join(extras)})." if extras else "."
    if r.conversion_problem and r.quantization is not None:
        text += " " + conversion_problem_text(r.quantization)
    return text


def _accuracy_text(r: Rung) -> str:
    if r.rel_l2 is not None and math.isfinite(r.rel_l2):
        return f"rel. L2 {r.rel_l2:.3g}"
    q = r.quantization
    if r.rel_l2 is not None or (q is not None and (q.engine_vs_eager or q.fake_quant_vs_eager) is not None):
        # measured, but not a number (a stored NaN / inf reads back as None: JSON has neither)
        return "rel. L2 not finite (the output holds NaN or inf)"
    return "accuracy not measured"


def fmt_ms(v: float) -> str:
    return f"{v:.3f} ms" if v < 10 else f"{v:.1f} ms"


def list_ladders(store: RunStore) -> list[str]:
    """Ladder ids found in the store's run tags, newest first."""
    runs = store.list_runs()
    seen: dict[str, str] = {}
    for r in runs.itertuples():
        for t in str(r.tags).split(","):
            if t.startswith(LADDER_TAG):
                lid = t[len(LADDER_TAG):]
                seen[lid] = max(seen.get(lid, ""), str(r.created_at))
    return sorted(seen, key=lambda lid: seen[lid], reverse=True)
