"""A1, both-side light: trained like LightRetriever; at serve time documents are embedded like
queries, as the mean of cached token vectors, so no transformer runs on either side
(paper Tables 3-4). Reported as ``light_both`` (and ``dense`` for comparison)."""
from lr_core.modules import LightRetrieverModule
from lr_core.variants import register_variant


@register_variant("a1_both_light", "A1: LightRetriever training; documents served as mean of cached token vectors",
                  "Tables 3-4: A1", display="A1 both-side light", table="table3_4",
                  representations=("light_both",), reference=("lightretriever", "dense"),
                  columns={"Train query": "Full", "Train doc": "Full", "Infer query": "Emb", "Infer doc": "Emb"})
class BothLightModule(LightRetrieverModule):
    eval_representations = ("light_both", "dense")
