"""Training vs evaluation instructions (lr_core.instructions, lr_core.data.datamodule.resolve_instructions)."""
from __future__ import annotations

import logging

from lr_core.data.datamodule import resolve_instructions
from lr_core.instructions import (DEFAULT_INSTRUCTION, TRAINING_INSTRUCTIONS, instruction_for,
                                  training_instruction_for)
from lr_core.data.formats import TrainExample
from lr_core.data.beir import Passage


def test_scifact_trains_with_the_authors_instruction_and_evaluates_with_beirs():
    train = training_instruction_for("scifact")
    assert train == "Given a scientific claim, judge whether the document supports or refutes the claim"
    assert instruction_for("scifact") == "Given a scientific claim, retrieve documents that support or refute the claim"
    assert train != instruction_for("scifact")


def test_sources_with_two_instructions_pick_one_per_example_stably():
    picks = {training_instruction_for("nq", f"q{i}") for i in range(50)}
    assert picks == set(TRAINING_INSTRUCTIONS["nq"])  # both are used
    assert all(training_instruction_for("nq", "q7") == training_instruction_for("nq", "q7") for _ in range(3))


def test_unknown_source_has_no_training_instruction():
    assert training_instruction_for("my-own-data") is None


def _ex(source, instruction=None, qid="1"):
    return TrainExample(query="q", positives=[Passage(None, "", "p")], negatives=[], query_id=qid,
                        instruction=instruction, source=source)


def test_resolve_instructions_prefers_override_then_own_then_training_table(caplog):
    # an earlier `lr ... --quiet` in this process leaves the root logger at ERROR: ask for warnings here
    caplog.set_level(logging.WARNING, logger="lr_core.data.datamodule")
    exs = [_ex("scifact"), _ex("scifact", "Own instruction"), _ex("unknown-source"), _ex("unknown-source")]
    resolve_instructions(exs, None)
    assert [e.instruction for e in exs] == [training_instruction_for("scifact"), "Own instruction",
                                            DEFAULT_INSTRUCTION, DEFAULT_INSTRUCTION]
    assert sum("unknown-source" in r.message for r in caplog.records) == 1  # warned once
    exs = [_ex("scifact"), _ex("scifact", "Own instruction")]
    resolve_instructions(exs, "Forced")
    assert {e.instruction for e in exs} == {"Forced"}
