"""Issue 15, defect 2: a .pt2 model file is data. Crafted files that make torch.export.load (or the
ExportedProgram it returns) run code are refused, or loaded with the code left out, and the marker file the
code would write never appears. Each crafted file is first shown to run its code through torch itself, in a
child process, so the test cannot pass on a file that was harmless anyway."""

from __future__ import annotations

import builtins
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from engine.errors import ModelError
from engine.jobs.job_process import exit_reason
from engine.models import files as models_files
from engine.models import load_limit, registry
from engine.models.pt2_files import UnsafePt2File, check_archive, check_sym_expr, load_exported_program
from engine.settings.request import ModelSpec

ROOT = Path(__file__).resolve().parent.parent


class WritesMarker:
    """Unpickling this runs ``exec``: it writes the marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.exec, (f"open({self.marker!r}, 'w').write('ran')",))


class Lin(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.l = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.l(x)


class Flat(torch.nn.Module):
    def forward(self, x):
        return x.reshape(x.shape[0], -1).sum(1)


def pickled(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def rewrite(src: Path, dst: Path, changes: dict) -> Path:
    """A copy of a real torch.export.save archive with some members replaced (``fn(old bytes) -> new bytes``)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        root = zin.namelist()[0].split("/")[0] + "/"
        names = [n[len(root) :] for n in zin.namelist()]
        for n in zin.namelist():
            rel = n[len(root) :]
            zout.writestr(n, changes[rel](zin.read(n)) if rel in changes else zin.read(n))
        for rel, fn in changes.items():
            if rel not in names:
                zout.writestr(root + rel, fn(b""))
    return dst


def save_plain_files(directory: Path) -> dict[str, Path]:
    """A static (``lin``) and a dynamic-batch (``dyn``) program, as torch.export.save writes them."""
    lin = directory / "lin.pt2"
    torch.export.save(torch.export.export(Lin(), (torch.randn(3, 4),)), str(lin))
    dyn = directory / "dyn.pt2"
    batch = torch.export.Dim("batch", min=1, max=64)
    torch.export.save(torch.export.export(Flat(), (torch.randn(4, 3, 8),), dynamic_shapes=({0: batch},)), str(dyn))
    return {"lin": lin, "dyn": dyn}


@pytest.fixture
def plain_files(tmp_path) -> dict[str, Path]:
    return save_plain_files(tmp_path)


def crafted(kind: str, files: dict[str, Path], marker: Path, out: Path) -> Path:
    if kind == "pickled weight":

        def config(b: bytes) -> bytes:
            d = json.loads(b)
            d["config"]["l.weight"]["use_pickle"] = True
            return json.dumps(d).encode()

        return rewrite(
            files["lin"],
            out,
            {
                "data/weights/model_weights_config.json": config,
                "data/weights/weight_0": lambda _: pickled(WritesMarker(marker)),
            },
        )
    if kind == "sample inputs":
        return rewrite(files["lin"], out, {"data/sample_inputs/model.pt": lambda _: pickled(WritesMarker(marker))})
    if kind == "guards code":

        def guards(b: bytes) -> bytes:
            d = json.loads(b)
            d["guards_code"] = [f"__import__('os').system('touch {marker}') == 0"]
            return json.dumps(d).encode()

        return rewrite(files["lin"], out, {"models/model.json": guards})
    if kind == "shape expression":

        def expr(b: bytes) -> bytes:
            text = b.decode()
            sym = next(s for s in json.loads(text)["range_constraints"])
            original = f"Symbol('{sym}', positive=True, integer=True)"
            assert original in text
            return text.replace(original, f"(__import__('os').system('touch {marker}'), {original})[1]").encode()

        return rewrite(files["dyn"], out, {"models/model.json": expr})
    if kind == "opaque constant":

        def constants(b: bytes) -> bytes:
            d = json.loads(b)
            d["config"]["evil"] = {
                "path_name": "opaque_obj_0",
                "is_param": False,
                "use_pickle": True,
                "tensor_meta": None,
            }
            return json.dumps(d).encode()

        return rewrite(
            files["lin"],
            out,
            {
                "data/constants/model_constants_config.json": constants,
                "data/constants/opaque_obj_0": lambda _: __import__("pickle").dumps(WritesMarker(marker)),
            },
        )
    raise ValueError(kind)


KINDS = ["pickled weight", "sample inputs", "guards code", "shape expression", "opaque constant"]
# what torch does with each, shown in a child process before our loader sees the file
TORCH_RUNS_IT = (
    "import sys, torch\n"
    "try:\n    torch.export.load(sys.argv[1]).module()(*[torch.randn(3, 4)] if 'dyn' not in sys.argv[2] "
    "else [torch.randn(3, 3, 8)])\nexcept Exception:\n    pass\n"
)


@pytest.mark.parametrize("kind", KINDS)
def test_a_crafted_pt2_that_runs_code_under_torch_export_load_runs_nothing_here(
    kind, plain_files, tmp_path, monkeypatch
):
    marker = tmp_path / "marker"
    (tmp_path / "models").mkdir()
    path = crafted(kind, plain_files, marker, tmp_path / "models" / "evil.pt2")
    source = "dyn" if kind == "shape expression" else "lin"
    subprocess.run(
        [sys.executable, "-c", TORCH_RUNS_IT, str(path), source], cwd=tmp_path, capture_output=True, timeout=300
    )
    assert marker.exists(), f"the crafted file ({kind}) runs no code under torch.export.load: a test of nothing"
    marker.unlink()

    monkeypatch.setenv(models_files.MODELS_DIR_ENV, str(tmp_path / "models"))
    if kind == "guards code":  # loaded, with its guards left out: the model runs and the code never does
        built = registry.build(ModelSpec(source="file:evil.pt2", batch_size=3))
        built.module(*built.example_inputs)
        assert built.exported_program._guards_code == []
    else:
        with pytest.raises(ModelError) as e:
            registry.build(ModelSpec(source="file:evil.pt2"))
        assert "was not loaded" in e.value.message and "only .py model files run code" in e.value.message
        assert e.value.hint
        print(f"\n{kind}: {e.value.message}")
    assert not marker.exists()


def test_plain_exported_programs_load_static_and_dynamic(plain_files):
    for name, x in (("lin", torch.randn(3, 4)), ("dyn", torch.randn(5, 3, 8))):
        ep = load_exported_program(plain_files[name])
        assert ep.module()(x).shape[0] == x.shape[0]


def test_other_members_and_aoti_packages_are_refused(plain_files, tmp_path):
    aoti = rewrite(plain_files["lin"], tmp_path / "aoti.pt2", {"data/aotinductor/model/model.so": lambda _: b"ELF"})
    with pytest.raises(UnsafePt2File, match="AOTInductor"):
        load_exported_program(aoti)
    legacy = rewrite(plain_files["lin"], tmp_path / "legacy.pt2", {"data/weights/model.pt": lambda _: b"x"})
    with pytest.raises(UnsafePt2File, match="legacy"):
        load_exported_program(legacy)


@pytest.mark.parametrize(
    "expr",
    [
        "Symbol('s0', positive=True, integer=True)",
        "FloorDiv(Add(Mul(Integer(2), Symbol('s0', positive=True, integer=True)), Integer(1)), Integer(8))",
        "Equality(Mod(Symbol('s77', positive=True, integer=True), Integer(8)), Integer(0))",
        "Mul(Float('1.5', precision=53), Symbol('s0', integer=True))",
        "LessThan(Symbol('s0'), Integer(5))",
    ],
)
def test_sympy_notation_passes(expr):
    check_sym_expr(expr)


@pytest.mark.parametrize(
    "expr",
    [
        "__import__('os').system('x')",
        "eval(chr(49))",
        "S('eval')",
        "Max('eval')",
        "Symbol('s0').__class__",
        "open('f')",
        "Symbol('a b')",
        "Integer(1)[0]",
        "lambda: 1",
        "Symbol('s0'); 1",
    ],
)
def test_anything_else_is_refused(expr):
    with pytest.raises(UnsafePt2File):
        check_sym_expr(expr)


# -- issue 25, finding 2: an expression that makes torch compute for ever, and the load's time limit ----------
HUGE = "9**9**9**9"


def with_huge_expression(files: dict[str, Path], out: Path, form: str = "s0 + " + HUGE) -> Path:
    """The dynamic file with one symbolic shape expression replaced by ``form`` (``s0`` its own symbol): the file
    torch's _parse_sym_expr hangs on (sympify computes 9**9**9**9 in C)."""

    def expr(b: bytes) -> bytes:
        text = b.decode()
        sym = next(s for s in json.loads(text)["range_constraints"])
        original = f"Symbol('{sym}', positive=True, integer=True)"
        assert original in text
        return text.replace(f'"expr_str": "{original}"', f'"expr_str": "{form.replace("s0", original)}"', 1).encode()

    return rewrite(files["dyn"], out, {"models/model.json": expr})


@pytest.mark.parametrize(
    "form",
    [
        "s0 + " + HUGE,
        "Add(s0, Pow(Integer(9), Pow(Integer(9), Pow(Integer(9), Integer(9)))))",
        "Add(s0, PowByNatural(Integer(2), Integer(99999999999)))",
        "Add(s0, LShift(Integer(1), Integer(10000000000000)))",
        "Mul(s0, CeilToInt(Float('1e99999999', precision=53)))",
        "Mul(s0, Float('1.5', precision=999999999))",
        "Mul(s0, CeilToInt(Float('1e9999999999999', precision=53)))",
        "s0 + " + "+".join(["1"] * 12_000),
    ],
)
def test_an_expression_too_large_to_compute_is_refused_before_torch_sees_it(form, plain_files, tmp_path):
    path = with_huge_expression(plain_files, tmp_path / "huge.pt2", form)
    with pytest.raises(UnsafePt2File) as e:
        check_archive(path.read_bytes())
    assert "symbolic shape expression" in e.value.reason
    print(f"\n{form[:50]}: {e.value.reason}")


def test_the_crafted_sympy_file_fails_its_build_quickly_with_the_reason(plain_files, tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    with_huge_expression(plain_files, tmp_path / "models" / "sympy.pt2")
    monkeypatch.setenv(models_files.MODELS_DIR_ENV, str(tmp_path / "models"))
    with pytest.raises(ModelError) as e:
        registry.build(ModelSpec(source="file:sympy.pt2"))
    assert "sympy.pt2 was not loaded" in e.value.message and "too large to compute" in e.value.message


@pytest.mark.parametrize(
    "expr",
    [
        "Mul(Integer(2), Pow(Symbol('s0', integer=True), Integer(2)))",
        "s0**2 + 3*s1",
        "PowByNatural(Symbol('s0', integer=True), Integer(64))",
        "LShift(Symbol('s0', integer=True), Integer(4))",
        "Max(Integer(1), Integer(9223372036854775807))",
    ],
)
def test_shape_arithmetic_of_ordinary_size_passes(expr):
    check_sym_expr(expr)


def test_a_load_past_its_time_limit_fails_with_the_reason(plain_files, monkeypatch):
    """In-process (no process to end), the limit raises from the alarm's handler; the sleep stands for a
    Python-level load that never ends."""
    monkeypatch.setenv(load_limit.LIMIT_ENV, "0.5")
    monkeypatch.setattr(torch.export, "load", lambda f: time.sleep(120))
    t0 = time.monotonic()
    with pytest.raises(ModelError) as e:
        load_exported_program(plain_files["lin"])
    assert "lin.pt2" in e.value.message and "0.5 s limit" in e.value.message and e.value.hint
    assert time.monotonic() - t0 < 100  # stopped by the limit, not by the sleep's end


ENDS_ITSELF = """
import sys
from pathlib import Path
from engine.models import load_limit, pt2_exprs, pt2_files
load_limit.end_process_on_overrun()  # as the job process and the CLI's child do
pt2_files.check_sym_expr = lambda expr: None  # the check that refuses this file, switched off
pt2_files.load_exported_program(Path(sys.argv[1]))
"""


def test_the_limit_ends_a_job_process_held_in_c_code(plain_files, tmp_path, monkeypatch):
    """With the expression check switched off, torch computes 9**9**9**9 in C, where no handler can run: in a
    process that exists for one job, the kernel ends it at the limit, and its parent reads why."""
    path = with_huge_expression(plain_files, tmp_path / "sympy.pt2")
    monkeypatch.setenv(load_limit.LIMIT_ENV, "3")  # the worker reads the limit its job process had
    out = subprocess.run(
        [sys.executable, "-c", ENDS_ITSELF, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # only a load that never ends reaches this
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == -signal.SIGALRM, (out.returncode, out.stderr[-2000:])
    message, hint = exit_reason(out.returncode, "build_model")
    assert "took longer than its 3 s limit" in message and hint
