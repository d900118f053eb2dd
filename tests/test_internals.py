"""Every private Torch-TensorRT symbol the backend uses, checked against the source of real wheels.

Torch-TensorRT cannot be imported without a GPU, but a wheel is a zip file: its ``.py`` files are read and
parsed here, never installed. Two wheels:

- the one requirements-gpu.txt pins (``pip download --no-deps`` into ``$TRTDASH_WHEEL_CACHE``, default
  ``~/.cache/trtdash-wheels``, once);
- torch-tensorrt-rtx 2.11.0, the build the H200 runs (cached by the GPU kit at ``~/.cache/gpu-kit/whl/``,
  else downloaded the same way).

For each, every required symbol must exist, and where an optional one is missing, the backend's feature
detection (``internals.Features.detect``, fed from the wheel's source) must take its fallback; the capability
matrix, the backend's request check and its compile arguments are then checked on those features. A wheel
that cannot be had is a SKIP naming why (no network, no cache), never a pass.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
import os
import subprocess
import sys
import zipfile
from functools import cache
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement
from packaging.version import Version

from engine.backends.eager import prepare
from engine.backends.tensorrt import export, internals
from engine.backends.tensorrt.export import compile_settings
from engine.backends.tensorrt.keywords import (
    TORCH_COMPILE_OPTIONS_READ,
    CompileKeywords,
    UnknownCompileKeyword,
    check_keywords,
)
from engine.backends.tensorrt.run import check
from engine.capabilities import Capabilities
from engine.errors import ConfigError, RunError
from engine.models import registry
from engine.quantization import schemes
from engine.settings.defaults import FRONTENDS, MODES, PRECISIONS, QUANT_BASE_PRECISIONS, QUANT_SCHEMES
from engine.settings.inputs import InputSpec
from engine.settings.knobs import knob_fields, knob_info
from engine.settings.request import CompileSettings, RunRequest

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("TRTDASH_WHEEL_CACHE", Path.home() / ".cache" / "trtdash-wheels"))
GPU_KIT = Path.home() / ".cache" / "gpu-kit" / "whl"
PLATFORM = [
    "--only-binary=:all:",
    "--python-version",
    "3.12",
    "--implementation",
    "cp",
    "--platform",
    "manylinux_2_28_x86_64",
]


def pinned(name: str, path: Path) -> Requirement:
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and Requirement(line).name.lower() == name:
            return Requirement(line)
    raise AssertionError(f"{name} is not pinned in {path.name}")


def wheel(dist: str, version: str, *also: Path) -> Path:
    """The cached wheel of ``dist==version``, downloaded with pip once; skips with pip's reason otherwise."""
    stem = dist.replace("-", "_")
    for folder in (CACHE, *also):
        found = sorted(folder.glob(f"{stem}-{version}-*.whl")) if folder.is_dir() else []
        if found:
            return found[0]
    CACHE.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", *PLATFORM, "-d", str(CACHE), f"{dist}=={version}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    found = sorted(CACHE.glob(f"{stem}-{version}-*.whl"))
    if not found:
        pytest.skip(
            f"SKIPPED, NOT CHECKED: the {dist}=={version} wheel could not be downloaded into {CACHE} "
            f"(pip exit {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]})"
        )
    return found[0]


class WheelSource:
    """The Python sources of a wheel, parsed on demand."""

    def __init__(self, path: Path):
        self.zip = zipfile.ZipFile(path)
        self.names = set(self.zip.namelist())

    @cache  # noqa: B019 - a handful of wheels per session
    def module(self, dotted: str) -> ast.Module | None:
        base = dotted.replace(".", "/")
        for name in (f"{base}.py", f"{base}/__init__.py"):
            if name in self.names:
                return ast.parse(self.zip.read(name))
        return None

    def metadata(self) -> list[str]:
        meta = next(n for n in self.names if n.endswith(".dist-info/METADATA"))
        return self.zip.read(meta).decode().splitlines()


def _top_level(tree: ast.Module, name: str) -> ast.AST | None:
    """The top-level statement defining ``name``: def, class, assignment or import (with its alias)."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return node
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return node
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            return node
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if (alias.asname or alias.name.split(".")[0]) == name:
                    return node
        if isinstance(node, ast.Try):  # "try: import x except ImportError: ..." at top level
            found = _top_level(ast.Module(body=node.body, type_ignores=[]), name)
            if found is not None:
                return found
    return None


def _has_fields(tree: ast.Module, node: ast.AST, fields: tuple[str, ...]) -> list[str]:
    """Fields of ``fields`` the class (annotations, ``self.x =`` anywhere in it) or, for an assigned object
    such as a namedtuple instance, the module's string literals do not mention."""
    if isinstance(node, ast.ClassDef):
        have = {t.target.id for t in node.body if isinstance(t, ast.AnnAssign) and isinstance(t.target, ast.Name)}
        have |= {
            a.attr
            for a in ast.walk(node)
            if isinstance(a, ast.Attribute)
            and isinstance(a.ctx, ast.Store)
            and isinstance(a.value, ast.Name)
            and a.value.id == "self"
        }
    else:
        have = {c.value for c in ast.walk(tree) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    return [f for f in fields if f not in have]


def present(source: WheelSource, symbol: internals.PrivateSymbol) -> bool:
    return not problems(source, symbol)


def problems(source: WheelSource, symbol: internals.PrivateSymbol) -> list[str]:
    """What is missing of ``symbol`` in the wheel's source ([] when everything the backend uses is there)."""
    tree = source.module(symbol.module)
    if tree is None:
        return [f"no module {symbol.module}"]
    head, _, method = symbol.name.partition(".")
    node = _top_level(tree, head)
    if node is None:
        return [f"{symbol.module} defines no {head}"]
    if method:
        node = next((n for n in getattr(node, "body", []) if isinstance(n, ast.FunctionDef) and n.name == method), None)
        if node is None:
            return [f"{head} has no method {method}"]
    out = []
    if symbol.params and isinstance(node, ast.FunctionDef):
        a = node.args
        names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
        out += [f"{symbol.name} takes no parameter {p}" for p in symbol.params if p not in names]
        if symbol.name == "compile_module" and names.index("settings") != 3:
            out.append("compile_module's settings is no longer its 4th parameter (the wrapper reads args[2])")
    if symbol.fields:
        out += [f"{symbol.name} has no field {f}" for f in _has_fields(tree, node, symbol.fields)]
    return out


def compile_keywords(source: WheelSource) -> CompileKeywords:
    """What each frontend honours, read from the wheel's source: ``dynamo.compile``'s named parameters (a name
    outside them falls into ``**kwargs`` and is ignored) and, for ``torch.compile(options=...)``, the fields of
    ``CompilationSettings`` plus the names ``parse_dynamo_kwargs`` reads from the options itself."""
    compiler = source.module("torch_tensorrt.dynamo._compiler")
    fn = _top_level(compiler, "compile")
    assert isinstance(fn, ast.FunctionDef), "torch_tensorrt.dynamo._compiler defines no compile()"
    a = fn.args
    dynamo = {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs}
    settings = _top_level(source.module("torch_tensorrt.dynamo._settings"), "CompilationSettings")
    assert isinstance(settings, ast.ClassDef)
    fields = {t.target.id for t in settings.body if isinstance(t, ast.AnnAssign) and isinstance(t.target, ast.Name)}
    parse = _top_level(source.module("torch_tensorrt.dynamo.utils"), "parse_dynamo_kwargs")
    read = {
        c.args[0].value
        for c in ast.walk(parse)
        if isinstance(c, ast.Call)
        and isinstance(c.func, ast.Attribute)
        and c.func.attr == "get"
        and isinstance(c.func.value, ast.Name)
        and c.func.value.id == "kwargs"
        and c.args
        and isinstance(c.args[0], ast.Constant)
    }
    assert set(TORCH_COMPILE_OPTIONS_READ) <= read, f"parse_dynamo_kwargs reads {sorted(read)} from the options"
    return CompileKeywords(frozenset(dynamo), frozenset(fields | read))


def check_wheel(source: WheelSource, rtx: bool) -> tuple[internals.Features, set[str]]:
    missing = {}
    for key, symbol in internals.SYMBOLS.items():
        found = problems(source, symbol)
        if found:
            assert not symbol.required, f"required {symbol.dotted} ({symbol.used_for}): {found}"
            missing[key] = found
    features = internals.Features.detect(lambda s: present(source, s), rtx=rtx, keywords=compile_keywords(source))
    return features, set(missing)


def caps_for(features: internals.Features) -> Capabilities:
    return Capabilities(
        torch_version="2.14.1",
        cuda_available=True,
        flavour="tensorrt_rtx" if features.rtx else "tensorrt",
        torch_tensorrt_version="x",
        python_runtime_reason=features.python_runtime_reason,
    )


def request(**compile_knobs) -> RunRequest:
    return RunRequest.from_dict(
        {
            "model": {"source": "resnet18"},
            "backend": "tensorrt",
            "device": "cuda",
            "compile": {"precision": "fp16", **compile_knobs},
        }
    )


def test_the_pinned_pair_resolves_with_requirements_torch():
    tt = pinned("torch-tensorrt", ROOT / "requirements-gpu.txt")
    torch_pin = pinned("torch", ROOT / "requirements.txt")
    trt_pin = pinned("tensorrt", ROOT / "requirements-gpu.txt")
    assert len(tt.specifier) == 1 and next(iter(tt.specifier)).operator == "=="
    version = next(iter(tt.specifier)).version
    meta = WheelSource(wheel("torch-tensorrt", version)).metadata()
    needs = [Requirement(x.split(":", 1)[1]) for x in meta if x.startswith("Requires-Dist:")]
    needs = [r for r in needs if r.marker is None]
    torch_version = next(iter(torch_pin.specifier)).version
    torch_req = next(r for r in needs if r.name == "torch")
    assert torch_req.specifier.contains(torch_version), f"torch-tensorrt {version} needs {torch_req}"
    # the tensorrt meta-package pulls tensorrt_cu13 of its own version: inside what torch-tensorrt accepts
    trt_version = Version(next(iter(trt_pin.specifier)).version)
    cu = next(r for r in needs if r.name.replace("_", "-") == "tensorrt-cu13")
    assert cu.specifier.contains(trt_version), f"tensorrt {trt_version} against torch-tensorrt's {cu}"


def test_pinned_wheel_has_every_required_symbol_and_the_merged_runtime_fallback_is_taken(tmp_path):
    version = next(iter(pinned("torch-tensorrt", ROOT / "requirements-gpu.txt").specifier)).version
    source = WheelSource(wheel("torch-tensorrt", version))
    features, missing = check_wheel(source, rtx=False)
    if Version(version) >= Version("2.12"):
        # the Python runtime is merged into the C++ one: exactly its two symbols are gone
        assert missing == {"python_trt_module", "python_runtime_trt"}
        assert not features.python_runtime and features.python_runtime_reason == internals.PYTHON_RUNTIME_MERGED
        caps = caps_for(features)
        assert caps.disabled_reason("compile.use_python_runtime", True) == internals.PYTHON_RUNTIME_MERGED
        assert caps.disabled_reason("compile.use_python_runtime", False) is None
        with pytest.raises(ConfigError, match="not applicable with this Torch-TensorRT") as err:
            check(request(use_python_runtime=True), "cuda", features)
        assert err.value.field == "compile.use_python_runtime"
        assert "use_python_runtime" not in compile_settings(request(), features, tmp_path)
    assert features.op_names_on_failure and features.dryrun_text
    check(request(), "cuda", features)  # the default request is accepted


def test_rtx_2_11_wheel_has_every_symbol_and_a_python_runtime(tmp_path):
    source = WheelSource(wheel("torch-tensorrt-rtx", "2.11.0", GPU_KIT))
    features, missing = check_wheel(source, rtx=True)
    assert missing == set()
    assert features.python_runtime and features.python_runtime_reason == ""
    assert caps_for(features).disabled_reason("compile.use_python_runtime", True) is None
    check(request(use_python_runtime=True), "cuda", features)
    assert compile_settings(request(use_python_runtime=True), features, tmp_path)["use_python_runtime"] is True
    with pytest.raises(ConfigError, match="bf16"):
        check(request(precision="bf16"), "cuda", features)


def _private(dotted: str) -> bool:
    parts = dotted.split(".")
    return parts[0] == "torch_tensorrt" and any(
        (p.startswith("_") and p != "__version__") or p in ("partitioning", "backend") for p in parts[1:]
    )


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else None


def test_no_private_torch_tensorrt_symbol_outside_the_internals_module():
    offenders = []
    for path in sorted((ROOT / "engine").rglob("*.py")):
        if path.name == "internals.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.Attribute):
                names = [d for d in (_dotted(node),) if d]
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names if _private(n)]
    assert offenders == []
    assert _private("torch_tensorrt._features.ENABLED_FEATURES") and not _private("torch_tensorrt.runtime.x")


# -- the keywords the backend passes, against each wheel's dynamo.compile and CompilationSettings ---------------
# sample values for knobs whose widget takes free input; every other knob is tried at each value it offers
SAMPLE_VALUES = {"torch_executed_ops": ("torch.ops.aten.relu.default",), "workspace_size": (1 << 30,)}
CROSSED = ("frontend", "precision", "quantization", "quant_base_precision")


def knob_variants() -> list[dict]:
    """One compile-knob change per value the form offers away from the default (the crossed knobs apart)."""
    out: list[dict] = [{}]
    for f in knob_fields(CompileSettings):
        info = knob_info(f)
        if f.name in CROSSED or info.trt_kwarg is None and info.kind != "bool":
            continue  # not a Torch-TensorRT argument (model paths, calibration data): no keyword to check
        values = SAMPLE_VALUES.get(f.name) or (
            (not f.default,) if info.kind == "bool" else info.choices or info.options or (info.min, info.max)
        )
        out += [{f.name: v} for v in values if v != f.default]
    return out


def allowed_requests(features: internals.Features):
    """Every request the capability matrix and the backend's own check accept on this flavour: frontend ×
    precision × quantization scheme × base precision × mode, each with every knob variant."""
    caps = caps_for(features)
    flavour = "tensorrt_rtx" if features.rtx else "tensorrt"
    for frontend, precision, scheme, base, mode in itertools.product(
        FRONTENDS, PRECISIONS, QUANT_SCHEMES, QUANT_BASE_PRECISIONS, MODES
    ):
        if scheme == "none" and base != "fp16":
            continue  # the base precision means nothing unquantized
        if schemes.scheme_unavailable_reason(scheme, flavour=flavour, compute_capability=None, modelopt=True):
            continue
        for variant in knob_variants():
            knobs = {"frontend": frontend, "precision": precision, "quantization": scheme, **variant}
            if scheme != "none":
                knobs["quant_base_precision"] = base
            try:
                req = RunRequest.from_dict(
                    {
                        "model": {"source": "resnet18"},
                        "backend": "tensorrt",
                        "device": "cuda",
                        "mode": mode,
                        "compile": knobs,
                    }
                )
                check(req, "cuda", features)
            except ConfigError:
                continue
            if any(caps.disabled_reason(f"compile.{k}", v) for k, v in knobs.items() if k != "quantization"):
                continue
            yield req


def unknown_keywords(source: WheelSource, features: internals.Features, workdir: Path) -> tuple[int, dict]:
    """Keywords the backend passes for some allowed request (as ``compile_model`` builds them) that the wheel's
    frontend does not read, each with the first request that passes it."""
    accepted = compile_keywords(source)
    count, unknown = 0, {}
    for req in allowed_requests(features):
        count += 1
        c = req.compile
        kw = export.compile_kwargs(req, features, workdir) | ({"arg_inputs": []} if c.frontend == "dynamo" else {})
        for name in set(kw) - accepted.accepted(c.frontend):
            unknown.setdefault(name, f"{c.frontend} {c.precision} quantization={c.quantization} mode={req.mode}")
        try:  # the backend's own check refuses exactly these
            check_keywords(kw, c.frontend, features.keywords, "x")
        except UnknownCompileKeyword as e:
            assert set(e.keywords) == set(kw) - accepted.accepted(c.frontend)
    return count, unknown


@pytest.mark.parametrize("wheel_name", ["pinned", "rtx-2.11"])
def test_every_keyword_the_backend_passes_is_one_the_wheel_reads(wheel_name, tmp_path):
    """A keyword outside ``dynamo.compile``'s signature (or CompilationSettings, for torch.compile) is silently
    ignored by Torch-TensorRT: enabled_precisions on 2.14 built every "fp16" engine in fp32."""
    if wheel_name == "pinned":
        version = next(iter(pinned("torch-tensorrt", ROOT / "requirements-gpu.txt").specifier)).version
        source, rtx = WheelSource(wheel("torch-tensorrt", version)), False
    else:
        source, rtx = WheelSource(wheel("torch-tensorrt-rtx", "2.11.0", GPU_KIT)), True
    features, _ = check_wheel(source, rtx=rtx)
    count, unknown = unknown_keywords(source, features, tmp_path)
    assert count > 100  # the matrix allows many combinations on each flavour
    assert unknown == {}, f"keywords the {wheel_name} wheel does not read (first request passing each): {unknown}"


def pinned_features() -> internals.Features:
    version = next(iter(pinned("torch-tensorrt", ROOT / "requirements-gpu.txt").specifier)).version
    return check_wheel(WheelSource(wheel("torch-tensorrt", version)), rtx=False)[0]


def test_full_tensorrt_fp16_on_the_pinned_wheel_is_built_from_fp16_dtypes(tmp_path):
    """2.14 has no enabled_precisions: the fp16 engine comes from an fp16 model and fp16 inputs (strong typing),
    with no precision keyword that the wheel would drop; quantized builds likewise take none."""
    features = pinned_features()
    assert features.strongly_typed and not features.keywords.weak_typing and not features.rtx
    req = request(precision="fp16")
    assert export.model_precision(req.compile, features) == "fp16"
    kw = export.compile_kwargs(req, features, tmp_path)
    assert not {"enabled_precisions", "use_explicit_typing", "enable_autocast"} & set(kw)
    check_keywords({"arg_inputs": [], **kw}, "dynamo", features.keywords, "2.14.0")
    model = registry.build(req.model)
    module, inputs = prepare(model, export.model_precision(req.compile, features), "cpu")
    assert {p.dtype for p in module.parameters()} == {torch.float16}
    assert all(t.dtype == torch.float16 for t in inputs if t.is_floating_point())
    quant = request(quantization="int8_weight_only")
    assert (
        export.compile_kwargs(quant, features, tmp_path).keys()
        == export.compile_kwargs(request(), features, tmp_path).keys()
    )


def test_weakly_typed_full_tensorrt_keeps_enabled_precisions(tmp_path):
    """Full TensorRT before 2.13 (dynamo.compile still has enabled_precisions): fp32 model, precision by keyword."""
    rtx_keywords = check_wheel(WheelSource(wheel("torch-tensorrt-rtx", "2.11.0", GPU_KIT)), rtx=True)[0].keywords
    features = internals.Features.detect(lambda s: True, rtx=False, keywords=rtx_keywords)
    assert not features.strongly_typed
    req = request(precision="fp16")
    assert export.model_precision(req.compile, features) == "fp32"
    kw = export.compile_kwargs(req, features, tmp_path)
    assert kw["enabled_precisions"] == {torch.float32, torch.float16} and kw["use_explicit_typing"] is False
    check_keywords(kw, "dynamo", features.keywords, "2.11.0")


def test_an_unknown_keyword_is_refused_before_torch_tensorrt_is_called():
    keywords = pinned_features().keywords
    with pytest.raises(UnknownCompileKeyword) as err:
        check_keywords(
            {"arg_inputs": [], "enabled_precisions": set(), "min_block_size": 1}, "dynamo", keywords, "2.14.0"
        )
    assert err.value.keywords == ("enabled_precisions",) and err.value.hint
    assert isinstance(err.value, RunError)
    with pytest.raises(UnknownCompileKeyword) as err:
        check_keywords({"use_explicit_typing": False, "arg_inputs": []}, "torch_compile", keywords, None)
    assert err.value.keywords == ("arg_inputs", "use_explicit_typing")
    check_keywords({"engine_cache_dir": "x", "min_block_size": 1}, "torch_compile", keywords, None)


def test_dynamic_input_specs_follow_the_cast_inputs_bf16_included():
    """A strongly typed full-TensorRT bf16 build casts the inputs: the dynamic Input's dtype must follow."""
    spec = InputSpec(name="x", shape=(1, 3, 8, 8), dtype="float32")
    for dtype, name in ((torch.bfloat16, "bfloat16"), (torch.float16, "float16"), (torch.float32, "float32")):
        (out,) = export.specs_at((spec,), (torch.zeros(1, 3, 8, 8, dtype=dtype),))
        assert out.dtype == name and out.torch_dtype == dtype


def test_full_tensorrt_strongly_typed_runs_get_new_cache_keys_and_rtx_keys_stay():
    """Runs the old backend stored on the README's stack (fp32 engines labelled fp16) must not answer from the
    cache; TensorRT-RTX keys (the bundled samples') do not move."""
    from engine import capabilities

    full = dataclasses.replace(caps_for(pinned_features()), strongly_typed=True, gpus=())
    assert capabilities.fingerprint(full, "cuda")["precision_from"] == "dtypes"
    rtx = dataclasses.replace(full, flavour="tensorrt_rtx")
    assert "precision_from" not in capabilities.fingerprint(rtx, "cuda")
    assert "precision_from" not in capabilities.fingerprint(dataclasses.replace(full, strongly_typed=False), "cuda")
