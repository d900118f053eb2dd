"""Loading an admin's ``.pt2`` ExportedProgram file as data: nothing in it is unpickled or executed.

``torch.export.load`` is not that: it unpickles weights and constants saved with ``use_pickle``, legacy
``.pt`` payloads and custom objects, falls back to unrestricted unpickling for sample inputs that the
restricted (``weights_only``) unpickler refuses, loads AOTInductor shared libraries, hands every symbolic
shape expression to ``sympy.sympify`` (which ``eval``s it), and ``ExportedProgram.module()`` ``exec``s the
file's ``guards_code``. Before torch sees the bytes, ``load_exported_program`` checks the archive against
what ``torch.export.save`` writes for a plain model (torch 2.14's ``torch/export/pt2_archive/_package.py``
and ``torch/_export/serde/serialize.py``):

* every member is one of the known kinds (format and version files, ``models/<name>.json``, raw weight
  and tensor-constant payloads with their JSON configs, sample inputs, ``extra/`` text files);
* every weight and constant is stored raw (``use_pickle: false``), none is a custom or opaque object;
* the sample inputs load with ``torch.load(weights_only=True)``;
* every symbolic expression is written with sympy's own constructors (``Symbol('s0', integer=True)``,
  ``Add``, ``FloorDiv`` ...) and nothing else, and makes no number too large to compute (pt2_exprs.py).

The check and the load together run under a time limit (load_limit.py).

A file that fails a check is refused with the reason (``UnsafePt2File``). A file that passes is loaded
from the bytes that were checked, its guards are dropped (the graph carries its own shape assertions), and
every node of its graph must call a torch operator.
"""

from __future__ import annotations

import io
import json
import operator
import re
import zipfile
from pathlib import Path
from typing import Any

from engine.models import load_limit
from engine.models.pt2_exprs import UnsafePt2File, check_sym_expr

__all__ = ["SAFE_HINT", "NotAnArchive", "UnsafePt2File", "check_archive", "check_sym_expr", "load_exported_program"]

SAFE_HINT = (
    "Re-export the model with torch.export.save() from plain tensors (no tensor subclasses, custom or "
    "opaque objects, no AOTInductor package), or provide it as a .py model file, which the administrator "
    "reviews because it runs code."
)

# members relative to the archive's root folder, as torch.export.save writes them
_ALLOWED_MEMBERS = [
    re.compile(p)
    for p in (
        r"archive_format",
        r"archive_version",
        r"byteorder",
        r"\.data/version",
        r"\.data/serialization_id",
        r"models/\w+\.json",
        r"data/weights/weight_\d+",
        r"data/weights/\w+_weights_config\.json",
        r"data/constants/tensor_\d+",
        r"data/constants/\w+_constants_config\.json",
        r"data/sample_inputs/\w+\.pt",
        r"extra/[\w./-]+",
    )
]
_REFUSED_MEMBERS = [
    (
        re.compile(r"data/aotinductor/.*"),
        "it holds an AOTInductor package: a compiled shared library that runs as native code when loaded",
    ),
    (
        re.compile(r"data/(weights|constants)/\w+\.pt"),
        "its weights or constants are a pickle (the legacy format), which runs code when unpickled",
    ),
    (
        re.compile(r"data/constants/(custom_obj|opaque_obj)_\d+"),
        "it holds a custom or opaque Python object, stored as a pickle, which runs code when unpickled",
    ),
    (re.compile(r"serialized_\w+\.json|version"), "it is in the pre-2.7 format, whose state dict is unpickled"),
]


class NotAnArchive(ValueError):
    """Not a .pt2 archive at all (not a zip): nothing to refuse, nothing to load."""


def _walk_expr_strs(node: Any) -> list[str]:
    out: list[str] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                if k == "expr_str" and isinstance(v, str):
                    out.append(v)
                else:
                    stack.append(v)
        elif isinstance(item, list):
            stack.extend(item)
    return out


def check_archive(data: bytes) -> None:
    """Raise ``UnsafePt2File`` naming the first thing in the archive that would be unpickled or run."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise NotAnArchive(f"not a zip archive as torch.export.save writes ({e})") from None
    roots = {n.split("/", 1)[0] for n in names}
    if len(roots) != 1 or any("/" not in n for n in names):
        raise UnsafePt2File("its members are not all inside one folder, as torch.export.save writes them")
    root = roots.pop() + "/"
    members = {n[len(root) :]: n for n in names if not n.endswith("/")}
    for rel in members:
        for pattern, reason in _REFUSED_MEMBERS:
            if pattern.fullmatch(rel):
                raise UnsafePt2File(f"{reason} ({rel})")
        if not any(p.fullmatch(rel) for p in _ALLOWED_MEMBERS):
            raise UnsafePt2File(f"it holds {rel!r}, which torch.export.save does not write for a plain model")
    if members.get("archive_format") is None or archive.read(members["archive_format"]).strip() != b"pt2":
        raise UnsafePt2File("it has no archive_format 'pt2' (not written by torch.export.save)")
    for rel, name in members.items():
        kind = (
            "weights"
            if rel.endswith("_weights_config.json")
            else "constants"
            if rel.endswith("_constants_config.json")
            else None
        )
        if kind is None:
            continue
        config = _json(archive, name, rel).get("config", {})
        for fqn, meta in config.items() if isinstance(config, dict) else ():
            if not isinstance(meta, dict) or meta.get("use_pickle") is not False:
                raise UnsafePt2File(
                    f"its {kind} entry {fqn!r} is stored as a pickle (use_pickle), which runs code when unpickled"
                )
            if not re.fullmatch(r"(weight|tensor)_\d+", str(meta.get("path_name", ""))):
                raise UnsafePt2File(
                    f"its {kind} entry {fqn!r} points at {meta.get('path_name')!r}, not a raw tensor payload"
                )
    for rel, name in members.items():
        if rel.startswith("data/sample_inputs/"):
            _check_sample_inputs(archive.read(name), rel)
        elif rel.startswith("models/"):
            for expr in _walk_expr_strs(_json(archive, name, rel)):
                check_sym_expr(expr)


def _json(archive: zipfile.ZipFile, name: str, rel: str) -> Any:
    try:
        return json.loads(archive.read(name))
    except (ValueError, RecursionError) as e:
        raise UnsafePt2File(f"{rel} is not valid JSON ({type(e).__name__})") from None


def _check_sample_inputs(blob: bytes, rel: str) -> None:
    """torch.export.load retries sample inputs with unrestricted unpickling when the restricted unpickler
    refuses them: here they must load with the restricted one."""
    import torch  # noqa: PLC0415

    try:
        torch.load(io.BytesIO(blob), weights_only=True)
    except Exception as e:  # the restricted unpickler's refusal, or a corrupt payload
        raise UnsafePt2File(
            f"its sample inputs ({rel}) need unrestricted unpickling, which runs code "
            f"(the restricted unpickler refused them: {type(e).__name__})"
        ) from None


def _check_graph(ep: Any) -> None:
    """Every call in the program (subgraphs included) is a torch operator or a symbolic-shape operation."""
    import torch  # noqa: PLC0415
    from torch._export.serde.serialize import _SYM_OPS  # noqa: PLC0415

    allowed_python = {*_SYM_OPS, operator.getitem}
    for module in ep.graph_module.modules():
        graph = getattr(module, "graph", None)
        for node in graph.nodes if graph is not None else ():
            if node.op in ("call_method", "call_module"):
                raise UnsafePt2File(f"its graph calls {node.op} {node.target!r}, which an ExportedProgram never holds")
            if node.op != "call_function":
                continue
            target = node.target
            if isinstance(target, (torch._ops.OpOverload, torch._ops.HigherOrderOperator)) or target in allowed_python:
                continue
            raise UnsafePt2File(f"its graph calls {target!r}, which is not a torch operator")


def load_exported_program(path: Path) -> Any:
    """The ExportedProgram in ``path``, loaded without unpickling or running anything from the file.

    Raises ``UnsafePt2File`` with the reason when the file would need that, ``NotAnArchive`` for a file that is
    no zip, ``ModelError`` when the whole load takes longer than its limit (engine/models/load_limit.py);
    other load errors propagate."""
    import torch  # noqa: PLC0415

    with load_limit.bounded(path.name):  # a file that passes the check still loads in bounded time
        data = path.read_bytes()  # check and load the same bytes
        check_archive(data)
        ep = torch.export.load(io.BytesIO(data))
        if getattr(ep, "_guards_code", None):
            ep._guards_code = []  # Python source that ExportedProgram.module() would exec
        _check_graph(ep)
    return ep
