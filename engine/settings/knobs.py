"""What the dashboard knows about each knob, beside its default: one ``KnobInfo`` per request field.

A knob is declared once, as a dataclass field made by ``knob()`` (engine/settings/request.py). Everything that
handles knobs reads this record instead of listing knobs by name: turning plain values into the field's type
(``kind``, ``nullable``), validation (``choices``, ``min``, ``max``), the cache key (``added``, ``eager``,
``with_quantization``, ``renamed``), the Torch-TensorRT keyword argument (``trt_kwarg``), the command line
(``cli_flag``) and the dashboard's widgets (``label``, ``help``, ``advanced``, ``options``). A new knob is one edit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

KINDS = ("bool", "int", "text", "choice", "shape", "names", "inputs")


@dataclass(frozen=True)
class KnobInfo:
    label: str
    help: str
    kind: str  # one of KINDS: how plain values (JSON, CLI, a form) become the field's type
    choices: tuple = ()  # the allowed values of a "choice" knob
    min: int | None = None
    max: int | None = None
    nullable: bool = False  # None is a value: "unset" (optimization_level) or "the model's" (sequence)
    advanced: bool = False  # shown under "Advanced" in forms
    added: bool = False  # added after runs were first stored: out of the cache key at its default,
    # so the keys of requests made before it existed stay valid
    eager: bool = False  # the eager backend honours it: in an eager run's cache key (compile knobs)
    with_quantization: bool = False  # in the cache key only when a quantization scheme is set
    renamed: tuple[tuple[Any, Any], ...] = ()  # (stored value, today's value): old requests keep their meaning
    trt_kwarg: str | None = None  # the torch_tensorrt compile argument it is passed as (None: not passed as is)
    cli_flag: str | None = None  # the CLI option when it is not --<name-with-dashes>
    options: tuple = ()  # a nullable knob's widget offers None (as ``unset_label``) and these
    unset_label: str = ""
    item: str = ""  # what one entry of a "names" knob is, for messages ("op name")

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"knob kind {self.kind!r} is not one of {', '.join(KINDS)}")


def knob(
    default: Any,
    label: str,
    help: str,
    *,
    kind: str | None = None,
    choices: Iterable[Any] = (),
    min: int | None = None,
    max: int | None = None,
    nullable: bool = False,
    advanced: bool = False,
    added: bool = False,
    eager: bool = False,
    with_quantization: bool = False,
    renamed: Iterable[tuple[Any, Any]] = (),
    trt_kwarg: str | None = None,
    cli_flag: str | None = None,
    options: Iterable[Any] = (),
    unset_label: str = "",
    item: str = "",
) -> Any:
    """A dataclass field that also describes its widget, its allowed values and how every part of the dashboard
    handles it (``KnobInfo``). ``kind`` follows from the default when not given: choices, bool, int (nullable
    too), a tuple of names, text."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for sequence defaults")
    choices = tuple(choices)
    if kind is None:
        kind = (
            "choice"
            if choices
            else "bool"
            if isinstance(default, bool)
            else "int"
            if isinstance(default, int) or nullable
            else "names"
            if isinstance(default, tuple)
            else "text"
        )
    info = KnobInfo(
        label,
        help,
        kind,
        choices,
        min,
        max,
        nullable,
        advanced,
        added,
        eager,
        with_quantization,
        tuple(renamed),
        trt_kwarg,
        cli_flag,
        tuple(options),
        unset_label,
        item,
    )
    # the plain mapping keeps ``field.metadata["label"]`` readable as before; ``knob_info`` gives the typed record
    return field(default=default, metadata=dataclasses.asdict(info))


def knob_info(f: dataclasses.Field) -> KnobInfo:
    """The typed record of a field made by ``knob()``."""
    return KnobInfo(**f.metadata)


def knob_fields(part: type) -> list[dataclasses.Field]:
    """The fields of a settings class that are knobs (made by ``knob()``), in declaration order."""
    return [f for f in fields(part) if f.metadata]
