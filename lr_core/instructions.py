"""Per-task query instructions: the one place that maps a benchmark to its instruction.

The paper (Appendix A.6) prompts queries with E5-Mistral-style task instructions; the
English ones below are the BEIR instructions, the Chinese-task ones the CMTEB-Retrieval
instructions. ``cranfield`` and ``cmrc2018_zh`` are this suite's own, written in the same
style for the offline data sets.

>>> instruction_for("scifact")
'Given a scientific claim, retrieve documents that support or refute the claim'
>>> format_prompt(instruction_for("nq"))
'Instruct: Given a question, retrieve Wikipedia passages that answer the question\\nQuery: '
"""
from __future__ import annotations

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


def format_prompt(instruction: str) -> str:
    """The text that precedes every query token: ``Instruct: {instruction}\\nQuery: ``."""
    if not instruction or not instruction.strip():
        raise ValueError("instruction must be a non-empty string")
    return INSTRUCTION_TEMPLATE.format(instruction=instruction.strip())
