"""The LightRetriever paper's reported numbers (arXiv 2505.12260), and how ours map onto them.

    from reports import paper
    paper.per_dataset()                          # Tables 9-11 as a DataFrame (nDCG@10 in percent)
    paper.lookup_per_dataset("Llama3.2-1b", "LightRetriever Hybrid", "scifact")   # -> 50.1 or None

The CSVs under ``reports/paper_data/`` are copied from the paper (see its README.md); they are
read from the package, never from elsewhere on disk. Paper numbers are percentages with one
decimal, exactly as printed.

Our backbones are not the paper's (SmolLM2-135M on CPU against Llama / Qwen / Mistral on GPUs),
so nothing is matched by backbone name. A comparison names one paper backbone explicitly
(``--paper-backbone``, default ``DEFAULT_PAPER_BACKBONE``) and every one of our backbones is
compared with it; methods are matched through the explicit tables below, by (our setting, our
representation); data sets through ``dataset_name``.
"""
from __future__ import annotations

import re
from functools import cache
from importlib import resources

import pandas as pd

from lr_core.errors import ConfigError

DEFAULT_PAPER_BACKBONE = "Llama3.2-1b"  # the paper's smallest backbone, the nearest to SmolLM2-135M

# (our setting, our representation) -> method name in the paper's Tables 9-11 (per data set).
# The paper's Table 2 "LightRetriever" row is its hybrid retrieval (Table 5 hybrid = Table 2).
PER_DATASET_METHODS = {
    ("bm25", "bm25"): "BM25",
    ("symmetric", "symmetric"): "Full Symmetric",
    ("lightretriever", "dense"): "LightRetriever Dense",
    ("lightretriever", "sparse"): "LightRetriever Sparse",
    ("lightretriever", "hybrid"): "LightRetriever Hybrid",
}
# (our setting, our representation) -> (setting, representation) in the paper's Tables 3-4 (A1-A3; paper_table4_ablations.csv).
ABLATION_SETTINGS = {
    ("lightretriever", "dense"): ("LightRetriever", "dense"),
    ("a1_both_light", "light_both"): ("A1 both-side light", "dense"),
    ("a2_embedding_query", "dense"): ("A2 query MLP at train time", "dense"),
    ("lightretriever", "hybrid"): ("LightRetriever", "hybrid"),
    ("a3_one_layer_query", "hybrid"): ("A3 1-layer transformer query", "hybrid"),
}
# Our setting -> the paper's Table 5 column (with / without the KL alignment loss).
KL_SETTINGS = {"kl": "with_kl", "lightretriever": "without_kl"}
# The paper's Table 1 names its models "<Full|LightRetriever>-<backbone>"; paper backbone -> suffix.
# Which of our speed rows is which is speed_kind's rule.
SPEED_BACKBONE = {"Llama3.1-8b": "Llama8b", "Llama3.2-1b": "Llama1b", "Qwen2.5-7b": "Qwen7b",
                  "Qwen2.5-1.5b": "Qwen1.5b"}
# Our (BEIR download) data set names that do not reduce to the paper's by dropping case and
# punctuation ("trec-covid" -> "TRECCOVID" and "climate-fever" -> "ClimateFEVER" already do).
DATASET_ALIASES = {"fiqa": "FiQA2018", "webistouche2020": "Touche2020", "dbpediaentity": "DBPedia"}
BENCHMARK_COLUMNS = {"BEIR": "beir", "CMTEB-R": "cmteb"}


@cache
def _csv(name: str) -> pd.DataFrame:
    with resources.files("reports").joinpath("paper_data", name).open("r", encoding="utf-8") as fh:
        # keep_default_na=False: an empty backbone (baselines) must stay "" rather than NaN
        return pd.read_csv(fh, keep_default_na=False)


def table1_speed() -> pd.DataFrame:
    return _csv("paper_table1_speed.csv").copy()


def table2_main() -> pd.DataFrame:
    return _csv("paper_table2_main.csv").copy()


def table4_ablations() -> pd.DataFrame:
    return _csv("paper_table4_ablations.csv").copy()


def table5_kl() -> pd.DataFrame:
    return _csv("paper_table5_kl.csv").copy()


def per_dataset() -> pd.DataFrame:
    return _csv("paper_per_dataset_ndcg10.csv").copy()


def backbones() -> list[str]:
    return list(_backbones())


@cache
def _backbones() -> tuple[str, ...]:
    return tuple(sorted(b for b in per_dataset()["backbone"].unique() if b))


def check_backbone(name: str) -> str:
    if name not in _backbones():
        raise ConfigError(f"unknown paper backbone {name!r}; the paper has: {', '.join(_backbones())}")
    return name


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def dataset_name(ours: str) -> tuple[str, str] | None:
    """(paper benchmark, paper data set name) for one of our data set names, or None.

    >>> dataset_name("scifact"), dataset_name("cranfield")
    (('BEIR', 'SciFact'), None)
    """
    base = ours.rstrip("/").rsplit("/", 1)[-1]  # `lr evaluate --dataset` also takes paths
    wanted = DATASET_ALIASES.get(_norm(base), base)
    return _datasets().get(_norm(wanted))


@cache
def _datasets() -> dict[str, tuple[str, str]]:
    """Normalised paper data set name -> (benchmark, name); averages are not data sets."""
    pairs = per_dataset()[["benchmark", "dataset"]].drop_duplicates().itertuples(index=False)
    return {_norm(name): (bench, name) for bench, name in pairs if "Avg" not in name}


@cache
def _per_dataset_index() -> dict[tuple[str, str, str], float]:
    """(backbone, method, data set) -> nDCG@10; tables ask for hundreds of cells."""
    t = per_dataset()
    return {(b, m, d): float(v) for b, m, d, v in t[["backbone", "method", "dataset", "ndcg_at_10"]].itertuples(
        index=False)}


def lookup_per_dataset(paper_backbone: str, method: str, dataset: str) -> float | None:
    """The paper's nDCG@10 (percent) of ``method`` on our ``dataset``; baselines have no backbone."""
    found = dataset_name(dataset)
    if found is None:
        return None
    index = _per_dataset_index()
    baseline = ("", method, found[1])
    return index[baseline] if baseline in index else index.get((paper_backbone, method, found[1]))


def benchmark_of(dataset: str) -> str | None:
    found = dataset_name(dataset)
    return found[0] if found else None


@cache  # a few rows, asked for once per cell
def lookup_ablation(paper_backbone: str, setting: str, representation: str, benchmark: str) -> float | None:
    """The paper's benchmark-average nDCG@10 for an A1-A3 setting (Tables 3-4), or None."""
    t = table4_ablations()
    hit = t[(t["backbone"] == paper_backbone) & (t["setting"] == setting) & (t["representation"] == representation)]
    col = f"{BENCHMARK_COLUMNS[benchmark]}_ndcg10"
    return float(hit[col].iloc[0]) if len(hit) else None


@cache  # a few rows, asked for once per cell
def lookup_kl(paper_backbone: str, column: str, representation: str, benchmark: str) -> float | None:
    """The paper's benchmark-average nDCG@10 with / without KL (Table 5), or None."""
    t = table5_kl()
    hit = t[(t["backbone"] == paper_backbone) & (t["representation"] == representation)]
    col = f"{BENCHMARK_COLUMNS[benchmark]}_{column}"
    return float(hit[col].iloc[0]) if len(hit) else None


def speed_kind(variant: str | None, representation: str | None) -> str | None:
    """"Full" or "LightRetriever" (the paper's Table 1 model kinds) for one of our speed rows, or None.

    Speed depends on the pipeline, not on the weights: the whole LLM on the query (the symmetric
    variant, or any model's ``symmetric`` representation) is "Full"; the light hybrid pipeline
    (the paper's Table 1 times LightRetriever's hybrid retrieval) is "LightRetriever", as is a
    ``lightretriever`` row that names no representation."""
    if variant == "symmetric" or representation == "symmetric":
        return "Full"
    if representation == "hybrid" or (variant == "lightretriever" and representation is None):
        return "LightRetriever"
    return None


def lookup_speed(paper_backbone: str, variant: str | None, representation: str | None = None) -> pd.Series | None:
    """The paper's Table 1 row matching one of our speed rows on ``paper_backbone``, or None."""
    kind = speed_kind(variant, representation)
    if kind is None or paper_backbone not in SPEED_BACKBONE:
        return None
    t = table1_speed()
    hit = t[t["model"] == f"{kind}-{SPEED_BACKBONE[paper_backbone]}"]
    return hit.iloc[0] if len(hit) else None
