"""``python -m engine autotune``: the dashboard's auto-tune from the command line, on the same stored search.

    python -m engine autotune --model resnet18 --backend tensorrt [--knobs compile.precision,compile.min_block_size]
        [--precisions fp32,fp16] [--trials 20] [--max-build-s S] [--max-rel-l2 X] [--inductor default] [--json]
    python -m engine autotune --resume at-20261130-043012-3f9a [--json]   continue a stored search (any origin)
    --queue   run it as a job on the queue (as the dashboard does) and follow it; default: in this process

Either way the search is stored in the data directory (``autotune/``), so the dashboard opens it (?autotune=<id>)
and a search stopped with Ctrl-C resumes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from engine.errors import ConfigError, UserError
from engine.settings.cli import MAX_TIMEOUT_S, add_knob_options, number, request_from_args
from engine.settings.defaults import INDUCTOR_MODES, PRECISIONS
from engine.store import RunStore
from engine.studies.autotune.search import SEARCHABLE_KNOBS, default_space
from engine.studies.autotune.stored import (
    AutotunePlan,
    budget_of,
    load_plan,
    load_report,
    plan_autotune,
    run_plan,
    save_plan,
)
from engine.studies.autotune.study_record import record_in_process
from engine.studies.autotune.trials import AutotuneReport, Constraints
from engine.studies.knobs import PRECISION_KNOB

POLL_S = 1.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m engine autotune", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_knob_options(p)
    p.add_argument(
        "--knobs",
        default=None,
        help="comma-separated knobs to search (default: all for tensorrt, "
        f"precision for eager); from {', '.join(SEARCHABLE_KNOBS)}",
    )
    p.add_argument("--precisions", default="fp32,fp16", help=f"allowed precisions, from {', '.join(PRECISIONS)}")
    p.add_argument(
        "--trials",
        type=number(int, 1, 100_000),
        default=20,
        help="trial budget (every point once when the space is smaller)",
    )
    p.add_argument(
        "--max-build-s",
        type=number(float, 0, MAX_TIMEOUT_S, above_low=True),
        default=None,
        help="build time limit (default: none)",
    )
    p.add_argument(
        "--max-rel-l2",
        type=number(float, 0, 1e6, above_low=True),
        default=None,
        help="output error limit vs eager fp32 (default: none)",
    )
    p.add_argument(
        "--search-seed", type=number(int, 0, 2**31 - 1), default=0, help="the sampler's seed (--seed seeds the model)"
    )
    p.add_argument("--inductor", choices=INDUCTOR_MODES, default="off", help="also time an inductor baseline")
    p.add_argument("--resume", metavar="ID", default=None, help="continue a stored search instead of planning one")
    p.add_argument("--queue", action="store_true", help="run as a job on the queue and follow it")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def _plan(ns: argparse.Namespace) -> AutotunePlan:
    base = request_from_args(ns)
    limits = Constraints(ns.max_build_s, ns.max_rel_l2, tuple(x for x in ns.precisions.split(",") if x))
    knobs = (
        ns.knobs.split(",") if ns.knobs else list(SEARCHABLE_KNOBS) if base.backend == "tensorrt" else [PRECISION_KNOB]
    )
    space = default_space(limits)
    for knob in knobs:
        if knob not in space:
            raise ConfigError(knob, "is not a searchable knob; choose from " + ", ".join(SEARCHABLE_KNOBS))
    baselines = ("eager", f"inductor_{ns.inductor}") if ns.inductor != "off" else ("eager",)
    return plan_autotune(
        base,
        space={k: space[k] for k in knobs},
        constraints=limits,
        n_trials=ns.trials,
        seed=ns.search_seed,
        baselines=baselines,
    )


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ns = _parser().parse_args(argv)
    store = RunStore()
    try:
        plan = load_plan(store.root, ns.resume) if ns.resume else _plan(ns)
        report = _follow_job(plan, store, ns) if ns.queue else _in_process(plan, store, ns)
    except UserError as e:
        field = f"{e.field}: " if isinstance(e, ConfigError) else ""
        print(f"error: {field}{e.message}" + (f"\nhint: {e.hint}" if e.hint else ""), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"stopped; continue with: python -m engine autotune --resume {plan.autotune_id}", file=sys.stderr)
        return 130
    if report is None:
        print(f"error: auto-tune {plan.autotune_id} measured nothing", file=sys.stderr)
        return 1
    _print(plan, report, ns.json)
    return 0


def _in_process(plan: AutotunePlan, store: RunStore, ns: argparse.Namespace) -> AutotuneReport:
    from engine.runner import execute  # noqa: PLC0415 - torch only when a search runs here

    if not ns.resume:
        save_plan(store.root, plan)
    budget = budget_of(plan)
    print(f"auto-tune {plan.autotune_id}: {budget} trials", file=sys.stderr)
    record_in_process(store, plan, "running")  # its study record follows this process
    try:
        report = run_plan(
            store.root,
            plan,
            store,
            lambda request: execute(request, store).result,
            on_trial=lambda t: print("  " + t.progress(budget)[1], file=sys.stderr),
        )
    except KeyboardInterrupt:
        record_in_process(store, plan, "cancelled")
        raise
    except Exception:
        record_in_process(store, plan, "failed")
        raise
    record_in_process(store, plan, "done")
    return report


def _follow_job(plan: AutotunePlan, store: RunStore, ns: argparse.Namespace) -> AutotuneReport | None:
    from engine.studies.autotune.job import resume_autotune, search_status, submit_autotune  # noqa: PLC0415

    job = resume_autotune(plan.autotune_id) if ns.resume else submit_autotune(plan)
    print(f"auto-tune {plan.autotune_id}: job {job.job_id}", file=sys.stderr)
    last = ""
    while (status := search_status(plan.autotune_id)).active:
        if status.text() != last:
            print("  " + (last := status.text()), file=sys.stderr)
        time.sleep(POLL_S)
    print("  " + status.text(), file=sys.stderr)
    return load_report(store.root, plan.autotune_id, store)


def _print(plan: AutotunePlan, report: AutotuneReport, as_json: bool) -> None:
    if as_json:
        print(
            json.dumps(
                {
                    "autotune_id": plan.autotune_id,
                    "summary": report.summary(),
                    "notes": report.notes,
                    "objective": report.objective,
                    "best_run_id": report.best.run_id if report.best else None,
                    "speedup_vs_defaults": report.speedup_vs_defaults,
                    "baselines_ms": report.baselines_ms,
                    "trials": json.loads(report.trials.to_json(orient="records")),
                },
                indent=1,
            )
        )
        return
    print(report.summary())
    for note in report.notes:
        print(f"  {note}")
    print(report.trials.to_string(index=False))
    print(f"open in the dashboard: Sweeps → Auto-tune, ?autotune={plan.autotune_id}")
