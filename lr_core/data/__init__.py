"""Training and evaluation data: BEIR collections (``beir``), training formats, hard-negative mining
and the Lightning DataModule. Part of the model core: imports nothing from retrieval/, serve/ or above."""
