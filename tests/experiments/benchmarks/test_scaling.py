"""`lr bench scaling` on the untrained tiny Llama: scaling.json and scaling.png with short sweeps."""
from __future__ import annotations

import json

import pytest

from experiments.benchmarks import scaling
from lr_core.encoder import RetrievalEncoder
from tests.experiments.benchmarks.test_speed import work  # noqa: F401  (SciFact subset + the tiny model's vocabulary cache)

LENGTHS, NS, FULL_NS, MS = (2, 8, 24), (8, 40), (3, 6), (50, 300)
ENCODE_TIMINGS = ("tokenize_s", "encode_s", "encode_s_per_query", "encode_qps", "tokenize_encode_s",
                  "tokenize_encode_qps")


def csv(values) -> str:
    return ",".join(map(str, values))


@pytest.fixture(scope="module")
def run(work):  # noqa: F811
    """One benchmark run; the token counts of every batch the full LLM encoded are recorded on the way."""
    seen = []
    encode = RetrievalEncoder.encode_full_query_ids

    def recording(self, input_ids, attention_mask, num_layers=None):
        seen.append(attention_mask.sum(dim=1).tolist())
        return encode(self, input_ids, attention_mask, num_layers)

    out = work / "scaling"
    argv = ["--backbone", "tiny-llama", "--work-dir", str(work / "work"), "--data-dir", str(work / "data"),
            "--lengths", csv(LENGTHS), "--full-queries", "3", "--light-queries", "20", "--ns", csv(NS),
            "--full-ns", csv(FULL_NS), "--ms", csv(MS), "--search-queries", "12", "--random-terms", "16",
            "--batch-size", "8", "--top-k", "10", "--out", str(out)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(RetrievalEncoder, "encode_full_query_ids", recording)
        assert scaling.main(argv) == 0
    return json.loads((out / "scaling.json").read_text()), out, seen


def test_report_has_every_point_with_positive_timings(run):
    report = run[0]
    assert report["command"].startswith("lr bench scaling --backbone tiny-llama")
    assert {"date", "machine", "libraries", "model", "instruction", "queries", "cache"} <= set(report)
    assert {"torch", "numpy", "scipy", "faiss-cpu"} <= set(report["libraries"])
    assert report["model"]["backbone"] == "tiny-llama" and report["model"]["hidden_size"] == 64
    assert report["machine"]["faiss_threads"] >= 1 and report["queries"]["datasets"] == {"scifact": 10}

    lengths = report["length_sweep"]["curves"]
    assert set(lengths) == {"full", "light_dense", "light_sparse"}
    for name, points in lengths.items():
        assert [p["L"] for p in points] == list(LENGTHS), name
        assert [p["queries"] for p in points] == [3 if name == "full" else 20] * len(LENGTHS)
        for p in points:
            assert all(p[t] > 0 for t in ENCODE_TIMINGS), (name, p)
            assert p["encode_s_per_query"] == pytest.approx(p["encode_s"] / p["queries"], rel=0.01)
    n_curves = report["n_sweep"]["curves"]
    assert [p["N"] for p in n_curves["full"]] == list(FULL_NS)
    for name in ("light_dense", "light_sparse"):
        assert [p["N"] for p in n_curves[name]] == list(NS)
    assert all(p[t] > 0 for points in n_curves.values() for p in points for t in ENCODE_TIMINGS)

    search = report["search_sweep"]
    assert [c["M"] for c in search["corpora"]] == list(MS) and search["queries"] == 12
    assert all(0 < c["sparse_terms_per_doc"] <= 16 for c in search["corpora"])
    for name in ("dense", "sparse", "hybrid"):
        points = search["curves"][name]
        assert [p["M"] for p in points] == list(MS), name
        assert all(p["search_s"] > 0 and p["search_qps"] == pytest.approx(12 / p["search_s"], rel=0.01) for p in points)
    assert all(p["fuse_s"] <= p["search_s"] for p in search["curves"]["hybrid"])


def test_length_sweep_queries_have_exactly_l_tokens(run):
    report, _, seen = run
    curves = report["length_sweep"]["curves"]
    assert [p["tokens"] for p in curves["light_dense"]] == list(LENGTHS)
    assert [p["tokens"] for p in curves["light_sparse"]] == list(LENGTHS)
    from lr_core.backbone import load_tokenizer

    prompt = load_tokenizer("tiny-llama").full_prompt_length(report["instruction"])
    full = [p["tokens"] for p in curves["full"]]
    assert full == [prompt + length + 1 for length in LENGTHS]  # <bos> prompt query <eos>
    # what the LLM was really given: the warm-up batch (real queries), one batch of 3 per length, the N sweep
    assert seen[1:1 + len(LENGTHS)] == [[tokens] * 3 for tokens in full]
    assert len(seen) == 1 + len(LENGTHS) + len(FULL_NS)


def test_png_is_written(run):
    out = run[1]
    assert (out / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.iterdir()) == ["scaling.json", "scaling.png"]  # no temporary file left


@pytest.mark.parametrize("option, value, message", [
    ("--lengths", "0", "--lengths needs one or more integers >= 1"),
    ("--ns", ",", "--ns needs one or more integers >= 1"),
    ("--ms", "10,x", "--ms takes comma-separated integers"),
    ("--full-queries", "0", "--full-queries must be >= 1"),
])
def test_bad_options_exit_2_with_a_message(work, capsys, option, value, message):  # noqa: F811
    out = work / "bad"
    argv = ["--backbone", "tiny-llama", "--work-dir", str(work / "work"), option, value, "--out", str(out)]
    assert scaling.main(argv) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_lr_bench_dispatches_to_scaling(work, capsys):  # noqa: F811
    from lr_core import cli

    status = cli.main(["bench", "scaling", "--backbone", "tiny-llama", "--work-dir", str(work / "work"),
                       "--lengths", "0", "--out", str(work / "bad")])  # main returns the status, never raises
    assert status == 2 and "lr bench scaling: error: --lengths" in capsys.readouterr().err


def test_default_lengths_stop_at_the_models_query_limit():
    from experiments.benchmarks.scaling import default_lengths

    assert default_lengths(64) == [4, 8, 16, 32, 64]
    assert default_lengths(100) == [4, 8, 16, 32, 64, 100]
    assert default_lengths(3) == [3]
