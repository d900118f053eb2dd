"""The one result schema every backend fills and every chart reads.

A ``RunResult`` is plain data: scalars and dataclasses serialise to JSON, the per-layer
table is a pandas DataFrame with the columns in ``LAYER_COLUMNS``. Nothing here knows how
a number was measured or how it is drawn.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from engine.latency_stats import LatencyStats
from engine.settings.defaults import INDUCTOR_MODE_FROM_BOOL
from engine.stage_times import build_time_s

SCHEMA_VERSION = 1

# Per-layer table. One row per TensorRT layer or PyTorch module / op, in execution order.
LAYER_COLUMNS = [
    "order",  # execution order within the run (0-based)
    "segment",  # "trt_engine_0", "pytorch_1", or "eager" for the eager backend
    "runtime",  # "tensorrt" | "pytorch"
    "name",  # TensorRT layer name or nn.Module path
    "layer_type",  # TensorRT LayerType or nn.Module class name
    "module_path",  # nn.Module path the layer came from, "" when unknown, "<fused>" for fused layers
    "precision",  # "fp32" | "fp16" | "int8" | ... of the layer's outputs, "" when unknown
    "tactic",  # TensorRT tactic / kernel, "" for PyTorch
    "input_shapes",  # e.g. "1x64x56x56; 1x64x56x56"
    "output_shapes",
    "avg_ms",  # mean time per inference
    "share",  # fraction of the run's profiled time (0..1)
]
FUSED = "<fused>"


def empty_layers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            c: pd.Series(dtype="float64" if c in ("avg_ms", "share") else "int64" if c == "order" else "object")
            for c in LAYER_COLUMNS
        }
    )


def normalise_layers(df: pd.DataFrame) -> pd.DataFrame:
    """Fill missing columns, order them, recompute share from avg_ms."""
    df = df.copy()
    for c in LAYER_COLUMNS:
        if c not in df.columns:
            df[c] = 0.0 if c in ("avg_ms", "share") else ""
    if "order" not in df or df["order"].eq("").all():
        df["order"] = range(len(df))
    df = df[LAYER_COLUMNS].reset_index(drop=True)
    df["avg_ms"] = df["avg_ms"].astype(float)
    total = df["avg_ms"].sum()
    df["share"] = df["avg_ms"] / total if total > 0 else 0.0
    df["order"] = df["order"].astype(int)
    return df


# the start of the run warning given when the eager fp32 reference output is ~0 (random weights; torchvision's
# ViT, for one, starts its classification head at zero): every accuracy figure of such a run says nothing
DEGENERATE_REFERENCE = "The eager fp32 reference output is ~0"


@dataclass
class Segment:
    """One piece of the partitioned graph, in execution order."""

    kind: str  # "tensorrt" | "pytorch"
    index: int  # k of "TRT Engine #k" / j of the PyTorch subgraph (1-based, as dryrun prints)
    name: str  # submodule name, e.g. "_run_on_acc_0" / "_run_on_gpu_1"
    op_count: int
    inputs: list[str] = field(default_factory=list)  # "(1, 3, 224, 224)@float16"
    outputs: list[str] = field(default_factory=list)


@dataclass
class Recommendation:
    kind: str  # "minimal" | "moderate" | "current"
    min_block_size: int
    engines: int


@dataclass
class Segmentation:
    """Graph-segmentation stats, as Torch-TensorRT's dryrun derives them."""

    total_ops: int
    supported_ops: int
    unsupported_ops: dict[str, int] = field(default_factory=dict)  # op -> count
    pytorch_nodes: list[dict[str, str]] = field(default_factory=list)  # {"op":..., "location":...}
    segments: list[Segment] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)
    source: str = ""  # "tracker" | "dryrun_text"

    @property
    def coverage(self) -> float:
        return self.supported_ops / self.total_ops if self.total_ops else 0.0

    @property
    def engine_count(self) -> int:
        return sum(1 for s in self.segments if s.kind == "tensorrt")

    @property
    def pytorch_segment_count(self) -> int:
        return sum(1 for s in self.segments if s.kind == "pytorch")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Segmentation:
        d = dict(d)
        d["segments"] = [Segment(**s) for s in d.get("segments", [])]
        d["recommendations"] = [Recommendation(**r) for r in d.get("recommendations", [])]
        return cls(**d)


@dataclass
class Accuracy:
    """Outputs of the run against a reference (eager fp32) on the same inputs."""

    reference: str  # e.g. "eager fp32"
    rel_l2: float
    max_abs: float
    top1_agreement: float | None  # None when the output is not a classification
    nonfinite: int | None = None  # NaN/inf values in the run's output; None: not counted (older runs)


@dataclass
class LabelledAccuracy:
    """Top-1 accuracy against the labels of an image folder (ImageFolder layout), each model on the same images."""

    source: str  # e.g. "200 images in 4 classes in val/ (folder names are output indices)"
    images: int
    classes: int
    eager_top1: float  # eager fp32
    fake_quant_top1: float
    engine_top1: float | None = None  # None: the engine was not run on them
    fake_quant_agreement: float = 1.0  # top-1 agreement with eager fp32 on these images
    engine_agreement: float | None = None


@dataclass
class QuantizationReport:
    """What post-training quantization did and cost: the three-way accuracy on the same inputs.

    eager fp32 -> fake-quantized PyTorch model (the quantization error itself) -> compiled engine
    (the conversion error). ``conversion_problem`` is set when the engine departs from the
    fake-quantized model far more than that model departs from eager (engine.quantization decides).
    """

    scheme: str  # engine.settings.defaults.QUANT_SCHEMES
    base_precision: str  # what the unquantized layers ran in: "fp16" | "fp32"
    calibration: str  # e.g. "random tensors (accuracy not meaningful for real data)"
    calibration_batches: int
    calibration_meaningful: bool  # False for random tensors
    quantizers: int = 0  # Q/DQ points ModelOpt inserted (enabled ones)
    fake_quant_vs_eager: Accuracy | None = None
    engine_vs_fake_quant: Accuracy | None = None
    engine_vs_eager: Accuracy | None = None
    conversion_problem: bool = False
    labelled: LabelledAccuracy | None = None  # calibration folder in the ImageFolder layout
    kept: list[str] = field(default_factory=list)  # compile.keep_high_precision: modules whose quantizers were off

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantizationReport:
        d = dict(d)
        for k in ("fake_quant_vs_eager", "engine_vs_fake_quant", "engine_vs_eager"):
            if d.get(k):
                d[k] = Accuracy(**d[k])
        if d.get("labelled"):
            d["labelled"] = LabelledAccuracy(**d["labelled"])
        return cls(**d)


BUSY = "busy"  # GpuTime.figure: the union of all kernel intervals on all streams per inference
KERNEL_SUM = "kernel_sum"  # stored before busy time existed: the sum of kernel durations (overlap counted twice)


@dataclass
class GpuTime:
    """GPU *busy time* per inference from a CUDA-activity trace (torch.profiler / CUPTI), in a pass of its own
    after end-to-end timing: the union of every kernel's interval on every stream (side-by-side kernels count
    once). Unlike end-to-end latency at small batch it holds still (0.13% between fresh processes on the H200).
    The duration sum is *kernel work* (``kernel_sum_ms``: overlap counted in full, never judged on); runs stored
    before busy time hold that sum in ``median_ms`` and load with ``figure == KERNEL_SUM``."""

    median_ms: float  # median over the trace's windows of busy time per inference (``figure``)
    min_ms: float  # fastest window
    max_ms: float  # slowest window
    kernels_per_inference: float  # kernel launches per inference (memcpy/memset not counted)
    iters: int  # inferences traced
    windows: int  # windows the iterations were split into (the spread is across them)
    source: str = "cuda_activity"  # how it was measured
    figure: str = KERNEL_SUM  # what median/min/max are: BUSY, or KERNEL_SUM (a run stored before busy time)
    kernel_sum_ms: float | None = None  # kernel work: median over windows of summed kernel durations per inference
    settled: bool | None = None  # two consecutive warm-up windows agreed before measuring; None: not checked (old)
    warmup_calls: int = 0  # calls traced while settling
    settle_gap_pct: float | None = None  # busy difference between the last two warm-up windows, in percent

    @property
    def spread_pct(self) -> float:
        """(max - min) / median of the windows, in percent."""
        return 100.0 * (self.max_ms - self.min_ms) / self.median_ms if self.median_ms > 0 else 0.0

    @property
    def is_busy(self) -> bool:
        """The figure is busy time (False: a kernel-duration sum stored before busy time existed)."""
        return self.figure == BUSY


@dataclass
class GraphReplay:
    """Latency of the compiled module captured once as a CUDA graph and replayed (no host launch overhead),
    or why it could not be captured (PyTorch fallback with host syncs, dynamic shapes, ...)."""

    captured: bool
    reason: str = ""  # why not captured; "" when captured
    median_ms: float | None = None
    p10_ms: float | None = None
    p90_ms: float | None = None
    iters: int = 0


@dataclass
class EnginePrecision:
    """The engine's layers by output datatype against the run's label (``engine.profiling.engine_precision``)."""

    layer_counts: dict[str, int]  # output datatype -> layers: {"fp16": 148, "fp32": 1}
    expected: str  # compile.precision, or quant_base_precision for a quantized run
    mismatch: str = ""  # "" | "label_absent" (no layer in it) | "lowered" (an fp32 run with lower-precision layers)

    @property
    def layers(self) -> int:
        return sum(self.layer_counts.values())


@dataclass
class RunResult:
    run_id: str
    key: str
    created_at: str  # ISO 8601 UTC
    request: dict[str, Any]  # RunRequest.to_dict()
    env: dict[str, Any]  # capabilities.fingerprint(): device name, versions, flavour
    model_info: dict[str, Any]  # params, input shapes/dtypes, identity
    latency: LatencyStats
    latency_samples_ms: list[float] = field(default_factory=list)
    stages_s: dict[str, float] = field(default_factory=dict)  # export_s, partition_s, build_s, first_inference_s
    engine_count: int = 0
    engine_bytes: int = 0
    peak_memory_bytes: int | None = None
    accuracy: Accuracy | None = None
    segmentation: Segmentation | None = None
    profiled_sum_ms: float | None = None  # sum of per-layer averages (profiling on)
    baselines: dict[str, LatencyStats] = field(default_factory=dict)  # "eager_fp16", "inductor_default" ...
    # compile time of a compiled baseline (its first call: torch.compile traces and builds there), by name
    baseline_compile_s: dict[str, float] = field(default_factory=dict)  # "inductor_max-autotune": 312.4
    artifacts: list[str] = field(default_factory=list)  # file names in the run's artifact dir
    warnings: list[str] = field(default_factory=list)
    is_sample: bool = False
    tags: list[str] = field(default_factory=list)  # e.g. "sweep:<id>", "knob:optimization_level=3"
    quantization: QuantizationReport | None = None  # runs with compile.quantization != "none"
    gpu_time: GpuTime | None = None  # None: not measured (CPU run, or stored before it existed)
    graph_replay: GraphReplay | None = None  # None: not attempted
    plan_fingerprint: str | None = None  # identity of the engine plan(s): equal -> the same kernels
    engine_precision: EnginePrecision | None = None  # None: not read (no DETAILED layer info, stored before)
    submitted_by: str = ""  # who asked for the run; "" = unknown (stored before it was recorded)
    schema_version: int = SCHEMA_VERSION
    layers: pd.DataFrame = field(default_factory=empty_layers, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict without the layer table (stored separately)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "layers"}
        return _plain(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any], layers: pd.DataFrame | None = None) -> RunResult:
        d = dict(d)
        d["latency"] = LatencyStats(**d["latency"])
        d["baselines"] = {k: LatencyStats(**v) for k, v in (d.get("baselines") or {}).items()}
        measure = (d.get("request") or {}).get("measure") or {}
        if isinstance(measure.get("compare_inductor"), bool):  # stored before the knob had modes
            d["request"] = {
                **d["request"],
                "measure": {**measure, "compare_inductor": INDUCTOR_MODE_FROM_BOOL[measure["compare_inductor"]]},
            }
        if d.get("accuracy"):
            d["accuracy"] = Accuracy(**d["accuracy"])
        if d.get("segmentation"):
            d["segmentation"] = Segmentation.from_dict(d["segmentation"])
        if d.get("quantization"):
            d["quantization"] = QuantizationReport.from_dict(d["quantization"])
        if d.get("gpu_time"):
            d["gpu_time"] = GpuTime(**d["gpu_time"])
        if d.get("graph_replay"):
            d["graph_replay"] = GraphReplay(**d["graph_replay"])
        if d.get("engine_precision"):
            d["engine_precision"] = EnginePrecision(**d["engine_precision"])
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        return cls(**d, layers=normalise_layers(layers) if layers is not None else empty_layers())

    @property
    def build_s(self) -> float | None:
        """Build time: torch.export plus the compile call (``build_time_s``); None when nothing was compiled."""
        return build_time_s(self.stages_s)

    @property
    def host_overhead_ms(self) -> float | None:
        """End-to-end median minus GPU kernel time: host launch and runtime overhead per inference."""
        if self.gpu_time is None or not self.latency.timed:
            return None
        return max(0.0, self.latency.median_ms - self.gpu_time.median_ms)

    @property
    def label(self) -> str:
        """Short, unique name of a run for legends, pickers and column headers."""
        r = self.request
        backend = r["backend"]
        prec = r["compile"]["precision"]
        if r["compile"].get("quantization", "none") != "none":
            prec = f"{r['compile']['quantization']}/{r['compile'].get('quant_base_precision', 'fp16')}"
        extra = ""
        if backend == "tensorrt":
            c = r["compile"]
            level = c["optimization_level"]
            extra = f" mbs={c['min_block_size']} opt={level if level is not None else 'def'}"
        # the run id's random tail keeps two runs with the same settings apart
        return f"{r['model']['source']} b{r['model']['batch_size']} {backend} {prec}{extra} · {self.run_id[-8:]}"


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _plain(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    return obj
