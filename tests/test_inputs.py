import pytest
import torch

from engine.backends.tensorrt import dynamic_shapes
from engine.errors import ConfigError
from engine.models import families as model_families
from engine.models import files, input_tensors, registry
from engine.profiling.accuracy import compare_outputs
from engine.settings import inputs
from engine.settings.identity import cache_key
from engine.settings.request import ModelSpec, RunRequest, validate

TINY_BERT = dict(
    num_hidden_layers=2,
    hidden_size=64,
    num_attention_heads=2,
    intermediate_size=128,
    max_position_embeddings=64,
    vocab_size=100,
)


def text_specs(opt=(2, 16), lo=(1, 8), hi=(4, 64)):
    names = ["batch", "sequence"]
    return [
        dict(
            name="input_ids",
            shape=list(opt),
            min_shape=list(lo),
            max_shape=list(hi),
            dtype="int64",
            value_range=[0, 100],
            dim_names=names,
        ),
        dict(
            name="attention_mask",
            shape=list(opt),
            min_shape=list(lo),
            max_shape=list(hi),
            dtype="int64",
            value_range=[1, 2],
            dim_names=names,
        ),
    ]


@pytest.fixture(scope="module")
def tiny_bert():
    torch.manual_seed(0)
    return model_families.family_models()["hf/bert-base"].build(**TINY_BERT).eval()


def test_specs_travel_through_a_request_and_keep_old_cache_keys():
    req = RunRequest.from_dict({"model": {"source": "hf/bert-base", "batch_size": 2, "inputs": text_specs()}})
    validate(req)
    ids = req.model.inputs[0]
    assert ids.is_dynamic and ids.lower == (1, 8) and ids.upper == (4, 64) and ids.dynamic_dims() == [0, 1]
    assert RunRequest.from_dict(req.to_dict()) == req
    env = {"device": "cpu", "torch": "2.14.1"}
    # keys computed with the config as it was before inputs/sequence_length/enable_cudagraphs existed
    assert cache_key(RunRequest(), env, "registry:resnet18:seed0") == "9e91f651ab61dfa67dba2738e1e84232"
    trt = RunRequest.from_dict(
        {"backend": "tensorrt", "model": {"source": "resnet50", "batch_size": 8}, "compile": {"precision": "fp16"}}
    )
    assert cache_key(trt, env, "registry:resnet50:seed0") == "91a2780a91d1bbaacf34f6b68c9a4061"
    assert cache_key(trt.with_changes(**{"compile.enable_cudagraphs": True}), env, "x") != cache_key(trt, env, "x")
    assert cache_key(req, env, "x") != cache_key(req.with_changes(**{"model.inputs": None}), env, "x")


@pytest.mark.parametrize(
    "change, field, words",
    [
        (
            {"min_shape": [1, 32]},
            "model.inputs.input_ids",
            "dimension 1 (sequence): min 32 / opt 16 / max 64 breaks the rule min ≤ opt ≤ max",
        ),
        ({"max_shape": [1, 64]}, "model.inputs.input_ids", "dimension 0 (batch): min 1 / opt 2 / max 1"),
        ({"max_shape": [4, 64, 2]}, "model.inputs.input_ids.max_shape", "has 3 dimensions but shape (2, 16) has 2"),
        ({"dtype": "int8"}, "model.inputs.input_ids.dtype", "'int8' is not one of float32, float16, int64"),
        ({"dtype": "float32"}, "model.inputs.input_ids.value_range", "only integer or bool inputs"),
        ({"value_range": [5, 5]}, "model.inputs.input_ids.value_range", "[5, 5) is empty"),
        ({"max_shape": None}, "model.inputs.input_ids", "give both min_shape and max_shape"),
        (
            {"max_shape": [4, 32]},
            "model.inputs.attention_mask",
            "dimension 1 (sequence) is 8/16/64 (min/opt/max) but input 'input_ids' gives the same dimension 8/16/32",
        ),
        ({"shape": "2,a"}, "model.inputs.input_ids.shape", "not a list of integers"),
    ],
)
def test_shape_rules_name_input_dimension_and_rule(change, field, words):
    specs = text_specs()
    specs[0] |= change
    with pytest.raises(ConfigError) as e:
        RunRequest.from_dict({"model": {"source": "hf/bert-base", "batch_size": 2, "inputs": specs}})
    assert e.value.field == field
    assert words in e.value.message


def test_inputs_as_json_text_from_the_command_line():
    import json

    req = RunRequest.from_dict(
        {"model": {"source": "hf/bert-base", "batch_size": 2, "inputs": json.dumps(text_specs())}}
    )
    assert [s.name for s in req.model.inputs] == ["input_ids", "attention_mask"]
    with pytest.raises(ConfigError, match=r"model.inputs: not valid JSON \(Expecting value at character 0\)"):
        RunRequest.from_dict({"model": {"inputs": "input_ids:1x128"}})


def test_measured_point_must_lie_in_the_range():
    req = RunRequest.from_dict({"model": {"source": "hf/bert-base", "batch_size": 2, "inputs": text_specs()}})
    with pytest.raises(ConfigError, match=r"model.batch_size: 8 is outside the dynamic batch range 1..4"):
        validate(req.with_changes(**{"model.batch_size": 8}))
    with pytest.raises(ConfigError, match=r"model.sequence_length: 65 is outside the dynamic sequence range 8..64"):
        validate(req.with_changes(**{"model.sequence_length": 65}))
    static = [dict(s, min_shape=None, max_shape=None) for s in text_specs()]
    with pytest.raises(ConfigError, match="differs from the sequence size 16 fixed in model.inputs"):
        validate(
            RunRequest.from_dict(
                {"model": {"source": "hf/bert-base", "batch_size": 2, "inputs": static, "sequence_length": 32}}
            )
        )
    specs = inputs.parse_inputs(text_specs())
    assert inputs.measured_shapes(specs, 3, 40) == {"input_ids": (3, 40), "attention_mask": (3, 40)}
    assert inputs.measured_shapes(specs, 3) == {"input_ids": (3, 16), "attention_mask": (3, 16)}


def test_example_tensors_follow_dtype_range_and_seed():
    specs = inputs.parse_inputs(
        text_specs()
        + [
            dict(name="image", shape=[2, 3, 8, 8], min_shape=[1, 3, 8, 8], max_shape=[4, 3, 8, 8], dtype="float16"),
            dict(name="flags", shape=[2, 5], min_shape=[1, 5], max_shape=[4, 5], dtype="bool"),
        ]
    )
    ids, mask, image, flags = input_tensors.example_tensors(specs, inputs.shapes_at(specs, "max"), seed=1)
    assert ids.dtype == torch.int64 and ids.shape == (4, 64) and 0 <= ids.min() and ids.max() < 100
    assert ids.unique().numel() > 20  # drawn over the range, not a constant
    assert mask.dtype == torch.int64 and bool((mask == 1).all())
    assert image.dtype == torch.float16 and image.shape == (4, 3, 8, 8)
    assert flags.dtype == torch.bool
    assert torch.equal(ids, input_tensors.example_tensors(specs, inputs.shapes_at(specs, "max"), seed=1)[0])
    assert not torch.equal(ids, input_tensors.example_tensors(specs, inputs.shapes_at(specs, "max"), seed=2)[0])
    assert inputs.shapes_at(specs, {"sequence": 9})["input_ids"] == (2, 9)


def test_trial_run_names_the_dimension_the_model_cannot_vary(tiny_bert):
    specs = inputs.parse_inputs(text_specs())
    input_tensors.check_model_accepts(tiny_bert, specs)  # 8..64 tokens fit 64 position embeddings
    too_long = inputs.parse_inputs(text_specs(hi=(4, 128)))
    with pytest.raises(ConfigError) as e:
        input_tensors.check_model_accepts(tiny_bert, too_long)
    assert e.value.field == "model.inputs.input_ids"
    assert (
        "cannot vary input 'input_ids' dimension 1 (sequence), input 'attention_mask' dimension 1 (sequence) "
        "to its max 128 (fails at input_ids (1, 128)" in e.value.message
    )  # batch held at its min
    assert "batch" not in e.value.message.split("(fails")[0]  # batch 1..4 is fine and not blamed


def test_trial_run_blames_fixed_image_size_not_batch():
    torch.manual_seed(0)
    vit = (
        model_families.family_models()["hf/vit-base-patch16-224"]
        .build(
            num_hidden_layers=1,
            hidden_size=32,
            num_attention_heads=2,
            intermediate_size=64,
            image_size=32,
            patch_size=8,
        )
        .eval()
    )
    specs = inputs.parse_inputs(
        [
            dict(
                name="pixel_values",
                shape=[2, 3, 32, 32],
                min_shape=[1, 3, 16, 32],
                max_shape=[4, 3, 64, 32],
                dim_names=["batch", "channels", "height", "width"],
            )
        ]
    )
    with pytest.raises(ConfigError) as e:
        input_tensors.check_model_accepts(vit, specs)
    msg = e.value.message
    assert "dimension 2 (height) to its min 16" in msg and "dimension 2 (height) to its max 64" in msg
    assert "(batch)" not in msg
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1)).eval()
    input_tensors.check_model_accepts(conv, specs)  # a conv net takes any height


def test_torch_export_takes_the_shared_dynamic_dims(tiny_bert):
    specs = inputs.parse_inputs(text_specs())
    ep = torch.export.export(
        tiny_bert,
        input_tensors.example_tensors(specs),
        dynamic_shapes=dynamic_shapes.torch_export_dynamic_shapes(specs),
    )
    for point in ("min", "max"):
        x = input_tensors.example_tensors(specs, inputs.shapes_at(specs, point))
        torch.testing.assert_close(ep.module()(*x), tiny_bert(*x))
    assert dynamic_shapes.torch_export_dynamic_shapes(inputs.parse_inputs([dict(name="x", shape=[1, 3])])) == (None,)


def test_batch_range_helper_keeps_other_dims():
    specs = inputs.parse_inputs([dict(name="x", shape=[1, 3, 224, 224])])
    (dyn,) = inputs.with_batch_range(specs, 1, 8, 32)
    assert (dyn.lower, dyn.shape, dyn.upper) == ((1, 3, 224, 224), (8, 3, 224, 224), (32, 3, 224, 224))
    assert ModelSpec(inputs=(dyn,)).inputs[0].dynamic_dims() == [0]


@pytest.mark.gpu
def test_torch_tensorrt_inputs_carry_the_range():
    specs = inputs.parse_inputs(text_specs())
    dyn, static = dynamic_shapes.to_torch_tensorrt_inputs([specs[0], inputs.InputSpec("x", (1, 3), "float16")])
    assert tuple(dyn.shape["min_shape"]) == (1, 8) and tuple(dyn.shape["opt_shape"]) == (2, 16)
    assert tuple(dyn.shape["max_shape"]) == (4, 64) and dyn.dtype.to(torch.dtype) == torch.int64
    assert dyn.name == "input_ids" and int(dyn.torch_tensor.max()) < 100  # token ids inside the vocabulary
    assert tuple(static.shape) == (1, 3)


@pytest.mark.gpu
def test_one_dynamic_engine_runs_at_three_shapes():
    """BERT with a dynamic sequence 16..128: on the H200 (torch 2.11) torch.export's guards want the sequence
    to be a multiple of 8; ``export_dynamic`` applies that fix, and one engine serves three lengths."""
    import torch_tensorrt

    # the GPU test machine may carry no transformers (it does not fit its 64 MiB transfer budget)
    pytest.importorskip("transformers", reason="transformers is not installed on this GPU machine")

    torch.manual_seed(0)
    model = (
        model_families.family_models()["hf/bert-base"]
        .build(**{**TINY_BERT, "max_position_embeddings": 128})
        .eval()
        .cuda()
    )
    specs = inputs.parse_inputs(text_specs(opt=(2, 64), lo=(1, 16), hi=(4, 128)))
    example = input_tensors.example_tensors(specs, inputs.shapes_at(specs, "opt"), device="cuda")
    done = dynamic_shapes.export_dynamic(model, tuple(example), specs)  # the backend's path
    print(f"\n[bert dynamic sequence] constraints {done.constraints} | fixes {done.fixes} | {done.warning()}")
    assert all(c.allows(16) and c.allows(64) and c.allows(128) for c in done.constraints)
    trt = torch_tensorrt.dynamo.compile(
        done.program, arg_inputs=dynamic_shapes.to_torch_tensorrt_inputs(specs, seed=0), min_block_size=1
    )
    for length in (16, 64, 128):
        x = input_tensors.example_tensors(
            specs, inputs.shapes_at(specs, {"batch": 3, "sequence": length}), device="cuda"
        )
        with torch.inference_mode():
            got, want = _hidden_state(trt(*x)), _hidden_state(model(*x))
        # the product's accuracy measure: TensorRT may run fp32 matmuls in TF32, eager here does not, so a few
        # elements differ by ~0.08 (seen on the H200); a wrong shape rule would give a wholly different output
        acc = compare_outputs(got.float(), want.float(), "eager fp32")
        print(
            f"[bert dynamic sequence] length {length}: output {tuple(got.shape)}, rel. L2 {acc.rel_l2:.2e}, "
            f"max abs {acc.max_abs:.3f}"
        )
        assert got.shape == want.shape and acc.rel_l2 < 2e-2


def _hidden_state(out):
    """BERT's last hidden state from a ModelOutput (a dict), or the first of flattened outputs."""
    if isinstance(out, dict):
        return out["last_hidden_state"]
    return out[0] if isinstance(out, (tuple, list)) else out


def test_file_model_takes_given_inputs_and_checks_their_range(tmp_path, monkeypatch):
    pass
    from engine.errors import ModelError

    monkeypatch.setenv(files.MODELS_DIR_ENV, str(tmp_path))
    (tmp_path / "fixed.py").write_text(
        "import torch\n"
        "def build_model():\n    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))\n"
        "def example_inputs(batch_size):\n    return (torch.randn(batch_size, 3, 4),)\n"
    )
    own = registry.build(ModelSpec(source="file:fixed.py", batch_size=2))
    assert own.info["inputs"] == [{"shape": [2, 3, 4], "dtype": "float32", "name": "x0"}]
    ok = [dict(name="x0", shape=[2, 3, 4], min_shape=[1, 3, 4], max_shape=[8, 3, 4])]
    built = registry.build(
        RunRequest.from_dict({"model": {"source": "file:fixed.py", "batch_size": 8, "inputs": ok}}).model
    )
    assert built.example_inputs[0].shape == (8, 3, 4) and built.info["inputs"][0]["min_shape"] == [1, 3, 4]
    assert built.input_specs[0].is_dynamic and not own.input_specs[0].is_dynamic
    wide = [dict(name="x0", shape=[2, 3, 4], min_shape=[2, 3, 2], max_shape=[2, 3, 4])]
    with pytest.raises(ModelError, match=r"cannot vary input 'x0' dimension 2 to its min 2"):
        registry.build(
            RunRequest.from_dict({"model": {"source": "file:fixed.py", "batch_size": 2, "inputs": wide}}).model
        )


# -- torch.export's own shape rules ---------------------------------------------------------------
class Chunked(torch.nn.Module):
    """Splits the sequence into chunks of 8: torch.export guards on the sequence being a multiple of 8."""

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, s = ids.shape
        return ids.reshape(b, s // 8, 8).float().mean(-1) * mask[:, ::8].float()


def chunked_specs(lo=16, opt=64, hi=128):
    return inputs.parse_inputs(text_specs(opt=(2, opt), lo=(1, lo), hi=(4, hi)))


def test_export_applies_the_suggested_multiple_of_8_and_says_so():
    specs = chunked_specs()
    with pytest.raises(Exception, match="Suggested fixes"):  # the plain export fails: a real guard, not a stub
        torch.export.export(
            Chunked(),
            input_tensors.example_tensors(specs),
            dynamic_shapes=dynamic_shapes.torch_export_dynamic_shapes(specs),
        )
    done = dynamic_shapes.export_dynamic(
        Chunked(),
        input_tensors.example_tensors(specs),
        specs,
        measured={"input_ids": (3, 40), "attention_mask": (3, 40)},
    )
    assert done.constraints == (dynamic_shapes.DimConstraint("sequence", 16, 128, multiple_of=8),)
    assert "sequence must be a multiple of 8 in [16, 128]" in done.warning()
    assert any("8*" in f for f in done.fixes)
    for length in (16, 40, 128):  # one program for every allowed length, same answer as eager
        x = input_tensors.example_tensors(specs, inputs.shapes_at(specs, {"batch": 3, "sequence": length}))
        torch.testing.assert_close(done.program.module()(*x), Chunked()(*x))
    with pytest.raises(AssertionError, match=r"size\(\)\[1\] >= 16"):  # the requested range, not 0..128
        done.program.module()(*input_tensors.example_tensors(specs, inputs.shapes_at(specs, {"sequence": 8})))


@pytest.mark.parametrize(
    "ranges, measured, field, words",
    [
        (
            (12, 64, 128),
            None,
            "model.inputs.input_ids",
            "dimension 1 (sequence) min 12: not allowed by a rule of the "
            "model that torch.export found: sequence must be a multiple of 8 "
            "in [16, 128]. Valid sizes: 16, 24, 32, ..., 128",
        ),
        ((16, 64, 132), None, "model.inputs.input_ids", "dimension 1 (sequence) max 132"),
        (
            (16, 64, 128),
            {"input_ids": (3, 44)},
            "model.sequence_length",
            "44 is not a size the model accepts for dimension 1 (sequence) of input 'input_ids': sequence must be a "
            "multiple of 8 in [16, 128]",
        ),
    ],
)
def test_sizes_that_break_the_refined_rule_are_refused_with_the_valid_ones(ranges, measured, field, words):
    specs = chunked_specs(*ranges)
    with pytest.raises(ConfigError) as e:
        dynamic_shapes.export_dynamic(Chunked(), input_tensors.example_tensors(specs), specs, measured=measured)
    assert e.value.field == field
    assert words in e.value.message


def test_rules_with_an_offset_or_a_single_size_read_in_user_terms():
    class SkipFirst(torch.nn.Module):  # a leading token, then chunks of 4: sequence = 4k + 1
        def forward(self, x):
            return x[:, 1:].reshape(x.shape[0], (x.shape[1] - 1) // 4, 4).sum(-1)

    specs = inputs.parse_inputs(
        [
            dict(
                name="x",
                shape=[2, 33],
                min_shape=[1, 9],
                max_shape=[4, 65],
                dtype="int64",
                value_range=[0, 10],
                dim_names=["batch", "sequence"],
            )
        ]
    )
    done = dynamic_shapes.export_dynamic(SkipFirst(), input_tensors.example_tensors(specs), specs)
    assert done.constraints == (dynamic_shapes.DimConstraint("sequence", 9, 65, multiple_of=4, offset=1),)
    assert "sequence must be a multiple of 4 plus 1 in [9, 65]" in done.warning()
    assert dynamic_shapes.DimConstraint("sequence", 9, 65, 4, 1).sizes() == "9, 13, 17, ..., 65"

    class Fixed(torch.nn.Module):  # a reshape that pins the sequence to 32
        def forward(self, x):
            return x.reshape(x.shape[0], 4, 8).sum(-1)

    specs = inputs.parse_inputs(
        [
            dict(
                name="x",
                shape=[2, 32],
                min_shape=[1, 16],
                max_shape=[4, 64],
                dtype="int64",
                value_range=[0, 10],
                dim_names=["batch", "sequence"],
            )
        ]
    )
    with pytest.raises(
        ConfigError,
        match=r"min 16, dimension 1 \(sequence\) max 64: .*sequence must be 32\. "
        r"Valid sizes: 32",
    ):
        dynamic_shapes.export_dynamic(Fixed(), input_tensors.example_tensors(specs), specs)


def test_export_without_guards_or_with_other_errors_is_untouched():
    specs = inputs.parse_inputs(text_specs())
    done = dynamic_shapes.export_dynamic(
        torch.nn.Embedding(100, 4), input_tensors.example_tensors(specs)[:1], specs[:1]
    )
    assert done.constraints == () and done.fixes == () and done.warning() == ""

    class Broken(torch.nn.Module):
        def forward(self, ids, mask):
            raise RuntimeError("no such op here")

    with pytest.raises(RuntimeError, match="no such op here"):  # not a constraint violation: raised as is
        dynamic_shapes.export_dynamic(Broken(), input_tensors.example_tensors(specs), specs)
