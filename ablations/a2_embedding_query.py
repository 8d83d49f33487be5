"""A2, query encoder = embedding layer: during training *and* serving the light dense query is
the mean of (adapted) input-embedding rows of its tokens; no transformer layer ever sees the
query (paper Tables 3-4). The adapter is a query-side low-rank delta of the embedding
(``E[t] + B A[t]``, rank and scale of the model's LoRA), so the query side can learn while the
tied LM head, and with it the sparse side, is untouched."""
from time import perf_counter

import torch

from lr_core.cache_build import vocab_cache_from_vectors
from lr_core.dense import mean_of_token_states
from lr_core.modules import LightRetrieverModule
from lr_core.variants import register_variant


class EmbeddingDelta(torch.nn.Module):
    """Low-rank trainable delta on the rows of a frozen embedding (zero at initialisation)."""

    def __init__(self, vocab_size: int, hidden: int, r: int, alpha: float):
        super().__init__()
        self.a = torch.nn.Embedding(vocab_size, r)
        self.b = torch.nn.Linear(r, hidden, bias=False)
        torch.nn.init.normal_(self.a.weight, std=1.0 / r)
        torch.nn.init.zeros_(self.b.weight)
        self.scale = alpha / r

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        return self.scale * self.b(self.a(token_ids))


@register_variant("a2_embedding_query", "A2: light dense query = mean of (adapted) embedding rows, train and serve",
                  "Tables 3-4: A2", display="A2 embedding query", table="table3_4",
                  representations=("dense",), reference=("lightretriever", None),
                  columns={"Train query": "Emb", "Train doc": "Full", "Infer query": "Emb", "Infer doc": "Full"})
class EmbeddingQueryModule(LightRetrieverModule):
    def __init__(self, cfg, **kw):
        super().__init__(cfg, **kw)
        lora = cfg.model.lora
        self.query_delta = EmbeddingDelta(self.tokenizer.vocab_size, self.encoder.hidden_size, lora.r, lora.alpha)

    def token_vectors(self, token_ids: torch.Tensor) -> torch.Tensor:
        return self.encoder.embedding_token_vectors(token_ids) + self.query_delta(token_ids.to(self.device)).float()

    def light_dense_queries(self, batch):
        light = batch.light.to(self.device)
        tokens = light.input_ids.gather(1, (light.eos_index - 1).clamp_min(0))  # the token before each block's EOS
        return mean_of_token_states(self.token_vectors(tokens), light.token_mask)

    @torch.no_grad()
    def build_query_cache(self, instruction, model_id, checkpoint_hash, batch_size=4096):
        start = perf_counter()
        ids = torch.arange(self.tokenizer.vocab_size)
        vecs = torch.cat([self.token_vectors(ids[i:i + batch_size]) for i in range(0, len(ids), batch_size)])
        return vocab_cache_from_vectors(vecs.cpu().numpy(), self.encoder, instruction, model_id, checkpoint_hash,
                                        build_seconds=perf_counter() - start)
