"""The torch-free serving product: bundle reading and verification (``bundle``), the HTTP server
(``server``) and the load generator (``loadtest``). Nothing reachable from here imports torch or
transformers (tests/test_layering.py checks it); writing a bundle needs the model, so the export
lives on the torch side (``lr_core.retrieval``)."""
