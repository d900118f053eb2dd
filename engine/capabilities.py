"""What this machine can do: GPUs, whether Torch-TensorRT imports, which flavour, versions.

``torch_tensorrt`` raises on import where no NVIDIA driver exists, so it is imported only
after a CUDA device has been seen, and any failure is recorded as a reason, never raised.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.quantization import schemes
from engine.settings.request import RunRequest


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    memory_bytes: int
    compute_capability: str  # "9.0"


@dataclass(frozen=True)
class Capabilities:
    torch_version: str
    cuda_available: bool
    gpus: tuple[Gpu, ...] = ()
    torch_tensorrt_version: str | None = None
    flavour: str = "none"  # "tensorrt" | "tensorrt_rtx" | "none"
    tensorrt_version: str | None = None
    tensorrt_unavailable_reason: str = ""
    python_runtime_reason: str = ""  # why compile.use_python_runtime does not apply here ("" when it does)
    # the model's dtypes decide the engine's precision (TensorRT-RTX; full TensorRT from Torch-TensorRT 2.13)
    strongly_typed: bool = False
    cpu_name: str = field(default_factory=lambda: _cpu_name())

    @property
    def can_compile(self) -> bool:
        return self.flavour != "none"

    def banner(self) -> tuple[str, str]:
        """(level, text) for the page banner: level is "info" or "warning"."""
        if not self.cuda_available:
            return (
                "warning",
                "No NVIDIA GPU on this machine: TensorRT compilation and GPU timing are "
                "unavailable. You can profile models eagerly on the CPU and explore the bundled sample "
                "runs recorded on a real GPU (History, Layers, Segmentation, Compare).",
            )
        names = ", ".join(f"{g.name} ({g.memory_bytes / 2**30:.0f} GiB)" for g in self.gpus)
        if not self.can_compile:
            return (
                "warning",
                f"GPU: {names}. Torch-TensorRT is not usable: {self.tensorrt_unavailable_reason} "
                "Eager profiling on the GPU works; install with `pip install torch-tensorrt tensorrt` "
                "(or `torch-tensorrt-rtx`).",
            )
        flav = "TensorRT-RTX" if self.flavour == "tensorrt_rtx" else "TensorRT"
        return (
            "info",
            f"GPU: {names}. Torch-TensorRT {self.torch_tensorrt_version} on {flav} "
            f"{self.tensorrt_version or ''}.".replace(" .", "."),
        )

    def disabled_reason(self, knob: str, value: Any = None) -> str | None:
        """Why a knob (dotted name) or a knob value cannot be honoured here, or None."""
        if knob == "backend" and value == "tensorrt" and not self.can_compile:
            return (
                "needs an NVIDIA GPU with Torch-TensorRT installed"
                if not self.cuda_available
                else f"Torch-TensorRT unavailable: {self.tensorrt_unavailable_reason}"
            )
        if knob == "device" and value == "cuda" and not self.cuda_available:
            return "no NVIDIA GPU on this machine"
        if knob == "compile.precision" and value == "bf16" and self.flavour == "tensorrt_rtx":
            return "TensorRT-RTX has no bf16"
        if knob == "compile.use_python_runtime" and value and self.python_runtime_reason:
            return self.python_runtime_reason
        if knob == "compile.hardware_compatible" and value and self.flavour == "tensorrt_rtx":
            return "TensorRT-RTX engines are built for the local GPU only"
        if knob == "compile.quantization" and value not in (None, False, "none"):
            options = scheme_options(self)
            if value is True:  # the knob as a whole: off only when no scheme can run here
                reasons = [r for s, r in options.items() if s != "none"]
                return reasons[0] if reasons and all(reasons) and len(set(reasons)) == 1 else None
            return options.get(value, f"unknown scheme {value!r}")
        return None


def scheme_options(caps: Capabilities, gpu_index: int = 0) -> dict[str, str | None]:
    """Every scheme with the reason it is unavailable on this machine (None: available)."""
    cc = caps.gpus[min(gpu_index, len(caps.gpus) - 1)].compute_capability if caps.gpus else None
    installed = schemes.modelopt_installed()
    return {
        s: schemes.scheme_unavailable_reason(s, flavour=caps.flavour, compute_capability=cc, modelopt=installed)
        for s in schemes.SCHEMES
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _torch_tensorrt_info() -> tuple[str | None, str, str | None, str]:
    """(torch_tensorrt version, flavour, tensorrt version, reason if unusable)."""
    try:
        import torch_tensorrt  # noqa: PLC0415 - lazy on purpose: raises without a driver
    except Exception as e:  # ImportError, OSError from missing libs, RuntimeError from the driver
        return None, "none", None, f"`import torch_tensorrt` failed ({type(e).__name__}: {str(e)[:200]})."
    from engine.backends.tensorrt import internals  # noqa: PLC0415 - private Torch-TensorRT symbols live there

    try:
        rtx = internals.features().rtx
    except internals.TorchTensorRTMismatch as e:
        return torch_tensorrt.__version__, "none", None, e.message
    trt_version = None
    for dist in ("tensorrt_rtx", "tensorrt-rtx") if rtx else ("tensorrt", "tensorrt-cu12", "tensorrt-cu13"):
        try:
            trt_version = importlib.metadata.version(dist)
            break
        except importlib.metadata.PackageNotFoundError:
            continue
    if trt_version is None:
        try:
            import tensorrt_rtx as trt_mod  # noqa: PLC0415
        except ImportError:
            try:
                import tensorrt as trt_mod  # noqa: PLC0415
            except ImportError:
                trt_mod = None
        trt_version = getattr(trt_mod, "__version__", None)
    return torch_tensorrt.__version__, ("tensorrt_rtx" if rtx else "tensorrt"), trt_version, ""


@functools.lru_cache(maxsize=1)
def detect() -> Capabilities:
    import torch

    cuda = torch.cuda.is_available()
    python_runtime_reason, strongly_typed = "", False
    gpus = []
    if cuda:
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            gpus.append(Gpu(i, p.name, int(p.total_memory), f"{p.major}.{p.minor}"))
        tt_version, flavour, trt_version, reason = _torch_tensorrt_info()
        if flavour != "none":
            from engine.backends.tensorrt import internals  # noqa: PLC0415

            found = internals.features()
            python_runtime_reason, strongly_typed = found.python_runtime_reason, found.strongly_typed
    else:
        tt_version, flavour, trt_version = None, "none", None
        reason = "no NVIDIA GPU (torch.cuda.is_available() is False)."
    return Capabilities(
        torch_version=torch.__version__,
        cuda_available=cuda,
        gpus=tuple(gpus),
        torch_tensorrt_version=tt_version,
        flavour=flavour,
        tensorrt_version=trt_version,
        tensorrt_unavailable_reason=reason,
        python_runtime_reason=python_runtime_reason,
        strongly_typed=strongly_typed,
    )


def resolve_device(request: RunRequest, caps: Capabilities) -> str:
    """ "cpu" or "cuda" for a request's device setting."""
    if request.device == "auto":
        return "cuda" if caps.cuda_available else "cpu"
    return request.device


def ram_bytes() -> int | None:
    """This machine's physical memory, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


NVIDIA_DRIVER_FILE = Path("/proc/driver/nvidia/version")


def nvidia_driver_version(path: Path = NVIDIA_DRIVER_FILE) -> str | None:
    """The loaded NVIDIA kernel driver's version ("580.159.04"), from the file the Linux driver writes; None where
    there is none (no NVIDIA driver, another OS). Shown with a run's environment; not part of its cache key."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    found = re.search(r"Kernel Module(?: for \S+)?\s+(\d+(?:\.\d+)+)", text)
    return found.group(1) if found else None


def fingerprint(caps: Capabilities, device: str, gpu_index: int = 0) -> dict[str, Any]:
    """What about the machine goes into a cache key and onto a result."""
    if device == "cuda" and caps.gpus:
        g = caps.gpus[min(gpu_index, len(caps.gpus) - 1)]
        device_name, cc = g.name, g.compute_capability
    else:
        device_name, cc = f"CPU: {caps.cpu_name}", ""
    out = {
        "device": device,
        "device_name": device_name,
        "compute_capability": cc,
        "torch": caps.torch_version,
        "torch_tensorrt": caps.torch_tensorrt_version,
        "flavour": caps.flavour,
        "tensorrt": caps.tensorrt_version,
    }
    if caps.flavour == "tensorrt" and caps.strongly_typed:
        # full TensorRT builds fp16 from fp16 dtypes since Torch-TensorRT 2.13: runs stored before the backend knew
        # built fp32 engines labelled fp16 under the same versions, and must not answer from the cache (the keys of
        # TensorRT-RTX and weakly typed runs stay as they were)
        out["precision_from"] = "dtypes"
    return out


def as_dict(caps: Capabilities) -> dict[str, Any]:
    return asdict(caps)
