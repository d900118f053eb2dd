"""Export and compile: the request's knobs as Torch-TensorRT arguments, ``torch.export`` (static, dynamic or
quantized), then ``torch_tensorrt.dynamo.compile`` or ``torch.compile(backend="tensorrt")``.

Dynamic inputs (min/opt/max in ``model.inputs``) export with ``torch.export.Dim`` (refined once by
torch.export's suggested fixes when the model's guards need it, ``dynamic_shapes.export_dynamic``) and build
with ``torch_tensorrt.Input(min_shape, opt_shape, max_shape)``; quantized models export under
``export_torch_mode()``. With ``measure.layer_profile`` the build runs under a ``Debugger`` at DETAILED
profiling verbosity, so the layer information carries types, formats and tactics (the plan fingerprint's
``layers:`` part and the Layers page read it).
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from engine.backends.base import ProgressFn
from engine.backends.tensorrt import dynamic_shapes, internals, quantize
from engine.backends.tensorrt.capture import is_oom
from engine.backends.tensorrt.internals import Features
from engine.backends.tensorrt.keywords import check_keywords
from engine.errors import ConfigError, ExportError
from engine.settings.inputs import InputSpec
from engine.settings.knobs import knob_fields, knob_info
from engine.settings.request import CompileSettings, RunRequest

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def compile_settings(request: RunRequest, features: Features, workdir: Path) -> dict[str, Any]:
    """Every CompileSettings knob as Torch-TensorRT keyword arguments (both frontends): the knobs whose metadata
    names a ``trt_kwarg`` are passed as they are (a tuple of names as a set, an unset knob not at all), then the
    ones whose argument depends on the machine."""
    c = request.compile
    kw: dict[str, Any] = {}
    for f in knob_fields(CompileSettings):
        name, value = knob_info(f).trt_kwarg, getattr(c, f.name)
        if name is not None and value is not None:
            kw[name] = set(value) if isinstance(value, tuple) else value
    if not features.python_runtime:
        # 2.12+ merged the runtimes: the argument is a deprecated no-op there (and True is refused before this)
        kw.pop("use_python_runtime", None)
    if c.cache_built_engines or c.reuse_cached_engines:
        from engine.store import data_dir  # noqa: PLC0415

        kw["engine_cache_dir"] = str(data_dir() / "engine_cache")
    if not features.strongly_typed and c.precision != "fp32" and c.quantization == "none":
        # full TensorRT before Torch-TensorRT 2.13: weak typing picks lower-precision kernels from
        # enabled_precisions (the model stays fp32). Strongly typed builds get the precision from the model's
        # and inputs' dtypes (run.py casts them), so no keyword says it
        kw["enabled_precisions"] = {torch.float32, DTYPES[c.precision]}
        kw["use_explicit_typing"] = False
    if request.mode == "analyze":
        kw["dryrun"] = True
    return kw


def model_precision(c: CompileSettings, features: Features) -> str:
    """The precision the model and its inputs are cast to before export. On a strongly typed build (TensorRT-RTX;
    full TensorRT from Torch-TensorRT 2.13) their dtypes are what makes the engine fp16: the run's precision.
    Weakly typed full TensorRT lowers an fp32 model through ``enabled_precisions`` (``compile_settings``)."""
    return c.precision if features.strongly_typed else "fp32"


def compile_kwargs(request: RunRequest, features: Features, workdir: Path) -> dict[str, Any]:
    """Every keyword the chosen frontend is called with (inputs apart): the knobs (``compile_settings``), a
    quantized build's own and the torch_compile frontend's."""
    c = request.compile
    kw = compile_settings(request, features, workdir)
    if c.quantization != "none":
        kw.update(quantize.compile_kwargs(c.quantization, c.quant_base_precision, features.strongly_typed))
    if c.frontend == "torch_compile":
        kw["pass_through_build_failures"] = True  # a failed build is an error, not a silent eager run
    return kw


def specs_at(specs: tuple[InputSpec, ...], inputs: tuple[torch.Tensor, ...]) -> tuple[InputSpec, ...]:
    """The input specs with floating inputs in the dtype the module runs in (fp16/bf16 on a strongly typed
    build)."""
    names = {torch.float16: "float16", torch.float32: "float32", torch.bfloat16: "bfloat16"}
    return tuple(
        replace(s, dtype=names.get(t.dtype, s.dtype)) if t.is_floating_point() else s
        for s, t in zip(specs, inputs, strict=True)
    )


def compile_model(
    request: RunRequest,
    module: torch.nn.Module,
    inputs: tuple[torch.Tensor, ...],
    features: Features,
    workdir: Path,
    stages: dict[str, float],
    progress: ProgressFn,
    analyze: bool,
    specs: tuple[InputSpec, ...] | None = None,
    warnings: list[str] | None = None,
) -> Any:
    """Export and compile. ``specs`` (dynamic shapes): export with one ``torch.export.Dim`` per symbolic
    dimension, refined once by torch.export's suggested fixes when the model's guards need it (the
    refinement is added to ``warnings``), and build with ``torch_tensorrt.Input(min, opt, max)``;
    ``inputs`` are only measured at."""
    warnings = warnings if warnings is not None else []
    import torch_tensorrt  # noqa: PLC0415

    c = request.compile
    kw = compile_kwargs(request, features, workdir)
    quantized = c.quantization != "none"
    debugger: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if request.measure.layer_profile and not analyze:
        python_runtime = c.use_python_runtime and features.python_runtime
        debugger = torch_tensorrt.dynamo.Debugger(
            log_level="warning",
            save_engine_profile=True,
            save_layer_info=True,
            profile_format="cudagraph" if python_runtime else "trex",
            engine_builder_monitor=False,
            logging_dir=str(workdir / "trt_debug"),
        )
    if c.frontend == "torch_compile":
        check_keywords(kw, c.frontend, features.keywords, internals.version())
        with debugger:
            return torch.compile(module, backend="tensorrt", options=kw, dynamic=False)
    progress(
        "export",
        None,
        "torch.export" + (" (Q/DQ nodes kept)" if quantized else "") + (" with dynamic shapes" if specs else ""),
    )
    arg_inputs: list[Any] = list(inputs)
    check_keywords({"arg_inputs": arg_inputs, **kw}, c.frontend, features.keywords, internals.version())
    t0 = time.perf_counter()
    try:
        if quantized:
            exported = quantize.export_quantized(module, inputs)
        elif specs:
            arg_inputs = dynamic_shapes.to_torch_tensorrt_inputs(specs, seed=request.measure.seed)
            at_opt = tuple(i.torch_tensor for i in arg_inputs)  # exporting at a size-1 dim would pin it
            # the model's own shape rules (e.g. a sequence that must be a multiple of 8) refine the Dims once
            measured = {s.name: tuple(t.shape) for s, t in zip(specs, inputs, strict=True)}
            done = dynamic_shapes.export_dynamic(module, at_opt, specs, measured=measured)
            exported = done.program
            warnings += [w for w in (done.warning(),) if w]
        else:
            exported = torch.export.export(module, inputs)
    except Exception as e:
        if is_oom(e) or isinstance(e, ConfigError):
            raise
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise ExportError(
            f"torch.export could not capture {request.model.source}: {type(e).__name__}: {first}",
            "Try the torch_compile frontend (compile.frontend = torch_compile): it runs the "
            "parts it cannot capture in Python.",
        ) from e
    stages["export_s"] = time.perf_counter() - t0
    progress("partition", None, "lowering")
    t0 = time.perf_counter()
    quant_mode = quantize.export_mode() if quantized else contextlib.nullcontext()
    with debugger, contextlib.redirect_stdout(io.StringIO()) as out, quant_mode:
        try:
            compiled = torch_tensorrt.dynamo.compile(exported, arg_inputs=arg_inputs, **kw)
        except Exception as e:
            if not quantized or is_oom(e):
                raise
            # the matrix could not know (e.g. an op the flavour does not quantize): name the scheme
            for cause in (e, e.__cause__):
                explained = cause is not None and quantize.explain_compile_error(
                    cause, c.quantization, "tensorrt_rtx" if features.rtx else "tensorrt"
                )
                if explained:
                    raise explained from e
            raise
    stages["compile_s"] = time.perf_counter() - t0
    if analyze and out.getvalue().strip():
        log.debug("dryrun output:\n%s", out.getvalue())
    return compiled
