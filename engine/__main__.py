"""Command line on the same code path as the dashboard.

python -m engine profile --model resnet18 --batch 1 [--backend tensorrt --precision fp16 ...] [--json]
                                           [--timeout S]  give up after S seconds (exit code 124)
                                           (model files run in a child process, --timeout or not)
python -m engine profile --model hf/gpt2 --task generate ...   prefill and decode apart (engine/generative, --help)
python -m engine runs                      list stored runs, the bundled samples included (as the dashboard)
python -m engine capabilities              what this machine can do
python -m engine report ID[,ID...] -o F    self-contained HTML report of runs or --study ID (engine/report)
python -m engine supervisor ...            keep this host's job-queue workers running (engine/jobs/)
python -m engine worker ...                run one job-queue worker (engine/jobs/)
python -m engine localise ...              find the layer that breaks a low-precision build (--help)
python -m engine autotune ...              search the compile knobs under constraints, stored, resumable (--help)
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import sys
import time
from typing import Any

from engine import capabilities, run_figures
from engine.errors import ConfigError, ModelError, UserError
from engine.generative import tables as generative_tables
from engine.generative.task import generative_task
from engine.models.files import FILE_PREFIX
from engine.report.cli import add_report_command
from engine.runner import Outcome, check_request, execute
from engine.settings.cli import MAX_TIMEOUT_S, add_knob_options, number, request_from_args
from engine.settings.request import RunRequest, validate
from engine.store import RunStore


def _summary(outcome) -> str:
    r = outcome.result
    lat = r.latency
    lines = [
        f"run {r.run_id}{'  (cached: answered from the store, nothing was run)' if outcome.cached else ''}",
        f"  {r.label} on {r.env.get('device_name')}",
        f"  e2e median {lat.median_ms:.3f} ms  p10 {lat.p10_ms:.3f}  p90 {lat.p90_ms:.3f}  p99 {lat.p99_ms:.3f}"
        f"  mean {lat.mean_ms:.3f} ± {lat.std_ms:.3f}  ({lat.iters} iters, {lat.timer})",
        *(f"  {line}" for line in run_figures.timing_lines(r)[1:4]),  # GPU time, graph replay, host overhead
        f"  throughput {lat.throughput_per_s:.1f} samples/s",
    ]
    if r.engine_count:
        lines.append(f"  TensorRT engines {r.engine_count}, {r.engine_bytes / 2**20:.1f} MiB")
    if r.stages_s:
        lines.append("  stages " + ", ".join(f"{k} {v:.2f}s" for k, v in r.stages_s.items()))
    if len(r.layers):
        top = r.layers.sort_values("avg_ms", ascending=False).head(5)
        lines.append(f"  per-layer: {len(r.layers)} layers, profiled sum {r.profiled_sum_ms or 0:.3f} ms; slowest:")
        lines += [f"    {row.avg_ms:8.3f} ms  {row.layer_type:<18} {row.name}" for row in top.itertuples()]
    if r.accuracy:
        a = r.accuracy
        lines.append(
            f"  accuracy vs {a.reference}: rel L2 {a.rel_l2:.2e}, max abs {a.max_abs:.2e}"
            + (f", top-1 agreement {a.top1_agreement:.1%}" if a.top1_agreement is not None else "")
        )
    for name, stats in sorted(r.baselines.items()):
        compiled = r.baseline_compile_s.get(name)
        lines.append(
            f"  baseline {name}: median {stats.median_ms:.3f} ms"
            + (f" (compiled in {compiled:.1f} s)" if compiled is not None else "")
        )
    lines += [f"  warning: {w}" for w in r.warnings]
    return "\n".join(lines)


TIMED_OUT = 124  # the exit code of timeout(1)


def profile_json(outcome: Outcome) -> dict[str, Any]:
    """What ``profile --json`` prints: the stored result (``RunResult.to_dict``) with

    - ``cached``: True when the store answered and nothing was run;
    - ``timing``: the timing figures as every page shows them (``run_figures.timing_json``);
    - ``layers``: the per-layer table, one object per layer with the columns of ``engine.result.LAYER_COLUMNS``
      (order, segment, runtime, name, layer_type, module_path, avg_ms, share), in execution order; ``[]`` when no
      layer profile was measured;
    - ``segmentation``: null, or the stored partition (total_ops, supported_ops, unsupported_ops, pytorch_nodes,
      segments, recommendations, source) with ``coverage`` (supported / total ops), ``engine_count`` and
      ``pytorch_segment_count``, and ``recommendations_in_words``: each min_block_size recommendation as the
      Segmentation page says it (text, min_block_size, rerun: whether running it would build other engines).
    """
    r = outcome.result
    doc = {
        "cached": outcome.cached,
        **r.to_dict(),
        "timing": run_figures.timing_json(r),
        "layers": json.loads(r.layers.to_json(orient="records", double_precision=15)),
    }
    if r.segmentation is not None:
        seg = r.segmentation
        doc["segmentation"] = {
            **doc["segmentation"],
            "coverage": seg.coverage,
            "engine_count": seg.engine_count,
            "pytorch_segment_count": seg.pytorch_segment_count,
            "recommendations_in_words": [
                {"text": rec.text.replace("**", ""), "min_block_size": rec.min_block_size, "rerun": rec.rerun}
                for rec in run_figures.recommendations(r)
            ],
        }
    return doc


def cmd_profile(ns: argparse.Namespace) -> int:
    request = validate(request_from_args(ns))
    check_request(request, capabilities.detect())  # a refused run starts no process and stores nothing
    if ns.timeout is not None or request.model.source.startswith(FILE_PREFIX):
        return _profile_in_child(ns, request)
    store = RunStore()

    def progress(stage: str, fraction: float | None = None, detail: str = "") -> None:
        if not ns.json:
            print(f"  [{stage}] {detail}", file=sys.stderr)

    outcome = execute(request, store, progress, use_cache=not ns.no_cache)
    if ns.json:
        print(json.dumps(profile_json(outcome), indent=1))
    else:
        print(_summary(outcome))
    return 0


def _profile_in_child(ns: argparse.Namespace, request: RunRequest) -> int:
    """The profile in a child process: one that ``--timeout`` kills after that many seconds (native code may hold
    the interpreter for minutes, so only a process boundary bounds it), and the one a model file's code runs in,
    so that code ending its process (``os._exit``, a crash) is reported with the stage it ended in. A killed run
    stores nothing: the store's writes are atomic."""
    from engine.jobs.job_process import exit_reason  # noqa: PLC0415
    from engine.runner import execute_for_parent  # noqa: PLC0415

    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(
        target=execute_for_parent, args=(send, request.to_dict(), not ns.no_cache), name="trtdash-profile"
    )
    child.start()
    send.close()
    deadline = None if ns.timeout is None else time.monotonic() + ns.timeout
    stage, reply = "starting", None
    while reply is None:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not receive.poll(left):
            child.kill()
            child.join(10)
            print(
                f"error: timed out after {ns.timeout:g} s during {stage}; the run was stopped and nothing was "
                "stored.\nhint: give a longer --timeout, or fewer timed iterations / a smaller batch.",
                file=sys.stderr,
            )
            return TIMED_OUT
        try:
            message = receive.recv()
        except EOFError:  # the child died without a word: model code called os._exit, or native code crashed
            child.join(10)
            error, hint = exit_reason(child.exitcode, stage)
            print(f"error: {error} (model {request.model.source})\nhint: {hint}", file=sys.stderr)
            return 1
        if message[0] == "progress":
            stage = message[1]
            if not ns.json:
                print(f"  [{stage}] {message[2]}", file=sys.stderr)
        else:
            reply = message
    child.join(10)
    if reply[0] == "done":
        _, run_id, cached = reply
        outcome = Outcome(RunStore().get(run_id), cached)
        print(json.dumps(profile_json(outcome), indent=1) if ns.json else _summary(outcome))
        return 0
    _, user_error, message, hint = reply
    print(f"error: {message}" + (f"\nhint: {hint}" if hint else ""), file=sys.stderr)
    return 2 if user_error else 1


def cmd_runs(ns: argparse.Namespace) -> int:
    from engine.jobs import settle_studies  # noqa: PLC0415 - the queue only here

    settle_studies()  # studies whose jobs ended with no page open are recorded (and their runs tagged) first
    from engine.studies.samples import open_with_samples  # noqa: PLC0415 - the studies only here

    df = open_with_samples().list_runs()  # the store as the dashboard opens it: bundled samples imported
    print(df.drop(columns=["key"]).to_string(index=False) if len(df) else "no runs stored yet")
    generative = generative_tables.runs_table(generative_tables.stored_runs())
    if len(generative):
        print(f"\ngenerative runs (profile --task generate):\n{generative.to_string(index=False)}")
    return 0


def cmd_capabilities(ns: argparse.Namespace) -> int:
    caps = capabilities.detect()
    print(json.dumps(capabilities.as_dict(caps), indent=1))
    print(caps.banner()[1])
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "worker":
        from engine.jobs import worker_main  # noqa: PLC0415 - only the worker needs the queue

        return worker_main(argv[1:])
    if argv[:1] == ["serve-check"]:
        from engine.access import serve_check_main  # noqa: PLC0415

        return serve_check_main(argv[1:])
    if argv[:1] == ["profile"] and generative_task(argv):
        from engine.generative.cli import main as generate_main  # noqa: PLC0415

        return generate_main(argv[1:])
    if argv and argv[0] == "localise":
        from engine.studies.localisation.cli import main as localise_main  # noqa: PLC0415

        return localise_main(argv[1:])
    if argv and argv[0] == "autotune":
        from engine.studies.autotune.cli import main as autotune_main  # noqa: PLC0415

        return autotune_main(argv[1:])
    if argv and argv[0] == "supervisor":
        from engine.jobs import supervisor_main  # noqa: PLC0415

        return supervisor_main(argv[1:])
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(
        prog="python -m engine", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("profile", help="profile one model headless and print a summary")
    add_knob_options(p)
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--no-cache", action="store_true", help="run even if the store has this result")
    p.add_argument(
        "--timeout",
        type=number(float, 0, MAX_TIMEOUT_S, above_low=True),
        default=None,
        metavar="S",
        help="give up after S seconds: the run is stopped, nothing is stored, exit code 124",
    )
    p.set_defaults(func=cmd_profile)
    sub.add_parser("runs", help="list stored runs").set_defaults(func=cmd_runs)
    sub.add_parser("capabilities", help="what this machine can do").set_defaults(func=cmd_capabilities)
    add_report_command(sub)
    sub.add_parser("supervisor", help="keep this host's job-queue workers running (engine/jobs/supervisor.py)")
    sub.add_parser("worker", help="run one job-queue worker (engine/jobs/worker.py)")
    sub.add_parser("serve-check", help="exit 2 with the reason when the dashboard must not start as configured")
    sub.add_parser("localise", help="find the layer that breaks a low-precision build, measure the fix (--help)")
    sub.add_parser("autotune", help="search the compile knobs under constraints; stored, resumable (--help)")
    ns = parser.parse_args(argv)
    try:
        return ns.func(ns)
    except (ConfigError, ModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # backend errors carry a user-facing message; details go to the log
        msg, hint = (e.message, e.hint) if isinstance(e, UserError) else (f"{type(e).__name__}: {e}", "")
        logging.getLogger("engine").debug("run failed", exc_info=True)
        print(f"error: {msg}" + (f"\nhint: {hint}" if hint else ""), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
