"""The whole generative path on CPU with a tiny configuration (eager): request checks, measurement, figures,
findings, the CLI and the store."""

import json

import pytest
import torch

from engine.errors import ConfigError
from engine.generative.configs import LLAMA_1B, TINY_LLAMA
from engine.generative.figures import (
    BackendFigures,
    DecodePoint,
    GenerativeRun,
    HostOverhead,
    MemoryFigures,
    PrefillPoint,
    Spread,
    TokenCheck,
)
from engine.generative.findings import findings, knee_batch
from engine.generative.request import GenerateRequest, check
from engine.generative.static_cache import bytes_per_token, estimate, largest_batch, weight_bytes

GIB = 2**30


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small_request(**kw) -> GenerateRequest:
    base = dict(
        model="hf/tiny-llama",
        precision="fp32",
        device="cpu",
        prompt_lengths=(8, 16),
        new_tokens=6,
        contexts=(32, 64),
        batch_sizes=(1, 2, 4),
        warmup_iters=1,
        timed_iters=3,
    )
    return GenerateRequest(**(base | kw))


# -- bad input, refused before anything is built ------------------------------------------------------------
def test_a_prompt_longer_than_the_positions_is_refused_naming_the_field():
    with pytest.raises(ConfigError) as e:
        check(small_request(prompt_lengths=(120,), new_tokens=20), TINY_LLAMA, None)
    assert e.value.field == "prompt_lengths" and "128" in e.value.message


def test_a_cache_longer_than_the_positions_is_refused():
    with pytest.raises(ConfigError) as e:
        check(small_request(contexts=(32, 4096)), TINY_LLAMA, None)
    assert e.value.field == "contexts"


def test_a_batch_times_cache_that_cannot_fit_is_refused_with_the_estimate():
    request = small_request(
        model="hf/llama-1b",
        precision="fp16",
        device="cuda",
        prompt_lengths=(128,),
        contexts=(8192,),
        batch_sizes=(1, 256),
    )
    need = estimate(LLAMA_1B, 256, 8192, "fp16")
    with pytest.raises(ConfigError) as e:
        check(request, LLAMA_1B, free_bytes=80 * GIB)
    assert e.value.field == "batch_sizes"
    assert f"{need.total_bytes / GIB:.1f} GiB" in e.value.message and "80.0 GiB free" in e.value.message
    check(
        small_request(
            model="hf/llama-1b",
            precision="fp16",
            device="cuda",
            prompt_lengths=(128,),
            contexts=(1024,),
            batch_sizes=(1, 4),
        ),
        LLAMA_1B,
        free_bytes=80 * GIB,
    )


def test_tensorrt_on_cpu_is_refused():
    with pytest.raises(ConfigError, match="need a GPU"):
        check(small_request(backend="tensorrt"), TINY_LLAMA, None)


def test_cache_bytes_and_the_largest_batch_that_fits():
    # Llama 3.2 1B shapes: 16 layers x 8 kv heads x 64 dims x 2 (k, v) x 2 bytes = 32 KiB per token
    assert bytes_per_token(LLAMA_1B, "fp16") == 32 * 1024
    assert 2.4e9 < weight_bytes(LLAMA_1B, "fp16") < 2.6e9  # ~1.24 B parameters
    free = 80 * GIB
    b = largest_batch(LLAMA_1B, 4096, "fp16", free)
    assert estimate(LLAMA_1B, b, 4096, "fp16").total_bytes <= free < estimate(LLAMA_1B, b + 1, 4096, "fp16").total_bytes


# -- findings from figures ------------------------------------------------------------------------------------
def spread(ms: float, gpu: float | None = None) -> Spread:
    return Spread(ms, ms * 0.9, ms * 1.1, 10, gpu)


def figures(name: str, step_ms: dict[int, float], host: HostOverhead | None = None, graph_ms: float | None = None):
    decode = [DecodePoint(256, 1, spread(step_ms[1]), None if graph_ms is None else spread(graph_ms))]
    batches = [decode[0]] + [DecodePoint(256, b, spread(ms)) for b, ms in step_ms.items() if b != 1]
    return BackendFigures(name, {}, [PrefillPoint(128, 256, spread(5.0))], decode, batches, host)


def run_of(backends: dict, checks=(), budget: float = 20.0) -> GenerativeRun:
    request = small_request(
        backend=next(iter(backends)),
        compare_with=tuple(backends)[1:],
        latency_budget_ms=budget,
        device="cuda",
        precision="fp16",
    )
    return GenerativeRun(
        "20260101-000000-0123abcd", "", request, TINY_LLAMA, {}, backends, list(checks), MemoryFigures(1, 2, None, {})
    )


def kinds(run):
    return {f.kind: f for f in findings(run)}


def test_launch_bound_decode_and_what_cuda_graphs_take_it_to():
    host = HostOverhead(e2e_ms=10.0, gpu_ms=3.8, enqueue_ms=9.0, graph_ms=4.0)
    f = kinds(run_of({"tensorrt": figures("tensorrt", {1: 10.0}, host, graph_ms=4.0)}))
    assert f["launch_bound"].figures["host_share"] == pytest.approx(0.62)
    assert f["graph_gain"].figures["speedup"] == pytest.approx(2.5)
    not_bound = HostOverhead(e2e_ms=10.0, gpu_ms=9.0, enqueue_ms=1.0, graph_ms=None)
    assert "launch_bound" not in kinds(run_of({"tensorrt": figures("tensorrt", {1: 10.0}, not_bound)}))


def test_speedup_against_each_other_backend_at_the_longest_context():
    run = run_of(
        {
            "tensorrt": figures("tensorrt", {1: 2.0}),
            "eager": figures("eager", {1: 4.2}),
            "inductor": figures("inductor", {1: 2.6}),
        }
    )
    speed = {f.figures["against"]: f.figures["speedup"] for f in findings(run) if f.kind == "decode_speedup"}
    assert speed == pytest.approx({"eager": 2.1, "inductor": 1.3})


def test_best_batch_under_the_budget_and_the_knee():
    # tokens/s: 100, 380, 1400, 1600 (batch 16 -> 32 doubles the batch for 14% more)
    steps = {1: 10.0, 4: 10.5, 16: 11.4, 32: 20.0}
    f = kinds(run_of({"eager": figures("eager", steps)}, budget=15.0))
    assert f["best_batch"].figures["batch"] == 16
    assert f["knee"].figures["batch"] == 16
    none_fit = kinds(run_of({"eager": figures("eager", steps)}, budget=5.0))["best_batch"]
    assert none_fit.figures["batch"] is None and none_fit.figures["smallest_step_ms"] == 10.0
    assert knee_batch(figures("eager", {1: 10.0, 2: 10.0, 4: 10.0}).batches) is None


def test_tokens_differ_names_where():
    check = TokenCheck("tensorrt", "eager", 32, 17, 0.03)
    f = kinds(run_of({"tensorrt": figures("tensorrt", {1: 2.0})}, checks=[check]))
    assert f["tokens_differ"].figures["first_difference"] == 17


# -- the whole path on CPU ----------------------------------------------------------------------------------
def test_whole_path_on_cpu_eager_measures_every_figure_and_round_trips(tmp_path, monkeypatch):
    from engine.generative import words
    from engine.generative.run import execute
    from engine.store import generative_runs

    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path))
    run = execute(small_request())
    eager = run.backends["eager"]
    assert [p.prompt_len for p in eager.prefill] == [8, 16]
    assert [p.context for p in eager.decode] == [32, 64]
    assert [p.batch for p in eager.batches] == [1, 2, 4]
    assert all(p.spread.median_ms > 0 and p.spread.p10_ms <= p.spread.p90_ms for p in eager.decode)
    assert set(eager.layer_split_ms) == {"attention", "mlp", "norms", "rest"}
    assert eager.layer_split_ms["attention"] > 0 and eager.layer_split_ms["mlp"] > 0
    assert len(eager.tokens[0]) == 6
    assert run.memory.kv_bytes_per_token == bytes_per_token(TINY_LLAMA, "fp32")
    assert {f.kind for f in findings(run)} >= {"best_batch", "memory"}
    assert all(isinstance(s, str) and s for s in words.verdict(run))
    generative_runs.save(run.to_dict())
    back = GenerativeRun.from_dict(generative_runs.get(run.run_id))
    assert back == run


def test_cli_profile_task_generate_stores_the_run_and_refuses_bad_input(tmp_path, monkeypatch, capsys):
    from engine.__main__ import main
    from engine.store import generative_runs

    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path))
    args = [
        "profile",
        "--task",
        "generate",
        "--model",
        "hf/tiny-gpt2",
        "--device",
        "cpu",
        "--prompt-lengths",
        "8",
        "--new-tokens",
        "4",
        "--contexts",
        "16",
        "--batch-sizes",
        "1,2",
        "--iters",
        "3",
        "--warmup",
        "1",
    ]
    assert main([*args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "generative" and doc["request"]["model"] == "hf/tiny-gpt2"
    assert [d["run_id"] for d in generative_runs.load_all()] == [doc["run_id"]]
    assert main(["runs"]) == 0
    assert doc["run_id"] in capsys.readouterr().out
    assert main([*args[:-8], "--prompt-lengths", "200"]) == 2
    err = capsys.readouterr().err
    assert "prompt_lengths" in err and "128" in err
    assert main(["profile", "--task", "generate", "--model", "hf/nope", "--device", "cpu"]) == 2
    assert "not a decoder" in capsys.readouterr().err


def test_a_model_file_whose_build_model_returns_a_body_without_head_is_a_clear_error(tmp_path, monkeypatch):
    from engine.generative.sources import load
    from engine.models.files import MODELS_DIR_ENV

    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path))
    (tmp_path / "tiny_decoder.py").write_text(
        "from engine.generative.configs import TINY_GPT2\n"
        "def build_model():\n    return TINY_GPT2.hf_dict() | {'model_type': 'gpt2'}\n"
    )
    (tmp_path / "encoder.py").write_text("import torch\ndef build_model():\n    return torch.nn.Linear(4, 4)\n")
    assert load("file:tiny_decoder.py").config.num_layers == 2
    with pytest.raises(Exception, match="not a causal LM"):
        load("file:encoder.py")


def test_tensorrt_engines_hold_their_own_weights_in_the_estimate():
    sizes = dict(model="hf/llama-1b", precision="fp16", device="cuda", prompt_lengths=(128,), contexts=(1024,),
                 batch_sizes=(1, 4))  # fmt: skip
    free = estimate(LLAMA_1B, 4, 1024, "fp16").total_bytes + GIB
    check(small_request(**sizes), LLAMA_1B, free)  # eager fits
    with pytest.raises(ConfigError, match="3 TensorRT engines' weights"):
        check(small_request(backend="tensorrt", **sizes), LLAMA_1B, free)


def test_bundled_samples_are_listed_after_the_stored_runs_and_can_be_turned_off(tmp_path, monkeypatch):
    from engine.store import generative_runs

    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRTDASH_SAMPLES_DIR", str(tmp_path / "samples"))
    doc = {"run_id": "20260101-000000-0123abcd", "kind": "generative"}
    generative_runs.save(doc | {"run_id": "20260101-000000-0123abce"})
    generative_runs.save(doc, tmp_path / "samples" / "generative")
    assert [d["run_id"] for d in generative_runs.load_all()] == ["20260101-000000-0123abce", doc["run_id"]]
    monkeypatch.setenv("TRTDASH_SAMPLES_DIR", str(tmp_path / "none"))
    assert len(generative_runs.load_all()) == 1
