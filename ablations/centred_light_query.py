"""Centred light query (a recipe lever, not in the paper): LightRetriever whose light dense query
subtracts a learned centre ``c`` from every token vector before the mean and L2 norm,
``q = normalize(mean_t(v_t) - c)``.

Why: untrained per-token vectors share one large component (mean pairwise cosine 0.925 for
SmolLM2), so every light query points the same way (0.995 alike) and its query-specific part
is a sliver of the normalised vector. For one query a common *document* component shifts every
score equally and cancels in the softmax; a common *query* component does not (it is a
per-document bias shared by all queries), so only the query side is centred.

Serving is unchanged: ``mean_t(v_t - c) = mean_t(v_t) - c``, so the centre is subtracted from
every cache row once and the lookup-and-mean stays exact. ``c`` is a trainable weight (saved
with the adapters), set to the mean token vector of the first training batch at step 0.
"""
import torch

from lr_core.cache_build import vocab_cache_from_vectors
from lr_core.dense import mean_of_token_states
from lr_core.modules import LightRetrieverModule
from lr_core.variants import register_variant


@register_variant("centred_light_query", "LightRetriever with a learned centre subtracted from light token vectors",
                  "Table 2: LightRetriever, centred light query (a recipe lever, not in the paper)",
                  display="LightRetriever (centred query)", table="table2",
                  representations=("dense", "sparse", "hybrid"), reference=("lightretriever", None))
class CentredLightQueryModule(LightRetrieverModule):
    def __init__(self, cfg, **kw):
        super().__init__(cfg, **kw)
        self.light_centre = torch.nn.Parameter(torch.zeros(self.encoder.hidden_size))

    def light_dense_queries(self, batch):
        states = self.encoder.light_token_states(batch.light).float()
        mask = batch.light.token_mask.to(states.device)
        if self.training and self.global_step == 0:  # data-dependent initialisation (also on a warm start)
            with torch.no_grad():
                self.light_centre.copy_(states[mask].mean(dim=0))
        return mean_of_token_states(states - self.light_centre, mask)

    @torch.no_grad()
    def build_query_cache(self, instruction, model_id, checkpoint_hash, batch_size=256):
        cache = super().build_query_cache(instruction, model_id, checkpoint_hash, batch_size)
        centred = cache.vectors - self.light_centre.detach().float().cpu().numpy()
        return vocab_cache_from_vectors(centred, self.encoder, instruction, model_id, checkpoint_hash)
