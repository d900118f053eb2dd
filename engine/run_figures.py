"""One run's timing figures in words, the same on every page and in the CLI: end-to-end median with its
p10-p90 band, GPU time with its window spread and kernels per inference, CUDA-graph replay (or why the
module was not captured), host overhead (end-to-end minus GPU time) and throughput.

A figure that was not measured says why instead of staying empty: "needs an NVIDIA GPU" on a CPU run,
"not measured (recorded before GPU time existed)" on a GPU run stored before the GPU-time pass.

The same for the parts a page shows on its own: the per-layer profile's figures (Layers) and the segmentation's
(Segmentation), with the min_block_size recommendations in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.compare.metrics import profiling_overhead
from engine.profiling import engine_precision, invariants
from engine.result import RunResult
from engine.studies.judging import gpu_time_absence
from engine.studies.statistics import GPU_TIME, format_ms

E2E = "e2e median"
GPU = "GPU time"
GRAPH = "CUDA-graph replay"
HOST = "Host overhead"
THROUGHPUT = "Throughput"


@dataclass(frozen=True)
class Figure:
    label: str  # what it is: "GPU time"
    value: str  # "0.3866 ms", or why there is none: "needs an NVIDIA GPU"
    detail: str  # its noise and how it was measured
    # the number behind ``value`` in its unit (ms for times, samples/s for throughput, else a count or a ratio),
    # None when not measured
    ms: float | None = None

    @property
    def measured(self) -> bool:
        return self.ms is not None


def _kernels(n: float) -> str:
    return f"{n:.0f}" if abs(n - round(n)) < 0.05 else f"{n:.1f}"


NOISY_BAND = 0.5  # a p10-p90 band wider than half the median: the median of such a run is no figure to act on


@dataclass(frozen=True)
class NoiseWarning:
    """A timed run whose end-to-end spread makes its median unreliable (a loaded machine, clocks, other work)."""

    p10_ms: float
    median_ms: float
    p90_ms: float
    steady_figure: str  # a figure of the same run that holds still ("GPU time"), "" when it has none

    @property
    def band(self) -> float:
        """The p10-p90 band as a share of the median."""
        return (self.p90_ms - self.p10_ms) / self.median_ms

    def text(self) -> str:
        steady = f", or read its {self.steady_figure}, which holds still" if self.steady_figure else ""
        return (
            f"Noisy run: its calls took {_ms(self.p10_ms)} to {_ms(self.p90_ms)} (p10–p90, {self.band:.0%} of the "
            f"{_ms(self.median_ms)} median), so the median is unreliable. Time it again on a quiet machine{steady}."
        )


def noise_warning(run: RunResult) -> NoiseWarning | None:
    """The warning a run's end-to-end median needs, None when its spread is within ``NOISY_BAND``."""
    lat = run.latency
    if not lat.timed or lat.median_ms <= 0 or (lat.p90_ms - lat.p10_ms) / lat.median_ms <= NOISY_BAND:
        return None
    return NoiseWarning(lat.p10_ms, lat.median_ms, lat.p90_ms, GPU if run.gpu_time is not None else "")


def _ms(v: float) -> str:
    """A latency that fits a metric's width with its unit: "0.602 ms", "99.999 ms", "1118 ms" (not "1117.828 …")."""
    return f"{v:.3f} ms" if v < 100 else f"{v:.0f} ms"


def e2e_figure(run: RunResult) -> Figure:
    lat = run.latency
    if not lat.timed:
        return Figure(E2E, "not timed", "An analyze run: the graph was partitioned, nothing was built or timed.")
    return Figure(
        E2E,
        _ms(lat.median_ms),
        f"p10–p90 {lat.p10_ms:.3f}–{lat.p90_ms:.3f} ms · p99 {lat.p99_ms:.3f} ms · {lat.iters} calls "
        f"timed with {lat.timer.replace('_', ' ') or 'a timer'}, profiling off",
        lat.median_ms,
    )


def gpu_figure(run: RunResult) -> Figure:
    g = run.gpu_time
    if g is None:
        return Figure(
            GPU,
            gpu_time_absence(run),
            "Kernel time per inference from a CUDA-activity trace, measured on NVIDIA GPUs in a pass of "
            "its own after end-to-end timing.",
        )
    if g.is_busy:
        work = f", kernel work {format_ms(g.kernel_sum_ms, GPU_TIME)}" if g.kernel_sum_ms is not None else ""
        what = f"busy time: the union of every kernel's interval on every stream{work}, from a CUDA-activity trace"
    else:
        what = (
            "a kernel-duration sum recorded before busy time existed (kernels on parallel streams count twice): "
            "not judged on"
        )
    # the checks every GPU run must pass, as the run's own warnings say them (stored runs: checked now)
    failed = [f.text for f in invariants.check(run) if f.check != invariants.BUSY_MEASURED]
    return Figure(
        GPU,
        format_ms(g.median_ms, GPU_TIME),
        f"window spread {g.spread_pct:.2f}% ({g.windows} windows, {g.iters} inferences) · "
        f"{_kernels(g.kernels_per_inference)} kernels per inference · {what}" + "".join(f" · {t}" for t in failed),
        g.median_ms,
    )


def graph_figure(run: RunResult) -> Figure:
    r = run.graph_replay
    if r is None:
        absent = gpu_time_absence(run)
        value = absent if absent and absent != "not measured" else "not attempted"
        return Figure(
            GRAPH,
            value,
            "The compiled module captured once as a CUDA graph and replayed: latency "
            "without the host launching each kernel.",
        )
    if not r.captured or r.median_ms is None:
        return Figure(GRAPH, "not captured", r.reason or "The module could not be captured as a CUDA graph.")
    band = (
        f"p10–p90 {format_ms(r.p10_ms, GPU_TIME).removesuffix(' ms')}–{format_ms(r.p90_ms, GPU_TIME)} · "
        if r.p10_ms is not None and r.p90_ms is not None
        else ""
    )
    return Figure(
        GRAPH,
        format_ms(r.median_ms, GPU_TIME),
        f"{band}{r.iters} replays: the call captured once and replayed, no per-kernel host launches",
        r.median_ms,
    )


def host_figure(run: RunResult) -> Figure:
    host = run.host_overhead_ms
    if host is None:
        return Figure(
            HOST,
            gpu_time_absence(run) or "not timed",
            "End-to-end median minus GPU time: the host's launch and runtime work per call.",
        )
    share = 100 * host / run.latency.median_ms if run.latency.median_ms > 0 else 0.0
    return Figure(
        HOST,
        format_ms(host, GPU_TIME),
        f"{share:.0f}% of the end-to-end median · end-to-end median − GPU time: the host launching kernels "
        "and running the runtime per call; CUDA graphs remove most of it, a larger batch spreads it over "
        "more samples",
        host,
    )


def throughput_figure(run: RunResult) -> Figure:
    lat = run.latency
    if not lat.timed:
        return Figure(THROUGHPUT, "not timed", "")
    return Figure(
        THROUGHPUT,
        f"{lat.throughput_per_s:,.0f} /s",
        f"batch {lat.batch_size} / end-to-end median",
        lat.throughput_per_s,
    )


def timing_figures(run: RunResult) -> list[Figure]:
    """End-to-end, GPU time, CUDA-graph replay, host overhead, throughput: what Profile and the CLI show."""
    return [e2e_figure(run), gpu_figure(run), graph_figure(run), host_figure(run), throughput_figure(run)]


def timing_lines(run: RunResult) -> list[str]:
    """One line per figure, "GPU time 0.3866 ms (window spread 0.13% ...)", for the CLI summary."""
    return [
        f"{f.label}: {f.value}" + (f"  ({f.detail})" if f.detail and f.measured else "") for f in timing_figures(run)
    ]


def timing_json(run: RunResult) -> dict[str, Any]:
    """The figures as JSON for ``--json``: the numbers (None where not measured) and the text shown for each."""
    figures = timing_figures(run)
    return {
        "e2e_median_ms": figures[0].ms,
        "gpu_time_ms": figures[1].ms,
        "graph_replay_ms": figures[2].ms,
        "host_overhead_ms": figures[3].ms,
        "throughput_per_s": figures[4].ms,
        "shown": {f.label: f.value for f in figures},
    }


def gpu_time_cell(run: RunResult) -> str:
    """The History column: "0.3866 ms (73 kernels)", or why there is none ("needs an NVIDIA GPU")."""
    g = gpu_figure(run)
    if run.gpu_time is None:
        return g.value
    return f"{g.value} ({_kernels(run.gpu_time.kernels_per_inference)} kernels)"


# -- the per-layer profile (Layers) -------------------------------------------------------------------------
LAYERS = "Layers profiled"
PROFILED_SUM = "Sum of per-layer averages"
PROFILED_E2E = "Profiled / e2e"
PROFILED_GPU = "Profiled / GPU time"
ENGINE_PRECISION = "Engine precision"


def layer_profile_figures(run: RunResult) -> list[Figure]:
    """How many layers were profiled and what their averages add up to, against the end-to-end median and the GPU
    time measured with profiling off (profiling synchronises after every layer: the sum ranks layers, it is no
    latency). A figure the run cannot give is left out."""

    overhead = profiling_overhead(run)
    figures = [Figure(LAYERS, f"{len(run.layers):,}", "", float(len(run.layers)))]
    if overhead["profiled_sum_ms"] is not None:
        figures.append(
            Figure(
                PROFILED_SUM,
                f"{overhead['profiled_sum_ms']:.3f} ms",
                "Profiling synchronises after every layer, so this sum is neither the e2e time nor the GPU time.",
                overhead["profiled_sum_ms"],
            )
        )
    if overhead["ratio"] is not None:
        figures.append(
            Figure(
                PROFILED_E2E,
                f"{overhead['ratio']:.2f}×",
                "Above 1: the profiler's own overhead; use layer times to rank layers, not to add them up.",
                overhead["ratio"],
            )
        )
    if overhead["gpu_ratio"] is not None:
        figures.append(
            Figure(
                PROFILED_GPU,
                f"{overhead['gpu_ratio']:.2f}×",
                "The per-layer sum against the kernel time measured with profiling off.",
                overhead["gpu_ratio"],
            )
        )
    figures += [f for f in (engine_precision_figure(run),) if f is not None]
    return figures


def engine_precision_figure(run: RunResult) -> Figure | None:
    """The datatype most of the engine's layers output, with every datatype's share; None when not read."""
    p = run.engine_precision
    if p is None:
        return None
    top, share = next(iter(engine_precision.shares(p).items()))
    verdict = f"the run is labelled {p.expected}" + (": THEY DIFFER" if p.mismatch else "")
    return Figure(
        ENGINE_PRECISION,
        f"{top} {share:.0%}",
        f"{engine_precision.summary(p)} by output datatype (TensorRT's layer information); {verdict}.",
        share,
    )


# -- the segmentation (Segmentation) ------------------------------------------------------------------------
def segmentation_figures(run: RunResult) -> list[Figure]:
    """Operators, those TensorRT supports, the coverage, the engines built and the run's min_block_size (a run
    without a segmentation has none)."""
    seg = run.segmentation
    if seg is None:
        return []
    mbs = run.request["compile"]["min_block_size"]
    return [
        Figure("Operators", f"{seg.total_ops:,}", "", float(seg.total_ops)),
        Figure("Supported", f"{seg.supported_ops:,}", "Operators TensorRT can convert.", float(seg.supported_ops)),
        Figure("Coverage", f"{seg.coverage:.1%}", "Supported operators among all.", seg.coverage),
        Figure("TensorRT engines", f"{seg.engine_count}", "", float(seg.engine_count)),
        Figure("min_block_size", f"{mbs}", "Fewest operators a TensorRT engine may hold in this run.", float(mbs)),
    ]


@dataclass(frozen=True)
class Recommendation:
    text: str  # "**Fewest engines**: min_block_size = 6 → 4 TensorRT engine(s)" (markdown)
    min_block_size: int
    rerun: bool  # False: as many engines as this run builds already, nothing to try


_RECOMMENDATION_KINDS = {
    "minimal": "Fewest engines",
    "moderate": "Moderate segmentation",
    "current": "Equivalent to this run",
}


def recommendations(run: RunResult) -> list[Recommendation]:
    """Torch-TensorRT's min_block_size recommendations for the run's graph, each in words and whether running it
    again would build other engines: one that gives the run's own engine count (a resnet50 already in one engine,
    "min_block_size = 228 → 1 engine") is no recommendation, whatever its min_block_size."""
    seg = run.segmentation
    if seg is None:
        return []
    mbs = run.request["compile"]["min_block_size"]
    return [
        Recommendation(
            f"**{_RECOMMENDATION_KINDS.get(r.kind, r.kind)}**: min_block_size = {r.min_block_size} → "
            f"{r.engines} TensorRT engine(s)",
            r.min_block_size,
            rerun=r.kind != "current" and r.min_block_size != mbs and r.engines != seg.engine_count,
        )
        for r in seg.recommendations
    ]
