"""What a precision ladder covered: every quantization scheme Torch-TensorRT + ModelOpt offer (INT8 W8A8, INT8
SmoothQuant, INT8 weight-only, FP8, INT4 AWQ, NVFP4), each with what became of it in this ladder, so that "which
approach to integer quantization" is answered completely, not only for the schemes that ran.

A scheme was

- ``tried``: a rung measured it (its run id);
- ``failed``: its step ran and ended with an error (the study record keeps it);
- ``not_run``: its step was planned but has not finished (cancelled, never run, still queued or running);
- ``refused``: the capability matrix (engine/quantization/schemes.py) refuses it where the ladder ran, ``refused_by``
  says who: the TensorRT ``flavour`` (TensorRT-RTX takes no int8 activations), the ``gpu`` generation (NVFP4 needs
  Blackwell), ``torch_tensorrt``'s converter (8-bit Q/DQ only: INT4 AWQ), the ``install`` (no ModelOpt);
- ``not_requested``: it could have run there, the ladder left it out.

Read back from the rungs (the machine they ran on: flavour and compute capability) and, when the ladder has a study
record, the refusals it planned with and the steps that failed. A bundled sample has rungs only: its refusals are
the matrix's for the machine it was recorded on, so a CPU machine reading it gets the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from engine.quantization.schemes import SCHEMES, scheme_refusal
from engine.settings.defaults import QUANT_SCHEMES
from engine.store import RunStore
from engine.studies.ladder.rungs import Rung
from engine.studies.record import find_study

TRIED, FAILED, NOT_RUN, REFUSED, NOT_REQUESTED = "tried", "failed", "not_run", "refused", "not_requested"
STATUSES = (TRIED, FAILED, NOT_RUN, REFUSED, NOT_REQUESTED)
COVERAGE_COLUMNS = ["scheme", "label", "status", "refused_by", "reason", "run_id"]


@dataclass(frozen=True)
class SchemeCoverage:
    scheme: str  # compile.quantization value
    label: str  # "INT8 (W8A8)"
    status: str  # one of STATUSES
    refused_by: str = ""  # schemes.BY_* when refused
    reason: str = ""  # the refusal, the error, or why it did not run
    run_id: str = ""  # the rung that measured it


@dataclass(frozen=True)
class StepOutcomes:
    """What a ladder's study record says beyond its rungs: the refusals it was planned with, by scheme, and the
    steps that did not finish, by scheme, with their state and error."""

    refused: Mapping[str, str]
    unfinished: Mapping[str, tuple[str, str]]  # scheme -> (state, error)


NO_RECORD = StepOutcomes({}, {})


def step_outcomes(store: RunStore, ladder_id: str) -> StepOutcomes:
    """The ladder's study record read for its coverage; ``NO_RECORD`` for a ladder that has none (a sample)."""
    study = find_study(store, ladder_id, "ladder")
    if study is None:
        return NO_RECORD
    refused = {str(s): str(why) for s, why in study.plan.get("skipped") or []}
    unfinished = {}
    for m in study.members:
        if m.state == "done":
            continue
        scheme = ((m.request or {}).get("compile") or {}).get("quantization", "none")
        if scheme != "none":
            unfinished[scheme] = (m.state, m.error)
    return StepOutcomes(refused, unfinished)


def ladder_coverage(rungs: Sequence[Rung], outcomes: StepOutcomes = NO_RECORD) -> tuple[SchemeCoverage, ...]:
    """Every quantization scheme, in the matrix's order, with what became of it in this ladder."""
    tried = {r.scheme: r for r in rungs if r.quantized and r.runtime == "tensorrt"}
    where = next((r for r in rungs if r.runtime == "tensorrt" and r.flavour), None)
    flavour = where.flavour if where else "none"
    cc = where.compute_capability if where else None
    out = []
    for scheme in QUANT_SCHEMES:
        if scheme == "none":
            continue
        label = SCHEMES[scheme].label
        # the matrix for the machine the ladder ran on (ModelOpt assumed: judged is the GPU and the flavour)
        refusal = scheme_refusal(scheme, flavour=flavour, compute_capability=cc or None, modelopt=True)
        if scheme in tried:
            out.append(SchemeCoverage(scheme, label, TRIED, run_id=tried[scheme].run_id))
        elif scheme in outcomes.unfinished:
            state, error = outcomes.unfinished[scheme]
            status = FAILED if state == "failed" else NOT_RUN
            out.append(SchemeCoverage(scheme, label, status, reason=error or state))
        elif scheme in outcomes.refused or refusal is not None:
            by = refusal.by if refusal else ""
            reason = outcomes.refused.get(scheme) or (refusal.reason if refusal else "")
            out.append(SchemeCoverage(scheme, label, REFUSED, by, reason))
        else:
            out.append(SchemeCoverage(scheme, label, NOT_REQUESTED, reason="allowed here; the ladder left it out"))
    return tuple(out)


def coverage_table(coverage: Sequence[SchemeCoverage]) -> pd.DataFrame:
    """One row per scheme, in the matrix's order: what the ladder page and its report show."""
    return pd.DataFrame([{c: getattr(s, c) for c in COVERAGE_COLUMNS} for s in coverage], columns=COVERAGE_COLUMNS)


def coverage_summary(coverage: Sequence[SchemeCoverage]) -> str:
    """``6 quantization schemes: tried fp8, int8_weight_only · refused int8 (flavour), ...``."""
    parts = []
    for status in STATUSES:
        found = [s for s in coverage if s.status == status]
        if found:
            names = ", ".join(f"{s.scheme} ({s.refused_by})" if s.refused_by else s.scheme for s in found)
            parts.append(f"{status.replace('_', ' ')} {names}")
    return f"{len(coverage)} quantization schemes: " + " · ".join(parts)
