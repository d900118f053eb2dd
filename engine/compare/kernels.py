"""The kernel diff of two runs: which GPU kernels appeared, disappeared or changed time per inference, grouped by
who launched them (TensorRT, PyTorch's ATen, a cuDNN/cuBLAS/CUTLASS library kernel either may launch) and what they
do (convolution, GEMM, batch norm, elementwise, copies, layout conversions, ...), mapped to the layer whose tactic
names them where the layer table knows it, and to the PyTorch-fallback subgraphs where PyTorch launched them.

Reads each run's per-kernel table (``gpu_kernels.csv``: name, calls and ms per inference, written by the GPU-time
pass, ``engine.profiling.gpu_time``). Deciding code only: findings (``OriginChange``) and tables;
``engine.compare.kernel_words`` says them.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import pandas as pd

from engine.result import RunResult
from engine.store import RunStore

KERNEL_FILE = "gpu_kernels.csv"
ORIGIN_NAMES = {
    "tensorrt": "TensorRT",
    "pytorch": "PyTorch (ATen)",
    "library": "cuDNN/cuBLAS/CUTLASS",
}
# what a kernel does, read from its name, first match wins (batch norm before elementwise: its helpers are
# elementwise kernels named after it; convolution before GEMM: implicit-GEMM convolutions name both)
FAMILIES = (
    ("fused (Myelin)", re.compile(r"^__myl_")),
    ("batch norm", re.compile(r"batch_norm", re.I)),
    ("layout (NCHW↔NHWC)", re.compile(r"nchwToNhwc|nhwcToNchw", re.I)),
    ("convolution", re.compile(r"conv|fprop|dgrad|wgrad", re.I)),
    ("matmul / GEMM", re.compile(r"gemm|matmul|nvjet|splitKreduce|cublas", re.I)),
    ("copy / cast", re.compile(r"copy_kernel|_copy|cast", re.I)),
    ("reduction", re.compile(r"reduce_kernel|reduction", re.I)),
    ("pooling / resample", re.compile(r"pool|resample", re.I)),
    ("softmax", re.compile(r"softmax", re.I)),
    ("elementwise", re.compile(r"elementwise|pointwise|Functor|clamp", re.I)),
)
OTHER_FAMILY = "other"
# a kernel whose time per inference moved by less than this is the same kernel at the same speed (the GPU-time
# windows of one engine agree within ~0.1%; a kernel of a microsecond jitters by a few tens of nanoseconds)
SAME_REL, SAME_ABS_MS = 0.05, 0.0005
DIFF_COLUMNS = [
    "status",  # "appeared" | "disappeared" | "changed" | "same"
    "kernel",  # short name
    "origin",
    "family",
    "layer",  # the layer whose tactic is this kernel (other run first), "" when no layer names it
    "module",
    "calls_base",
    "calls_other",
    "calls_delta",
    "ms_base",
    "ms_other",
    "ms_delta",
    "name",  # full kernel name
]


def kernel_table(store: RunStore, run: RunResult) -> pd.DataFrame | None:
    """The run's per-kernel table (name, calls_per_inference, ms_per_inference); None when it stored none."""
    if KERNEL_FILE not in run.artifacts:
        return None
    try:
        text = store.artifact_path(run.run_id, KERNEL_FILE).read_text()
    except FileNotFoundError:
        return None
    table = pd.read_csv(io.StringIO(text))
    if not {"name", "calls_per_inference", "ms_per_inference"} <= set(table.columns):
        return None
    return table


def family(name: str) -> str:
    for label, pattern in FAMILIES:
        if pattern.search(name):
            return label
    return OTHER_FAMILY


def has_fallback(run: RunResult) -> bool:
    seg = run.segmentation
    return seg is not None and seg.pytorch_segment_count > 0


def origin(name: str, run: RunResult, *, library_known: bool = True) -> str:
    """Who launched the kernel: ATen kernels are PyTorch's, Myelin kernels and the kernels a layer's tactic names are
    TensorRT's; a cuDNN/cuBLAS/CUTLASS kernel is TensorRT's in a run that has no PyTorch fallback, else either's.
    ``library_known=False`` (a diff where either run has a fallback) leaves every library kernel "library" in both
    runs, so one kernel is not counted TensorRT's in one run and unknown in the other."""
    if "at::native::" in name or name.startswith("void at::"):
        return "pytorch"
    if run.request.get("backend") == "eager":
        return "pytorch"
    if name.startswith("__myl") or name in set(run.layers["tactic"]):
        return "tensorrt"
    seg = run.segmentation
    if library_known and seg is not None and seg.pytorch_segment_count == 0 and seg.engine_count > 0:
        return "tensorrt"
    return "library"


def short_name(name: str) -> str:
    """``void at::native::vectorized_elementwise_kernel<8, at::native::float16_copy_kernel_cuda(...)...>(...)`` →
    ``vectorized_elementwise_kernel[float16_copy_kernel_cuda]``: the kernel and the functor it runs."""
    text = name.removeprefix("void ")
    base = re.split(r"[<(]", text, maxsplit=1)[0].rsplit("::", 1)[-1]
    inner = text[len(re.split(r"[<(]", text, maxsplit=1)[0]) :]
    functors = [f for f in re.findall(r"\b([A-Za-z_]\w*(?:_kernel_cuda|Functor_\w+|_calc_\w+|launch_\w+))", inner)]
    functors = list(dict.fromkeys(functors))[:2]
    if re.fullmatch(r"Kernel\d*", base) and (first := re.match(r"<\s*([A-Za-z_]\w*)", inner)):
        base = first.group(1)  # cutlass::Kernel2<cutlass_80_tensorop_f16_s16816gemm_...>: the template names it
    return f"{base}[{', '.join(functors)}]" if functors else base


def _layers_by_tactic(run: RunResult) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for tactic, name, module in run.layers[["tactic", "name", "module_path"]].itertuples(index=False):
        if tactic and tactic not in out:
            out[tactic] = (name, module if module != "<fused>" else "")
    return out


def kernel_diff_table(base: RunResult, other: RunResult, base_k: pd.DataFrame, other_k: pd.DataFrame) -> pd.DataFrame:
    """One row per kernel name in either run, biggest time change first."""
    cols = ["calls_per_inference", "ms_per_inference"]
    a = base_k.groupby("name")[cols].sum().add_suffix("_base")
    b = other_k.groupby("name")[cols].sum().add_suffix("_other")
    both = a.join(b, how="outer").fillna(0.0)
    layers = {**_layers_by_tactic(base), **_layers_by_tactic(other)}
    library_known = not (has_fallback(base) or has_fallback(other))
    rows = []
    for name, r in both.iterrows():
        ms_a, ms_b = r["ms_per_inference_base"], r["ms_per_inference_other"]
        calls_a, calls_b = r["calls_per_inference_base"], r["calls_per_inference_other"]
        if calls_a == 0:
            status = "appeared"
        elif calls_b == 0:
            status = "disappeared"
        elif abs(ms_b - ms_a) > max(SAME_ABS_MS, SAME_REL * ms_a) or calls_a != calls_b:
            status = "changed"
        else:
            status = "same"
        who = origin(str(name), other if calls_b else base, library_known=library_known)
        layer, module = layers.get(str(name), ("", ""))
        rows.append(
            {
                "status": status,
                "kernel": short_name(str(name)),
                "origin": who,
                "family": family(str(name)),
                "layer": layer,
                "module": module,
                "calls_base": calls_a,
                "calls_other": calls_b,
                "calls_delta": calls_b - calls_a,
                "ms_base": ms_a,
                "ms_other": ms_b,
                "ms_delta": ms_b - ms_a,
                "name": str(name),
            }
        )
    df = pd.DataFrame(rows, columns=DIFF_COLUMNS)
    return df.reindex(df["ms_delta"].abs().sort_values(ascending=False).index).reset_index(drop=True)


@dataclass(frozen=True)
class FamilyChange:
    family: str
    calls_delta: float
    ms_delta: float


@dataclass(frozen=True)
class OriginChange:
    """What one launcher's kernels added or removed per inference."""

    origin: str  # key of ORIGIN_NAMES
    calls_delta: float
    ms_delta: float
    appeared: int  # distinct kernels only in the other run
    disappeared: int
    families: tuple[FamilyChange, ...]  # biggest time change first
    where: tuple[str, ...]  # PyTorch-fallback positions of the run that launched them ("between engines 1 and 2")


@dataclass(frozen=True)
class KernelDiff:
    base_id: str
    other_id: str
    base_ms: float  # summed kernel time per inference of each table
    other_ms: float
    base_calls: float
    other_calls: float
    table: pd.DataFrame  # DIFF_COLUMNS
    findings: tuple[OriginChange, ...]  # biggest time change first

    @property
    def ms_delta(self) -> float:
        return self.other_ms - self.base_ms

    @property
    def calls_delta(self) -> float:
        return self.other_calls - self.base_calls

    def groups(self) -> pd.DataFrame:
        """Time and launches changed per (origin, family), for the chart."""
        g = self.table.groupby(["origin", "family"], as_index=False)[["calls_delta", "ms_delta"]].sum()
        g = g[(g["ms_delta"].abs() > 0) | (g["calls_delta"] != 0)]
        return g.reindex(g["ms_delta"].abs().sort_values(ascending=False).index).reset_index(drop=True)


def fallback_positions(run: RunResult) -> tuple[str, ...]:
    """Where the run's PyTorch subgraphs sit between its engines: "before engine 1", "between engines 1 and 2",
    "after engine 4" (engines numbered in execution order)."""
    seg = run.segmentation
    if seg is None:
        return ()
    out, engines_seen = [], 0
    kinds = [s.kind for s in seg.segments]
    total = kinds.count("tensorrt")
    for kind in kinds:
        if kind == "tensorrt":
            engines_seen += 1
        elif engines_seen == 0:
            out.append("before engine 1" if total else "with no engine")
        elif engines_seen == total:
            out.append(f"after engine {engines_seen}")
        else:
            out.append(f"between engines {engines_seen} and {engines_seen + 1}")
    return tuple(out)


def diff(base: RunResult, other: RunResult, base_k: pd.DataFrame, other_k: pd.DataFrame) -> KernelDiff:
    table = kernel_diff_table(base, other, base_k, other_k)
    findings = []
    for who, part in table.groupby("origin"):
        fam = part.groupby("family")[["calls_delta", "ms_delta"]].sum()
        fam = fam.reindex(fam["ms_delta"].abs().sort_values(ascending=False).index)
        ms = float(part["ms_delta"].sum())
        calls = float(part["calls_delta"].sum())
        if abs(ms) < SAME_ABS_MS and calls == 0:
            continue
        launcher = other if ms >= 0 else base  # the run whose extra kernels these are
        findings.append(
            OriginChange(
                origin=str(who),
                calls_delta=calls,
                ms_delta=ms,
                appeared=int((part["status"] == "appeared").sum()),
                disappeared=int((part["status"] == "disappeared").sum()),
                families=tuple(
                    FamilyChange(str(f), float(r["calls_delta"]), float(r["ms_delta"]))
                    for f, r in fam.iterrows()
                    if abs(r["ms_delta"]) >= SAME_ABS_MS or r["calls_delta"] != 0
                ),
                where=fallback_positions(launcher) if who == "pytorch" else (),
            )
        )
    findings.sort(key=lambda f: -abs(f.ms_delta))
    return KernelDiff(
        base.run_id,
        other.run_id,
        float(base_k["ms_per_inference"].sum()),
        float(other_k["ms_per_inference"].sum()),
        float(base_k["calls_per_inference"].sum()),
        float(other_k["calls_per_inference"].sum()),
        table,
        tuple(findings),
    )


def diff_stored(store: RunStore, base: RunResult, other: RunResult) -> KernelDiff | None:
    """The diff of two stored runs; None when either stored no per-kernel table (``missing_tables`` says which)."""
    a, b = kernel_table(store, base), kernel_table(store, other)
    if a is None or b is None:
        return None
    return diff(base, other, a, b)


def missing_tables(store: RunStore, runs: list[RunResult]) -> list[RunResult]:
    return [r for r in runs if kernel_table(store, r) is None]
