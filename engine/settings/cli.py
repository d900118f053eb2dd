"""A request on the command line: one option per knob, generated from the knob metadata.

``python -m engine profile`` and ``python -m engine localise`` take these options, and ``engine.report`` writes
the profile command that measures a stored run again with the same flags (``knob_flag``). Values are handed to
``RunRequest.from_dict`` as text: its coercion turns digits into ints and lists into tuples, naming the field on
error, and the help of each option lists the knob's choices.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable
from typing import Any

from engine.errors import shown
from engine.settings.knobs import knob_fields, knob_info
from engine.settings.request import RunRequest, all_knobs

# the knobs of the request itself (not of one of its parts): --backend, --device, --mode
TOP_LEVEL_KNOBS = tuple(f.name for f in knob_fields(RunRequest))
# options of the profile command that are not knobs
NOT_KNOBS = ("json", "no_cache", "command", "func", "timeout")


MAX_TIMEOUT_S = 7 * 24 * 3600.0  # a week: a --timeout beyond it is a typo, not a plan


def number(kind: type, low: float, high: float, *, above_low: bool = False) -> Callable[[str], Any]:
    """An argparse ``type`` for a numeric option that is not a knob (``--timeout``, ``--tolerance``...): the text
    must be a finite ``kind`` (int or float) in [low, high] ((low, high] when ``above_low``). Anything else (nan,
    inf, a word, out of range) is argparse's error, exit code 2, naming the option, the value and the range,
    before any process starts."""
    what = "an integer" if kind is int else "a number"
    allowed = f"{'above' if above_low else 'from'} {low:g} {'and at most' if above_low else 'to'} {high:g}"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except (ValueError, TypeError):  # int("1.5"), float("five"), an int of more than 4300 digits
            raise argparse.ArgumentTypeError(f"{shown(text)} is not {what}; give {what} {allowed}") from None
        if not math.isfinite(value) or value < low or value > high or (above_low and value == low):
            raise argparse.ArgumentTypeError(f"{shown(text)} is outside the allowed range; give {what} {allowed}")
        return value

    return parse


def knob_flag(dotted: str) -> str:
    """The option of a knob: ``compile.min_block_size`` -> ``--min-block-size`` (``model.source`` -> ``--model``)."""
    f = dict(all_knobs()).get(dotted)
    flag = knob_info(f).cli_flag if f is not None else None
    return flag or "--" + dotted.rsplit(".", 1)[-1].replace("_", "-")


def knob_metavar(f: dataclasses.Field) -> str:
    """What an option takes, from the knob's metadata: ``{eager,tensorrt}`` for a choice, ``{true,false}`` for a
    switch, ``{none,0,...,5}`` for a nullable knob with named options, else the field's name."""
    info = knob_info(f)
    if info.kind == "choice":
        return "{" + ",".join(map(str, info.choices)) + "}"
    if info.kind == "bool":
        return "{true,false}"
    if info.options:
        return "{" + ",".join(["none", *map(str, info.options)]) + "}"
    return f.name.upper()


def add_knob_options(p: argparse.ArgumentParser) -> None:
    """One option per knob, generated from the request dataclasses. The allowed values are shown from the
    metadata and checked by ``RunRequest.from_dict`` (not by argparse), so a wrong value is named by its field
    and values kept for old requests (``--compare-inductor on``) still mean what they meant."""
    for dotted, f in all_knobs():
        info = knob_info(f)
        choices = f"One of {', '.join(map(str, info.choices))}. " if info.choices else ""
        p.add_argument(
            knob_flag(dotted),
            dest=dotted,
            default=None,
            metavar=knob_metavar(f),
            help=f"{info.help} {choices}(default: {f.default!r})",
        )


def parse_value(raw: str, choices: tuple = ()) -> Any:
    """A command-line value as ``RunRequest.from_dict`` takes it: true/false, none, or the text itself."""
    if raw in choices:  # a named choice stays text ("off", "default" are choices of compare_inductor)
        return raw
    low = raw.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "default"):
        return None
    return raw  # config coercion turns digits into ints and lists into tuples, naming the field on error


def request_from_args(ns: argparse.Namespace) -> RunRequest:
    """The request the knob options of ``ns`` describe (options left out keep their defaults)."""
    data: dict[str, Any] = {"model": {}, "compile": {}, "measure": {}}
    choices = {dotted: knob_info(f).choices for dotted, f in all_knobs()}
    for key, value in vars(ns).items():
        if value is None or key in NOT_KNOBS:
            continue
        if "." in key:
            part, name = key.split(".", 1)
            data[part][name] = parse_value(value, choices.get(key, ()))
        elif key in TOP_LEVEL_KNOBS:
            data[key] = value
    return RunRequest.from_dict(data)
