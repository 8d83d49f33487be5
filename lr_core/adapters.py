"""Published adapters: a trained run as a small directory anyone can score or serve without training.

Layout (written atomically)::

    adapter/
      adapter_config.json, adapter_model.safetensors   # peft's save_pretrained, float16
      extra_weights.safetensors                        # trainable weights outside LoRA (A2's query delta), if any
      config.yaml                                      # the run's resolved config
      adapter_info.json                                # source run, dtype, hashes, git commit, date
      train_done.json, warm_start.json, logs/metrics.csv   # the training record, as the run left it

``lr evaluate`` and ``lr export-serving`` accept such a directory wherever they take a run
directory (:func:`lr_core.train.load_trained` reads both).

>>> run = "runs/lightretriever_scifact"                                                  # doctest: +SKIP
>>> export_adapter(*load_trained(run), run, "reports/results/x/adapters/lightretriever")  # doctest: +SKIP
"""
from __future__ import annotations

import datetime as _dt
import json
import shutil
from pathlib import Path

import torch

from lr_core.io import atomic_dir, atomic_write_text, git_commit

ADAPTER_CONFIG = "adapter_config.json"
EXTRA_WEIGHTS = "extra_weights.safetensors"
INFO = "adapter_info.json"
_RECORDS = ("config.yaml", "train_done.json", "warm_start.json", "logs/metrics.csv")


def is_adapter_dir(path: str | Path) -> bool:
    return (Path(path) / ADAPTER_CONFIG).is_file() and (Path(path) / "config.yaml").is_file()


# Settings that change how a trained model is served, never its weights: a publisher may set them
# (``lr export-adapter RUN OUT --serve key=value``); adapter_info.json records that they did.
SERVE_TIME_KEYS = ("model.cache_centre",)


def export_adapter(module, cfg, ckpt_hash: str, run_dir: str | Path, out: str | Path,
                   dtype: torch.dtype = torch.float16, serve: list[str] | None = None) -> Path:
    """Write a trained module's adapters (and ``run_dir``'s training record) to ``out`` as float16
    safetensors. ``module, cfg, ckpt_hash`` are what :func:`lr_core.train.load_trained` returns;
    the module is cast to ``dtype`` and must not be used afterwards. ``serve``: ``key=value``
    overrides of :data:`SERVE_TIME_KEYS` written into the published ``config.yaml``."""
    from safetensors.torch import save_file

    from lr_core.config import load_config, save_config
    from lr_core.errors import ConfigError

    run_dir, out = Path(run_dir), Path(out)
    for item in serve or []:
        if item.partition("=")[0] not in SERVE_TIME_KEYS:
            raise ConfigError(f"--serve {item!r}: only serve-time settings may change at publication "
                              f"({', '.join(SERVE_TIME_KEYS)})")
    lm = module.encoder.lm
    if not hasattr(lm, "save_pretrained") or not hasattr(lm, "peft_config"):
        raise ValueError(f"{run_dir}: the model has no LoRA adapters (model.lora.enabled is false)")
    extra = {n: p.detach().to(dtype).contiguous() for n, p in module.named_parameters()
             if p.requires_grad and "lora_" not in n}
    with atomic_dir(out) as tmp:
        lm.to(dtype)  # this module is only exported, never used again
        lm.save_pretrained(tmp, safe_serialization=True)
        (tmp / "README.md").unlink(missing_ok=True)  # peft's empty model-card template
        # the base model is rebuilt from config.yaml's backbone name, never from this machine's path
        peft_cfg = json.loads((tmp / ADAPTER_CONFIG).read_text())
        peft_cfg["base_model_name_or_path"] = cfg.model.backbone
        (tmp / ADAPTER_CONFIG).write_text(json.dumps(peft_cfg, indent=2, sort_keys=True) + "\n")
        if extra:
            save_file(extra, str(tmp / EXTRA_WEIGHTS))
        for name in _RECORDS:
            if (run_dir / name).is_file():
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(run_dir / name, tmp / name)
        if serve:
            save_config(load_config(run_dir / "config.yaml", list(serve)), tmp / "config.yaml")
        atomic_write_text(tmp / INFO, json.dumps({
            "source_run": str(run_dir), "variant": cfg.variant, "backbone": cfg.model.backbone,
            "serve_overrides": list(serve or []),
            "dtype": str(dtype).replace("torch.", ""), "float32_checkpoint_hash": ckpt_hash,
            "config_hash": cfg.hash(), "git_commit": git_commit(),
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}, indent=2) + "\n")
    return out


def load_adapter_weights(module, path: str | Path) -> None:
    """Load a published adapter directory's weights into a freshly built module (float32)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    path = Path(path)
    lora = {k: v.float() for k, v in load_file(str(path / "adapter_model.safetensors")).items()}
    result = set_peft_model_state_dict(module.encoder.lm, lora)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise ValueError(f"{path}: adapter weights do not fit this model (e.g. {unexpected[0]})")
    if (path / EXTRA_WEIGHTS).is_file():
        extra = {k: v.float() for k, v in load_file(str(path / EXTRA_WEIGHTS)).items()}
        missing = set(extra) - {n for n, _ in module.named_parameters()}
        if missing:
            raise ValueError(f"{path}: {EXTRA_WEIGHTS} names weights this model lacks (e.g. {sorted(missing)[0]})")
        module.load_state_dict(extra, strict=False)
