"""Centred light query: the recipe-search probe r2's name for LightRetriever with
``model.light_centre=learned`` (the centre itself lives in :class:`lr_core.modules.LightRetrieverModule`,
so KL, MRL and A1 take it from the config too). Kept so that r2's run directory and config load.
"""
from dataclasses import replace

from lr_core.modules import LightRetrieverModule
from lr_core.variants import register_variant


@register_variant("centred_light_query", "LightRetriever with a learned centre subtracted from light token vectors",
                  "Table 2: LightRetriever, centred light query (a recipe lever, not in the paper)",
                  display="LightRetriever (centred query)", table="table2",
                  representations=("dense", "sparse", "hybrid"), reference=("lightretriever", None))
class CentredLightQueryModule(LightRetrieverModule):
    def __init__(self, cfg, **kw):
        super().__init__(replace(cfg, model=replace(cfg.model, light_centre="learned")), **kw)
