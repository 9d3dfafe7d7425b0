"""`BaseMethod`: the LightningModule every pre-training method subclasses.

The base class owns what all methods share: the optimiser and its parameter groups
(``cfg.optim``), the per-iteration learning-rate schedule (``cfg.schedule``), step logging (loss
terms, lr, samples/s), the non-finite-loss policy (``cfg.trainer.nan_policy``) and the extra
checkpoint state that exact resumption needs (RNG states, skipped-step count, subclass state).

A method subclass (one small file, registered with ``@register_method``):

- sets ``config_class`` to its `MethodConfig` dataclass and may override ``validate_config``;
- builds its networks in ``__init__(cfg)`` after ``super().__init__(cfg)``; queues and other
  tensors that must survive a restart are ``register_buffer``-ed (they land in the state dict);
- implements ``training_step(batch, batch_idx)`` returning a dict with ``"loss"`` plus any other
  scalar tensors/floats to log (``{"loss": l, "loss_nce": a, "top1": b}``). The base class wraps
  every subclass ``training_step`` (also when a subclass calls ``super().training_step``, only the
  outermost call is processed): the dict is checked for a non-finite loss, logged, and handed to
  Lightning;
- keeps any non-tensor state in ``extra_state()`` / ``load_extra_state(state)``;
- may override ``skip_optimizer_step()`` to run a step without updating the weights;
- overrides ``learnable_named_parameters()`` to leave parameters out of the optimiser.
"""

from __future__ import annotations

import functools
import logging
import math
import random
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import lightning
import numpy as np
import torch
from torch import nn

from vidssl.config.schema import Config, MethodConfig
from vidssl.data.transforms import device as device_augment
from vidssl.data.transforms.batched import BatchedVideoAugment
from vidssl.errors import ConfigError, UserError
from vidssl.optim import (
    build_optimizer,
    build_param_groups,
    build_plateau_scheduler,
    build_scheduler,
)

log = logging.getLogger(__name__)


_PLAIN_ATTRIBUTES = frozenset(
    {"_current_fx_name", "_in_training_step", "_window_start", "_window_samples"}
)


class NonFiniteLossError(UserError):
    """The training loss became NaN or infinite under ``trainer.nan_policy=stop``."""


def capture_rng_state() -> dict[str, Any]:
    """The python, numpy and torch (CPU and CUDA) RNG states, as checkpoint-safe values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.copy()), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of `capture_rng_state` (CUDA states only if this process sees as many devices)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def _scalars(outputs: dict[str, Any]) -> dict[str, float]:
    """The one-element tensors and numbers of a step's output dict, as floats (host sync)."""
    return {
        key: float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
        for key, value in outputs.items()
        if isinstance(value, (float, int))
        or (isinstance(value, torch.Tensor) and value.numel() == 1)
    }


def batch_size_of(batch: Any) -> int:
    """Leading dimension of the first tensor found in a (nested) batch; 1 if there is none."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else 1
    values = batch.values() if isinstance(batch, dict) else batch
    if isinstance(values, (list, tuple)) or isinstance(batch, dict):
        for value in values:
            if isinstance(value, (torch.Tensor, dict, list, tuple)):
                return batch_size_of(value)
    return 1


class BaseMethod(lightning.LightningModule):
    """Shared optimiser, schedule, logging, NaN policy and resume state of all methods.

    Args:
        cfg: The validated run config; ``cfg.method`` is an instance of ``config_class``.

    Attributes:
        steps_per_epoch: Optimiser steps per epoch in this process; set by `vidssl.train.engine.fit`
            (otherwise taken from the trainer when the optimiser is built).
        skipped_steps: Steps skipped for a non-finite loss under ``nan_policy=skip``.
    """

    config_class: ClassVar[type[MethodConfig]] = MethodConfig
    method_name: ClassVar[str] = ""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.steps_per_epoch: int | None = None
        self.skipped_steps = 0
        self._drop_step = False
        self._in_training_step = False
        self._pending_rng: dict[str, Any] | None = None
        self._window_start: float | None = None
        self._window_samples = 0
        #: Latest loss and samples/s, shown by the engine's progress bar.
        self.progress_metrics: dict[str, float] = {}
        #: Finishes ``data.augment_on=device`` batches; set by `vidssl.train.engine.fit` from the
        #: dataset's view policy, else built from ``cfg.data`` on the first such batch.
        self.batch_augment: BatchedVideoAugment | None = None
        #: ``ReduceLROnPlateau`` of ``schedule.plateau_monitor`` (built with the optimiser).
        self.plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        self._pending_plateau: dict[str, Any] | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets `_current_fx_name` ~50 times per step; `nn.Module.__setattr__` costs
        # ~2 µs a call, a plain attribute ~0.2 µs. These names are never parameters or modules.
        if name in _PLAIN_ATTRIBUTES:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("training_step")
        if step is None or getattr(step, "_vidssl_wrapped", False):
            return

        @functools.wraps(step)
        def training_step(self: BaseMethod, *args: Any, **kw: Any) -> Any:
            if self._in_training_step:  # a subclass called super().training_step(...)
                return step(self, *args, **kw)
            self._in_training_step = True
            try:
                outputs = step(self, *args, **kw)
            finally:
                self._in_training_step = False
            batch = args[0] if args else kw.get("batch")
            return self._finish_training_step(outputs, batch)

        training_step._vidssl_wrapped = True  # type: ignore[attr-defined]
        cls.training_step = training_step  # type: ignore[method-assign]

    @classmethod
    def validate_config(cls, cfg: Config) -> None:
        """Checks cross-section constraints of this method; raise `ConfigError` on a problem."""

    @classmethod
    def build_datasets(cls, cfg: Config) -> tuple[Any, Any]:
        """``(train, val)`` datasets of a run; default: `build_pretrain_dataset` and no val."""
        from vidssl.data.dataset_builder import build_pretrain_dataset

        return build_pretrain_dataset(cfg), None

    def attach_data(self, dataset: Any) -> None:
        """Sees the training dataset before training or a resume starts (e.g. to size banks)."""

    def encoder_input(self) -> dict[str, Any]:
        """Input contract of the exported backbone, where it differs from ``cfg.data``.

        Keys ``residual`` (a residual mode or None) and ``normalization`` (a preset name);
        missing keys fall back to ``data.residual`` and ImageNet normalisation.
        """
        return {}

    # ----------------------------------------------------------------------------- optimiser
    def learnable_named_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """Parameters given to the optimiser (default: all with ``requires_grad``)."""
        return ((n, p) for n, p in self.named_parameters() if p.requires_grad)

    def _steps_per_epoch(self) -> int:
        if self.steps_per_epoch is None:
            # Not trained through vidssl.train.engine.fit: ask the trainer (loads the data early).
            total = self.trainer.estimated_stepping_batches
            batches = self.trainer.num_training_batches
            self.steps_per_epoch = int(batches if math.isfinite(batches) else total)
        return self.steps_per_epoch

    def configure_optimizers(self) -> dict[str, Any]:
        """The optimiser from ``cfg.optim`` and a per-iteration scheduler from ``cfg.schedule``.

        With ``schedule.plateau_monitor`` the scheduler is a ``ReduceLROnPlateau`` on that logged
        metric instead (``self.plateau``), stepped once after each validation run of the fit
        (`on_validation_end`), so the epoch-end checkpoint already holds the stepped state; its
        state travels in the checkpoint's ``vidssl`` entry.
        """
        groups = build_param_groups(self.learnable_named_parameters(), self.cfg.optim)
        optimizer = build_optimizer(groups, self.cfg.optim)
        self.plateau = build_plateau_scheduler(optimizer, self.cfg.schedule)
        if self.plateau is not None:  # stepped by on_validation_end, before epoch-end checkpoints
            if self._pending_plateau is not None:
                self.plateau.load_state_dict(self._pending_plateau)
                self._pending_plateau = None
            return {"optimizer": optimizer}
        scheduler = build_scheduler(
            optimizer,
            self.cfg.schedule,
            self.cfg.optim.lr,
            self._steps_per_epoch(),
            self.cfg.trainer.epochs,
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    # ------------------------------------------------------------------------------- steps
    def skip_optimizer_step(self) -> bool:
        """Whether the coming step must leave the weights alone (default: never).

        Decided before the step runs, from state every rank shares (e.g. CoCLR's queue fill);
        the step's forward and backward still run (so DDP stays in step), then the gradients
        are dropped and the optimiser does not step. The step counter and schedule advance.
        """
        return False

    def optimizer_step(
        self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None
    ) -> None:
        """Lightning's optimiser step, or only forward + backward when `skip_optimizer_step`."""
        if optimizer_closure is None:
            super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
            return
        if self.skip_optimizer_step():
            optimizer_closure()
            optimizer.zero_grad(set_to_none=True)
            return
        if self.cfg.trainer.nan_policy != "skip":
            super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
            return
        # nan_policy=skip: the step's own forward decides (every rank agrees, see
        # _finish_training_step). Backward still runs, as DDP requires of every rank; a
        # non-finite step's gradients are then dropped instead of stepping.
        loss = optimizer_closure()
        if self._drop_step:
            self._drop_step = False
            optimizer.zero_grad(set_to_none=True)
            return
        super().optimizer_step(epoch, batch_idx, optimizer, lambda: loss)

    def _finish_training_step(self, outputs: Any, batch: Any) -> dict[str, Any]:
        if isinstance(outputs, torch.Tensor):
            outputs = {"loss": outputs}
        if not isinstance(outputs, dict) or "loss" not in outputs:
            raise TypeError(f"{type(self).__name__}.training_step must return a dict with 'loss'")
        policy = self.cfg.trainer.nan_policy
        if policy != "off":
            finite = bool(torch.isfinite(outputs["loss"].detach()).all())
            # Every rank must take the same decision, or DDP would hang in backward.
            finite = self.trainer.strategy.reduce_boolean_decision(finite, all=True)
            if not finite:
                terms = ", ".join(f"{k}={v:.4g}" for k, v in _scalars(outputs).items())
                where = f"global step {self.global_step} (epoch {self.current_epoch})"
                if policy == "stop":
                    raise NonFiniteLossError(
                        f"non-finite loss at {where} on this or another rank: {terms}; lower "
                        "optim.lr, use trainer.precision=bf16-mixed or 32, or set "
                        "trainer.nan_policy=skip"
                    )
                self.skipped_steps += 1
                self._drop_step = True
                log.warning("skipping step at %s: non-finite loss (%s)", where, terms)
        self._log_step(outputs, batch_size_of(batch))
        return outputs

    def _log_step(self, outputs: dict[str, Any], batch_size: int) -> None:
        now = time.perf_counter()
        if self._window_start is None:
            self._window_start = now
        self._window_samples += batch_size
        every = self.cfg.trainer.log_every_n_steps
        if (self.global_step + 1) % every and self.global_step > 0:
            return
        # Written straight to the loggers: LightningModule.log costs ~1 ms per call and key.
        metrics = {f"train/{key}": value for key, value in _scalars(outputs).items()}
        optimizer = self.optimizers(use_pl_optimizer=False)
        metrics["train/lr"] = float(optimizer.param_groups[0]["lr"])
        if self.cfg.trainer.nan_policy == "skip":
            metrics["train/skipped_steps"] = float(self.skipped_steps)
        self.progress_metrics = {"loss": metrics["train/loss"]}
        elapsed = now - self._window_start
        if elapsed > 0 and self._window_samples > batch_size:
            # Samples of the finished steps (this step's batch is still running) × ranks.
            rate = (self._window_samples - batch_size) * self.trainer.world_size / elapsed
            metrics["train/samples_per_s"] = self.progress_metrics["samples/s"] = rate
        metrics["epoch"] = float(self.current_epoch)
        for logger in self.loggers:
            logger.log_metrics(metrics, step=self.global_step)
            logger.save()
        self._window_start, self._window_samples = now, batch_size

    # ---------------------------------------------------------------------------- batches
    def transfer_batch_to_device(
        self, batch: Any, device: torch.device, dataloader_idx: int
    ) -> Any:
        """Moves the batch, leaving on-device augmentation parameters on the host."""
        rest, params = device_augment.hold_params(batch)
        moved = super().transfer_batch_to_device(rest, device, dataloader_idx)
        return device_augment.restore_params(moved, params)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Finishes ``data.augment_on=device`` views where the batch is (GPU when present).

        Subclasses see the same batch layout as with CPU augmentation (float normalised views,
        no ``"device_params"``); see `vidssl.data.transforms.device`.
        """
        batch = super().on_after_batch_transfer(batch, dataloader_idx)
        if not device_augment.has_params(batch):
            return batch
        if self.batch_augment is None:
            self.batch_augment = device_augment.augment_from_config(self.cfg.data)
        return device_augment.augment_batch(batch, self.batch_augment)

    # -------------------------------------------------------------------------- checkpoints
    def extra_state(self) -> dict[str, Any]:
        """Non-tensor subclass state to checkpoint (plain python values / tensors)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restores what `extra_state` returned."""

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Adds the config, RNG states, skipped-step count and subclass state to the checkpoint."""
        checkpoint["vidssl"] = {
            "method": self.method_name,
            "config": self.cfg.to_dict(),
            "rng": capture_rng_state(),
            "skipped_steps": self.skipped_steps,
            "extra": self.extra_state(),
            "plateau": None if self.plateau is None else self.plateau.state_dict(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restores what `on_save_checkpoint` added (RNG states are applied at train start)."""
        state = checkpoint.get("vidssl", {})
        self.skipped_steps = int(state.get("skipped_steps", 0))
        self._pending_rng = state.get("rng")
        self._pending_plateau = state.get("plateau")
        if self.plateau is not None and self._pending_plateau is not None:  # optimiser built first
            self.plateau.load_state_dict(self._pending_plateau)
            self._pending_plateau = None
        self.load_extra_state(state.get("extra", {}))

    def on_validation_end(self) -> None:
        """Steps the plateau scheduler on the validation metric (during a fit only).

        Raises:
            ConfigError: The validation run logged no ``schedule.plateau_monitor``.
        """
        trainer = self.trainer
        if self.plateau is None or trainer.sanity_checking or trainer.state.fn != "fit":
            return
        monitor = self.cfg.schedule.plateau_monitor
        value = trainer.callback_metrics.get(monitor)
        if value is None:
            logged = ", ".join(sorted(trainer.callback_metrics)) or "nothing"
            raise ConfigError(
                f"schedule.plateau_monitor={monitor!r} was not logged by validation "
                f"(logged: {logged})"
            )
        self.plateau.step(float(value))

    def on_train_start(self) -> None:
        """Applies the RNG states of a resumed checkpoint right before the first step."""
        if self._pending_rng is not None:
            restore_rng_state(self._pending_rng)
            self._pending_rng = None
        self._window_start, self._window_samples = None, 0
