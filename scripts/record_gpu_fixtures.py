"""Record the GPU-time fixtures the CPU tests parse (tests/fixtures/h200-rtx/, see its README section).

Plain Torch-TensorRT builds (not the product's runner) of torchvision resnet18 fp16, batch 1, seed 0:

- ``gpu_trace_resnet18_fp16_3inf.json``: torch.profiler Chrome trace, CUDA activity only, over 3 inferences of
  the single-engine build (``min_block_size=5``), taken after warm-up by ``engine.profiling.gpu_time.measure``;
- ``gpu_trace_resnet18_fp16_relu_forced_3inf.json``: the same over the fragmented build (relu forced to
  PyTorch, ``min_block_size=1``: TensorRT engines with PyTorch kernels between them);
- ``layer_info_resnet18_fp16_opt{0,5}.json``: DETAILED layer information of two optimization levels.

    python scripts/record_gpu_fixtures.py --out DIR
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    import torch
    import torch_tensorrt
    import torchvision

    from engine.profiling import gpu_time

    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval().cuda().half()
    x = torch.randn(1, 3, 224, 224, device="cuda", dtype=torch.half)
    exported = torch.export.export(model, (x,))
    builds = {
        "resnet18_fp16": {"min_block_size": 5},
        "resnet18_fp16_relu_forced": {"min_block_size": 1, "torch_executed_ops": {"torch.ops.aten.relu.default"}},
    }
    for name, kw in builds.items():
        trt = torch_tensorrt.dynamo.compile(exported, arg_inputs=[x], **kw)
        with torch.inference_mode():
            for _ in range(50):
                trt(x)
        torch.cuda.synchronize()
        path = args.out / f"gpu_trace_{name}_3inf.json"
        trace = gpu_time.measure(lambda trt=trt: trt(x), per_window=3, windows=1, keep_trace=path)
        events = json.loads(path.read_text())
        events = events["traceEvents"] if isinstance(events, dict) else events
        cats = Counter(str(e.get("cat")) for e in events)
        print(
            f"{name}: {trace.gpu_time} sequence {len(trace.sequence or ())} kernels; categories {dict(cats)}; "
            f"{path.stat().st_size / 1024:.0f} KiB",
            flush=True,
        )
        print(f"  first kernel event: {next((e for e in events if e.get('cat') == 'kernel'), None)}", flush=True)
        del trt
    for level in (0, 5):
        with torch_tensorrt.dynamo.Debugger(
            log_level="warning",
            save_layer_info=True,
            save_engine_profile=True,
            profile_format="trex",
            engine_builder_monitor=False,
            logging_dir=tempfile.mkdtemp(prefix="trtdash-fx-"),
        ):
            trt = torch_tensorrt.dynamo.compile(exported, arg_inputs=[x], min_block_size=5, optimization_level=level)
        engine = next(m for _, m in trt.named_children() if hasattr(m, "get_layer_info"))
        info = engine.get_layer_info()
        (args.out / f"layer_info_resnet18_fp16_opt{level}.json").write_text(info)
        print(f"layer info opt{level}: {len(json.loads(info)['Layers'])} layers", flush=True)
        del trt
    return 0


if __name__ == "__main__":
    sys.exit(main())
