"""What a dynamic-shape engine costs at the shape a run measured: the same settings built as a static
engine at exactly that shape (min = opt = max), found in the store or measured on request.

A dynamic engine (``model.inputs`` with min/opt/max) is tuned for its opt shape and must accept the
whole range, so at any one shape it can be slower than an engine built for that shape alone. That is a
difference in kernels, so it is judged on GPU time when both runs have it (the spread of their trace
windows as the noise), else on end-to-end latency (the p10-p90 bands), saying why.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from engine.result import RunResult
from engine.settings.inputs import InputSpec, measured_shapes, parse_inputs
from engine.settings.request import RunRequest
from engine.store import RunStore
from engine.studies.judging import Judging, choose, same_engine
from engine.studies.statistics import DEVICE_METRICS, GPU_TIME, GRAPH_REPLAY, METRIC_NAMES, reading, value_ms

SCAN_LIMIT = 500  # stored runs of the same model looked through for the static counterpart


def is_dynamic(request: dict[str, Any] | RunRequest) -> bool:
    raw = request.to_dict() if isinstance(request, RunRequest) else request
    inputs = (raw.get("model") or {}).get("inputs")
    return bool(inputs) and any(s.is_dynamic for s in parse_inputs(inputs))


def static_counterpart(result: RunResult) -> RunRequest | None:
    """The run's request with every input fixed at the shape it was measured at; None for a static run."""
    request = RunRequest.from_dict(result.request)
    if not request.model.inputs or not is_dynamic(request):
        return None
    specs = parse_inputs(request.model.inputs)
    shapes = measured_shapes(specs, request.model.batch_size, request.model.sequence_length)
    fixed: list[InputSpec] = [replace(s, shape=shapes[s.name], min_shape=None, max_shape=None) for s in specs]
    return request.with_changes(**{"model.inputs": [s.to_dict() for s in fixed]})


def find_static_counterpart(store: RunStore, result: RunResult) -> RunResult | None:
    """The newest stored run of the static counterpart on the same device (any seed of the measurement)."""
    wanted = static_counterpart(result)
    if wanted is None:
        return None
    target = _comparable(wanted.to_dict())
    runs = store.list_runs(model=wanted.model.source, backend=wanted.backend)
    for run_id in list(runs["run_id"])[:SCAN_LIMIT]:
        if run_id == result.run_id:
            continue
        other = store.get(run_id)
        if other.env.get("device_name") != result.env.get("device_name") or not other.latency.timed:
            continue
        if _comparable(RunRequest.from_dict(other.request).to_dict()) == target:
            return other
    return None


def _comparable(raw: dict[str, Any]) -> dict[str, Any]:
    """A request as compared here: the measurement seed and a repeat's number do not change what is built or timed."""
    out = {**raw, "measure": {k: v for k, v in raw["measure"].items() if k not in ("seed", "repeat")}}
    return out


@dataclass(frozen=True)
class DynamicCost:
    dynamic: RunResult
    static: RunResult

    @property
    def judging(self) -> Judging:
        return choose(["model.inputs"], [self.dynamic, self.static])

    def _ms(self, run: RunResult) -> float:
        return value_ms(run, self.judging.metric) or run.latency.median_ms

    @property
    def overhead_ms(self) -> float:
        return self._ms(self.dynamic) - self._ms(self.static)

    @property
    def overhead_pct(self) -> float:
        return 100.0 * self.overhead_ms / self._ms(self.static)

    @property
    def same_plan(self) -> bool:
        return same_engine(self.dynamic, self.static)

    @property
    def within_noise(self) -> bool:
        """The same engine plan, or the two runs' noise intervals overlap: GPU-time windows (p10-p90 bands for
        end-to-end)."""
        if self.same_plan:
            return True
        if self.judging.metric in DEVICE_METRICS:
            d, s = reading(self.dynamic, self.judging.metric), reading(self.static, self.judging.metric)
            if d and s and None not in (d.low_ms, d.high_ms, s.low_ms, s.high_ms):
                return (d.low_ms or 0) <= (s.high_ms or 0) and (s.low_ms or 0) <= (d.high_ms or 0)
        dl, sl = self.dynamic.latency, self.static.latency
        return dl.p10_ms <= sl.p90_ms and sl.p10_ms <= dl.p90_ms

    def text(self) -> str:
        j = self.judging
        gpu = j.metric in DEVICE_METRICS
        d, s = self._ms(self.dynamic), self._ms(self.static)
        digits = 4 if gpu else 3
        what = f"{METRIC_NAMES[j.metric]}: " if gpu else ""
        head = (
            f"At the measured shape the dynamic engine takes {what}{d:.{digits}f} ms against {s:.{digits}f} ms "
            f"for a static engine built for that shape alone: {self.overhead_ms:+.{digits}f} ms "
            f"({self.overhead_pct:+.0f}%)"
        )
        if gpu:
            head += (
                f" (end-to-end {self.dynamic.latency.median_ms:.3f} ms against {self.static.latency.median_ms:.3f} ms)"
            )
        elif j.reason:
            head += f" ({j.note})"
        if self.same_plan:
            return head + ", but both ran the same engine plan: no cost, the gap is noise."
        if self.within_noise:
            spreads = {GPU_TIME: "GPU-time windows", GRAPH_REPLAY: "replay p10-p90 spreads"}
            spread = spreads.get(j.metric, "p10-p90 spread")
            return head + f", within the {spread} of both: no clear cost."
        if self.overhead_ms > 0:
            return head + ": what accepting the whole range costs here."
        return (
            head + ": the dynamic engine is faster here (its opt shape is close, or the static build chose "
            "other kernels)."
        )
