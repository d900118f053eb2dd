"""What really differs between compared runs, and the figure that judges the difference.

A comparison names the settings that change what is measured (batch, model, precision, the knobs, the
GPU; ``engine.studies.knobs.KNOBS`` says which), most telling first, never incidental ones (engine caching,
iteration counts, "auto" against "cuda"). Runs of different batch sizes are compared per sample (and by
throughput), with the batch named. The judged figure follows the settings: GPU time when they change
kernels and every run has it, end-to-end latency when a host setting (CUDA graphs, runtime, frontend,
backend) differs or GPU time is missing. Runs that ran the same engine plan are said to be the same
engine before any number is compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from engine.compare.settings_table import differing_settings, differing_values, setting_rank, short_labels
from engine.result import RunResult
from engine.studies.judging import Judging, choose, plan_groups
from engine.studies.knobs import HOST, knob
from engine.studies.statistics import DEVICE_METRICS, END_TO_END, METRIC_NAMES, value_ms


@dataclass(frozen=True)
class Basis:
    """How compared runs are judged: the figure, per call or per sample, and the settings that differ."""

    judging: Judging
    per_sample: bool  # batch sizes differ: every figure is divided by the batch
    settings: tuple[str, ...]  # differing settings that matter, most telling first
    incidental: tuple[str, ...]  # differing settings that change nothing measured

    @property
    def metric(self) -> str:
        return self.judging.metric

    @property
    def label(self) -> str:
        """ "GPU time per sample", "end-to-end latency", ..."""
        name = METRIC_NAMES[self.metric]
        return name + (" per sample" if self.per_sample else "")

    @property
    def short(self) -> str:
        """What a card's delta is on: "" for plain end-to-end per call (the card's own figure)."""
        parts = ([METRIC_NAMES[self.metric]] if self.metric in DEVICE_METRICS else []) + (
            ["per sample"] if self.per_sample else []
        )
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
    """ "a and b ran the same engine plan ...: any latency gap between them is noise", per group of two or more.
    Where a host setting differs inside the group (CUDA graphs on/off), the gap is that setting's, not noise."""
    notes = []
    for group in plan_groups([r for r in runs if r.latency.timed]):
        if len(group) < 2:
            continue
        who = " and ".join(names[r.run_id] for r in group)
        host = [s for s in differing_settings(group).index if knob(s).changes == HOST]
        if host:
            notes.append(
                f"{who} ran the same engine plan: what differs is how the host runs it "
                f"({', '.join(knob(s).name for s in host)}), judged on end-to-end latency."
            )
        else:
            notes.append(
                f"{who} ran the same engine plan on the same GPU at the same shapes: the same engine, so "
                "any latency gap between them is noise."
            )
    return notes


def header(runs: Sequence[RunResult], b: Basis, values: Mapping[str, Sequence[str]]) -> str:
    """ "Differs: batch (8 · 1), inputs (dynamic batch 1..32 · static). Judged per sample on end-to-end latency."

    ``values`` maps each differing setting to the runs' values in run order (``compare.differing_settings``)."""
    if not b.settings:
        what = "Only incidental settings differ" if b.incidental else "Nothing differs"
        text = (
            f"{what} ({', '.join(knob(s).name for s in b.incidental)})" if b.incidental else what
        ) + ": these runs measure the same thing, so their differences are run-to-run noise."
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


def comparison_basis(runs: Sequence[RunResult]) -> Basis:
    """How ``runs`` are judged against each other (``basis``)."""
    differ = differing_settings(runs) if len(runs) > 1 else pd.DataFrame()
    return basis(runs, list(differ.index))


def comparison_header(runs: Sequence[RunResult]) -> list[str]:
    """What Compare says before any number: what differs (settings that matter, batch named), the judged
    figure and why, and which runs ran the same engine plan."""
    if len(runs) < 2:
        return []
    b = comparison_basis(runs)
    lines = [header(runs, b, differing_values(runs))]
    return same_engine_notes(runs, short_labels(runs)) + lines
