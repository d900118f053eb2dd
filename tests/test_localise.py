"""Localisation (issue 17) on the CPU, for real: the keep_high_precision knob through ModelOpt and the cast, forward
hooks on resnet18 / ViT with random weights, the bisection state machine, the driver over the PyTorch model and
over a queue answered by the recorded H200 ladder runs, records and the CLI."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

from engine import runner
from engine.backends import keep_high_precision as keep
from engine.backends.eager import prepare
from engine.errors import CalibrationDataError, ConfigError
from engine.models import registry
from engine.quantization import calibration, fake_quant, schemes
from engine.settings.identity import cache_key, settings_that_matter
from engine.settings.request import ModelSpec, RunRequest
from engine.studies.localisation import driver
from engine.studies.localisation.bisect import BUDGET, FOUND, UNFIXABLE, Bisection, default_max_builds
from engine.studies.localisation.error_growth import error_growth
from engine.studies.localisation.error_table import ErrorGrowth
from engine.studies.localisation.records import LocalisationNotFound, LocalisationRecords, bundle, read_bundle
from engine.studies.localisation.study import LOCALISE_TAG, Localisation
from tests.localise_fixtures import SMALL, RecordedQueue, _key, outlier_study, trt_request
from tests.test_quantization import gpu_caps

HAVE_MODELOPT = importlib.util.find_spec("modelopt") is not None
needs_modelopt = pytest.mark.skipif(not HAVE_MODELOPT, reason="nvidia-modelopt not installed")
ROOT = Path(__file__).resolve().parent.parent
RTX = gpu_caps("tensorrt_rtx", "9.0")


# -- the knob ------------------------------------------------------------------------------------------------------
def test_keep_high_precision_is_a_sorted_set_of_module_paths_in_the_cache_key():
    r = trt_request(precision="fp16", keep_high_precision="layer3.1.conv2, layer1.0.conv1\nlayer1.0.conv1")
    assert r.compile.keep_high_precision == ("layer1.0.conv1", "layer3.1.conv2")
    env = {"device": "cuda"}
    plain = trt_request(precision="fp16")
    assert cache_key(plain, env, "m") != cache_key(r, env, "m")
    same = trt_request(precision="fp16", keep_high_precision=["layer3.1.conv2", "layer1.0.conv1"])
    assert cache_key(same, env, "m") == cache_key(r, env, "m")
    # empty: the key runs stored before the knob existed were filed under
    assert "keep_high_precision" not in json.dumps(settings_that_matter(plain))
    # the eager backend ignores compile knobs but precision
    eager = RunRequest.from_dict({"model": SMALL, "compile": {"precision": "fp16", "keep_high_precision": ["fc"]}})
    assert cache_key(eager, env, "m") == cache_key(eager.with_changes(**{"compile.keep_high_precision": ()}), env, "m")


def test_keep_high_precision_validation_names_the_field():
    with pytest.raises(ConfigError) as e:
        trt_request(precision="fp16").with_changes(**{"compile.keep_high_precision": ["layer1/conv1"]})
    assert e.value.field == "compile.keep_high_precision" and "'layer1/conv1' is not a module path" in e.value.message
    with pytest.raises(ConfigError, match="an fp32 build has no lower precision"):
        trt_request().with_changes(**{"compile.keep_high_precision": ["fc"]})
    with pytest.raises(ConfigError, match="not a list of module paths"):
        RunRequest.from_dict({"compile": {"keep_high_precision": 3}})


def test_unknown_module_paths_are_named_at_submit(monkeypatch):
    monkeypatch.setattr(schemes, "modelopt_installed", lambda: True)
    request = trt_request(precision="fp16", keep_high_precision=["layer3.1.conv2", "layer3.9.conv1"])
    with pytest.raises(ConfigError) as e:
        runner.check_request(request, RTX)
    assert e.value.field == "compile.keep_high_precision"
    assert "resnet18 has no module 'layer3.9.conv1'" in e.value.message and "layer3.0" in e.value.message
    runner.check_request(request.with_changes(**{"compile.keep_high_precision": ["layer3.1.conv2"]}), RTX)
    fp8 = trt_request(quantization="fp8", keep_high_precision=["layer3.1"])  # a block: every quantizer in it
    runner.check_request(fp8, RTX)
    # full TensorRT builds fp16 weakly typed: a module cannot be kept in fp32 there; quantized builds can
    with pytest.raises(ConfigError, match="needs a strongly typed network"):
        runner.check_request(
            request.with_changes(**{"compile.keep_high_precision": ["fc"]}), gpu_caps("tensorrt", "9.0")
        )
    runner.check_request(fp8, gpu_caps("tensorrt", "9.0"))


def test_cast_keeps_a_module_in_fp32_behind_casts_that_torch_export_keeps():
    model = registry.build(ModelSpec(**{**SMALL, "input_shape": (3, 32, 32)}), 0)
    module, inputs = prepare(model, "fp16", "cpu", keep_fp32=["layer1.0.conv1"])
    assert module is not model.module and next(model.module.parameters()).dtype == torch.float32  # a copy
    assert module.layer1[0].conv1.weight.dtype == torch.float32 and module.conv1.weight.dtype == torch.float16
    with torch.inference_mode():
        out = module(*inputs)
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
    program = torch.export.export(module, inputs)
    convs = [n.meta["val"].dtype for n in program.graph.nodes if n.op == "call_function" and "conv" in str(n.target)]
    assert convs[:3] == [torch.float16, torch.float32, torch.float16]  # conv1, layer1.0.conv1 (kept), layer1.0.conv2
    casts = [n for n in program.graph.nodes if n.op == "call_function" and "to" in str(n.target).split(".")]
    assert len(casts) >= 2  # into fp32 and back
    with pytest.raises(ConfigError, match="the model has no module 'layer9'"):
        prepare(model, "fp16", "cpu", keep_fp32=["layer9"])


@needs_modelopt
def test_quantized_run_switches_off_the_kept_modules_quantizers():
    model = registry.build(ModelSpec(**{**SMALL, "input_shape": (3, 32, 32)}), 0)
    plain = fake_quant.prepare_quantized(trt_request(quantization="fp8", calibration_batches=1), model, "cpu")
    kept = fake_quant.prepare_quantized(
        trt_request(quantization="fp8", calibration_batches=1, keep_high_precision=["layer1.0.conv1", "fc"]),
        model,
        "cpu",
    )
    assert plain.quantizers - kept.quantizers == 4  # input + weight quantizer of each
    assert keep.quantizer_owners(kept.module).keys().isdisjoint({"layer1.0.conv1", "fc"})
    report = kept.report()
    assert report.kept == ["fc", "layer1.0.conv1"] and report.fake_quant_vs_eager.nonfinite == 0
    assert report.fake_quant_vs_eager.rel_l2 != plain.report().fake_quant_vs_eager.rel_l2
    with pytest.raises(ConfigError, match="has no module 'layer1.0.conv9'"):
        fake_quant.prepare_quantized(
            trt_request(quantization="fp8", keep_high_precision=["layer1.0.conv9"]), model, "cpu"
        )


# -- units and the error growth ----------------------------------------------------------------------------------
def test_units_are_leaves_of_the_call_tree_in_execution_order():
    resnet = registry.build(ModelSpec(**{**SMALL, "input_shape": (3, 32, 32)}), 0)
    x = tuple(t[:1] for t in resnet.example_inputs)
    units = keep.call_tree_leaves(resnet.module, x)
    assert units[:5] == ["conv1", "bn1", "relu", "maxpool", "layer1.0.conv1"] and units[-1] == "fc"
    cast = keep.cast_candidates(resnet.module, x)
    assert "relu" not in cast and "maxpool" not in cast and cast[:3] == ["conv1", "bn1", "layer1.0.conv1"]
    vit = registry.build(ModelSpec(source="vit_b_16", batch_size=1), 0)
    units = keep.call_tree_leaves(vit.module, vit.example_inputs)
    attention = "encoder.layers.encoder_layer_0.self_attention"
    # MultiheadAttention uses out_proj's weights without calling it: the attention is the unit
    assert attention in units and f"{attention}.out_proj" not in units
    assert units[0] == "conv_proj" and units[-1] == "heads.head"


@needs_modelopt
def test_error_growth_on_resnet18_fp8_and_fp16():
    request = trt_request(quantization="fp8", quant_base_precision="fp16", calibration_batches=2)
    growth = error_growth(request, max_samples=2)
    assert growth.variants == ["fp8 fake-quant (fp16)", "fp16"] and growth.samples == 2
    fp16, fp8 = growth.rows("fp16"), growth.rows("fp8 fake-quant (fp16)")
    assert list(fp16["unit"][:5]) == ["conv1", "bn1", "relu", "maxpool", "layer1.0.conv1"]
    assert "layer1.0.relu#1" in set(fp16["unit"])  # BasicBlock calls its relu twice
    assert (fp16["nan"] + fp16["inf"]).sum() == 0 and fp16["rel_err"].max() < 0.01
    assert fp8["rel_err"].iloc[-1] > 10 * fp16["rel_err"].iloc[-1]  # FP8 departs further than fp16
    conv = fp8[fp8["unit"] == "layer1.0.conv1"].iloc[0]
    assert conv["quantized"] and conv["format"] == "fp8" and conv["format_max"] == 448.0
    assert conv["calib_amax"] > 0 and conv["act_max"] == conv["in_max_abs"]
    assert fp16.iloc[0]["format_max"] == 65504.0
    worst = growth.worst("fp8 fake-quant (fp16)", 10)
    assert len(worst) == 10 and list(worst["rel_err"]) == sorted(worst["rel_err"], reverse=True)
    first = growth.first_crossing("fp8 fake-quant (fp16)")
    assert first is None or first["rel_err"] > growth.tolerance
    back = ErrorGrowth.from_dict(json.loads(json.dumps(growth.to_dict())))
    assert list(back.table["unit"]) == list(growth.table["unit"])
    assert back.table["rel_err"].sub(growth.table["rel_err"]).abs().max() < 1e-4 * growth.table["rel_err"].max()


def test_error_growth_names_the_unit_where_fp16_overflows():
    model = registry.build(ModelSpec(**{**SMALL, "input_shape": (3, 32, 32)}), 0)
    with torch.no_grad():
        model.module.layer3[0].conv1.weight *= 1e5  # its output leaves fp16's range
    growth = error_growth(trt_request(precision="fp16"), model=model)
    assert growth.variants == ["fp16"]
    first = growth.first_crossing("fp16")
    assert first["unit"] == "layer3.0.conv1" and first["inf"] > 0
    assert "activation max" in growth.crossing_text("fp16") and "> 65504 of fp16" in growth.crossing_text("fp16")
    assert growth.worst("fp16", 1).iloc[0]["nan"] + growth.worst("fp16", 1).iloc[0]["inf"] > 0
    with pytest.raises(ConfigError, match="no lower precision"):
        error_growth(trt_request(), model=model)


# -- the bisection -----------------------------------------------------------------------------------------------
def _search(n: int, culprits: set[str], max_builds: int = 1000) -> Bisection:
    """The pure search driven by a build that passes exactly when every culprit is kept."""
    s = Bisection.start([f"m{i}" for i in range(n)], max_builds)
    while not s.done:
        keep_set = s.next_keep()
        s = s.record(keep_set, culprits <= set(keep_set))
    return s


@pytest.mark.parametrize("n", [1, 2, 7, 23, 54, 107])
def test_one_culprit_costs_about_log2_n_builds_plus_the_confirming_one(n):
    bound = math.ceil(math.log2(n + 1)) + 1
    for i in sorted({0, n // 3, n // 2, n - 1}):
        s = _search(n, {f"m{i}"})
        assert s.outcome == FOUND and s.answer == (f"m{i}",) and s.builds <= bound, (n, i, s.builds)


def test_several_culprits_are_found_one_by_one_and_budget_and_unfixable_end_the_search():
    s = _search(54, {"m3", "m20", "m41"})
    assert s.outcome == FOUND and s.answer == ("m3", "m20", "m41")
    assert _search(54, {"not-a-candidate"}).outcome == UNFIXABLE
    tight = _search(54, {"m3", "m20", "m41"}, max_builds=7)
    assert tight.outcome == BUDGET and tight.builds == 7
    assert tight.answer is not None and {"m3", "m20", "m41"} <= set(tight.answer)  # the smallest passing set seen
    assert default_max_builds(54) == 14


def test_the_search_state_round_trips_through_json_mid_way():
    s = Bisection.start([f"m{i}" for i in range(30)])
    for _ in range(3):
        k = s.next_keep()
        s = s.record(k, "m17" in k)
        s = Bisection.from_dict(json.loads(json.dumps(s.to_dict())))
    while not s.done:
        k = s.next_keep()
        s = s.record(k, "m17" in k)
    assert s.answer == ("m17",)
    with pytest.raises(ValueError, match="the search asked for"):
        Bisection.start(["a", "b", "c"]).record(("c",), True)  # it asked for ("a",)


# -- the driver: the PyTorch model as the build makes it -----------------------------------------------------------
@needs_modelopt
def test_localisation_on_the_fake_quantized_model_finds_the_outlier_module(tmp_path):
    study = outlier_study()
    assert len(study.candidates) == 23 and study.candidates[-1] == "fc"
    (variant,) = study.error_growth.variants
    assert study.error_growth.first_crossing(variant)["unit"] == "layer2.1.conv2"  # PyTorch side agrees
    records = LocalisationRecords(tmp_path)
    records.save(study)
    assert study.status == "done" and study.outcome == FOUND and study.answer == ["layer2.1.conv2"]
    assert study.builds <= math.ceil(math.log2(24)) + 1
    unfixed, fix = study.step("unfixed"), study.fix_step
    assert not unfixed.passed and unfixed.figures.rel_l2 > 0.3 and fix.role == "confirm" and fix.passed
    summary = study.summary()
    assert summary.startswith("INT8 breaks at layer2.1.conv2 (input activation max ")
    assert "> 127 of INT8); keeping 1 module in fp32 gives rel. L2 " in summary
    table = study.steps_table()
    assert list(table["role"][:2]) == ["unfixed", "reference"] and table["passed"].iloc[-1]
    back = records.load("outlier")
    assert back.answer == study.answer and back.steps_table()["rel_l2"].equals(table["rel_l2"])
    assert records.summaries()["localisation_id"].tolist() == ["outlier"]
    with pytest.raises(LocalisationNotFound, match="No localisation 'nope'"):
        records.load("nope")


# -- the driver over a queue, answered by the recorded H200 ladder ----------------------------------------------
def _ladder_runs(store) -> dict[str, str]:
    store.import_samples(ROOT / "samples")
    ids = store.runs_with_tag("ladder:resnet50_b8_h200")
    if not ids:
        pytest.skip("the bundled resnet50 ladder is not there")
    return {
        store.get(i).request["compile"]["precision"]
        + "/"
        + store.get(i).request["compile"].get("quantization", "none"): i
        for i in ids
    }


@needs_modelopt
def test_queue_driver_on_the_recorded_fp8_ladder_rung(store):
    runs = _ladder_runs(store)
    fp8 = store.get(runs["fp16/fp8"])
    assert fp8.quantization.conversion_problem  # NaN on the H200
    base = RunRequest.from_dict(fp8.request)
    study = driver.plan(base, analyse=False, localisation_id="r50fp8", source="ladder resnet50_b8_h200, fp8/fp16")
    assert len(study.candidates) > 50 and study.candidates[0] == "conv1"
    q = RecordedQueue(
        {_key(study.request_for("unfixed")): fp8.run_id, _key(study.request_for("reference")): runs["fp16/none"]}
    )
    runner = driver.QueueRunner(store, q.submit, q.get, q.cancel)
    driver.advance(study, runner)  # submits the unfixed build and the reference
    assert [r.compile.keep_high_precision for r in q.requests] == [(), ()]
    assert q.requests[1].compile.quantization == "none" and q.requests[1].compile.precision == "fp16"
    driver.advance(study, runner)  # both answered by the recorded runs: the search starts
    unfixed, reference = study.step("unfixed"), study.step("reference")
    assert not unfixed.passed and unfixed.why.startswith("output not finite")
    assert reference.passed and reference.figures.rel_l2 < 0.01
    assert reference.figures.e2e_ms == store.get(runs["fp16/none"]).latency.median_ms  # the recorded fp16 median
    assert f"{LOCALISE_TAG}r50fp8" in store.get(fp8.run_id).tags
    n = len(study.candidates)
    first = q.requests[2]
    assert first.compile.keep_high_precision == tuple(sorted(study.candidates[: n // 2]))
    assert not first.measure.layer_profile and not first.measure.compare_eager  # a search build measures lightly
    assert study.progress_text().startswith(f"Localisation r50fp8: 0 of at most {study.budget} search builds")
    # JSON mid-way, then cancel: the job in flight is cancelled, what finished stays
    study = Localisation.from_dict(json.loads(json.dumps(study.to_dict())))
    driver.cancel(study, runner)
    assert q.cancelled == ["job2"] and study.status == "cancelled"
    assert study.summary().startswith("Cancelled after 0 search builds")


def test_a_refused_or_failed_build_ends_the_study_with_the_reason(store):
    study = Localisation("x", "2026-11-30T00:00:00+00:00", trt_request(quantization="fp8").to_dict(), ["conv1", "fc"])

    def refuse(request):
        raise ConfigError("compile.keep_high_precision", "resnet18 has no module 'x'")

    runner = driver.QueueRunner(store, refuse, lambda j: {}, lambda j: None)
    driver.advance(study, runner)
    assert study.status == "failed" and "compile.keep_high_precision: resnet18 has no module 'x'" in study.summary()
    q = RecordedQueue({})
    study = Localisation("y", "2026-11-30T00:00:00+00:00", trt_request(quantization="fp8").to_dict(), ["conv1", "fc"])
    runner = driver.QueueRunner(store, q.submit, q.get, q.cancel)
    driver.advance(study, runner)
    q.jobs["job0"].update(state="failed", error="TensorRT could not build engine 1/1")
    driver.advance(study, runner)
    assert study.status == "failed" and q.cancelled == ["job1"]
    assert study.summary() == "The localisation stopped: step 1 (unfixed) failed: TensorRT could not build engine 1/1."


# -- records and the CLI -------------------------------------------------------------------------------------------
# the bundled resnet50 fp16 runs recorded with their per-layer tables (relu forced to PyTorch, and as built)
LAYERED_RUNS = {"unfixed": "20261130-042639-a10bddc6", "reference": "20261130-042616-c27676ce"}


def test_bundle_carries_the_study_and_its_runs(store, tmp_path):
    runs = _ladder_runs(store)
    study = Localisation(
        "b", "2026-11-30T00:00:00+00:00", RunRequest.from_dict(store.get(runs["fp16/fp8"]).request).to_dict(), ["conv1"]
    )
    from engine.studies.localisation.study import Step

    # steps answered by stored runs that hold layer tables, so the bundle's dropping them shows
    runs = {"fp16/fp8": LAYERED_RUNS["unfixed"], "fp16/none": LAYERED_RUNS["reference"]}
    assert not store.get(runs["fp16/fp8"]).layers.empty and not store.get(runs["fp16/none"]).layers.empty
    study.steps = [
        Step(0, "unfixed", [], run_id=runs["fp16/fp8"], state="done"),
        Step(1, "reference", [], run_id=runs["fp16/none"], state="done"),
    ]
    blob = bundle(study, store)
    back, docs = read_bundle(blob)
    assert back.is_sample and [d["result"]["run_id"] for d in docs] == [runs["fp16/fp8"], runs["fp16/none"]]
    assert all(d["raw_files"] == {} and d["layers"]["data"] == [] for d in docs)  # no fix: no table kept
    samples = tmp_path / "samples" / "localisations"
    samples.mkdir(parents=True)
    (samples / "b.json.gz").write_bytes(blob)
    from engine.store import RunStore

    fresh = RunStore(tmp_path / "fresh")
    records = LocalisationRecords(tmp_path / "fresh")
    assert records.import_samples(fresh, tmp_path / "samples") == ["b"]
    assert records.load("b").is_sample and fresh.get(runs["fp16/fp8"]).is_sample
    assert fresh.get(runs["fp16/fp8"]).layers.empty and not store.get(runs["fp16/fp8"]).layers.empty
    assert records.import_samples(fresh, tmp_path / "samples") == ["b"]  # idempotent


@needs_modelopt
def test_cli_localises_on_the_pytorch_model_and_shows_it_again(tmp_path, monkeypatch, capsys):
    from engine.__main__ import main

    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    args = [
        "localise",
        "--model",
        "resnet18",
        "--batch",
        "4",
        "--input-shape",
        "3,32,32",
        "--quantization",
        "fp8",
        "--quant-base-precision",
        "fp16",
        "--calibration-batches",
        "1",
        "--tolerance",
        "0.5",
        "--pytorch",
        "--samples",
        "1",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "The fp8/fp16 build is already within tolerance" in out  # FP8 fake-quant departs by ~0.1 only
    assert "PyTorch side: fp16: every unit stays within rel. L2 0.5 of fp32" in out
    (listed,) = LocalisationRecords(tmp_path / "data").summaries()["localisation_id"]
    assert main(["localise", "--show", listed]) == 0 and "nothing to localise" in capsys.readouterr().out
    assert main(["localise", "--show", listed, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outcome"] == "nothing_to_fix"
    assert main([*args, "--keep-high-precision", "layer9"]) == 2
    assert "compile.keep_high_precision: the localisation chooses" in capsys.readouterr().err
    assert main(["localise", "--show", "nope"]) == 2 and "No localisation 'nope'" in capsys.readouterr().err


# -- labelled image folders ----------------------------------------------------------------------------------------
def _image_folder(root: Path, classes: dict[str, int], size=(40, 30)) -> Path:
    """``classes``: folder name -> number of images; each class a colour of its own."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    for k, (name, n) in enumerate(classes.items()):
        (root / name).mkdir()
        for i in range(n):
            Image.new("RGB", size, ((60 * k) % 256, (30 * i) % 256, 200)).save(root / name / f"{i}.png")
    return root


def test_imagefolder_layout_is_labelled_and_calibrates_from_every_class(tmp_path):
    from engine.quantization.image_folders import inspect_folder, load_labelled

    folder = _image_folder(tmp_path / "val", {"2": 2, "0": 3, "1": 1})
    (folder / "loose.png").write_bytes((folder / "0" / "0.png").read_bytes())
    layout = inspect_folder(folder)
    assert layout.labelled and layout.numbered and layout.classes == ("0", "1", "2")
    assert [f"{p.parent.name}/{p.name}" for p in layout.files] == [
        "0/0.png",
        "1/0.png",
        "2/0.png",
        "0/1.png",
        "2/1.png",
        "0/2.png",
    ]
    assert layout.labels == (0, 1, 2, 0, 2, 0)
    assert layout.describe() == (
        "6 images in 3 classes in val/ (folder names are output indices; 1 loose images "
        "beside the class folders ignored)"
    )
    named = inspect_folder(_image_folder(tmp_path / "pets", {"dog": 1, "cat": 1}))
    assert named.labels == (0, 1) and not named.numbered and "sorted order" in named.describe()
    labelled = load_labelled(folder, (3, 16, 16), limit=4)
    assert labelled.images.shape == (4, 3, 16, 16) and labelled.labels.tolist() == [0, 1, 2, 0]
    assert "(the first 4 of them)" in labelled.description
    data = calibration.load_calibration("dir:val", (torch.zeros(2, 3, 16, 16),), 2, directory=tmp_path)
    assert [b[0].shape[0] for b in data.batches] == [2, 2] and data.meaningful


@pytest.mark.parametrize(
    "make, problem",
    [
        (
            lambda d: [(d / "a").mkdir(), (d / "b").mkdir()],
            "bad/ has no classes: none of its subfolders (a, b) holds images",
        ),
        (
            lambda d: _image_folder(d, {"cat": 2}),
            "bad/ holds one class (cat/): top-1 accuracy against labels needs at least two",
        ),
        (
            lambda d: [_image_folder(d, {"cat": 1, "dog": 1}), (d / "emu").mkdir()],
            "the class folder emu/ holds no images",
        ),
        (lambda d: None, "bad/ holds no images"),
    ],
)
def test_bad_folders_are_refused_at_submit_naming_the_problem(tmp_path, monkeypatch, make, problem):
    from engine.quantization.image_folders import inspect_folder

    monkeypatch.setenv(calibration.CALIBRATION_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(schemes, "modelopt_installed", lambda: True)
    folder = tmp_path / "bad"
    folder.mkdir()
    make(folder)
    with pytest.raises(CalibrationDataError) as e:
        inspect_folder(folder)
    assert problem in e.value.message
    with pytest.raises(ConfigError) as e:
        runner.check_request(trt_request(quantization="fp8", calibration_data="dir:bad"), RTX)
    assert e.value.field == "compile.calibration_data" and problem in e.value.message


def test_an_unreadable_image_is_named_with_its_class_folder(tmp_path):
    from engine.quantization.image_folders import load_labelled

    folder = _image_folder(tmp_path / "val", {"0": 1, "1": 1})
    (folder / "1" / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(CalibrationDataError, match=r"val/1/broken.jpg is not a readable image"):
        load_labelled(folder, (3, 16, 16))


@needs_modelopt
def test_labelled_folder_gives_top1_against_labels_for_eager_fake_quant_and_engine(tmp_path, monkeypatch):
    from tests.test_quantization import tiny_model

    monkeypatch.setenv(calibration.CALIBRATION_DIR_ENV, str(tmp_path))
    _image_folder(tmp_path / "val", {"3": 4, "7": 3})
    model = tiny_model(batch=4)
    request = trt_request(
        quantization="int8", quant_base_precision="fp32", calibration_data="dir:val", calibration_batches=2
    )
    q = fake_quant.prepare_quantized(request, model, "cpu")
    assert q.calibration.meaningful and q.labelled is not None
    labels = q.labelled.images.labels
    with torch.no_grad():
        eager = model.module(q.labelled.images.images).argmax(1)
    no_engine = q.report().labelled
    assert no_engine.images == 7 and no_engine.classes == 2 and no_engine.engine_top1 is None
    assert no_engine.eager_top1 == pytest.approx(float((eager == labels).float().mean()))
    # the compiled module, batch 4 with a padded last batch: here the fake-quantized model stands in for it
    report = q.report(engine=q.module)
    assert report.labelled.engine_top1 == pytest.approx(report.labelled.fake_quant_top1)
    assert report.labelled.engine_agreement == pytest.approx(report.labelled.fake_quant_agreement)
    from engine.result import QuantizationReport

    assert QuantizationReport.from_dict(json.loads(json.dumps(__import__("dataclasses").asdict(report)))) == report
    _image_folder(tmp_path / "wide", {"3": 1, "12": 1})
    with pytest.raises(CalibrationDataError, match="has label 12, but the model predicts 10 classes"):
        fake_quant.prepare_quantized(request.with_changes(**{"compile.calibration_data": "dir:wide"}), model, "cpu")
