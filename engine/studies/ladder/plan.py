"""The precision ladder: fp32, fp16 and each quantization scheme this GPU and flavour allow, for one
model and batch size, and the written verdict from the measured numbers.

A ladder's runs are ordinary stored runs tagged ``ladder:<ladder_id>``. Reading them back gives one
``Rung`` per run (latency band, build + calibration time, engine size, accuracy); ``verdict`` names
the fastest scheme within the user's accuracy tolerance and how much it gains against the fastest
unquantized build (fp16 on any recent GPU), or says that no scheme beats it and why.

A ladder launched from the dashboard runs each step as one job on the queue (``LadderExecution``,
the sweep's group mechanics with the ladder's tag), so a cancelled or half-failed ladder still
shows what it measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine import runner
from engine.capabilities import Capabilities, scheme_options
from engine.errors import ConfigError
from engine.quantization.schemes import SCHEMES
from engine.settings.defaults import QUANT_SCHEMES
from engine.settings.request import RunRequest, validate
from engine.store import RunStore
from engine.studies.group import CancelFn, JobView, StatusFn, SubmitFn, SweepExecution
from engine.studies.record import new_study_id
from engine.studies.sweeps.plan import SweepPlan, SweepPoint

LADDER_TAG = "ladder:"
UNQUANTIZED = ("fp32", "fp16")
DEFAULT_TOLERANCE_REL_L2 = 0.05  # relative L2 error of the output against eager fp32
# every rung measures its accuracy against eager fp32 (the verdict weighs it); no eager baseline per rung:
# the ladder compares builds with one another, and the baseline would time the eager model once per rung
LADDER_MEASURE = {"accuracy": True, "compare_eager": False}


# -- planning ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LadderStep:
    label: str  # "fp16", "int8_weight_only/fp32"
    request: RunRequest


@dataclass(frozen=True)
class LadderPlan:
    ladder_id: str
    base: RunRequest
    steps: tuple[LadderStep, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (scheme, why this GPU / flavour / install cannot run it)

    @property
    def tags(self) -> list[str]:
        return [f"{LADDER_TAG}{self.ladder_id}"]


def step_label(scheme: str, precision: str) -> str:
    return precision if scheme == "none" else f"{scheme}/{precision}"


def new_ladder_id(base: RunRequest) -> str:
    return new_study_id(base.model.source, f"b{base.model.batch_size}")


def ladder_base(raw: dict[str, Any]) -> RunRequest:
    """The request every step starts from, from a form's plain values (validated; ``ConfigError`` names
    the field): the tensorrt backend, with the ladder's measurement settings (``LADDER_MEASURE``)."""
    measure = {**(raw.get("measure") or {}), **LADDER_MEASURE}
    return validate(RunRequest.from_dict({**raw, "backend": "tensorrt", "measure": measure}))


def plan_ladder(
    base: RunRequest,
    caps: Capabilities,
    *,
    base_precision: str | None = None,
    schemes: Sequence[str] | None = None,
    ladder_id: str | None = None,
) -> LadderPlan:
    """fp32, fp16 and each requested scheme (None: all; empty: none) that the capability matrix allows here.

    Quantized steps run their unquantized layers in ``base_precision`` (default: the base request's
    ``quant_base_precision``). Schemes the matrix refuses are listed in ``skipped`` with the reason.
    """
    base = base.with_changes(backend="tensorrt", **{"compile.quantization": "none"})
    precision = base_precision or base.compile.quant_base_precision
    wanted = [s for s in (QUANT_SCHEMES if schemes is None else schemes) if s != "none"]
    for s in wanted:
        if s not in SCHEMES:
            raise ConfigError("ladder.schemes", f"{s!r} is not a scheme; known: {', '.join(QUANT_SCHEMES[1:])}")
    steps = [LadderStep(p, base.with_changes(**{"compile.precision": p})) for p in UNQUANTIZED]
    options = scheme_options(caps)
    skipped = []
    for s in wanted:
        reason = options[s]
        if reason:
            skipped.append((s, reason))
            continue
        request = base.with_changes(
            **{"compile.quantization": s, "compile.quant_base_precision": precision, "compile.precision": precision}
        )
        steps.append(LadderStep(step_label(s, precision), request))
    return LadderPlan(ladder_id or new_ladder_id(base), base, tuple(steps), tuple(skipped))


def plan_problem(plan: LadderPlan, caps: Capabilities) -> ConfigError | None:
    """Why this machine cannot run some step of the plan (``runner.check_request``), or None."""
    for step in plan.steps:
        try:
            runner.check_request(step.request, caps)
        except ConfigError as e:
            if e.field == "backend":  # the eager backend is no way out: every rung is a TensorRT build
                reason = caps.disabled_reason("backend", "tensorrt") or e.message
                return ConfigError(
                    "backend",
                    f"a precision ladder builds TensorRT engines, which this machine "
                    f"cannot do (tensorrt {reason.rstrip('.')}); open a recorded "
                    "ladder below instead",
                )
            return e
    return None


# -- running on the job queue ---------------------------------------------------------------------
@dataclass(frozen=True)
class _LadderRuns(SweepPlan):
    """A ladder plan in the shape ``SweepExecution`` runs: its steps as points, tagged as a ladder."""

    ladder_tags: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def tags(self) -> list[str]:
        return list(self.ladder_tags)


@dataclass(frozen=True)
class StepProgress:
    """One step of a running ladder and what its job is doing."""

    step: LadderStep
    job: JobView
    hint: str = ""  # what to do about a failure, when the queue said

    @property
    def text(self) -> str:
        detail = f" ({self.job.detail})" if self.job.detail and self.job.state == "running" else ""
        return f"{self.step.label}: {self.job.state}{detail}"


class LadderExecution(SweepExecution):
    """A ladder's steps on a job queue: submitted, polled and cancelled together, each finished run
    tagged ``ladder:<id>`` as soon as it is seen (the mechanics of ``SweepExecution``)."""

    def __init__(
        self, plan: LadderPlan, store: RunStore, submit_fn: SubmitFn, status_fn: StatusFn, cancel_fn: CancelFn
    ):
        self.ladder = plan
        self.hints: dict[str, str] = {}

        def status(job_id: str) -> Any:
            job = status_fn(job_id)
            hint = job.get("hint") if isinstance(job, dict) else getattr(job, "hint", "")
            self.hints[job_id] = str(hint or "")
            return job

        runs = _LadderRuns(
            plan.ladder_id,
            plan.base,
            (),
            tuple(SweepPoint(s.request, ()) for s in plan.steps),
            ladder_tags=tuple(plan.tags),
            skipped=plan.skipped,
        )
        super().__init__(runs, store, submit_fn, status, cancel_fn, kind="ladder", labels=[s.label for s in plan.steps])

    def progress(self) -> list[StepProgress]:
        """Every step with its job's state, polled now."""
        return [
            StepProgress(step, ps.view, self.hints.get(ps.job_id or "", ""))
            for step, ps in zip(self.ladder.steps, self.poll(), strict=True)
        ]

    def status_text(self, what: str = "Ladder") -> str:
        return super().status_text(what)
