"""Matryoshka (MRL): LightRetriever with every dense loss summed over prefix dimensions
``loss.mrl_dims`` (each prefix re-normalised; the full width is always included), so the
model can be served at any listed dimension (``lr evaluate --mrl-dim d``; paper Figure 6)."""
from lr_core.losses import mrl_contrastive_loss
from lr_core.modules import LightRetrieverModule
from lr_core.variants import register_variant


@register_variant("mrl", "LightRetriever with Matryoshka dense losses over prefix dimensions", "Figure 6: MRL",
                  display="LightRetriever + MRL", table="figure6", representations=("dense",))
class MRLModule(LightRetrieverModule):
    eval_at_widths = True  # served at any listed prefix width: sweeps also evaluate it at evaluate.mrl_dims

    def mrl_dims(self) -> list[int]:
        width = self.encoder.hidden_size
        return sorted({d for d in self.cfg.loss.mrl_dims if d < width} | {width})

    def dense_loss(self, queries, docs, group_size, tau):
        return mrl_contrastive_loss(queries, docs, group_size, tau, self.mrl_dims())
