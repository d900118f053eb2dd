"""GPU time per inference from a CUDA-activity trace (torch.profiler over CUPTI), in a pass of its own.

End-to-end latency at small batch is mostly host time (launches, runtime bookkeeping) and swings between
fresh processes (87% on the H200 for resnet50 fp16 batch 1); what the GPU spends holds still (0.13%). So every
GPU run also measures:

- ``GpuTime.median_ms``: *busy time* per inference, the union of every kernel's interval on every stream (the
  time the GPU was occupied), median over ``windows`` windows (each its own profiler session of ``n``
  inferences, so the windows' spread can be given), min/max of the windows;
- ``GpuTime.kernel_sum_ms``: *kernel work*, the kernels' durations summed. Kernels that overlap on several
  streams count in full, so it can exceed the busy time and even the end-to-end latency (vit_b_16 INT8
  weight-only on the H200: 2.74 ms summed against 1.59 ms end to end): it feeds the kernel table only;
- ``kernels_per_inference``: kernel launches per inference (memcpy/memset are not kernels and not counted);
- the kernel sequence of one inference (in launch order), which identifies the plan that ran
  (``engine.profiling.fingerprint``), and a per-kernel table (name, calls and time per inference).

Before the measured windows the pass warms up until two consecutive windows agree
(``engine.profiling.steady_state``): TensorRT-RTX specialises kernels at run time, and windows taken before that
settles differed by 25-60% on a dynamic-shape engine.

Order matters: the trace runs AFTER end-to-end timing. On the H200 a plain resnet18 engine timed at 0.31 ms
took 0.73 ms right after the first torch.profiler trace in the same process (later ~0.4 ms; cause not
pinned down): the trace must never precede a host-sensitive timing in the same process.

Parsing works on Chrome-trace events (``prof.export_chrome_trace``), so recorded traces can be tested on CPU.
"""

from __future__ import annotations

import gzip
import json
import math
import statistics
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from engine.profiling import steady_state
from engine.result import BUSY, GpuTime

SOURCE = "cuda_activity"
WINDOWS = 5
# inferences per window: about this much time, within these bounds. The windows of one engine agreed within
# 0.1% on the H200 (resnet18/resnet50 fp16), so short windows suffice; every inference adds ~300 trace events
WINDOW_TARGET_S = 0.02
MIN_PER_WINDOW, MAX_PER_WINDOW = 5, 20
CUPTI_WARMUP_CALLS = 3  # the first profiler session sets CUPTI up: traced and discarded


@dataclass(frozen=True)
class Kernel:
    name: str
    start_us: float
    dur_us: float
    stream: str
    order: float  # launch order: CUPTI correlation id when present, else the start time


@dataclass
class Window:
    """One profiler session: its kernels and how many inferences it covered."""

    inferences: int
    kernels: list[Kernel]

    @property
    def kernel_ms_per_inference(self) -> float:
        return sum(k.dur_us for k in self.kernels) / 1000.0 / self.inferences

    @property
    def busy_ms_per_inference(self) -> float:
        return busy_us(self.kernels) / 1000.0 / self.inferences

    @property
    def sequence(self) -> tuple[str, ...] | None:
        return per_inference_sequence(self.kernels, self.inferences)


@dataclass
class GpuTrace:
    """What the GPU-time pass measured."""

    gpu_time: GpuTime  # busy time per inference; kernel_sum_ms: kernel work
    sequence: tuple[str, ...] | None  # kernel names of one inference in launch order; None if they varied
    kernel_counts: dict[str, float]  # kernel name -> calls per inference
    table: pd.DataFrame  # name, calls_per_inference, ms_per_inference, share
    warnings: list[str] = field(default_factory=list)


def read_events(path: Path) -> list[dict[str, Any]]:
    """The events of a Chrome-trace file (gzipped when its name ends in .gz): ``{"traceEvents": [...]}`` or a
    bare list."""
    raw = Path(path).read_bytes()
    data = json.loads(gzip.decompress(raw) if str(path).endswith(".gz") else raw)
    return data["traceEvents"] if isinstance(data, dict) else data


def kernels_of(events: Iterable[Mapping[str, Any]]) -> list[Kernel]:
    """GPU kernels (Chrome-trace category ``kernel``) in launch order."""
    out = []
    for e in events:
        if e.get("ph") != "X" or str(e.get("cat", "")).lower() != "kernel" or "dur" not in e:
            continue
        args = e.get("args") or {}
        corr = args.get("correlation")
        out.append(
            Kernel(
                name=str(e.get("name", "")),
                start_us=float(e["ts"]),
                dur_us=float(e["dur"]),
                stream=str(args.get("stream", e.get("tid", ""))),
                order=float(corr) if isinstance(corr, (int, float)) else float(e["ts"]),
            )
        )
    out.sort(key=lambda k: (k.order, k.start_us))
    return out


def busy_us(kernels: Sequence[Kernel]) -> float:
    """Time at least one kernel ran (the union of their intervals)."""
    if not kernels:
        return 0.0
    t0 = min(k.start_us for k in kernels)  # trace timestamps are ~1e12 µs: subtract first, keep the ns
    spans = sorted((k.start_us - t0, k.start_us - t0 + k.dur_us) for k in kernels)
    total = 0.0
    if spans:
        start, end = spans[0]
        for s, e in spans[1:]:
            if s > end:
                total += end - start
                start, end = s, e
            else:
                end = max(end, e)
        total += end - start
    return total


def per_inference_sequence(kernels: Sequence[Kernel], inferences: int) -> tuple[str, ...] | None:
    """The kernel names of one inference in launch order, when every inference launched the same sequence."""
    if inferences < 1 or not kernels or len(kernels) % inferences:
        return None
    k = len(kernels) // inferences
    names = [x.name for x in kernels]
    first = tuple(names[:k])
    if any(tuple(names[i * k : (i + 1) * k]) != first for i in range(1, inferences)):
        return None
    return first


def summarize(
    windows: Sequence[Window], source: str = SOURCE, settling: steady_state.Settling | None = None
) -> GpuTrace:
    """The pass's result from its windows (each window one profiler session); ``settling``: how the warm-up
    before them went (None: not checked)."""
    windows = [w for w in windows if w.inferences > 0]
    if not windows:
        raise ValueError("no traced window")
    busy = [w.busy_ms_per_inference for w in windows]
    inferences = sum(w.inferences for w in windows)
    n_kernels = sum(len(w.kernels) for w in windows)
    if n_kernels == 0:
        raise ValueError("the trace holds no GPU kernel (CUDA activity not recorded?)")
    gpu_time = GpuTime(
        median_ms=statistics.median(busy),
        min_ms=min(busy),
        max_ms=max(busy),
        kernels_per_inference=n_kernels / inferences,
        iters=inferences,
        windows=len(windows),
        source=source,
        figure=BUSY,
        kernel_sum_ms=statistics.median(w.kernel_ms_per_inference for w in windows),
        settled=settling.settled if settling is not None else None,
        warmup_calls=settling.calls if settling is not None else 0,
        settle_gap_pct=settling.gap_pct if settling is not None else None,
    )
    sequences = {w.sequence for w in windows}
    sequence = sequences.pop() if len(sequences) == 1 else None
    counts: Counter[str] = Counter()
    times: dict[str, float] = {}
    for w in windows:
        for k in w.kernels:
            counts[k.name] += 1
            times[k.name] = times.get(k.name, 0.0) + k.dur_us
    table = pd.DataFrame(
        [
            {
                "name": n,
                "calls_per_inference": counts[n] / inferences,
                "ms_per_inference": times[n] / 1000.0 / inferences,
            }
            for n in counts
        ]
    )
    table = table.sort_values("ms_per_inference", ascending=False, ignore_index=True)
    total = table["ms_per_inference"].sum()
    table["share"] = table["ms_per_inference"] / total if total > 0 else 0.0
    # the checks on the figure (settled, windows agree, below e2e) are engine.profiling.invariants
    return GpuTrace(gpu_time, sequence, {n: c / inferences for n, c in counts.items()}, table)


def inferences_per_window(e2e_median_ms: float | None) -> int:
    """About ``WINDOW_TARGET_S`` of inferences, bounded: a window of a slow model stays short."""
    if not e2e_median_ms or e2e_median_ms <= 0 or math.isnan(e2e_median_ms):
        return MIN_PER_WINDOW
    return max(MIN_PER_WINDOW, min(MAX_PER_WINDOW, round(WINDOW_TARGET_S * 1000.0 / e2e_median_ms)))


def measure(
    fn: Callable[[], Any], *, per_window: int, windows: int = WINDOWS, keep_trace: Path | None = None
) -> GpuTrace:
    """Trace ``fn`` until two consecutive windows of ``per_window`` calls agree (``steady_state.settle``, after a
    short session CUPTI's set-up happens in, discarded), then ``windows`` measured windows, and summarize them.
    ``keep_trace``: where to copy the first measured window's Chrome trace (a fixture or an artifact)."""
    import torch  # noqa: PLC0415
    from torch.profiler import ProfilerActivity, profile  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="trtdash-gputime-") as tmp, torch.inference_mode():
        count = 0

        def window(n: int) -> tuple[Window, Path]:
            nonlocal count
            count += 1
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(n):
                    fn()
                torch.cuda.synchronize()
            path = Path(tmp) / f"window_{count}.json"
            prof.export_chrome_trace(str(path))
            return Window(n, kernels_of(read_events(path))), path

        window(CUPTI_WARMUP_CALLS)
        settling = steady_state.settle(lambda: window(per_window)[0])
        traced: list[Window] = []
        for w in range(windows):
            traced_window, path = window(per_window)
            traced.append(traced_window)
            if w == 0 and keep_trace is not None:
                keep_trace.write_bytes(path.read_bytes())
    return summarize(traced, settling=settling)
