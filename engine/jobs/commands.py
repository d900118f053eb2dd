"""``python -m engine supervisor`` and ``python -m engine worker``: the processes that keep a host's job queue
served (engine/jobs/supervisor.py, engine/jobs/worker.py), each on the job system of its data directory."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from engine.access import SECRET_ENVS
from engine.jobs.host import HOST_ID_ENV
from engine.jobs.supervisor import QUEUE_URL_ENV, Supervisor
from engine.jobs.system import JobSystem
from engine.jobs.worker import Worker
from engine.store import DATA_DIR_ENV, data_dir


def supervisor_main(argv: list[str]) -> int:
    """``python -m engine supervisor``: run this host's supervisor in the foreground until SIGTERM/SIGINT."""
    p = argparse.ArgumentParser(
        prog="python -m engine supervisor",
        description="Keep one worker per GPU and one for the CPU running for a data "
        "directory; replace any that dies. One per data directory and host: "
        "a second one exits at once.",
    )
    p.add_argument("--data-dir", default=None, help=f"data directory (default: ${DATA_DIR_ENV} or ./data)")
    p.add_argument(
        "--queue-url",
        default=None,
        help=f"redis://host:port/db (default: ${QUEUE_URL_ENV}; empty = the SQLite queue in the data directory)",
    )
    p.add_argument("--gpus", type=int, default=None, help="GPU workers to keep (default: every visible GPU)")
    p.add_argument(
        "--idle-exit-s",
        type=float,
        default=None,
        help="exit after this many seconds with nothing queued or running (default: never)",
    )
    p.add_argument(
        "--settle-only",
        action="store_true",
        help="start no workers (they run on other hosts): only keep this data directory's studies settled",
    )
    ns = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = Path(ns.data_dir) if ns.data_dir else data_dir()
    os.environ[DATA_DIR_ENV] = str(root)
    gpu_count = ns.gpus
    if gpu_count is None and not ns.settle_only:
        from engine import capabilities  # noqa: PLC0415 - imports torch; --gpus avoids it

        gpu_count = len(capabilities.detect().gpus)
    url = ns.queue_url if ns.queue_url is not None else os.environ.get(QUEUE_URL_ENV)
    return Supervisor(JobSystem(root, url or None), gpu_count or 0, ns.idle_exit_s, settle_only=ns.settle_only).run()


def worker_main(argv: list[str]) -> int:
    """Run one worker in the foreground until SIGTERM/SIGINT (or until its owner process exits)."""
    p = argparse.ArgumentParser(
        prog="python -m engine worker", description="Run jobs from the queue on one device (the CPU or one GPU)."
    )
    dev = p.add_mutually_exclusive_group()
    dev.add_argument("--gpu", type=int, default=None, help="GPU index to serve (pinned with CUDA_VISIBLE_DEVICES)")
    dev.add_argument("--cpu", action="store_true", help="serve CPU jobs (the default)")
    p.add_argument("--data-dir", default=None, help=f"data directory (default: ${DATA_DIR_ENV} or ./data)")
    p.add_argument(
        "--queue-url",
        default=None,
        help=f"redis://host:port/db (default: ${QUEUE_URL_ENV}; empty = the SQLite queue in the data directory)",
    )
    p.add_argument("--host-id", default=None, help="name of this host in the job table (default: hostname)")
    p.add_argument("--owner-pid", type=int, default=None, help="exit when this process is gone")
    p.add_argument(
        "--owner-file",
        type=Path,
        default=None,
        help="exit when the process whose pid this file holds is gone (re-read: apps adopt workers)",
    )
    ns = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in SECRET_ENVS:  # a worker run as a service: its job processes (model code) inherit this environment
        os.environ.pop(name, None)
    if ns.data_dir:
        os.environ[DATA_DIR_ENV] = ns.data_dir
    if ns.host_id:
        os.environ[HOST_ID_ENV] = ns.host_id
    if ns.gpu is not None:
        # the job processes see only this GPU, as cuda:0
        os.environ["CUDA_VISIBLE_DEVICES"] = str(ns.gpu)
    else:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    url = ns.queue_url if ns.queue_url is not None else os.environ.get(QUEUE_URL_ENV)
    system = JobSystem(ns.data_dir or data_dir(), url or None)
    return Worker(system, gpu_index=ns.gpu, owner_pid=ns.owner_pid, owner_file=ns.owner_file).run()
