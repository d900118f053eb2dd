"""Every default and every allowed value of a request, as named constants.

The compiler knobs mirror Torch-TensorRT's own ``torch_tensorrt/dynamo/_defaults.py`` so that "the default" in a
comparison means what the library means by it; they are repeated here because torch_tensorrt cannot be imported on
a machine without a GPU.
"""

from __future__ import annotations

# Torch-TensorRT defaults (torch_tensorrt/dynamo/_defaults.py)
MIN_BLOCK_SIZE = 5
OPTIMIZATION_LEVEL = None  # TensorRT's own builder default, which is level 3
TRT_DEFAULT_OPTIMIZATION_LEVEL = 3
OPTIMIZATION_LEVELS = (0, 1, 2, 3, 4, 5)
USE_PYTHON_RUNTIME = False
WORKSPACE_SIZE = 0
TRUNCATE_DOUBLE = False
USE_FAST_PARTITIONER = True
HARDWARE_COMPATIBLE = False
SPARSE_WEIGHTS = False
REQUIRE_FULL_COMPILATION = False
CACHE_BUILT_ENGINES = False
REUSE_CACHED_ENGINES = False

BACKENDS = ("eager", "tensorrt")
MODES = ("measure", "analyze")
FRONTENDS = ("dynamo", "torch_compile")
PRECISIONS = ("fp32", "fp16", "bf16")
DEVICES = ("auto", "cpu", "cuda")
# Post-training quantization schemes (NVIDIA ModelOpt); what each means and where it runs is in
# engine/quantization/schemes.py, which checks them against the machine.
QUANT_SCHEMES = ("none", "int8", "int8_smoothquant", "int8_weight_only", "fp8", "int4_awq", "nvfp4")
QUANT_BASE_PRECISIONS = ("fp16", "fp32")
CALIBRATION_BATCHES = 8
# torch.compile (inductor) baseline of a tensorrt run: off, mode="default" (quick) or "max-autotune" (minutes)
INDUCTOR_MODES = ("off", "default", "max-autotune")
# requests stored before the modes existed hold a bool, and True timed max-autotune
INDUCTOR_MODE_FROM_BOOL = {False: "off", True: "max-autotune"}

MAX_BATCH_SIZE = 4096
MAX_DIM = 16384
