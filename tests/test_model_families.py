import dataclasses
import os

import pytest
import torch

from engine import runner
from engine.errors import ModelError
from engine.models import families as model_families
from engine.models import registry
from engine.settings.request import MeasureSettings, ModelSpec, RunRequest

# Small configurations of every family entry: the same classes and code paths as the registry's
# real entries (BERT-base, GPT-2 ...), sized to build and run in well under a second on CPU.
TINY = {
    "timm/efficientnet_b0": {},
    "timm/convnext_tiny": {"depths": (1, 1, 1, 1), "dims": (16, 32, 64, 128)},
    "timm/deit_small_patch16_224": {"depth": 2, "embed_dim": 64, "num_heads": 2, "img_size": 32, "patch_size": 8},
    "timm/resnet50": {"layers": (1, 1, 1, 1)},
    "hf/bert-base": {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 128},
    "hf/distilbert-base": {"n_layers": 2, "dim": 64, "n_heads": 2, "hidden_dim": 128},
    "hf/gpt2": {"n_layer": 2, "n_embd": 64, "n_head": 2},
    "hf/t5-small-encoder": {"num_layers": 2, "d_model": 64, "num_heads": 2, "d_ff": 128, "d_kv": 32},
    "hf/vit-base-patch16-224": {
        "num_hidden_layers": 2,
        "hidden_size": 64,
        "num_attention_heads": 2,
        "intermediate_size": 128,
        "image_size": 32,
        "patch_size": 8,
    },
}
QUICK = MeasureSettings(warmup_iters=1, timed_iters=5, layer_profile=False, accuracy=False, compare_eager=False)


@pytest.fixture
def tiny_registry(monkeypatch):
    """REGISTRY with every family entry replaced by its small configuration."""
    family = model_families.family_models()
    for name, overrides in TINY.items():
        entry = registry.REGISTRY[name]
        monkeypatch.setitem(
            registry.REGISTRY, name, dataclasses.replace(entry, build=lambda f=family[name], o=overrides: f.build(**o))
        )
    return family


def test_every_family_entry_is_in_the_registry_and_covered_here():
    family = {n for n, e in registry.CURATED.items() if e.family in ("timm", "transformers")}
    assert family == set(TINY) == set(model_families.family_models())
    assert "resnet50" in registry.REGISTRY and registry.REGISTRY["resnet50"].family == "torchvision"
    assert registry.REGISTRY["timm/resnet50"].family == "timm"


@pytest.mark.parametrize("name", sorted(TINY))
def test_family_entry_builds_and_runs_eagerly_on_cpu(name, tiny_registry, store):
    entry = registry.REGISTRY[name]
    text = entry.input_kind == "text"
    spec = ModelSpec(
        source=name, batch_size=2, sequence_length=12 if text else None, input_shape=None if text else (3, 32, 32)
    )
    outcome = runner.execute(RunRequest(model=spec, device="cpu", measure=QUICK), store)
    result = outcome.result
    assert result.latency.iters == 5 and result.latency.median_ms > 0 and result.latency.batch_size == 2
    described = result.model_info["inputs"]
    if text:
        assert [(i["name"], i["shape"], i["dtype"]) for i in described] == [
            ("input_ids", [2, 12], "int64"),
            ("attention_mask", [2, 12], "int64"),
        ]
        assert result.model_info["task"] == "feature_extraction"
    else:
        assert described[0]["shape"] == [2, 3, 32, 32] and described[0]["dtype"] == "float32"
    assert result.model_info["family"] == entry.family


def test_text_inputs_are_token_ids_inside_the_vocabulary(tiny_registry):
    built = registry.build(ModelSpec(source="hf/gpt2", batch_size=3, sequence_length=20), seed=4)
    ids, mask = built.example_inputs
    assert ids.dtype == torch.int64 and ids.shape == (3, 20) and int(ids.max()) < 50257 and int(ids.min()) >= 0
    assert torch.equal(mask, torch.ones(3, 20, dtype=torch.int64))
    out = built.module(*built.example_inputs)
    assert out.shape == (3, 20, 64)
    again = registry.build(ModelSpec(source="hf/gpt2", batch_size=3, sequence_length=20), seed=4)
    assert torch.equal(again.example_inputs[0], ids)
    assert registry.build(ModelSpec(source="hf/gpt2", batch_size=3), seed=4).example_inputs[0].shape == (3, 128)


def test_eager_profile_of_a_text_model_covers_its_modules(tiny_registry, store):
    measure = dataclasses.replace(QUICK, layer_profile=True, profile_iters=2)
    result = runner.execute(
        RunRequest(model=ModelSpec(source="hf/bert-base", sequence_length=16), device="cpu", measure=measure), store
    ).result
    paths = set(result.layers["module_path"])
    assert "model.embeddings.word_embeddings" in paths and "model.encoder.layer.1.output.dense" in paths
    assert result.profiled_sum_ms > 0


def test_dynamic_ranges_are_tried_on_the_model_at_build(tiny_registry):
    names = ["batch", "sequence"]
    ok = [
        dict(name=n, shape=[2, 16], min_shape=[1, 8], max_shape=[4, 64], dtype="int64", value_range=r, dim_names=names)
        for n, r in (("input_ids", [0, 1000]), ("attention_mask", [1, 2]))
    ]
    req = RunRequest.from_dict({"model": {"source": "hf/bert-base", "batch_size": 4, "inputs": ok}})
    built = registry.build(req.model)
    assert built.example_inputs[0].shape == (4, 16)  # measured at batch_size, sequence at opt
    assert built.info["inputs"][0]["max_shape"] == [4, 64]
    too_long = [dict(s, max_shape=[4, 1024]) for s in ok]  # BERT's position embeddings hold 512
    req = RunRequest.from_dict({"model": {"source": "hf/bert-base", "inputs": too_long}})
    with pytest.raises(
        ModelError,
        match=r"model.inputs.input_ids: the model cannot vary input 'input_ids' "
        r"dimension 1 \(sequence\).* to its max 1024",
    ):
        registry.build(req.model)


def test_text_and_image_knobs_are_explained(tiny_registry):
    with pytest.raises(ModelError, match="hf/bert-base holds at most 512 tokens"):
        registry.build(ModelSpec(source="hf/bert-base", sequence_length=513))
    with pytest.raises(ModelError, match="text model: it takes no input shape"):
        registry.build(ModelSpec(source="hf/bert-base", input_shape=(3, 32, 32)))
    with pytest.raises(ModelError, match="image model: sequence length does not apply"):
        registry.build(ModelSpec(source="timm/resnet50", sequence_length=16))


def test_pretrained_never_downloads(tiny_registry, monkeypatch, tmp_path):
    from huggingface_hub import constants

    # an empty cache: a download would be the only way to get the weights
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    for name in ("hf/distilbert-base", "timm/resnet50"):
        with pytest.raises(ModelError, match=f"No cached pretrained weights for {name}.*never downloaded"):
            registry.build(ModelSpec(source=name, pretrained=True, input_shape=(3, 32, 32) if "timm" in name else None))
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert list(tmp_path.iterdir()) == []  # nothing was written to the cache either


def test_real_bert_entry_is_bert_base(monkeypatch):
    """The registry's own entry, untouched: BertModel(BertConfig()) with random weights."""
    built = registry.build(ModelSpec(source="hf/bert-base", sequence_length=8), seed=0)
    config = built.module.model.config
    assert (config.num_hidden_layers, config.hidden_size, config.vocab_size) == (12, 768, 30522)
    assert 105_000_000 < built.info["parameters"] < 115_000_000
    assert built.module(*built.example_inputs).shape == (1, 8, 768)
    assert model_families.text_limits("gpt2") == (50257, 1024)
