"""Torch-TensorRT backend: compile, time end to end, measure GPU time, profile per layer, report segmentation.

One run, by step (each step reports progress), one module per step:

1. ``references``: before anything is compiled, eager fp32 outputs for accuracy (TF32 off; cached per model
   and device), the eager baseline at the run's precision, optionally torch.compile inductor; ``quantize``:
   quantized runs instead calibrate a fake-quantized copy with ModelOpt;
2. ``export``: ``torch.export`` + ``torch_tensorrt.dynamo.compile`` (or ``torch.compile(backend="tensorrt")``),
   every knob passed through, while ``capture`` reads Torch-TensorRT's own bookkeeping (segmentation, engine
   count, stage times) through the private symbols declared in ``internals``;
3. ``measure``: first inference, end-to-end timing with profiling OFF, accuracy, then in passes of their own
   GPU kernel time from a CUDA-activity trace, the per-layer profile and a CUDA-graph replay
   (the harnesses live in ``engine.profiling``), and the engine-plan fingerprint.

``mode == "analyze"`` stops after a dry run. ``run`` (in ``run``) is the backend function
``engine.backends.get_backend("tensorrt")`` returns. ``torch_tensorrt`` is imported only inside functions:
it raises on machines without a driver.
"""

from engine.backends.tensorrt.run import run

__all__ = ["run"]
