"""Custom models: files an administrator placed in the models directory, ``<name>.py`` exposing ``build_model()``
and ``example_inputs()``, or ``<name>.pt2`` ExportedProgram files. Only ``.py`` files run code: a ``.pt2`` is read
as data (engine/models/pt2_files.py refuses one that would unpickle or execute anything). Nothing uploaded through
the browser is ever executed."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import torch

from engine.errors import ConfigError, ModelError, shown
from engine.models import pt2_files
from engine.models.checks import check_dynamic_ranges, check_memory, check_runs, model_info
from engine.models.entry import BuiltModel
from engine.models.footprint import MemoryLimits
from engine.models.input_tensors import example_tensors, specs_from_tensors
from engine.settings.inputs import InputSpec, measured_shapes
from engine.settings.request import ModelSpec
from engine.store.paths import PROJECT_ROOT

MODELS_DIR_ENV = "TRTDASH_MODELS_DIR"
DEFAULT_MODELS_DIR = PROJECT_ROOT / "models"
FILE_PREFIX = "file:"


def models_dir() -> Path:
    return Path(os.environ.get(MODELS_DIR_ENV) or DEFAULT_MODELS_DIR)


def is_hidden(name: str) -> bool:
    """A file the picker does not list and nothing runs: ``_helpers.py`` (a module other model files import)."""
    return name.startswith("_")


def custom_model_files(directory: Path | None = None) -> list[str]:
    d = directory or models_dir()
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir() if p.suffix in (".py", ".pt2") and not is_hidden(p.name))


def file_identity(spec: ModelSpec, seed: int = 0) -> str:
    """A model file's weights identity: its content hash and the seed."""
    path = resolve_file(spec.source)
    return f"file:{path.name}:{_file_digest(path)}:seed{seed}"


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def resolve_file(source: str) -> Path:
    name = source[len(FILE_PREFIX) :]
    directory = models_dir().resolve()
    path = (directory / name).resolve()
    if path.parent != directory or path.suffix not in (".py", ".pt2"):
        raise ModelError(
            f"{name!r} is not a .py or .pt2 file directly inside the models directory.",
            f"Custom models live in {directory} (set {MODELS_DIR_ENV} to change it).",
        )
    if is_hidden(path.name):
        raise ModelError(
            f"{path.name} is a hidden model file (its name starts with _): the model picker does not list it and "
            "it is never run; such files are helpers other model files import.",
            "Pick a model file whose name does not start with _, or ask the administrator to rename it.",
        )
    if not path.is_file():
        raise ModelError(
            f"Model file {name!r} not found in {directory}.",
            "Ask the administrator to place it there; uploads are never executed.",
        )
    return path


def build_file(spec: ModelSpec, seed: int, limits: MemoryLimits | None = None) -> BuiltModel:
    path = resolve_file(spec.source)
    weights = file_identity(spec, seed)
    torch.manual_seed(seed)
    if path.suffix == ".pt2":
        try:
            ep = pt2_files.load_exported_program(path)
        except ModelError:  # the load's time limit
            raise
        except pt2_files.UnsafePt2File as e:
            raise ModelError(
                f"{path.name} was not loaded: {e.reason}. A .pt2 file is read as data, never run; "
                "only .py model files run code.",
                pt2_files.SAFE_HINT,
            ) from None
        except Exception as e:
            raise ModelError(
                f"{path.name} is not a loadable torch.export ExportedProgram: {type(e).__name__}: {str(e)[:200]}",
                "Save it with torch.export.save().",
            ) from e
        inputs = _example_inputs_from_ep(ep, spec)
        module = ep.module()
        inputs, specs = _with_given_inputs(module, inputs, spec, weights, seed)
        check_memory(module, inputs, spec, limits)
        return BuiltModel(
            module,
            inputs,
            weights,
            model_info(module, inputs, "exported_program", "unknown", specs),
            ep,
            input_specs=specs,
        )
    mod = _import_file(path)
    for fn in ("build_model", "example_inputs"):
        if not callable(getattr(mod, fn, None)):
            raise ModelError(
                f"{path.name} has no {fn}() function.",
                "A model file must define build_model() -> nn.Module and "
                "example_inputs(batch_size) -> tuple of tensors.",
            )
    try:
        module = mod.build_model()
        _expect(isinstance(module, torch.nn.Module), path, "build_model()", module, "a torch.nn.Module")
        module = module.eval()
        inputs = mod.example_inputs(spec.batch_size)
    except ModelError:
        raise
    except Exception as e:
        raise ModelError(f"{path.name} failed while building: {type(e).__name__}: {str(e)[:300]}") from e
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    _expect(
        isinstance(inputs, (tuple, list)) and len(inputs) > 0 and all(isinstance(t, torch.Tensor) for t in inputs),
        path,
        f"example_inputs({spec.batch_size})",
        inputs,
        "a tensor or a non-empty tuple of tensors",
    )
    inputs, specs = _with_given_inputs(module, tuple(inputs), spec, weights, seed)
    check_memory(module, inputs, spec, limits)
    largest = check_runs(module, inputs, spec)
    info = model_info(module, inputs, "custom", "unknown", specs) | {"largest_activation_bytes": largest}
    return BuiltModel(module, inputs, weights, info, input_specs=specs)


def _expect(ok: bool, path: Path, call: str, returned: Any, expected: str) -> None:
    """Refuse what a model file's function returned, naming the file, the call, what came back and what should."""
    if ok:
        return
    if isinstance(returned, (tuple, list)):
        kinds = ", ".join(type(t).__name__ for t in returned[:5]) + (", ..." if len(returned) > 5 else "")
        what = f"a {type(returned).__name__} of ({kinds})" if returned else f"an empty {type(returned).__name__}"
    else:
        what = "None" if returned is None else f"a {type(returned).__name__} ({shown(returned, 60)})"
    raise ModelError(
        f"{path.name}: {call} returned {what}; expected {expected}.",
        "A model file defines build_model() -> torch.nn.Module and example_inputs(batch_size) -> a tensor or a "
        "tuple of tensors, one per input of forward().",
    )


def _with_given_inputs(
    module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], spec: ModelSpec, identity: str, seed: int
) -> tuple[tuple[torch.Tensor, ...], tuple[InputSpec, ...]]:
    """A file model's own example inputs, or tensors made from ``spec.inputs`` when those are given."""
    if spec.inputs is None:
        try:
            return inputs, specs_from_tensors(inputs)
        except ConfigError:  # a dtype the specs do not cover (float64 ...): the model still runs as is
            return inputs, ()
    if len(spec.inputs) != len(inputs):
        raise ModelError(
            f"{spec.source} takes {len(inputs)} input(s) but model.inputs lists {len(spec.inputs)}.",
            "Give one entry per input, in the order example_inputs() returns them.",
        )
    try:
        shapes = measured_shapes(spec.inputs, spec.batch_size, spec.sequence_length)
    except ConfigError as e:
        raise ModelError(f"{e.field}: {e.message}.") from None
    given = example_tensors(spec.inputs, shapes, seed=seed + 1)
    if any(s.is_dynamic for s in spec.inputs):
        check_dynamic_ranges(module, spec.inputs, identity)
    return given, spec.inputs


def _import_file(path: Path) -> Any:
    name = f"trtdash_custom_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelError(f"{path.name} cannot be imported.")
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except Exception as e:
        raise ModelError(f"{path.name} failed to import: {type(e).__name__}: {str(e)[:300]}") from e
    sys.modules.pop(name, None)
    return mod


def _example_inputs_from_ep(ep: Any, spec: ModelSpec) -> tuple[torch.Tensor, ...]:
    inputs = []
    for node in ep.graph.nodes:
        if (
            node.op != "placeholder"
            or node.name in ep.graph_signature.inputs_to_parameters
            or node.name in ep.graph_signature.inputs_to_buffers
        ):
            continue
        val = node.meta.get("val")
        if val is None:
            continue
        shape = [int(d) if isinstance(d, int) else spec.batch_size for d in val.shape]
        if val.dtype.is_floating_point:
            inputs.append(torch.randn(*shape, dtype=val.dtype))
        else:
            inputs.append(torch.zeros(*shape, dtype=val.dtype))
    return tuple(inputs)
