"""Precision is real on the installed Torch-TensorRT: every keyword the backend would pass is one the installed
``dynamo.compile`` / ``CompilationSettings`` reads, and an fp16 build's layers output fp16 by TensorRT's own layer
information (full TensorRT >= 2.13 builds it from fp16 dtypes; TensorRT-RTX always did).

Marked ``gpu``: skipped without an NVIDIA GPU and an importable torch_tensorrt. Figures are printed (``-s``).
"""

import pytest

from engine import runner
from engine.backends.tensorrt import export, internals
from engine.backends.tensorrt.keywords import check_keywords
from engine.profiling import engine_precision
from engine.settings.request import RunRequest
from tests.test_internals import allowed_requests

pytestmark = pytest.mark.gpu

FAST = {"warmup_iters": 10, "timed_iters": 20, "profile_iters": 5, "compare_eager": False}


def req(precision: str, **compile_knobs) -> RunRequest:
    return RunRequest.from_dict(
        {
            "model": {"source": "resnet18"},
            "backend": "tensorrt",
            "compile": {"precision": precision, **compile_knobs},
            "measure": dict(FAST),
        }
    )


def test_the_installed_signature_reads_every_keyword_the_matrix_allows(tmp_path):
    features = internals.features()
    print(
        f"\n[keywords] torch_tensorrt {internals.version()} rtx={features.rtx} strongly_typed="
        f"{features.strongly_typed} dynamo={len(features.keywords.dynamo)} options="
        f"{len(features.keywords.torch_compile)}"
    )
    count = 0
    for request in allowed_requests(features):
        kw = export.compile_kwargs(request, features, tmp_path)
        if request.compile.frontend == "dynamo":
            kw["arg_inputs"] = []
        check_keywords(kw, request.compile.frontend, features.keywords, internals.version())
        count += 1
    print(f"[keywords] {count} allowed requests, every keyword read by the installed Torch-TensorRT")
    assert count > 100


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_the_engine_layers_run_in_the_labelled_precision(store, precision):
    r = runner.execute(req(precision), store).result
    p = r.engine_precision
    assert p is not None, "layer information at DETAILED verbosity was not read"
    print(
        f"\n[engine precision] {r.label} on {r.env['device_name']} ({r.env['flavour']}): {engine_precision.summary(p)}"
    )
    assert p.expected == precision and p.mismatch == ""
    assert engine_precision.shares(p)[precision] > 0.5


def test_a_quantized_engine_keeps_its_base_precision(store):
    request = req("fp16", quantization="int8_weight_only", quant_base_precision="fp16", calibration_batches=2)
    r = runner.execute(request, store).result
    p = r.engine_precision
    assert p is not None
    print(f"\n[engine precision] {r.label}: {engine_precision.summary(p)}")
    assert p.expected == "fp16" and p.mismatch == "" and p.layer_counts["fp16"] > 0
