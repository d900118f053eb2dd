"""Run ``pytest -m gpu`` on a GPU machine within a deadline, one GPU per lane, and say what did not run.

    python scripts/gpu_tests.py [--budget-s 560] [--out DIR] [--lanes N] [--only test_quant_gpu.py,...] [FILES...]

Why not one ``pytest -m gpu``: a lent machine gives a call about ten minutes, the whole GPU suite takes longer on
one GPU, and a crash inside TensorRT (a segfault in ``execute_engine``, seen on TensorRT-RTX 1.4) kills the pytest
process with every test after it. Here every test file runs in its own pytest process (a crash ends that file only),
the files are spread over the GPUs (one lane each: ``CUDA_VISIBLE_DEVICES`` and its own data directory), longest
first, with the tests that need every GPU (``ALL_GPUS``) run alone before the lanes start; a deadline stops what is
still running. The summary names each test as passed, failed, skipped, crashed (the signal that ended its file) or
not run (cut by the deadline, or after a crash in its file), and the last line is

    GPU TESTS passed=P failed=F skipped=S crashed=C not_run=N in T s

(exit status 0 only when nothing failed, crashed or was left out). Logs, JUnit XML and the outcomes as they happened
(this module is also the pytest plugin that writes them) per file go to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUTCOMES_ENV = "GPU_TESTS_OUTCOMES"
# seconds per file measured on an H200 (TensorRT-RTX 1.4, 2026-11-30), for the schedule only
ESTIMATE_S = {
    "test_localise_gpu.py": 265,
    "test_multi_gpu.py": 235,
    "test_gpu_time_gpu.py": 200,
    "test_tensorrt_gpu.py": 180,
    "test_quant_gpu.py": 140,
    "test_shapes_cudagraphs_gpu.py": 80,
    "test_ladder_gpu.py": 80,
    "test_models_cli_gpu.py": 70,
    "test_jobs_gpu.py": 65,
    "test_batch_sweep_gpu.py": 50,
}
DEFAULT_ESTIMATE_S = 60
ALL_GPUS = {"test_multi_gpu.py"}  # compares one GPU's timings alone and beside the other: nothing else may run


@dataclass
class FileRun:
    path: str
    tests: list[str]  # node ids collected
    lane: int | None = None
    rc: int | None = None  # None: never started
    seconds: float = 0.0
    cut: bool = False  # stopped by the deadline
    outcomes: dict[str, str] = field(default_factory=dict)  # node id -> passed | failed | skipped

    @property
    def crash(self) -> str:
        """The signal that ended the file's pytest ("" when it exited by itself or was cut)."""
        if self.rc is None or self.cut:
            return ""
        if self.rc < 0:
            return signal.Signals(-self.rc).name
        return signal.Signals(self.rc - 128).name if self.rc > 128 and self.rc - 128 in _SIGNALS else ""


_SIGNALS = {s.value for s in signal.Signals}


def collect(root: Path, files: list[str], python: str) -> dict[str, list[str]]:
    """Node ids of the gpu-marked tests per file, as pytest collects them (the skips it adds do not matter here)."""
    out = subprocess.run(
        [python, "-m", "pytest", "--collect-only", "-q", "-m", "gpu", "-p", "no:cacheprovider", *files],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    found: dict[str, list[str]] = {}
    for line in out.splitlines():
        if "::" in line and not line.startswith(" "):
            found.setdefault(line.split("::", 1)[0], []).append(line.strip())
    return found


def schedule(files: dict[str, list[str]], lanes: int) -> tuple[list[str], list[list[str]]]:
    """The files that need every GPU (run first, alone) and the others spread over ``lanes``, longest first onto the
    lane that is free soonest."""
    alone = [f for f in files if Path(f).name in ALL_GPUS and lanes > 1]
    rest = sorted((f for f in files if f not in alone), key=lambda f: -ESTIMATE_S.get(Path(f).name, DEFAULT_ESTIMATE_S))
    plan: list[list[str]] = [[] for _ in range(lanes)]
    load = [0] * lanes
    for f in rest:
        i = load.index(min(load))
        plan[i].append(f)
        load[i] += ESTIMATE_S.get(Path(f).name, DEFAULT_ESTIMATE_S)
    return alone, plan


# -- this module is also the pytest plugin (``-p gpu_tests``) that writes each test's outcome as it ends -------------
def pytest_runtest_logreport(report) -> None:  # noqa: ANN001 (pytest's TestReport)
    """One JSON line per test phase that decides it: a failed or skipped setup, the call, a failed teardown. Written
    and flushed at once, so the tests before a crash are known."""
    path = os.environ.get(OUTCOMES_ENV)
    decides = report.when == "call" or report.outcome != "passed"
    if path and decides:
        with open(path, "a") as f:
            f.write(json.dumps({"node": report.nodeid, "outcome": report.outcome, "when": report.when}) + "\n")


def read_outcomes(path: Path) -> dict[str, str]:
    """node id -> passed | failed | skipped (a failure in any phase wins)."""
    outcomes: dict[str, str] = {}
    if not path.exists():
        return outcomes
    for line in path.read_text().splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue  # a line cut by a crash
        if outcomes.get(r["node"]) != "failed":
            outcomes[r["node"]] = r["outcome"]
    return outcomes


def run_file(
    run: FileRun, root: Path, out: Path, env: dict[str, str], deadline: float, python: str, extra: list[str]
) -> FileRun:
    left = deadline - time.monotonic()
    if left < 5:
        return run
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", run.path)
    outcomes = out / f"{stem}.outcomes.jsonl"
    outcomes.unlink(missing_ok=True)
    env = {
        **env,
        OUTCOMES_ENV: str(outcomes),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH", "")])),
    }
    cmd = [python, "-m", "pytest", "-m", "gpu", "-p", "no:cacheprovider", "-p", "gpu_tests", "-rA", "-s", run.path]
    t0 = time.monotonic()
    with open(out / f"{stem}.log", "w") as log:
        proc = subprocess.Popen(
            [*cmd, *extra, f"--junitxml={out / f'{stem}.xml'}"], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            run.rc = proc.wait(timeout=left)
        except subprocess.TimeoutExpired:
            run.cut = True
            proc.send_signal(signal.SIGINT)  # pytest writes what finished before it stops
            try:
                run.rc = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                run.rc = proc.wait()
    run.seconds = time.monotonic() - t0
    run.outcomes = read_outcomes(outcomes)
    return run


def lane_env(lane: int | None, gpus: int, data_root: Path) -> dict[str, str]:
    """A lane's environment: one GPU of the ``gpus`` visible (lanes beyond the GPU count share them, round robin;
    never a device index that does not exist, which would skip its tests as "no GPU") and its own data directory."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if lane is not None and gpus > 1:
        visible = (env.get("CUDA_VISIBLE_DEVICES") or ",".join(map(str, range(gpus)))).split(",")
        env["CUDA_VISIBLE_DEVICES"] = visible[lane % len(visible)]
    env["TRTDASH_DATA_DIR"] = str(data_root / f"lane{lane if lane is not None else 'all'}")
    return env


def _why_not_run(run: FileRun) -> str:
    if run.cut or run.rc is None:
        return "deadline"
    if run.crash:
        return f"after the {run.crash} crash"
    return f"pytest exited {run.rc}: see its log"


def summarise(runs: list[FileRun]) -> tuple[list[str], dict[str, int]]:
    lines, counts = [], dict.fromkeys(("passed", "failed", "skipped", "crashed", "not_run"), 0)
    for run in runs:
        where = f"lane {run.lane}" if run.lane is not None else "every GPU"
        state = (
            "not started (deadline)"
            if run.rc is None
            else f"cut by the deadline after {run.seconds:.0f} s"
            if run.cut
            else f"crashed ({run.crash}) after {run.seconds:.0f} s"
            if run.crash
            else f"{run.seconds:.0f} s"
        )
        lines.append(f"{run.path} [{where}]: {state}")
        crashed_at = next((t for t in run.tests if t not in run.outcomes), None) if run.crash else None
        for node in run.tests:
            outcome = run.outcomes.get(node)
            if outcome is None and node == crashed_at:
                outcome, label = "crashed", f"CRASHED ({run.crash})"
            elif outcome is None:
                outcome = "not_run"
                label = f"NOT RUN ({_why_not_run(run)})"
            else:
                label = outcome.upper()
            counts[outcome] += 1
            lines.append(f"  {label:<28} {node}")
    return lines, counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", default=["tests/gpu"], help="test files or folders (default tests/gpu)")
    ap.add_argument("--budget-s", type=float, default=560.0, help="stop what still runs after this many seconds")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp/gpu-tests")), help="logs + JUnit")
    ap.add_argument("--lanes", type=int, default=None, help="parallel lanes (default: one per visible GPU)")
    ap.add_argument("--only", default="", help="comma-separated file names to keep")
    ap.add_argument("--root", type=Path, default=ROOT, help="where pytest runs (the repository)")
    ap.add_argument("--pytest-arg", action="append", default=[], help="passed to every pytest (repeatable)")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    deadline = t0 + args.budget_s
    python = sys.executable
    args.out.mkdir(parents=True, exist_ok=True)
    files = collect(args.root, args.files, python)
    if args.only:
        keep = set(args.only.split(","))
        files = {f: t for f, t in files.items() if Path(f).name in keep}
    if not files:
        print("no gpu-marked test collected", file=sys.stderr)
        return 2
    gpus = max(1, _gpu_count())
    lanes = args.lanes or gpus
    alone, plan = schedule(files, lanes)
    runs = {f: FileRun(f, files[f]) for f in files}
    data_root = args.out / "data"
    for f in alone:
        print(f"[every GPU] {f}", flush=True)
        run_file(runs[f], args.root, args.out, lane_env(None, gpus, data_root), deadline, python, args.pytest_arg)

    def lane_work(lane: int) -> None:
        for f in plan[lane]:
            runs[f].lane = lane
            print(f"[lane {lane}] {f} ({deadline - time.monotonic():.0f} s left)", flush=True)
            run_file(runs[f], args.root, args.out, lane_env(lane, gpus, data_root), deadline, python, args.pytest_arg)

    with ThreadPoolExecutor(lanes) as pool:
        list(pool.map(lane_work, range(lanes)))
    lines, counts = summarise([runs[f] for f in [*alone, *(f for lane in plan for f in lane)]])
    print("\n".join(lines))
    print(
        "GPU TESTS " + " ".join(f"{k}={v}" for k, v in counts.items()) + f" in {time.monotonic() - t0:.0f} s",
        flush=True,
    )
    return 0 if counts["failed"] == counts["crashed"] == counts["not_run"] == 0 else 1


def _gpu_count() -> int:
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        return 1
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    n = sum(1 for line in out.splitlines() if line.startswith("GPU "))
    return len(visible.split(",")) if visible else n


if __name__ == "__main__":
    sys.exit(main())
