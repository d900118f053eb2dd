"""Quantization: capability matrix, config knobs, calibration data, ModelOpt on CPU, three-way accuracy."""

import dataclasses
import importlib.util
import os

import pytest
import torch
from torch import nn

from engine import capabilities, runner
from engine.backends.tensorrt import internals, quantize
from engine.capabilities import Capabilities, Gpu
from engine.errors import CalibrationDataError, ConfigError, QuantizationError
from engine.models.entry import BuiltModel
from engine.profiling.accuracy import compare_outputs
from engine.quantization import accuracy, calibration, fake_quant, schemes
from engine.result import Accuracy, QuantizationReport, RunResult
from engine.settings.defaults import QUANT_SCHEMES
from engine.settings.identity import cache_key
from engine.settings.request import CompileSettings, RunRequest, validate

HAVE_MODELOPT = importlib.util.find_spec("modelopt") is not None
needs_modelopt = pytest.mark.skipif(
    not HAVE_MODELOPT,
    reason="nvidia-modelopt not installed (a GPU extra: pip install nvidia-modelopt==0.47.0 runs on CPU too)",
)


def gpu_caps(flavour: str, cc: str) -> Capabilities:
    """A machine description as capabilities.detect() reports it on a GPU box (no measurement in it)."""
    return Capabilities(
        torch_version=torch.__version__,
        cuda_available=True,
        gpus=(Gpu(0, "NVIDIA test GPU", 80 * 2**30, cc),),
        torch_tensorrt_version="2.11.0",
        flavour=flavour,
        tensorrt_version="1.4.0.76",
    )


def quant_request(scheme: str, **compile_changes) -> RunRequest:
    return RunRequest(
        backend="tensorrt", device="cuda", compile=CompileSettings(quantization=scheme, **compile_changes)
    )


class TinyConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        return self.head(self.features(x))


def tiny_model(seed: int = 0, batch: int = 8) -> BuiltModel:
    torch.manual_seed(seed)
    return BuiltModel(TinyConvNet().eval(), (torch.randn(batch, 3, 32, 32),), f"tiny:{seed}")


# -- capability matrix ----------------------------------------------------------------------------
def test_rtx_refuses_int8_activations_but_takes_weight_only():
    for scheme in ("int8", "int8_smoothquant"):
        reason = schemes.scheme_unavailable_reason(
            scheme, flavour="tensorrt_rtx", compute_capability="9.0", modelopt=True
        )
        assert reason.startswith(
            "TensorRT-RTX does not support int8 activation quantization, only int8 weight quantization"
        )
    assert (
        schemes.scheme_unavailable_reason(
            "int8_weight_only", flavour="tensorrt_rtx", compute_capability="9.0", modelopt=True
        )
        is None
    )
    assert (
        schemes.scheme_unavailable_reason("int8", flavour="tensorrt", compute_capability="9.0", modelopt=True) is None
    )


def test_compute_capability_gates_fp8_and_fp4():
    def reason(scheme, cc, flavour="tensorrt"):
        return schemes.scheme_unavailable_reason(scheme, flavour=flavour, compute_capability=cc, modelopt=True)

    assert "8.9" in reason("fp8", "8.6") and "this GPU has 8.6" in reason("fp8", "8.6")
    assert reason("fp8", "8.9") is None and reason("fp8", "9.0", "tensorrt_rtx") is None
    assert "10.0" in reason("nvfp4", "9.0") and "Blackwell" in reason("nvfp4", "9.0")
    assert reason("nvfp4", "10.0") is None and reason("nvfp4", "12.0") is None
    # INT4 AWQ: refused on every GPU and flavour by Torch-TensorRT's 8-bit-only quantize converter
    for cc, flavour in (("8.0", "tensorrt"), ("9.0", "tensorrt_rtx"), ("12.0", "tensorrt")):
        assert reason("int4_awq", cc, flavour) == schemes.TORCH_TRT_INT4
    assert reason("none", "7.5") is None


def test_missing_modelopt_names_the_install_command():
    for scheme in QUANT_SCHEMES[1:]:
        r = schemes.scheme_unavailable_reason(scheme, flavour="tensorrt", compute_capability="10.0", modelopt=False)
        assert "`pip install nvidia-modelopt`" in r
    assert (
        schemes.scheme_unavailable_reason("none", flavour="tensorrt", compute_capability="10.0", modelopt=False) is None
    )


def test_schemes_match_the_config_choices():
    assert tuple(schemes.SCHEMES) == QUANT_SCHEMES
    field = CompileSettings.__dataclass_fields__["quantization"]
    assert field.metadata["choices"] == QUANT_SCHEMES


@needs_modelopt
def test_check_request_refuses_with_the_reason_before_anything_runs():
    rtx_h200 = gpu_caps("tensorrt_rtx", "9.0")
    with pytest.raises(ConfigError) as e:
        runner.check_request(quant_request("int8"), rtx_h200)
    assert e.value.field == "compile.quantization"
    assert "TensorRT-RTX does not support int8 activation quantization" in e.value.message
    runner.check_request(quant_request("int8_weight_only"), rtx_h200)
    runner.check_request(quant_request("fp8"), rtx_h200)
    with pytest.raises(ConfigError, match="compute capability 10.0"):
        runner.check_request(quant_request("nvfp4"), rtx_h200)
    with pytest.raises(ConfigError, match="needs the tensorrt backend"):
        runner.check_request(
            RunRequest(compile=CompileSettings(quantization="int8_weight_only")), capabilities.detect()
        )


@needs_modelopt
def test_disabled_reason_drives_the_profile_widgets():
    caps = gpu_caps("tensorrt_rtx", "9.0")
    assert "int8 activation" in caps.disabled_reason("compile.quantization", "int8")
    assert caps.disabled_reason("compile.quantization", "fp8") is None
    assert caps.disabled_reason("compile.quantization", True) is None  # some schemes run here


def test_whole_quantization_knob_disabled_without_modelopt(monkeypatch):
    monkeypatch.setattr(schemes, "modelopt_installed", lambda: False)
    caps = gpu_caps("tensorrt", "9.0")
    assert "pip install nvidia-modelopt" in caps.disabled_reason("compile.quantization", True)
    assert caps.disabled_reason("compile.quantization", "none") is None


# -- config ---------------------------------------------------------------------------------------
def test_config_validates_quantization_knobs():
    with pytest.raises(ConfigError) as e:
        RunRequest().with_changes(**{"compile.quantization": "int3"})
    assert e.value.field == "compile.quantization" and "int8_weight_only" in e.value.message
    with pytest.raises(ConfigError, match="compile.calibration_batches"):
        validate(RunRequest.from_dict({"compile": {"calibration_batches": 0}}))
    with pytest.raises(ConfigError, match="compile.quant_base_precision"):
        validate(RunRequest.from_dict({"compile": {"quant_base_precision": "bf16"}}))
    r = RunRequest.from_dict({"backend": "tensorrt", "compile": {"quantization": "fp8", "calibration_batches": "4"}})
    assert r.compile.calibration_batches == 4 and r.compile.quant_base_precision == "fp16"


def test_calibration_knobs_matter_only_when_quantizing():
    env = {"device": "cuda"}
    plain = RunRequest(backend="tensorrt")
    assert cache_key(plain, env, "m") == cache_key(plain.with_changes(**{"compile.calibration_batches": 32}), env, "m")
    q = plain.with_changes(**{"compile.quantization": "fp8"})
    assert cache_key(q, env, "m") != cache_key(q.with_changes(**{"compile.calibration_batches": 32}), env, "m")
    assert cache_key(q, env, "m") != cache_key(plain, env, "m")


def test_result_carries_the_quantization_report_through_json():
    fq = Accuracy("eager fp32", 0.075, 0.4, 0.9)
    report = QuantizationReport("fp8", "fp16", calibration.RANDOM_CALIBRATION, 8, False, 12, fq, None, None, False)
    d = {
        "run_id": "r",
        "key": "k",
        "created_at": "2026-11-24T00:00:00+00:00",
        "request": quant_request("fp8").to_dict(),
        "env": {},
        "model_info": {},
        "latency": {
            "median_ms": 1.0,
            "p10_ms": 1.0,
            "p90_ms": 1.0,
            "p99_ms": 1.0,
            "mean_ms": 1.0,
            "std_ms": 0.0,
            "min_ms": 1.0,
            "max_ms": 1.0,
            "iters": 1,
            "batch_size": 8,
            "throughput_per_s": 8000.0,
        },
        "quantization": dataclasses.asdict(report),
    }
    back = RunResult.from_dict(RunResult.from_dict(d).to_dict())
    assert back.quantization == report
    assert "fp8/fp16" in back.label


# -- calibration data --------------------------------------------------------------------------------
def test_random_calibration_is_seeded_and_labelled():
    example = (torch.zeros(4, 3, 8, 8),)
    a = calibration.load_calibration("random", example, 3, seed=1)
    b = calibration.load_calibration("random", example, 3, seed=1)
    assert len(a.batches) == 3 and a.batches[0][0].shape == (4, 3, 8, 8)
    assert torch.equal(a.batches[2][0], b.batches[2][0]) and not torch.equal(a.batches[0][0], a.batches[1][0])
    assert not a.meaningful and "accuracy not meaningful for real data" in a.description
    assert "random tensors" in a.warning


def test_tensor_file_is_split_into_batches(tmp_path):
    samples = torch.randn(10, 3, 8, 8)
    torch.save(samples, tmp_path / "calib.pt")
    data = calibration.load_calibration("file:calib.pt", (torch.zeros(4, 3, 8, 8),), 8, directory=tmp_path)
    assert [b[0].shape[0] for b in data.batches] == [4, 4, 2]
    assert torch.equal(torch.cat([b[0] for b in data.batches]), samples)
    assert data.meaningful and data.description == "file calib.pt (10 samples)"
    torch.save([torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)], tmp_path / "list.pt")
    two = calibration.load_calibration("file:list.pt", (torch.zeros(4, 3, 8, 8),), 1, directory=tmp_path)
    assert len(two.batches) == 1


class NotATensor:
    pass


def test_bad_tensor_files_name_the_file_and_what_is_expected(tmp_path):
    example = (torch.zeros(4, 3, 8, 8),)
    torch.save({"x": NotATensor()}, tmp_path / "pickled.pt")
    with pytest.raises(CalibrationDataError) as e:
        calibration.load_calibration("file:pickled.pt", example, 2, directory=tmp_path)
    assert "pickled.pt could not be read as a tensor file" in e.value.message
    assert "weights_only=True" in e.value.hint and "(N, 3, 8, 8)" in e.value.hint
    torch.save(torch.randn(5, 3, 16, 16), tmp_path / "shape.pt")
    with pytest.raises(CalibrationDataError, match=r"shape.pt holds a tensor of shape \(5, 3, 16, 16\)"):
        calibration.load_calibration("file:shape.pt", example, 2, directory=tmp_path)
    torch.save(torch.ones(5, 3, 8, 8, dtype=torch.int64), tmp_path / "ints.pt")
    with pytest.raises(CalibrationDataError, match="ints.pt holds torch.int64"):
        calibration.load_calibration("file:ints.pt", example, 2, directory=tmp_path)
    (tmp_path / "garbage.pt").write_bytes(b"not a torch file")
    with pytest.raises(CalibrationDataError, match="garbage.pt could not be read"):
        calibration.load_calibration("file:garbage.pt", example, 2, directory=tmp_path)
    torch.save({"a": torch.zeros(1)}, tmp_path / "dict.pt")
    with pytest.raises(CalibrationDataError, match="dict.pt holds dict, not tensors"):
        calibration.load_calibration("file:dict.pt", example, 2, directory=tmp_path)


def test_calibration_source_must_stay_in_the_calibration_directory(tmp_path):
    for bad, words in (
        ("file:../secret.pt", "inside the calibration data directory"),
        ("file:/etc/passwd.pt", "inside the calibration data directory"),
        ("file:missing.pt", "no file 'missing.pt'"),
        ("file:calib.npy", "not a .pt tensor file"),
        ("dir:nowhere", "no folder 'nowhere'"),
        ("imagenet", "is not random, file:"),
    ):
        with pytest.raises(ConfigError) as e:
            calibration.calibration_path(bad, tmp_path)
        assert e.value.field == "compile.calibration_data" and words in e.value.message, bad


def test_calibration_dir_defaults_inside_the_data_directory(monkeypatch, tmp_path):
    monkeypatch.delenv(calibration.CALIBRATION_DIR_ENV, raising=False)
    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path))
    assert calibration.calibration_dir() == tmp_path / "calibration"
    monkeypatch.setenv(calibration.CALIBRATION_DIR_ENV, str(tmp_path / "admin"))
    assert calibration.calibration_dir() == tmp_path / "admin"


def test_image_folder_goes_through_torchvision_transforms(tmp_path):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, colour in enumerate(((255, 0, 0), (0, 255, 0), (0, 0, 255))):
        Image.new("RGB", (40, 30), colour).save(folder / f"{i}.png")
    (folder / "notes.txt").write_text("ignored")
    data = calibration.load_calibration("dir:imgs", (torch.zeros(2, 3, 16, 16),), 4, directory=tmp_path)
    assert [b[0].shape for b in data.batches] == [(2, 3, 16, 16), (1, 3, 16, 16)]
    red = data.batches[0][0][0]
    # ImageNet normalisation of a pure red image: (1 - mean) / std in R, (0 - mean) / std in G and B
    assert red[0].mean().item() == pytest.approx((1 - 0.485) / 0.229, abs=1e-4)
    assert red[1].mean().item() == pytest.approx(-0.456 / 0.224, abs=1e-4)
    assert data.description == "images in imgs/ (3 samples)"
    (folder / "3.png").write_bytes(b"broken")
    with pytest.raises(CalibrationDataError, match="imgs/3.png is not a readable image"):
        calibration.load_calibration("dir:imgs", (torch.zeros(2, 3, 16, 16),), 4, directory=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CalibrationDataError, match="empty/ holds no images"):
        calibration.load_calibration("dir:empty", (torch.zeros(2, 3, 16, 16),), 4, directory=tmp_path)
    with pytest.raises(CalibrationDataError, match=r"one RGB image \(3, H, W\)"):
        calibration.load_calibration("dir:imgs", (torch.zeros(2, 16),), 4, directory=tmp_path)


# -- compile arguments and errors ------------------------------------------------------------------
def test_compile_kwargs_by_typing():
    weak = {"use_explicit_typing": False}
    assert quantize.compile_kwargs("int8", "fp16", False) == {"enabled_precisions": {torch.float16, torch.int8}, **weak}
    assert quantize.compile_kwargs("fp8", "fp32", False) == {
        "enabled_precisions": {torch.float32, torch.float8_e4m3fn},
        **weak,
    }
    # strongly typed (TensorRT-RTX; full TensorRT from Torch-TensorRT 2.13): the cast model and Q/DQ nodes decide
    assert quantize.compile_kwargs("int8_weight_only", "fp16", True) == {}
    assert quantize.compile_kwargs("int8", "fp16", True) == {}


def test_compile_errors_become_quantization_errors():
    # the message TensorRT-RTX 1.4 raised on the H200 for INT8 W8A8 (gpu-kit README)
    rtx = RuntimeError(
        "TensorRT-RTX does not support int8 activation quantization, only support int8 weight quantization"
    )
    err = quantize.explain_compile_error(rtx, "int8", "tensorrt_rtx")
    assert "TensorRT-RTX refused INT8 (W8A8)" in err.message and "int8_weight_only" in err.hint
    other = quantize.explain_compile_error(RuntimeError("Unsupported FP8 scale layout"), "fp8", "tensorrt")
    assert other.message.startswith("TensorRT could not compile the FP8 (E4M3) model")
    assert quantize.explain_compile_error(RuntimeError("CUDA out of memory"), "fp8", "tensorrt") is None
    assert quantize.explain_compile_error(rtx, "none", "tensorrt_rtx") is None


# -- three-way accuracy ----------------------------------------------------------------------------------
def test_conversion_problem_rule_on_the_h200_fp8_figures():
    # FP8 resnet50 on the H200 with TensorRT-RTX 1.4 (gpu-kit README): fake-quant 0.075, engine 2.88, top-1 0
    fq = Accuracy("eager fp32", 0.075, 1.0, None)
    assert accuracy.is_conversion_problem(fq, Accuracy("fake-quant", 2.88, 50.0, 0.0))
    assert not accuracy.is_conversion_problem(fq, Accuracy("fake-quant", 0.02, 0.1, None))
    # near-lossless scheme, fp16 engine: the floor keeps the fp16 rounding from being flagged
    assert not accuracy.is_conversion_problem(Accuracy("e", 0.002, 0.0, 1.0), Accuracy("f", 0.01, 0.0, 1.0))
    assert accuracy.is_conversion_problem(Accuracy("e", 0.01, 0.0, 1.0), Accuracy("f", 0.03, 0.0, 0.25))


def test_an_engine_output_with_nan_is_a_conversion_problem():
    # FP8 vit_b_16 on the H200 (TensorRT-RTX 1.4): NaN output, yet top-1 "agreed" on an all-zero reference
    fq = Accuracy("eager fp32", 0.0, 0.0, 1.0)
    nan = Accuracy("fake-quant", float("nan"), float("nan"), 1.0)
    assert accuracy.is_conversion_problem(fq, nan)
    report = QuantizationReport(
        "fp8", "fp16", "random", 2, False, fake_quant_vs_eager=fq, engine_vs_fake_quant=nan, conversion_problem=True
    )
    assert "NaN or inf" in accuracy.conversion_problem_text(report)
    # a stored NaN reads back as None (JSON null): still a problem, still worded
    back = dataclasses.replace(report, engine_vs_fake_quant=dataclasses.replace(nan, rel_l2=None))
    assert accuracy.is_conversion_problem(fq, back.engine_vs_fake_quant)
    assert "NaN or inf" in accuracy.conversion_problem_text(back)


# -- ModelOpt on CPU, for real ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def int8_quantized():
    """A tiny conv net, INT8 W8A8 fake-quantized by ModelOpt on CPU from random calibration data."""
    if not HAVE_MODELOPT:
        pytest.skip("nvidia-modelopt not installed")
    model = tiny_model()
    request = quant_request("int8", quant_base_precision="fp32", calibration_batches=4)
    stages, events = {}, []
    q = fake_quant.prepare_quantized(request, model, "cpu", lambda s, f=None, d="": events.append((s, f, d)), stages)
    return model, q, stages, events


@needs_modelopt
def test_int8_fake_quant_on_cpu_differs_slightly_from_fp32(int8_quantized):
    model, q, stages, events = int8_quantized
    report = q.report()
    err = report.fake_quant_vs_eager
    assert 0 < err.rel_l2 < 0.05 and err.max_abs > 0
    assert q.quantizers >= 5  # input and weight quantizers of 2 convs and the linear layer
    assert report.engine_vs_fake_quant is None and not report.conversion_problem
    assert not report.calibration_meaningful and report.calibration_batches == 4
    assert stages["calibration_s"] > 0 and "modelopt_import_s" in stages
    assert [e[0] for e in events[:2]] == ["reference", "modelopt_import"]
    calib = [e for e in events if e[0] == "calibrate" and e[2].startswith("batch")]
    assert [e[2] for e in calib] == ["batch 1/4", "batch 2/4", "batch 3/4", "batch 4/4"]
    # the shared model is untouched: no quantizer in it, same output as before
    assert fake_quant.enabled_quantizers(model.module) == 0
    with torch.no_grad():
        assert torch.equal(model.module(*model.example_inputs), q.eager_output)


@needs_modelopt
def test_three_way_report_flags_a_conversion_that_departs(int8_quantized):
    model, q, _, _ = int8_quantized
    # a faithful conversion: the fake-quantized model itself, run again
    with torch.no_grad():
        faithful = q.module(*q.inputs)
    ok = q.report(engine_output=faithful)
    assert ok.engine_vs_fake_quant.rel_l2 < 1e-6 and not ok.conversion_problem
    # a broken conversion: outputs of a network with other weights on the same inputs
    broken = tiny_model(seed=1).module(*model.example_inputs).detach()
    bad = q.report(engine_output=broken)
    assert bad.conversion_problem
    assert bad.engine_vs_eager.rel_l2 == pytest.approx(compare_outputs(broken, q.eager_output, "eager fp32").rel_l2)
    assert "Conversion problem, not a quantization one" in accuracy.conversion_problem_text(bad)
    assert accuracy.conversion_problem_text(ok) == ""


@needs_modelopt
def test_weight_only_and_fp8_fake_quant_on_cpu():
    model = tiny_model()
    errors = {}
    for scheme in ("int8_weight_only", "fp8"):
        request = quant_request(scheme, quant_base_precision="fp32", calibration_batches=2)
        errors[scheme] = fake_quant.prepare_quantized(request, model, "cpu").report().fake_quant_vs_eager.rel_l2
    assert all(0 < e < 0.2 for e in errors.values()), errors


@needs_modelopt
def test_nvfp4_refused_on_cpu_with_the_reason():
    module = tiny_model().module
    with pytest.raises(QuantizationError, match="only on a CUDA GPU"):
        fake_quant.quantize(module, "nvfp4", [(torch.randn(2, 3, 32, 32),)])


@needs_modelopt
def test_torch_extensions_dir_is_kept_in_the_data_directory(monkeypatch, tmp_path):
    monkeypatch.delenv(fake_quant.TORCH_EXTENSIONS_ENV, raising=False)
    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path))
    stages = {}
    fake_quant.import_modelopt(stages=stages)
    assert os.environ[fake_quant.TORCH_EXTENSIONS_ENV] == str(tmp_path / "torch_extensions")
    assert (tmp_path / "torch_extensions").is_dir() and stages["modelopt_import_s"] >= 0


@pytest.mark.gpu
def test_quantized_compile_on_gpu(tmp_path):
    """The hook end to end: calibrate on the GPU, export with Q/DQ, compile, three-way accuracy."""
    import torch_tensorrt

    caps = capabilities.detect()
    scheme = "int8_weight_only"
    request = quant_request(scheme, quant_base_precision="fp16", calibration_batches=2)
    runner.check_request(request, caps)
    q = fake_quant.prepare_quantized(request, tiny_model(), "cuda")
    with quantize.export_mode():
        program = quantize.export_quantized(q.module, q.inputs)
        strongly_typed = internals.features().strongly_typed
        trt = torch_tensorrt.dynamo.compile(
            program, inputs=list(q.inputs), min_block_size=1, **quantize.compile_kwargs(scheme, "fp16", strongly_typed)
        )
    with torch.no_grad():
        report = q.report(engine_output=trt(*q.inputs))
    assert report.engine_vs_fake_quant.rel_l2 < 0.05 and not report.conversion_problem
