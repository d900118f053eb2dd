"""Our static-cache decoders against Hugging Face's own models: the same random weights give the same logits, and
prefill + decode steps over the static cache give the same greedy tokens as ``generate``."""

import pytest
import torch

transformers = pytest.importorskip("transformers")

from engine.generative import checks  # noqa: E402
from engine.generative.configs import TINY_GPT2, TINY_LLAMA, DecoderConfig  # noqa: E402
from engine.generative.measure import Programs, generate  # noqa: E402
from engine.generative.models import NoCausalLMHead, as_decoder, build, load_hf_state_dict  # noqa: E402
from engine.generative.request import GenerateRequest  # noqa: E402

STEPS = 12
PROMPT = 7


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # two cores shared by many processes: more threads only contend
    yield
    torch.set_num_threads(before)


def hf_model(config: DecoderConfig, seed: int = 0):
    torch.manual_seed(seed)
    extra = {"bos_token_id": None, "eos_token_id": None, "pad_token_id": None}
    if config.arch == "gpt2":
        return transformers.GPT2LMHeadModel(transformers.GPT2Config(**config.hf_dict(), **extra)).eval()
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(**config.hf_dict(), **extra)).eval()


def ours_from(hf, config):
    model = build(config, seed=123)  # other random weights: only the load makes them equal
    load_hf_state_dict(model, hf.state_dict())
    return model


@pytest.mark.parametrize("config", [TINY_GPT2, TINY_LLAMA], ids=["gpt2", "llama"])
def test_prefill_and_decode_logits_equal_transformers(config):
    hf = hf_model(config)
    ours = ours_from(hf, config)
    ids = torch.randint(0, config.vocab_size, (2, PROMPT), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits, keys, values = ours.prefill(ids, 32)
        torch.testing.assert_close(logits, hf(ids).logits[:, -1], rtol=1e-4, atol=1e-5)
        assert keys.shape == (config.num_layers, 2, config.num_kv_heads, 32, config.head_dim)
        seq = ids
        for _ in range(5):
            token = logits.argmax(-1, keepdim=True)
            position = torch.tensor([seq.shape[1]])
            seq = torch.cat([seq, token], 1)
            logits, keys, values = ours.decode(token, position, keys, values)
            torch.testing.assert_close(logits, hf(seq).logits[:, -1], rtol=1e-4, atol=1e-5)
        assert keys.shape[3] == 32  # the cache never grows


@pytest.mark.parametrize("config", [TINY_GPT2, TINY_LLAMA], ids=["gpt2", "llama"])
def test_greedy_tokens_equal_transformers_generate(config):
    hf = hf_model(config)
    ours = ours_from(hf, config)
    request = GenerateRequest(
        "test", precision="fp32", device="cpu", prompt_lengths=(PROMPT,), new_tokens=STEPS, contexts=(32,)
    )
    programs = Programs(ours, "eager", "cpu", seed=0)
    ours_out = generate(programs, request)
    prompt = programs.prompt(1, PROMPT).clone()
    with torch.no_grad():
        hf_out = hf.generate(
            prompt,
            max_new_tokens=STEPS,
            do_sample=False,
            attention_mask=torch.ones_like(prompt),
            output_logits=True,
            return_dict_in_generate=True,
        )
    hf_tokens = hf_out.sequences[:, PROMPT:]
    assert ours_out.tokens.shape == (1, STEPS)
    assert torch.equal(ours_out.tokens, hf_tokens)
    check = checks.compare("eager", ours_out.tokens, ours_out.logits, "transformers", hf_tokens, list(hf_out.logits))
    assert check.equal and check.logits_rel_error < 1e-5


def test_a_hugging_face_causal_lm_from_build_model_becomes_ours_with_the_same_logits():
    hf = hf_model(TINY_LLAMA)
    ours = as_decoder(hf)
    ids = torch.randint(0, TINY_LLAMA.vocab_size, (1, 5), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(ours.prefill(ids, 16)[0], hf(ids).logits[:, -1], rtol=1e-4, atol=1e-5)
    assert ours.config == TINY_LLAMA.replace(tie_embeddings=False)


def test_a_model_without_a_causal_lm_head_is_refused():
    body = transformers.GPT2Model(transformers.GPT2Config(**TINY_GPT2.hf_dict()))
    with pytest.raises(NoCausalLMHead, match="no causal-LM head"):
        as_decoder(body)
    with pytest.raises(NoCausalLMHead, match="not a causal LM"):
        as_decoder(torch.nn.Linear(2, 2))


def test_config_from_hf_values_reads_both_families():
    assert DecoderConfig.from_hf(transformers.GPT2Config().to_dict()).hidden_size == 768
    llama = DecoderConfig.from_hf(transformers.LlamaConfig(num_key_value_heads=8).to_dict())
    assert (llama.arch, llama.num_kv_heads) == ("llama", 8)
    assert DecoderConfig.from_hf(TINY_LLAMA.hf_dict()) == TINY_LLAMA


def test_tokens_check_names_the_first_difference_and_the_error_there():
    ref = torch.tensor([[1, 2, 3, 4]])
    logits = [torch.eye(5)[i : i + 1] for i in range(4)]
    other = [t.clone() for t in logits]
    other[2] = other[2] * 0.5
    check = checks.compare("tensorrt", torch.tensor([[1, 2, 9, 4]]), other, "eager", ref, logits)
    assert (check.equal, check.first_difference) == (False, 2)
    assert check.logits_rel_error == pytest.approx(0.5)


@pytest.mark.slow  # two inductor compiles on CPU: minutes on a loaded machine
def test_exported_programs_are_what_tensorrt_gets_and_inductor_tokens_equal_eager():
    """torch.export of the decode program (Torch-TensorRT's input) runs equal to eager, and the compiled decoder
    (inductor, on CPU; grouped-query attention and RoPE) generates eager's greedy tokens, with the logits this
    close."""
    config = TINY_LLAMA
    from engine.generative.programs import DecodeProgram, export_program

    ours = build(config)
    request = GenerateRequest("test", precision="fp32", device="cpu", prompt_lengths=(PROMPT,), new_tokens=6,
                              contexts=(16,))  # fmt: skip
    eager = Programs(ours, "eager", "cpu", seed=0)
    inputs = eager.decode_inputs(1, 16)
    with torch.inference_mode():
        exported = export_program(DecodeProgram(ours), inputs).module()
        for a, b in zip(exported(*inputs), ours.decode(*inputs), strict=True):
            torch.testing.assert_close(a, b)
    reference = generate(eager, request)
    compiled = generate(Programs(ours, "inductor", "cpu", seed=0), request)
    check = checks.compare("inductor", compiled.tokens, compiled.logits, "eager", reference.tokens, reference.logits)
    assert check.equal and check.logits_rel_error < 1e-4, check
