"""The query-side rules shared by training, evaluation and the torch-free server: one place.

A LightRetriever query runs no network at serve time. Its token ids come from
:meth:`lr_core.tokenization.RetrievalTokenizer.sparse_query_ids` / ``light_query_ids``; its dense
vector is the vocabulary-cache lookup (:meth:`lr_core.cache.VocabCache.encode`); its sparse
vector is the token counts (or bag of words) here. These three modules import neither torch nor
transformers, so :mod:`lr_core.serve` uses exactly the rules training and ``lr evaluate`` use.

>>> query_term_vector([7, 3, 7])
{7: 2.0, 3: 1.0}
"""
from __future__ import annotations

from collections.abc import Sequence

QUERY_MODES = ("counts", "bow")  # sparse query weighting: token counts, or 1.0 per distinct token


def query_term_vector(token_ids: Sequence[int], mode: str = "counts") -> dict[int, float]:
    """Query sparse vector as ``{token_id: weight}``; pure Python, used by training, evaluation and serving.

    ``mode="counts"``: weight = number of occurrences; ``mode="bow"``: 1.0 presence.
    Keys appear in first-occurrence order.

    Example::

        >>> query_term_vector([7, 3, 7])
        {7: 2.0, 3: 1.0}
        >>> query_term_vector([7, 3, 7], mode="bow")
        {7: 1.0, 3: 1.0}
    """
    if mode not in QUERY_MODES:
        raise ValueError(f"unknown query mode {mode!r}; allowed modes: {', '.join(QUERY_MODES)}")
    vec: dict[int, float] = {}
    for tok in token_ids:
        tok = int(tok)
        if tok < 0:
            raise ValueError(f"token ids must be non-negative, got {tok}")
        if mode == "counts":
            vec[tok] = vec.get(tok, 0.0) + 1.0
        else:
            vec[tok] = 1.0
    return vec
