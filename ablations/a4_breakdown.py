"""A4, breakdown: LightRetriever's training, reported as dense, sparse and hybrid of one model,
plus the symmetric (full-LLM query) dense mode of the same checkpoint (paper Table 5)."""
from lr_core.modules import LightRetrieverModule
from lr_core.variants import register_variant


@register_variant("a4_breakdown", "A4: one LightRetriever reported as dense, sparse, hybrid and symmetric",
                  "Table 5: A4", display="A4 breakdown", table="table5",
                  representations=("dense", "sparse", "hybrid"), reference=("lightretriever", None))
class BreakdownModule(LightRetrieverModule):
    eval_representations = ("dense", "sparse", "hybrid", "symmetric")
