"""End-to-end latency of one inference call as the result schema (``engine.result``) stores it: its quantiles,
spread and throughput over the timed calls."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass


@dataclass
class LatencyStats:
    """End-to-end latency of one inference call, in milliseconds, over ``iters`` timed runs."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    iters: int
    batch_size: int
    throughput_per_s: float  # samples per second at the median: batch / median
    timer: str = ""  # "cuda_events" | "perf_counter"

    @classmethod
    def from_samples(cls, samples_ms: list[float], batch_size: int, timer: str) -> LatencyStats:
        if not samples_ms:
            raise ValueError("no latency samples")
        s = sorted(samples_ms)
        med = statistics.median(s)
        return cls(
            median_ms=med,
            p10_ms=_quantile(s, 0.10),
            p90_ms=_quantile(s, 0.90),
            p99_ms=_quantile(s, 0.99),
            mean_ms=statistics.fmean(s),
            std_ms=statistics.pstdev(s) if len(s) > 1 else 0.0,
            min_ms=s[0],
            max_ms=s[-1],
            iters=len(s),
            batch_size=batch_size,
            throughput_per_s=batch_size * 1000.0 / med if med > 0 else math.inf,
            timer=timer,
        )

    @classmethod
    def not_timed(cls, batch_size: int) -> LatencyStats:
        """Placeholder for runs that time nothing (analyze / dryrun): ``iters == 0``, every figure 0."""
        return cls(
            median_ms=0.0,
            p10_ms=0.0,
            p90_ms=0.0,
            p99_ms=0.0,
            mean_ms=0.0,
            std_ms=0.0,
            min_ms=0.0,
            max_ms=0.0,
            iters=0,
            batch_size=batch_size,
            throughput_per_s=0.0,
            timer="not_timed",
        )

    @property
    def timed(self) -> bool:
        return self.iters > 0


def _quantile(sorted_samples: list[float], q: float) -> float:
    """Linear-interpolated quantile, the same definition as numpy's default."""
    if len(sorted_samples) == 1:
        return sorted_samples[0]
    pos = q * (len(sorted_samples) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_samples) - 1)
    return sorted_samples[lo] + (sorted_samples[hi] - sorted_samples[lo]) * (pos - lo)
