"""The training engine: a Lightning ``Trainer`` configured from ``cfg.trainer``, with exact resume.

`fit(method, train_data, cfg)` runs on CPU, one GPU or many: launched by ``torchrun`` or SLURM
``srun`` the device and node counts come from the environment and Lightning's DDP takes over; no
code changes. Checkpoints go to ``run_dir/checkpoints`` (``last.ckpt`` every
``checkpoint_every_n_steps`` steps and every epoch, ``epoch_NNNN.ckpt`` every
``checkpoint_every_n_epochs`` epochs), metrics to ``run_dir/metrics.csv`` (and TensorBoard when
installed; Weights & Biases with ``trainer.logger=wandb``), the resolved config and environment
to ``config.yaml`` / ``env.json``.

Exact resume. A run resumed from any of its checkpoints, including one taken mid-epoch, ends with
the same weights as an uninterrupted run (bit for bit on CPU; on GPU up to non-deterministic
kernels unless ``trainer.deterministic=true``). What makes it exact:

- model, optimiser, scheduler, AMP scaler, buffers (queues), epoch and global step are in the
  Lightning checkpoint; the python/numpy/torch RNG states are added by `BaseMethod`;
- the training data goes through `vidssl.train.loader.ResumableLoader`: a per-epoch
  permutation seeded by ``(seed, epoch)``, sharded over ranks, that records how many batches were
  consumed and restarts at that batch; every sample is produced with the RNGs seeded from
  ``(seed, epoch, position)``, so augmentation does not depend on which worker (or how many
  workers) loaded it. A dataset must therefore draw its randomness from ``random``,
  ``np.random`` or ``torch``'s global generators (or a generator seeded from them) inside
  ``__getitem__``.

With DDP the RNG states saved are rank 0's (all ranks start from the same seed); a resume with a
different world size or batch size restarts at the nearest batch and is not exact.
"""

from __future__ import annotations

import csv
import importlib.util
import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any

import lightning
import torch
from lightning.pytorch.callbacks import Callback, Checkpoint, TQDMProgressBar
from lightning.pytorch.loggers import Logger
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.data import DataLoader, Dataset

from vidssl.config.schema import Config, config_differences, save_resolved
from vidssl.data.transforms import device as device_augment
from vidssl.errors import CheckpointError, ConfigError
from vidssl.methods.base import BaseMethod
from vidssl.train.loader import ResumableLoader, build_eval_loader, build_train_loader

log = logging.getLogger(__name__)


class _DropAdvertisements(logging.Filter):
    """Hides Lightning's "try installing litlogger" tip from every run's output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropAdvertisements())


class _TrackLoaderPosition(Callback):
    """Tells the `ResumableLoader` how many batches of the epoch the trainer has processed."""

    def __init__(self, loader: ResumableLoader) -> None:
        self.loader = loader

    def on_train_batch_end(self, trainer: lightning.Trainer, *args: Any) -> None:
        """Records the batches processed so far in this epoch."""
        self.loader.batches_done = trainer.fit_loop.epoch_loop.batch_progress.current.processed


class ReportSkippedVideos(Callback):
    """Logs, at each epoch end, the videos the training data could not read (``failures()``)."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def on_train_epoch_end(self, trainer: lightning.Trainer, *args: Any) -> None:
        """Warns with the count and the first few names, if any video was skipped."""
        count = self.dataset.failures()
        if count:
            names = self.dataset.failed_videos()
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            log.warning("skipped %d unreadable videos: %s", count, shown)


class PeriodicCheckpoint(Checkpoint):
    """Writes ``last.ckpt`` and ``epoch_NNNN.ckpt`` checkpoints.

    ``last.ckpt`` is written every ``every_n_steps`` steps, at the final step and at every epoch
    end; a copy ``epoch_NNNN.ckpt`` (N completed epochs) is kept every ``every_n_epochs`` epochs.
    Files are written to a temporary name and renamed, so a kill never leaves a torn checkpoint.
    """

    def __init__(self, directory: Path, every_n_steps: int, every_n_epochs: int) -> None:
        self.directory = Path(directory)
        self.every_n_steps = every_n_steps
        self.every_n_epochs = every_n_epochs

    @property
    def last_path(self) -> Path:
        """Path of ``last.ckpt``."""
        return self.directory / "last.ckpt"

    def _save_last(self, trainer: lightning.Trainer) -> None:
        tmp = self.directory / "last.ckpt.tmp"
        trainer.save_checkpoint(tmp, weights_only=False)
        if trainer.is_global_zero:
            os.replace(tmp, self.last_path)

    def on_train_batch_end(self, trainer: lightning.Trainer, *args: Any) -> None:
        """Saves ``last.ckpt`` at step intervals and at ``max_steps``."""
        step = trainer.global_step
        if (self.every_n_steps and step % self.every_n_steps == 0) or step == trainer.max_steps:
            self._save_last(trainer)

    def on_train_epoch_end(self, trainer: lightning.Trainer, pl_module: Any) -> None:
        """Saves ``last.ckpt`` and, every N epochs, ``epoch_NNNN.ckpt`` after a full epoch."""
        progress = trainer.fit_loop.epoch_loop.batch_progress.current
        if progress.completed < trainer.num_training_batches:
            return  # stopped part-way by max_steps: the last batch already saved
        self._save_last(trainer)
        epochs_done = trainer.current_epoch + 1
        if (
            self.every_n_epochs
            and trainer.is_global_zero
            and (epochs_done % self.every_n_epochs == 0 or epochs_done == trainer.max_epochs)
        ):
            shutil.copyfile(self.last_path, self.directory / f"epoch_{epochs_done:04d}.ckpt")


class _ProgressBar(TQDMProgressBar):
    """TQDM bar showing the loss and samples/s that `BaseMethod` computes at log steps."""

    def get_metrics(self, trainer: lightning.Trainer, pl_module: Any) -> dict[str, Any]:
        """Lightning's bar metrics without the version, plus the method's progress metrics."""
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        items.update(getattr(pl_module, "progress_metrics", {}))
        return items


class CsvMetricsLogger(Logger):
    """Appends logged metrics to one CSV file; on resume, rows of steps after the checkpoint go.

    Args:
        path: The CSV file (``run_dir/metrics.csv``).
        keep_before_step: Existing rows with ``step`` below this are kept (0: start afresh).
    """

    def __init__(self, path: Path, keep_before_step: int = 0) -> None:
        super().__init__()
        self.path = Path(path)
        self.keep_before_step = keep_before_step
        self._rows: list[dict[str, Any]] = []
        self._header: list[str] | None = None

    @property
    def name(self) -> str:
        """Logger name."""
        return "csv"

    @property
    def version(self) -> str:
        """No versions: one run directory is one run."""
        return ""

    @property
    def save_dir(self) -> str:
        """Directory of the CSV file."""
        return str(self.path.parent)

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Not used: the run's ``config.yaml`` holds the configuration."""

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Buffers one row."""
        row = {k: float(v) for k, v in metrics.items()}
        self._rows.append({"step": step, **row})

    def _existing_rows(self) -> list[dict[str, str]]:
        if not self.path.is_file():
            return []
        with self.path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        return [r for r in rows if r.get("step") and int(r["step"]) < self.keep_before_step]

    @rank_zero_only
    def save(self) -> None:
        """Appends the buffered rows (rewriting the file when new columns appear)."""
        if self._header is None:  # first save of this process: trim what a resume replays
            old = self._existing_rows()
            self._rows = old + self._rows
            self._header = []
            self.path.unlink(missing_ok=True)
        if not self._rows:
            return
        keys = list(dict.fromkeys(k for row in self._rows for k in row))
        new_keys = [k for k in keys if k not in self._header]
        rows = self._rows
        if new_keys and self.path.is_file():  # widen the header: rewrite the file
            with self.path.open(newline="") as handle:
                rows = list(csv.DictReader(handle)) + rows
            self.path.unlink()
        self._header = self._header + new_keys
        mode = "a" if self.path.is_file() else "w"
        with self.path.open(mode, newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self._header)
            if mode == "w":
                writer.writeheader()
            writer.writerows(rows)
        self._rows = []

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Writes what is left."""
        self.save()


def _wandb_logger(run_dir: Path) -> Logger:
    """Weights & Biases logger (``trainer.logger=wandb``); needs the optional ``wandb`` package."""
    if importlib.util.find_spec("wandb") is None:
        raise ConfigError(
            "trainer.logger=wandb needs the wandb package: pip install 'vidssl[wandb]'"
        )
    from lightning.pytorch.loggers import WandbLogger

    project = os.environ.get("WANDB_PROJECT", "vidssl")
    return WandbLogger(project=project, name=run_dir.name, save_dir=str(run_dir))


def _launch_layout(devices: str, num_nodes: int) -> tuple[int | str, int]:
    """Devices per node and node count: config values first, then torchrun / SLURM variables."""
    env = os.environ
    env_devices, env_nodes = None, 1
    if "LOCAL_WORLD_SIZE" in env and "WORLD_SIZE" in env:  # torchrun
        env_devices = int(env["LOCAL_WORLD_SIZE"])
        env_nodes = int(env["WORLD_SIZE"]) // env_devices
    elif SLURMEnvironment.detect():
        env_nodes = int(env.get("SLURM_JOB_NUM_NODES", env.get("SLURM_NNODES", "1")))
        env_devices = int(env["SLURM_NTASKS"]) // env_nodes
    resolved: int | str = int(devices) if devices != "auto" else (env_devices or "auto")
    return resolved, num_nodes or env_nodes


def _precision(precision: str, accelerator: str) -> str:
    if precision == "32":
        return "32-true"
    if precision != "auto":
        return precision
    gpu = accelerator != "cpu" and torch.cuda.is_available()
    return "bf16-mixed" if gpu and torch.cuda.is_bf16_supported() else "32-true"


def build_trainer(
    cfg: Config, run_dir: str | Path | None = None, *, resume_step: int = 0,
    callbacks: list[Callback] | None = None,
) -> lightning.Trainer:  # fmt: skip
    """A Lightning ``Trainer`` set up from ``cfg.trainer`` (see the module docstring).

    Args:
        cfg: The run config.
        run_dir: Output directory; defaults to ``cfg.trainer.run_dir``.
        resume_step: Global step of the checkpoint being resumed (CSV rows after it are dropped).
        callbacks: Extra callbacks.
    """
    t = cfg.trainer
    run_dir = Path(run_dir or t.run_dir)
    devices, num_nodes = _launch_layout(t.devices, t.num_nodes)
    loggers: list[Logger] = [CsvMetricsLogger(run_dir / "metrics.csv", resume_step)]
    if importlib.util.find_spec("tensorboard") is not None:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(run_dir, name="tensorboard", version=""))
    if t.logger == "wandb":
        loggers.append(_wandb_logger(run_dir))
    checkpoints = PeriodicCheckpoint(
        run_dir / "checkpoints", t.checkpoint_every_n_steps, t.checkpoint_every_n_epochs
    )
    all_callbacks: list[Callback] = [checkpoints, *(callbacks or [])]
    if t.progress_bar_refresh:
        all_callbacks.append(_ProgressBar(refresh_rate=t.progress_bar_refresh))
    # Lightning's SLURM requeue saves from inside the signal handler (mid-step): not exact.
    plugins = [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else None
    return lightning.Trainer(
        accelerator=t.accelerator, devices=devices, num_nodes=num_nodes, strategy=t.strategy,
        precision=_precision(t.precision, t.accelerator),  # type: ignore[arg-type]
        max_epochs=t.epochs, max_steps=t.max_steps,
        gradient_clip_val=t.grad_clip or None, gradient_clip_algorithm=t.grad_clip_algorithm,
        logger=loggers, callbacks=all_callbacks, enable_progress_bar=bool(t.progress_bar_refresh),
        log_every_n_steps=t.log_every_n_steps, default_root_dir=run_dir,
        deterministic=t.deterministic, benchmark=t.benchmark and not t.deterministic,
        num_sanity_val_steps=0, enable_model_summary=False, plugins=plugins,
    )  # fmt: skip


def _read_checkpoint_meta(path: Path) -> dict[str, Any]:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # any unreadable file is the user's checkpoint problem
        raise CheckpointError(
            f"cannot read checkpoint {path}: {str(error).splitlines()[0]}"
        ) from None
    if "vidssl" not in checkpoint:
        raise CheckpointError(f"{path} is not a vidssl training checkpoint (no 'vidssl' entry)")
    return {"global_step": int(checkpoint.get("global_step", 0)), **checkpoint["vidssl"]}


def resolve_resume(cfg: Config, run_dir: str | Path) -> tuple[Path | None, int]:
    """The checkpoint to resume from (per ``trainer.resume``) and its global step.

    ``auto`` takes ``run_dir/checkpoints/last.ckpt``, else the newest ``epoch_NNNN.ckpt``, else
    starts afresh; ``none`` starts afresh; anything else is a checkpoint path.

    Raises:
        ConfigError: ``resume=none`` (or a foreign checkpoint) with checkpoints already in
            ``run_dir``, a missing checkpoint path, or a checkpoint of another method/config.
    """
    run_dir = Path(run_dir)
    existing = sorted((run_dir / "checkpoints").glob("*.ckpt"))
    last = run_dir / "checkpoints" / "last.ckpt"
    mode = cfg.trainer.resume
    if mode == "none":
        path = None
    elif mode == "auto":  # last.ckpt, else the newest epoch checkpoint
        epochs = sorted((run_dir / "checkpoints").glob("epoch_*.ckpt"))
        path = last if last.is_file() else (epochs[-1] if epochs else None)
    else:
        path = Path(mode)
        if not path.is_file():
            raise ConfigError(f"trainer.resume={mode!r} is not a checkpoint file")
    if existing and (path is None or path.resolve().parent != last.parent.resolve()):
        raise ConfigError(
            f"run dir {run_dir} already holds checkpoints ({existing[-1].name}); resume it with"
            " trainer.resume=auto or choose another trainer.run_dir"
        )
    if path is None:
        return None, 0
    meta = _read_checkpoint_meta(path)
    if meta["method"] != cfg.method.name:
        raise ConfigError(
            f"checkpoint {path} is of method '{meta['method']}', not '{cfg.method.name}'; "
            "choose another trainer.run_dir"
        )
    differences = config_differences(meta["config"], cfg.to_dict())
    if differences:
        shown = ", ".join(differences[:4]) + (", ..." if len(differences) > 4 else "")
        raise ConfigError(
            f"checkpoint {path} was trained with a different config ({shown}); restore those "
            "values to resume, or choose another trainer.run_dir"
        )
    return path, meta["global_step"]


def _steps_per_epoch(loader: DataLoader, world_size: int) -> int:
    if isinstance(loader, ResumableLoader) or world_size == 1:
        return len(loader)
    samples = len(loader.dataset) / world_size  # type: ignore[arg-type]
    batches = samples / (loader.batch_size or 1)
    return math.floor(batches) if loader.drop_last else math.ceil(batches)


def fit(
    method: BaseMethod, train_data: Dataset | DataLoader, cfg: Config | None = None,
    run_dir: str | Path | None = None, val_data: Dataset | DataLoader | None = None,
    callbacks: list[Callback] | None = None,
) -> lightning.Trainer:  # fmt: skip
    """Trains ``method`` (resuming per ``cfg.trainer.resume``) and returns the finished trainer.

    Args:
        method: A `BaseMethod` (see `vidssl.methods.registry.build_method`).
        train_data: A map-style dataset (wrapped in a `ResumableLoader`, exact resume) or a
            ready `DataLoader` (resume restarts the interrupted epoch's data order).
        cfg: The run config; defaults to ``method.cfg``.
        run_dir: Output directory; defaults to ``cfg.trainer.run_dir``.
        val_data: Optional validation dataset (in order, each item seeded by its index) or
            loader; needs ``method.validation_step``.
        callbacks: Extra Lightning callbacks.
    """
    cfg = cfg or method.cfg
    run_dir = Path(run_dir or cfg.trainer.run_dir)
    ckpt_path, resume_step = resolve_resume(cfg, run_dir)
    lightning.seed_everything(cfg.trainer.seed, workers=False, verbose=False)
    loader = (
        train_data if isinstance(train_data, DataLoader) else build_train_loader(train_data, cfg)
    )
    extra = [_TrackLoaderPosition(loader)] if isinstance(loader, ResumableLoader) else []
    if hasattr(loader.dataset, "failures"):
        extra.append(ReportSkippedVideos(loader.dataset))
    extra += callbacks or []
    trainer = build_trainer(cfg, run_dir, resume_step=resume_step, callbacks=extra)
    if isinstance(loader, ResumableLoader):
        loader.set_distributed(trainer.global_rank, trainer.world_size)
    method.steps_per_epoch = _steps_per_epoch(loader, trainer.world_size)
    method.batch_augment = device_augment.augment_of(loader.dataset) or method.batch_augment
    method.attach_data(loader.dataset)
    if cfg.schedule.plateau_monitor and val_data is None:
        raise ConfigError(
            f"schedule.plateau_monitor={cfg.schedule.plateau_monitor!r} needs validation data"
        )
    if val_data is not None and not isinstance(val_data, DataLoader):
        val_data = build_eval_loader(val_data, cfg)
    if trainer.is_global_zero:
        save_resolved(cfg, run_dir)
    if ckpt_path is not None:
        log.info("resuming from %s (global step %d)", ckpt_path, resume_step)
    trainer.fit(
        method, train_dataloaders=loader, val_dataloaders=val_data, ckpt_path=ckpt_path,
        weights_only=True,
    )  # fmt: skip
    return trainer
