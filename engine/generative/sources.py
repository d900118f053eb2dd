"""Where a generative run's decoder comes from: a registry name (``configs.NAMED``) or a model file
``file:<name>.py`` in the models directory whose ``build_model()`` returns a causal LM (what it may return:
engine/generative/models/__init__.py)."""

from __future__ import annotations

from engine.errors import ModelError
from engine.generative.configs import NAMED
from engine.generative.models import CausalDecoder, as_decoder, build
from engine.models.files import FILE_PREFIX, _import_file, resolve_file


def decoder_names() -> list[str]:
    """The registry's decoders, for the CLI and the page."""
    return list(NAMED)


def is_decoder_source(source: str) -> bool:
    return source in NAMED or (source.startswith(FILE_PREFIX) and source.endswith(".py"))


def load(source: str, seed: int = 0) -> CausalDecoder:
    """The decoder of ``source`` in eval mode on CPU (random weights from ``seed`` for registry names)."""
    if source in NAMED:
        return build(NAMED[source], seed)
    if source.startswith(FILE_PREFIX):
        path = resolve_file(source)
        if path.suffix != ".py":
            raise ModelError(
                f"{path.name}: generation needs a .py model file exposing build_model().",
                "An ExportedProgram (.pt2) holds one program; generation needs the model to build two.",
            )
        module = _import_file(path)
        if not hasattr(module, "build_model"):
            raise ModelError(f"{path.name} defines no build_model().", "Define build_model() returning a causal LM.")
        return as_decoder(module.build_model(), seed)
    raise ModelError(
        f"{source!r} is not a decoder this tool generates with.",
        f"Use one of {', '.join(NAMED)} or a file:<name>.py model file exposing build_model().",
    )
