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
