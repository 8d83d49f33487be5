"""Backbone resolution, dtype/attention choice, tiny Llama and LoRA."""
from __future__ import annotations

import pytest
import torch

from lr_core.backbone import (LoraSettings, add_lora, load_backbone, pick_attention, pick_dtype, resolve_backbone,
                              smollm2_gguf_path, tiny_llama)
from lr_core.errors import ConfigError


def test_default_backbone_is_the_gguf_in_the_wheel():
    spec = resolve_backbone("smollm2-135m-instruct")
    assert spec.gguf_file == smollm2_gguf_path().name and spec.gguf_file.endswith(".gguf")
    assert smollm2_gguf_path().stat().st_size > 50_000_000


def test_gguf_path_and_directory_are_understood(tmp_path):
    spec = resolve_backbone(str(smollm2_gguf_path()))
    assert spec.gguf_file == smollm2_gguf_path().name
    with pytest.raises(ConfigError, match="no config.json"):
        resolve_backbone(str(tmp_path))
    with pytest.raises(ConfigError, match="not found"):
        resolve_backbone(str(tmp_path / "missing.gguf"))
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_backbone("./no/such/model")


def test_unknown_model_name_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="no-such-org/no-such-model"):
        load_backbone("no-such-org/no-such-model")


def test_dtype_and_attention_are_explicit():
    assert pick_dtype("cpu") == torch.float32
    assert pick_dtype("cuda") == torch.bfloat16
    assert pick_dtype("cpu", "bf16") == torch.bfloat16
    with pytest.raises(ConfigError, match="unknown dtype"):
        pick_dtype("cpu", "float8")
    assert pick_attention("cpu") == "sdpa"


def test_lora_on_all_linear_layers_with_frozen_head(tokenizer):
    model = add_lora(tiny_llama(vocab_size=tokenizer.vocab_size), LoraSettings())
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    wrapped = {n.split(".")[-4] for n in trainable if n.endswith("lora_A.default.weight")}
    assert wrapped == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert not model.get_output_embeddings().weight.requires_grad
    lora_a = next(m for n, m in model.named_modules() if n.endswith("q_proj"))
    assert lora_a.r["default"] == 16 and lora_a.scaling["default"] == 32 / 16


@pytest.mark.slow
def test_smollm2_loads_with_expected_shape(smollm2_encoder):
    cfg = smollm2_encoder.lm.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size) == (576, 30, 49152)
    assert smollm2_encoder.lm_head_weight.dtype == torch.float32


def _flash_attn_installed(monkeypatch, installed: bool = True):
    """Make ``importlib.util.find_spec("flash_attn")`` answer as if flash-attn were (not) installed."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (object() if installed else None) if name == "flash_attn" else real(name, *a))


def test_auto_attention_is_flash_attn_on_cuda_when_installed(monkeypatch):
    _flash_attn_installed(monkeypatch)
    assert pick_attention("cuda") == pick_attention("cuda:1") == pick_attention(torch.device("cuda", 0)) \
        == "flash_attention_2"
    assert pick_attention("cpu") == "sdpa"  # flash-attn has no CPU kernels
    assert pick_attention("cuda", "sdpa") == "sdpa"  # an explicit choice wins
    _flash_attn_installed(monkeypatch, installed=False)
    assert pick_attention("cuda") == "sdpa"


def test_the_tiny_backbone_takes_the_attention_asked_for():
    model, _ = load_backbone("tiny-llama", attn="eager")
    assert model.config._attn_implementation == "eager"
    assert load_backbone("tiny-llama")[0].config._attn_implementation == "sdpa"


class _Stop(Exception):
    pass


def _record_attention(encoder, seen, stop=False):
    """Pre-hooks on every attention layer recording the implementation it runs with (and stopping there)."""
    def hook(module, args, kwargs):
        seen.append(module.config._attn_implementation)
        if stop:
            raise _Stop

    return [layer.self_attn.register_forward_pre_hook(hook, with_kwargs=True) for layer in encoder.decoder.layers]


def test_light_queries_run_on_sdpa_whatever_the_backbone_was_loaded_with(tokenizer):
    """A backbone loaded with flash-attention 2 (CUDA, flash-attn installed) keeps it for documents and
    full queries, while the light-query block mask (training, serving, the vocabulary cache) runs on SDPA
    for that call only, giving what an SDPA backbone gives."""
    from lr_core.encoder import LIGHT_ATTENTION, RetrievalEncoder

    assert LIGHT_ATTENTION == "sdpa"
    inst = "Given a scientific claim, retrieve documents that support or refute the claim"
    queries = ["what is bm25", "dense retrieval of claims"]
    enc = RetrievalEncoder(tiny_llama(vocab_size=tokenizer.vocab_size).eval(), tokenizer)
    with torch.no_grad():
        ref_light = enc.encode_light_queries(queries, inst)
        ref_tokens = enc.token_vectors_block(inst, torch.arange(100, 110))
    enc.lm.config._attn_implementation = "flash_attention_2"  # as load_backbone(device="cuda") leaves it
    seen = []
    hooks = _record_attention(enc, seen)
    with torch.no_grad():
        light = enc.encode_light_queries(queries, inst)
        tokens = enc.token_vectors_block(inst, torch.arange(100, 110))
    for h in hooks:
        h.remove()
    assert seen and set(seen) == {"sdpa"}
    assert enc.lm.config._attn_implementation == "flash_attention_2"  # restored after the call
    torch.testing.assert_close(light, ref_light)
    torch.testing.assert_close(tokens, ref_tokens)
    # documents and full queries keep the backbone's flash-attention (no kernels here: stop at the first layer)
    for call in (lambda: enc.encode_documents(["a title"], ["some text"]), lambda: enc.encode_full_queries(queries, inst)):
        seen.clear()
        hooks = _record_attention(enc, seen, stop=True)
        with pytest.raises(_Stop), torch.no_grad():
            call()
        for h in hooks:
            h.remove()
        assert seen == ["flash_attention_2"]
    # training under gradient checkpointing would recompute the light forward outside the switch: refused
    enc.lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    enc.train()
    with pytest.raises(RuntimeError, match="gradient checkpointing"):
        enc.encode_light_queries(queries, inst)
    assert enc.lm.config._attn_implementation == "flash_attention_2"


@pytest.mark.gpu
def test_flash_attention_documents_match_sdpa_on_cuda():
    """On a GPU with flash-attn installed, `auto` builds the tiny backbone with flash-attention 2 (bf16);
    its document vectors match the same weights under SDPA within bf16 tolerance, and its light queries
    (SDPA by design) match too."""
    from lr_core.encoder import RetrievalEncoder

    flash_lm, rt = load_backbone("tiny-llama", device="cuda", max_doc_len=64)
    assert flash_lm.config._attn_implementation == "flash_attention_2"
    assert flash_lm.lm_head.weight.dtype == torch.bfloat16 and flash_lm.lm_head.weight.device.type == "cuda"
    sdpa_lm, _ = load_backbone("tiny-llama", device="cuda", attn="sdpa", max_doc_len=64)
    flash, sdpa = RetrievalEncoder(flash_lm.eval(), rt), RetrievalEncoder(sdpa_lm.eval(), rt)
    titles = ["BM25", "Dense retrieval", ""]
    texts = ["a ranking function " * 5, "vectors for documents and queries", "short"]  # unequal lengths: padding
    inst = "Given a question, retrieve passages that answer the question"
    with torch.no_grad():
        a, b = flash.encode_documents(titles, texts), sdpa.encode_documents(titles, texts)
        torch.testing.assert_close(a["dense"].float(), b["dense"].float(), atol=3e-2, rtol=3e-2)
        torch.testing.assert_close(a["sparse"].float(), b["sparse"].float(), atol=5e-2, rtol=5e-2)
        torch.testing.assert_close(flash.encode_light_queries(["what is bm25"], inst).float(),
                                   sdpa.encode_light_queries(["what is bm25"], inst).float())
