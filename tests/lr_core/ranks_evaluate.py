"""One rank of ``lr evaluate`` started as torchrun would (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``PORT``
in the environment), recording the corpus shard files this rank wrote.

``python -m tests.lr_core.ranks_evaluate ARGS_JSON`` with ``{"argv": [...lr arguments...], "out": dir}``;
each rank writes ``<out>/rank<r>-writes.json``: the shard files it wrote itself.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(args: dict) -> int:
    import torch

    import lr_core.retrieval.corpus_encoding as ce
    from lr_core.cli import main as lr_main
    from lr_core.io import atomic_write_text

    torch.set_num_threads(1)
    written = []
    real_write = ce.atomic_write_bytes

    def recording_write(path, data):
        if Path(path).name.startswith("shard-"):
            written.append(Path(path).name)
        return real_write(path, data)

    ce.atomic_write_bytes = recording_write
    code = lr_main(args["argv"])
    atomic_write_text(Path(args["out"]) / f"rank{os.environ['RANK']}-writes.json", json.dumps(written))
    return code


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
