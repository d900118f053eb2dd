"""Launch-bound diagnosis: does the device compute for most of an inference, or wait on launches?

End-to-end latency is compared with the time the GPU spends in the model's kernels. When that time is far
below the latency (under ``LAUNCH_BOUND_SHARE`` of it), the rest is host overhead: kernel launches, PyTorch
segments between engines, input and output handling. Then CUDA graphs (one launch for the whole inference)
or a larger batch (the overhead shared by more samples) pay off. Where the run also measured a CUDA-graph
replay of the same module, its latency says how much of that overhead a graph actually removes.

How far the verdict can be trusted depends on where the device time comes from:

- ``kernel_trace``: the GPU-time pass (``RunResult.gpu_time``: kernel durations per inference from a
  CUDA-activity trace, ``engine.profiling.gpu_time``), a measured figure: both verdicts are conclusive,
  and ``host_overhead_ms`` = end-to-end - GPU time.
- ``layer_profile``: the sum of TensorRT's per-layer profile (runs stored before GPU time existed).
  Profiling times each layer on its own and overstates GPU time (the recorded resnet18 engine: layers sum
  to 0.77 ms, against 0.35 ms end to end without profiling), so only "launch-bound" is conclusive from it.
- ``eager_modules``: the eager backend's leaf-module times on CPU (or a GPU run without GPU time).
  Functional calls outside modules (residual adds, attention matmuls) count as overhead here, so it
  overstates overhead; on CPU the "overhead" is Python and dispatcher time, and CUDA graphs do not apply.

Findings are data (``Finding``); ``LaunchDiagnosis.text()`` renders them for people.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from engine.result import RunResult

LAUNCH_BOUND_SHARE = 0.5  # layers account for less than half of end-to-end latency
HOST_OVERHEAD_SHARE = 0.2  # measured host overhead worth naming on a run that is not launch-bound
SOURCES = ("kernel_trace", "layer_profile", "eager_modules")
UPPER_BOUND_SOURCES = ("layer_profile", "eager_modules")  # overstate device time

VERDICTS = ("launch_bound", "not_launch_bound", "inconclusive")


@dataclass(frozen=True)
class Finding:
    kind: str  # launch_bound | not_launch_bound | host_overhead | profile_inflated | graph_replay | graph_breaks
    message: str
    numbers: Mapping[str, float]


@dataclass(frozen=True)
class LaunchDiagnosis:
    verdict: str  # one of VERDICTS
    e2e_ms: float  # median end-to-end latency, profiling off
    layer_ms: float  # time the layers account for, per inference
    source: str  # one of SOURCES
    device: str
    batch_size: int
    cudagraphs: bool
    findings: tuple[Finding, ...]
    suggestions: tuple[str, ...]

    @property
    def layer_share(self) -> float:
        return self.layer_ms / self.e2e_ms if self.e2e_ms > 0 else float("nan")

    @property
    def overhead_ms(self) -> float:
        return max(0.0, self.e2e_ms - self.layer_ms)

    @property
    def launch_bound(self) -> bool:
        return self.verdict == "launch_bound"

    def text(self) -> str:
        lines = [f.message for f in self.findings]
        lines += [f"Suggestion: {s}" for s in self.suggestions]
        return "\n".join(lines)


def diagnose(
    e2e_ms: float,
    layer_ms: float,
    *,
    source: str,
    device: str,
    batch_size: int = 1,
    cudagraphs: bool = False,
    pytorch_segments: int = 0,
    graph_ms: float | None = None,
    threshold: float = LAUNCH_BOUND_SHARE,
) -> LaunchDiagnosis:
    """Compare end-to-end latency with the device time from ``source`` (see the module docstring);
    ``graph_ms``: the latency of the same module replayed as a CUDA graph, when it was measured."""
    if source not in SOURCES:
        raise ValueError(f"source {source!r} is not one of {', '.join(SOURCES)}")
    if e2e_ms <= 0 or layer_ms < 0:
        raise ValueError(f"need a positive end-to-end latency and a layer time, got {e2e_ms} and {layer_ms}")
    share = layer_ms / e2e_ms
    overhead = max(0.0, e2e_ms - layer_ms)
    numbers = {"e2e_ms": e2e_ms, "layer_ms": layer_ms, "layer_share": share, "overhead_ms": overhead}
    what = {
        "kernel_trace": "GPU kernels",
        "layer_profile": "the engine's profiled layers",
        "eager_modules": "the model's modules",
    }[source]
    cuda = device.startswith("cuda")
    findings: list[Finding] = []
    suggestions: list[str] = []
    if share < threshold:
        verdict = "launch_bound"
        bound = "launch/overhead-bound" if cuda else "overhead-bound (Python and dispatch, not compute)"
        findings.append(
            Finding(
                "launch_bound",
                (
                    f"The run is {bound}: {what} account for {layer_ms:.3g} ms "
                    f"of the {e2e_ms:.3g} ms end-to-end latency "
                    f"({share:.0%}); {overhead:.3g} ms per inference goes to launches and runtime overhead."
                ),
                numbers,
            )
        )
        if cuda and not cudagraphs:
            measured = (
                f" (replayed as a graph it took {graph_ms:.3g} ms against {e2e_ms:.3g} ms)"
                if graph_ms is not None
                else ""
            )
            suggestions.append(
                f"Turn on CUDA graphs (compile.enable_cudagraphs): the inference is replayed as one "
                f"graph launch, which removes most of the {overhead:.3g} ms launch overhead"
                f"{measured}."
            )
        elif cuda:
            suggestions.append(
                "CUDA graphs are on and the overhead remains: look at PyTorch segments between "
                "engines and at input/output copies."
            )
        suggestions.append(
            f"Raise the batch size above {batch_size}: the fixed overhead is then shared by more "
            f"samples, so throughput grows faster than latency (see the batch sweep)."
        )
    elif source in UPPER_BOUND_SOURCES and share > 1.0:
        verdict = "inconclusive"
        findings.append(
            Finding(
                "profile_inflated",
                (
                    f"{what.capitalize()} add up to {layer_ms:.3g} ms, "
                    f"more than the {e2e_ms:.3g} ms end-to-end latency "
                    f"({share:.0%}): per-layer timing overstates device time, so it cannot show how much is launch "
                    "overhead. A kernel trace measures it."
                ),
                numbers,
            )
        )
    else:
        verdict = "not_launch_bound"
        caveat = (
            ""
            if source == "kernel_trace"
            else " Per-layer timing overstates device time, so some launch overhead may still hide in it."
        )
        findings.append(
            Finding(
                "not_launch_bound",
                (
                    f"Not launch-bound by this measure: {what} account for {layer_ms:.3g} ms of {e2e_ms:.3g} ms "
                    f"({share:.0%}).{caveat}"
                ),
                numbers,
            )
        )
        if source == "kernel_trace" and cuda and 1.0 - share >= HOST_OVERHEAD_SHARE:
            findings.append(
                Finding(
                    "host_overhead",
                    (
                        f"Still, {overhead:.3g} ms of every inference ({1.0 - share:.0%}) "
                        "is host overhead outside the GPU "
                        "kernels (launches, runtime bookkeeping)."
                    ),
                    numbers,
                )
            )
            if not cudagraphs:
                suggestions.append(
                    "CUDA graphs (compile.enable_cudagraphs) remove most of the host overhead at this batch size."
                )
    if graph_ms is not None and cuda and not cudagraphs:
        saved = e2e_ms - graph_ms
        findings.append(
            Finding(
                "graph_replay",
                (
                    f"Captured once and replayed as a CUDA graph, the same module took "
                    f"{graph_ms:.3g} ms per inference against {e2e_ms:.3g} ms end to end "
                    f"({abs(saved) / e2e_ms:.0%} {'less' if saved >= 0 else 'more'})."
                ),
                {"graph_ms": graph_ms, "e2e_ms": e2e_ms, "saved_ms": saved},
            )
        )
    if pytorch_segments and share < 1.0:
        findings.append(
            Finding(
                "graph_breaks",
                (
                    f"{pytorch_segments} PyTorch segment(s) run between TensorRT engines; each adds launches and a "
                    "hand-over, and part of the overhead is theirs."
                ),
                {"pytorch_segments": float(pytorch_segments)},
            )
        )
    return LaunchDiagnosis(
        verdict, e2e_ms, layer_ms, source, device, batch_size, cudagraphs, tuple(findings), tuple(suggestions)
    )


def diagnose_result(result: RunResult, kernel_ms: float | None = None) -> LaunchDiagnosis | None:
    """The diagnosis of a stored run: its median latency against measured GPU kernel time (``kernel_ms``
    when given, else the run's GPU-time pass), else against its per-layer profile sum. None when the run
    has none of them or was not timed."""
    if not result.latency.timed or result.latency.median_ms <= 0:
        return None
    if kernel_ms is None and result.gpu_time is not None:
        kernel_ms = result.gpu_time.median_ms
    if kernel_ms is not None:
        layer_ms, source = kernel_ms, "kernel_trace"
    elif result.profiled_sum_ms:
        layer_ms = result.profiled_sum_ms
        source = "layer_profile" if result.request.get("backend") == "tensorrt" else "eager_modules"
    else:
        return None
    seg = result.segmentation
    replay = result.graph_replay
    return diagnose(
        result.latency.median_ms,
        layer_ms,
        source=source,
        device=str(result.env.get("device", "")),
        batch_size=result.latency.batch_size,
        cudagraphs=bool(result.request.get("compile", {}).get("enable_cudagraphs", False)),
        pytorch_segments=seg.pytorch_segment_count if seg is not None else 0,
        graph_ms=replay.median_ms if replay is not None and replay.captured else None,
    )
