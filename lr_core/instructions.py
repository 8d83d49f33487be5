"""Per-task query instructions: the one place that maps a data set to its instruction.

The paper (Appendix A.6) prompts queries with E5-Mistral-style task instructions. There are
two tables, kept apart because they differ for some sets:

* evaluation (:func:`instruction_for`): the BEIR instructions for English tasks, the
  CMTEB-Retrieval ones for Chinese tasks; ``cranfield`` and ``cmrc2018_zh`` are this suite's
  own, written in the same style for the offline data sets;
* training (:func:`training_instruction_for`): the authors' own table for their training
  sets (e.g. SciFact trains with "judge whether the document supports or refutes the claim").

>>> instruction_for("scifact")
'Given a scientific claim, retrieve documents that support or refute the claim'
>>> format_prompt(instruction_for("nq"))
'Instruct: Given a question, retrieve Wikipedia passages that answer the question\\nQuery: '
"""
from __future__ import annotations

import zlib

INSTRUCTION_TEMPLATE = "Instruct: {instruction}\nQuery: "

BEIR_INSTRUCTIONS: dict[str, str] = {
    "arguana": "Given a claim, find documents that refute the claim",
    "climate-fever": "Given a claim about climate change, retrieve documents that support or refute the claim",
    "cqadupstack": "Given a question, retrieve detailed question descriptions from Stackexchange that are duplicates to the given question",
    "dbpedia-entity": "Given a query, retrieve relevant entity descriptions from DBPedia",
    "fever": "Given a claim, retrieve documents that support or refute the claim",
    "fiqa": "Given a financial question, retrieve user replies that best answer the question",
    "hotpotqa": "Given a multi-hop question, retrieve documents that can help answer the question",
    "msmarco": "Given a web search query, retrieve relevant passages that answer the query",
    "nfcorpus": "Given a question, retrieve relevant documents that best answer the question",
    "nq": "Given a question, retrieve Wikipedia passages that answer the question",
    "quora": "Given a question, retrieve questions that are semantically equivalent to the given question",
    "scidocs": "Given a scientific paper title, retrieve paper abstracts that are cited by the given paper",
    "scifact": "Given a scientific claim, retrieve documents that support or refute the claim",
    "trec-covid": "Given a query on COVID-19, retrieve documents that answer the query",
    "webis-touche2020": "Given a question, retrieve detailed and persuasive arguments that answer the question",
}

CMTEB_INSTRUCTIONS: dict[str, str] = {
    "t2retrieval": "Given a Chinese search query, retrieve web passages that answer the question",
    "mmarcoretrieval": "Given a web search query, retrieve relevant passages that answer the query",
    "duretrieval": "Given a Chinese search query, retrieve web passages that answer the question",
    "covidretrieval": "Given a question on COVID-19, retrieve news articles that answer the question",
    "cmedqaretrieval": "Given a Chinese community medical question, retrieve replies that best answer the question",
    "ecomretrieval": "Given a user query from an e-commerce website, retrieve description sentences of relevant products",
    "medicalretrieval": "Given a medical question, retrieve user replies that best answer the question",
    "videoretrieval": "Given a video search query, retrieve the titles of relevant videos",
}

# Offline data sets shipped with this workplace (not in the paper).
LOCAL_INSTRUCTIONS: dict[str, str] = {
    "cranfield": "Given a question about aerodynamics, retrieve scientific abstracts that answer the question",
    "cmrc2018_zh": "Given a Chinese question, retrieve Wikipedia passages that answer the question",
}

# Aliases that people (and mteb) use for the same task.
_ALIASES = {
    "climatefever": "climate-fever",
    "dbpedia": "dbpedia-entity",
    "fiqa2018": "fiqa",
    "quoraretrieval": "quora",
    "treccovid": "trec-covid",
    "touche2020": "webis-touche2020",
    "cqadupstackretrieval": "cqadupstack",
    "msmarco-dev": "msmarco",
}

# Training instructions: the authors train with their own E5-style table (Appendix A.6 and
# the released prompt table), which differs from the evaluation one for some sets (SciFact
# trains with "judge whether ...", evaluates with "retrieve documents ..."). Keys are training
# source names; a source with several instructions gets one per example (see
# :func:`training_instruction_for`). Training and evaluation instructions are kept apart.
TRAINING_INSTRUCTIONS: dict[str, tuple[str, ...]] = {
    "msmarco": ("Given a web search query, retrieve relevant passages that answer the query",),
    "nq": ("Given a question, retrieve Wikipedia passages that answer the question",
           "Retrieve Wikipedia passages that answer the question"),
    "trivia": ("Given a question, retrieve Wikipedia passages that answer the question",
               "Retrieve Wikipedia passages that answer the question"),
    "squad_pairs": ("Given a question, retrieve Wikipedia passages that answer the question",
                    "Retrieve Wikipedia passages that answer the question"),
    "hotpotqa": ("Given a multi-hop question, retrieve documents that can help answer the question",),
    "fever": ("Given a claim, retrieve documents that support or refute the claim",),
    "fiqa": ("Given a financial question, judge whether the user replies best answer the question",),
    "nfcorpus": ("Given a question, judge whether the document best answers the question",),
    "s2orc_title_abstract": ("Given a title, retrieve the abstract from scientific papers",
                             "Given a title, retrieve abstracts from scientific papers that match the title"),
    "scifact": ("Given a scientific claim, judge whether the document supports or refutes the claim",),
    "quora_duplicates_triplets": ("Given a question, retrieve questions that are semantically equivalent to the given question",
                                  "Find questions that have the same meaning as the input question"),
    "eli5_question_answer": ("Provided a user question, retrieve the highest voted answers on Reddit ELI5 forum",),
    "miracl": ("Given a question, retrieve Wikipedia passages that answer the question",
               "Retrieve Wikipedia passages that answer the question"),
    "mr_tydi_combined": ("Given a question, retrieve Wikipedia passages that answer the question",
                         "Retrieve Wikipedia passages that answer the question"),
    "t2ranking": ("Given a Chinese search query, retrieve web passages that answer the question",),
    "dureader": ("Given a Chinese search query, retrieve web passages that answer the question",),
    "cmedqa2": ("Given a Chinese community medical question, retrieve replies that best answer the question",),
    "mmarco-zh": ("给定一个网页搜索查询，检索能够回答该查询的相关段落",),
}

ALL_INSTRUCTIONS: dict[str, str] = {**BEIR_INSTRUCTIONS, **CMTEB_INSTRUCTIONS, **LOCAL_INSTRUCTIONS}
DEFAULT_INSTRUCTION = BEIR_INSTRUCTIONS["msmarco"]


def _key(name: str) -> str:
    key = name.strip().lower().rstrip("/").split("/")[-1]
    return _ALIASES.get(key, key)


def instruction_for(dataset: str) -> str:
    """The query instruction of a benchmark task (case-insensitive; a path's last part counts).

    Unknown names raise ``KeyError`` listing the known ones, so a typo never silently falls
    back to a generic prompt (that changes scores by points of nDCG).
    """
    key = _key(dataset)
    if key not in ALL_INSTRUCTIONS:
        raise KeyError(
            f"no instruction known for dataset {dataset!r}; known: {', '.join(sorted(ALL_INSTRUCTIONS))}. "
            "Pass an explicit instruction instead."
        )
    return ALL_INSTRUCTIONS[key]


def training_instruction_for(source: str, key: str = "") -> str | None:
    """The instruction a training example of ``source`` is trained with; ``None`` if unknown.

    Sources with several instructions pick one per example from a stable hash of ``key``
    (the query id or text), so the choice is the same on every run, rank and resume.

    >>> training_instruction_for("scifact")
    'Given a scientific claim, judge whether the document supports or refutes the claim'
    """
    options = TRAINING_INSTRUCTIONS.get(_key(source)) or TRAINING_INSTRUCTIONS.get(source.strip().lower())
    if not options:
        return None
    return options[zlib.crc32(key.encode("utf-8")) % len(options)]


def format_prompt(instruction: str) -> str:
    """The text that precedes every query token: ``Instruct: {instruction}\\nQuery: ``."""
    if not instruction or not instruction.strip():
        raise ValueError("instruction must be a non-empty string")
    return INSTRUCTION_TEMPLATE.format(instruction=instruction.strip())
