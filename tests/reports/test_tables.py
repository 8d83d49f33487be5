"""reports.tables: every layout built from a fixture ledger and compared with text worked out by
hand from the fixture's numbers (tests/reports/ledger.py)."""
from __future__ import annotations

import csv
import io
from importlib import resources

import pytest

from lr_core.errors import ConfigError
from reports import paper_vs_ours, table_model, tables
from reports.collect import SkippedResultWarning, collect
from reports.latex import escape
from tests.reports.ledger import SMOL, write_bench_speed, write_metrics, write_speed

SCOPE = "Data: NFCorpus, SciFact. Budget: training budget not recorded (SmolLM2-135M-Instruct)."
SMOLD = "SmolLM2-135M-Instruct"
OLD = "untested: no per-query scores (results written before per_query.json.gz was kept)."

TABLE2_MD = f"""\
**Table 2: full symmetric vs LightRetriever (hybrid retrieval) and the other Table 2 variants per backbone, with baselines; nDCG@10 and recall x 100. {SCOPE}**

| Backbone | Method | NFCorpus nDCG@10 | NFCorpus R@20 | NFCorpus R@50 | NFCorpus R@100 | SciFact nDCG@10 | SciFact R@20 | SciFact R@50 | SciFact R@100 |
| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
|  | BM25 | **32.5** | **50.0** | **60.0** | **70.0** | **66.5** | **84.3** | **88.6** | **90.8** |
| {SMOLD} | Untrained backbone (Dense) | - | - | - | - | 8.1 | 50.0 | 60.0 | 70.0 |
| {SMOLD} | Full Symmetric | 30.1 | **50.0** | **60.0** | **70.0** | 61.2 | 80.1 | 86.2 | 90.1 |
|  | LightRetriever | 30.5 | **50.0** | **60.0** | **70.0** | 60.3 | 79.0 | 85.0 | 89.0 |
|  | Gap (LightRetriever - Full Symmetric) | +0.4 | +0.0 | +0.0 | +0.0 | -0.9 | -1.1 | -1.2 | -1.1 |

2 comparison(s) with its reference row (the Gap row names it) {OLD}
"""

TABLE34_MD = f"""\
**Tables 3-4: symmetry ablations A1-A3, nDCG@10 x 100 and \u0394 to the reference row above them (Emb = cached token embeddings, 1L-Trans = first transformer layer only). {SCOPE}**

| Backbone | Setting | Train query | Train doc | Infer query | Infer doc | Repr. | NFCorpus nDCG@10 | NFCorpus \u0394 | SciFact nDCG@10 | SciFact \u0394 |
| --- | --- | --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: |
| {SMOLD} | LightRetriever | Full | Full | Emb | Full | Dense | 28.1 | - | 55.2 | - |
|  | A1 both-side light | Full | Full | Emb | Emb | Both-side light | - | - | 30.1 | -25.1 |
|  | A2 embedding query | Emb | Full | Emb | Full | Dense | - | - | 40.2 | -15.0 |
|  | LightRetriever | Full | Full | Emb | Full | Hybrid | **30.5** | - | **60.3** | - |
|  | A3 1-layer query | 1L-Trans | Full | 1L-Trans | Full | Hybrid | - | - | 55.0 | -5.3 |

3 comparison(s) with its LightRetriever reference row {OLD}
"""

# bold compares the variants of one row (with vs without KL), never the representations
TABLE5_TEX = r"""% table5_kl: needs the packages of reports.latex.preamble() (booktabs, graphicx)
\begin{table}[!htbp]
\centering
\caption{Table 5: with / without the KL alignment loss per representation (the A4 breakdown), nDCG@10 x 100 ($\Delta$ = variant - LightRetriever; bold: the best of each row and data set). Data: NFCorpus, SciFact. Budget: training budget not recorded (SmolLM2-135M-Instruct).}\label{tab:table5_kl}
\smallskip
\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%
\begin{tabular}{llrrrrrr}
\toprule
 &  & \multicolumn{3}{c}{NFCorpus} & \multicolumn{3}{c}{SciFact} \\
\cmidrule(lr){3-5} \cmidrule(lr){6-8}
Backbone & Repr. & LightRetriever & LightRetriever + KL & $\Delta$ & LightRetriever & LightRetriever + KL & $\Delta$ \\
\midrule
SmolLM2-135M-Instruct & Dense & 28.1 & -- & -- & 55.2 & \textbf{56.1} & +0.9 \\
 & Sparse & 29.0 & -- & -- & \textbf{57.1} & 56.9 & $-$0.2 \\
 & Hybrid & 30.5 & -- & -- & 60.3 & \textbf{61.1} & +0.8 \\
\bottomrule
\end{tabular}}
\par\smallskip
\begin{minipage}{\linewidth}\footnotesize\raggedright
3 comparison(s) with the reference (LightRetriever) in the same row untested: no per-query scores (results written before per\_query.json.gz was kept).\par
\end{minipage}
\end{table}
"""

TABLE9_MD = f"""\
**Tables 9-11: nDCG@10 x 100 per data set, every variant and representation with results. {SCOPE}**

| Backbone | Method | NFCorpus | SciFact | Avg |
| --- | --- | ---: | ---: | ---: |
|  | BM25 | **32.5** | **66.5** | **49.5** |
| {SMOLD} | Untrained backbone (Dense) | - | 8.1 | - |
| {SMOLD} | Full Symmetric (Full-LLM query) | 30.1 | 61.2 | 45.6 |
|  | LightRetriever (Dense) | 28.1 | 55.2 | 41.7 |
|  | LightRetriever (Sparse) | 29.0 | 57.1 | 43.0 |
|  | LightRetriever (Hybrid) | 30.5 | 60.3 | 45.4 |
|  | LightRetriever (Full-LLM query) | 29.9 | 59.8 | 44.8 |
|  | A1 both-side light (Both-side light) | - | 30.1 | - |
|  | A2 embedding query (Dense) | - | 40.2 | - |
|  | A3 1-layer query (Hybrid) | - | 55.0 | - |
|  | LightRetriever + KL (Dense) | - | 56.1 | - |
|  | LightRetriever + KL (Sparse) | - | 56.9 | - |
|  | LightRetriever + KL (Hybrid) | - | 61.1 | - |

14 comparison(s) with Full Symmetric (Full-LLM query) of the same backbone (--baseline) {OLD}  
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


def test_table3_4_ablations_a1_a2_a3_with_deltas(results):
    assert tables.table3_4_ablations(results).to_markdown() == TABLE34_MD


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
    assert tables.table1_speed(r) is None and tables.table3_4_ablations(r) is None and tables.table5_kl(r) is None
    assert [t.name for t in tables.all_tables(r)] == ["table2_main", "table9_11_per_dataset", "paper_vs_ours_main",
                                                      "paper_vs_ours_per_dataset"]


def _paper_csv():
    with resources.files("reports").joinpath("paper_data", "paper_per_dataset_ndcg10.csv").open(
            encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("paper_backbone", ["Llama3.2-1b", "Llama3.1-8b", "Qwen2.5-7b", "Mistral0.3-7b"])
def test_paper_column_is_the_paper_exactly(ledger, paper_backbone):
    write_metrics(ledger, "cranfield", "lightretriever", SMOL, "dense", 0.2, run="lr")  # not in the paper
    t = paper_vs_ours.paper_vs_ours(collect([ledger]), "per_dataset", paper_backbone)
    rows = list(csv.DictReader(io.StringIO(t.to_csv())))
    printed = {(r["backbone"], r["method"], r["dataset"]): r["ndcg_at_10"] for r in _paper_csv()}
    with_paper = 0
    for r in rows:
        paper_cell = r[f"Paper ({paper_backbone})"]
        if r["Data set"] == "Cranfield" or r["Method"].startswith("Untrained"):
            assert paper_cell == "-" and r["Diff"] == "-" and r["Ours"] != "-"
            continue
        backbone = "" if r["Method"] == "BM25" else paper_backbone
        # data sets print under the paper's own names (SciFact, NFCorpus)
        assert paper_cell == printed[(backbone, r["Method"], r["Data set"])]
        assert r["Diff"] == f"{float(r['Ours']) - float(paper_cell):+.1f}"
        with_paper += 1
    # BM25 and four model methods on both data sets; nothing of ours dropped (cranfield, untrained kept)
    assert with_paper == 2 + 4 * 2
    assert (SMOLD, "LightRetriever Dense", "Cranfield") in {(r["Backbone"], r["Method"], r["Data set"]) for r in rows}
    assert "Data sets the paper does not report: Cranfield." in t.notes
    assert "No counterpart in the paper: Untrained backbone (Dense)." in t.notes


def test_paper_vs_ours_main_ablations_kl_speed(results):
    main = paper_vs_ours.paper_vs_ours(results, "main", "Llama3.2-1b").to_markdown()
    assert "|  | LightRetriever | SciFact | 71.5 | 60.3 | -11.2 |" in main
    abl = paper_vs_ours.paper_vs_ours(results, "ablations", "Llama3.1-8b").to_markdown()
    assert "|  | A3 1-layer query | Hybrid | SciFact | BEIR avg. | 50.1 | 55.0 | +4.9 |" in abl
    assert "|  | LightRetriever | Hybrid | SciFact | BEIR avg. | 54.4 | 60.3 | +5.9 |" in abl
    # the paper has no Llama3.1-8b A1: shown as "-", not dropped
    assert "|  | A1 both-side light | Both-side light | SciFact | BEIR avg. | - | 30.1 | - |" in abl
    kl = paper_vs_ours.paper_vs_ours(results, "kl", "Llama3.1-8b").to_markdown()
    assert "|  | with | Sparse | SciFact | BEIR avg. | 49.5 | 56.9 | +7.4 |" in kl
    assert "|  | without | Dense | NFCorpus | BEIR avg. | 50.8 | 28.1 | -22.7 |" in kl
    # speed as ratios: paper Llama8b encode 109.4853 / 0.0412 = 2,657x and QPS 6999 / 549 = 12.7x;
    # ours 2.5 / 0.01 = 250x and 833.3 / 104.9 = 7.9x
    speed = paper_vs_ours.paper_vs_ours(results, "speed", "Llama3.1-8b").to_markdown()
    assert ("| Full-SmolLM2 vs LightRetriever-SmolLM2 | cpu | Encode speed-up (full / light encode s) | 2,657x | "
            "2,397x | 250x |") in speed
    assert "|  | cpu | QPS ratio (light / full QPS) | 12.7x | 11.8x | 7.9x |" in speed
    assert "Paper Llama8b (A800 GPU)" in speed
    with pytest.raises(ConfigError, match="unknown paper backbone"):
        paper_vs_ours.paper_vs_ours(results, "main", "GPT-5")


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
    assert "|  | LightRetriever | 30.5 | **50.0** | **60.0** | **70.0** | 61.3\u2020 |" in t2
    assert (f"\u2020 2 results for one cell (scifact / smollm2-135m-instruct / lightretriever / hybrid) that are not "
            f"distinct seeds; the cell shows their mean. nDCG@10 of each: 62.3 ({dup}), 60.3 ({first}).") in t2
    all_tables = tables.all_tables(r)
    assert len(all_tables) == 11  # the training-losses table too
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
        f"{SMOLD} full LLM query,\"cpu, 2 threads\",64,0.0200,3.1800,0.0100,3.2100,19.9,-",
        f"{SMOLD} light dense,\"cpu, 2 threads\",64,0.0100,0.0020,0.0080,0.0200,3200,55.2",
        f"{SMOLD} light sparse,\"cpu, 2 threads\",64,0.0100,0.0010,0.0500,0.0610,1049,-",
        f"{SMOLD} light hybrid,\"cpu, 2 threads\",64,0.0200,0.0030,0.0570,0.0800,800,60.3"]
    # ratios of one speed.json: encode 3.18 / 0.003 = 1,060x; QPS 800 / 19.9 = 40.1x (qps rounded in the file)
    rows = paper_vs_ours.paper_vs_ours(r, "speed", "Llama3.1-8b").to_csv().splitlines()
    assert rows[1:] == [f"{SMOLD} full LLM query vs {SMOLD} light hybrid,\"cpu, 2 threads\","
                        "Encode speed-up (full / light encode s),\"2,657x\",\"2,397x\",\"1,060x\"",
                        f"{SMOLD} full LLM query vs {SMOLD} light hybrid,\"cpu, 2 threads\","
                        "QPS ratio (light / full QPS),12.7x,11.8x,40.1x"]


def test_bold_compares_printed_values():
    t = table_model.Table("t", "c", ["Row"], [table_model.Column("x", "max"), table_model.Column("s", "min"),
                                         table_model.Column("d", None)])
    t.rows = [table_model.Row(["a"], [table_model.Cell(50.04), table_model.Cell(1.00001, "sec"), table_model.Cell(9.0, "delta")]),
              table_model.Row(["b"], [table_model.Cell(49.96), table_model.Cell(1.0, "sec"), table_model.Cell(-0.04, "delta")]),
              table_model.Row(["c"], [table_model.Cell(None), table_model.Cell(2.0, "sec", rank=False), table_model.Cell(None, "delta")])]
    assert t.to_csv() == "Row,x,s,d\na,50.0,1.0000,+9.0\nb,50.0,1.0000,+0.0\nc,-,2.0000,-\n"
    assert t.bold() == [[True, True, False], [True, True, False], [False, False, False]]



@pytest.fixture
def test_only_variants():
    """Two throw-away variants registered the way ablations/*.py register theirs (removed after the test)."""
    from lr_core.variants import register_variant, unregister_variant

    @register_variant("zz_test_t5", "test only", "Table 5: test", display="Test-only T5 variant", table="table5",
                      representations=("dense", "hybrid"), reference=("lightretriever", None))
    class T5:
        pass

    @register_variant("zz_test_t34", "test only", "Tables 3-4: test", display="Test-only ablation",
                      table="table3_4", representations=("sparse",), reference=("lightretriever", None),
                      columns={"Train query": "Tiny", "Infer query": "Tiny"})
    class T34:
        pass

    yield
    unregister_variant("zz_test_t5")
    unregister_variant("zz_test_t34")


def test_a_registered_variant_appears_in_its_table_with_its_display_name(ledger, test_only_variants):
    write_metrics(ledger, "scifact", "zz_test_t5", SMOL, "dense", 0.581, run="t5")
    write_metrics(ledger, "scifact", "zz_test_t5", SMOL, "hybrid", 0.622, run="t5")
    write_metrics(ledger, "scifact", "zz_test_t34", SMOL, "sparse", 0.5, run="t34")
    r = collect([ledger])
    t5 = tables.table5_kl(r)
    headers = [c.header for c in t5.columns]
    assert headers.count("Test-only T5 variant") == 2  # one column per data set, beside LightRetriever + KL
    rows = {row.labels[1]: [c.text() for c in row.cells] for row in t5.rows}
    # SciFact: LightRetriever, + KL, Delta, test variant, Delta; dense 58.1 - 55.2 = +2.9, hybrid 62.2 - 60.3 = +1.9
    assert rows["Dense"][5:] == ["55.2", "56.1", "+0.9", "58.1", "+2.9"]
    assert rows["Hybrid"][5:] == ["60.3", "61.1", "+0.8", "62.2", "+1.9"]
    assert rows["Sparse"][5:] == ["57.1", "56.9", "-0.2", "-", "-"]  # not a representation it reports
    t34 = tables.table3_4_ablations(r).to_markdown()
    # its own block: LightRetriever sparse (57.1) as the reference, 50.0 - 57.1 = -7.1; its label columns
    assert "|  | LightRetriever | Full | Full | Emb | Full | Sparse | 29.0 | - | 57.1 | - |" in t34
    assert "|  | Test-only ablation | Tiny | - | Tiny | - | Sparse | - | - | 50.0 | -7.1 |" in t34
    t9 = tables.table9_11_per_dataset(r).to_markdown()
    assert "|  | Test-only T5 variant (Dense) | - | 58.1 | - |" in t9
    assert "zz_test" not in t9 + t34 + t5.to_markdown()


def test_seeds_give_mean_std_and_n_while_other_duplicates_stay_flagged(tmp_path):
    for seed, v in ((1, 0.60), (2, 0.62), (3, 0.64)):
        write_metrics(tmp_path, "scifact", "lightretriever", SMOL, "hybrid", v, run=f"lr-s{seed}", seed=seed)
    write_metrics(tmp_path, "scifact", "symmetric", SMOL, "symmetric", 0.61, run="sym-a", seed=7)
    write_metrics(tmp_path, "scifact", "symmetric", SMOL, "symmetric", 0.63, run="sym-b", seed=7)  # same seed
    r = collect([tmp_path])
    recs = r.records.set_index("source")
    assert not recs.loc[recs["setting"] == "lightretriever", "duplicate"].any()
    assert recs.loc[recs["setting"] == "symmetric", "duplicate"].all()
    t2 = tables.table2_main(r)
    rows = {row.labels[1]: row.cells for row in t2.rows}
    # mean 62.0, sample standard deviation of 60, 62, 64 = 2.0, n = 3
    lr = rows["LightRetriever"][0]
    assert (lr.text(), lr.marks, lr.n) == ("62.0 \u00b1 2.0 (3)", "", 3)
    sym = rows["Full Symmetric"][0]
    assert (sym.text(), sym.marks) == ("62.0", "\u2020")  # a repeated seed is a duplicate, not a seed
    md = t2.to_markdown()
    assert "a \u00b1 s (n): mean and sample standard deviation over n seeds of one experiment." in md
    assert "not distinct seeds" in md
    assert "62.0 $\\pm$ 2.0 (3)" in t2.to_latex()


def _scores(n: int, seed: int, shift: float = 0.0) -> dict[str, float]:
    import random

    rng = random.Random(seed)
    return {f"q{i}": min(1.0, max(0.0, rng.uniform(0.2, 0.8) + shift)) for i in range(n)}


def test_a_planted_difference_is_marked_and_noise_is_not(tmp_path):
    base = _scores(60, 1)
    planted = {q: min(1.0, v + 0.15) for q, v in base.items()}  # the same queries, 15 points better
    noise = {q: v + (0.01 if i % 2 else -0.01) for i, (q, v) in enumerate(base.items())}  # mean unchanged
    mean = lambda d: sum(d.values()) / len(d)  # noqa: E731
    write_metrics(tmp_path, "scifact", "symmetric", SMOL, "symmetric", mean(base), run="sym", per_query=base)
    write_metrics(tmp_path, "scifact", "lightretriever", SMOL, "hybrid", mean(planted), run="lr", per_query=planted)
    write_metrics(tmp_path, "scifact", "lightretriever", SMOL, "dense", mean(noise), run="lr", per_query=noise)
    write_metrics(tmp_path, "scifact", "lightretriever", SMOL, "sparse", 0.3, run="old")  # no per-query file
    r = collect([tmp_path])
    t9 = tables.table9_11_per_dataset(r)
    marks = {row.labels[1]: row.cells[0].marks for row in t9.rows}
    assert marks["LightRetriever (Hybrid)"] == "*" and marks["LightRetriever (Dense)"] == ""
    assert marks["LightRetriever (Sparse)"] == ""
    notes = " ".join(t9.notes)
    assert "paired two-sided t-test on per-query nDCG@10, Holm-corrected over the 2 comparisons" in notes
    assert "1 significant" in notes and "1 comparison(s) with Full Symmetric (Full-LLM query)" in notes
    assert "\\*" in t9.to_markdown() and "\\textsuperscript{*}" in t9.to_latex()
