"""Whether a ``profile`` command line asks for a generative run (``--task generate``): read before any parser, so
the CLI's entry imports nothing of the generative path otherwise."""

from __future__ import annotations

TASK_FLAG = "--task"
GENERATE = "generate"


def generative_task(argv: list[str]) -> bool:
    for i, arg in enumerate(argv):
        if arg == f"{TASK_FLAG}={GENERATE}" or (arg == TASK_FLAG and argv[i + 1 : i + 2] == [GENERATE]):
            return True
    return False
