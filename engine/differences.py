"""What really differs between compared runs, and the figure that judges the difference.

A comparison names the settings that change what is measured (batch, model, precision, the knobs, the
GPU; ``engine.judging.KNOBS`` says which), most telling first, never incidental ones (engine caching,
iteration counts, "auto" against "cuda"). Runs of different batch sizes are compared per sample (and by
throughput), with the batch named. The judged figure follows the settings: GPU time when they change
kernels and every run has it, end-to-end latency when a host setting (CUDA graphs, runtime, frontend,
backend) differs or GPU time is missing. Runs that ran the same engine plan are said to be the same
engine before any number is compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.judging import END_TO_END, GPU_TIME, HOST, Judging, choose, knob, plan_groups, value_ms
from engine.result import RunResult

# most telling first: what was run, at what size, in what precision, with which knobs, where, on what software
_RANK = ("model.source", "model.batch_size", "model.inputs", "model.input_shape", "model.sequence_length",
         "backend", "mode", "compile.precision", "compile.quantization", "compile.quant_base_precision",
         "compile.optimization_level", "compile.min_block_size", "compile.torch_executed_ops",
         "compile.enable_cudagraphs", "compile.use_python_runtime", "compile.frontend", "compile.",
         "env.device", "env.device_name", "env.gpu", "env.", "model.")


def setting_rank(setting: str) -> tuple[int, int, str]:
    """Sort key: settings that matter before incidental ones, then by ``_RANK``."""
    matters = 0 if knob(setting).matters else 1
    rank = next((i for i, g in enumerate(_RANK) if setting == g or (g.endswith(".") and setting.startswith(g))),
                len(_RANK))
    return matters, rank, setting


def inputs_text(request: Mapping[str, Any]) -> str:
    """A run's ``model.inputs`` in words: "static", "dynamic batch 1..32" (the dims that have a range)."""
    raw = (request.get("model") or {}).get("inputs")
    if not raw:
        return "static"
    from engine.settings.inputs import parse_inputs  # noqa: PLC0415 - torch only where inputs are given

    try:
        specs = parse_inputs(raw)
    except Exception:  # noqa: BLE001 - a stored request the current rules refuse: say so instead of failing
        return "custom inputs"
    ranges: dict[str, tuple[int, int]] = {}
    for s in specs:
        for d in s.dynamic_dims():
            ranges.setdefault(s.dim_name(d) or f"{s.name}[{d}]", (s.lower[d], s.upper[d]))
    if not ranges:
        return "static"
    return "dynamic " + ", ".join(f"{name} {lo}..{hi}" for name, (lo, hi) in ranges.items())


@dataclass(frozen=True)
class Basis:
    """How compared runs are judged: the figure, per call or per sample, and the settings that differ."""

    judging: Judging
    per_sample: bool                 # batch sizes differ: every figure is divided by the batch
    settings: tuple[str, ...]        # differing settings that matter, most telling first
    incidental: tuple[str, ...]      # differing settings that change nothing measured

    @property
    def metric(self) -> str:
        return self.judging.metric

    @property
    def label(self) -> str:
        """"GPU time per sample", "end-to-end latency", ..."""
        name = "GPU time" if self.metric == GPU_TIME else "end-to-end latency"
        return name + (" per sample" if self.per_sample else "")

    @property
    def short(self) -> str:
        """What a card's delta is on: "" for plain end-to-end per call (the card's own figure)."""
        parts = (["GPU time"] if self.metric == GPU_TIME else []) + (["per sample"] if self.per_sample else [])
        return " ".join(parts)


def basis(runs: Sequence[RunResult], differing: Sequence[str]) -> Basis:
    """The basis for comparing ``runs`` whose settings ``differing`` (dotted, as in the settings table) differ."""
    ranked = sorted(differing, key=setting_rank)
    matter = tuple(s for s in ranked if knob(s).matters)
    incidental = tuple(s for s in ranked if not knob(s).matters)
    timed = [r for r in runs if r.latency.timed]
    per_sample = len({r.latency.batch_size for r in timed}) > 1
    return Basis(choose(matter, timed), per_sample, matter, incidental)


def judged_ms(run: RunResult, b: Basis) -> float | None:
    """The run's judged figure: GPU time or end-to-end median, per sample when batch sizes differ."""
    v = value_ms(run, b.metric)
    if v is None:
        return None
    return v / run.latency.batch_size if b.per_sample and run.latency.batch_size else v


def same_engine_notes(runs: Sequence[RunResult], names: Mapping[str, str]) -> list[str]:
    """"a and b ran the same engine plan ...: any latency gap between them is noise", per group of two or more.
    Where a host setting differs inside the group (CUDA graphs on/off), the gap is that setting's, not noise."""
    from engine.compare import differing_settings  # noqa: PLC0415 - compare builds its tables from this module

    notes = []
    for group in plan_groups([r for r in runs if r.latency.timed]):
        if len(group) < 2:
            continue
        who = " and ".join(names[r.run_id] for r in group)
        host = [s for s in differing_settings(group).index if knob(s).changes == HOST]
        if host:
            notes.append(f"{who} ran the same engine plan: what differs is how the host runs it "
                         f"({', '.join(knob(s).name for s in host)}), judged on end-to-end latency.")
        else:
            notes.append(f"{who} ran the same engine plan on the same GPU at the same shapes: the same engine, so "
                         "any latency gap between them is noise.")
    return notes


def header(runs: Sequence[RunResult], b: Basis, values: Mapping[str, Sequence[str]]) -> str:
    """"Differs: batch (8 · 1), inputs (dynamic batch 1..32 · static). Judged per sample on end-to-end latency."

    ``values`` maps each differing setting to the runs' values in run order (``compare.differing_settings``)."""
    if not b.settings:
        what = "Only incidental settings differ" if b.incidental else "Nothing differs"
        text = (f"{what} ({', '.join(knob(s).name for s in b.incidental)})" if b.incidental else what) + \
            ": these runs measure the same thing, so their differences are run-to-run noise."
    else:
        shown = [f"{knob(s).name} ({' · '.join(str(v) for v in values[s])})" for s in b.settings]
        text = "Differs: " + ", ".join(shown) + "."
    judged = f" Judged on {b.label}"
    if b.per_sample:
        judged += " (the batch sizes differ: per-call times are not comparable; the speedup is the throughput ratio)"
    if b.judging.reason:
        judged += f": {b.judging.reason}"
    elif b.metric == END_TO_END and b.settings and b.judging.preferred == END_TO_END:
        judged += " (a host setting differs: GPU time cannot show it)"
    return text + judged + "."
