"""Errors the user can act on. ``UserError`` is the one base: it carries the user-facing ``message`` (what is
wrong) and ``hint`` (what to do about it); pages show both and put the raw traceback in an expander, the CLI
prints them, job records store them. Code that reports an error to a person tests ``isinstance(e, UserError)``.

Every subclass also keeps the built-in exception it always was (``ValueError`` for bad input, ``RuntimeError``
for a failed run, ``KeyError`` for something not found), so ``except ValueError`` still catches a bad setting.
The errors of one place live beside it and subclass this one: ``JobError`` (engine/jobs/record.py),
``RunNotFound`` / ``InvalidRunId`` (engine/store), ``ReportError`` (engine/report), ``LocalisationNotFound``
(engine/studies/localisation), ``SignInError`` (engine/access.py), ``TorchTensorRTMismatch``
(engine/backends/tensorrt/internals.py). The ones raised across the engine are here.
"""

from __future__ import annotations

from typing import Any


class UserError(Exception):
    """An error the user can act on: ``message`` says what is wrong, ``hint`` what to do ("" when it goes
    without saying)."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message + (f" {self.hint}" if self.hint else "")


def shown(value: Any, limit: int = 80) -> str:
    """A value as an error message quotes it: its repr, cut short (a pasted megabyte stays out of the message)."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # a structure nested too deep, an int too long to print
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "…"


# -- before anything runs -----------------------------------------------------------------------------------
class ConfigError(UserError, ValueError):
    """A request field holds a value that is not allowed.

    ``field`` is the dotted name the user sees (``compile.min_block_size``), ``message``
    says what is wrong and what is allowed.
    """

    def __init__(self, field_name: str, message: str, hint: str = ""):
        super().__init__(message, hint)
        self.field = field_name
        self.args = (f"{field_name}: {message}",)

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ModelError(UserError, ValueError):
    """A model cannot be built or fed as asked; ``message`` says what to do."""

    def __str__(self) -> str:
        return self.message + (f" Hint: {self.hint}" if self.hint else "")


# -- while a run runs -------------------------------------------------------------------------------------
class RunError(UserError, RuntimeError):
    """Base of the errors a run can end with: raised by the backends (the Torch-TensorRT one above all)."""


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


class QuantizationError(RunError):
    """A quantized run cannot go on; ``message`` says what is wrong, ``hint`` what to do."""


class CalibrationDataError(QuantizationError):
    """A calibration file or folder is missing, unreadable or shaped unlike the model's input."""
