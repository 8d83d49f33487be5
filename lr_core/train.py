"""Building and running a training run from an :class:`~lr_core.config.ExperimentConfig`.

Data parallelism (``trainer.strategy: ddp``, several devices or ``srun`` tasks): the data
module splits each global batch across the ranks (so Lightning's distributed sampler is
off), and global rank 0 alone writes the run files and opens the W&B run.

>>> run_dir = fit(load_config("experiments/lightretriever_scifact.yaml"))   # doctest: +SKIP

A run directory holds ``config.yaml`` (resolved), ``checkpoints/last.ckpt`` (adapters,
optimiser, step, data position), ``logs/metrics.csv`` and, once finished, ``train_done.json``.
Calling :func:`fit` again on the same directory resumes from ``last.ckpt``.
"""
from __future__ import annotations

import json
import logging
import time
import warnings
from pathlib import Path

import lightning as L
import torch
import yaml
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from lr_core.config import ExperimentConfig, config_from_dict, last_checkpoint, save_config
from lr_core.io import atomic_path, atomic_write_text
from lr_core.data.datamodule import RetrievalDataModule
from lr_core.distributed import is_rank_zero
from lr_core.errors import ConfigError
from lr_core.progress import NOTICE, StatusLine, bars_enabled
from lr_core.variants import get_variant

log = logging.getLogger(__name__)

# The data position is restored by RetrievalDataModule.load_state_dict (from the optimizer step),
# which Lightning's check for a stateful DataLoader cannot see.
warnings.filterwarnings("ignore", message=".*your dataloader is not resumable.*")
warnings.filterwarnings("ignore", message=".*overridden `transfer_batch_to_device`.*")


def build_module(cfg: ExperimentConfig, device=None):
    """The variant's LightningModule; ``device`` (None: the CPU) is where its backbone is built."""
    cls = get_variant(cfg.variant).cls
    return cls(cfg) if device is None else cls(cfg, device=device)


def _precision(cfg: ExperimentConfig) -> str:
    if cfg.trainer.precision != "auto":
        return cfg.trainer.precision
    wants_gpu = cfg.trainer.accelerator in ("auto", "gpu", "cuda")
    return "bf16-mixed" if wants_gpu and torch.cuda.is_available() else "32-true"


def check_same_config(cfg: ExperimentConfig, run_dir: Path) -> None:
    """A run directory belongs to one config; resuming with different settings is an error."""
    saved = run_dir / "config.yaml"
    if not saved.exists():
        return
    old = config_from_dict(yaml.safe_load(saved.read_text()), str(saved))
    # max_steps may grow (continue training); anything else changing is a different experiment.
    old.trainer.max_steps = cfg.trainer.max_steps
    if old.hash() != cfg.hash():
        raise ConfigError(f"{run_dir} already holds a run with a different config ({saved}); "
                          "use another run_dir or delete it")


class _AppendingWriter(ExperimentWriter):
    """Lightning's writer deletes an existing metrics.csv; a resumed run must keep its history."""

    def _check_log_dir_exists(self) -> None:
        pass


class RunLogger(CSVLogger):
    """CSV log in ``<run_dir>/logs/metrics.csv`` that survives resumption (rows are appended)."""

    @property
    @rank_zero_experiment
    def experiment(self):
        if self._experiment is None:
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file and renames it: a kill mid-write keeps the old one."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)


def build_trainer(cfg: ExperimentConfig, run_dir: Path, extra_callbacks=(), logger=None) -> L.Trainer:
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    from lr_core.tracking import wandb_logger

    t = cfg.trainer
    ckpt = ModelCheckpoint(dirpath=last_checkpoint(run_dir).parent, save_last=True, save_top_k=0,
                           every_n_train_steps=t.checkpoint_every_n_steps)
    if logger is None:
        # flush the CSV log as often as checkpoints are written, so a kill loses neither
        logger = [RunLogger(run_dir, name="logs", version="", flush_logs_every_n_steps=t.checkpoint_every_n_steps)]
        # one W&B run per run directory: only rank 0 opens it (the other ranks would start their own)
        wb = wandb_logger(cfg, run_dir) if is_rank_zero() else None
        if wb is not None:
            logger.append(wb)
    plugins = [AtomicCheckpointIO()]
    if SLURMEnvironment.detect():
        # pre-emption is handled by slurm.task (checkpoint + requeue), not by Lightning's own handler
        plugins.append(SLURMEnvironment(auto_requeue=False))
    return L.Trainer(
        max_steps=t.max_steps, accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes,
        strategy=t.strategy, precision=_precision(cfg), accumulate_grad_batches=t.accumulate_grad_batches,
        gradient_clip_val=t.gradient_clip_val, log_every_n_steps=t.log_every_n_steps,
        callbacks=[ckpt, *extra_callbacks, *([] if bars_enabled() else [_TrainStatus()])],
        enable_progress_bar=bars_enabled(),
        logger=logger,
        default_root_dir=run_dir, enable_model_summary=False, use_distributed_sampler=False,
        num_sanity_val_steps=0, limit_val_batches=0, plugins=plugins,
    )


def init_checkpoint(init_from: str | Path) -> Path:
    """What a warm start loads: a published adapter directory (lr_core/adapters.py), a run
    directory's ``checkpoints/last.ckpt`` or a ``.ckpt`` file."""
    from lr_core.adapters import is_adapter_dir

    path = Path(init_from)
    if is_adapter_dir(path):
        return path
    ckpt = last_checkpoint(path) if path.is_dir() else path
    if not ckpt.is_file():
        raise ConfigError(f"init_from: no checkpoint at {ckpt} (give a run or adapter directory, or a .ckpt file)")
    return ckpt


def warm_start(module, cfg: ExperimentConfig) -> dict:
    """Start from another run's adapters (fresh optimiser, step 0): a deviation from the released
    recipe, recorded in ``train_done.json`` (and, through ``config.yaml``, in every metrics record)."""
    from lr_core.adapters import load_adapter_weights
    from lr_core.modules import trainable_state_hash

    ckpt = init_checkpoint(cfg.init_from)
    source = Path(cfg.init_from)
    source_cfg = source / "config.yaml" if source.is_dir() else None
    if ckpt.is_dir():
        load_adapter_weights(module, ckpt)
        weights_hash = trainable_state_hash(module)
    else:
        weights_hash = module.load_adapter_checkpoint(ckpt)
    info = {"checkpoint": str(ckpt), "adapter_hash": weights_hash}
    if source_cfg is not None and source_cfg.is_file():
        saved = yaml.safe_load(source_cfg.read_text())
        info.update(variant=saved.get("variant"), config_hash=config_from_dict(saved, str(source_cfg)).hash())
    log.warning("warm start from %s (adapters %s): not the released recipe", ckpt, weights_hash)
    return info


def _recorded_warm_start(run_dir: Path) -> dict | None:
    """What the run started from (``warm_start.json``, written when training began), or None."""
    info = run_dir / "warm_start.json"
    return json.loads(info.read_text()) if info.is_file() else None


class _TrainStatus(L.Callback):
    """Without a progress bar (Slurm, a log file): a periodic one-line status of the training steps."""

    def on_train_start(self, trainer, pl_module) -> None:
        self.line = StatusLine(total=trainer.max_steps, desc="training", unit="step")
        self.line.n = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_rank != 0 or not hasattr(self, "line"):
            return
        loss = trainer.callback_metrics.get("train/loss", trainer.callback_metrics.get("loss"))
        if loss is not None:
            self.line.set_postfix_str(f"loss {float(loss):.4f}")
        self.line.update(trainer.global_step - self.line.n)

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.global_rank == 0 and hasattr(self, "line"):
            self.line.close()


class _ResumeNotice(L.Callback):
    """One line at the default log level once the checkpoint is restored: which file, which step."""

    def __init__(self, path: Path):
        self.path = path

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.global_rank == 0:
            log.log(NOTICE, "resuming from %s at step %d of %d", self.path, trainer.global_step, trainer.max_steps)


def fit(cfg: ExperimentConfig, extra_callbacks=(), logger=None) -> Path:
    """Train (or resume) the run described by ``cfg``; returns its run directory."""
    run_dir = cfg.resolved_run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    check_same_config(cfg, run_dir)
    done = run_dir / "train_done.json"
    if done.exists() and json.loads(done.read_text())["global_step"] >= cfg.trainer.max_steps:
        log.info("%s already trained to step %d; nothing to do", run_dir, cfg.trainer.max_steps)
        return run_dir  # finished runs are not reloaded or re-saved (their checkpoint stays byte-identical)
    if is_rank_zero():  # every rank checked it above; one writes it
        save_config(cfg, run_dir / "config.yaml")
    L.seed_everything(cfg.trainer.seed, workers=True)
    module = build_module(cfg)
    data = RetrievalDataModule(cfg.data, module.tokenizer, seed=cfg.trainer.seed,
                               sparse_query_mode=cfg.loss.sparse_query_mode)
    last = last_checkpoint(run_dir)
    resume = last if last.exists() else None
    if resume:
        extra_callbacks = (*extra_callbacks, _ResumeNotice(resume))
    if cfg.init_from and not resume:  # a resumed run already holds the warm-started weights
        warm = warm_start(module, cfg)  # every rank loads them; one records where they came from
        if is_rank_zero():
            atomic_write_text(run_dir / "warm_start.json", json.dumps(warm, indent=2))
    trainer = build_trainer(cfg, run_dir, extra_callbacks, logger)
    start = time.perf_counter()
    trainer.fit(module, datamodule=data, ckpt_path=resume)
    trainer.save_checkpoint(last)  # collective: every rank calls it, rank 0 writes
    if trainer.global_step < cfg.trainer.max_steps:  # stopped early (pre-emption): not done
        log.info("stopped at step %d of %d; rerun to resume", trainer.global_step, cfg.trainer.max_steps)
        return run_dir
    if trainer.global_rank == 0:
        atomic_write_text(run_dir / "train_done.json", json.dumps({
            "global_step": trainer.global_step, "variant": cfg.variant, "backbone": cfg.model.backbone,
            "seconds_this_session": round(time.perf_counter() - start, 1), "resumed_from": str(resume) if resume else None,
            "config_hash": cfg.hash(), "init_from": _recorded_warm_start(run_dir),
        }, indent=2))
    trainer.strategy.barrier("train_done")  # every rank returns only once the done file is there
    return run_dir


def load_trained(run_dir: str | Path, checkpoint: str | Path | None = None, device=None):
    """Rebuild a run's module from its ``config.yaml`` and load its adapters; returns (module, cfg, ckpt_hash).

    ``run_dir`` may also be a published adapter directory (:mod:`lr_core.adapters`). ``device``
    (None: the CPU): where the backbone is built (evaluation on a GPU); what a variant adds beside
    it (A2's delta, a centre) stays on the CPU until the caller moves the module.
    """
    from lr_core.adapters import is_adapter_dir, load_adapter_weights
    from lr_core.modules import trainable_state_hash

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no config.yaml)")
    cfg = config_from_dict(yaml.safe_load(cfg_path.read_text()), str(cfg_path))
    module = build_module(cfg, device)
    if checkpoint is None and is_adapter_dir(run_dir):
        load_adapter_weights(module, run_dir)
        module.eval()
        return module, cfg, trainable_state_hash(module)
    ckpt = Path(checkpoint) if checkpoint else last_checkpoint(run_dir)
    if not ckpt.is_file():
        raise ConfigError(f"checkpoint not found: {ckpt}")
    ckpt_hash = module.load_adapter_checkpoint(ckpt)
    module.eval()
    return module, cfg, ckpt_hash
