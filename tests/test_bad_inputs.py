"""Issue 25: bad input on the command line (wrong knobs, shapes, dtypes, numbers, files) ends in a clear message
and exit code 2 before anything runs: no traceback, no silent accept.

``test_the_bad_cli_input_probe`` runs a table of bad ``profile`` command lines through ``engine.__main__.main`` in
this process, with the run itself replaced by a sentinel (a case that reaches it was accepted silently), and prints
the counts (``pytest -s``): tried, clear message, traceback, accepted. The cases that need a real process (the
CLI's exit code and store, model code that ends its process, a model file's load) run ``python -m engine``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import engine.__main__ as cli
from engine import capabilities, runner
from engine.errors import ConfigError, ModelError
from engine.models import files as models_files
from engine.models import load_limit, registry
from engine.settings.cli import knob_flag
from engine.settings.knobs import knob_info
from engine.settings.request import ModelSpec, RunRequest, all_knobs, validate
from engine.store import RunStore

ROOT = Path(__file__).resolve().parent.parent
RAM_24_GIB = 24 * 2**30


class WouldRun(BaseException):  # noqa: N818 - a sentinel, not an error: main() must not catch it
    """Raised where the profile would start running: the input was accepted."""


@pytest.fixture
def cli_without_runs(tmp_path, monkeypatch):
    """``main`` as the CLI runs it, on a 24 GiB CPU machine, whose runs never start (``WouldRun``)."""
    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    models = tmp_path / "models"
    models.mkdir()
    (models / "_hidden.py").write_text(TINY_MODEL)
    (models / "tiny.py").write_text(TINY_MODEL)
    (models / "notes.txt").write_text("not a model")
    monkeypatch.setenv(models_files.MODELS_DIR_ENV, str(models))
    monkeypatch.setattr(capabilities, "ram_bytes", lambda: RAM_24_GIB)

    def would_run(*args, **kwargs):
        raise WouldRun

    monkeypatch.setattr(cli, "execute", would_run)
    monkeypatch.setattr(cli, "_profile_in_child", would_run)
    return tmp_path


TINY_MODEL = """
import torch


def build_model():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())


def example_inputs(batch_size):
    return (torch.randn(batch_size, 3, 16, 16),)
"""


# -- the table ---------------------------------------------------------------------------------------------------
def _numeric_cases() -> list[tuple[list[str], str]]:
    """Every integer knob with values out of its range, not finite, not integers, not numbers."""
    cases = []
    words = ["nan", "NaN", "inf", "-inf", "infinity", "1.5", "1e3", "abc", "0x10", "1_000", "9" * 40, "²", "1,2"]
    for dotted, f in all_knobs():
        info = knob_info(f)
        if info.kind != "int":
            continue
        flag = knob_flag(dotted)
        bad = list(words) + ([] if info.nullable else [""])
        if info.min is not None:
            bad.append(str(info.min - 1))
        if info.max is not None:
            bad.append(str(info.max + 1))
        cases += [([flag, value], dotted) for value in bad]
    return cases


def _choice_and_bool_cases() -> list[tuple[list[str], str]]:
    cases = []
    for dotted, f in all_knobs():
        info = knob_info(f)
        flag = knob_flag(dotted)
        if info.kind == "choice":
            cases += [([flag, v], dotted) for v in ("", "none", "FP16 ", "xyz", "1") if v not in info.choices]
        elif info.kind == "bool":
            cases += [([flag, v], dotted) for v in ("", "2", "maybe", "nan")]
    return cases


TIMEOUTS = ["nan", "inf", "-inf", "-1", "0", "0.0", "abc", "", "1e400", "1e10", "-0", "NaN", "1,5"]

SHAPES = [
    "0,224,224",
    "-1,224,224",
    "3,0,224",
    "3,224,224,1,1,1,1",
    "3,99999,224",
    "a,b,c",
    "3.5,224,224",
    "[3,224,224]",
    "3;224;224",
    "nan,224,224",
    "3,16384,16384",  # fits no 24 GiB machine: the first activation alone is 16 GiB, held with the next
    "9" * 50,
]

INPUTS = [
    "[",
    "{}",
    "[]",
    '"x"',
    "[1, 2]",
    '[{"shape": [1, 3, 8, 8]}]',
    '[{"name": "x", "shape": [1, 3, 8, 8], "dtype": "float64"}]',
    '[{"name": "x", "shape": [1, 3, 8, 8], "dtype": "complex64"}]',
    '[{"name": "x", "shape": [1, 3, 8, 8], "dtype": 5}]',
    '[{"name": "x", "shape": []}]',
    '[{"name": "x", "shape": [0, 3]}]',
    '[{"name": "x", "shape": [1, 3], "min_shape": [2, 3], "max_shape": [4, 3]}]',
    '[{"name": "x", "shape": [1, 3], "min_shape": [1, 3]}]',
    '[{"name": "x", "shape": [1, 3], "value_range": [0, 5]}]',
    '[{"name": "x", "shape": [1, 3], "dtype": "int32", "value_range": [0, 99999999999]}]',
    '[{"name": "x", "shape": [1, 3], "extra": 1}]',
    '[{"name": "1x", "shape": [1, 3]}]',
    '[{"name": "x", "shape": [1, 3]}, {"name": "x", "shape": [1, 3]}]',
    '[{"name": "x", "shape": [1, 3], "dim_names": ["a b", ""]}]',
    '[{"name": "x", "shape": [NaN, 3]}]',
    '[{"name": "x", "shape": [Infinity, 3]}]',
    '[{"name": "x", "shape": [1.5, 3]}]',
]

MODELS = [
    "",
    " ",
    "resnet19",
    "file:_hidden.py",
    "file:../etc/passwd",
    "file:missing.py",
    "file:notes.txt",
    "file:",
    "file:sub/x.py",
    "timm/not_a_model",
    "torchvision.models.resnet18",
    "RESNET18",
    "resnet18; rm -rf /",
]

OPS = [
    "relu",
    "torch.ops.aten.nonexistent.default",
    "torch.ops.aten.relu.bogus",
    "torch.ops.aten.relu.__class__",
    "torch.ops.foo.bar.default",
    "os.system",
    "torch.ops.aten",
    "__import__('os')",
]

OTHERS: list[tuple[list[str], str]] = [
    (["--batchsize", "4"], "--batchsize"),
    (["--precision"], "--precision"),
    (["--model"], "--model"),
    (["--timeout"], "--timeout"),
    (["--mode", "analyze"], "mode"),
    (["--quantization", "int8"], "compile.quantization"),
    (["--reuse-cached-engines", "true"], "compile.reuse_cached_engines"),
    (["--backend", "tensorrt"], "backend"),
    (["--device", "cuda"], "device"),
    (["--timed-iters", "100000", "--batch", "4096"], "measure.timed_iters"),
    (["--sequence-length", "128"], "model.sequence_length"),
    (["--keep-high-precision", "a b"], "compile.keep_high_precision"),
    (["--keep-high-precision", "../x"], "compile.keep_high_precision"),
    (["--batch", "4096"], "model.batch_size"),  # resnet18 at 224: 24.5 GiB of activations
]


def probe_cases() -> list[tuple[list[str], str]]:
    """(arguments after ``profile --device cpu``, what the message must name: a field, an option or a value)."""
    return [
        *_numeric_cases(),
        *_choice_and_bool_cases(),
        *[(["--timeout", t], "--timeout") for t in TIMEOUTS],
        *[(["--input-shape", s], "model.input_shape") for s in SHAPES],
        *[(["--inputs", i], "model.inputs") for i in INPUTS],
        *[(["--model", m], "model.source") for m in MODELS],
        *[(["--torch-executed-ops", o], "compile.torch_executed_ops") for o in OPS],
        *OTHERS,
    ]


def _outcome(argv: list[str], capsys) -> tuple[str, str]:
    """("clear" | "traceback" | "accepted" | "unclear", what was printed)."""
    try:
        code = cli.main(["profile", "--device", "cpu", *argv])
    except WouldRun:
        return "accepted", ""
    except SystemExit as e:  # argparse's own errors
        code = e.code
    except Exception as e:  # noqa: BLE001 - what the probe looks for
        return "traceback", f"{type(e).__name__}: {e}"
    err = capsys.readouterr().err
    if "Traceback" in err:
        return "traceback", err
    return ("clear" if code == 2 and "error:" in err else "unclear"), err


def test_the_bad_cli_input_probe(cli_without_runs, capsys):
    cases = probe_cases()
    assert len(cases) >= 250
    results = {"clear": 0, "traceback": 0, "accepted": 0, "unclear": 0}
    problems = []
    for argv, names in cases:
        kind, err = _outcome(argv, capsys)
        flag = names if names.startswith("-") else knob_flag(names) if "." in names or names in ("mode",) else names
        if kind == "clear" and not any(n in err for n in (names, flag, names.rsplit(".", 1)[-1])):
            kind = "unclear"  # an error that does not say which setting is wrong
        results[kind] += 1
        if kind != "clear":
            problems.append((argv, kind, err[-300:]))
    with capsys.disabled():
        print(
            f"\nbad CLI inputs: {len(cases)} tried, {results['clear']} clear message (exit 2, naming the setting), "
            f"{results['traceback']} traceback, {results['accepted']} accepted silently, {results['unclear']} unclear"
        )
    assert not problems, problems


STUDY_NUMBERS = {
    "localise": ["--tolerance", "--min-top1", "--max-builds", "--samples"],
    "autotune": ["--trials", "--max-build-s", "--max-rel-l2", "--search-seed"],
}


def test_the_study_commands_numbers_are_refused_by_their_parsers(capsys):
    """localise and autotune: each numeric option of their own, not finite, negative, out of range or no number,
    is argparse's error (exit 2, naming the option) before anything runs."""
    from engine.studies.autotune.cli import _parser as autotune_parser
    from engine.studies.localisation.cli import parser as localise_parser

    parsers = {"localise": localise_parser, "autotune": autotune_parser}
    tried = clear = 0
    for command, flags in STUDY_NUMBERS.items():
        for flag in flags:
            for value in ("nan", "inf", "-inf", "-1", "1e400", "abc", "", "1e12"):
                tried += 1
                with pytest.raises(SystemExit) as e:
                    parsers[command]().parse_args([flag, value])
                err = capsys.readouterr().err
                clear += e.value.code == 2 and f"argument {flag}" in err
    with capsys.disabled():
        print(f"\nbad study-command numbers: {tried} tried, {clear} clear message (exit 2, naming the option)")
    assert clear == tried


def test_a_good_command_line_reaches_the_run(cli_without_runs, capsys):
    """The probe's sentinel is reached by good input: an 'accepted' count would mean something."""
    for argv in (["--batch", "2"], ["--input-shape", "3,64,64", "--timeout", "30"], ["--model", "file:tiny.py"]):
        assert _outcome(argv, capsys)[0] == "accepted", argv


# -- cases that need a real process ----------------------------------------------------------------------------
def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # only a hang reaches this
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


@pytest.mark.parametrize("timeout", ["nan", "inf", "-1", "0"])
def test_a_timeout_that_is_no_time_exits_2_and_stores_nothing(timeout, tmp_path):
    data = tmp_path / "data"
    out = _cli("profile", "--device", "cpu", "--timeout", timeout, env={"TRTDASH_DATA_DIR": str(data)})
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert "argument --timeout" in out.stderr and "Traceback" not in out.stderr
    assert not data.exists() or len(RunStore(data).list_runs()) == 0


def test_model_code_that_ends_its_process_is_named_with_the_stage(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "exits7.py").write_text(
        "import os\n\ndef build_model():\n    os._exit(7)\n\ndef example_inputs(batch_size):\n    return ()\n"
    )
    data = tmp_path / "data"
    out = _cli(
        "profile",
        "--model",
        "file:exits7.py",
        "--device",
        "cpu",
        env={models_files.MODELS_DIR_ENV: str(models), "TRTDASH_DATA_DIR": str(data)},
    )
    assert out.returncode == 1, (out.returncode, out.stderr[-2000:])
    assert "exited with code 7 during build_model" in out.stderr and "file:exits7.py" in out.stderr, out.stderr
    assert "hint:" in out.stderr and "Traceback" not in out.stderr
    assert len(RunStore(data).list_runs()) == 0


# -- each unclear case of the issue, by itself ----------------------------------------------------------------------
def _check(data: dict) -> None:
    runner.check_request(validate(RunRequest.from_dict(data)), capabilities.detect())


def test_an_op_that_does_not_exist_is_refused_on_the_eager_backend_too():
    for backend in ("eager", "tensorrt"):
        with pytest.raises(ConfigError) as e:
            _check(
                {
                    "backend": backend,
                    "device": "cpu",
                    "compile": {"torch_executed_ops": ["torch.ops.aten.nonexistent.default"]},
                }
            )
        assert e.value.field == "compile.torch_executed_ops" and "nonexistent" in e.value.message
    _check({"device": "cpu", "compile": {"torch_executed_ops": ["torch.ops.aten.relu.default", "torch.ops.aten.add"]}})


def test_a_hidden_model_file_is_refused_by_name_wherever_the_picker_hides_it(tmp_path, monkeypatch):
    (tmp_path / "_hidden.py").write_text(TINY_MODEL)
    monkeypatch.setenv(models_files.MODELS_DIR_ENV, str(tmp_path))
    assert models_files.custom_model_files() == []
    with pytest.raises(ConfigError) as e:
        _check({"device": "cpu", "model": {"source": "file:_hidden.py"}})
    assert e.value.field == "model.source" and "_hidden.py" in e.value.message and "hidden" in e.value.message
    with pytest.raises(ModelError, match="hidden"):
        registry.build(ModelSpec(source="file:_hidden.py"))


@pytest.mark.parametrize(
    ("returns", "said"),
    [
        ("None", "returned None"),
        ("[]", "returned an empty list"),
        ("(torch.zeros(1), 'x')", "returned a tuple of (Tensor, str)"),
        ("{'x': torch.zeros(1)}", "returned a dict"),
    ],
)
def test_example_inputs_that_are_not_tensors_are_named(returns, said, tmp_path, monkeypatch):
    (tmp_path / "bad.py").write_text(
        "import torch\n\ndef build_model():\n    return torch.nn.ReLU()\n\n"
        f"def example_inputs(batch_size):\n    return {returns}\n"
    )
    monkeypatch.setenv(models_files.MODELS_DIR_ENV, str(tmp_path))
    with pytest.raises(ModelError) as e:
        registry.build(ModelSpec(source="file:bad.py"))
    assert e.value.message.startswith("bad.py: example_inputs(1) " + said), e.value.message
    assert "expected a tensor or a non-empty tuple of tensors" in e.value.message and e.value.hint


def test_build_model_that_returns_no_module_is_named(tmp_path, monkeypatch):
    (tmp_path / "none.py").write_text(
        "import torch\n\ndef build_model():\n    return None\n\ndef example_inputs(batch_size):\n"
        "    return torch.zeros(batch_size, 3)\n"
    )
    monkeypatch.setenv(models_files.MODELS_DIR_ENV, str(tmp_path))
    with pytest.raises(ModelError) as e:
        registry.build(ModelSpec(source="file:none.py"))
    assert e.value.message.startswith("none.py: build_model() returned None; expected a torch.nn.Module")


def test_an_input_shape_that_cannot_fit_is_refused_with_the_estimate_and_the_limit(monkeypatch):
    """resnet18 at 3x16384x16384 on a 24 GiB CPU machine: its first activation alone is 16 GiB."""
    monkeypatch.setattr(capabilities, "ram_bytes", lambda: RAM_24_GIB)
    with pytest.raises(ConfigError) as e:
        _check({"device": "cpu", "model": {"source": "resnet18", "input_shape": "3,16384,16384"}})
    assert e.value.field == "model.input_shape"
    assert "needs at least 35.0 GiB of RAM" in e.value.message and "activations 32.0 GiB" in e.value.message
    assert "24.0 GiB" in e.value.message
    _check({"device": "cpu", "model": {"source": "resnet18", "input_shape": "3,2048,2048"}})


def test_the_gpu_estimate_counts_the_workspace_and_half_size_activations(monkeypatch):
    from engine.models import memory

    request = validate(
        RunRequest.from_dict(
            {
                "backend": "tensorrt",
                "device": "cuda",
                "model": {"input_shape": "3,8192,8192"},
                "compile": {"precision": "fp16", "workspace_size": 8 * 2**30},
            }
        )
    )
    limits = memory.limits_for(request, ram_bytes=RAM_24_GIB, gpu_memory_bytes=12 * 2**30)
    assert limits.workspace_bytes == 8 * 2**30 and limits.gpu_activation_scale == 0.5
    with pytest.raises(ConfigError) as e:
        memory.check_footprint(request, limits)
    assert "of GPU memory" in e.value.message and "builder workspace 8.0 GiB" in e.value.message
    assert "activations 4.0 GiB" in e.value.message and "machine's 12.0 GiB" in e.value.message


# -- through the queue: the job fails with the reason, the worker takes the next job ------------------------------
def _file_request(name: str) -> RunRequest:
    return RunRequest.from_dict(
        {
            "device": "cpu",
            "model": {"source": f"file:{name}"},
            "measure": {"warmup_iters": 1, "timed_iters": 5, "layer_profile": False, "accuracy": False},
        }
    )


def _finished(system, job_id: str):
    from test_jobs import finished

    return finished(system, job_id, 300)  # only a job that never ends reaches this


@pytest.mark.slow
def test_bad_model_files_fail_their_jobs_with_the_reason_and_the_worker_goes_on(system, tmp_path, monkeypatch):
    from test_pt2_files import save_plain_files, with_huge_expression

    models = tmp_path / "models"
    models.mkdir()
    with_huge_expression(save_plain_files(tmp_path), models / "sympy.pt2")
    (models / "exits7.py").write_text(
        "import os\n\ndef build_model():\n    os._exit(7)\n\ndef example_inputs(batch_size):\n    return ()\n"
    )
    (models / "_hidden.py").write_text(TINY_MODEL)
    (models / "tiny.py").write_text(TINY_MODEL)
    monkeypatch.setenv(models_files.MODELS_DIR_ENV, str(models))
    with pytest.raises(ConfigError, match="hidden"):
        system.submit(_file_request("_hidden.py"), start_workers=False)
    system.ensure_workers()
    sympy_job, exits_job, tiny_job = (system.submit(_file_request(n)) for n in ("sympy.pt2", "exits7.py", "tiny.py"))
    sympy_done, exits_done, tiny_done = (_finished(system, j.job_id) for j in (sympy_job, exits_job, tiny_job))
    assert sympy_done.state == "failed" and "sympy.pt2 was not loaded" in sympy_done.error, sympy_done.error
    assert "too large to compute" in sympy_done.error and sympy_done.hint
    assert exits_done.state == "failed" and "exited with code 7 during build_model" in exits_done.error
    assert tiny_done.state == "done", (tiny_done.error, tiny_done.traceback)


@pytest.mark.slow
def test_a_load_past_its_limit_fails_its_job_and_the_worker_takes_the_next(system, tmp_path, monkeypatch):
    """The limit set far below any load (1 ms): the job process is ended by the kernel at it, the worker says why."""
    from test_pt2_files import save_plain_files

    models = tmp_path / "models"
    models.mkdir()
    save_plain_files(models)
    (models / "tiny.py").write_text(TINY_MODEL)
    monkeypatch.setenv(models_files.MODELS_DIR_ENV, str(models))
    monkeypatch.setenv(load_limit.LIMIT_ENV, "0.001")  # the workers and their job processes inherit it
    system.ensure_workers()
    slow, nxt = system.submit(_file_request("lin.pt2")), system.submit(_file_request("tiny.py"))
    slow_done, nxt_done = _finished(system, slow.job_id), _finished(system, nxt.job_id)
    assert slow_done.state == "failed" and "took longer than its 0.001 s limit" in slow_done.error, slow_done.error
    assert load_limit.LIMIT_ENV in slow_done.hint
    assert nxt_done.state == "done", (nxt_done.error, nxt_done.traceback)
