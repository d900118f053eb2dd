"""Does the dashboard add anything to what it measures?

One served dashboard (its own data directory and port, the repository's .streamlit/config.toml: no file
watcher), in one run:

1. Idle CPU of the Streamlit server process (/proc/<pid>/stat, children excluded: the job workers are
   separate processes) with no tab open, then with one chromium tab sitting on each page for ``--idle-s``
   seconds (goal < 5% of a core per page).
2. Jobs: a default eager resnet18 Profile job (the page's defaults; on a GPU box it runs on the GPU)
   submitted from a real chromium tab that stays on the Profile page and watches it (the job panel polls
   it), alternating with the same job submitted through the queue with no tab open. Each job has its own
   ``measure.repeat``, so none is answered from the store. Wall time is the job's own, from the job table
   (submit to done). RESULT: median watched / median unwatched (goal ≤ 1.10). Where the runs measured GPU
   time, the watched runs' GPU time and e2e median must fall inside the unwatched runs' spread (GPU: the
   fastest..slowest trace window; e2e: p10..p90).

    .venv/bin/python bench/dashboard_quiet.py [--pairs 2] [--idle-s 15] [--watcher none|auto]

``--watcher auto`` serves with Streamlit's file watcher on (what the served app used to do) for comparison.
Needs Debian chromium (/usr/bin/chromium) and Playwright. Ends with RESULT lines.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import capabilities  # noqa: E402
from engine.jobs import Job, JobSystem  # noqa: E402
from engine.settings.request import RunRequest  # noqa: E402
from engine.store import RunStore  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WALL_GOAL = 1.10
CPU_GOAL_PCT = 5.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime: fields 14 and 15 of stat


def cpu_pct_over(pid: int, seconds: float) -> float:
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100.0 * (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def dashboard(data: Path, watcher: str | None) -> Iterator[tuple[str, subprocess.Popen]]:
    """``streamlit run dashboard.py`` as served (the repo's config), its own data dir and port."""
    port = free_port()
    env = {**os.environ, "TRTDASH_DATA_DIR": str(data), "PYTHONPATH": str(ROOT)}
    args = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "dashboard.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
    ]
    if watcher:
        args += ["--server.fileWatcherType", watcher]
    log = open(data.parent / "streamlit.log", "w")
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"streamlit did not start: {(data.parent / 'streamlit.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield base, proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the job workers it started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def settle(page) -> None:
    page.wait_for_selector("[data-testid='stApp']")
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=120_000,
    )
    page.wait_for_timeout(500)


def submit_from_page(page, base: str, repeat: int) -> float:
    """Open Profile, set the repeat, press Run; returns the monotonic time of the click."""
    page.goto(f"{base}/")
    settle(page)
    page.get_by_text("Advanced measurement").click()
    box = page.get_by_label("Repeat", exact=True)
    box.fill(str(repeat))
    box.press("Enter")
    settle(page)
    t = time.monotonic()
    page.get_by_role("button", name=re.compile(r"^\W*Run$")).click()
    return t


def job_of_repeat(system: JobSystem, repeat: int, timeout_s: float = 60) -> Job:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for job in system.list_jobs(limit=20):
            if (job.request.get("measure") or {}).get("repeat") == repeat:
                return job
        time.sleep(0.2)
    raise SystemExit(f"no job with repeat {repeat} was queued")


def wait_done(system: JobSystem, job_id: str, timeout_s: float = 900) -> Job:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = system.get(job_id)
        if job.state in ("done", "failed", "cancelled"):
            if job.state != "done":
                raise SystemExit(f"job {job_id} {job.state}: {job.error}")
            return job
        time.sleep(0.2)
    raise SystemExit(f"job {job_id} not done after {timeout_s} s")


def job_wall_s(job: Job) -> float:
    return job.finished_ts - job.created_ts


def idle_pages(store: RunStore) -> list[tuple[str, str]]:
    """(name, path) of every page, on stored runs where a page shows one."""
    runs = store.list_runs()
    ids = list(runs["run_id"][:2])
    one = f"?run={ids[0]}" if ids else ""
    two = "?" + "&".join(f"run={i}" for i in ids) if len(ids) == 2 else ""
    return [
        ("profile", "/"),
        ("layers", f"/layers{one}"),
        ("segmentation", f"/segmentation{one}"),
        ("compare", f"/compare{two}"),
        ("history", "/history"),
        ("sweeps", "/sweep"),
    ]


def jobs_part(browser, base: str, system: JobSystem, device: str, pairs: int) -> list[str]:
    """Watched against unwatched jobs, alternating; RESULT lines."""
    results: list[str] = []
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(120_000)
    submit_from_page(page, base, 1000)  # warm-up: starts the workers, warms a job process
    wait_done(system, job_of_repeat(system, 1000).job_id)
    page.wait_for_url(re.compile(r"[?&]run=[\w-]+"), timeout=120_000)
    page.close()
    watched: list[Job] = []
    unwatched: list[Job] = []
    shown_s: list[float] = []
    for i in range(pairs):
        time.sleep(3)  # the worker warms its next job process
        # no tab open: submitted through the queue, as another user's job would be
        request = RunRequest.from_dict(
            {"device": device, "backend": "eager", "model": {"source": "resnet18"}, "measure": {"repeat": 2 * i + 2}}
        )
        job = wait_done(system, system.submit(request, start_workers=False).job_id)
        unwatched.append(job)
        print(f"  unwatched job {job.job_id}: {job_wall_s(job):.2f} s", flush=True)
        time.sleep(3)
        # a tab on the Profile page that submitted it and watches it
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)
        clicked = submit_from_page(page, base, 2 * i + 1)
        job = wait_done(system, job_of_repeat(system, 2 * i + 1).job_id)
        page.wait_for_url(re.compile(r"[?&]run=[\w-]+"), timeout=120_000)
        shown_s.append(time.monotonic() - clicked)
        watched.append(job)
        print(
            f"  watched job {job.job_id}: {job_wall_s(job):.2f} s (result on the page "
            f"{shown_s[-1]:.2f} s after the click)",
            flush=True,
        )
        page.close()
    ratio = statistics.median(map(job_wall_s, watched)) / statistics.median(map(job_wall_s, unwatched))
    results.append(
        f"RESULT dashboard_quiet wall_ratio_watched_over_unwatched={ratio:.3f} goal<={WALL_GOAL} "
        f"{'PASS' if ratio <= WALL_GOAL else 'FAIL'}"
    )
    w_runs = [system.store.get(j.run_id) for j in watched]
    u_runs = [system.store.get(j.run_id) for j in unwatched]
    lo = min(r.latency.p10_ms for r in u_runs)
    hi = max(r.latency.p90_ms for r in u_runs)
    inside = all(lo <= r.latency.median_ms <= hi for r in w_runs)
    results.append(
        f"RESULT dashboard_quiet watched_e2e_inside_unwatched_p10_p90={int(inside)} "
        f"({', '.join(f'{r.latency.median_ms:.3f}' for r in w_runs)} ms in {lo:.3f}..{hi:.3f}) "
        f"goal=1 {'PASS' if inside else 'FAIL'}"
    )
    if all(r.gpu_time is not None for r in w_runs + u_runs):
        glo = min(r.gpu_time.min_ms for r in u_runs)
        ghi = max(r.gpu_time.max_ms for r in u_runs)
        ginside = all(glo <= r.gpu_time.median_ms <= ghi for r in w_runs)
        results.append(
            f"RESULT dashboard_quiet watched_gpu_time_inside_unwatched_windows={int(ginside)} "
            f"({', '.join(f'{r.gpu_time.median_ms:.4f}' for r in w_runs)} ms in {glo:.4f}.."
            f"{ghi:.4f}) goal=1 {'PASS' if ginside else 'FAIL'}"
        )
    else:
        print("  (no GPU time in these runs: the GPU check runs where the jobs ran on a GPU)")
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=2, help="watched/unwatched job pairs (alternating); 0: idle CPU only")
    ap.add_argument("--idle-s", type=float, default=15.0, help="seconds a tab sits on each page")
    ap.add_argument("--watcher", default=None, help="server.fileWatcherType to serve with (default: the config's)")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    caps = capabilities.detect()
    device = "auto" if caps.cuda_available else "cpu"
    results: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="trtdash-quiet-") as tmp,
        dashboard(Path(tmp) / "data", args.watcher) as (base, server),
        sync_playwright() as p,
    ):
        data = Path(tmp) / "data"
        system = JobSystem(data)
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        print(f"dashboard {base} (server pid {server.pid}), data {data}, device {device}", flush=True)

        # -- the jobs -----------------------------------------------------------------------------------
        if args.pairs:
            results += jobs_part(browser, base, system, device, args.pairs)
        else:  # idle figures only: one page load makes the server import the samples
            page = browser.new_page()
            page.goto(f"{base}/history")
            settle(page)
            page.close()
        store = RunStore(data)

        # -- idle CPU per page ---------------------------------------------------------------------------
        time.sleep(2)  # layers/compare open on stored runs: the bundled samples the server imported
        pct = cpu_pct_over(server.pid, args.idle_s)
        results.append(
            f"RESULT dashboard_quiet idle_cpu_pct_no_tab={pct:.2f} goal<{CPU_GOAL_PCT} "
            f"{'PASS' if pct < CPU_GOAL_PCT else 'FAIL'}"
        )
        worst = 0.0
        for name, path in idle_pages(store):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(base + path)
            settle(page)
            time.sleep(5)  # charts drawn, the session idle
            pct = cpu_pct_over(server.pid, args.idle_s)
            worst = max(worst, pct)
            results.append(
                f"RESULT dashboard_quiet idle_cpu_pct_tab_on_{name}={pct:.2f} goal<{CPU_GOAL_PCT} "
                f"{'PASS' if pct < CPU_GOAL_PCT else 'FAIL'}"
            )
            page.close()
        results.append(
            f"RESULT dashboard_quiet idle_cpu_pct_worst_page={worst:.2f} goal<{CPU_GOAL_PCT} "
            f"{'PASS' if worst < CPU_GOAL_PCT else 'FAIL'}"
        )
        browser.close()
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print("\n".join(results))
    return 0 if all(r.endswith("PASS") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
