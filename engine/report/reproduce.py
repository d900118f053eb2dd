"""How to measure a stored run again: the ``python -m engine profile`` line of its request.

Flags come from the CLI's own table (``engine.settings.cli.knob_flag`` over the knob metadata), so a knob
added or renamed there is written here the same way. Only values that differ from today's defaults are
written (the request itself is shown beside the line); a stored setting the CLI no longer knows is named
instead of dropped silently.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, fields
from typing import Any

from engine.settings.cli import TOP_LEVEL_KNOBS, knob_flag
from engine.settings.request import PARTS, RunRequest

COMMAND = ("python", "-m", "engine", "profile")
# written even at their defaults: what the run is
ALWAYS = ("model.source", "model.batch_size", "backend", "compile.precision")


@dataclass(frozen=True)
class CliLine:
    line: str  # shell-quoted, ready to paste
    args: tuple[str, ...]  # the same line as argv
    unknown: tuple[str, ...]  # stored settings the CLI has no option for


def cli_value(value: Any) -> str:
    """A stored value as the CLI parses it back (``engine.settings.cli.parse_value`` + config coercion)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, (int, str)) and not isinstance(v, bool) for v in value):
            return ",".join(str(v) for v in value)
        return json.dumps(value, separators=(",", ":"), sort_keys=True)  # model.inputs: a JSON list
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def _same(a: Any, b: Any) -> bool:
    norm = lambda v: list(v) if isinstance(v, (list, tuple)) else v  # noqa: E731 - JSON turns tuples into lists
    return norm(a) == norm(b)


def cli_line(request: dict[str, Any], *, no_cache: bool = True) -> CliLine:
    """The profile command that measures ``request`` (a stored ``RunRequest.to_dict()``) again."""
    default = RunRequest().to_dict()
    args: list[str] = []
    unknown = [k for k in request if k not in TOP_LEVEL_KNOBS and k not in dict(PARTS)]

    def add(dotted: str, value: Any, default_value: Any) -> None:
        if dotted in ALWAYS or not _same(value, default_value):
            args.extend((knob_flag(dotted), cli_value(value)))

    for part, cls in PARTS:
        stored = request.get(part) or {}
        known = {f.name for f in fields(cls)}
        unknown += [f"{part}.{k}" for k in stored if k not in known]
        for f in fields(cls):
            if f.name in stored:  # a knob stored before it existed ran at its default: nothing to write
                add(f"{part}.{f.name}", stored[f.name], default[part][f.name])
        if part == "model":  # what the run is first: model, batch, backend, device, mode
            for name in TOP_LEVEL_KNOBS:
                add(name, request.get(name, default[name]), default[name])
    if no_cache:
        args.append("--no-cache")
    argv = (*COMMAND, *args)
    return CliLine(" ".join(shlex.quote(a) for a in argv), tuple(argv), tuple(unknown))
