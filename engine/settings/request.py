"""Run requests: what model to build, how to compile it and how to measure it, parsed and validated.

Every knob is declared once, as a dataclass field made by ``knob()`` whose metadata (``KnobInfo``,
engine/settings/knobs.py) carries the label, the allowed values, the help text and how each part of the
dashboard handles it: the request's own knobs here, its parts' (model, compile, measure) in
engine/settings/parts.py. Parsing, validation, the cache key, the Torch-TensorRT arguments, the command line and the
dashboard's widgets are all generated from that one definition, so a new knob is one edit.

Defaults come from engine/settings/defaults.py, which mirrors Torch-TensorRT's own ``_defaults.py``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from engine.errors import ConfigError, shown
from engine.settings.defaults import BACKENDS, DEVICES, MAX_DIM, MODES
from engine.settings.inputs import check_specs, measured_shapes, parse_inputs
from engine.settings.knobs import KnobInfo, knob, knob_fields, knob_info
from engine.settings.parts import CompileSettings, MeasureSettings, ModelSpec  # re-exported: callers import them here


@dataclass(frozen=True)
class RunRequest:
    model: ModelSpec = field(default_factory=ModelSpec)
    backend: str = knob(
        "eager", "Backend", "eager: PyTorch as is. tensorrt: compiled by Torch-TensorRT.", choices=BACKENDS
    )
    device: str = knob("auto", "Device", "auto picks the GPU when there is one.", choices=DEVICES)
    mode: str = knob(
        "measure",
        "Mode",
        "measure: compile, time and profile. analyze: dry run only, graph segmentation "
        "without building engines (tensorrt backend).",
        choices=MODES,
    )
    compile: CompileSettings = field(default_factory=CompileSettings)
    measure: MeasureSettings = field(default_factory=MeasureSettings)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRequest:
        """Build and validate a request from plain data (JSON, CLI, URL). Unknown keys are errors; anything
        that is not a request raises ``ConfigError`` naming the field, never another exception."""
        if not isinstance(data, Mapping):
            raise ConfigError("request", f"expected a mapping of settings, got {type(data).__name__}")
        data = dict(data)
        parts: dict[str, Any] = {}
        for name, part_cls in PARTS:
            raw = data.pop(name, {}) or {}
            if not isinstance(raw, dict):
                raise ConfigError(name, f"expected a mapping, got {type(raw).__name__}")
            parts[name] = _build(part_cls, raw, name)
        top = _build(cls, {k: v for k, v in data.items()}, "", skip=("model", "compile", "measure"))
        return dataclasses.replace(top, **parts)

    def with_changes(self, **changes: Any) -> RunRequest:
        """Copy with dotted-name changes, e.g. ``{"compile.min_block_size": 3}``; validated."""
        d = self.to_dict()
        for dotted, value in changes.items():
            target = d
            *parents, leaf = dotted.replace("__", ".").split(".")
            for p in parents:
                if not isinstance(target.get(p), dict):
                    raise ConfigError(dotted, "no such setting")
                target = target[p]
            if leaf not in target:
                raise ConfigError(dotted, "no such setting")
            target[leaf] = value
        return validate(RunRequest.from_dict(d))


# the request's parts, in the order forms and the CLI list them
PARTS: tuple[tuple[str, type], ...] = (("model", ModelSpec), ("compile", CompileSettings), ("measure", MeasureSettings))


def all_knobs() -> Iterator[tuple[str, dataclasses.Field]]:
    """Every knob of a request with its dotted name: ``backend``, ``device``, ``mode``, then each part's."""
    for f in knob_fields(RunRequest):
        yield f.name, f
    for prefix, part in PARTS:
        for f in knob_fields(part):
            yield f"{prefix}.{f.name}", f


def _build(cls: type, raw: dict[str, Any], prefix: str, skip: tuple[str, ...] = ()) -> Any:
    known = {f.name: f for f in fields(cls) if f.name not in skip}
    kwargs = {}
    for key, value in raw.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if not isinstance(key, str) or key not in known:
            raise ConfigError(dotted, f"unknown setting; known: {', '.join(sorted(known))}")
        kwargs[key] = _coerce(knob_info(known[key]), value, dotted)
    return cls(**kwargs)


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.replace("\n", ",").split(",") if v.strip()]


def _coerce(info: KnobInfo, value: Any, dotted: str) -> Any:
    """Turn JSON-ish values into the knob's type (``info.kind``), naming the field when that is impossible."""
    for stored, today in info.renamed:  # a value stored before the knob changed shape (a bool that became a mode)
        if type(value) is type(stored) and value == stored:
            return today
    if info.kind == "shape":
        if value is None or value == "" or value == []:
            return None
        if isinstance(value, str):
            parts = [v.strip() for v in value.replace("x", ",").split(",") if v.strip()]
            if not all(re.fullmatch(r"-?[0-9]{1,30}", v) for v in parts):
                raise ConfigError(dotted, f"{shown(value)} is not a list of integers, e.g. 3,224,224")
            value = [int(v) for v in parts]
        if not isinstance(value, (list, tuple)) or not all(_is_int(v) for v in value):
            raise ConfigError(dotted, f"{shown(value)} is not a list of integers, e.g. 3,224,224")
        return tuple(int(v) for v in value)
    if info.kind == "inputs":
        if value is None or value == "" or value == []:
            return None
        return parse_inputs(value, dotted)
    if info.kind == "names":
        if isinstance(value, str):
            value = _names(value)
        if not isinstance(value, (list, tuple, set)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(dotted, f"{shown(value)} is not a list of {info.item or 'names'}")
        return tuple(sorted({v.strip() for v in value}))  # a set: the same names give the same cache key
    if info.kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(dotted, f"{shown(value)} is not true or false")
        return value
    if info.kind == "int":
        if info.nullable and (value is None or value == ""):
            return None
        if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]{1,30}\s*", value):
            value = int(value)
        if not _is_int(value):
            raise ConfigError(dotted, f"{shown(value)} is not an integer")
        return int(value)
    if not isinstance(value, str):  # text and choices
        raise ConfigError(dotted, f"{shown(value)} is not text")
    return value


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# -- validation ---------------------------------------------------------------------------------------------
def validate(request: RunRequest) -> RunRequest:
    """Check every field against its declared range or choices. Returns the request unchanged.

    Raises ``ConfigError`` naming the first bad field, its value and what is allowed.
    Machine-dependent checks (is there a GPU, which Torch-TensorRT flavour) live in
    ``engine.runner.check_request``.
    """
    parts = {"": request, **{prefix: getattr(request, prefix) for prefix, _ in PARTS}}
    for dotted, f in all_knobs():
        prefix, _, name = dotted.rpartition(".")
        value = getattr(parts[prefix], name)
        info = knob_info(f)
        choices, lo, hi = info.choices, info.min, info.max
        if choices and value not in choices:
            raise ConfigError(dotted, f"{shown(value)} is not one of {', '.join(choices)}")
        if value is None:
            continue
        if (lo is not None or hi is not None) and not _is_int(value):
            raise ConfigError(dotted, f"{shown(value)} is not an integer")
        if lo is not None and value < lo:
            raise ConfigError(dotted, f"{shown(value)} is below the minimum {lo} (allowed {lo}..{hi})")
        if hi is not None and value > hi:
            raise ConfigError(dotted, f"{shown(value)} is above the maximum {hi} (allowed {lo}..{hi})")
    shape = request.model.input_shape
    if shape is not None:
        if not 1 <= len(shape) <= 6:
            raise ConfigError("model.input_shape", f"{shown(shape)} has {len(shape)} dimensions; allowed 1 to 6")
        for d in shape:
            if not 1 <= d <= MAX_DIM:
                raise ConfigError(
                    "model.input_shape", f"dimension {shown(d)} in {shown(shape)} is outside 1..{MAX_DIM}"
                )
    if request.model.inputs is not None:
        check_specs(request.model.inputs, "model.inputs")
        measured_shapes(request.model.inputs, request.model.batch_size, request.model.sequence_length)
    if not request.model.source.strip():
        raise ConfigError("model.source", "empty; pick a model")
    for op in request.compile.torch_executed_ops:
        if not re.fullmatch(r"torch\.ops(\.\w+){2,3}", op):
            raise ConfigError(
                "compile.torch_executed_ops", f"{shown(op)} is not an op name like torch.ops.aten.relu.default"
            )
    _check_keep_high_precision(request)
    if request.compile.reuse_cached_engines and not request.compile.cache_built_engines:
        raise ConfigError("compile.reuse_cached_engines", "needs cache_built_engines on as well")
    if request.measure.timed_iters * request.model.batch_size > 10_000_000:
        raise ConfigError("measure.timed_iters", "timed_iters × batch_size is above 10,000,000 samples")
    _check_combinations(request)
    return request


_MODULE_PATH = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")


def _check_keep_high_precision(request: RunRequest) -> None:
    """Module paths that look like paths, on a build that has a lower precision to keep them out of. Whether
    the model has them is checked against the model (``engine.backends.keep_high_precision.check_request``)."""
    c = request.compile
    for path in c.keep_high_precision:
        if not _MODULE_PATH.fullmatch(path):
            raise ConfigError(
                "compile.keep_high_precision",
                f"{path!r} is not a module path like layer3.4.conv2 (names joined by dots)",
            )
    if c.keep_high_precision and request.backend == "tensorrt" and c.quantization == "none" and c.precision == "fp32":
        raise ConfigError(
            "compile.keep_high_precision",
            "an fp32 build has no lower precision to keep modules out of; set precision to fp16 "
            "or a quantization scheme, or leave keep_high_precision empty",
        )


def _check_combinations(request: RunRequest) -> None:
    """Settings that cannot go together on any machine: refused at submit, not after the job has started."""
    c = request.compile
    if request.mode == "analyze" and request.backend != "tensorrt":
        raise ConfigError(
            "mode",
            "analyze is a dry run of Torch-TensorRT's graph partitioning: it needs the "
            "tensorrt backend; choose tensorrt, or mode measure for the eager backend",
        )
    dynamic = request.model.inputs is not None and any(s.is_dynamic for s in request.model.inputs)
    if request.backend == "tensorrt" and dynamic and c.frontend != "dynamo":
        raise ConfigError(
            "compile.frontend",
            "dynamic shapes (min/opt/max in model.inputs) are compiled with "
            "torch.export: choose the dynamo frontend, or make the inputs static",
        )
    if c.quantization != "none" and request.backend != "tensorrt":
        raise ConfigError(
            "compile.quantization",
            f"{c.quantization!r} needs the tensorrt backend: the quantized model is compiled into "
            "TensorRT engines. Choose the tensorrt backend, or set quantization to none",
        )
    if c.quantization != "none" and dynamic:
        raise ConfigError(
            "compile.quantization",
            "quantized builds take static shapes: set min = opt = max in model.inputs, or quantization to none",
        )
