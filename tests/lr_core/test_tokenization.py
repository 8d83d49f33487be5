"""Tokenisation rules (lr_core.tokenization) on SmolLM2's real tokenizer."""
from __future__ import annotations

import pytest
from tokenizers import Tokenizer, normalizers

from lr_core.errors import DataError
from lr_core.instructions import format_prompt, instruction_for
from lr_core.tokenization import RetrievalTokenizer, with_lowercase

INST = instruction_for("scifact")


def test_special_tokens_are_smollm2s(tokenizer):
    assert (tokenizer.bos_id, tokenizer.eos_id, tokenizer.vocab_size) == (1, 2, 49152)


def test_lowercasing_is_part_of_the_tokenizer(tokenizer):
    assert tokenizer.light_query_ids("Vitamin D IN Cells") == tokenizer.light_query_ids("vitamin d in cells")
    # the rule travels with the saved tokenizer (the server loads tokenizer.json)
    reloaded = Tokenizer.from_str(tokenizer.backend.to_str())
    assert reloaded.encode("ABC", add_special_tokens=False).ids == reloaded.encode("abc", add_special_tokens=False).ids
    assert with_lowercase(tokenizer.backend) is tokenizer.backend  # idempotent


def test_documents_get_one_bos_and_one_eos_and_keep_eos_when_truncated(tokenizer):
    short = tokenizer.doc_ids(["A title"], ["some text"])[0]
    assert short[0] == tokenizer.bos_id and short[-1] == tokenizer.eos_id
    assert short.count(tokenizer.bos_id) == 1 and short.count(tokenizer.eos_id) == 1
    assert short[1:-1] == tokenizer.backend.encode("a title some text", add_special_tokens=False).ids
    long = tokenizer.doc_ids([""], ["word " * 500])[0]
    assert len(long) == tokenizer.max_doc_len and long[-1] == tokenizer.eos_id


def test_light_query_has_no_special_tokens_and_sparse_query_has_leading_space(tokenizer):
    light = tokenizer.light_query_ids("protein folding")
    sparse = tokenizer.sparse_query_ids("protein folding")
    assert tokenizer.bos_id not in light and tokenizer.eos_id not in light
    assert light != sparse  # "protein" vs " protein" are different tokens
    assert sparse == tokenizer.backend.encode(" protein folding", add_special_tokens=False).ids


def test_prompt_and_full_query_layout(tokenizer):
    prompt = tokenizer.prompt_ids(INST)
    assert prompt[0] == tokenizer.bos_id
    assert tokenizer.backend.decode(prompt[1:]) == format_prompt(INST).lower()
    full = tokenizer.full_query_ids(["what is x"], INST)[0]
    # the authors tokenise the joined string: "Query: what" gives " what" its leading-space token
    joined = tokenizer.backend.encode(format_prompt(INST) + "what is x", add_special_tokens=False).ids
    assert full == [tokenizer.bos_id] + joined + [tokenizer.eos_id]
    p = tokenizer.full_prompt_length(INST)
    assert full[p:-1] == tokenizer.sparse_query_ids("what is x") != tokenizer.light_query_ids("what is x")
    assert tokenizer.backend.decode(full[1:p]) == format_prompt(INST).lower().rstrip(" ")


def test_full_query_prompt_prefix_holds_for_every_scifact_query(tokenizer):
    """The prompt length used to skip the prompt (symmetric sparse) is exact for real queries."""
    from lr_core.data.beir import load_beir

    queries = []
    for split in ("train", "test"):
        queries += list(load_beir("scifact", split=split, load_corpus=False).queries.values())
    full = tokenizer.full_query_ids(queries, INST)
    p = tokenizer.full_prompt_length(INST)
    prefix = full[0][:p]
    for q, ids in zip(queries, full):
        assert ids[:p] == prefix and ids[-1] == tokenizer.eos_id
        assert ids[p:-1] == tokenizer.sparse_query_ids(q)[: tokenizer.max_query_tokens], q


def test_full_queries_take_one_instruction_each(tokenizer):
    other = "Given a claim, find papers"
    both = tokenizer.full_query_ids(["a b", "c d"], [INST, other])
    assert both == tokenizer.full_query_ids(["a b"], INST) + tokenizer.full_query_ids(["c d"], other)
    with pytest.raises(ValueError, match="instructions"):
        tokenizer.full_query_ids(["a"], [INST, other])


def test_query_truncation(tokenizer):
    assert len(tokenizer.light_query_ids("word " * 100)) == tokenizer.max_query_tokens


def test_empty_query_is_a_clear_error(tokenizer):
    with pytest.raises(DataError, match="no tokens"):
        tokenizer.light_query_ids("")
    with pytest.raises(DataError, match="empty"):
        tokenizer.sparse_query_ids("   ")


def test_query_of_unmappable_characters_is_a_clear_error(tokenizer):
    # A tokenizer whose normalizer deletes a character maps a query made only of it to nothing.
    backend = Tokenizer.from_str(tokenizer.backend.to_str())
    backend.normalizer = normalizers.Replace("\u00a7", "")
    rt = RetrievalTokenizer(backend, bos_id=1, eos_id=2)
    with pytest.raises(DataError, match="no tokens"):
        rt.light_query_ids(["fine", "\u00a7\u00a7"])


def test_instructions_cover_beir_and_cmteb():
    from lr_core.instructions import BEIR_INSTRUCTIONS, CMTEB_INSTRUCTIONS

    assert len(BEIR_INSTRUCTIONS) == 15 and len(CMTEB_INSTRUCTIONS) == 8
    assert instruction_for("SciFact") == instruction_for("/data/beir/scifact/")
    assert instruction_for("FiQA2018") == BEIR_INSTRUCTIONS["fiqa"]
    with pytest.raises(KeyError, match="known"):
        instruction_for("no-such-task")
