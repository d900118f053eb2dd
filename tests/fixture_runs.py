"""Runs for the chart and page tests, assembled from real recordings only.

- Eager runs are measured here, on CPU, through ``engine.runner.execute`` (tiny inputs, a second each).
- TensorRT runs are put together from the files Torch-TensorRT wrote on an H100 (tests/fixtures, a copy
  of shared/fixtures; see its README): the per-layer table from the engine profile + layer information, the segmentation
  from the dryrun text, and the end-to-end median the README records for that same configuration
  (the fixtures keep no per-inference samples, so the latency and its samples hold that one
  recorded median).
"""

from __future__ import annotations

from pathlib import Path

from engine.latency_stats import LatencyStats
from engine.profiling import segmentation as seg_parser
from engine.profiling import trt_profile
from engine.result import RunResult
from engine.runner import execute
from engine.settings.request import RunRequest
from engine.store import RunStore, new_run_id, utc_now_iso

FIXTURES = Path(__file__).resolve().parent / "fixtures"
H100_ENV = {
    "device": "cuda",
    "device_name": "NVIDIA H100 80GB HBM3",
    "compute_capability": "9.0",
    "torch": "2.11.0+cu130",
    "torch_tensorrt": "2.11.0",
    "flavour": "tensorrt_rtx",
    "tensorrt": "1.4.0.76",
}
# medians from shared/fixtures/README.md, same model, precision and knobs as the files used below
RESNET18_FP16_MBS5_MEDIAN_MS = 0.35
RESNET18_FP16_RELU_FORCED_MEDIAN_MS = 2.66


def tiny_eager_request(batch_size: int = 1, precision: str = "fp32") -> RunRequest:
    return RunRequest.from_dict(
        {
            "model": {"source": "resnet18", "batch_size": batch_size, "input_shape": [3, 32, 32]},
            "backend": "eager",
            "device": "cpu",
            "compile": {"precision": precision},
            "measure": {"warmup_iters": 1, "timed_iters": 8, "profile_iters": 1},
        }
    )


def eager_run(store: RunStore, batch_size: int = 1) -> RunResult:
    return execute(tiny_eager_request(batch_size), store, use_cache=False).result


def trt_layers(fixtures_dir: Path):
    return trt_profile.layer_table(trt_profile.read_profile_dir(fixtures_dir / "h100-rtx" / "resnet18_fp16"))


def dryrun_segmentation(fixtures_dir: Path, name: str = "dryrun_resnet18_fp16_relu_forced_mbs1.txt"):
    return seg_parser.parse_dryrun_text((fixtures_dir / "h100-rtx" / name).read_text())


def _trt_request(**compile_knobs) -> dict:
    return RunRequest.from_dict(
        {
            "model": {"source": "resnet18"},
            "backend": "tensorrt",
            "device": "cuda",
            "compile": {"precision": "fp16", **compile_knobs},
        }
    ).to_dict()


def trt_profiled_run(fixtures_dir: Path, is_sample: bool = True) -> RunResult:
    """resnet18 fp16, min_block_size=5: one engine, its per-layer profile (350 inferences)."""
    layers = trt_layers(fixtures_dir)
    return RunResult(
        run_id=new_run_id(),
        key="fixture-resnet18-fp16-mbs5",
        created_at=utc_now_iso(),
        request=_trt_request(min_block_size=5),
        env=dict(H100_ENV),
        model_info={"source": "resnet18"},
        latency=LatencyStats.from_samples([RESNET18_FP16_MBS5_MEDIAN_MS], 1, "cuda_events"),
        latency_samples_ms=[RESNET18_FP16_MBS5_MEDIAN_MS],
        engine_count=1,
        profiled_sum_ms=float(layers["avg_ms"].sum()),
        is_sample=is_sample,
        layers=layers,
    )


def trt_relu_forced_run(fixtures_dir: Path, is_sample: bool = True) -> RunResult:
    """resnet18 fp16, min_block_size=1 with relu forced to PyTorch: 18 engines, no layer profile."""
    seg = dryrun_segmentation(fixtures_dir)
    return RunResult(
        run_id=new_run_id(),
        key="fixture-resnet18-fp16-relu-forced",
        created_at=utc_now_iso(),
        request=_trt_request(min_block_size=1, torch_executed_ops=["torch.ops.aten.relu.default"]),
        env=dict(H100_ENV),
        model_info={"source": "resnet18"},
        latency=LatencyStats.from_samples([RESNET18_FP16_RELU_FORCED_MEDIAN_MS], 1, "cuda_events"),
        latency_samples_ms=[RESNET18_FP16_RELU_FORCED_MEDIAN_MS],
        engine_count=seg.engine_count,
        segmentation=seg,
        is_sample=is_sample,
    )


def store_trt_runs(store: RunStore, fixtures_dir: Path) -> tuple[RunResult, RunResult]:
    """Both TensorRT runs saved in ``store``, the profiled one with its raw engine profile."""
    profiled = trt_profiled_run(fixtures_dir)
    raw = fixtures_dir / "h100-rtx" / "resnet18_fp16" / "_run_on_acc_0_engine_engine_execution_profile.trace"
    store.save(profiled, {raw.name: raw})
    relu = trt_relu_forced_run(fixtures_dir)
    store.save(relu)
    return profiled, relu
