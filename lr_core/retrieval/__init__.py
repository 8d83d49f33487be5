"""Retrieval and evaluation on top of the model core: the task registry (``tasks``), dense/sparse
search, Lucene (BM25 and impact indexes), fusion, metrics, corpus encoding, ``evaluate`` and mteb."""
