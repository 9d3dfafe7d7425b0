"""Optimisers, parameter groups, the LARC wrapper and per-iteration learning-rate schedules.

The schedules reproduce the reference code bases:

- CoCLR / CPR: Adam (lr 1e-3, wd 1e-5), ×0.1 at the ``--schedule`` epochs → ``multistep``;
- CVTCL: explicit warm-up multipliers ``[0.01, 0.05, 0.1, 0.5, 1]`` for epochs 0–4, then multistep;
- ViCC (SwAV recipe): LARC-wrapped SGD, linear warm-up then cosine from ``lr`` to ``min_lr``
  evaluated every iteration: ``min + ½(lr − min)(1 + cos(π·t/T))`` with ``t`` counted from the end
  of the warm-up and ``T`` the iterations after it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from vidssl.config.schema import OptimConfig, ScheduleConfig
from vidssl.errors import ConfigError


def _lr_mult_for(name: str, lr_mult: dict[str, float]) -> tuple[str | None, float]:
    """The longest ``lr_mult`` prefix that matches parameter ``name`` (whole dotted components)."""
    best: str | None = None
    for prefix in lr_mult:
        if (name == prefix or name.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(best)
        ):
            best = prefix
    return best, (lr_mult[best] if best is not None else 1.0)


def build_param_groups(
    named_parameters: Iterable[tuple[str, nn.Parameter]], cfg: OptimConfig
) -> list[dict[str, Any]]:
    """Splits parameters into groups by learning-rate multiplier and weight-decay exemption.

    Args:
        named_parameters: ``(name, parameter)`` pairs to optimise (frozen ones are left out).
        cfg: The optimiser config; ``lr_mult`` prefixes match whole name components
            (``backbone`` matches ``backbone.conv1.weight``, not ``backbone2.weight``).

    Returns:
        Param-group dicts with ``params``, ``lr``, ``weight_decay`` and a readable ``name``.

    Raises:
        ConfigError: An ``lr_mult`` prefix matches no parameter.
    """
    groups: dict[tuple[float, bool], dict[str, Any]] = {}
    used_prefixes: set[str] = set()
    names: list[str] = []
    for name, param in named_parameters:
        if not param.requires_grad:
            continue
        names.append(name)
        prefix, mult = _lr_mult_for(name, cfg.lr_mult)
        if prefix is not None:
            used_prefixes.add(prefix)
        decay = not (cfg.no_decay_bias_norm and param.ndim <= 1)
        key = (mult, decay)
        if key not in groups:
            label = f"lr_x{mult:g}" + ("" if decay else "_no_decay")
            groups[key] = {
                "params": [],
                "lr": cfg.lr * mult,
                "weight_decay": cfg.weight_decay if decay else 0.0,
                "name": label,
            }
        groups[key]["params"].append(param)
    for prefix in cfg.lr_mult:
        if prefix not in used_prefixes:
            tops = sorted({n.split(".")[0] for n in names})
            raise ConfigError(
                f"optim.lr_mult.{prefix} matches no trainable parameter; top-level names: "
                + ", ".join(tops)
            )
    return list(groups.values())


class LARC(torch.optim.Optimizer):
    """Layer-wise adaptive rate control around any optimiser (NVIDIA apex ``LARC`` semantics).

    Before each inner step, every parameter ``w`` with gradient ``g`` (both non-zero norms) gets
    ``local = trust·‖w‖ / (‖g‖ + wd·‖w‖ + eps)``; with ``clip=False`` the gradient becomes
    ``(g + wd·w)·local``, with ``clip=True`` the factor is ``min(local / lr, 1)``. Weight decay is
    folded into the gradient, so the inner optimiser runs with ``weight_decay=0`` during the step
    (the group values are restored afterwards, so schedulers and checkpoints see them unchanged).
    Parameters with a zero weight or gradient norm keep their plain gradient and get no decay.

    Args:
        optimizer: The optimiser to wrap (SwAV/ViCC: SGD with momentum 0.9).
        trust_coefficient: ``trust`` above (0.001 in SwAV/ViCC).
        clip: Clip the local rate to the group's lr (LARS "clip" mode).
        eps: Added to the denominator.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        trust_coefficient: float = 0.001,
        clip: bool = False,
        eps: float = 1e-8,
    ) -> None:
        self.optimizer = optimizer
        self.trust_coefficient = trust_coefficient
        self.clip = clip
        self.eps = eps
        # Share the inner optimiser's group dicts and state: schedulers, GradScaler and
        # checkpointing that look at `self` see and change exactly what the inner step uses.
        super().__init__(optimizer.param_groups, optimizer.defaults)
        self.param_groups = optimizer.param_groups
        self.state = optimizer.state

    def state_dict(self) -> dict[str, Any]:
        """The inner optimiser's state dict."""
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Loads the inner optimiser's state dict."""
        self.optimizer.load_state_dict(state_dict)
        self.param_groups = self.optimizer.param_groups
        self.state = self.optimizer.state

    @torch.no_grad()
    def _scale_gradients(self) -> list[float]:
        weight_decays = []
        for group in self.param_groups:
            weight_decay = group.get("weight_decay", 0.0)
            weight_decays.append(weight_decay)
            group["weight_decay"] = 0.0
            for param in group["params"]:
                if param.grad is None:
                    continue
                # Tensor-only arithmetic (no `if norm == 0` on the host): no GPU sync per layer.
                dtype = torch.promote_types(param.dtype, torch.float32)
                param_norm = torch.linalg.vector_norm(param, dtype=dtype)
                grad_norm = torch.linalg.vector_norm(param.grad, dtype=dtype)
                adapt = (param_norm > 0) & (grad_norm > 0)
                local_lr = (
                    self.trust_coefficient
                    * param_norm
                    / (grad_norm + param_norm * weight_decay + self.eps)
                )
                if self.clip:
                    local_lr = torch.clamp(local_lr / group["lr"], max=1.0)
                scale = torch.where(adapt, local_lr, torch.ones_like(local_lr))
                decay = adapt.to(dtype) * weight_decay
                param.grad.copy_((param.grad.to(dtype) + param.to(dtype) * decay) * scale)
        return weight_decays

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Evaluates ``closure`` (if any), rescales gradients, then steps the inner optimiser."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        weight_decays = self._scale_gradients()
        try:
            self.optimizer.step()
        finally:
            for group, weight_decay in zip(self.param_groups, weight_decays):
                group["weight_decay"] = weight_decay
        return loss


def build_optimizer(param_groups: list[dict[str, Any]], cfg: OptimConfig) -> torch.optim.Optimizer:
    """Creates the optimiser ``cfg.name`` (sgd | adam | adamw | larc_sgd) over the groups."""
    if cfg.name in ("sgd", "larc_sgd"):
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            param_groups,
            lr=cfg.lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            nesterov=cfg.nesterov,
        )
        if cfg.name == "larc_sgd":
            optimizer = LARC(optimizer, cfg.larc_trust, cfg.larc_clip, cfg.larc_eps)
        return optimizer
    cls = torch.optim.Adam if cfg.name == "adam" else torch.optim.AdamW
    return cls(param_groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)


def lr_multiplier(
    cfg: ScheduleConfig, base_lr: float, iteration: int, steps_per_epoch: int, epochs: int
) -> float:
    """The factor applied to each group's initial lr at ``iteration`` (0-based).

    Args:
        cfg: The schedule.
        base_lr: ``optim.lr``; ``min_lr`` and ``warmup_start_lr`` are relative to it.
        iteration: Optimiser steps taken so far.
        steps_per_epoch: Iterations per epoch (per process).
        epochs: Length of the whole run in epochs (the cosine horizon unless
            ``cfg.horizon_epochs`` is set).

    Returns:
        The multiplier; ``lr = group_lr · multiplier``.
    """
    epochs = cfg.horizon_epochs or epochs
    epoch = iteration // steps_per_epoch
    # Position in epochs: fractional when the schedule moves every iteration.
    position = iteration / steps_per_epoch if cfg.per_iteration else float(epoch)
    if epoch < len(cfg.warmup_multipliers):
        return cfg.warmup_multipliers[epoch]
    if position < cfg.warmup_epochs:
        start = cfg.warmup_start_lr / base_lr
        return start + (1.0 - start) * position / cfg.warmup_epochs
    if cfg.name == "multistep":
        return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    if cfg.name == "step":
        return cfg.gamma ** (epoch // cfg.step_size)
    if cfg.name == "cosine":
        warmup = max(float(len(cfg.warmup_multipliers)), cfg.warmup_epochs)
        progress = (position - warmup) / max(epochs - warmup, 1e-12)
        floor = cfg.min_lr / base_lr
        return floor + 0.5 * (1.0 - floor) * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    return 1.0


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    cfg: ScheduleConfig,
    base_lr: float,
    steps_per_epoch: int,
    epochs: int,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A `LambdaLR` stepped every iteration with `lr_multiplier` (one factor for all groups)."""
    if steps_per_epoch < 1:
        raise ConfigError(f"the training data gives {steps_per_epoch} batches per epoch; need ≥ 1")

    def multiplier(iteration: int) -> float:
        return lr_multiplier(cfg, base_lr, iteration, steps_per_epoch, epochs)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)


def build_plateau_scheduler(
    optimizer: torch.optim.Optimizer, cfg: ScheduleConfig
) -> torch.optim.lr_scheduler.ReduceLROnPlateau | None:
    """``ReduceLROnPlateau`` from ``cfg.plateau_*`` (None when ``plateau_monitor`` is empty).

    Stepped once per epoch with the monitored metric: after ``plateau_patience`` epochs without
    improvement every group's lr is multiplied by ``plateau_factor``, never below
    ``plateau_min_lr`` (PCL: factor 0.1, patience 50, min_lr 1e-5 on the validation loss).
    """
    if not cfg.plateau_monitor:
        return None
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode=cfg.plateau_mode,
        factor=cfg.plateau_factor,
        patience=cfg.plateau_patience,
        min_lr=cfg.plateau_min_lr,
    )
