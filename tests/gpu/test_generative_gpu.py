"""Generative mode on a real GPU: prefill and decode built with Torch-TensorRT for GPT-2 (124M) and the Llama-style
1B configuration, greedy tokens against eager's for 32 steps, and the figures against eager and inductor measured
in the same call, with and without CUDA graphs. Marked ``gpu``; the note is printed (run with ``-s``):

    pytest -m gpu -s -n 0 tests/gpu/test_generative_gpu.py -k tiny      # seconds: every program builds and replays
    pytest -m gpu -s -n 0 tests/gpu/test_generative_gpu.py -k "against and gpt2"   # then one full-size model a call
    pytest -m gpu -s -n 0 tests/gpu/test_generative_gpu.py -k "against and llama"

Each model: 5 programs per compiled backend (prefill 1x128; decode 1x256, 1x1024, 8x256, 32x256).
"""

import time

import pytest
import torch

from engine.generative.findings import findings
from engine.generative.request import GenerateRequest
from engine.generative.run import execute
from engine.generative.words import summary

pytestmark = pytest.mark.gpu

STEPS = 32
# tokens may part at a near-tie of two logits in fp16 (random weights make many): then the logits there must still
# agree this closely, else the compiled decoder is wrong
NEAR_TIE_REL_ERROR = 2e-2


def request(model: str) -> GenerateRequest:
    return GenerateRequest(
        model=model,
        backend="tensorrt",
        compare_with=("eager", "inductor"),
        precision="fp16",
        device="cuda",
        prompt_lengths=(128,),
        new_tokens=STEPS,
        contexts=(256, 1024),
        batch_sizes=(1, 8, 32),
        cuda_graphs=True,
        warmup_iters=3,
        timed_iters=20,
    )


@pytest.mark.parametrize("model", ["hf/tiny-gpt2", "hf/tiny-llama"])
def test_tiny_decoders_build_and_replay_with_tensorrt(model):
    """Seconds: every program and the CUDA-graph capture of both architectures with Torch-TensorRT, before the
    full-size test spends minutes (run it first: ``-k tiny``)."""
    run = execute(
        GenerateRequest(model=model, backend="tensorrt", precision="fp16", device="cuda", prompt_lengths=(16,),
                        new_tokens=STEPS, contexts=(64, 128), batch_sizes=(1, 2), cuda_graphs=True, warmup_iters=2,
                        timed_iters=5)
    )  # fmt: skip
    print(f"\n{summary(run)}")
    trt = run.backends["tensorrt"]
    assert all(p.graph is not None for p in trt.decode + trt.batches), [p.graph_error for p in trt.decode]
    assert {c.backend for c in run.checks} == {"tensorrt", "tensorrt + CUDA graph"}
    assert all(c.equal or c.logits_rel_error < NEAR_TIE_REL_ERROR for c in run.checks), run.checks


@pytest.mark.parametrize("model", ["hf/gpt2", "hf/llama-1b"])
def test_tensorrt_prefill_and_decode_against_eager_and_inductor(model):
    t0 = time.perf_counter()
    run = execute(request(model), progress=lambda s: print(f"  [{s}] {time.perf_counter() - t0:.0f}s", flush=True))
    print(
        f"\n{summary(run)}\n  build seconds: "
        + "; ".join(
            f"{b.backend} " + ", ".join(f"{k} {v:.1f}" for k, v in b.build_s.items()) for b in run.backends.values()
        )
        + f"\n  wall {time.perf_counter() - t0:.0f} s"
    )
    checks = {c.backend: c for c in run.checks}
    assert {"tensorrt", "inductor"} <= set(checks)  # and "<backend> + CUDA graph" for each graph that captured
    for c in checks.values():
        assert c.steps == STEPS
        assert c.equal or c.logits_rel_error < NEAR_TIE_REL_ERROR, c
    trt = run.backends["tensorrt"]
    assert [p.context for p in trt.decode] == [256, 1024]
    assert [p.batch for p in trt.batches] == [1, 8, 32]
    for b in run.backends.values():
        assert b.ttft.median_ms > 0 and b.decode[0].spread.gpu_ms is not None
        assert all(p.graph is not None or p.graph_error for p in b.decode + b.batches)
    assert any(f.kind in ("decode_speedup",) for f in findings(run))
    torch.cuda.empty_cache()
