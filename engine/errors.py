"""Errors a run can end with that the user can act on: each carries the message and a hint.

Raised by the Torch-TensorRT backend; the dashboard shows ``message`` and ``hint`` and puts the
raw traceback in an expander. ``ConfigError`` (engine.config) covers bad settings before anything runs.
"""

from __future__ import annotations


class RunError(RuntimeError):
    """Base: a run failed for a reason the user can act on."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message + (f" {hint}" if hint else ""))
        self.message = message
        self.hint = hint


class ExportError(RunError):
    """``torch.export`` could not capture the model (data-dependent control flow, unsupported Python...)."""


class UnsupportedOpError(RunError):
    """An op TensorRT cannot run while ``require_full_compilation`` forbids a PyTorch fallback."""

    def __init__(self, message: str, hint: str = "", ops: dict[str, int] | None = None):
        super().__init__(message, hint)
        self.ops = ops or {}


class EngineBuildError(RunError):
    """TensorRT failed to build an engine; names the submodule and the converter/layer when known."""


class GpuOutOfMemory(RunError):
    """The GPU ran out of memory; memory has been released, a smaller run can follow."""
