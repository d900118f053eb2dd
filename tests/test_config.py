import dataclasses

import pytest

from engine.errors import ConfigError
from engine.settings.defaults import INDUCTOR_MODES, MIN_BLOCK_SIZE
from engine.settings.identity import cache_key
from engine.settings.knobs import knob_fields
from engine.settings.request import CompileSettings, MeasureSettings, ModelSpec, RunRequest, validate

ENV = {
    "device": "cuda",
    "device_name": "NVIDIA H200",
    "torch": "2.11.0",
    "torch_tensorrt": "2.11.0",
    "flavour": "tensorrt_rtx",
    "tensorrt": "1.4.0.76",
    "compute_capability": "9.0",
}


def test_defaults_mirror_torch_tensorrt():
    c = CompileSettings()
    assert c.min_block_size == MIN_BLOCK_SIZE == 5
    assert c.optimization_level is None
    assert c.use_python_runtime is False and c.use_fast_partitioner is True
    assert c.workspace_size == 0 and c.truncate_double is False and c.hardware_compatible is False
    assert c.sparse_weights is False and c.require_full_compilation is False
    assert c.torch_executed_ops == ()


def test_every_knob_has_widget_metadata():
    for cls in (ModelSpec, CompileSettings, MeasureSettings):
        for f in knob_fields(cls):
            assert f.metadata["label"] and f.metadata["help"], f.name
    names = {f.name for f in knob_fields(CompileSettings)}
    assert {
        "frontend",
        "precision",
        "min_block_size",
        "optimization_level",
        "use_python_runtime",
        "torch_executed_ops",
        "workspace_size",
        "truncate_double",
        "use_fast_partitioner",
        "hardware_compatible",
        "sparse_weights",
        "cache_built_engines",
        "reuse_cached_engines",
    } <= names


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"compile": {"min_block_size": 0}}, "compile.min_block_size", "below the minimum 1"),
        ({"compile": {"min_block_size": -3}}, "compile.min_block_size", "below the minimum"),
        ({"compile": {"min_block_size": "many"}}, "compile.min_block_size", "not an integer"),
        ({"compile": {"min_block_size": 2.5}}, "compile.min_block_size", "not an integer"),
        ({"compile": {"optimization_level": 6}}, "compile.optimization_level", "above the maximum 5"),
        ({"compile": {"optimization_level": -1}}, "compile.optimization_level", "below the minimum 0"),
        ({"compile": {"precision": "int3"}}, "compile.precision", "not one of fp32, fp16, bf16"),
        ({"compile": {"frontend": "fx"}}, "compile.frontend", "not one of dynamo, torch_compile"),
        ({"compile": {"use_python_runtime": "yes"}}, "compile.use_python_runtime", "not true or false"),
        ({"compile": {"workspace_size": -1}}, "compile.workspace_size", "below the minimum 0"),
        ({"compile": {"torch_executed_ops": "relu"}}, "compile.torch_executed_ops", "torch.ops.aten.relu.default"),
        ({"compile": {"reuse_cached_engines": True}}, "compile.reuse_cached_engines", "cache_built_engines"),
        ({"compile": {"bogus": 1}}, "compile.bogus", "unknown setting"),
        ({"model": {"batch_size": 0}}, "model.batch_size", "below the minimum 1"),
        ({"model": {"batch_size": 10**6}}, "model.batch_size", "above the maximum"),
        ({"model": {"batch_size": True}}, "model.batch_size", "not an integer"),
        ({"model": {"input_shape": "3,a,4"}}, "model.input_shape", "not a list of integers"),
        ({"model": {"input_shape": [3, 0, 4]}}, "model.input_shape", "outside 1.."),
        ({"model": {"input_shape": [1] * 7}}, "model.input_shape", "7 dimensions"),
        ({"model": {"source": "  "}}, "model.source", "empty"),
        ({"measure": {"timed_iters": 1}}, "measure.timed_iters", "below the minimum 5"),
        ({"measure": {"warmup_iters": 0}}, "measure.warmup_iters", "below the minimum 1"),
        ({"backend": "onnx"}, "backend", "not one of eager, tensorrt"),
        ({"device": "tpu"}, "device", "not one of"),
        ({"mode": "guess"}, "mode", "not one of"),
        ({"model": 5}, "model", "expected a mapping"),
    ],
)
def test_validation_names_field_value_and_range(change, field, words):
    with pytest.raises(ConfigError) as err:
        validate(RunRequest.from_dict(change))
    assert err.value.field == field
    assert words in err.value.message


def test_text_inputs_are_coerced():
    r = validate(
        RunRequest.from_dict(
            {
                "model": {"input_shape": "3, 64,64", "batch_size": "4"},
                "compile": {
                    "optimization_level": "5",
                    "torch_executed_ops": "torch.ops.aten.relu.default, torch.ops.aten.add.Tensor",
                },
            }
        )
    )
    assert r.model.input_shape == (3, 64, 64) and r.model.batch_size == 4
    assert r.compile.optimization_level == 5
    assert r.compile.torch_executed_ops == ("torch.ops.aten.add.Tensor", "torch.ops.aten.relu.default")


def test_round_trip_and_with_changes():
    r = RunRequest.from_dict({"backend": "tensorrt", "compile": {"precision": "fp16", "min_block_size": 7}})
    assert RunRequest.from_dict(r.to_dict()) == r
    r2 = r.with_changes(**{"compile.min_block_size": 3})
    assert r2.compile.min_block_size == 3 and r2.compile.precision == "fp16"
    with pytest.raises(ConfigError, match="compile.min_block_size"):
        r.with_changes(**{"compile.min_block_size": 0})
    with pytest.raises(ConfigError, match="no such setting"):
        r.with_changes(**{"compile.nope": 0})


def test_cache_key_is_stable_and_sensitive():
    r = RunRequest.from_dict({"backend": "tensorrt"})
    k = cache_key(r, ENV, "registry:resnet18:seed0")
    # same content built another way -> same key (order of dict keys, tuple vs list)
    r_again = RunRequest.from_dict(dict(reversed(list(r.to_dict().items()))))
    assert cache_key(r_again, dict(reversed(list(ENV.items()))), "registry:resnet18:seed0") == k
    assert k == cache_key(r, ENV, "registry:resnet18:seed0")
    changed = [
        cache_key(r.with_changes(**{"compile.min_block_size": 6}), ENV, "registry:resnet18:seed0"),
        cache_key(r.with_changes(**{"compile.optimization_level": 5}), ENV, "registry:resnet18:seed0"),
        cache_key(r, {**ENV, "device_name": "NVIDIA L4"}, "registry:resnet18:seed0"),
        cache_key(r, {**ENV, "torch_tensorrt": "2.12.0"}, "registry:resnet18:seed0"),
        cache_key(r, {**ENV, "flavour": "tensorrt"}, "registry:resnet18:seed0"),
        cache_key(r, ENV, "file:m.py:abc:seed0"),
        cache_key(r.with_changes(**{"model.batch_size": 2}), ENV, "registry:resnet18:seed0"),
    ]
    assert len(set(changed + [k])) == len(changed) + 1


def test_compile_knobs_do_not_split_the_eager_cache():
    e = RunRequest()
    assert cache_key(e, ENV, "m") == cache_key(e.with_changes(**{"compile.min_block_size": 9}), ENV, "m")
    assert cache_key(e, ENV, "m") != cache_key(e.with_changes(**{"compile.precision": "fp16"}), ENV, "m")


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        CompileSettings().min_block_size = 3


def test_inductor_baseline_is_a_choice_and_old_bools_keep_their_meaning_and_keys():
    (f,) = [f for f in knob_fields(MeasureSettings) if f.name == "compare_inductor"]
    assert f.metadata["choices"] == INDUCTOR_MODES == ("off", "default", "max-autotune") and f.default == "off"
    trt = {"backend": "tensorrt", "compile": {"precision": "fp16"}}
    # runs and samples stored before the modes hold a bool: False was off, True was max-autotune
    old_on = RunRequest.from_dict({**trt, "measure": {"compare_inductor": True}})
    old_off = RunRequest.from_dict({**trt, "measure": {"compare_inductor": False}})
    assert old_on.measure.compare_inductor == "max-autotune" and old_off.measure.compare_inductor == "off"
    assert RunRequest.from_dict(old_on.to_dict()) == old_on
    keys = {
        mode: cache_key(RunRequest.from_dict({**trt, "measure": {"compare_inductor": mode}}), ENV, "m")
        for mode in INDUCTOR_MODES
    }
    assert len(set(keys.values())) == 3
    assert keys["off"] == cache_key(old_off, ENV, "m") and keys["max-autotune"] == cache_key(old_on, ENV, "m")
    # keys computed by the code before the modes existed (compare_inductor false / true)
    assert keys["off"] == "aaa46060d2bac4a515760f678ef5cd28"
    assert keys["max-autotune"] == "680970e3308ea7207da9118f35d05752"
    with pytest.raises(ConfigError) as e:
        validate(RunRequest.from_dict({"measure": {"compare_inductor": "fast"}}))
    assert e.value.field == "measure.compare_inductor"
    assert e.value.message == "'fast' is not one of off, default, max-autotune"


def test_stored_results_with_the_old_inductor_bool_read_back_as_modes():
    from engine.latency_stats import LatencyStats
    from engine.result import RunResult

    stored = {
        "run_id": "r",
        "key": "k",
        "created_at": "2025-01-01T00:00:00+00:00",
        "request": {
            **RunRequest().to_dict(),
            "measure": {**RunRequest().to_dict()["measure"], "compare_inductor": True},
        },
        "env": {},
        "model_info": {},
        "latency": dataclasses.asdict(LatencyStats.from_samples([1.0], 1, "t")),
        "baselines": {"inductor": dataclasses.asdict(LatencyStats.from_samples([2.0], 1, "t"))},
    }
    r = RunResult.from_dict(stored)
    assert r.request["measure"]["compare_inductor"] == "max-autotune"
    assert r.baselines["inductor"].median_ms == 2.0 and r.baseline_compile_s == {}
    assert RunRequest.from_dict(r.request).measure.compare_inductor == "max-autotune"


def test_command_line_keeps_named_choices_as_text():
    import argparse

    from engine.settings import cli

    parser = argparse.ArgumentParser()
    cli.add_knob_options(parser)
    for given, mode in (
        ("default", "default"),
        ("off", "off"),
        ("max-autotune", "max-autotune"),
        ("on", "max-autotune"),
    ):
        ns = parser.parse_args(["--compare-inductor", given, "--optimization-level", "default"])
        request = cli.request_from_args(ns)
        assert request.measure.compare_inductor == mode and request.compile.optimization_level is None


def test_form_builds_a_choice_widget_for_the_inductor_knob():
    from streamlit.testing.v1 import AppTest

    def form():
        import streamlit as st

        from engine.settings.knobs import knob_fields
        from engine.settings.request import MeasureSettings
        from ui.knobs import knob_widget

        f = next(f for f in knob_fields(MeasureSettings) if f.name == "compare_inductor")
        st.session_state["picked"] = knob_widget("measure", f, MeasureSettings().compare_inductor)

    at = AppTest.from_function(form).run()
    box = at.selectbox(key="knob:measure.compare_inductor")
    assert box.options == ["off", "default", "max-autotune"] and box.value == "off"
    box.select("default").run()
    assert at.session_state["picked"] == "default"
    assert (
        RunRequest.from_dict({"measure": {"compare_inductor": at.session_state["picked"]}}).measure.compare_inductor
        == "default"
    )
