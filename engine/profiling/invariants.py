"""Checks every GPU run's figures must pass, as structured findings (pure: run on stored results too).

What the GPU spent per inference cannot exceed what a synchronised call took, and a CUDA-graph replay (the
same kernels, no host launches) cannot be faster than the GPU was busy:

- ``BUSY_WITHIN_E2E``: GPU time <= end-to-end median per call (+2%);
- ``REPLAY_COVERS_BUSY``: graph replay median >= GPU time (-2%);
- ``WINDOWS_AGREE``: the GPU time's trace windows within 2% of each other;
- ``SETTLED``: the warm-up before the windows reached a steady state (``engine.profiling.steady_state``);
- ``BUSY_MEASURED``: the GPU time is busy time, not a kernel-duration sum stored before busy time existed
  (such a sum counts kernels on parallel streams twice: vit_b_16 INT8 weight-only on the H200 summed 2.744 ms
  against 1.589 ms end to end).

A run with any finding has no GPU time fit to judge on (``gpu_time_fit``); the findings' texts become the run's
warnings (``engine.backends.tensorrt.measure``) and the reasons verdicts give.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.profiling.steady_state import not_steady_text
from engine.result import GpuTime, GraphReplay, RunResult

TOLERANCE = 0.02

BUSY_WITHIN_E2E = "busy_within_e2e"
REPLAY_COVERS_BUSY = "replay_covers_busy"
WINDOWS_AGREE = "windows_agree"
SETTLED = "settled"
BUSY_MEASURED = "busy_measured"


@dataclass(frozen=True)
class Finding:
    """One failed check: which, the measured value against its limit, and the sentence a page shows."""

    check: str  # one of the constants above
    value: float  # GPU time / e2e, GPU time / replay, window spread (fraction), settle gap (fraction), 0
    limit: float
    text: str
    short: str = ""  # the reason in a few words, for a verdict's list of why a figure is not judged


def check_figures(e2e_ms: float | None, gpu: GpuTime | None, replay: GraphReplay | None) -> list[Finding]:
    """The failed checks of one run's figures ([] when all pass, or when there is no GPU time)."""
    if gpu is None or not gpu.median_ms > 0:
        return []
    out = []
    what = "GPU busy time" if gpu.is_busy else "GPU kernel-duration sum"
    if not gpu.is_busy:
        out.append(
            Finding(
                BUSY_MEASURED,
                0.0,
                0.0,
                f"GPU time is a kernel-duration sum ({gpu.median_ms:.4f} ms) recorded before busy time existed: "
                "kernels on parallel streams count twice, so it is not judged on.",
                "a kernel-duration sum recorded before busy time",
            )
        )
    if e2e_ms is not None and e2e_ms > 0 and gpu.median_ms > (1 + TOLERANCE) * e2e_ms:
        out.append(
            Finding(
                BUSY_WITHIN_E2E,
                gpu.median_ms / e2e_ms,
                1 + TOLERANCE,
                f"{what} {gpu.median_ms:.4f} ms exceeds the end-to-end latency {e2e_ms:.4f} ms per call by "
                f"{100 * (gpu.median_ms / e2e_ms - 1):.0f}%: the traced calls were not the timed ones.",
                f"{100 * (gpu.median_ms / e2e_ms - 1):.0f}% above the end-to-end latency",
            )
        )
    replay_ms = replay.median_ms if replay is not None and replay.captured else None
    if replay_ms and gpu.median_ms * (1 - TOLERANCE) > replay_ms:
        out.append(
            Finding(
                REPLAY_COVERS_BUSY,
                gpu.median_ms / replay_ms,
                1 / (1 - TOLERANCE),
                f"{what} {gpu.median_ms:.4f} ms exceeds the CUDA-graph replay {replay_ms:.4f} ms of the "
                f"same kernels by {100 * (gpu.median_ms / replay_ms - 1):.0f}%.",
                f"{100 * (gpu.median_ms / replay_ms - 1):.0f}% above the CUDA-graph replay",
            )
        )
    if gpu.spread_pct > 100 * TOLERANCE:
        out.append(
            Finding(
                WINDOWS_AGREE,
                gpu.spread_pct / 100,
                TOLERANCE,
                f"{what}'s trace windows are {gpu.spread_pct:.0f}% apart ({gpu.min_ms:.4f}-{gpu.max_ms:.4f} ms; "
                f"at most {100 * TOLERANCE:.0f}% is steady).",
                f"trace windows {gpu.spread_pct:.0f}% apart",
            )
        )
    if gpu.settled is False:
        gap = gpu.settle_gap_pct
        out.append(
            Finding(
                SETTLED,
                gap / 100 if gap is not None else 0.0,
                0.0,
                f"GPU time {not_steady_text(gpu.warmup_calls, gap)}.",
                not_steady_text(gpu.warmup_calls, gap),
            )
        )
    return out


def check(run: RunResult) -> list[Finding]:
    """``check_figures`` on a stored or fresh run."""
    return check_figures(run.latency.median_ms if run.latency.timed else None, run.gpu_time, run.graph_replay)


def gpu_time_fit(run: RunResult) -> bool:
    """The run has GPU busy time that passed every check: a figure a verdict may judge on."""
    return run.gpu_time is not None and run.gpu_time.median_ms > 0 and not check(run)
