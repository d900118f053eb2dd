"""Auto-tune on the job queue: a stored search is one job of kind "autotune" whose job process runs the whole search
(engine/jobs/job_process.py -> ``stored.run_in_job``), each trial measured by ``runner.execute`` in that process.

Why one job and not one queued run per trial: the trials of a search are sequential (each is proposed from the ones
before), so something has to wait for each; on this box the only processes that outlive a page are the workers, and
a search waiting in a worker for trials queued behind it on the same device would deadlock a one-device host (a CPU
host, or a single GPU). As one job it takes its device's turn in the queue like any run, measures alone on it (no
other process on that GPU while it times), and cancel is the runs' own: asked between trials, and within a trial
the job process stops at the runner's next progress call (killed after the grace period), the trial queued again.
The cost: other jobs on the same device wait for the whole search, as they wait for a long run; the job overview
says "(auto-tune)" so the wait has a name. A resume is a new job on the same stored study.

This module imports the job system; the job process imports ``stored`` only, so there is no import circle.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from dataclasses import dataclass

from engine import capabilities
from engine.errors import ConfigError
from engine.jobs import Job, JobSystem, current_submitter, default_system, pinned_gpu, route_for
from engine.jobs.record import ACTIVE_STATES, AUTOTUNE_KIND
from engine.studies.autotune.stored import AutotunePlan, load_plan, progress_of, save_plan
from engine.studies.autotune.stored_trials import SearchProgress
from engine.studies.autotune.study_record import record_search, record_search_job

JOBS_SCANNED = 500  # how far back the newest job of a finished search is looked for


def job_key(autotune_id: str) -> str:
    return f"{AUTOTUNE_KIND}:{autotune_id}"


def submit_autotune(plan: AutotunePlan, *, gpu: int | str | None = None, system: JobSystem | None = None) -> Job:
    """Store a checked plan (``stored.plan_autotune``) and queue its search; returns the job."""
    system = system or default_system()
    caps = capabilities.detect()
    route = route_for(plan.request(), gpu, caps.cuda_available)
    if plan.base["device"] == "auto":  # the trials run where the route sends them
        plan = dataclasses.replace(plan, base={**plan.base, "device": "cpu" if route == "cpu" else "cuda"})
    if not plan.submitted_by:
        plan = dataclasses.replace(plan, submitted_by=current_submitter())
    _check_here(system, plan, route, caps)
    save_plan(system.root, plan)
    record_search(system.store, plan)  # listed as a study from now on, queued or not
    return _queue(system, plan, route, gpu)


def resume_autotune(autotune_id: str, *, gpu: int | str | None = None, system: JobSystem | None = None) -> Job:
    """Queue a stored search again: it continues its Optuna study, the trials already done counted (joins the
    search's job when one is still queued or running). Raises AutotuneNotFound for an unknown id."""
    system = system or default_system()
    plan = load_plan(system.root, autotune_id)
    caps = capabilities.detect()
    route = route_for(plan.request(), gpu, caps.cuda_available)
    _check_here(system, plan, route, caps)
    return _queue(system, plan, route, gpu)


def _check_here(system: JobSystem, plan: AutotunePlan, route: str, caps: capabilities.Capabilities) -> None:
    """What this machine cannot run is an error now, as for a run (one host; with Redis the worker checks)."""
    from engine import runner  # noqa: PLC0415 - torch only when submitting

    if system.queue_url:
        return
    pinned = pinned_gpu(route)
    runner.check_request(plan.request(), caps, pinned or 0)
    if pinned is not None and pinned >= len(caps.gpus):
        raise ConfigError("gpu", f"GPU {pinned} does not exist; this machine has {len(caps.gpus)}")


def _queue(system: JobSystem, plan: AutotunePlan, route: str, gpu: int | str | None) -> Job:
    now = time.time()
    key = job_key(plan.autotune_id)
    job = Job(
        job_id=uuid.uuid4().hex[:12],
        request=plan.base,
        key=key,
        route=route,
        kind=AUTOTUNE_KIND,
        gpu="" if gpu is None else str(gpu),
        created_ts=now,
        updated_ts=now,
        submitted_by=plan.submitted_by or current_submitter(),
        detail="auto-tune " + plan.autotune_id,
    )
    job, joined = system.table.insert_or_join(job, key)
    if joined:
        job.joined = True
    else:
        system.enqueue(job.job_id, route)
        if system.autostart():
            system.ensure_workers(wait_s=0)
        job = system.get(job.job_id)
    record_search_job(system.store, plan, job)  # the study follows this job (a resume's new one)
    return job


def search_job(autotune_id: str, system: JobSystem | None = None) -> Job | None:
    """The newest job of a stored search (its active one first), or None."""
    system = system or default_system()
    key = job_key(autotune_id)
    for states, limit in ((ACTIVE_STATES, None), (None, JOBS_SCANNED)):
        job = next((j for j in system.table.select(states, limit) if j.key == key), None)
        if job is not None:
            return system.get(job.job_id)
    return None


def cancel_autotune(autotune_id: str, system: JobSystem | None = None) -> Job | None:
    """Stop a search's active job: queued, it never starts; running, it stops between trials, or within one at the
    runner's next progress call. The trials done stay in its study for a resume. None when nothing was active."""
    system = system or default_system()
    job = search_job(autotune_id, system)
    return system.cancel(job.job_id) if job is not None and job.active else None


@dataclass(frozen=True)
class SearchStatus:
    """Where a stored search stands, in words for the page: its progress, its job, whether it can resume."""

    plan: AutotunePlan
    progress: SearchProgress
    job: Job | None

    @property
    def active(self) -> bool:
        return self.job is not None and self.job.active

    @property
    def fraction(self) -> float:
        """For a progress bar: the running job's own fraction (it counts the trial under way), else trials done."""
        if self.job is not None and self.job.state == "running" and self.job.fraction is not None:
            return self.job.progress
        return self.progress.fraction

    @property
    def resumable(self) -> bool:
        return not self.active and not self.progress.complete

    def text(self) -> str:
        """E.g. "Running: trial 3 of 20 · build · best 1.234 ms so far", "Cancelled after 4 of 20 trials ..."."""
        p, job = self.progress, self.job
        if job is not None and job.state == "queued":
            return f"Queued ({job.stage_text}); {p.text()}."
        if job is not None and job.state == "running":
            return f"Running: {job.stage_text}."
        if p.complete:
            return f"Finished: {p.text()}."
        if job is not None and job.state == "failed":
            return f"Stopped by an error after {p.text()}: {job.error} {job.hint}".rstrip() + " Resume to continue."
        if job is not None and job.state == "cancelled":
            return f"Cancelled after {p.text()}. Resume to continue the same search."
        return f"Not running: {p.text()}. Resume to continue the same search."


def search_status(autotune_id: str, system: JobSystem | None = None) -> SearchStatus:
    """Raises AutotuneNotFound for an unknown id."""
    system = system or default_system()
    plan = load_plan(system.root, autotune_id)
    return SearchStatus(plan, progress_of(system.root, plan), search_job(autotune_id, system))
