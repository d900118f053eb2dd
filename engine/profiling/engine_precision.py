"""The precision an engine's layers actually ran in, read from TensorRT's layer information, against the run's label.

At DETAILED profiling verbosity the engine inspector names each layer's output ``Format/Datatype`` (``Half``,
``Float``, ``Int8`` ...; ``trt_profile.parse_layer_info`` turns it into ``fp16``, ``fp32``, ``int8``). Counting them
says what the engine is, whatever the request asked for: on Torch-TensorRT 2.14 an "fp16" request passed through
``enabled_precisions`` (a keyword 2.13 removed) came out all fp32 and was labelled fp16. A run whose engine does not
carry its label's precision is refused (``EnginePrecisionMismatch``) before it is timed or stored, so no cache entry
answers for it.

The rule is deliberately loose where the layer types allow several honest outcomes: the label's precision must be
the output of some layer (fp16 layers in an fp16 build, fp16 layers in a quantized build whose unquantized layers run
in fp16), and an unquantized fp32 build must have no layer in a lower float or integer precision. A quantized build's
own dtype (int8, fp8) may be fused away into fp16-output kernels, so it is counted, not required.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from engine.errors import RunError
from engine.profiling.trt_profile import parse_layer_info
from engine.result import EnginePrecision
from engine.settings.request import CompileSettings

LOWER_PRECISIONS = ("fp16", "bf16", "fp8", "int8", "fp4", "int4")
FLOATS = ("fp32", "fp16", "bf16", "fp8", "fp4")
LABEL_ABSENT = "label_absent"
LOWERED = "lowered"


class EnginePrecisionMismatch(RunError):
    """The built engine does not run in the precision the run is labelled with."""

    def __init__(self, message: str, hint: str, precision: EnginePrecision):
        super().__init__(message, hint)
        self.precision = precision


def layer_counts(layer_infos: Sequence[str]) -> dict[str, int] | None:
    """Layers per output datatype over every engine's layer information (layers without an output left out);
    None unless the information is DETAILED (bare layer names carry no datatype)."""
    counts: Counter[str] = Counter()
    detailed = False
    for text in layer_infos:
        for info in parse_layer_info(text).values():
            detailed = detailed or bool(info.layer_type)
            if info.precision:
                counts[info.precision] += 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))) if detailed and counts else None


def expected_precision(c: CompileSettings) -> str:
    """The precision a run is labelled with: ``compile.precision``, or the base precision of a quantized run."""
    return c.quant_base_precision if c.quantization != "none" else c.precision


def engine_precision(c: CompileSettings, layer_infos: Sequence[str]) -> EnginePrecision | None:
    """The engines' layer datatypes against the run's label, with the mismatch found ("" when none); None when the
    layer information cannot say (not DETAILED, no engine)."""
    counts = layer_counts(layer_infos)
    if counts is None:
        return None
    expected = expected_precision(c)
    mismatch = ""
    if not any(counts.get(p) for p in FLOATS):
        pass  # only integer or boolean layers (shape arithmetic): nothing to say about the float precision
    elif not counts.get(expected):
        mismatch = LABEL_ABSENT
    elif expected == "fp32" and c.quantization == "none" and any(counts.get(p) for p in LOWER_PRECISIONS):
        mismatch = LOWERED
    return EnginePrecision(counts, expected, mismatch)


def shares(p: EnginePrecision) -> dict[str, float]:
    """Share of the layers per datatype, largest first."""
    n = p.layers
    return {k: v / n for k, v in sorted(p.layer_counts.items(), key=lambda kv: (-kv[1], kv[0]))} if n else {}


def summary(p: EnginePrecision) -> str:
    """``fp16 99% · fp32 1% of 149 layers``."""
    parts = " · ".join(f"{k} {v:.0%}" if v >= 0.01 else f"{k} {p.layer_counts[k]}" for k, v in shares(p).items())
    return f"{parts} of {p.layers} layers"


def check(p: EnginePrecision | None) -> None:
    """Raise ``EnginePrecisionMismatch`` when the engine's layers contradict the run's label."""
    if p is None or not p.mismatch:
        return
    if p.mismatch == LABEL_ABSENT:
        what = f"no layer of the engine outputs {p.expected} ({summary(p)})"
    else:
        lower = ", ".join(k for k in p.layer_counts if k in LOWER_PRECISIONS)
        what = f"an fp32 build has layers in {lower} ({summary(p)})"
    raise EnginePrecisionMismatch(
        f"The engine does not run in the precision this run is labelled with: {what}, by TensorRT's layer "
        "information. Its timings would be those of another precision, so the run was not timed or stored.",
        "This Torch-TensorRT and TensorRT did not honour the precision setting; install the versions "
        "requirements-gpu.txt pins, and report the request if they are the ones installed.",
        p,
    )
