"""The variant catalog: importing this package registers every model variant, the one place
that does (``lr_core.variants`` holds the registry; the core never imports this package).

- LightRetriever and the symmetric baseline (:mod:`lr_core.modules`);
- the paper's ablations (METHOD.md section 6), each a small subclass of a module in
  :mod:`lr_core.modules` that overrides one method.

Entry points import it before they read the registry: the CLI, ``reports`` and the tests'
conftest. ``lr variants`` lists every variant with the paper table it reproduces.
"""
import lr_core.modules  # noqa: F401  (registers lightretriever and symmetric)
from ablations import (  # noqa: F401
    a1_both_light,
    a2_embedding_query,
    a3_one_layer_query,
    centred_light_query,
    kl_alignment,
    mrl,
    symmetric_sparse,
)
