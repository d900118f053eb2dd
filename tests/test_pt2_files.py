"""Issue 15, defect 2: a .pt2 model file is data. Crafted files that make torch.export.load (or the
ExportedProgram it returns) run code are refused, or loaded with the code left out, and the marker file the
code would write never appears. Each crafted file is first shown to run its code through torch itself, in a
child process, so the test cannot pass on a file that was harmless anyway."""

from __future__ import annotations

import builtins
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from engine.errors import ModelError
from engine.models import files as models_files
from engine.models import registry
from engine.models.pt2_files import UnsafePt2File, check_sym_expr, load_exported_program
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


@pytest.fixture
def plain_files(tmp_path) -> dict[str, Path]:
    lin = tmp_path / "lin.pt2"
    torch.export.save(torch.export.export(Lin(), (torch.randn(3, 4),)), str(lin))
    dyn = tmp_path / "dyn.pt2"
    batch = torch.export.Dim("batch", min=1, max=64)
    torch.export.save(torch.export.export(Flat(), (torch.randn(4, 3, 8),), dynamic_shapes=({0: batch},)), str(dyn))
    return {"lin": lin, "dyn": dyn}


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
