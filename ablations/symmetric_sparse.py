"""Symmetric baseline with a symmetric sparse side (SPLADE-style): the full LLM encodes the
prompted query for both representations; query sparse vectors come from the same LM-head
max-pool as documents (over the query's own tokens). Loss: dense CE + sparse CE + FLOPs on
both sides. Reported as ``symmetric`` (dense) and ``symmetric_sparse``. Separate from the joint
LightRetriever recipe: no light query is ever trained here."""
from lr_core.losses import contrastive_loss, flops_loss
from lr_core.modules import LossTerm, RetrieverModule
from lr_core.variants import register_variant


@register_variant("symmetric_sparse", "symmetric baseline, dense + SPLADE-style sparse (full LLM on both sides)",
                  "Table 2: Full Symmetric (sparse)", display="Full Symmetric (dense + sparse)", table="table2",
                  representations=("symmetric_sparse",), reference=("symmetric", "symmetric"))
class SymmetricSparseModule(RetrieverModule):
    eval_representations = ("symmetric", "symmetric_sparse")

    def loss_terms(self, batch):
        lc = self.cfg.loss
        docs = self.encode_documents(batch, sparse=True)
        prompts = [self.tokenizer.full_prompt_length(i) for i in batch.instructions]
        q_dense = self.encoder.encode_full_query_ids(batch.full_query_ids, batch.full_query_mask)
        q_sparse = self.encoder.encode_full_query_sparse_ids(batch.full_query_ids, batch.full_query_mask, prompts)
        dense = contrastive_loss(q_dense, docs["dense"], batch.group_size, self.tau_dense("full"))
        sparse = contrastive_loss(q_sparse, docs["sparse"], batch.group_size, lc.tau_sparse)
        terms = {"full_dense": LossTerm(dense["loss"], dense["backward"], tau=self.tau_dense("full")),
                 "full_sparse": LossTerm(sparse["loss"], sparse["backward"], tau=lc.tau_sparse)}
        gather = lc.gathered_loss_scale == "world_size"
        doc_flops, query_flops = flops_loss(docs["sparse"], gather), flops_loss(q_sparse, gather)
        flops = {k: doc_flops[k] + query_flops[k] for k in ("loss", "backward")}
        terms["flops"] = self.flops_term(flops, {"full_dense": terms["full_dense"]})
        return terms
