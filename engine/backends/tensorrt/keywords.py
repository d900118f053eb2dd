"""The keywords Torch-TensorRT reads, and the check that the backend passes no other.

``torch_tensorrt.dynamo.compile`` takes ``**kwargs`` and ignores a name it does not know; ``torch.compile``'s
options keep only ``CompilationSettings`` fields. So a keyword a version removed is dropped without a word:
since 2.13 ``enabled_precisions`` and ``use_explicit_typing`` are gone, and passing them built fp32 engines
that were labelled fp16. ``check_keywords`` refuses such a keyword before anything is built;
``internals.compile_keywords`` reads what the installed package accepts, tests/test_internals.py reads the
same from each wheel's source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import RunError

# names torch.compile's options are read by beside CompilationSettings' fields
# (torch_tensorrt.dynamo.utils.parse_dynamo_kwargs builds the engine cache from them)
TORCH_COMPILE_OPTIONS_READ = ("engine_cache_dir", "engine_cache_size", "custom_engine_cache")


class UnknownCompileKeyword(RunError):
    """The backend was about to pass a keyword the installed Torch-TensorRT does not read: it would fall into
    ``**kwargs`` (or be dropped from torch.compile's options) and be ignored without a word."""

    def __init__(self, message: str, hint: str, keywords: tuple[str, ...]):
        super().__init__(message, hint)
        self.keywords = keywords


@dataclass(frozen=True)
class CompileKeywords:
    """The keyword names each frontend reads: ``dynamo.compile``'s named parameters, and for
    ``torch.compile(backend="tensorrt", options=...)`` the fields of ``CompilationSettings`` plus
    ``TORCH_COMPILE_OPTIONS_READ``."""

    dynamo: frozenset[str]
    torch_compile: frozenset[str]

    def accepted(self, frontend: str) -> frozenset[str]:
        return self.dynamo if frontend == "dynamo" else self.torch_compile

    @property
    def weak_typing(self) -> bool:
        """Whether ``dynamo.compile`` still builds weakly typed from ``enabled_precisions`` (full TensorRT with
        Torch-TensorRT before 2.13); False where only the model's dtypes decide (strongly typed)."""
        return {"enabled_precisions", "use_explicit_typing"} <= self.dynamo


def check_keywords(kw: Mapping[str, Any], frontend: str, keywords: CompileKeywords, version: str | None) -> None:
    """Refuse a keyword the frontend would ignore, before Torch-TensorRT is called."""
    unknown = tuple(sorted(set(kw) - keywords.accepted(frontend)))
    if unknown:
        where = "torch_tensorrt.dynamo.compile" if frontend == "dynamo" else 'torch.compile(backend="tensorrt")'
        raise UnknownCompileKeyword(
            f"This Torch-TensorRT ({version or 'unknown version'}) does not read {', '.join(unknown)}: {where} "
            f"would ignore {'it' if len(unknown) == 1 else 'them'} and build something other than the request "
            "asks for, so nothing was built.",
            "Install the Torch-TensorRT that requirements-gpu.txt pins, or a version tests/test_internals.py "
            "checks (2.11, 2.14).",
            unknown,
        )
