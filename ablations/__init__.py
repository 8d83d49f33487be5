"""The paper's ablations (METHOD.md section 6), each a small subclass of a module in
:mod:`lr_core.modules` that overrides one method. Importing this package registers them;
``lr variants`` lists every variant with the paper table it reproduces.
"""
from ablations import (  # noqa: F401
    a1_both_light,
    a2_embedding_query,
    a3_one_layer_query,
    a4_breakdown,
    centred_light_query,
    kl_alignment,
    mrl,
    symmetric_sparse,
)
