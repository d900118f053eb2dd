"""Generative findings in words: the one place a sentence about a generative run is written (the CLI, the page and
the report all read these)."""

from __future__ import annotations

from engine.generative.figures import GenerativeRun
from engine.generative.findings import Finding, findings

MIB = 2**20


def _ms(x: float) -> str:
    return f"{x:.3f} ms" if x < 10 else f"{x:.1f} ms"


def sentence(f: Finding) -> str:
    g = f.figures
    if f.kind == "tokens_equal":
        return f"{f.backend}: greedy tokens equal {g['reference']}'s for all {g['steps']} steps."
    if f.kind == "tokens_differ":
        return (
            f"{f.backend}: greedy tokens differ from {g['reference']}'s at token {g['first_difference']} of "
            f"{g['steps']}; the logits there are {g['rel_error']:.2e} apart (relative L2)."
        )
    if f.kind == "launch_bound":
        after = f"; CUDA graphs take it from {_ms(g['e2e_ms'])} to {_ms(g['graph_ms'])}" if g["graph_ms"] else ""
        return (
            f"{f.backend}: decode is launch-bound: {g['host_share']:.0%} of a step is host "
            f"({_ms(g['e2e_ms'])} end to end, the GPU busy {_ms(g['gpu_ms'])}){after}."
        )
    if f.kind == "graph_gain":
        return (
            f"{f.backend}: a CUDA-graph replay of the decode step at context {g['context']} takes "
            f"{_ms(g['graph_ms'])} against {_ms(g['plain_ms'])} ({g['speedup']:.2f}x)."
        )
    if f.kind == "decode_speedup":
        return (
            f"{f.backend} decode step {g['speedup']:.2f}x {g['against']} at context {g['context']} "
            f"({_ms(g['ms'])} against {_ms(g['against_ms'])})."
        )
    if f.kind == "prefill_speedup":
        return (
            f"{f.backend} time to first token {g['speedup']:.2f}x {g['against']} for a {g['prompt_len']}-token prompt "
            f"({_ms(g['ms'])} against {_ms(g['against_ms'])})."
        )
    if f.kind == "best_batch":
        if g["batch"] is None:
            return (
                f"{f.backend}: no batch keeps a decode step under {_ms(g['budget_ms'])} at context {g['context']} "
                f"(the fastest step takes {_ms(g['smallest_step_ms'])})."
            )
        return (
            f"{f.backend}: best tokens/s under {_ms(g['budget_ms'])} per token: batch {g['batch']} "
            f"({g['tokens_per_s']:.0f} tokens/s, {_ms(g['step_ms'])} a step, context {g['context']})."
        )
    if f.kind == "knee":
        return f"{f.backend}: tokens/s stop growing with the batch past batch {g['batch']} (context {g['context']})."
    if f.kind == "memory":
        fits = ", ".join(f"batch {b} at context {c}" for c, b in sorted(g["largest_batch"].items()))
        return (
            f"Weights {g['weights_bytes'] / MIB:.0f} MiB; the KV cache holds {g['kv_bytes_per_token'] / 1024:.1f} KiB "
            f"per token" + (f"; the largest that fits: {fits}." if fits else ".")
        )
    return f"{f.kind}: {g}"


def verdict(run: GenerativeRun) -> list[str]:
    return [sentence(f) for f in findings(run)]


def summary(run: GenerativeRun) -> str:
    """The CLI's text: the figures of each backend, then the verdict."""
    lines = [f"run {run.run_id}", f"  {run.label} on {run.env.get('device_name')}"]
    for b in run.backends.values():
        t = b.ttft
        lines.append(
            f"  {b.backend}: TTFT {_ms(t.median_ms)} (p10 {_ms(t.p10_ms)}, p90 {_ms(t.p90_ms)}) "
            f"at prompt {b.prefill[0].prompt_len}"
        )
        for p in b.decode:
            graph = f", CUDA graph {_ms(p.graph.median_ms)}" if p.graph else ""
            graph = graph or (f" (no CUDA graph: {p.graph_error})" if p.graph_error else "")
            gpu = f", GPU {_ms(p.spread.gpu_ms)}" if p.spread.gpu_ms is not None else ""
            lines.append(f"    decode step at context {p.context}: {_ms(p.spread.median_ms)}{gpu}{graph}")
        for p in b.batches:
            graph = f" ({p.graph_tokens_per_s:.0f} with CUDA graph)" if p.graph_tokens_per_s else ""
            lines.append(f"    batch {p.batch}: {p.tokens_per_s:.0f} tokens/s{graph}")
        if b.layer_split_ms:
            lines.append("    one decode step: " + ", ".join(f"{k} {_ms(v)}" for k, v in b.layer_split_ms.items()))
    lines.append("  verdict:")
    lines += [f"    - {s}" for s in verdict(run)]
    lines += [f"  warning: {w}" for w in run.warnings]
    return "\n".join(lines)
