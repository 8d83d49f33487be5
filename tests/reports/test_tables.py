"""reports.tables: every layout built from a fixture ledger and compared with text worked out by
hand from the fixture's numbers (tests/reports/ledger.py)."""
from __future__ import annotations

import csv
import io
from importlib import resources

import pytest

from lr_core.errors import ConfigError
from reports import tables
from reports.collect import SkippedResultWarning, collect
from reports.latex import escape
from tests.reports.ledger import SMOL, write_bench_speed, write_metrics, write_speed

TABLE2_MD = """\
**Table 2 layout: full symmetric vs LightRetriever (hybrid retrieval) per backbone, with baselines; nDCG@10 and recall x 100.**

| Backbone | Method | nfcorpus nDCG@10 | nfcorpus R@20 | nfcorpus R@50 | nfcorpus R@100 | scifact nDCG@10 | scifact R@20 | scifact R@50 | scifact R@100 |
| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
|  | BM25 | **32.5** | **50.0** | **60.0** | **70.0** | **66.5** | **84.3** | **88.6** | **90.8** |
| smollm2-135m-instruct | Untrained backbone (dense) | - | - | - | - | 8.1 | 50.0 | 60.0 | 70.0 |
| smollm2-135m-instruct | Full Symmetric | 30.1 | **50.0** | **60.0** | **70.0** | 61.2 | 80.1 | 86.2 | 90.1 |
| smollm2-135m-instruct | LightRetriever | 30.5 | **50.0** | **60.0** | **70.0** | 60.3 | 79.0 | 85.0 | 89.0 |
| smollm2-135m-instruct | Gap (LightRetriever - Full) | +0.4 | +0.0 | +0.0 | +0.0 | -0.9 | -1.1 | -1.2 | -1.1 |
"""

TABLE4_MD = """\
**Table 4 layout: symmetry ablations A1-A3, nDCG@10 x 100 and \u0394 to LightRetriever with the same representation (Emb = cached token embeddings, 1L-Trans = first transformer layer only).**

| Backbone | Setting | Train query | Train doc | Infer query | Infer doc | Repr. | nfcorpus nDCG@10 | nfcorpus \u0394 | scifact nDCG@10 | scifact \u0394 |
| --- | --- | --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: |
| smollm2-135m-instruct | LightRetriever | Full | Full | Emb | Full | dense | 28.1 | - | 55.2 | - |
| smollm2-135m-instruct | A1 both-side light | Full | Full | Emb | Emb | light_both | - | - | 30.1 | -25.1 |
| smollm2-135m-instruct | A2 embedding query | Emb | Full | Emb | Full | dense | - | - | 40.2 | -15.0 |
| smollm2-135m-instruct | LightRetriever | Full | Full | Emb | Full | hybrid | **30.5** | - | **60.3** | - |
| smollm2-135m-instruct | A3 1-layer query | 1L-Trans | Full | 1L-Trans | Full | hybrid | - | - | 55.0 | -5.3 |
"""

TABLE5_TEX = r"""% table5_kl
\begin{table}[!htbp]
\centering
{\small\bfseries Table 5 layout: with / without the KL alignment loss, nDCG@10 x 100 ($\Delta$ = with - without).\par}\medskip
\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%
\begin{tabular}{llrrrrrr}
\toprule
 &  & \multicolumn{3}{c}{nfcorpus} & \multicolumn{3}{c}{scifact} \\
\cmidrule(lr){3-5} \cmidrule(lr){6-8}
Backbone & Repr. & w/ KL & w/o KL & $\Delta$ & w/ KL & w/o KL & $\Delta$ \\
\midrule
smollm2-135m-instruct & dense & -- & 28.1 & -- & 56.1 & 55.2 & +0.9 \\
smollm2-135m-instruct & sparse & -- & 29.0 & -- & 56.9 & 57.1 & $-$0.2 \\
smollm2-135m-instruct & hybrid & -- & \textbf{30.5} & -- & \textbf{61.1} & \textbf{60.3} & +0.8 \\
\bottomrule
\end{tabular}}
\end{table}
"""

TABLE9_MD = """\
**Tables 9-11 layout: nDCG@10 x 100 per data set.**

| Backbone | Method | nfcorpus | scifact | Avg |
| --- | --- | ---: | ---: | ---: |
|  | BM25 | **32.5** | **66.5** | **49.5** |
| smollm2-135m-instruct | Untrained backbone (dense) | - | 8.1 | - |
| smollm2-135m-instruct | Full Symmetric | 30.1 | 61.2 | 45.6 |
| smollm2-135m-instruct | LightRetriever Dense | 28.1 | 55.2 | 41.7 |
| smollm2-135m-instruct | LightRetriever Sparse | 29.0 | 57.1 | 43.0 |
| smollm2-135m-instruct | LightRetriever Hybrid | 30.5 | 60.3 | 45.4 |
| smollm2-135m-instruct | LightRetriever Symmetric | 29.9 | 59.8 | 44.8 |

Avg is the mean over all data sets shown; it is missing for a row without all of them.
"""

TABLE1_CSV = """\
Model,Device,Queries,Tokenize (s),Encode (s),Search (s),Total (s),QPS,nDCG@10
Full-SmolLM2,-,300,0.0600,2.5000,0.3000,2.8600,105,61.2
LightRetriever-SmolLM2,cpu,300,0.0500,0.0100,0.3000,0.3600,833,60.3
"""


@pytest.fixture
def results(ledger):
    return collect([ledger])


def test_table2_main(results):
    assert tables.table2_main(results).to_markdown() == TABLE2_MD


def test_table4_ablations_a1_a2_a3_with_deltas(results):
    assert tables.table4_ablations(results).to_markdown() == TABLE4_MD


def test_table5_kl_latex(results):
    assert tables.table5_kl(results).to_latex() == TABLE5_TEX


def test_table9_11_per_dataset(results):
    assert tables.table9_11_per_dataset(results).to_markdown() == TABLE9_MD


def test_table1_speed(results):
    t = tables.table1_speed(results)
    assert t.to_csv() == TABLE1_CSV  # LightRetriever's nDCG@10 comes from the ledger's matching hybrid result
    md = t.to_markdown().splitlines()
    # seconds: the smallest is best (ties all bold); QPS and nDCG@10: the largest
    assert md[4] == "| Full-SmolLM2 | - | 300 | 0.0600 | 2.5000 | **0.3000** | 2.8600 | 105 | **61.2** |"
    assert md[5] == ("| LightRetriever-SmolLM2 | cpu | 300 | **0.0500** | **0.0100** | **0.3000** | **0.3600** "
                     "| **833** | 60.3 |")


def test_tables_without_data_are_none(tmp_path):
    write_metrics(tmp_path, "scifact", "bm25", "bm25", "bm25", 0.665, run="bm25")
    r = collect([tmp_path])
    assert tables.table1_speed(r) is None and tables.table4_ablations(r) is None and tables.table5_kl(r) is None
    assert [t.name for t in tables.all_tables(r)] == ["table2_main", "table9_11_per_dataset", "paper_vs_ours_main",
                                                      "paper_vs_ours_per_dataset"]


def _paper_csv():
    with resources.files("reports").joinpath("paper_data", "paper_per_dataset_ndcg10.csv").open(
            encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("paper_backbone", ["Llama3.2-1b", "Llama3.1-8b", "Qwen2.5-7b", "Mistral0.3-7b"])
def test_paper_column_is_the_paper_exactly(ledger, paper_backbone):
    write_metrics(ledger, "cranfield", "lightretriever", SMOL, "dense", 0.2, run="lr")  # not in the paper
    t = tables.paper_vs_ours(collect([ledger]), "per_dataset", paper_backbone)
    rows = list(csv.DictReader(io.StringIO(t.to_csv())))
    printed = {(r["backbone"], r["method"], r["dataset"]): r["ndcg_at_10"] for r in _paper_csv()}
    names = {"scifact": "SciFact", "nfcorpus": "NFCorpus"}  # spelled out here, independent of the code's mapping
    with_paper = 0
    for r in rows:
        paper_cell = r[f"Paper ({paper_backbone})"]
        if r["Data set"] == "cranfield" or r["Method"].startswith("Untrained"):
            assert paper_cell == "-" and r["Diff"] == "-" and r["Ours"] != "-"
            continue
        backbone = "" if r["Method"] == "BM25" else paper_backbone
        assert paper_cell == printed[(backbone, r["Method"], names[r["Data set"]])]
        assert r["Diff"] == f"{float(r['Ours']) - float(paper_cell):+.1f}"
        with_paper += 1
    # BM25 and four model methods on both data sets; nothing of ours dropped (cranfield, untrained kept)
    assert with_paper == 2 + 4 * 2
    assert ("smollm2-135m-instruct", "LightRetriever Dense", "cranfield") in {
        (r["Backbone"], r["Method"], r["Data set"]) for r in rows}
    assert "Data sets the paper does not report: cranfield." in t.notes
    assert "No counterpart in the paper: untrained/dense." in t.notes


def test_paper_vs_ours_main_ablations_kl_speed(results):
    main = tables.paper_vs_ours(results, "main", "Llama3.2-1b").to_markdown()
    assert "| smollm2-135m-instruct | LightRetriever | scifact | 71.5 | 60.3 | -11.2 |" in main
    abl = tables.paper_vs_ours(results, "ablations", "Llama3.1-8b").to_markdown()
    assert "| smollm2-135m-instruct | A3 1-layer query | hybrid | scifact | BEIR avg. | 50.1 | 55.0 | +4.9 |" in abl
    assert "| smollm2-135m-instruct | LightRetriever | hybrid | scifact | BEIR avg. | 54.4 | 60.3 | +5.9 |" in abl
    # the paper has no Llama3.1-8b A1: shown as "-", not dropped
    assert "| smollm2-135m-instruct | A1 both-side light | light_both | scifact | BEIR avg. | - | 30.1 | - |" in abl
    kl = tables.paper_vs_ours(results, "kl", "Llama3.1-8b").to_markdown()
    assert "| smollm2-135m-instruct | with | sparse | scifact | BEIR avg. | 49.5 | 56.9 | +7.4 |" in kl
    assert "| smollm2-135m-instruct | without | dense | nfcorpus | BEIR avg. | 50.8 | 28.1 | -22.7 |" in kl
    speed = tables.paper_vs_ours(results, "speed", "Llama3.1-8b").to_markdown()
    assert "| Full-SmolLM2 | Full-Llama8b | 549 | 105 | -444.1 |" in speed
    assert "| LightRetriever-SmolLM2 | LightRetriever-Llama8b | 6999 | 833 | -6165.7 |" in speed
    with pytest.raises(ConfigError, match="unknown paper backbone"):
        tables.paper_vs_ours(results, "main", "GPT-5")


def test_duplicates_and_skipped_files_are_footnoted_everywhere(ledger):
    dup = write_metrics(ledger, "scifact", "lightretriever", SMOL, "hybrid", 0.623, run="lr-seed2")
    first = ledger / "lr" / "eval" / "scifact" / "hybrid" / "metrics.json"
    broken = ledger / "broken" / "eval" / "scifact" / "dense" / "metrics.json"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"dataset": "scifact", "variant": ')
    with pytest.warns(SkippedResultWarning, match="broken"):
        r = collect([ledger])
    t2 = tables.table2_main(r).to_markdown()
    # both results kept: the cell is their mean (60.3 and 62.3 -> 61.3), marked, and the note names both
    assert "| smollm2-135m-instruct | LightRetriever | 30.5 | **50.0** | **60.0** | **70.0** | 61.3\u2020 |" in t2
    assert (f"\u2020 2 results for one cell (scifact / smollm2-135m-instruct / lightretriever / hybrid); the "
            f"cell shows their mean. nDCG@10 of each: 62.3 ({dup}), 60.3 ({first}).") in t2  # sorted by path
    all_tables = tables.all_tables(r)
    assert len(all_tables) == 10
    for t in all_tables:
        note = f"Skipped 1 unreadable result file(s): skipped {broken}: invalid JSON at line 1"
        assert note in t.to_markdown(), t.name
        assert escape(note, breakable=True) in t.to_latex(), t.name
    assert "61.3\\textsuperscript{\\dag}" in tables.table2_main(r).to_latex()


def test_speed_model_timed_twice_is_kept_and_flagged(tmp_path):
    a = write_speed(tmp_path, "a", model="m", num_queries=100, tokenize_s=0.1, encode_s=0.1, search_s=0.3, total_s=0.5)
    b = write_speed(tmp_path, "b", model="m", num_queries=100, tokenize_s=0.1, encode_s=0.2, search_s=0.3, total_s=1.0)
    t = tables.table1_speed(collect([tmp_path]))
    assert t.to_csv().splitlines()[1:] == ["m,-,100,0.1000,0.1000,0.3000,0.5000,200\u2020",
                                           "m,-,100,0.1000,0.2000,0.3000,1.0000,100\u2020"]
    assert t.notes == [f"\u2020 m was timed more than once; every timing is shown: {a}, {b}."]


def test_lr_bench_speed_in_table1_and_against_the_paper(tmp_path):
    write_bench_speed(tmp_path)
    r = collect([tmp_path])
    assert tables.table1_speed(r).to_csv().splitlines() == [
        "Model,Device,Queries,Tokenize (s),Encode (s),Search (s),Total (s),QPS,nDCG@10",
        f"{SMOL} full,\"cpu, 2 threads\",64,0.0200,3.1800,0.0100,3.2100,19.9,-",
        f"{SMOL} light_dense,\"cpu, 2 threads\",64,0.0100,0.0020,0.0080,0.0200,3200,55.2",
        f"{SMOL} light_sparse,\"cpu, 2 threads\",64,0.0100,0.0010,0.0500,0.0610,1049,-",
        f"{SMOL} light_hybrid,\"cpu, 2 threads\",64,0.0200,0.0030,0.0570,0.0800,800,60.3"]
    md = tables.paper_vs_ours(r, "speed", "Llama3.1-8b").to_markdown()
    assert f"| {SMOL} full | Full-Llama8b | 549 | 19.9 | -529.1 |" in md
    assert f"| {SMOL} light_hybrid | LightRetriever-Llama8b | 6999 | 800 | -6199.0 |" in md
    assert f"| {SMOL} light_dense | - | - | 3200 | - |" in md
    assert f"light_dense, {SMOL} light_sparse." in md


def test_bold_compares_printed_values():
    t = tables.Table("t", "c", ["Row"], [tables.Column("x", "max"), tables.Column("s", "min"),
                                         tables.Column("d", None)])
    t.rows = [tables.Row(["a"], [tables.Cell(50.04), tables.Cell(1.00001, "sec"), tables.Cell(9.0, "delta")]),
              tables.Row(["b"], [tables.Cell(49.96), tables.Cell(1.0, "sec"), tables.Cell(-0.04, "delta")]),
              tables.Row(["c"], [tables.Cell(None), tables.Cell(2.0, "sec", rank=False), tables.Cell(None, "delta")])]
    assert t.to_csv() == "Row,x,s,d\na,50.0,1.0000,+9.0\nb,50.0,1.0000,+0.0\nc,-,2.0000,-\n"
    assert t.bold() == [[True, True, False], [True, True, False], [False, False, False]]

