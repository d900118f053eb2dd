"""One localisation as data: the build to fix, the pass criterion, its steps with their figures, the search state
and the PyTorch-side error growth, all JSON-ready (``to_dict``/``from_dict``), plus the result in one sentence
(its tables are ``tables``).

A localisation's runs are ordinary stored runs tagged ``localise:<id>`` (the sweeps' convention); its steps
keep their figures too, so a bundled localisation reads without its runs. Roles of the steps:

- ``unfixed``: the build as asked (nothing kept): it must fail the criterion for a search to start;
- ``reference``: the same model with no low precision to fix: fp16 for a quantized build (the precision kept
  modules fall back to), fp32 for an fp16/bf16 cast;
- ``search``: a keep set the bisection asked for, measured lightly (no per-layer profile, no baselines);
- ``confirm``: a keep set that may be the answer, measured like the unfixed build so their latencies compare.

A search or confirm build whose job fails (compile error, CUDA fault, out of memory) is ``crashed``: it counts as
not passing and the search goes on; the unfixed or reference build failing ends the study (``FAILED``). How the
steps read in sentences is ``reading``.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from engine.quantization.schemes import SCHEMES
from engine.settings.request import RunRequest
from engine.studies.ladder.verdict import within_tolerance
from engine.studies.localisation import reading, tables
from engine.studies.localisation.bisect import FOUND, UNFIXABLE, Bisection, default_max_builds
from engine.studies.localisation.error_table import ErrorGrowth, range_text
from engine.studies.localisation.figures import Criterion, StepFigures

LOCALISE_TAG = "localise:"
# search builds only need the accuracy: the confirming ones keep the base request's measurement
SEARCH_MEASURE = {"layer_profile": False, "compare_eager": False, "compare_inductor": "off", "accuracy": True}
RUNNING, DONE, CANCELLED, FAILED = "running", "done", "cancelled", "failed"
NOTHING_TO_FIX = "nothing_to_fix"
REFERENCE_FAILS = "reference_fails"
ACTIVE_JOB_STATES = ("pending", "queued", "running")


# -- the study ---------------------------------------------------------------------------------------------------
@dataclass
class Step:
    index: int
    role: str  # unfixed | reference | search | confirm
    kept: list[str]
    job_id: str | None = None
    state: str = "pending"  # pending | queued | running | done | failed | cancelled
    detail: str = ""
    run_id: str | None = None
    figures: StepFigures | None = None
    passed: bool | None = None
    why: str = ""  # why it failed the criterion, or the job's error
    cached: bool = False
    crashed: bool = False  # a search/confirm job that failed: counted as not passing, ``why`` holds its error

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_JOB_STATES

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Step:
        d = dict(d)
        if d.get("figures"):
            d["figures"] = StepFigures(**d["figures"])
        return cls(**d)


@dataclass
class Localisation:
    localisation_id: str
    created_at: str
    base: dict[str, Any]  # RunRequest.to_dict() of the build to fix, nothing kept
    candidates: list[str]  # units the search may keep, in execution order
    criterion: Criterion = field(default_factory=Criterion)
    max_builds: int | None = None  # None: bisect.default_max_builds(len(candidates))
    steps: list[Step] = field(default_factory=list)
    search: Bisection | None = None  # None until the unfixed build failed
    status: str = RUNNING
    outcome: str = ""  # bisect outcome, NOTHING_TO_FIX or REFERENCE_FAILS once done
    error_growth: ErrorGrowth | None = None
    source: str = ""  # where it was started from, e.g. "ladder resnet50_b8_h200, fp8/fp16"
    measured_on: str = "engine"  # "engine" (the job queue) | "fake-quantized model" (PyTorch, no engine)
    is_sample: bool = False
    notes: list[str] = field(default_factory=list)

    # -- requests -------------------------------------------------------------------------------------------
    @property
    def request(self) -> RunRequest:
        return RunRequest.from_dict(self.base)

    @property
    def quantized(self) -> bool:
        return self.base["compile"].get("quantization", "none") != "none"

    @property
    def label(self) -> str:
        """The build being fixed: "fp8/fp16", "fp16"."""
        c = self.base["compile"]
        return f"{c['quantization']}/{c['quant_base_precision']}" if self.quantized else c["precision"]

    @property
    def low_name(self) -> str:
        """What breaks, for the sentence: "FP8", "INT8 weight-only", "fp16"."""
        if not self.quantized:
            return self.base["compile"]["precision"]
        return SCHEMES[self.base["compile"]["quantization"]].label.split(" (")[0]

    @property
    def high_precision(self) -> str:
        """What kept modules run in: the base precision of a quantized build, fp32 for a cast."""
        return self.base["compile"]["quant_base_precision"] if self.quantized else "fp32"

    def request_for(self, role: str, kept: list[str] | tuple[str, ...] = ()) -> RunRequest:
        base = self.request
        if role == "reference":
            return base.with_changes(
                **{
                    "compile.quantization": "none",
                    "compile.precision": self.high_precision,
                    "compile.keep_high_precision": (),
                }
            )
        changes: dict[str, Any] = {"compile.keep_high_precision": tuple(kept)}
        if role == "search":
            changes |= {f"measure.{k}": v for k, v in SEARCH_MEASURE.items()}
        return base.with_changes(**changes)

    # -- steps ----------------------------------------------------------------------------------------------
    def step(self, role: str) -> Step | None:
        return next((s for s in self.steps if s.role == role), None)

    @property
    def active_steps(self) -> list[Step]:
        return [s for s in self.steps if s.active]

    @property
    def builds(self) -> int:
        """Engine builds the search used, crashed ones included (the unfixed and reference builds not counted)."""
        return sum(1 for s in self.steps if s.role in ("search", "confirm") and (s.state == "done" or s.crashed))

    @property
    def budget(self) -> int:
        return self.max_builds or default_max_builds(len(self.candidates))

    @property
    def answer(self) -> list[str] | None:
        if self.search is None or self.search.answer is None:
            return None
        return list(self.search.answer)

    @property
    def fix_step(self) -> Step | None:
        """The passing build of the answer (the confirming one when there are two)."""
        answer = self.answer
        if answer is None:
            return None
        hits = [s for s in self.steps if s.kept == answer and s.passed]
        return next((s for s in reversed(hits) if s.role == "confirm"), hits[-1] if hits else None)

    @property
    def fraction(self) -> float:
        """How far along: finished builds against the most this study can take (references included)."""
        finished = sum(1 for s in self.steps if not s.active)
        if self.status != RUNNING:
            return 1.0
        return min(finished / (2 + self.budget), 0.99)

    # -- text ---------------------------------------------------------------------------------------------------
    def progress_text(self) -> str:
        """E.g. "Localisation <id>: 4 of at most 14 builds · step 6 running (build 40%)"."""
        active = self.active_steps
        now = "; ".join(
            f"step {s.index + 1} ({s.role}, {len(s.kept)} kept) {s.state}"
            + (f" ({s.detail})" if s.detail and s.state == "running" else "")
            for s in active
        )
        text = f"Localisation {self.localisation_id}: {self.builds} of at most {self.budget} search builds"
        if self.status != RUNNING:
            return f"{text} · {self.status}"
        return f"{text} · {now or 'starting'}"

    def summary(self) -> str:
        """The result in a sentence or three, from the measured figures; crashed builds named at the end."""
        text = self._result()
        crashed = reading.crashed_sentence(self)
        return f"{text} {crashed}" if crashed else text

    def _result(self) -> str:
        unfixed, reference = self.step("unfixed"), self.step("reference")
        if self.status == CANCELLED:
            return f"Cancelled after {self.builds} search builds." + self._best_so_far()
        if self.status == FAILED:
            return reading.stopped_text(self)
        if self.status == RUNNING:
            return f"Running: {self.progress_text()}."
        uf = unfixed.figures if unfixed else None
        if self.outcome == NOTHING_TO_FIX and uf is not None:
            return (
                f"The {self.label} build is already within tolerance ({uf.accuracy_text()}; "
                f"{self.criterion.text()}): nothing to localise."
            )
        if self.outcome == REFERENCE_FAILS and reference is not None and reference.figures is not None:
            return (
                f"The {self.high_precision} build itself fails the criterion ({reference.why}): keeping modules "
                f"in {self.high_precision} cannot bring {self.label} within it; loosen the tolerance."
            )
        n = len(self.candidates)
        if self.outcome == UNFIXABLE and self.steps[-1].crashed:
            return (
                f"The build keeping all {n} candidate modules in {self.high_precision} crashed "
                f"({reading.crash_label(self.steps[-1].why)}): the search cannot tell whether keeping them fixes "
                f"{self.label}; rerun the localisation, or profile that build alone to see the error."
            )
        if self.outcome == UNFIXABLE:
            return (
                f"Keeping all {n} candidate modules in {self.high_precision} still fails ({self._last_why()}): "
                f"what breaks {self.label} is not the precision of those modules."
            )
        fix = self.fix_step
        if fix is None or fix.figures is None:
            alone = reading.alone_reading(self)
            return (f"{alone}. " if alone else "") + (
                f"No build within the {self.budget} allowed passed the criterion ({self.criterion.text()})."
            )
        kept = fix.kept
        modules = f"{len(kept)} module{'s' if len(kept) != 1 else ''}" + (
            " (every candidate)" if len(kept) == n else ""
        )
        if self.outcome == FOUND and (lead := reading.quantization_lead(self)):
            text = f"{lead} Keeping {modules} in {self.high_precision} gives {fix.figures.accuracy_text()}"
        elif self.outcome == FOUND:
            text = (
                f"{self.low_name} breaks at {self.breaks_at()}; keeping {modules} in {self.high_precision} "
                f"gives {fix.figures.accuracy_text()}"
            )
        elif alone := reading.alone_reading(self):
            text = (
                f"{alone}. Within {self.budget} builds the smallest passing set keeps {modules} of {n} in "
                f"{self.high_precision} and gives {fix.figures.accuracy_text()}"
            )
        else:
            text = (
                f"No small set found within {self.budget} builds: the smallest passing set seen keeps {modules} "
                f"in {self.high_precision} and gives {fix.figures.accuracy_text()}"
            )
        drop = reading.top1_drop_text(self, fix)
        return text + self._latency_text(fix, reference, unfixed) + "." + (f" {drop}" if drop else "")

    def breaks_at(self) -> str:
        """The first culprit, with its activation against the format's range when the PyTorch side has it."""
        answer = self.answer or []
        if not answer:
            return "?"
        first = answer[0]
        row = self.error_growth.unit(first) if self.error_growth is not None else None
        return f"{first} ({range_text(row)})" if row is not None else first

    def _latency_text(self, fix: Step, reference: Step | None, unfixed: Step | None) -> str:
        steps = [s for s in (fix, reference, unfixed) if s is not None and s.figures is not None]
        figs = [s.figures for s in steps if s.figures is not None]
        gpu = all(f.gpu_ms is not None for f in figs)
        source = "GPU kernel time" if gpu else "end-to-end medians"

        def ms(s: Step | None) -> str | None:
            if s is None or s.figures is None:
                return None
            v = s.figures.gpu_ms if gpu else s.figures.e2e_ms
            return None if v is None else f"{v:.3g} ms"

        if ms(fix) is None:
            return ""
        parts = [f" at {ms(fix)}"]
        if ms(reference) is not None:
            parts.append(f" vs {self.high_precision} {ms(reference)}")
        if ms(unfixed) is not None and unfixed is not None and unfixed.figures is not None:
            parts.append(f" and the unfixed build {ms(unfixed)} ({unfixed.figures.accuracy_text()})")
        return "".join(parts) + f" — {source}, on the {fix.figures.measured_on if fix.figures else 'engine'}"

    def _last_why(self) -> str:
        last = next((s for s in reversed(self.steps) if s.role in ("search", "confirm") and s.why), None)
        if last is None:
            return "see the steps"
        return f"crashed: {reading.crash_label(last.why)}" if last.crashed else last.why

    def _best_so_far(self) -> str:
        if self.search is None or self.search.best is None:
            return ""
        return f" The smallest passing set so far keeps {len(self.search.best)} modules."

    def fake_quant_note(self) -> str:
        """Said when the fake-quantized model alone is already beyond the tolerance: then the search has to undo
        quantization error itself, not only a conversion problem."""
        unfixed = self.step("unfixed")
        fq = unfixed.figures.fake_quant_rel_l2 if unfixed and unfixed.figures else None
        if fq is not None and fq > self.criterion.tolerance_rel_l2:
            return (
                f"The fake-quantized model itself departs from eager fp32 by rel. L2 {fq:.3g}, beyond the "
                f"tolerance {self.criterion.tolerance_rel_l2:g}: the search has to undo quantization error too, "
                "not only the conversion, and may keep many modules. A tolerance above it looks for the "
                "conversion problem alone."
            )
        return ""

    # -- tables (engine/studies/localisation/tables.py) ------------------------------------------------------
    def steps_table(self) -> pd.DataFrame:
        """One row per step, in order: what was kept, whether it passed and what it measured."""
        return tables.steps_table(self)

    def comparison_table(self) -> pd.DataFrame:
        """The unfixed build, the reference and the fix side by side (labelled top-1 where the folder had labels)."""
        return tables.comparison_table(self)

    # -- JSON ------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("search", "error_growth", "criterion", "steps")}
        d["criterion"] = asdict(self.criterion)
        d["steps"] = [asdict(s) for s in self.steps]
        d["search"] = self.search.to_dict() if self.search is not None else None
        d["error_growth"] = self.error_growth.to_dict() if self.error_growth is not None else None
        return _json_ready(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Localisation:
        d = dict(d)
        d["criterion"] = Criterion(**d.get("criterion", {}))
        d["steps"] = [Step.from_dict(s) for s in d.get("steps", [])]
        d["search"] = Bisection.from_dict(d["search"]) if d.get("search") else None
        d["error_growth"] = ErrorGrowth.from_dict(d["error_growth"]) if d.get("error_growth") else None
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def _json_ready(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def broken_rungs(rungs: list[Any], tolerance_rel_l2: float) -> list[tuple[Any, str]]:
    """The precision-ladder rungs (``engine.studies.ladder.Rung``) worth localising, with why: a lower precision than
    fp32 that is outside the tolerance, holds NaN/inf or was flagged as a conversion problem."""
    out = []
    for r in rungs:
        if r.runtime != "tensorrt" or (not r.quantized and r.precision == "fp32") or not r.run_id:
            continue
        if within_tolerance(r, tolerance_rel_l2):
            continue
        if r.rel_l2 is None or not math.isfinite(r.rel_l2):
            why = "output not finite (NaN or inf)"
        elif r.conversion_problem:
            why = "the engine departs from the fake-quantized model"
        else:
            why = f"rel. L2 {r.rel_l2:.3g} > {tolerance_rel_l2:g}"
        out.append((r, why))
    return out


def new_localisation_id(request: RunRequest) -> str:
    c = request.compile
    label = f"{c.quantization}_{c.quant_base_precision}" if c.quantization != "none" else c.precision
    model = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.model.source)
    return f"{model}_b{request.model.batch_size}_{label}_{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
