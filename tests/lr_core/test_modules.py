"""LightningModules: every variant and every experiment config fits; resume after a crash."""
from __future__ import annotations

import csv
import json
import math

import lightning as L
import pytest
import torch

from lr_core.backbone import tiny_llama
from lr_core.cli import main
from lr_core.modules import RetrieverModule
from lr_core.train import fit
from lr_core.variants import list_variants

from tests.helpers import EXPERIMENT_CONFIGS, REPO, fast_config, write_subset

TINY = REPO / "experiments" / "tiny.yaml"


def tiny_llama_params():
    return list(tiny_llama(vocab_size=49152).parameters())


def read_log(run_dir):
    with open(run_dir / "logs" / "metrics.csv") as fh:
        return [row for row in csv.DictReader(fh) if row.get("train/loss")]


@pytest.fixture(scope="module")
def tiny_beir(shared_data, tmp_path_factory):
    return write_subset(shared_data, "scifact", tmp_path_factory.mktemp("beir"), n_queries=6, n_extra_docs=30).parent


@pytest.mark.parametrize("variant", sorted(list_variants()))
def test_every_variant_fits_two_steps_and_evaluates(variant, tmp_path, tiny_beir, capsys):
    run_dir = fit(fast_config(TINY, tmp_path, [f"variant={variant}"]))
    rows = read_log(run_dir)
    assert [int(r["step"]) for r in rows] == [0, 1]
    assert all(torch.isfinite(torch.tensor(float(r["train/loss"]))) for r in rows)
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 2 and ckpt["lr_variant"] == variant
    # only trainable weights are stored (adapters): the frozen backbone is rebuilt from the config
    stored = sum(v.numel() for v in ckpt["state_dict"].values())
    assert 0 < stored < 0.5 * sum(p.numel() for p in tiny_llama_params())
    # and the same `lr evaluate` path scores it, with the representations the variant declares
    assert main(["evaluate", str(run_dir), "--dataset", "scifact", "--data-dir", str(tiny_beir),
                 "--out", str(tmp_path / "eval")]) == 0
    reps = list_variants()[variant].cls.eval_representations
    for rep in reps:
        rec = json.loads((tmp_path / "eval" / "scifact" / rep / "metrics.json").read_text())
        assert rec["variant"] == variant and rec["num_queries"] == 6 and 0 <= rec["ndcg@10"] <= 1


@pytest.mark.parametrize("path", [p for p in EXPERIMENT_CONFIGS if p.stem != "tiny"], ids=lambda p: p.stem)
def test_every_experiment_config_fast_runs(path, tmp_path):
    run_dir = fit(fast_config(path, tmp_path))
    assert (run_dir / "train_done.json").is_file() and (run_dir / "config.yaml").is_file()
    assert len(read_log(run_dir)) == 2


def test_lightretriever_loss_terms(tmp_path):
    rows = read_log(fit(fast_config(TINY, tmp_path, ["loss.flops_warmup_steps=4"])))
    for key in ("train/full_dense", "train/light_dense", "train/light_sparse", "train/flops"):
        assert float(rows[0][key]) > 0, key
    # step 0 has FLOPs weight 0 (quadratic warm-up), so the total is the three CE terms
    ce = sum(float(rows[0][k]) for k in ("train/full_dense", "train/light_dense", "train/light_sparse"))
    assert float(rows[0]["train/loss"]) == pytest.approx(ce, rel=1e-5)
    # step 1: weight 1e-3 * (1/4)^2
    ce1 = sum(float(rows[1][k]) for k in ("train/full_dense", "train/light_dense", "train/light_sparse"))
    assert float(rows[1]["train/loss"]) == pytest.approx(ce1 + 1e-3 / 16 * float(rows[1]["train/flops"]), rel=1e-5)


@pytest.mark.parametrize("variant,lr,limits", [
    ("symmetric", 3e-3, {"train/full_dense": 0.25}),
    ("lightretriever", 3e-3, {"train/full_dense": 0.25, "train/light_dense": 0.75}),
    ("symmetric", 0.0, {"train/full_dense": None}),  # control: without updates the loss stays high
], ids=["symmetric", "lightretriever", "symmetric-lr0"])
def test_training_fits_a_small_training_set(variant, lr, limits, tmp_path):
    """Gradients reach the adapters: on 10 fixed examples the contrastive losses fall far below a
    uniform guess over the batch's documents (wrong labels, detached embeddings or frozen adapters
    leave them at or above it, as the lr=0 control shows)."""
    extra = [f"variant={variant}", "data.train=[{jsonl: train_samples/msmarco.jsonl}]", "data.batch_size=4",
             "data.n_negatives=1", "trainer.max_steps=30", f"optim.lr={lr}", "optim.warmup_steps=1",
             "trainer.checkpoint_every_n_steps=30", "model.lora.dropout=0.0", "loss.flops_weight=0.0"]
    rows = read_log(fit(fast_config(TINY, tmp_path, extra)))
    uniform = math.log(4 * 2)  # 4 queries x (1 positive + 1 negative) in-batch documents
    for key, limit in limits.items():
        last = sum(float(r[key]) for r in rows[-5:]) / 5
        if limit is None:
            assert last > uniform, (key, last)
        else:
            assert last < limit * uniform, (key, last, uniform)


class Crash(L.Callback):
    def __init__(self, at_step: int):
        self.at_step = at_step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.at_step:
            raise RuntimeError("simulated crash")


def adapters(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]


def test_resume_after_crash_continues_to_the_same_model(tmp_path):
    # 20 examples in 2 sources, batch 4: 4 batches per epoch; 6 steps cross an epoch boundary.
    extra = ["trainer.max_steps=6", "data.batch_size=4", "model.lora.dropout=0.0"]
    straight = fit(fast_config(TINY, tmp_path / "a", extra))
    interrupted = fast_config(TINY, tmp_path / "b", extra)
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(interrupted, extra_callbacks=[Crash(at_step=3)])
    saved = torch.load(interrupted.resolved_run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert 1 <= saved["global_step"] < 6
    resumed = fit(interrupted)
    steps = [int(r["step"]) for r in read_log(resumed)]
    # the log keeps the steps before the crash (it is appended to, not replaced)
    assert steps[0] == 0 and steps[-1] == 5 and set(steps) == set(range(6))
    a, b = adapters(straight), adapters(resumed)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5)


def test_resuming_with_a_different_config_is_refused(tmp_path):
    from lr_core.errors import ConfigError

    fit(fast_config(TINY, tmp_path))
    with pytest.raises(ConfigError, match="different config"):
        fit(fast_config(TINY, tmp_path, ["loss.tau_dense=0.1"]))


def test_variants_are_small_subclasses():
    """Every registered variant subclasses the shared modules and overrides a handful of members."""
    for name, v in list_variants().items():
        assert issubclass(v.cls, RetrieverModule), name
        if v.cls is RetrieverModule:
            continue
        overridden = {k for k in vars(v.cls) if not k.startswith("__")}
        assert len(overridden) <= 8, (name, overridden)


def test_schedules_and_term_weights_are_applied_and_logged_every_step(tmp_path):
    extra = ["trainer.max_steps=3", "loss.flops_start_step=1", "loss.flops_warmup_steps=2",
             "loss.tau_dense=0.05", "loss.tau_dense_end=0.02", "loss.tau_anneal_steps=2", "loss.tau_light_dense=0.1",
             "loss.term_weights={light_dense: 2.0, light_sparse: 0.5}", "trainer.log_every_n_steps=1"]
    rows = read_log(fit(fast_config(TINY, tmp_path, extra)))
    assert [int(r["step"]) for r in rows] == [0, 1, 2]
    assert [float(r["train/flops_weight"]) for r in rows] == pytest.approx([0.0, 0.0, 1e-3 / 4])
    assert [float(r["train/full_dense_tau"]) for r in rows] == pytest.approx([0.05, 0.035, 0.02])
    assert [float(r["train/light_dense_tau"]) for r in rows] == pytest.approx([0.1] * 3)
    assert {float(r["train/light_dense_weight"]) for r in rows} == {2.0}
    for r in rows:
        expect = (float(r["train/full_dense"]) + 2.0 * float(r["train/light_dense"])
                  + 0.5 * float(r["train/light_sparse"]) + float(r["train/flops_weight"]) * float(r["train/flops"]))
        assert float(r["train/loss"]) == pytest.approx(expect, rel=1e-5)


def test_a_term_weight_for_a_missing_term_is_a_config_error(tmp_path):
    from lr_core.errors import ConfigError

    with pytest.raises(ConfigError, match="light_dense"):
        fit(fast_config(TINY, tmp_path, ["variant=symmetric", "loss.term_weights={light_dense: 2.0}"]))


@pytest.mark.parametrize("below,started", [(1e6, 0), (1e-6, None)], ids=["met-at-once", "never-met"])
def test_flops_can_start_once_the_dense_losses_are_low(below, started, tmp_path):
    run_dir = fit(fast_config(TINY, tmp_path, [f"loss.flops_start_below={below}", "loss.flops_warmup_steps=0"]))
    weights = [float(r["train/flops_weight"]) for r in read_log(run_dir)]
    assert weights == pytest.approx([1e-3, 1e-3] if started == 0 else [0.0, 0.0])
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["lr_flops_start"]["started_at"] == started  # a resumed run keeps the decision


def test_warm_start_loads_another_runs_adapters_and_records_it(tmp_path):
    from lr_core.errors import ConfigError

    source = fit(fast_config(TINY, tmp_path / "sym", ["variant=symmetric"]))
    # lr 0: the warm-started run's adapters must stay exactly the source's
    warm = fit(fast_config(TINY, tmp_path / "joint", [f"init_from={source}", "optim.lr=0.0"]))
    a, b = adapters(source), adapters(warm)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    done = json.loads((warm / "train_done.json").read_text())
    assert done["init_from"]["variant"] == "symmetric"
    assert done["init_from"]["checkpoint"] == str(source / "checkpoints" / "last.ckpt")
    cold = fit(fast_config(TINY, tmp_path / "cold", ["optim.lr=0.0"]))
    assert json.loads((cold / "train_done.json").read_text())["init_from"] is None
    assert not all(torch.equal(a[k], adapters(cold)[k]) for k in a)
    with pytest.raises(ConfigError, match="init_from"):
        fit(fast_config(TINY, tmp_path / "bad", [f"init_from={tmp_path / 'nowhere'}"]))


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_lora_dropout_setting_reaches_the_adapters(dropout, tmp_path):
    from lr_core.train import build_module

    module = build_module(fast_config(TINY, tmp_path, [f"model.lora.dropout={dropout}"]))
    drops = [m for n, m in module.named_modules() if n.endswith("lora_dropout.default")]
    assert drops and all((getattr(m, "p", 0.0) == dropout) for m in drops)


def test_gathered_loss_scale_selects_what_goes_backward(tmp_path):
    """`world_size` back-propagates the world-size scaled terms; `none` (the authors') the plain ones."""
    from lr_core.errors import ConfigError
    from lr_core.modules import LossTerm, LightRetrieverModule

    terms = {"ce": LossTerm(torch.tensor(1.0), torch.tensor(2.0)), "flops": LossTerm(torch.tensor(3.0),
                                                                                   torch.tensor(6.0), 0.5)}
    weights = {n: t.weight for n, t in terms.items()}
    scaled = LightRetrieverModule(fast_config(TINY, tmp_path))
    assert scaled.backward_total(terms, weights).item() == pytest.approx(2.0 + 0.5 * 6.0)
    plain = LightRetrieverModule(fast_config(TINY, tmp_path, ["loss.gathered_loss_scale=none"]))
    assert plain.backward_total(terms, weights).item() == pytest.approx(1.0 + 0.5 * 3.0)
    with pytest.raises(ConfigError, match="gathered_loss_scale"):
        LightRetrieverModule(fast_config(TINY, tmp_path, ["loss.gathered_loss_scale=sum"]))


# -- light-query centring (model.light_centre, model.cache_centre) -------------------------------
def _centring_module(tmp_path, variant="lightretriever", *overrides):
    from lr_core.variants import get_variant
    from tests.helpers import REPO, fast_config

    cfg = fast_config(REPO / "experiments" / "tiny.yaml", tmp_path, [f"variant={variant}", "model.lora.dropout=0.0",
                                                                      *overrides])
    return get_variant(variant).cls(cfg)


@pytest.mark.parametrize("variant,has_centre", [("lightretriever", True), ("kl", True), ("mrl", True),
                                                ("a1_both_light", True), ("a2_embedding_query", False),
                                                ("a3_one_layer_query", False)])
def test_learned_light_centre_comes_from_the_config_for_every_token_cache_variant(tmp_path, variant, has_centre):
    m = _centring_module(tmp_path, variant, "model.light_centre=learned")
    assert (m.light_centre is not None) == has_centre
    assert ("light_centre" in m.trainable_names()) == has_centre
    assert _centring_module(tmp_path / "plain", variant).light_centre is None  # the paper's default


def test_cache_centre_subtracts_the_vocabulary_mean_and_serving_stays_exact(tmp_path):
    from tests.ablations.conftest import INSTRUCTION, QUERIES

    plain = _centring_module(tmp_path / "a").eval()
    centred = _centring_module(tmp_path / "b", "lightretriever", "model.cache_centre=vocab_mean").eval()
    centred.load_state_dict(plain.state_dict())
    raw = plain.build_query_cache(INSTRUCTION, "tiny", "h", batch_size=4096)
    cache = centred.build_query_cache(INSTRUCTION, "tiny", "h", batch_size=4096)
    mean = raw.vectors.astype("float64").mean(axis=0)
    assert abs(cache.vectors.astype("float64").mean(axis=0)).max() < 1e-5
    assert cache.metadata.build_seconds > 0  # the build's time survives the centring
    ids = plain.tokenizer.light_query_ids(QUERIES)
    # serving (lookup, mean, L2) of the centred cache = the plain query's unnormalised mean minus the centre
    unnorm = torch.stack([torch.from_numpy(raw.vectors[i].mean(axis=0) - mean).float() for i in ids])
    want = torch.nn.functional.normalize(unnorm, dim=-1)
    torch.testing.assert_close(torch.from_numpy(cache.encode(ids)), want, atol=1e-4, rtol=0)
    assert not torch.allclose(torch.from_numpy(raw.encode(ids)), want, atol=1e-2)


def test_learned_centre_and_cache_centre_compose(tmp_path):
    from tests.ablations.conftest import INSTRUCTION

    m = _centring_module(tmp_path, "lightretriever", "model.light_centre=learned",
                         "model.cache_centre=vocab_mean").eval()
    with torch.no_grad():
        m.light_centre.normal_()
    cache = m.build_query_cache(INSTRUCTION, "tiny", "h", batch_size=4096)
    assert abs(cache.vectors.astype("float64").mean(axis=0)).max() < 1e-5  # a constant shift is absorbed


@pytest.mark.parametrize("key", ["model.light_centre", "model.cache_centre"])
def test_unknown_centre_is_a_config_error(tmp_path, key):
    from lr_core.errors import ConfigError

    with pytest.raises(ConfigError, match=key):
        _centring_module(tmp_path, "lightretriever", f"{key}=median")


def test_a_centred_cache_is_kept_in_its_own_file(tmp_path):
    from lr_core.retrieval.evaluate import vocab_cache_path

    assert vocab_cache_path(tmp_path, "lightretriever", "x") != vocab_cache_path(tmp_path, "lightretriever", "x",
                                                                                 "vocab_mean")


def test_cpu_bf16_mixed_training_runs_the_loss_under_autocast(tmp_path, monkeypatch):
    """trainer.precision=bf16-mixed on the CPU (1.48x faster steps here, not exact; see
    reports/benchmarks/2026-12-02-train-step.md): the loss terms run under bf16 autocast, the
    LoRA weights and their optimizer stay float32, and the losses stay finite."""
    from lr_core.modules import LightRetrieverModule

    seen = []
    original = LightRetrieverModule.loss_terms

    def spy(self, batch):
        seen.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16)
        return original(self, batch)

    monkeypatch.setattr(LightRetrieverModule, "loss_terms", spy)
    run_dir = fit(fast_config(TINY, tmp_path / "bf16", ["trainer.precision=bf16-mixed", "trainer.log_every_n_steps=1"]))
    assert seen == [True, True]
    assert all(math.isfinite(float(r["train/loss"])) for r in read_log(run_dir))
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert {v.dtype for k, v in state.items() if "lora_" in k} == {torch.float32}
    seen.clear()
    fit(fast_config(TINY, tmp_path / "fp32", ["trainer.accelerator=cpu"]))
    assert seen == [False, False]  # auto on the CPU is 32-true
