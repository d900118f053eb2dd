"""Localisations for the tests, made here for real: the INT8 outlier resnet18 searched on the fake-quantized model
(ModelOpt on the CPU), and a queue answered by stored runs. Imported under one name by every test module, so the
study is measured once per test process."""

from __future__ import annotations

import functools
import json
from unittest import mock

import torch

from engine.models import entry, registry
from engine.settings.identity import cache_key
from engine.settings.request import ModelSpec, RunRequest
from engine.studies.localisation import driver
from engine.studies.localisation.figures import Criterion
from engine.studies.localisation.study import Localisation

SMALL = {"source": "resnet18", "batch_size": 8, "input_shape": [3, 32, 32]}


def trt_request(model: dict | None = None, **compile_knobs) -> RunRequest:
    return RunRequest.from_dict(
        {"model": model or SMALL, "backend": "tensorrt", "device": "cuda", "compile": compile_knobs}
    )


def int8_broken_resnet18() -> entry.BuiltModel:
    """resnet18 with an activation outlier: channel 5 of layer2.1.conv1 is 1000x larger and layer2.1.conv2 ignores it,
    so INT8's per-tensor input scale of layer2.1.conv2 crushes every other channel to zero (the outlier failure of
    W8A8). Keeping that one module unquantized fixes it."""
    model = registry.build(ModelSpec(**{**SMALL, "input_shape": (3, 32, 32)}), 0)
    with torch.no_grad():
        model.module.layer2[1].conv1.weight[5] *= 1000.0
        model.module.layer2[1].conv2.weight[:, 5] = 0
    return model


@functools.lru_cache(maxsize=1)
def _outlier_study_json() -> str:
    model = int8_broken_resnet18()
    request = trt_request(quantization="int8", quant_base_precision="fp32", calibration_batches=2)
    with mock.patch.object(registry, "build", lambda *a, **k: model):
        study = driver.plan(
            request,
            criterion=Criterion(0.1),
            localisation_id="outlier",
            measured_on="fake-quantized PyTorch model (cpu)",
        )
    driver.run(study, driver.PyTorchRunner(model=model), poll_s=0)
    return json.dumps(study.to_dict())


def outlier_study() -> Localisation:
    """The INT8 outlier resnet18 localised on the fake-quantized model here (measured once per test process)."""
    return Localisation.from_dict(json.loads(_outlier_study_json()))


class RecordedQueue:
    """Jobs answered by stored runs: ``answers`` maps a request's cache key to a run id (the recorded H200 runs);
    other requests stay queued until the test finishes them. ``cancel`` cancels."""

    def __init__(self, answers: dict[str, str]):
        self.answers, self.requests, self.jobs, self.cancelled = answers, [], {}, []

    def submit(self, request):
        job_id = f"job{len(self.requests)}"
        self.requests.append(request)
        run = self.answers.get(_key(request))
        self.jobs[job_id] = {"state": "done" if run else "queued", "run_id": run, "error": None, "detail": ""}
        return job_id

    def get(self, job_id):
        return dict(self.jobs[job_id])

    def cancel(self, job_id):
        self.cancelled.append(job_id)
        if self.jobs[job_id]["state"] in ("queued", "running"):
            self.jobs[job_id]["state"] = "cancelled"


def _key(request: RunRequest) -> str:
    return cache_key(request, {}, request.model.source)


class ScriptedRunner:
    """Steps answered at once by ``answer(request)``, without a GPU or a store: the build's ``StepFigures``, a string
    (the job failed with that error: a crash), or None (the job stays queued)."""

    measured_on = "engine"

    def __init__(self, answer):
        self.answer, self.requests, self.answers, self.cancelled = answer, [], {}, []

    def submit(self, request):
        handle = f"s{len(self.requests)}"
        self.requests.append(request)
        self.answers[handle] = self.answer(request)
        return handle, False

    def poll(self, handle):
        from engine.studies.group import JobView

        a = self.answers[handle]
        if a is None:
            return JobView("queued")
        return JobView("failed", None, a) if isinstance(a, str) else JobView("done")

    def figures(self, handle, view):
        return self.answers[handle]

    def cancel(self, handle):
        self.cancelled.append(handle)

    def tag(self, run_id, tags):
        return None


def recorded_answers(study: Localisation):
    """``ScriptedRunner`` answers from a recorded study: each build it made gets its recorded figures (or its job's
    error); builds it never made stay queued."""
    by_set = {}
    for s in study.steps:
        key = ("reference",) if s.role == "reference" else tuple(sorted(s.kept))
        by_set[key] = s.figures if s.figures is not None else s.why

    def answer(request: RunRequest):
        if request.compile.quantization == "none":
            return by_set.get(("reference",))
        return by_set.get(tuple(sorted(request.compile.keep_high_precision)))

    return answer
