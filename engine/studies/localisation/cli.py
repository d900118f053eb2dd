"""``python -m engine localise``: the localisation from the command line, on the page's code path.

    python -m engine localise --model resnet50 --batch 8 --backend tensorrt --quantization fp8 [--tolerance 0.05]
    python -m engine localise --from-run <run id>          # a stored run's build (e.g. a ladder's fp8 rung)
    python -m engine localise ... --pytorch                 # no engine: the fake-quantized/cast PyTorch model here
    python -m engine localise --resume <id> [--max-builds N]  # go on with a cancelled one, or one out of builds
    python -m engine localise --list | --show <id> [--json]

Every build is a job on the queue (workers start as for the dashboard); the study is saved after every move, so
the dashboard's Where it breaks page shows it while it runs (``?localise=<id>``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from engine.errors import ConfigError, UserError
from engine.settings.cli import add_knob_options, number, request_from_args
from engine.settings.request import RunRequest
from engine.studies.ladder.plan import DEFAULT_TOLERANCE_REL_L2
from engine.studies.localisation import driver, reading
from engine.studies.localisation.error_growth import DEFAULT_MAX_SAMPLES
from engine.studies.localisation.figures import Criterion
from engine.studies.localisation.records import LocalisationNotFound, LocalisationRecords
from engine.studies.localisation.resume import resume
from engine.studies.localisation.study import Localisation


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m engine localise", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_knob_options(p)
    p.add_argument("--from-run", default=None, help="localise the build of this stored run (its request as is)")
    p.add_argument(
        "--tolerance",
        type=number(float, 0, 1e6, above_low=True),
        default=DEFAULT_TOLERANCE_REL_L2,
        help="rel. L2 against eager fp32 a fixed build must stay within",
    )
    p.add_argument(
        "--min-top1", type=number(float, 0, 1), default=None, help="and top-1 agreement at least this (0..1)"
    )
    p.add_argument(
        "--max-builds",
        type=number(int, 1, 10_000),
        default=None,
        help="search builds allowed (default about 2 log2(n)+2)",
    )
    p.add_argument(
        "--pytorch",
        action="store_true",
        help="measure each step on the fake-quantized / cast PyTorch model here instead of an engine",
    )
    p.add_argument("--analysis-device", default="cpu", help="where the PyTorch-side error growth runs")
    p.add_argument(
        "--samples",
        type=number(int, 1, 1_000_000),
        default=DEFAULT_MAX_SAMPLES,
        help="inputs the error growth looks at",
    )
    p.add_argument("--no-analysis", action="store_true", help="skip the PyTorch-side error growth")
    p.add_argument(
        "--resume",
        default=None,
        metavar="ID",
        help="go on with a stored localisation that was cancelled or failed, or whose search used its budget "
        "(with a larger --max-builds)",
    )
    p.add_argument("--list", action="store_true", help="list stored localisations")
    p.add_argument("--show", default=None, metavar="ID", help="print a stored localisation")
    p.add_argument("--json", action="store_true", help="print the study as JSON")
    return p


def base_request(ns: argparse.Namespace) -> RunRequest:
    if ns.from_run:
        from engine.store import RunStore  # noqa: PLC0415

        return RunRequest.from_dict(RunStore().get(ns.from_run).request)
    knobs = argparse.Namespace(**{k: v for k, v in vars(ns).items() if "." in k or k in ("backend", "device", "mode")})
    request = request_from_args(knobs)
    if ns.backend is None:
        request = request.with_changes(backend="tensorrt")
    if getattr(ns, "measure.compare_eager") is None:  # every build would time the eager model again
        request = request.with_changes(**{"measure.compare_eager": False})
    return request


def report(study: Localisation) -> str:
    lines = [
        f"localisation {study.localisation_id}: {study.base['model']['source']} "
        f"b{study.base['model']['batch_size']} {study.label}, {len(study.candidates)} candidate modules, "
        f"measured on the {study.measured_on}",
        f"  criterion: {study.criterion.text()}",
    ]
    if study.error_growth is not None:
        lines += [f"  PyTorch side: {study.error_growth.crossing_text(v)}" for v in study.error_growth.variants]
    for row in study.steps_table().itertuples():
        verdict = "crash" if row.crashed else "pass" if row.passed else "fail" if row.passed is False else row.state
        lines.append(
            f"  step {row.step:>2} {row.role:<9} {row.kept:>3} kept  {verdict:<5} {row.why or ''}"
            + (f"  ({row.kept_modules})" if row.kept else "")
        )
    lines += [f"  note: {n}" for n in study.notes]
    lines.append(study.summary())
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ns = parser().parse_args(argv)
    records = LocalisationRecords()
    try:
        if ns.list or ns.show:
            records.import_samples()  # the bundled localisations (samples/localisations), once
        if ns.list:
            df = records.summaries()
            print(df.to_string(index=False) if len(df) else "no localisation stored yet")
            return 0
        if ns.show:
            study = records.load(ns.show)
            print(json.dumps(study.to_dict(), indent=1) if ns.json else report(study))
            return 0
        if ns.resume:
            return _resume(ns, records)
        return _localise(ns, records)
    except (ConfigError, LocalisationNotFound) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # user-facing message and hint where the error carries them
        msg, hint = (e.message, e.hint) if isinstance(e, UserError) else (f"{type(e).__name__}: {e}", "")
        print(f"error: {msg}" + (f"\nhint: {hint}" if hint else ""), file=sys.stderr)
        return 1


def _queue_runner(base: RunRequest) -> driver.QueueRunner:
    from engine import jobs  # noqa: PLC0415
    from engine.capabilities import detect  # noqa: PLC0415
    from engine.runner import check_request  # noqa: PLC0415

    check_request(base, detect())  # what this machine cannot build is said before any planning
    jobs.ensure_workers()
    return driver.QueueRunner(jobs.default_system().store, jobs.submit, jobs.get, jobs.cancel)


def _localise(ns: argparse.Namespace, records: LocalisationRecords) -> int:
    def progress(stage: str, fraction: float | None = None, detail: str = "") -> None:
        print(f"  [{stage}] {detail}", file=sys.stderr)

    base = base_request(ns)
    if base.compile.keep_high_precision and not ns.from_run:
        raise ConfigError("compile.keep_high_precision", "the localisation chooses the kept modules; leave it out")
    runner: Any = driver.PyTorchRunner(device=ns.analysis_device) if ns.pytorch else _queue_runner(base)
    study = driver.plan(
        base,
        criterion=Criterion(ns.tolerance, ns.min_top1),
        max_builds=ns.max_builds,
        source="command line",
        analyse=not ns.no_analysis,
        device=ns.analysis_device,
        max_samples=ns.samples,
        measured_on=runner.measured_on,
        progress=progress,
    )
    print(
        f"localisation {study.localisation_id}: {len(study.candidates)} candidate modules, at most "
        f"{study.budget} search builds",
        file=sys.stderr,
    )
    return _run(ns, records, study, runner)


def _resume(ns: argparse.Namespace, records: LocalisationRecords) -> int:
    study = records.load(ns.resume)
    if study.is_sample:
        raise ConfigError("resume", f"{study.localisation_id} is a recorded sample: start a localisation of your own")
    resume(study, ns.max_builds)
    engine = study.measured_on == "engine"
    runner: Any = _queue_runner(study.request) if engine else driver.PyTorchRunner(device=ns.analysis_device)
    records.save(study)
    print(
        f"localisation {study.localisation_id}: going on after {study.builds} search builds, at most {study.budget}",
        file=sys.stderr,
    )
    return _run(ns, records, study, runner)


def _run(ns: argparse.Namespace, records: LocalisationRecords, study: Localisation, runner: Any) -> int:
    seen: set[tuple[int, str]] = {(s.index, s.state) for s in study.steps}  # a resumed study's steps said already

    def on_change(s: Localisation) -> None:
        records.save(s)
        for step in s.steps:
            if (step.index, step.state) not in seen and step.state in ("done", "failed", "cancelled"):
                seen.add((step.index, step.state))
                verdict = "pass" if step.passed else f"fail: {step.why}"
                if step.crashed:
                    print(f"  {reading.crash_text(step)}", file=sys.stderr)
                    continue
                print(
                    f"  step {step.index + 1} ({step.role}, {len(step.kept)} kept): "
                    f"{verdict if step.state == 'done' else step.state + ' ' + step.why}",
                    file=sys.stderr,
                )

    try:
        driver.run(study, runner, poll_s=0.0 if isinstance(runner, driver.PyTorchRunner) else 0.5, on_change=on_change)
    except KeyboardInterrupt:
        driver.cancel(study, runner)
        records.save(study)
        print(f"cancelled; go on with: python -m engine localise --resume {study.localisation_id}", file=sys.stderr)
        return 130
    records.save(study)
    print(json.dumps(study.to_dict(), indent=1) if ns.json else report(study))
    return 0 if study.status == "done" else 1
