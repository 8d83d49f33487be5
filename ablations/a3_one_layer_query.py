"""A3, one-layer query encoder: the query (``<bos> prompt query <eos>``) goes through only the
first transformer layer (and the final norm) of the same backbone, in training and serving;
unlike LightRetriever it needs a network at serve time (paper Tables 3-4)."""
from lr_core.modules import LightRetrieverModule
from lr_core.variants import register_variant

QUERY_LAYERS = 1


@register_variant("a3_one_layer_query", "A3: dense query encoded by the first transformer layer only",
                  "Tables 3-4: A3", display="A3 1-layer query", table="table3_4",
                  representations=("hybrid",), reference=("lightretriever", None),
                  columns={"Train query": "1L-Trans", "Train doc": "Full", "Infer query": "1L-Trans",
                           "Infer doc": "Full"})
class OneLayerQueryModule(LightRetrieverModule):
    query_side = "network"  # its dense queries run the first layer at serve time, not a cache lookup
    query_layers = QUERY_LAYERS

    def light_dense_queries(self, batch):
        return self.encoder.encode_full_query_ids(batch.full_query_ids, batch.full_query_mask, num_layers=QUERY_LAYERS)

    def serve_dense_queries(self, texts, instruction):
        import torch

        with torch.no_grad():
            return self.encoder.encode_full_queries(texts, instruction, num_layers=QUERY_LAYERS)
