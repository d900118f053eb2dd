"""Segmentation stats on real dryrun output Torch-TensorRT wrote on an H100 (shared/fixtures/h100-rtx)."""

import pytest

from engine.profiling import segmentation as seg
from engine.result import Segmentation


@pytest.fixture
def forced(fixtures_dir):
    return (fixtures_dir / "h100-rtx" / "dryrun_resnet18_fp16_relu_forced_mbs1.txt").read_text()


@pytest.fixture
def mbs100(fixtures_dir):
    return (fixtures_dir / "h100-rtx" / "dryrun_resnet18_fp16_mbs100.txt").read_text()


def test_forced_fragmentation_text(forced):
    s = seg.parse_dryrun_text(forced)
    assert (s.total_ops, s.supported_ops) == (89, 72)
    assert s.coverage == pytest.approx(72 / 89)
    assert s.unsupported_ops == {"torch.ops.aten.relu.default": 17}
    assert len(s.pytorch_nodes) == 17
    assert s.pytorch_nodes[1] == {"op": "torch.ops.aten.relu.default", "location": "layer1.0.relu/relu_1"}
    assert s.engine_count == 18
    first, second = s.segments[0], s.segments[1]
    assert (first.index, first.name, first.op_count) == (1, "_run_on_acc_0", 3)
    assert first.inputs == ["(1, 3, 224, 224)@float16"]
    assert first.outputs == ["(1, 64, 112, 112)@float16"]
    assert second.outputs == ["(1, 64, 56, 56)@float16", "(1, 64, 56, 56)@float16"]
    assert s.segments[-1].outputs == ["(1, 1000)@float16"]
    assert sum(x.op_count for x in s.segments) == 72
    assert [(r.kind, r.min_block_size, r.engines) for r in s.recommendations] == [
        ("minimal", 6, 3),
        ("moderate", 4, 12),
        ("current", 3, 18),
    ]


def test_recommend_reproduces_the_printed_recommendations(forced):
    """Our derivation from the engines' op counts gives exactly what Torch-TensorRT printed."""
    printed = seg.parse_dryrun_text(forced)
    ours = seg.recommend([s.op_count for s in printed.segments])
    assert ours == printed.recommendations


def test_recommend_rules():
    assert [(r.kind, r.min_block_size, r.engines) for r in seg.recommend([89])] == [
        ("minimal", 89, 1),
        ("current", 89, 1),
    ]
    # mean 5.5 -> rounds to 5.5 -> ceil 6 == most: no moderate line
    assert [r.kind for r in seg.recommend([5, 6])] == ["minimal", "current"]
    assert seg.recommend([]) == []


def test_no_engine_text(mbs100):
    s = seg.parse_dryrun_text(mbs100)
    assert (s.total_ops, s.supported_ops) == (89, 89)
    assert s.engine_count == 0
    assert s.recommendations == []
    assert len(s.pytorch_nodes) == 69  # grep -c "^Node:" on the file
    assert s.pytorch_nodes[-1] == {"op": "torch.ops.aten.linear.default", "location": "fc/linear"}
    assert s.unsupported_ops == {}


def test_round_trip_through_result_schema(forced):
    s = seg.parse_dryrun_text(forced)
    from engine.result import _plain

    back = Segmentation.from_dict(_plain(s))
    assert back == s


def test_cross_check_agrees_with_itself_and_spots_differences(forced, mbs100):
    a = seg.parse_dryrun_text(forced)
    assert seg.cross_check(a, seg.parse_dryrun_text(forced)) == []
    problems = seg.cross_check(a, seg.parse_dryrun_text(mbs100))
    assert any(p.startswith("supported_ops") for p in problems)
    assert any(p.startswith("engine_count") for p in problems)


def test_not_dryrun_text():
    with pytest.raises(ValueError, match="not Torch-TensorRT dryrun output"):
        seg.parse_dryrun_text("hello")


def test_tensor_label():
    import torch

    assert seg.tensor_label((1, 3, 224, 224), torch.float16) == "(1, 3, 224, 224)@float16"
    assert seg.tensor_label((5,), torch.float32) == "(5)@float32"


def test_ordered_segments_from_a_partitioned_graph():
    """The fast partitioner's call order (real torch.fx split) interleaves PyTorch subgraphs with engines."""
    import torch
    from torch.fx.passes.split_module import split_module

    class M(torch.nn.Module):
        def forward(self, x):
            y = torch.relu(x + 1)
            return torch.sigmoid(y) * 2

    gm = torch.fx.symbolic_trace(M())
    from torch.fx.passes.shape_prop import ShapeProp

    ShapeProp(gm).propagate(torch.zeros(2, 3))
    parts = {"add": 0, "relu": 1, "sigmoid": 2, "mul": 2}
    split = split_module(gm, None, lambda n: parts[n.name])
    # rename like the partitioner: submod_0 -> _run_on_acc_0 etc. is not needed; engines are looked up by name
    engine = seg.Segment("tensorrt", 1, "submod_1", 1, ["(2, 3)@float32"], ["(2, 3)@float32"])
    segments = seg._ordered_segments(split, {"submod_1": engine})
    assert [(s.kind, s.name) for s in segments] == [
        ("pytorch", "submod_0"),
        ("tensorrt", "submod_1"),
        ("pytorch", "submod_2"),
    ]
    assert segments[0].index == 1 and segments[2].index == 2
    assert segments[2].op_count == 2


@pytest.mark.parametrize("name", ["resnet50_fp16_batch1_dynamic", "resnet50_fp16_batch32_dynamic"])
def test_cross_check_reads_a_dynamic_dimension_written_both_ways(name):
    """Recorded on the H200: the dryrun text writes a dynamic batch as ``(min=1, max=32)``, the tracker as
    ``(1, 32)``; every dynamic run warned that the engines differ. They are the same engine."""
    import gzip
    import json
    from pathlib import Path

    from engine.result import Segmentation

    bundle = json.loads(
        gzip.decompress((Path(__file__).resolve().parent.parent / "samples" / f"{name}.json.gz").read_bytes())
    )
    text = bundle["raw_files"]["dryrun.txt"]
    assert "(min=1, max=32)" in text
    tracker = Segmentation.from_dict(bundle["result"]["segmentation"])
    assert "((1, 32), 3, 224, 224)@float16" in tracker.segments[0].inputs
    assert seg.cross_check(tracker, seg.parse_dryrun_text(text)) == []
    # a real difference in the shapes is still caught
    other = text.replace("(min=1, max=32), 3, 224, 224", "(min=1, max=16), 3, 224, 224")
    assert any("TRT engines" in p for p in seg.cross_check(tracker, seg.parse_dryrun_text(other)))
