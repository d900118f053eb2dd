"""What a generative run's figures say, as structured findings (kind + figures); engine/generative/words.py turns
them into sentences. Tests assert on these, not on wording.

Kinds:
- ``tokens_equal`` / ``tokens_differ``: a backend's greedy tokens against eager's;
- ``launch_bound``: the host's share of a decode step (end to end less the GPU figure) is at least
  ``LAUNCH_BOUND_SHARE``; ``graph_ms`` says what a CUDA-graph replay took it to when measured;
- ``graph_gain``: the decode step plain against replayed as a CUDA graph;
- ``decode_speedup`` / ``prefill_speedup``: the run's backend against each other backend measured in the same call,
  at the longest context / the first prompt;
- ``best_batch``: the batch with the most tokens/s whose step stays under the latency budget (``batch`` None: none
  does); ``knee``: the batch after which doubling the batch stops paying (tokens/s grow less than
  ``KNEE_EFFICIENCY`` of the batch's growth);
- ``memory``: the weights, cache bytes per token and the largest batch that fits at each context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.generative.figures import BackendFigures, DecodePoint, GenerativeRun

LAUNCH_BOUND_SHARE = 0.5
KNEE_EFFICIENCY = 0.5


@dataclass(frozen=True)
class Finding:
    kind: str
    backend: str = ""
    figures: dict[str, Any] = field(default_factory=dict)


def step_ms(point: DecodePoint) -> float:
    """The step's latency as served: the CUDA-graph replay when it was measured, else the plain call."""
    return point.graph.median_ms if point.graph is not None else point.spread.median_ms


def _tokens(run: GenerativeRun) -> list[Finding]:
    out = []
    for c in run.checks:
        figs = {"reference": c.reference, "steps": c.steps, "rel_error": c.logits_rel_error}
        if c.equal:
            out.append(Finding("tokens_equal", c.backend, figs))
        else:
            out.append(Finding("tokens_differ", c.backend, figs | {"first_difference": c.first_difference}))
    return out


def _host(b: BackendFigures) -> list[Finding]:
    out = []
    if b.host is not None and b.host.host_share >= LAUNCH_BOUND_SHARE:
        out.append(
            Finding(
                "launch_bound",
                b.backend,
                {
                    "host_share": b.host.host_share,
                    "e2e_ms": b.host.e2e_ms,
                    "gpu_ms": b.host.gpu_ms,
                    "graph_ms": b.host.graph_ms,
                },
            )
        )
    first = b.decode[0] if b.decode else None
    if first is not None and first.graph is not None:
        out.append(
            Finding(
                "graph_gain",
                b.backend,
                {
                    "context": first.context,
                    "plain_ms": first.spread.median_ms,
                    "graph_ms": first.graph.median_ms,
                    "speedup": first.spread.median_ms / first.graph.median_ms if first.graph.median_ms > 0 else 0.0,
                },
            )
        )
    return out


def _speedups(run: GenerativeRun) -> list[Finding]:
    main = run.backends.get(run.request.backend)
    if main is None or not main.decode:
        return []
    out = []
    for other_name, other in run.backends.items():
        if other_name == main.backend or not other.decode:
            continue
        a, b = main.decode[-1], other.decode[-1]
        out.append(
            Finding(
                "decode_speedup",
                main.backend,
                {
                    "against": other_name,
                    "context": a.context,
                    "ms": step_ms(a),
                    "against_ms": step_ms(b),
                    "speedup": step_ms(b) / step_ms(a) if step_ms(a) > 0 else 0.0,
                },
            )
        )
        pa, pb = main.ttft.median_ms, other.ttft.median_ms
        out.append(
            Finding(
                "prefill_speedup",
                main.backend,
                {
                    "against": other_name,
                    "prompt_len": main.prefill[0].prompt_len,
                    "ms": pa,
                    "against_ms": pb,
                    "speedup": pb / pa if pa > 0 else 0.0,
                },
            )
        )
    return out


def knee_batch(points: list[DecodePoint]) -> int | None:
    """The batch after which growing the batch stops paying (None: it pays to the largest batch measured)."""
    pts = sorted(points, key=lambda p: p.batch)
    for a, b in zip(pts, pts[1:], strict=False):
        tps_a, tps_b = a.batch * 1000.0 / step_ms(a), b.batch * 1000.0 / step_ms(b)
        if tps_b / tps_a < 1.0 + KNEE_EFFICIENCY * (b.batch / a.batch - 1.0):
            return a.batch
    return None


def _batches(run: GenerativeRun, b: BackendFigures) -> list[Finding]:
    if not b.batches:
        return []
    budget = run.request.latency_budget_ms
    within = [p for p in b.batches if step_ms(p) <= budget]
    best = max(within, key=lambda p: p.batch * 1000.0 / step_ms(p), default=None)
    out = [
        Finding(
            "best_batch",
            b.backend,
            {
                "budget_ms": budget,
                "context": b.batches[0].context,
                "batch": None if best is None else best.batch,
                "tokens_per_s": None if best is None else best.batch * 1000.0 / step_ms(best),
                "step_ms": None if best is None else step_ms(best),
                "smallest_step_ms": min(step_ms(p) for p in b.batches),
            },
        )
    ]
    knee = knee_batch(b.batches)
    if knee is not None and len(b.batches) > 2:
        out.append(Finding("knee", b.backend, {"batch": knee, "context": b.batches[0].context}))
    return out


def findings(run: GenerativeRun) -> list[Finding]:
    out = _tokens(run)
    for b in run.backends.values():
        out += _host(b)
    out += _speedups(run)
    main = run.backends.get(run.request.backend)
    if main is not None:
        out += _batches(run, main)
    m = run.memory
    out.append(
        Finding(
            "memory",
            figures={
                "weights_bytes": m.weights_bytes,
                "kv_bytes_per_token": m.kv_bytes_per_token,
                "largest_batch": dict(m.largest_batch),
            },
        )
    )
    return out
