import pytest
import torch

from engine.errors import ModelError
from engine.models import files, registry
from engine.settings.request import ModelSpec


@pytest.mark.parametrize(
    "name",
    [
        "resnet18",
        "resnet50",
        "mobilenet_v3_small",
        "mobilenet_v3_large",
        "efficientnet_b0",
        "convnext_tiny",
        "vit_b_16",
        "swin_t",
    ],
)
def test_registry_models_build_with_random_weights(name, monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # proves nothing is fetched
    shape = (3, 224, 224) if name in ("vit_b_16", "swin_t") else (3, 64, 64)
    built = registry.build(ModelSpec(source=name, input_shape=shape), seed=0)
    assert not built.module.training
    assert built.example_inputs[0].shape == (1, *shape)
    assert built.info["parameters"] > 1_000_000
    tag = registry.NONZERO_HEAD_TAG if name.startswith(registry.ZERO_HEAD_PREFIXES) else ""
    assert (
        built.identity == f"registry:{name}:seed0{tag}" == registry.identity(ModelSpec(source=name, input_shape=shape))
    )


def test_same_seed_same_weights():
    a = registry.build(ModelSpec(source="resnet18", input_shape=(3, 32, 32)), seed=3)
    b = registry.build(ModelSpec(source="resnet18", input_shape=(3, 32, 32)), seed=3)
    assert torch.equal(a.module.conv1.weight, b.module.conv1.weight)
    assert torch.equal(a.example_inputs[0], b.example_inputs[0])


def test_errors_are_explained(monkeypatch, tmp_path):
    with pytest.raises(ModelError, match="Unknown model 'resnet9000'"):
        registry.build(ModelSpec(source="resnet9000"))
    with pytest.raises(ModelError, match=r"cannot run on input of shape \(1, 5, 32, 32\)"):
        registry.build(ModelSpec(source="resnet18", input_shape=(5, 32, 32)))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(ModelError, match="never downloaded"):
        registry.build(ModelSpec(source="resnet18", pretrained=True))


def test_custom_python_and_pt2_files(monkeypatch, tmp_path):
    monkeypatch.setenv(files.MODELS_DIR_ENV, str(tmp_path))
    (tmp_path / "tiny.py").write_text(
        "import torch\n"
        "def build_model():\n    return torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU())\n"
        "def example_inputs(batch_size):\n    return (torch.randn(batch_size, 8),)\n"
    )
    (tmp_path / "broken.py").write_text(
        "def build_model():\n    raise RuntimeError('no weights')\ndef example_inputs(b):\n    return ()\n"
    )
    (tmp_path / "nofn.py").write_text("x = 1\n")
    (tmp_path / "bad.pt2").write_bytes(b"not a zip")
    ep = torch.export.export(torch.nn.Linear(8, 2).eval(), (torch.randn(1, 8),))
    torch.export.save(ep, str(tmp_path / "lin.pt2"))
    assert "file:tiny.py" in registry.available_sources() and "file:lin.pt2" in registry.available_sources()

    built = registry.build(ModelSpec(source="file:tiny.py", batch_size=3))
    assert built.example_inputs[0].shape == (3, 8) and built.identity.startswith("file:tiny.py:")
    pt2 = registry.build(ModelSpec(source="file:lin.pt2"))
    assert pt2.exported_program is not None and pt2.module(*pt2.example_inputs).shape == (1, 2)
    for source, words in [
        ("file:broken.py", "failed while building: RuntimeError: no weights"),
        ("file:nofn.py", "has no build_model() function"),
        ("file:bad.pt2", "not a loadable torch.export ExportedProgram"),
        ("file:../etc/passwd.py", "directly inside the models directory"),
        ("file:missing.py", "not found"),
    ]:
        with pytest.raises(ModelError, match=words.replace("(", r"\(").replace(")", r"\)")):
            registry.build(ModelSpec(source=source))


def test_file_identity_changes_with_content(monkeypatch, tmp_path):
    monkeypatch.setenv(files.MODELS_DIR_ENV, str(tmp_path))
    body = (
        "import torch\ndef build_model():\n    return torch.nn.Linear(4, {n})\n"
        "def example_inputs(b):\n    return torch.randn(b, 4)\n"
    )
    (tmp_path / "m.py").write_text(body.format(n=2))
    a = registry.build(ModelSpec(source="file:m.py")).identity
    assert registry.identity(ModelSpec(source="file:m.py")) == a  # the cache key's identity, without building
    (tmp_path / "m.py").write_text(body.format(n=3))
    assert registry.build(ModelSpec(source="file:m.py")).identity != a


def test_vit_built_from_a_seed_has_a_nonzero_head():
    """torchvision starts ViT's head at zero: with random weights every output would be 0 and every accuracy
    figure meaningless. The registry re-initializes it, and the weights identity says so."""
    import torch

    pass
    from engine.settings.request import ModelSpec

    built = registry.build(ModelSpec(source="vit_b_16"), seed=0)
    with torch.no_grad():
        out = built.module(*built.example_inputs)
    assert float(out.abs().max()) > 1e-2
    assert built.identity.endswith(registry.NONZERO_HEAD_TAG)
    assert not registry.identity(ModelSpec(source="resnet18")).endswith(registry.NONZERO_HEAD_TAG)
