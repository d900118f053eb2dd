"""``python -m engine profile --model hf/gpt2 --task generate ...``: a generative run on the command line, stored
like the dashboard stores it (engine/store/generative_runs.py), its figures and verdict printed (or ``--json``).

Exit codes: 0 done, 2 bad input (named field, nothing built), 1 a run that failed (a build, a capture).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable

from engine.errors import ConfigError, ModelError, UserError
from engine.generative.configs import NAMED
from engine.generative.request import BACKENDS, PRECISIONS, GenerateRequest
from engine.generative.words import summary


def _ints(field: str) -> Callable[[str], tuple[int, ...]]:
    def parse(text: str) -> tuple[int, ...]:
        try:
            return tuple(int(x) for x in text.split(",") if x.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{field}: give whole numbers separated by commas, not {text!r}") from None

    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m engine profile --task generate",
        description="Prefill and decode of a decoder-only model measured apart, with a static KV cache.",
    )
    p.add_argument("--task", choices=("generate",), default="generate")
    p.add_argument("--model", required=True, help=f"one of {', '.join(NAMED)}, or file:<name>.py")
    p.add_argument("--backend", default="eager", choices=BACKENDS)
    p.add_argument("--compare", default="", help="other backends measured in the same call, e.g. eager,inductor")
    p.add_argument("--precision", default=None, choices=PRECISIONS, help="default fp16 on a GPU, fp32 on CPU")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when there is a GPU)")
    p.add_argument("--prompt-lengths", type=_ints("prompt_lengths"), default=(128,))
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--contexts", type=_ints("contexts"), default=(256, 1024))
    p.add_argument("--batch-sizes", type=_ints("batch_sizes"), default=(1, 4, 16))
    p.add_argument("--cuda-graphs", action="store_true", help="also replay the decode step as a CUDA graph")
    p.add_argument("--budget-ms", type=float, default=20.0, help="per-token latency budget of the verdict")
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the stored run as JSON")
    p.add_argument("--no-store", action="store_true", help="measure and print, store nothing")
    return p


def request_from_args(ns: argparse.Namespace) -> GenerateRequest:
    import torch  # noqa: PLC0415

    device = ns.device or ("cuda" if torch.cuda.is_available() else "cpu")
    precision = ns.precision or ("fp16" if device.startswith("cuda") else "fp32")
    return GenerateRequest(
        model=ns.model,
        backend=ns.backend,
        compare_with=tuple(b.strip() for b in ns.compare.split(",") if b.strip()),
        precision=precision,
        device=device,
        prompt_lengths=ns.prompt_lengths,
        new_tokens=ns.new_tokens,
        contexts=ns.contexts,
        batch_sizes=ns.batch_sizes,
        cuda_graphs=ns.cuda_graphs,
        latency_budget_ms=ns.budget_ms,
        warmup_iters=ns.warmup,
        timed_iters=ns.iters,
        seed=ns.seed,
    )


def command_line(request: GenerateRequest) -> list[str]:
    """The arguments of ``python -m engine`` that run ``request`` (what the page runs in a fresh process)."""

    def ints(values: tuple[int, ...]) -> str:
        return ",".join(map(str, values))

    args = [
        "profile", "--task", "generate", "--model", request.model, "--backend", request.backend,
        "--precision", request.precision, "--device", request.device,
        "--prompt-lengths", ints(request.prompt_lengths), "--new-tokens", str(request.new_tokens),
        "--contexts", ints(request.contexts), "--batch-sizes", ints(request.batch_sizes),
        "--budget-ms", f"{request.latency_budget_ms:g}", "--iters", str(request.timed_iters),
        "--warmup", str(request.warmup_iters), "--seed", str(request.seed),
    ]  # fmt: skip
    if request.compare_with:
        args += ["--compare", ",".join(request.compare_with)]
    if request.cuda_graphs:
        args.append("--cuda-graphs")
    return args


def main(argv: list[str]) -> int:
    from engine.generative.run import execute  # noqa: PLC0415 - torch only once the arguments parse
    from engine.store import generative_runs  # noqa: PLC0415

    ns = parser().parse_args(argv)
    try:
        request = request_from_args(ns)
        run = execute(request, progress=lambda s: None if ns.json else print(f"  [{s}]", file=sys.stderr))
    except (ConfigError, ModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except UserError as e:
        logging.getLogger("engine").debug("generative run failed", exc_info=True)
        print(f"error: {e.message}" + (f"\nhint: {e.hint}" if e.hint else ""), file=sys.stderr)
        return 1
    if not ns.no_store:
        generative_runs.save(run.to_dict())
    print(json.dumps(run.to_dict(), indent=1) if ns.json else summary(run))
    return 0
