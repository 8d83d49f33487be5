"""LightningModules: the symmetric baseline and LightRetriever, on the shared encoder core.

A module turns a :class:`~lr_core.datamodule.TrainBatch` into named loss terms in
:meth:`RetrieverModule.loss_terms`; a variant is a subclass overriding that method (or the
encoder method it calls). Everything else (optimiser, schedule, checkpoint format) is here
once.

Checkpoints keep only trainable weights (the LoRA adapters): the frozen backbone is rebuilt
from ``model.backbone`` when loading.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import lightning as L
import torch

from lr_core.backbone import add_lora, load_backbone
from lr_core.config import ExperimentConfig
from lr_core.datamodule import TrainBatch
from lr_core.encoder import RetrievalEncoder
from lr_core.losses import contrastive_loss
from lr_core.sparse import flops_regularizer, flops_weight
from lr_core.variants import register_variant


@dataclass
class LossTerm:
    loss: torch.Tensor  # for logging
    backward: torch.Tensor  # what gradients flow from (world-size scaled for gathered losses)
    weight: float = 1.0


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Learning-rate factor: linear warm-up, then cosine from 1 to ``min_ratio`` at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


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

    # What `lr evaluate` reports for this variant by default (see lr_core.evaluate).
    eval_representations: tuple[str, ...] = ("symmetric",)

    def __init__(self, cfg: ExperimentConfig):
        super().__init__()
        self.cfg = cfg
        self.strict_loading = False  # checkpoints hold adapters only
        lm, tokenizer = load_backbone(cfg.model.backbone, device="cpu", dtype=cfg.model.dtype, attn=cfg.model.attn,
                                      max_doc_len=cfg.data.max_doc_len, max_query_tokens=cfg.data.max_query_tokens)
        if str(device_hint(cfg)) == "cuda" and cfg.model.dtype == "auto":
            lm.to(torch.bfloat16)
        if cfg.model.gradient_checkpointing:
            lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        lm = add_lora(lm, cfg.model.lora)
        self.encoder = RetrievalEncoder(lm, tokenizer, sparse_chunk_size=cfg.model.sparse_chunk_size)
        self.tokenizer = tokenizer

    # -- what a variant changes ------------------------------------------------------
    def encode_documents(self, batch: TrainBatch, sparse: bool) -> dict[str, torch.Tensor]:
        return self.encoder.encode_document_ids(batch.doc_ids, batch.doc_mask, dense=True, sparse=sparse)

    def loss_terms(self, batch: TrainBatch) -> dict[str, LossTerm]:
        docs = self.encode_documents(batch, sparse=False)
        q = self.encoder.encode_full_query_ids(batch.full_query_ids, batch.full_query_mask)
        out = contrastive_loss(q, docs["dense"], batch.group_size, self.cfg.loss.tau_dense)
        return {"full_dense": LossTerm(out["loss"], out["backward"])}

    # -- serving: how `lr evaluate` turns query texts into dense vectors ----------------
    def build_query_cache(self, instruction: str, model_id: str, checkpoint_hash: str, batch_size: int = 256):
        """The vocabulary cache the light dense queries are looked up in (``<bos> prompt t <eos>``)."""
        from lr_core.cache import build_vocab_cache

        return build_vocab_cache(self.encoder, instruction, model_id, checkpoint_hash, batch_size=batch_size)

    def serve_dense_queries(self, texts: list[str], instruction: str):
        """Query vectors that need a network at serve time (A3); ``None``: use the cache lookup."""
        return None

    # -- shared machinery -------------------------------------------------------------
    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        return batch.to(device)

    def training_step(self, batch: TrainBatch, batch_idx: int) -> torch.Tensor:
        terms = self.loss_terms(batch)
        total = sum(t.weight * t.backward for t in terms.values())
        logged = sum(t.weight * t.loss.detach() for t in terms.values())
        for name, t in terms.items():
            self.log(f"train/{name}", t.loss.detach(), batch_size=len(batch))
        self.log("train/loss", logged, prog_bar=True, batch_size=len(batch))
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=len(batch))
        return total

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

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        missing = self.trainable_names() - set(checkpoint["state_dict"])
        if missing:
            raise RuntimeError(f"checkpoint lacks {len(missing)} trainable weights (e.g. {sorted(missing)[0]}); "
                               "was it written by a different variant or LoRA setting?")

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

    def light_dense_queries(self, batch: TrainBatch) -> torch.Tensor:
        """Training-time light dense queries: mean of per-token prompted EOS states, L2-normalised."""
        return self.encoder.encode_light_query_batch(batch.light)

    def dense_loss(self, queries: torch.Tensor, docs: torch.Tensor, group_size: int) -> dict[str, torch.Tensor]:
        return contrastive_loss(queries, docs, group_size, self.cfg.loss.tau_dense)

    def encode_batch(self, batch: TrainBatch) -> dict[str, torch.Tensor]:
        docs = self.encode_documents(batch, sparse=True)
        return {"doc_dense": docs["dense"], "doc_sparse": docs["sparse"],
                "full_q": self.encoder.encode_full_query_ids(batch.full_query_ids, batch.full_query_mask),
                "light_q": self.light_dense_queries(batch), "sparse_q": batch.sparse_query}

    def terms_from(self, reps: dict[str, torch.Tensor], batch: TrainBatch) -> dict[str, LossTerm]:
        lc = self.cfg.loss
        terms = {}
        for name in ("full", "light"):
            out = self.dense_loss(reps[f"{name}_q"], reps["doc_dense"], batch.group_size)
            terms[f"{name}_dense"] = LossTerm(out["loss"], out["backward"])
        out = contrastive_loss(reps["sparse_q"], reps["doc_sparse"], batch.group_size, lc.tau_sparse)
        terms["light_sparse"] = LossTerm(out["loss"], out["backward"])
        flops = flops_regularizer(reps["doc_sparse"])
        terms["flops"] = LossTerm(flops, flops, flops_weight(self.global_step, lc.flops_weight, lc.flops_warmup_steps))
        return terms

    def loss_terms(self, batch: TrainBatch) -> dict[str, LossTerm]:
        return self.terms_from(self.encode_batch(batch), batch)
