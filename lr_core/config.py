"""Experiment configuration: YAML files in ``experiments/`` mapped onto dataclasses.

One config describes one training run. Unknown keys are errors (a typo must never be
silently ignored), ``key.sub=value`` overrides apply on top, and every run saves its fully
resolved config as ``<run_dir>/config.yaml``.

>>> cfg = load_config("experiments/lightretriever_scifact.yaml", ["trainer.max_steps=2"])  # doctest: +SKIP
>>> cfg.trainer.max_steps                                                                  # doctest: +SKIP
2
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lr_core.backbone import DEFAULT_BACKBONE, LoraSettings
from lr_core.errors import ConfigError
from lr_core.io import atomic_write_text


@dataclass
class ModelConfig:
    backbone: str = DEFAULT_BACKBONE  # registered backbone name or model directory (e.g. smollm2-135m-instruct, tiny-llama)
    dtype: str = "auto"  # auto = float32 on CPU, bfloat16 on CUDA
    attn: str = "auto"  # auto = flash_attention_2 on CUDA when installed, else sdpa
    lora: LoraSettings = field(default_factory=LoraSettings)  # LoRA adapters (section model.lora)
    gradient_checkpointing: bool = False  # recompute activations in backward to save memory
    sparse_chunk_size: int = 16  # documents per chunk when projecting hidden states onto the vocabulary (memory bound)
    # Light-query centring (recipe levers, not in the paper; experiments/lightretriever_scifact_cpu.yaml):
    light_centre: str = "none"  # "learned": a trainable centre, set to the first batch's mean token vector, subtracted from light token vectors in training and in the cache
    cache_centre: str = "none"  # "vocab_mean": the vocabulary cache's mean row is subtracted from every row when it is built (serve-time, exact for lookup-and-mean)


@dataclass
class DataConfig:
    # Each source: {"jsonl": path} or {"beir": name, "split": "train", "depth": 100, "n_negatives": 30, "cache": path}
    train: list[dict] = field(default_factory=lambda: [{"beir": "scifact", "split": "train"}])  # training sources: {jsonl: path}, {beir: name, split: train, ...} or {titles: name, ...}
    data_dir: str | None = None  # None: $LR_DATA_DIR
    instruction: str | None = None  # None: the example's own, else its source's training instruction (lr_core/instructions.py)
    n_negatives: int = 7  # hard negatives per query in a training group
    batch_size: int = 128  # global queries per training batch (each with 1 positive + n_negatives documents), split evenly over data-parallel ranks
    max_doc_len: int = 512  # document tokens kept, training and corpus encoding
    max_query_tokens: int = 512  # query tokens kept (instruction excluded)
    num_workers: int = 0  # DataLoader worker processes


@dataclass
class LossConfig:
    """Loss terms and their schedules (lr_core/schedules.py); every scheduled value is logged each step."""

    tau_dense: float = 0.02  # dense temperature (full and light), at step 0 when annealed
    tau_dense_end: float | None = None  # anneal tau_dense linearly to this over tau_anneal_steps; None = constant
    tau_anneal_steps: int = 0  # length of the temperature anneal
    tau_light_dense: float | None = None  # the light dense loss's own temperature (constant); None = the tau_dense schedule
    tau_sparse: float = 1.0  # temperature of the sparse contrastive loss
    flops_weight: float = 1e-3  # weight of the FLOPs sparsity regulariser on document vectors, after its ramp
    flops_warmup_steps: int = 4000  # steps over which the FLOPs weight ramps up quadratically from 0 (paper: 4000 of 12000)
    flops_start_step: int = 0  # the FLOPs weight is 0 before this step; the ramp counts from here
    flops_start_below: float | None = None  # or start the ramp once every dense CE (moving average) is below this
    term_weights: dict = field(default_factory=dict)  # weight per loss term, e.g. {light_dense: 2.0}; unlisted = 1
    sparse_query_mode: str = "counts"  # or "bow"
    gathered_loss_scale: str = "world_size"  # world_size: N devices = 1 device; none: the authors' (see lr_core.losses)
    kl_weight: float = 1.0  # variant "kl": weight of KL(full dense || light dense)
    kl_sparse: bool = False  # variant "kl": also align the light sparse scores to the teacher
    mrl_dims: list[int] = field(default_factory=lambda: [64, 128, 256, 512])  # variant "mrl"; capped at H


@dataclass
class OptimConfig:
    lr: float = 2e-5  # peak learning rate (after warmup)
    weight_decay: float = 0.01  # AdamW weight decay
    warmup_steps: int = 100  # linear warmup steps before the cosine decay
    min_lr_ratio: float = 0.1  # cosine decays to this fraction of lr


@dataclass
class TrainerConfig:
    max_steps: int = 12000  # optimizer steps to train (may grow when resuming)
    accelerator: str = "auto"  # Lightning accelerator: auto, cpu, gpu
    devices: Any = "auto"  # Lightning devices: auto, a count or a list of ids
    num_nodes: int = 1  # machines in a multi-node run
    strategy: str = "auto"  # Lightning strategy: auto, ddp, fsdp ...
    precision: str = "auto"  # auto = 32-true on CPU, bf16-mixed on CUDA
    accumulate_grad_batches: int = 1  # batches whose gradients are summed per optimizer step
    gradient_clip_val: float = 1.0  # gradient norm clipping threshold
    log_every_n_steps: int = 10  # steps between rows of logs/metrics.csv
    checkpoint_every_n_steps: int = 500  # steps between checkpoints/last.ckpt writes (resume points)
    seed: int = 42  # random seed (model init, data order, dropout)


@dataclass
class WandbConfig:
    """Weights & Biases logging (off unless enabled; sweeps turn it on). ``mode``: ``auto`` =
    online when an API key is configured, else offline into the run directory."""

    enabled: bool = False  # log to Weights & Biases
    project: str = "lightretriever-suite"  # W&B project name
    entity: str = ""  # W&B entity (user or team); empty: the default one
    group: str = ""  # the sweep's name
    job_type: str = "train"  # W&B job type of the run
    tags: list[str] = field(default_factory=list)  # W&B tags of the run
    mode: str = "auto"  # auto | online | offline | disabled


@dataclass
class ExperimentConfig:
    name: str = "lightretriever"  # run name (fills {name} in run_dir)
    variant: str = "lightretriever"  # model variant (`lr variants` lists them)
    run_dir: str = "runs/{name}"  # run directory ({name} is replaced by name)
    init_from: str | None = None  # warm start: a run directory (its last checkpoint), a .ckpt file or a published adapter directory
    model: ModelConfig = field(default_factory=ModelConfig)  # backbone and adapters (section model)
    data: DataConfig = field(default_factory=DataConfig)  # training data (section data)
    loss: LossConfig = field(default_factory=LossConfig)  # loss settings (section loss)
    optim: OptimConfig = field(default_factory=OptimConfig)  # optimizer and schedule (section optim)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)  # Lightning trainer (section trainer)
    wandb: WandbConfig = field(default_factory=WandbConfig)  # Weights & Biases logging (section wandb)

    @property
    def resolved_run_dir(self) -> Path:
        return Path(self.run_dir.format(name=self.name))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """Short hash of the settings that change results (not the run directory)."""
        d = self.to_dict()
        d.pop("run_dir", None)
        d.pop("wandb", None)  # where results are logged does not change them
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _build(cls, data: dict, where: str):
    """Instantiate dataclass ``cls`` from ``data``, recursing into nested dataclasses."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(names))}")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, f"{where}.{key}")
        else:
            kwargs[key] = _coerce(value, hint, f"{where}.{key}")
    return cls(**kwargs)


def _coerce(value, hint, where: str):
    """Light type check: int/float/bool/str fields (and lists of them, and ``X | None``) must get a value of that kind."""
    args = typing.get_args(hint)
    if type(None) in args and len(args) == 2:  # Optional[X]
        return None if value is None else _coerce(value, next(a for a in args if a is not type(None)), where)
    if hint is dict and not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {value!r}")
    if typing.get_origin(hint) is list and typing.get_args(hint) and typing.get_args(hint)[0] in (int, float, str):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, typing.get_args(hint)[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if hint in (int, float, bool, str):
        if hint is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if hint is float and isinstance(value, str):  # YAML 1.1 reads "3e-4" as a string
            try:
                return float(value)
            except ValueError:
                pass
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def _parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, raw = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw)


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply ``a.b=value`` overrides (values parsed as YAML) to a raw config mapping."""
    for text in overrides or []:
        path, value = _parse_override(text)
        node = raw
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {part} is not a section")
        node[path[-1]] = value
    return raw


def config_from_dict(raw: dict, where: str = "config") -> ExperimentConfig:
    return _build(ExperimentConfig, raw, where)


def load_config(path: str | os.PathLike | None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML experiment config and apply overrides; errors name the file and key."""
    raw: dict = {}
    where = "config"
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: invalid YAML: {exc}") from None
        where = str(p)
    raw = apply_overrides(raw, overrides or [])
    return config_from_dict(raw, where)


def save_config(cfg: ExperimentConfig, path: str | os.PathLike) -> Path:
    """Write the resolved config atomically."""
    return atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def last_checkpoint(run_dir: str | os.PathLike) -> Path:
    """A run's resume point: Lightning's ``save_last`` file in ``<run_dir>/checkpoints``, rewritten every
    ``trainer.checkpoint_every_n_steps``. Training, evaluation, export and the sweep tasks all read it here."""
    return Path(run_dir) / "checkpoints" / "last.ckpt"
