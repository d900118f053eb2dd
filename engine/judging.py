"""Which measured figure judges a setting, and how steady that figure is.

End-to-end latency at small batch is mostly the host launching work: on the H200 one resnet50 fp16
engine timed 0.601-1.127 ms end to end in nine fresh processes (87% apart) while the GPU kernel time
of the same engine held within 0.13%. So a setting that changes the kernels (optimization_level,
min_block_size, precision, quantization, torch_executed_ops, the batch, the model) is judged on GPU
time, and one that changes the host's work per call (CUDA graphs, the runtime, the frontend, the
backend) on end-to-end latency. ``KNOBS`` is the one table of that choice, one record per setting.
A run without GPU time (a CPU run, or one recorded before GPU time existed) is judged on end-to-end
latency and the verdict says so.

Each figure comes with its own noise: inside one run (``Reading``: the bootstrap interval of the e2e
median; the fastest and slowest trace window of the GPU time) and between fresh processes
(``Drift``: one build timed in separate runs). Two runs that ran the same engine plan on the same GPU
at the same shapes (``same_engine``) did the same work: a gap in a kernel figure between them is noise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from engine.result import RunResult

KERNELS = "kernels"         # the setting changes which kernels run
HOST = "host"               # it changes the host's work per call (launches, runtime), not the kernels
INCIDENTAL = "incidental"   # it changes neither (engine caching, iteration counts, seeds, repeats)

GPU_TIME = "gpu_time"
END_TO_END = "e2e"
METRIC_NAMES = {GPU_TIME: "GPU time", END_TO_END: "end-to-end latency"}
METRIC_SHORT = {GPU_TIME: "GPU", END_TO_END: "e2e"}

NOISE_CONFIDENCE = 0.90
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Knob:
    """One request setting: what verdicts call it and what it changes (hence the figure that judges it)."""

    setting: str        # dotted path in a request: "compile.optimization_level", "model.batch_size"
    name: str           # "optimization_level", "batch"
    changes: str        # KERNELS | HOST | INCIDENTAL

    @property
    def judged_on(self) -> str:
        return END_TO_END if self.changes == HOST else GPU_TIME

    @property
    def matters(self) -> bool:
        """Worth naming as what differs between two runs."""
        return self.changes != INCIDENTAL


KNOBS: tuple[Knob, ...] = (
    Knob("model.source", "model", KERNELS),
    Knob("model.batch_size", "batch", KERNELS),
    Knob("model.input_shape", "input shape", KERNELS),
    Knob("model.sequence_length", "sequence length", KERNELS),
    Knob("model.inputs", "inputs", KERNELS),
    Knob("model.pretrained", "pretrained", KERNELS),
    Knob("backend", "backend", HOST),
    Knob("env.device", "device", HOST),
    Knob("compile.precision", "precision", KERNELS),
    Knob("compile.quantization", "quantization", KERNELS),
    Knob("compile.quant_base_precision", "quant_base_precision", KERNELS),
    Knob("compile.calibration_data", "calibration_data", KERNELS),
    Knob("compile.calibration_batches", "calibration_batches", KERNELS),
    Knob("compile.optimization_level", "optimization_level", KERNELS),
    Knob("compile.min_block_size", "min_block_size", KERNELS),
    Knob("compile.torch_executed_ops", "torch_executed_ops", KERNELS),
    Knob("compile.require_full_compilation", "require_full_compilation", KERNELS),
    Knob("compile.workspace_size", "workspace_size", KERNELS),
    Knob("compile.enable_cudagraphs", "cudagraphs", HOST),
    Knob("compile.use_python_runtime", "runtime", HOST),
    Knob("compile.frontend", "frontend", HOST),
    Knob("compile.cache_built_engines", "cache_built_engines", INCIDENTAL),
    Knob("compile.reuse_cached_engines", "reuse_cached_engines", INCIDENTAL),
    Knob("device", "device (requested)", INCIDENTAL),   # "auto" and "cuda" ran alike; env.device says where
    Knob("measure.seed", "seed", INCIDENTAL),
    Knob("measure.repeat", "repeat", INCIDENTAL),
)
KNOB_BY_SETTING = {k.setting: k for k in KNOBS}


def knob(setting: str) -> Knob:
    """The table's record of a setting; one it lacks: how to measure (``measure.*``) changes nothing measured,
    anything else (a compile knob, the GPU, a version) is taken to change the kernels."""
    found = KNOB_BY_SETTING.get(setting)
    if found is not None:
        return found
    changes = INCIDENTAL if setting.startswith("measure.") else KERNELS
    return Knob(setting, setting.rsplit(".", 1)[-1], changes)


def preferred_metric(settings: Iterable[str]) -> str:
    """End-to-end when any of the settings changes the host's work per call, else GPU time."""
    return END_TO_END if any(knob(s).changes == HOST for s in settings) else GPU_TIME


# -- why a figure is missing ----------------------------------------------------------------------------
def gpu_time_absence(run: RunResult) -> str:
    """Why a run has no GPU time ("" when it has one), in words a page can show after "GPU time: "."""
    if run.gpu_time is not None:
        return ""
    if run.env.get("device") != "cuda":
        return "needs an NVIDIA GPU"
    if not run.latency.timed:
        return "not timed (analyze run)"
    if run.graph_replay is None and run.plan_fingerprint is None:
        return "not measured (recorded before GPU time existed)"
    return "not measured"


# -- one run's figure ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reading:
    """One run's value of a metric per call, with the noise inside that run."""

    metric: str               # GPU_TIME | END_TO_END
    ms: float                 # the median
    low_ms: float | None      # e2e: the median's bootstrap interval; GPU time: fastest and slowest trace window
    high_ms: float | None

    @property
    def half_width_ms(self) -> float | None:
        if self.low_ms is None or self.high_ms is None:
            return None
        return (self.high_ms - self.low_ms) / 2

    @property
    def noise_source(self) -> str:
        return "trace windows" if self.metric == GPU_TIME else "bootstrap CI"


def median_ci_ms(samples_ms: Sequence[float], confidence: float = NOISE_CONFIDENCE,
                 resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Bootstrap confidence interval of the median latency (percentile method, fixed seed)."""
    x = np.asarray(samples_ms, dtype=float)
    if x.size == 0:
        raise ValueError("no latency samples")
    if x.size == 1:
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(x, size=(resamples, x.size), replace=True), axis=1)
    alpha = (1 - confidence) / 2
    return float(np.quantile(medians, alpha)), float(np.quantile(medians, 1 - alpha))


def reading(run: RunResult, metric: str) -> Reading | None:
    """The run's figure for ``metric``; None where it was not measured (no GPU time, an analyze run)."""
    if metric == GPU_TIME:
        g = run.gpu_time
        if g is None or not g.median_ms > 0:
            return None
        return Reading(GPU_TIME, g.median_ms, g.min_ms, g.max_ms)
    if not run.latency.timed:
        return None
    lo = hi = None
    if run.latency_samples_ms:
        lo, hi = median_ci_ms(run.latency_samples_ms)
    return Reading(END_TO_END, run.latency.median_ms, lo, hi)


def value_ms(run: RunResult, metric: str) -> float | None:
    """The run's median of ``metric`` (ms per call), None where not measured."""
    if metric == GPU_TIME:
        return run.gpu_time.median_ms if run.gpu_time is not None and run.gpu_time.median_ms > 0 else None
    return run.latency.median_ms if run.latency.timed else None


@dataclass(frozen=True)
class Judging:
    """The figure that judges a difference between runs, and why, when it is not the one the settings call for."""

    metric: str        # GPU_TIME | END_TO_END
    preferred: str     # what the differing settings call for
    reason: str = ""   # why ``metric`` stands in for ``preferred`` ("" when they agree)

    @property
    def name(self) -> str:
        return METRIC_NAMES[self.metric]

    @property
    def note(self) -> str:
        """"judged on end-to-end latency: GPU time ...", "" when the preferred figure judges."""
        return f"judged on {self.name}: {self.reason}" if self.reason else ""


def choose(settings: Iterable[str], runs: Sequence[RunResult]) -> Judging:
    """The figure that judges ``runs`` differing in ``settings``: GPU time for kernel settings when every run
    has it, else end-to-end latency (with the reason)."""
    preferred = preferred_metric(settings)
    if preferred == END_TO_END:
        return Judging(END_TO_END, END_TO_END)
    timed = [r for r in runs if r.latency.timed]
    missing = [gpu_time_absence(r) for r in timed if r.gpu_time is None]
    if not missing:
        return Judging(GPU_TIME, GPU_TIME)
    reasons = sorted(set(missing))
    which = ("this run" if len(missing) == 1 else "these runs" if len(missing) == len(timed)
             else f"{len(missing)} of these runs")
    return Judging(END_TO_END, GPU_TIME,
                   f"GPU time {'; '.join(reasons)} for {which}, and end-to-end latency swings between fresh "
                   "processes far more than GPU time does")


# -- one engine, run twice -----------------------------------------------------------------------------
def shapes_key(request: dict) -> tuple:
    """The input shapes a run measured at: what a gap between two runs of one engine plan can still come from."""
    m = request.get("model") or {}
    inputs = m.get("inputs")
    shapes: object = None
    if inputs:
        from engine.settings.inputs import measured_shapes, parse_inputs  # noqa: PLC0415 - torch only with inputs

        try:
            shapes = tuple(sorted(measured_shapes(parse_inputs(inputs), m.get("batch_size", 1),
                                                  m.get("sequence_length")).items()))
        except Exception:  # noqa: BLE001 - a stored request the current rules refuse: compare it as written
            shapes = repr(inputs)
    return (m.get("batch_size"), tuple(m.get("input_shape") or ()), m.get("sequence_length"), shapes)


def same_engine(a: RunResult, b: RunResult) -> bool:
    """Both runs recorded the same engine plan (kernels), on the same GPU type, at the same input shapes."""
    return (a.plan_fingerprint is not None and a.plan_fingerprint == b.plan_fingerprint
            and a.env.get("device_name") == b.env.get("device_name")
            and shapes_key(a.request) == shapes_key(b.request))


def plan_groups(runs: Sequence[RunResult]) -> list[list[RunResult]]:
    """Runs grouped by ``same_engine``, in first-seen order; runs without a plan fingerprint stay alone."""
    groups: list[list[RunResult]] = []
    for r in runs:
        for g in groups:
            if same_engine(g[0], r):
                g.append(r)
                break
        else:
            groups.append([r])
    return groups


# -- between fresh processes ---------------------------------------------------------------------------
@dataclass
class Drift:
    """Run-to-run variation of one figure: one build timed in separate runs (fresh processes)."""

    fraction: float                      # (slowest - fastest) / fastest of that build's medians
    runs: list[tuple[str, float]]        # (what the run was, its median ms), fastest first
    metric: str = END_TO_END
    repeats: int = 2                     # runs of that build


def worst_drift(groups: Iterable[Sequence[RunResult]], metric: str,
                describe: Callable[[RunResult], str]) -> Drift | None:
    """The largest relative spread of ``metric`` within any group of runs that timed the same thing."""
    worst: Drift | None = None
    for runs in groups:
        have = sorted(((v, r) for r in runs if (v := value_ms(r, metric)) is not None), key=lambda p: p[0])
        if len(have) < 2 or not have[0][0] > 0:
            continue
        (fast_ms, fast), (slow_ms, slow) = have[0], have[-1]
        fraction = (slow_ms - fast_ms) / fast_ms
        if worst is None or fraction > worst.fraction:
            worst = Drift(fraction, [(describe(fast), fast_ms), (describe(slow), slow_ms)], metric, len(have))
    return worst


def format_ms(v: float, metric: str = END_TO_END) -> str:
    """Milliseconds as verdicts write them: GPU time with the digits its steadiness earns (0.3866 ms)."""
    if metric == GPU_TIME and v < 1:
        return f"{v:.4f} ms"
    return f"{v:.3f} ms" if v < 10 else f"{v:.1f} ms"
