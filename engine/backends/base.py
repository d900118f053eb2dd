"""What every backend receives and returns."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pandas as pd

from engine.latency_stats import LatencyStats
from engine.result import (
    Accuracy,
    EnginePrecision,
    GpuTime,
    GraphReplay,
    QuantizationReport,
    Segmentation,
    empty_layers,
)

if TYPE_CHECKING:
    from engine.models.entry import BuiltModel
    from engine.settings.request import RunRequest


class ProgressFn(Protocol):
    def __call__(self, stage: str, fraction: float | None = None, detail: str = "") -> None:
        """Report the current stage ("export", "partition", "build", "warmup", "timing",
        "layer_profile", ...), how far it is (0..1, None when unknown) and a short detail
        such as "engine 2/5" or "iteration 40/100". May raise ``Cancelled``."""


def no_progress(stage: str, fraction: float | None = None, detail: str = "") -> None:
    return None


class Cancelled(Exception):
    """Raised from a progress callback when the user cancelled the job."""


@dataclass
class Measurement:
    """What a backend measured. The runner adds identity, environment and stores it."""

    latency: LatencyStats
    latency_samples_ms: list[float] = field(default_factory=list)
    stages_s: dict[str, float] = field(default_factory=dict)
    layers: pd.DataFrame = field(default_factory=empty_layers)
    engine_count: int = 0
    engine_bytes: int = 0
    peak_memory_bytes: int | None = None
    accuracy: Accuracy | None = None
    segmentation: Segmentation | None = None
    profiled_sum_ms: float | None = None
    baselines: dict[str, LatencyStats] = field(default_factory=dict)
    baseline_compile_s: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    quantization: QuantizationReport | None = None
    gpu_time: GpuTime | None = None
    graph_replay: GraphReplay | None = None
    plan_fingerprint: str | None = None
    engine_precision: EnginePrecision | None = None
    raw_files: dict[str, Path | bytes] = field(default_factory=dict)  # name -> file or content


BackendFn = Callable[["RunRequest", "BuiltModel", str, ProgressFn, Path], Measurement]


def get_backend(name: str) -> BackendFn:
    """The ``run(request, model, device, progress, workdir)`` function of a backend, imported lazily."""
    module = {"eager": "engine.backends.eager", "tensorrt": "engine.backends.tensorrt"}[name]
    return importlib.import_module(module).run
