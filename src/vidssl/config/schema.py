"""Typed configuration: dataclass schemas, YAML presets with inheritance, ``key=value`` overrides.

A config has six sections: ``data``, ``model``, ``method``, ``optim``, ``schedule`` and ``trainer``.
The ``method`` section takes the schema of the method named by ``method.name``: each method class
(see `vidssl.methods.registry`) declares a `MethodConfig` subclass with its own fields and
defaults, and may check the whole config in its ``validate_config`` classmethod. This module knows
no methods: `vidssl.methods.registry.load_config` reads a tree here (`read_config_tree`) and
validates it with the method's schema (`build_config`).

A preset name such as ``infonce/ucf101_rgb`` is the file
``vidssl/config/presets/infonce/ucf101_rgb.yaml``
(package data). A YAML file may start with ``defaults: [base/adam_step, ...]`` to inherit from other
presets (or from ``*.yaml`` paths relative to itself); later entries and the file itself win.
``${section.key}`` interpolation is resolved by OmegaConf after overrides are applied.

Example:
    >>> from vidssl.methods.registry import load_config
    >>> cfg = load_config("infonce/ucf101_rgb", ["optim.lr=0.01", "trainer.epochs=10"])
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml

from vidssl.config.parse import (
    build_dataclass,
    closest_key_hint,
    flatten_tree,
    merge_trees,
    parse_overrides,
    read_yaml_chain,
    to_tree,
)
from vidssl.errors import ConfigError
from vidssl.utils.io import atomic_write_text

PRESET_DIR = Path(__file__).with_name("presets")

#: Keys that may change between a run and its resumption (where the run executes, how often it
#: logs or saves, how long it goes on); any other difference means "a different run".
RESUMABLE_KEYS = frozenset(
    {
        "trainer.resume",
        "trainer.logger",
        "trainer.epochs",
        "trainer.max_steps",
        "trainer.accelerator",
        "trainer.devices",
        "trainer.num_nodes",
        "trainer.strategy",
        "trainer.log_every_n_steps",
        "trainer.progress_bar_refresh",
        "trainer.checkpoint_every_n_epochs",
        "trainer.checkpoint_every_n_steps",
        "trainer.run_dir",
        "data.root",
        "data.media",
        "data.flow_media",
        "data.workers",
        "data.pin_memory",
        "data.persistent_workers",
        "data.prefetch_factor",
        "data.augment_on",
    }
)


@dataclass
class DataConfig:
    """Where the videos are and how clips are cut and batched (batch size is per device).

    ``media`` holds the frames the encoder is trained on (default per catalog, e.g.
    ``root/UCF-101``) and ``modality`` says what they are (recorded in the exported encoder);
    ``flow_media`` makes the data two-stream (RGB + flow at the same frames). ``augmentation``
    names the view policy (`vidssl.data.dataset_builder.build_view_policy`). ``augment_on``
    says where the photometric tail of that policy (colour jitter, grey, blur, flip,
    normalisation) runs: ``cpu`` in the data-loader workers, or ``device``: workers ship uint8
    crops and packed parameters, and `vidssl.methods.base.BaseMethod` finishes the views batched
    on the device the batch is on (`vidssl.data.transforms.device`); same views up to float
    rounding.
    ``residual`` feeds the RGB clips as frame differences (PCL/VCP residual clips,
    `vidssl.data.transforms.ops.residual`; ``none``, ``pcl``, ``vcp`` or ``iic``), applied to
    each finished RGB view; an exported RGB encoder records it so evaluation does the same.
    ``crop_draw`` is the random resized crop of the views: ``once`` (CoCLR's pretraining draw:
    one box, else the whole frame squashed) or ``retry`` (10 tries, then a centred box).
    ``subclip_views=S`` adds CVTCL's per-sub-clip view pairs (each of the ``S`` sub-clip pairs
    augmented with its own draw; `vidssl.data.datasets.MultiViewDataset`); 0 = none.
    """

    dataset: str = "ucf101"
    root: str = "data/ucf101"
    media: str | None = None
    flow_media: str | None = None
    modality: Literal["rgb", "flow"] = "rgb"
    augmentation: Literal["coclr", "base", "null"] = "coclr"
    augment_on: Literal["cpu", "device"] = "cpu"
    crop_draw: Literal["once", "retry"] = "once"
    subclip_views: int = 0
    residual: Literal["none", "pcl", "vcp", "iic"] = "none"
    split: str = "train"
    split_id: int = 1
    seq_len: int = 32
    ds: int = 1
    num_views: int = 2
    img_size: int = 128
    batch_size: int = 32
    workers: int = 4
    drop_last: bool = True
    pin_memory: bool = True
    persistent_workers: bool = True
    prefetch_factor: int = 2


@dataclass
class ModelConfig:
    """The backbone (`vidssl.models.build_backbone`) and the projection head sizes."""

    backbone: str = "s3d"
    width_mult: float = 1.0
    in_channels: int = 3
    proj_hidden_dim: int | None = None
    proj_dim: int = 128


@dataclass
class MethodConfig:
    """Base of every method's own config; ``name`` selects the method class."""

    name: str = ""


@dataclass
class OptimConfig:
    """Optimiser and its parameter groups.

    ``lr_mult`` maps a parameter-name prefix to a learning-rate multiplier (``{"backbone": 0.1}``
    trains the backbone at lr/10); ``no_decay_bias_norm`` exempts biases and normalisation weights
    (parameters with ≤ 1 dimension) from weight decay. ``larc_*`` apply to ``larc_sgd`` only.
    """

    name: Literal["sgd", "adam", "adamw", "larc_sgd"] = "adam"
    lr: float = 1e-3
    weight_decay: float = 1e-5
    momentum: float = 0.9
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    lr_mult: dict[str, float] = field(default_factory=dict)
    no_decay_bias_norm: bool = False
    larc_trust: float = 0.001
    larc_clip: bool = False
    larc_eps: float = 1e-8


@dataclass
class ScheduleConfig:
    """Learning-rate schedule, set every iteration (epochs are converted to iterations).

    ``warmup_epochs`` ramps linearly from ``warmup_start_lr``; ``warmup_multipliers`` instead gives
    one multiplier per warm-up epoch (CVTCL: ``[0.01, 0.05, 0.1, 0.5, 1]``). With
    ``per_iteration=false`` the schedule only changes at epoch boundaries. ``horizon_epochs``
    (cosine only; 0 = ``trainer.epochs``) is the length the cosine is laid out over, so a run can
    stop part-way through a longer schedule (ViCC's cross stages start from epoch 300 of a
    500-epoch single-stream cosine: ``trainer.epochs=300 schedule.horizon_epochs=500``).

    ``plateau_monitor`` (e.g. ``val/loss``, logged by the method from its validation data)
    replaces the iteration schedule by ``ReduceLROnPlateau(mode, factor, patience, min_lr)``
    stepped once per epoch, after validation, on that metric; it needs ``name=none`` and no
    warm-up.
    """

    name: Literal["none", "step", "multistep", "cosine"] = "none"
    milestones: list[int] = field(default_factory=list)
    step_size: int = 30
    gamma: float = 0.1
    min_lr: float = 0.0
    warmup_epochs: float = 0.0
    warmup_start_lr: float = 0.0
    warmup_multipliers: list[float] = field(default_factory=list)
    per_iteration: bool = True
    horizon_epochs: int = 0
    plateau_monitor: str = ""
    plateau_mode: Literal["min", "max"] = "min"
    plateau_factor: float = 0.1
    plateau_patience: int = 10
    plateau_min_lr: float = 0.0


@dataclass
class TrainerConfig:
    """Run control: length, devices, precision, checkpoints, resume, NaN policy, logging.

    ``precision="auto"`` is bf16-mixed on a CUDA device that supports it, else 32. ``num_nodes=0``
    takes the node count from SLURM / torchrun. ``resume`` is ``auto`` (continue from
    ``run_dir/checkpoints/last.ckpt`` if present), ``none``, or a checkpoint path. ``logger``:
    ``csv`` writes ``metrics.csv`` (+ TensorBoard when installed); ``wandb`` also logs to Weights
    & Biases (extra ``vidssl[wandb]``; project from ``$WANDB_PROJECT``, default ``vidssl``).
    """

    epochs: int = 100
    max_steps: int = -1
    precision: Literal["auto", "32", "bf16-mixed", "16-mixed"] = "auto"
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    devices: str = "auto"
    num_nodes: int = 0
    strategy: Literal["auto", "ddp", "ddp_find_unused_parameters_true"] = "auto"
    grad_clip: float = 0.0
    grad_clip_algorithm: Literal["norm", "value"] = "norm"
    checkpoint_every_n_epochs: int = 1
    checkpoint_every_n_steps: int = 0
    resume: str = "auto"
    seed: int = 0
    deterministic: bool = False
    benchmark: bool = True
    nan_policy: Literal["stop", "skip", "off"] = "stop"
    log_every_n_steps: int = 50
    progress_bar_refresh: int = 10
    run_dir: str = "runs/default"
    logger: Literal["csv", "wandb"] = "csv"


@dataclass
class Config:
    """The whole configuration of a run."""

    method: MethodConfig
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain nested dict (YAML/JSON-safe)."""
        return to_tree(self)


def available_presets() -> list[str]:
    """Names of the packaged training presets (``method/dataset_stream``), sorted.

    Evaluation and downstream presets (``config/presets/{eval,downstream}/``) and schedules
    (``*_schedule``, see `vidssl.train.schedule`) have their own formats and are not listed.
    """
    names = (
        p.relative_to(PRESET_DIR).with_suffix("").as_posix() for p in PRESET_DIR.rglob("*.yaml")
    )
    return sorted(
        name
        for name in names
        if not name.startswith(("eval/", "downstream/")) and not name.endswith("_schedule")
    )


def preset_path(name: str) -> Path:
    """The YAML file of preset ``name``; `ConfigError` with the closest names if there is none."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        hint = closest_key_hint(name, available_presets())
        raise ConfigError(f"unknown preset '{name}'{hint}")
    return path


def _source_path(preset_or_path: str | Path) -> Path:
    text = str(preset_or_path)
    if text.endswith((".yaml", ".yml")) or Path(text).is_file():
        path = Path(text)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return path
    return preset_path(text)


def _resolve_interpolations(tree: dict[str, Any]) -> dict[str, Any]:
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(OmegaConf.create(tree), resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as error:
        reason = str(error).splitlines()[0]
        raise ConfigError(f"config interpolation failed: {reason}") from None


class MethodSchema(Protocol):
    """What the config needs of a method class: its schema and its whole-config check."""

    config_class: type[MethodConfig]

    @classmethod
    def validate_config(cls, cfg: Config) -> None:
        """Raises `ConfigError` when the whole config does not suit the method."""


def build_config(tree: dict[str, Any], method_class: Callable[[str], MethodSchema]) -> Config:
    """Validates a plain nested dict into a `Config`.

    Args:
        tree: The resolved config tree (sections ``data``, ``method``, ...).
        method_class: Maps ``method.name`` to the method's class (its ``config_class`` schema and
            ``validate_config``); the caller asks the method registry
            (`vidssl.methods.registry.config_from_tree` does), so this module knows no methods.

    Returns:
        The validated config.
    """
    method_section = tree.get("method")
    if not isinstance(method_section, dict) or not method_section.get("name"):
        raise ConfigError("config has no 'method.name'; set it in the YAML or with method.name=...")
    cls = method_class(str(method_section["name"]))
    cfg = build_dataclass(Config, tree, section_types={"method": cls.config_class})
    validate_config(cfg)
    cls.validate_config(cfg)
    return cfg


def read_config_tree(preset_or_path: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Reads a preset name or YAML path with its ``defaults`` chain and applies overrides.

    Args:
        preset_or_path: A preset name (``infonce/ucf101_rgb``) or a path to a ``.yaml`` file.
        overrides: Dotted ``key=value`` strings; values are parsed as YAML and coerced to the type
            of the key (``optim.lr=1e-2``, ``schedule.milestones=[80,90]``) by `build_config`.

    Returns:
        The merged tree with ``${section.key}`` interpolations resolved (not yet validated).

    Raises:
        ConfigError: An unknown preset or file, or a bad override.
    """
    tree = read_yaml_chain(_source_path(preset_or_path), preset_path)
    tree = merge_trees(tree, parse_overrides(list(overrides)))
    return _resolve_interpolations(tree)


def _require(ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is not {expected}")


def validate_config(cfg: Config) -> None:
    """Range and consistency checks shared by all methods (raises `ConfigError`)."""
    d, o, s, t = cfg.data, cfg.optim, cfg.schedule, cfg.trainer
    for key in ("batch_size", "seq_len", "ds", "num_views", "img_size", "prefetch_factor"):
        _require(getattr(d, key) >= 1, f"data.{key}", getattr(d, key), "a positive int")
    _require(d.workers >= 0, "data.workers", d.workers, "a non-negative int")
    _require(cfg.model.width_mult > 0, "model.width_mult", cfg.model.width_mult, "a positive float")
    if d.residual != "none":
        _require(d.augment_on == "cpu", "data.augment_on", d.augment_on, "'cpu' with data.residual")
        _require(
            d.modality == "rgb" or d.flow_media is not None,
            "data.residual", d.residual, "'none' for flow-only data (it applies to RGB clips)",
        )  # fmt: skip
    _require(o.lr > 0, "optim.lr", o.lr, "a positive float")
    _require(o.weight_decay >= 0, "optim.weight_decay", o.weight_decay, "a non-negative float")
    for prefix, mult in o.lr_mult.items():
        _require(mult >= 0, f"optim.lr_mult.{prefix}", mult, "a non-negative float")
    _require(0 <= s.min_lr <= o.lr, "schedule.min_lr", s.min_lr, f"in [0, optim.lr={o.lr}]")
    _require(s.gamma > 0, "schedule.gamma", s.gamma, "a positive float")
    _require(s.step_size >= 1, "schedule.step_size", s.step_size, "a positive int")
    _require(s.warmup_epochs >= 0, "schedule.warmup_epochs", s.warmup_epochs, "non-negative")
    _require(s.horizon_epochs >= 0, "schedule.horizon_epochs", s.horizon_epochs, "non-negative")
    _require(
        s.milestones == sorted(set(s.milestones)) and all(m > 0 for m in s.milestones),
        "schedule.milestones", s.milestones, "a strictly increasing list of positive epochs",
    )  # fmt: skip
    _require(
        all(m > 0 for m in s.warmup_multipliers),
        "schedule.warmup_multipliers", s.warmup_multipliers, "a list of positive multipliers",
    )  # fmt: skip
    _require(
        not (s.warmup_multipliers and s.warmup_epochs),
        "schedule.warmup_epochs", s.warmup_epochs, "0 when schedule.warmup_multipliers is set",
    )  # fmt: skip
    if s.plateau_monitor:
        _require(
            s.name == "none" and not s.warmup_epochs and not s.warmup_multipliers,
            "schedule.plateau_monitor", s.plateau_monitor,
            "empty with schedule.name != none or a warm-up (one lr schedule at a time)",
        )  # fmt: skip
        _require(0 < s.plateau_factor < 1, "schedule.plateau_factor", s.plateau_factor, "in (0, 1)")
        _require(s.plateau_patience >= 0, "schedule.plateau_patience", s.plateau_patience, ">= 0")
    _require(t.epochs >= 1, "trainer.epochs", t.epochs, "a positive int")
    _require(t.max_steps == -1 or t.max_steps >= 1, "trainer.max_steps", t.max_steps, "-1 or ≥ 1")
    _require(
        t.devices == "auto" or (t.devices.isdigit() and int(t.devices) >= 1),
        "trainer.devices", t.devices, "'auto' or a positive int",
    )  # fmt: skip
    _require(t.num_nodes >= 0, "trainer.num_nodes", t.num_nodes, "a non-negative int")
    _require(t.grad_clip >= 0, "trainer.grad_clip", t.grad_clip, "a non-negative float")
    for key in ("checkpoint_every_n_epochs", "checkpoint_every_n_steps", "progress_bar_refresh"):
        _require(getattr(t, key) >= 0, f"trainer.{key}", getattr(t, key), "a non-negative int")
    _require(t.log_every_n_steps >= 1, "trainer.log_every_n_steps", t.log_every_n_steps, "≥ 1")
    _require(bool(t.resume), "trainer.resume", t.resume, "'auto', 'none' or a checkpoint path")


def config_differences(
    old: dict[str, Any], new: dict[str, Any], ignore=RESUMABLE_KEYS
) -> list[str]:
    """Dotted keys whose values differ between two config trees, except the ``ignore`` keys."""
    flat_old, flat_new = flatten_tree(old), flatten_tree(new)
    keys = sorted(set(flat_old) | set(flat_new))
    return [k for k in keys if k not in ignore and flat_old.get(k) != flat_new.get(k)]


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def environment_info() -> dict[str, Any]:
    """Versions, devices, git commit and command line of this process (for ``env.json``)."""
    import torch

    packages = ("vidssl", "torch", "lightning", "numpy", "av", "omegaconf", "pillow")
    cuda = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "versions": {name: _package_version(name) for name in packages},
        "cuda_version": torch.version.cuda,
        "cuda_devices": cuda,
        "git_commit": _git_commit(),
        "command": list(sys.argv),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def save_resolved(cfg: Config, run_dir: str | Path) -> None:
    """Writes ``run_dir/config.yaml`` and ``run_dir/env.json``.

    The YAML loads back with `vidssl.methods.registry.load_config`.
    """
    run_dir = Path(run_dir)
    text = yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None)
    atomic_write_text(run_dir / "config.yaml", text)
    atomic_write_text(run_dir / "env.json", json.dumps(environment_info(), indent=2) + "\n")
