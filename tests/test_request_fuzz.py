"""Property-based fuzzing of request parsing (issue 15, defect 5): whatever JSON or CLI text arrives, parsing
and checking it ends in a request or in one of the project's own errors naming a field, never in a TypeError,
RecursionError or anything else that would crash the Profile page or the CLI.

The example counts are printed (``pytest -s``) so the figure can be quoted."""

from __future__ import annotations

import argparse
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine import capabilities, runner
from engine.errors import ConfigError, ModelError
from engine.models import registry
from engine.settings.inputs import InputSpec, parse_inputs
from engine.settings.request import CompileSettings, MeasureSettings, ModelSpec, RunRequest, validate

OURS = (ConfigError, ModelError)
EXAMPLES = 400
COUNTS: dict[str, int] = {}

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)
FIELDS = {"model": ModelSpec, "compile": CompileSettings, "measure": MeasureSettings}
field_names = {part: [f for f in cls.__dataclass_fields__] for part, cls in FIELDS.items()}
input_keys = list(InputSpec.__dataclass_fields__)


def input_entry() -> st.SearchStrategy:
    """Mostly well-formed input entries with one or more fields replaced by anything JSON can hold."""
    good = {
        "name": st.sampled_from(["x", "input_ids", "attention_mask", "1bad", ""]),
        "shape": st.lists(st.integers(-3, 20000), max_size=9) | json_values,
        "dtype": st.sampled_from(["float32", "int64", "int32", "bool", "float16", "complex"]) | json_values,
        "min_shape": st.none() | st.lists(st.integers(-3, 20000), max_size=9) | json_values,
        "max_shape": st.none() | st.lists(st.integers(-3, 20000), max_size=9) | json_values,
        "value_range": st.none() | st.lists(st.integers(-(2**70), 2**70), min_size=2, max_size=2) | json_values,
        "dim_names": st.none()
        | st.lists(st.sampled_from(["batch", "sequence", "", "a b", "x.y"]), max_size=9)
        | json_values,
    }
    return st.fixed_dictionaries({}, optional=good) | st.dictionaries(
        st.sampled_from(input_keys + ["extra"]), json_values, max_size=7
    )


def part(name: str) -> st.SearchStrategy:
    values = json_values | st.integers(-(2**80), 2**80) | st.text(alphabet="0123456789-x, ²", max_size=12)
    if name == "model":
        values = values | st.lists(input_entry(), max_size=3)
    return st.dictionaries(st.sampled_from(field_names[name] + ["nonsense"]), values, max_size=6)


requests = (
    st.fixed_dictionaries(
        {},
        optional={
            "model": part("model") | json_values,
            "compile": part("compile") | json_values,
            "measure": part("measure") | json_values,
            "backend": st.sampled_from(["eager", "tensorrt", "onnx"]) | json_values,
            "device": st.sampled_from(["auto", "cpu", "cuda"]) | json_values,
            "mode": st.sampled_from(["measure", "analyze"]) | json_values,
        },
    )
    | json_values
)


def parse_and_check(data: object) -> None:
    """What the Profile page and submit() do with a request: parse, validate, check against this machine."""
    request = validate(RunRequest.from_dict(data))  # type: ignore[arg-type]
    registry.describe_inputs(request.model)
    runner.check_request(request, capabilities.detect())


def count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests)
@example({"model": {"inputs": [{"name": "x", "shape": [1, 3, 8, 8], "dim_names": 5}]}})  # the reported crash
@example({"model": {"inputs": [{"name": "x", "shape": [1, 2], "dtype": "int64", "value_range": [0, 2**64]}]}})
@example({"model": {"batch_size": "²"}})
@example({"model": {"input_shape": "9" * 5000}})
@example({"measure": {"timed_iters": float("nan")}})  # issue 25: numbers that are no number
@example({"model": {"batch_size": float("inf")}})
@example({"compile": {"workspace_size": -1}})
@example({"model": {"input_shape": [3, 16384, 16384]}, "device": "cpu"})  # fits no machine this test runs on
@example({"compile": {"torch_executed_ops": ["torch.ops.aten.nonexistent.default"]}})
@example({"model": {"source": "file:_hidden.py"}})
@example([1, 2])
def test_request_json_yields_a_request_or_a_field_error(data):
    count("request_json")
    try:
        parse_and_check(data)
    except OURS:
        pass


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.text(max_size=200) | json_values.map(json.dumps))
@example("[" * 100_000)  # the reported RecursionError
@example('[{"name": "x", "shape": [' + "1" * 5000 + "]}]")  # an integer too long to convert
def test_inputs_text_yields_specs_or_a_field_error(text):
    count("inputs_text")
    try:
        parse_inputs(text)
    except ConfigError:
        pass
    try:  # the same text in the Profile page's Inputs box
        parse_and_check({"model": {"inputs": text}})
    except OURS:
        pass


def _cli_parser() -> tuple[argparse.ArgumentParser, list[str]]:
    from engine.settings.cli import add_knob_options

    p = argparse.ArgumentParser(exit_on_error=False)
    add_knob_options(p)
    flags = [a.option_strings[0] for a in p._actions if a.option_strings and a.option_strings[0] != "-h"]
    return p, flags


PARSER, FLAGS = _cli_parser()
cli_values = (
    st.text(max_size=40)
    | st.integers(-(2**70), 2**70).map(str)
    | json_values.map(json.dumps)
    | st.sampled_from(["true", "off", "none", "default", "3,224,224", "2x3", "-1", "1e9", "nan"])
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(FLAGS), cli_values), max_size=6))
@example([("--inputs", "[" * 50_000)])
@example([("--batch", "4" * 5000)])
@example([("--timed-iters", "nan"), ("--batch", "inf")])  # issue 25
@example([("--input-shape", "3,16384,16384"), ("--device", "cpu")])
@example([("--torch-executed-ops", "torch.ops.aten.nonexistent.default")])
@example([("--model", "file:_hidden.py")])
def test_cli_text_yields_a_request_or_a_field_error(pairs):
    from engine.settings.cli import request_from_args

    count("cli_text")
    argv = [f"{flag}={value}" for flag, value in pairs]  # '=' keeps a value starting with '-' a value
    ns = PARSER.parse_args(argv)
    try:
        request = request_from_args(ns)
        runner.check_request(validate(request), capabilities.detect())
    except OURS:
        pass


PROFILE_NUMBERS = ["--timeout", "--batch", "--timed-iters", "--warmup-iters", "--seed", "--workspace-size"]


class _WouldRun(BaseException):  # noqa: N818 - a sentinel main() does not catch
    pass


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(PROFILE_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True).map(repr)
    | st.integers(-(2**70), 2**70).map(str)
    | st.text(max_size=12)
    | st.sampled_from(["nan", "inf", "-inf", "-0", "1e400", "0", "-1", "Infinity"]),
)
def test_profile_numbers_run_or_exit_2_with_a_message(monkeypatch, capsys, flag, value):
    """Issue 25: ``profile`` with any text as a numeric option either reaches the run (the value was allowed) or
    exits 2 with a message before any process starts; never another exit code, never a traceback."""
    import engine.__main__ as cli

    count("profile_numbers")

    def would_run(*args, **kwargs):
        raise _WouldRun

    monkeypatch.setattr(cli, "execute", would_run)
    monkeypatch.setattr(cli, "_profile_in_child", would_run)
    try:
        code = cli.main(["profile", "--device", "cpu", f"{flag}={value}"])
    except _WouldRun:
        return
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and "error:" in err and "Traceback" not in err, (flag, value, code, err)


def test_the_counts_of_fuzzed_examples_are_reported(capsys):
    with capsys.disabled():
        print(f"\nfuzzed request parsing: {COUNTS}")
    if COUNTS:  # run after the properties in this module (pytest keeps file order)
        assert all(n >= 1 for n in COUNTS.values())


def test_dim_names_that_are_not_a_list_name_the_field():
    with pytest.raises(ConfigError) as e:
        parse_inputs([{"name": "x", "shape": [1, 3, 8, 8], "dim_names": 5}])
    assert e.value.field == "model.inputs.x.dim_names" and "list of dimension names" in e.value.message
    with pytest.raises(ConfigError) as e:
        parse_inputs("[" * 100_000)
    assert e.value.field == "model.inputs" and "nested too deeply" in e.value.message


def test_value_range_beyond_int64_is_refused_at_validation():
    """Issue 15, defect 8: such a range passed validation and failed in the worker (torch.randint overflows)."""
    for dtype, bad in (
        ("int64", [0, 2**63]),
        ("int64", [-(2**63) - 1, 0]),
        ("int32", [0, 2**31 + 1]),
        ("bool", [0, 3]),
    ):
        with pytest.raises(ConfigError) as e:
            RunRequest.from_dict(
                {"model": {"inputs": [{"name": "ids", "shape": [1, 8], "dtype": dtype, "value_range": bad}]}}
            )
        assert e.value.field == "model.inputs.ids.value_range" and dtype in e.value.message
    ok = RunRequest.from_dict(
        {
            "model": {
                "inputs": [{"name": "ids", "shape": [1, 8], "dtype": "int64", "value_range": [-(2**63), 2**63 - 1]}]
            }
        }
    )
    assert ok.model.inputs[0].value_range == (-(2**63), 2**63 - 1)
