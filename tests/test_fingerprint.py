"""Plan fingerprints from recorded layer information and recorded kernel traces."""

import json
import re

import pytest

from engine.profiling import fingerprint as fp
from engine.profiling import gpu_time as gt

LAYER_INFO = "h100-rtx/resnet18_fp16/_run_on_acc_0_engine_layer_information.json"


@pytest.fixture
def layer_info(fixtures_dir):
    return (fixtures_dir / LAYER_INFO).read_text()


def test_layers_part_of_the_recorded_detailed_layer_information(layer_info):
    part = fp.layers_part([layer_info])
    assert re.fullmatch(r"layers:[0-9a-f]{16}", part)
    assert fp.layers_part([layer_info]) == part  # stable
    signature = fp.layer_signature(layer_info)
    assert len(signature) == 36
    assert signature[0] == [
        "__myl_MoveConc_myl0_0",
        "kgen",
        "__myl_MoveConc_0xc1455be378008feffc8e73982aa134dd",
        [[[1, 3, 224, 224], "Half"]],
        [[[1, 4, 224, 224], "Half"]],
    ]
    assert fp.layers_part([layer_info, layer_info]) != part  # two engines are another plan


def test_layers_part_ignores_tensor_names_and_metadata_but_not_tactics_or_formats(layer_info):
    part = fp.layers_part([layer_info])
    data = json.loads(layer_info)
    renamed = json.loads(layer_info)
    for layer in renamed["Layers"]:
        layer["Metadata"] = "[ONNX Layer: elsewhere]"
        for t in layer["Inputs"] + layer["Outputs"]:
            t["Name"] = "t" + t["Name"]
    assert fp.layers_part([json.dumps(renamed)]) == part
    other_tactic = json.loads(layer_info)
    other_tactic["Layers"][2]["TacticName"] = "sm90_xmma_fprop_implicit_gemm"
    assert fp.layers_part([json.dumps(other_tactic)]) != part
    fp32 = json.loads(layer_info)
    fp32["Layers"][0]["Outputs"][0]["Format/Datatype"] = "Float"
    assert fp.layers_part([json.dumps(fp32)]) != part
    # LAYER_NAMES_ONLY verbosity (no Debugger): bare names, too little to tell plans apart
    names_only = json.dumps({"Layers": [x["Name"] for x in data["Layers"]], "Bindings": data["Bindings"]})
    assert fp.layer_signature(names_only) is None and fp.layers_part([layer_info, names_only]) is None
    assert fp.layers_part([]) is None


def test_kernels_part_from_the_recorded_traces(fixtures_dir):
    single = gt.summarize(
        [gt.Window(3, gt.kernels_of(gt.read_events(fixtures_dir / "h200-rtx/gpu_trace_resnet18_fp16_3inf.json.gz")))]
    )
    fragmented = gt.summarize(
        [
            gt.Window(
                3,
                gt.kernels_of(
                    gt.read_events(fixtures_dir / "h200-rtx/gpu_trace_resnet18_fp16_relu_forced_3inf.json.gz")
                ),
            )
        ]
    )
    a = fp.kernels_part(single.sequence, single.kernel_counts)
    b = fp.kernels_part(fragmented.sequence, fragmented.kernel_counts)
    assert re.fullmatch(r"kernels:[0-9a-f]{16}", a) and a != b
    # where the inferences' sequences differed, the counts per inference identify the plan
    assert fp.kernels_part(None, single.kernel_counts) not in (None, a)
    assert fp.kernels_part(None, None) is None
    reversed_order = fp.kernels_part(tuple(reversed(single.sequence)), single.kernel_counts)
    assert reversed_order != a  # the same kernels in another order: another plan


def test_fingerprint_parts_and_same_plan():
    both = fp.plan_fingerprint("layers:aaaa", "kernels:bbbb")
    assert both == "layers:aaaa kernels:bbbb"
    assert fp.parts_of(both) == {"layers": "layers:aaaa", "kernels": "kernels:bbbb"}
    assert fp.plan_fingerprint(None, None) is None
    kernels_only = fp.plan_fingerprint(None, "kernels:bbbb")
    assert fp.same_plan(both, both) is True
    assert fp.same_plan(both, kernels_only) is True  # compared on the part both have
    assert fp.same_plan(both, "layers:aaaa kernels:cccc") is False
    assert fp.same_plan(both, "layers:dddd kernels:bbbb") is False  # every common part must agree
    assert fp.same_plan("layers:aaaa", "kernels:bbbb") is None  # nothing in common
    assert fp.same_plan(None, both) is None  # stored before fingerprints
    assert fp.parts_of("nsys:1234 layers:") == {}
