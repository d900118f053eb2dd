"""Calibration data for a quantized build (``compile.calibration_data``): random tensors, a tensor file or an image
folder in the admin-configured calibration directory, loaded as batches shaped like the model's input; and the
quantization part of a request's check against this machine (``check_request``)."""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.capabilities import Capabilities, scheme_options
from engine.errors import CalibrationDataError, ConfigError
from engine.quantization.image_folders import decode, inspect_folder
from engine.settings.request import RunRequest
from engine.store import data_dir

CALIBRATION_DIR_ENV = "TRTDASH_CALIBRATION_DIR"
RANDOM_CALIBRATION = "random tensors (accuracy not meaningful for real data)"


def check_request(request: RunRequest, caps: Capabilities, gpu_index: int = 0) -> None:
    """The quantization part of ``runner.check_request``: the scheme against this machine's capability matrix, the
    calibration data against the calibration directory. Raises ConfigError naming the field."""
    c = request.compile
    if c.quantization == "none":
        return
    if request.backend != "tensorrt":
        raise ConfigError(
            "compile.quantization",
            f"{c.quantization!r} needs the tensorrt backend: the quantized model is compiled into "
            "TensorRT engines. Choose the tensorrt backend, or set quantization to none",
        )
    reason = scheme_options(caps, gpu_index)[c.quantization]
    if reason:
        raise ConfigError("compile.quantization", f"{c.quantization!r} is not available: {reason}")
    path = calibration_path(c.calibration_data)
    if path is not None and path.is_dir():  # a bad folder layout is named before anything is queued
        try:
            inspect_folder(path)
        except CalibrationDataError as e:
            raise ConfigError("compile.calibration_data", f"{e.message} {e.hint}".strip()) from None


def calibration_dir() -> Path:
    """The admin-configured folder calibration files and image folders are read from."""
    return Path(os.environ.get(CALIBRATION_DIR_ENV) or data_dir() / "calibration")


def calibration_path(source: str, directory: Path | None = None) -> Path | None:
    """The file or folder a ``compile.calibration_data`` value names (None for random tensors).

    Raises ConfigError when the value is malformed, leaves the calibration directory or names
    something that is not there.
    """
    field_name = "compile.calibration_data"
    source = source.strip()
    if source == "random":
        return None
    kind, sep, name = source.partition(":")
    if not sep or kind not in ("file", "dir") or not name.strip():
        raise ConfigError(field_name, f"{source!r} is not random, file:<name>.pt or dir:<folder>")
    root = (directory or calibration_dir()).resolve()
    rel = Path(name.strip())
    if rel.is_absolute() or ".." in rel.parts:
        raise ConfigError(field_name, f"{name!r} must be a name inside the calibration data directory {root}")
    path = root / rel
    if path.resolve() != path or not path.resolve().is_relative_to(root):  # a symlink leading out of it
        raise ConfigError(
            field_name,
            f"{name!r} must be a name inside the calibration data directory {root} (it is a link that leads elsewhere)",
        )
    if kind == "file":
        if path.suffix != ".pt":
            raise ConfigError(field_name, f"{name!r} is not a .pt tensor file (saved with torch.save)")
        if not path.is_file():
            raise ConfigError(
                field_name,
                f"no file {name!r} in the calibration data directory {root}; "
                "an administrator places calibration files there",
            )
    elif not path.is_dir():
        raise ConfigError(
            field_name,
            f"no folder {name!r} in the calibration data directory {root}; an administrator places image folders there",
        )
    return path


@dataclass
class CalibrationData:
    batches: list[tuple[torch.Tensor, ...]]
    description: str  # what the data was, e.g. "file imagenet_val.pt (64 samples)"
    meaningful: bool  # False for random tensors: accuracy figures say nothing about real data

    @property
    def warning(self) -> str:
        return (
            ""
            if self.meaningful
            else (
                "Calibrated on random tensors: the accuracy figures are not meaningful for real data. "
                "Calibrate on a tensor file or an image folder for accuracy you can trust."
            )
        )


def load_calibration(
    source: str, example_inputs: Sequence[torch.Tensor], batches: int, *, seed: int = 0, directory: Path | None = None
) -> CalibrationData:
    """``batches`` calibration batches shaped like ``example_inputs`` (their first dimension is the batch).

    ``source`` is a ``compile.calibration_data`` value. Tensor files are loaded with
    ``weights_only=True``: a file holding anything but tensors is refused, never executed.
    """
    path = calibration_path(source, directory)
    if path is None:
        g = torch.Generator().manual_seed(seed)
        data = [tuple(_random_like(t, g) for t in example_inputs) for _ in range(batches)]
        return CalibrationData(data, RANDOM_CALIBRATION, meaningful=False)
    if len(example_inputs) != 1 or not example_inputs[0].is_floating_point():
        raise CalibrationDataError(
            f"{path.name}: calibration files and image folders feed models with one floating-point input; "
            f"this model takes {len(example_inputs)} input(s).",
            "Use random calibration data for it.",
        )
    example = example_inputs[0]
    if path.is_dir():
        samples = _load_images(path, tuple(example.shape[1:]), batches * example.shape[0])
        what = f"images in {path.name}/"
    else:
        samples = _load_tensor_file(path, tuple(example.shape[1:]))
        what = f"file {path.name}"
    split = list(torch.split(samples.to(example.dtype), example.shape[0]))[:batches]
    return CalibrationData([(b,) for b in split], f"{what} ({sum(len(b) for b in split)} samples)", meaningful=True)


def _random_like(t: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    if t.is_floating_point():
        return torch.randn(t.shape, generator=g).to(t.dtype)
    high = max(int(t.max().item()) + 1, 2) if t.numel() else 2  # token ids: stay inside the example's range
    return torch.randint(0, high, t.shape, generator=g, dtype=t.dtype)


def _load_tensor_file(path: Path, sample_shape: tuple[int, ...]) -> torch.Tensor:
    expected = f"a tensor of shape (N, {', '.join(map(str, sample_shape))}) saved with torch.save, or a list of such"
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as e:
        raise CalibrationDataError(
            f"{path.name} could not be read as a tensor file ({type(e).__name__}: {str(e).splitlines()[0][:200]}).",
            f"Expected {expected}; files are loaded with weights_only=True, so pickled Python objects are refused.",
        ) from None
    parts = list(obj) if isinstance(obj, (list, tuple)) else [obj]
    if not parts or not all(isinstance(p, torch.Tensor) for p in parts):
        kinds = sorted({type(p).__name__ for p in parts}) or ["an empty list"]
        raise CalibrationDataError(f"{path.name} holds {', '.join(kinds)}, not tensors.", f"Expected {expected}.")
    for p in parts:
        if tuple(p.shape[1:]) != sample_shape or p.dim() != len(sample_shape) + 1:
            raise CalibrationDataError(
                f"{path.name} holds a tensor of shape {tuple(p.shape)}; the model's input samples are {sample_shape}.",
                f"Expected {expected}.",
            )
        if not p.is_floating_point():
            raise CalibrationDataError(
                f"{path.name} holds {p.dtype} values; the model takes floating point.",
                f"Expected {expected}, as float32 or float16.",
            )
    samples = torch.cat([p.float() for p in parts])
    if len(samples) == 0:
        raise CalibrationDataError(f"{path.name} holds no samples.", f"Expected {expected}.")
    return samples


def _load_images(folder: Path, sample_shape: tuple[int, ...], limit: int) -> torch.Tensor:
    """The first ``limit`` images of a flat folder, or of a labelled one taking every class in turn."""
    if len(sample_shape) != 3 or sample_shape[0] != 3:
        raise CalibrationDataError(
            f"{folder.name}/: image folders feed models whose input is one RGB image "
            f"(3, H, W); this model takes {sample_shape}.",
            "Use a tensor file or random calibration data.",
        )
    return decode(inspect_folder(folder).files[:limit], folder, sample_shape)
