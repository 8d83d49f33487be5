"""A1, both-side light: trained like LightRetriever; at serve time documents are embedded like
queries, as the mean of cached token vectors, so no transformer runs on either side
(paper Table 3). Reported as ``light_both`` (and ``dense`` for comparison)."""
from lr_core.modules import LightRetrieverModule
from lr_core.variants import register_variant


@register_variant("a1_both_light", "A1: LightRetriever training; documents served as mean of cached token vectors",
                  "Table 3: A1")
class BothLightModule(LightRetrieverModule):
    eval_representations = ("light_both", "dense")
