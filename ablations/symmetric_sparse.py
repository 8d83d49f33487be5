"""Symmetric baseline with a symmetric sparse side (SPLADE-style): the full LLM encodes the
prompted query for both representations; query sparse vectors come from the same LM-head
max-pool as documents (over the query's own tokens). Loss: dense CE + sparse CE + FLOPs on
both sides. Reported as ``symmetric`` (dense) and ``symmetric_sparse``. Separate from the joint
LightRetriever recipe: no light query is ever trained here."""
from lr_core.losses import contrastive_loss
from lr_core.modules import LossTerm, RetrieverModule
from lr_core.sparse import flops_regularizer, flops_weight
from lr_core.variants import register_variant


@register_variant("symmetric_sparse", "symmetric baseline, dense + SPLADE-style sparse (full LLM on both sides)",
                  "Table 2: Full Symmetric (sparse)", display="Full Symmetric (dense + sparse)", table="table2",
                  representations=("symmetric_sparse",), reference=("symmetric", "symmetric"))
class SymmetricSparseModule(RetrieverModule):
    eval_representations = ("symmetric", "symmetric_sparse")

    def loss_terms(self, batch):
        lc = self.cfg.loss
        docs = self.encode_documents(batch, sparse=True)
        prompts = [len(self.tokenizer.prompt_ids(i)) for i in batch.instructions]
        q_dense = self.encoder.encode_full_query_ids(batch.full_query_ids, batch.full_query_mask)
        q_sparse = self.encoder.encode_full_query_sparse_ids(batch.full_query_ids, batch.full_query_mask, prompts)
        dense = contrastive_loss(q_dense, docs["dense"], batch.group_size, lc.tau_dense)
        sparse = contrastive_loss(q_sparse, docs["sparse"], batch.group_size, lc.tau_sparse)
        w = flops_weight(self.global_step, lc.flops_weight, lc.flops_warmup_steps)
        flops = flops_regularizer(docs["sparse"]) + flops_regularizer(q_sparse)
        return {"full_dense": LossTerm(dense["loss"], dense["backward"]),
                "full_sparse": LossTerm(sparse["loss"], sparse["backward"]),
                "flops": LossTerm(flops, flops, w)}
