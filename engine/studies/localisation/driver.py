"""Plan a localisation and advance it: the one code path the page, the CLI and a long-lived supervisor share.

``plan`` builds the model once (CPU by default) to list the candidate units and, optionally, measure the
PyTorch-side error growth. ``advance(study, runner)`` never waits: it polls the steps in flight, feeds finished
ones to the bisection, submits what comes next and returns; call it again later (a page fragment every second,
a supervisor loop, or ``run`` which loops until the study is over). Everything it needs is in the study, so the
caller persists the study (``engine.studies.localisation.records``) and any process can pick it up. A search or
confirm job that fails (compile error, CUDA fault, out of memory) is a crashed build: it counts as not passing and
the search goes on; the unfixed or reference job failing, or a request refused at submit, ends the study.

Step runners:

- ``QueueRunner``: every step a job on the job queue (``JobSystem.submit/get/cancel`` or ``engine.jobs``), a
  real engine build in a fresh process; finished runs are tagged ``localise:<id>``;
- ``PyTorchRunner``: every step the PyTorch model as the build would make it (ModelOpt fake-quantized with the
  kept modules' quantizers off, or cast with the kept modules in fp32), measured in this process on the CPU or
  a GPU. No engine: it localises quantization error, not a conversion problem, and times nothing.
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import torch

from engine.backends import keep_high_precision
from engine.backends.base import ProgressFn, no_progress
from engine.backends.eager import DTYPES
from engine.errors import ConfigError, UserError
from engine.models import registry
from engine.profiling.accuracy import compare_outputs, detached_cpu
from engine.quantization import accuracy, fake_quant
from engine.settings.request import RunRequest
from engine.store import RunStore, utc_now_iso
from engine.studies.group import FINISHED_STATES, JobView, job_view, tag_run
from engine.studies.localisation.bisect import Bisection
from engine.studies.localisation.error_growth import DEFAULT_MAX_SAMPLES, error_growth, variants_for
from engine.studies.localisation.figures import Criterion, StepFigures, figures_from_result
from engine.studies.localisation.study import (
    CANCELLED,
    DONE,
    FAILED,
    LOCALISE_TAG,
    NOTHING_TO_FIX,
    REFERENCE_FAILS,
    RUNNING,
    Localisation,
    Step,
    new_localisation_id,
)

if TYPE_CHECKING:
    from engine.models.entry import BuiltModel


class StepRunner(Protocol):
    measured_on: str

    def submit(self, request: RunRequest) -> tuple[str, bool]:
        """Start a build; returns its handle (a job id) and whether the store answered it at once."""

    def poll(self, handle: str) -> JobView: ...

    def figures(self, handle: str, view: JobView) -> StepFigures: ...

    def cancel(self, handle: str) -> None: ...

    def tag(self, run_id: str, tags: list[str]) -> None: ...


# -- planning -----------------------------------------------------------------------------------------------------
def candidates_for(request: RunRequest, model: BuiltModel, device: str = "cpu") -> list[str]:
    """The units a search over this build may keep: modules with ModelOpt quantizers that run (quantized builds),
    or every unit whose output is not exact in any precision (fp16/bf16 casts)."""
    inputs = tuple(t[:1].to(device) for t in model.example_inputs)
    module = copy.deepcopy(model.module).to(device=device, dtype=torch.float32).eval()
    c = request.compile
    if c.quantization == "none":
        return keep_high_precision.cast_candidates(module, inputs)
    # which quantizers ModelOpt switches on does not depend on the data: one batch calibrates enough
    fake_quant.quantize(module, c.quantization, [inputs])
    return keep_high_precision.quantized_candidates(module, inputs)


def plan(
    base: RunRequest,
    *,
    criterion: Criterion | None = None,
    max_builds: int | None = None,
    source: str = "",
    analyse: bool = True,
    device: str = "cpu",
    max_samples: int = DEFAULT_MAX_SAMPLES,
    localisation_id: str | None = None,
    measured_on: str = "engine",
    progress: ProgressFn = no_progress,
) -> Localisation:
    """A new localisation of ``base`` (its keep list is ignored: the search sets it), with its candidates and,
    when ``analyse``, the PyTorch-side error growth. Raises ``ConfigError`` for a build with nothing to fix."""
    base = base.with_changes(**{"compile.keep_high_precision": ()})
    if not variants_for(base):
        raise ConfigError(
            "compile.precision",
            "an fp32 build without quantization has no lower precision to localise; pick fp16 or a quantization scheme",
        )
    criterion = criterion or Criterion()
    progress("build_model", None, base.model.source)
    model = registry.build(base.model, base.measure.seed)
    progress("candidates", None, "modules the search may keep")
    candidates = candidates_for(base, model, device)
    if not candidates:
        raise ConfigError(
            "compile.quantization",
            f"{base.model.source} has no module the search could keep in higher precision (no quantizer runs in it)",
        )
    growth = None
    if analyse:
        growth = error_growth(
            base,
            device=device,
            max_samples=max_samples,
            tolerance=criterion.tolerance_rel_l2,
            model=model,
            progress=progress,
        )
    return Localisation(
        localisation_id or new_localisation_id(base),
        utc_now_iso(),
        base.to_dict(),
        candidates,
        criterion,
        max_builds,
        error_growth=growth,
        source=source,
        measured_on=measured_on,
    )


# -- advancing ---------------------------------------------------------------------------------------------------
def _submit(study: Localisation, runner: StepRunner, role: str, kept: list[str]) -> Step:
    step = Step(len(study.steps), role, list(kept))
    study.steps.append(step)
    try:
        step.job_id, step.cached = runner.submit(study.request_for(role, kept))
        step.state = "queued"
    except Exception as e:  # a refused request (ConfigError ...) ends the study with the reason
        step.state, step.why = "failed", e.message if isinstance(e, UserError) else str(e)
        if isinstance(e, ConfigError):
            step.why = f"{e.field}: {e.message}"
    return step


def _finish(study: Localisation, step: Step, runner: StepRunner, view: JobView) -> None:
    step.run_id = view.run_id
    step.figures = runner.figures(step.job_id or "", view)
    step.why = study.criterion.failure(step.figures)
    step.passed = not step.why
    if view.run_id:
        runner.tag(view.run_id, [f"{LOCALISE_TAG}{study.localisation_id}"])
    if step.role in ("search", "confirm") and study.search is not None:
        study.search = study.search.record(tuple(step.kept), step.passed)


def _crashed(study: Localisation, step: Step, error: str) -> None:
    """A search or confirm build whose job failed: not a usable fix, so it counts as not passing (what that means
    for the search's monotonicity: ``bisect``); the error stays on the step and the study goes on."""
    step.crashed, step.passed, step.why = True, False, error
    if study.search is not None:
        study.search = study.search.record(tuple(step.kept), False)


def advance(study: Localisation, runner: StepRunner) -> Localisation:
    """One move: poll the steps in flight, take what finished, submit what comes next. Never waits."""
    if study.status != RUNNING:
        return study
    for step in study.active_steps:
        if step.job_id is None:
            continue
        view = runner.poll(step.job_id)
        step.state, step.detail = view.state, view.detail
        if view.state == "done":
            _finish(study, step, runner, view)
        elif view.state == "failed" and step.role in ("search", "confirm"):
            _crashed(study, step, view.error or "the job failed")
        elif view.state in ("failed", "cancelled"):
            step.why = view.error or f"the job was {view.state}"
    if any(s.state == "failed" and not s.crashed for s in study.steps):
        study.status = FAILED
        _cancel_active(study, runner)
        return study
    if any(s.state == "cancelled" for s in study.steps):
        study.status = CANCELLED
        _cancel_active(study, runner)
        return study
    if study.step("unfixed") is None:
        _submit(study, runner, "unfixed", [])
        _submit(study, runner, "reference", [])
        return advance(study, runner) if any(s.cached or s.state == "failed" for s in study.steps) else study
    if study.active_steps:
        return study
    if study.search is None:
        unfixed, reference = study.step("unfixed"), study.step("reference")
        assert unfixed is not None and reference is not None
        if unfixed.passed:
            study.status, study.outcome = DONE, NOTHING_TO_FIX
            return study
        if not reference.passed:
            study.status, study.outcome = DONE, REFERENCE_FAILS
            return study
        study.search = Bisection.start(study.candidates, study.budget)
        note = study.fake_quant_note()
        if note and note not in study.notes:
            study.notes.append(note)
    if study.search.done:
        study.status, study.outcome = DONE, study.search.outcome
        return study
    role = "confirm" if study.search.next_may_answer else "search"
    keep_next = study.search.next_keep()
    assert keep_next is not None
    step = _submit(study, runner, role, list(keep_next))
    if step.cached or step.state == "failed":
        return advance(study, runner)
    return study


def _cancel_active(study: Localisation, runner: StepRunner) -> int:
    n = 0
    for step in study.active_steps:
        if step.job_id is not None:
            runner.cancel(step.job_id)
            n += 1
        step.state = "cancelled"
    return n


def cancel(study: Localisation, runner: StepRunner) -> Localisation:
    """Stop the study: its jobs in flight are cancelled; what finished stays, with its figures."""
    if study.status == RUNNING:
        _cancel_active(study, runner)
        study.status = CANCELLED
    return study


def run(
    study: Localisation,
    runner: StepRunner,
    *,
    poll_s: float = 0.5,
    timeout_s: float | None = None,
    on_change: Callable[[Localisation], Any] | None = None,
) -> Localisation:
    """Advance until the study is over (CLI, tests, scripts); ``on_change`` after every move (e.g. save it)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    last = None
    while study.status == RUNNING:
        advance(study, runner)
        state = [(s.state, s.detail) for s in study.steps]
        if on_change is not None and state != last:
            on_change(study)
        last = state
        if study.status != RUNNING:
            break
        if deadline is not None and time.monotonic() > deadline:
            cancel(study, runner)
            if on_change is not None:
                on_change(study)
            raise TimeoutError(f"localisation {study.localisation_id} not finished after {timeout_s} s")
        time.sleep(poll_s)
    return study


# -- runners -------------------------------------------------------------------------------------------------------
class QueueRunner:
    """Each step a job on the queue: ``submit_fn(request)`` returns a job (or its id), ``status_fn(job_id)`` its state
    (``JobSystem.get``), ``cancel_fn`` stops it; finished runs are read from ``store``."""

    measured_on = "engine"

    def __init__(
        self,
        store: RunStore,
        submit_fn: Callable[[RunRequest], Any],
        status_fn: Callable[[str], Any],
        cancel_fn: Callable[[str], Any],
    ):
        self.store = store
        self._submit, self._status, self._cancel = submit_fn, status_fn, cancel_fn

    def submit(self, request: RunRequest) -> tuple[str, bool]:
        job = self._submit(request)
        if isinstance(job, str):
            return job, False
        return job.job_id, bool(getattr(job, "cached", False))

    def poll(self, handle: str) -> JobView:
        view = job_view(self._status(handle))
        if view.state == "done" and not view.run_id:
            return JobView("failed", None, "the job finished without a stored run")
        return view

    def figures(self, handle: str, view: JobView) -> StepFigures:
        assert view.run_id is not None
        return figures_from_result(self.store.get(view.run_id))

    def cancel(self, handle: str) -> None:
        self._cancel(handle)

    def tag(self, run_id: str, tags: list[str]) -> None:
        tag_run(self.store, run_id, tags)


class PyTorchRunner:
    """Each step measured at once on the PyTorch model the build would compile: fake-quantized by ModelOpt with the
    kept modules' quantizers off, or cast with the kept modules in fp32 (the knob's own code path), against eager
    fp32 on the same inputs."""

    def __init__(self, device: str = "cpu", model: BuiltModel | None = None):
        self.device = device
        self.model = model
        self.measured_on = f"fake-quantized PyTorch model ({device})"
        self._done: dict[str, StepFigures] = {}
        self._ids = itertools.count()
        self._reference: Any = None

    def _built(self, request: RunRequest) -> BuiltModel:
        if self.model is None:
            self.model = registry.build(request.model, request.measure.seed)
        return self.model

    def _eager_fp32(self, model: BuiltModel) -> Any:
        if self._reference is None:
            module = copy.deepcopy(model.module).to(device=self.device, dtype=torch.float32).eval()
            with torch.inference_mode():
                self._reference = detached_cpu(module(*(t.to(self.device) for t in model.example_inputs)))
        return self._reference

    def measure(self, request: RunRequest) -> StepFigures:
        model = self._built(request)
        c = request.compile
        if c.quantization != "none":
            report = fake_quant.prepare_quantized(request, model, self.device).report()
            acc = report.fake_quant_vs_eager
            assert acc is not None
            return StepFigures(
                acc.rel_l2,
                acc.top1_agreement,
                acc.nonfinite,
                fake_quant_rel_l2=acc.rel_l2,
                measured_on=self.measured_on,
            )
        dtype = DTYPES[c.precision]
        module = keep_high_precision.prepare_cast(model, dtype, self.device, c.keep_high_precision).eval()
        inputs = tuple(
            t.to(device=self.device, dtype=dtype if t.is_floating_point() else t.dtype) for t in model.example_inputs
        )
        with torch.inference_mode():
            out = detached_cpu(module(*inputs))
        acc = compare_outputs(out, self._eager_fp32(model), "eager fp32")
        return StepFigures(
            acc.rel_l2,
            acc.top1_agreement,
            accuracy.nonfinite_count(out),
            measured_on=f"{c.precision}-cast PyTorch model ({self.device})",
        )

    def submit(self, request: RunRequest) -> tuple[str, bool]:
        handle = f"pytorch-{next(self._ids)}"
        self._done[handle] = self.measure(request)
        return handle, False

    def poll(self, handle: str) -> JobView:
        return JobView("done" if handle in self._done else "failed", None)

    def figures(self, handle: str, view: JobView) -> StepFigures:
        return self._done[handle]

    def cancel(self, handle: str) -> None:
        return None

    def tag(self, run_id: str, tags: list[str]) -> None:
        return None


__all__ = [
    "FINISHED_STATES",
    "PyTorchRunner",
    "QueueRunner",
    "StepRunner",
    "advance",
    "cancel",
    "candidates_for",
    "plan",
    "run",
]
