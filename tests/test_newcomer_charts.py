"""Issue 28's ranked problems that live in the figures and findings, checked on the bundled H200 samples: readable
layer names, titles that fit, deltas in words, one vocabulary of layer types per chart, no recommendation equal to
the run, memory and host figures that make physical sense."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.charts import layer_tables
from engine.store.exchange import decode_run

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def sample(name: str):
    result, _ = decode_run((SAMPLES / f"{name}.json.gz").read_bytes())
    return result


def test_layer_labels_put_the_module_first():
    """Problem 5: every conv layer of a TensorRT-RTX engine was labelled "[CONVOLUTION]-[aten_ops.convolution.def…"
    (its name cut at the start, the same for all of them)."""
    run = sample("resnet18_fp16_relu_forced_mbs1")
    labels = list(layer_tables.slowest_layers(run.layers, 200)["label"])
    convs = [label for label in labels if "convolution" in label]
    assert convs and not [label for label in labels if "[" in label], labels
    assert "1: conv1 · convolution" in labels
    assert len(set(convs)) == len(convs)  # each names its own module
    timeline = list(layer_tables.timeline_rows(run.layers)["label"])
    assert "1: conv1 · convolution" in timeline and not [label for label in timeline if "[" in label]


@pytest.mark.parametrize(
    "name, module_path, layer_type, label",
    [
        (
            "[CONVOLUTION]-[aten_ops.convolution.default]-[layer1/0/conv1/convolution]_myl0_3",
            "layer1.0.conv1",
            "correlation",
            "layer1.0.conv1 · convolution",
        ),
        ("__myl_CorrMulAddRelu_myl0_1", "<fused>", "runtime_fusion", "fused CorrMulAddRelu"),
        ("_run_on_gpu_1", "", "PyTorch subgraph", "_run_on_gpu_1"),
        ("conv1", "conv1", "Conv2d", "conv1 · Conv2d"),
    ],
)
def test_layer_label(name, module_path, layer_type, label):
    assert layer_tables.layer_label(name, module_path, layer_type) == label
