"""Every torchvision classification model and every timm model by name (engine/models/catalogue.py): listed
without building, built from a seed with nothing downloaded, fed at the library's documented input size, refused
with the closest names when mistyped, and weighed before they are built."""

import socket
import urllib.request

import pytest
import torch

from engine import runner
from engine.errors import ConfigError, ModelError
from engine.models import catalogue, memory, registry
from engine.settings.request import MeasureSettings, ModelSpec, RunRequest

QUICK = MeasureSettings(warmup_iters=1, timed_iters=5, layer_profile=False, accuracy=False, compare_eager=False)


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Any attempt to reach the network, the torch hub or the Hugging Face hub fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a download was attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch-hub"))
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path


def test_the_picker_lists_every_torchvision_and_timm_model_after_the_curated_ones():
    import timm
    import torchvision.models as tvm

    sources = registry.available_sources()
    assert sources[: len(registry.CURATED)] == list(registry.CURATED)  # the hand-picked ones first, unchanged
    assert set(tvm.list_models(module=tvm)) <= set(sources)
    assert {"timm/" + n for n in timm.list_models()} <= set(sources)
    assert "regnet_y_800mf" in sources and "timm/convnext_tiny" in sources and "inception_v3" in sources
    assert len(sources) == len(set(sources)) > 1_000


@pytest.mark.parametrize(
    ("source", "shape"),
    [
        ("inception_v3", (3, 299, 299)),
        ("efficientnet_b3", (3, 300, 300)),
        ("swin_v2_t", (3, 256, 256)),
        ("vit_h_14", (3, 224, 224)),  # 518 only with its SWAG weights; from random weights its constructor fixes 224
        ("regnet_y_800mf", (3, 224, 224)),
        ("timm/vit_base_patch16_384", (3, 384, 384)),
        ("timm/resnet10t", (3, 176, 176)),
        ("timm/convnext_tiny", (3, 224, 224)),
    ],
)
def test_default_input_shape_comes_from_the_library_config(source, shape):
    assert registry.REGISTRY[source].default_input_shape == shape
    assert registry.describe_inputs(ModelSpec(source=source)) == f"Inputs: x 1x{'x'.join(map(str, shape))} float32"


@pytest.mark.parametrize("source", ["inception_v3", "efficientnet_b3", "swin_v2_t", "vit_h_14", "vit_l_32"])
def test_a_torchvision_model_built_from_random_weights_takes_its_default_shape(source):
    """On the meta device: the constructor and a forward pass, no memory and no weights."""
    import torchvision.models as tvm

    entry = registry.REGISTRY[source]
    with torch.device("meta"):
        module = tvm.get_model(source, weights=None).eval()
        out = module(torch.empty(1, *entry.default_input_shape))
    out = out.logits if hasattr(out, "logits") else out
    assert tuple(out.shape) == (1, 1000)


@pytest.mark.parametrize(
    ("source", "shape"),
    [
        ("squeezenet1_1", (3, 64, 64)),
        ("regnet_y_800mf", (3, 64, 64)),
        ("timm/resnet10t", (3, 64, 64)),
        ("timm/test_vit", None),
        ("timm/test_efficientnet", (3, 64, 64)),
    ],
)
def test_catalogue_models_build_from_a_seed_and_run_eagerly_without_a_download(source, shape, store, no_network):
    request = RunRequest(model=ModelSpec(source=source, batch_size=2, input_shape=shape), device="cpu", measure=QUICK)
    result = runner.execute(request, store).result
    assert result.latency.iters == 5 and result.latency.median_ms > 0
    expected = shape or registry.REGISTRY[source].default_input_shape
    assert result.model_info["inputs"][0]["shape"] == [2, *expected]
    assert result.model_info["family"] == ("timm" if source.startswith("timm/") else "torchvision")
    assert not any((no_network / d).exists() for d in ("torch-hub", "hf"))  # nothing was cached either


@pytest.mark.parametrize("source", ["squeezenet1_1", "timm/test_efficientnet"])
def test_the_seed_decides_the_weights(source):
    spec = ModelSpec(source=source, input_shape=(3, 32, 32))
    a, b, c = (registry.build(spec, seed=s) for s in (3, 3, 4))
    assert all(torch.equal(p, q) for p, q in zip(a.module.parameters(), b.module.parameters(), strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a.module.parameters(), c.module.parameters(), strict=True))
    assert a.identity == f"registry:{source}:seed3" == registry.identity(ModelSpec(source=source), 3)


def test_a_timm_model_without_a_classifier_is_a_feature_extractor():
    assert registry.REGISTRY["timm/aimv2_large_patch14_224"].task == "feature_extraction"
    assert registry.REGISTRY["timm/convnext_tiny"].task == "classification"
    assert registry.REGISTRY["timm/resnet10t"].task == "classification"
    with torch.device("meta"):
        assert registry.REGISTRY["timm/aimv2_large_patch14_224"].build().num_classes == 0


def test_a_torchvision_vit_by_name_gets_a_nonzero_head_and_says_so():
    built = registry.build(ModelSpec(source="vit_b_32"), seed=0)
    assert built.module.heads.head.weight.detach().any()
    assert built.identity == "registry:vit_b_32:seed0" + registry.NONZERO_HEAD_TAG
    # the curated entries keep the identities their stored runs were keyed with
    assert registry.identity(ModelSpec(source="vit_b_16")) == "registry:vit_b_16:seed0:nonzero-head"
    assert registry.identity(ModelSpec(source="resnet50")) == "registry:resnet50:seed0"
    timm_vit = "timm/vit_base_patch16_224"  # not torchvision's: its head starts random
    assert registry.identity(ModelSpec(source=timm_vit)) == f"registry:{timm_vit}:seed0"


@pytest.mark.parametrize(
    ("typed", "close"),
    [
        ("resnt50", "resnet50"),
        ("timm:convnext_tiny", "timm/convnext_tiny"),
        ("regnet_y_800", "regnet_y_800mf"),
    ],
)
def test_an_unknown_name_is_refused_at_submit_with_the_closest_names(typed, close, store):
    request = RunRequest(model=ModelSpec(source=typed), device="cpu", measure=QUICK)
    with pytest.raises(ConfigError) as e:
        runner.execute(request, store)
    assert e.value.field == "model.source"
    assert repr(typed) in e.value.message and close in e.value.message.split("did you mean", 1)[1]
    with pytest.raises(ModelError, match=f"Unknown model '{typed}'; did you mean .*{close}"):
        registry.build(ModelSpec(source=typed))
    assert len(store.list_runs()) == 0


def test_a_name_nothing_resembles_still_says_what_names_look_like():
    with pytest.raises(ConfigError, match=r"unknown model 'zzzz'\. .*timm/<name>"):
        registry.check_source(ModelSpec(source="zzzz"))


def test_parameters_are_counted_without_building_and_huge_models_refused_before_they_are_built():
    built = registry.build(ModelSpec(source="timm/resnet10t", input_shape=(3, 32, 32)))
    assert memory.parameter_count(ModelSpec(source="timm/resnet10t")) == built.info["parameters"]
    assert memory.parameter_count(ModelSpec(source="vit_h_14")) == catalogue.torchvision_parameters("vit_h_14")
    request = RunRequest.from_dict({"model": {"source": "vit_h_14"}, "device": "cpu"})
    with pytest.raises(
        ConfigError,
        match=r"vit_h_14 has 633 M parameters: its fp32 weights alone take 2\.4 GiB, "
        r"more than this machine's 1\.0 GiB of RAM",
    ):
        memory.check_input_memory(request, ram_bytes=2**30, gpu_memory_bytes=None)
    memory.check_input_memory(request, ram_bytes=2**33, gpu_memory_bytes=2**30)  # a CPU run holds nothing on the GPU
    gpu = RunRequest.from_dict({"model": {"source": "vit_h_14"}, "device": "cuda"})
    with pytest.raises(ConfigError, match="GPU memory"):
        memory.check_input_memory(gpu, ram_bytes=2**33, gpu_memory_bytes=2**30)
