"""LightningModules: the symmetric baseline and LightRetriever, on the shared encoder core.

A module turns a :class:`~lr_core.data.datamodule.TrainBatch` into named loss terms in
:meth:`RetrieverModule.loss_terms`; a variant is a subclass overriding that method (or the
encoder method it calls). Everything else (optimiser, schedule, checkpoint format) is here
once.

Checkpoints keep only trainable weights (the LoRA adapters): the frozen backbone is rebuilt
from ``model.backbone`` when loading.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import lightning as L
import torch

from lr_core.backbone import add_lora, load_backbone
from lr_core.config import ExperimentConfig
from lr_core.data.datamodule import TrainBatch
from lr_core.dense import mean_of_token_states
from lr_core.encoder import RetrievalEncoder
from lr_core.errors import ConfigError
from lr_core.losses import GATHERED_LOSS_SCALES, contrastive_loss, flops_loss
from lr_core.schedules import FlopsStart, flops_weight, linear_anneal, warmup_cosine
from lr_core.variants import register_variant


LIGHT_CENTRES = ("none", "learned")  # model.light_centre
CACHE_CENTRES = ("none", "vocab_mean")  # model.cache_centre


@dataclass
class LossTerm:
    loss: torch.Tensor  # for logging
    backward: torch.Tensor  # what gradients flow from (world-size scaled for gathered losses)
    weight: float = 1.0  # scheduled weight (FLOPs, KL); ``loss.term_weights`` multiplies it
    tau: float | None = None  # the temperature it was computed with (logged)


def device_hint(cfg: ExperimentConfig) -> str:
    wants_gpu = cfg.trainer.accelerator in ("auto", "gpu", "cuda")
    return "cuda" if wants_gpu and torch.cuda.is_available() else "cpu"


def trainable_state_hash(module: torch.nn.Module) -> str:
    """Hash of the trainable weights: identifies a checkpoint in cache metadata."""
    h = hashlib.sha256()
    for name, p in sorted(module.named_parameters()):
        if p.requires_grad:
            h.update(name.encode())
            h.update(p.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


@register_variant("symmetric", "full LLM on both sides, dense EOS pooling (the baseline)", "Table 2: Full Symmetric",
                  display="Full Symmetric", table="table2", representations=("symmetric",))
class RetrieverModule(L.LightningModule):
    """Symmetric dense baseline: ``<bos> prompt query <eos>`` vs ``<bos> doc <eos>``, contrastive CE."""

    # What `lr evaluate` reports for this variant by default (see lr_core.retrieval.evaluate).
    eval_representations: tuple[str, ...] = ("symmetric",)
    # How light dense queries are encoded at serve time: "cache" (a vocabulary-cache lookup,
    # servable without an LLM) or "network" (serve_dense_queries runs part of the model, e.g. A3).
    query_side: str = "cache"
    # query_side "network": how many transformer layers its queries run (None: the whole LLM);
    # `lr bench speed --a3-run-dir` times exactly that path.
    query_layers: int | None = None
    # Also evaluated (dense only) at the sweep's `evaluate.mrl_dims` widths (Matryoshka training).
    eval_at_widths: bool = False

    def __init__(self, cfg: ExperimentConfig, device: str | torch.device = "cpu"):
        """``device``: where the backbone is built (training: the CPU, Lightning moves it; evaluation:
        its device, so that ``model.attn: auto`` resolves for it, e.g. flash-attention 2 on CUDA)."""
        super().__init__()
        if cfg.loss.gathered_loss_scale not in GATHERED_LOSS_SCALES:
            raise ConfigError(f"loss.gathered_loss_scale must be one of {GATHERED_LOSS_SCALES}, "
                              f"got {cfg.loss.gathered_loss_scale!r}")
        self.cfg = cfg
        self.strict_loading = False  # checkpoints hold adapters only
        lm, tokenizer = load_backbone(cfg.model.backbone, device=device, dtype=cfg.model.dtype, attn=cfg.model.attn,
                                      max_doc_len=cfg.data.max_doc_len, max_query_tokens=cfg.data.max_query_tokens)
        if str(device_hint(cfg)) == "cuda" and cfg.model.dtype == "auto":
            lm.to(torch.bfloat16)
        if cfg.model.gradient_checkpointing:
            lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        lm = add_lora(lm, cfg.model.lora)
        self.encoder = RetrievalEncoder(lm, tokenizer, sparse_chunk_size=cfg.model.sparse_chunk_size)
        self.tokenizer = tokenizer
        self.flops_start = FlopsStart(cfg.loss.flops_start_step, cfg.loss.flops_start_below)

    # -- schedules (lr_core/schedules.py) ----------------------------------------------
    def tau_dense(self, side: str = "full") -> float:
        """This step's dense temperature; ``side="light"`` gives the light dense loss's own if set."""
        lc = self.cfg.loss
        if side == "light" and lc.tau_light_dense is not None:
            return lc.tau_light_dense
        return linear_anneal(self.global_step, lc.tau_dense, lc.tau_dense_end, lc.tau_anneal_steps)

    def flops_term(self, flops: dict[str, torch.Tensor], dense_terms: dict[str, "LossTerm"]) -> "LossTerm":
        """The FLOPs regulariser (``{"loss", "backward"}``, :func:`lr_core.losses.flops_loss`) with this
        step's weight; a loss-triggered start (``loss.flops_start_below``) first sees this step's dense losses."""
        lc = self.cfg.loss
        if self.flops_start.started_at is None:
            self.flops_start.update(self.global_step, {n: float(t.loss.detach()) for n, t in dense_terms.items()})
        return LossTerm(flops["loss"], flops["backward"], flops_weight(self.global_step, lc.flops_weight,
                                                                       lc.flops_warmup_steps, self.flops_start.started_at))

    # -- what a variant changes ------------------------------------------------------
    def encode_documents(self, batch: TrainBatch, sparse: bool) -> dict[str, torch.Tensor]:
        return self.encoder.encode_document_ids(batch.doc_ids, batch.doc_mask, dense=True, sparse=sparse)

    def loss_terms(self, batch: TrainBatch) -> dict[str, LossTerm]:
        docs = self.encode_documents(batch, sparse=False)
        q = self.encoder.encode_full_query_ids(batch.full_query_ids, batch.full_query_mask, share_prefix=True)
        tau = self.tau_dense("full")
        out = contrastive_loss(q, docs["dense"], batch.group_size, tau)
        return {"full_dense": LossTerm(out["loss"], out["backward"], tau=tau)}

    # -- serving: how `lr evaluate` turns query texts into dense vectors ----------------
    def build_query_cache(self, instruction: str, model_id: str, checkpoint_hash: str, batch_size: int = 256):
        """The vocabulary cache the light dense queries are looked up in (``<bos> prompt t <eos>``)."""
        from lr_core.cache_build import build_vocab_cache

        return build_vocab_cache(self.encoder, instruction, model_id, checkpoint_hash, batch_size=batch_size)

    def serve_dense_queries(self, texts: list[str], instruction: str):
        """Dense query vectors [B, H] of a ``query_side = "network"`` variant (A3); cache-side
        variants are served by the vocabulary-cache lookup and never call this."""
        raise NotImplementedError(f"variant {self.variant_name!r} has query_side {self.query_side!r}: "
                                  "its dense queries are vocabulary-cache lookups")

    def centres_light_tokens(self) -> bool:
        """Whether ``model.light_centre`` / ``model.cache_centre`` act on this variant: they centre the
        prompted token vectors of LightRetriever's light path, so a variant that replaces that path
        (A2's embedding table, A3's one-layer encoder) is left as it is."""
        light = getattr(type(self), "light_dense_queries", None)
        return light is not None and light is LightRetrieverModule.light_dense_queries

    # -- shared machinery -------------------------------------------------------------
    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        return batch.to(device)

    def training_step(self, batch: TrainBatch, batch_idx: int) -> torch.Tensor:
        terms = self.loss_terms(batch)
        extra = self.cfg.loss.term_weights
        unknown = sorted(set(extra) - set(terms))
        if unknown:
            raise ConfigError(f"loss.term_weights names {unknown}, which variant {self.variant_name!r} does not have; "
                              f"its terms: {sorted(terms)}")
        weights = {name: t.weight * float(extra.get(name, 1.0)) for name, t in terms.items()}
        total = self.backward_total(terms, weights)
        logged = sum(weights[n] * t.loss.detach() for n, t in terms.items())
        for name, t in terms.items():
            self.log(f"train/{name}", t.loss.detach(), batch_size=len(batch))
            self.log(f"train/{name}_weight", weights[name], batch_size=len(batch))
            if t.tau is not None:
                self.log(f"train/{name}_tau", t.tau, batch_size=len(batch))
        self.log("train/loss", logged, prog_bar=True, batch_size=len(batch))
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=len(batch))
        return total

    def backward_total(self, terms: dict[str, LossTerm], weights: dict[str, float]) -> torch.Tensor:
        """What backward runs on: the weighted terms, world-size scaled unless ``gathered_loss_scale: none``.

        ``none`` (the authors' scaling) back-propagates each term's unscaled ``loss`` (see lr_core.losses).
        """
        scaled = self.cfg.loss.gathered_loss_scale == "world_size"
        return sum(weights[n] * (t.backward if scaled else t.loss) for n, t in terms.items())

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        o = self.cfg.optim
        opt = torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
        total = self.cfg.trainer.max_steps
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: warmup_cosine(s, o.warmup_steps, total, o.min_lr_ratio))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def trainable_names(self) -> set[str]:
        return {n for n, p in self.named_parameters() if p.requires_grad}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        keep = self.trainable_names()
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in keep}
        checkpoint["lr_variant"] = self.variant_name
        checkpoint["lr_backbone"] = self.cfg.model.backbone
        checkpoint["lr_flops_start"] = self.flops_start.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        missing = self.trainable_names() - set(checkpoint["state_dict"])
        if missing:
            raise RuntimeError(f"checkpoint lacks {len(missing)} trainable weights (e.g. {sorted(missing)[0]}); "
                               "was it written by a different variant or LoRA setting?")
        if "lr_flops_start" in checkpoint:
            self.flops_start.load_state_dict(checkpoint["lr_flops_start"])

    def load_adapter_checkpoint(self, path) -> str:
        """Load the trainable weights of a checkpoint written by this suite; returns their hash."""
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        self.on_load_checkpoint(ckpt)
        self.load_state_dict(ckpt["state_dict"], strict=False)
        return trainable_state_hash(self)


@register_variant("lightretriever", "joint recipe: symmetric dense + light dense + light sparse CE + FLOPs",
                  "Table 2: LightRetriever", display="LightRetriever", table="table2", representations=("hybrid",),
                  reference=("symmetric", "symmetric"),
                  columns={"Train query": "Full", "Train doc": "Full", "Infer query": "Emb", "Infer doc": "Full"})
class LightRetrieverModule(RetrieverModule):
    """The released recipe: one LoRA trained with full dense + light dense + light sparse CE + lambda*FLOPs.

    Ablations override one piece: :meth:`light_dense_queries` (what the light query encoder
    is: A2, A3), :meth:`dense_loss` (MRL) or :meth:`terms_from` (extra terms: KL).
    """

    eval_representations = ("dense", "sparse", "hybrid", "symmetric")

    def __init__(self, cfg: ExperimentConfig, device: str | torch.device = "cpu"):
        super().__init__(cfg, device)
        if cfg.model.light_centre not in LIGHT_CENTRES:
            raise ConfigError(f"model.light_centre must be one of {LIGHT_CENTRES}, got {cfg.model.light_centre!r}")
        if cfg.model.cache_centre not in CACHE_CENTRES:
            raise ConfigError(f"model.cache_centre must be one of {CACHE_CENTRES}, got {cfg.model.cache_centre!r}")
        self.light_centre = None
        if cfg.model.light_centre == "learned" and self.centres_light_tokens():
            self.light_centre = torch.nn.Parameter(torch.zeros(self.encoder.hidden_size))

    def light_dense_queries(self, batch: TrainBatch) -> torch.Tensor:
        """Training-time light dense queries: mean of per-token prompted EOS states, L2-normalised."""
        if self.light_centre is None:
            return self.encoder.encode_light_query_batch(batch.light)
        # Learned centre: the untrained token vectors share one large component (mean pairwise
        # cosine 0.925 for SmolLM2), which makes every light query point the same way.
        states = self.encoder.packed_light_token_states(batch.light).float()
        mask = batch.light.token_mask.to(states.device)
        if self.training and self.global_step == 0:  # data-dependent initialisation (also on a warm start)
            with torch.no_grad():
                self.light_centre.copy_(states[mask].mean(dim=0))
        return mean_of_token_states(states - self.light_centre, mask)

    @torch.no_grad()
    def build_query_cache(self, instruction: str, model_id: str, checkpoint_hash: str, batch_size: int = 256):
        """The vocabulary cache, with the configured centres subtracted from every row. Serving stays
        exact: ``mean_t(v_t - c) = mean_t(v_t) - c``."""
        cache = super().build_query_cache(instruction, model_id, checkpoint_hash, batch_size)
        if not self.centres_light_tokens() or (self.light_centre is None and self.cfg.model.cache_centre == "none"):
            return cache
        from lr_core.cache_build import vocab_cache_from_vectors

        vectors = cache.vectors.astype("float32")
        if self.light_centre is not None:
            vectors = vectors - self.light_centre.detach().float().cpu().numpy()
        if self.cfg.model.cache_centre == "vocab_mean":
            vectors = vectors - vectors.mean(axis=0, dtype="float64").astype("float32")
        return vocab_cache_from_vectors(vectors, self.encoder, instruction, model_id, checkpoint_hash,
                                        build_seconds=cache.metadata.build_seconds)  # the build's own time

    def dense_loss(self, queries: torch.Tensor, docs: torch.Tensor, group_size: int,
                   tau: float) -> dict[str, torch.Tensor]:
        return contrastive_loss(queries, docs, group_size, tau)

    def encode_batch(self, batch: TrainBatch) -> dict[str, torch.Tensor]:
        docs = self.encode_documents(batch, sparse=True)
        return {"doc_dense": docs["dense"], "doc_sparse": docs["sparse"],
                "full_q": self.encoder.encode_full_query_ids(batch.full_query_ids, batch.full_query_mask,
                                                            share_prefix=True),
                "light_q": self.light_dense_queries(batch), "sparse_q": batch.sparse_query}

    def terms_from(self, reps: dict[str, torch.Tensor], batch: TrainBatch) -> dict[str, LossTerm]:
        lc = self.cfg.loss
        terms = {}
        for name in ("full", "light"):
            tau = self.tau_dense(name)
            out = self.dense_loss(reps[f"{name}_q"], reps["doc_dense"], batch.group_size, tau)
            terms[f"{name}_dense"] = LossTerm(out["loss"], out["backward"], tau=tau)
        out = contrastive_loss(reps["sparse_q"], reps["doc_sparse"], batch.group_size, lc.tau_sparse)
        terms["light_sparse"] = LossTerm(out["loss"], out["backward"], tau=lc.tau_sparse)
        # world_size: FLOPs over the global batch (exact DDP = 1 device); none: per rank, as the authors
        terms["flops"] = self.flops_term(flops_loss(reps["doc_sparse"], gather=lc.gathered_loss_scale == "world_size"),
                                         {n: terms[n] for n in ("full_dense", "light_dense")})
        return terms

    def loss_terms(self, batch: TrainBatch) -> dict[str, LossTerm]:
        return self.terms_from(self.encode_batch(batch), batch)
