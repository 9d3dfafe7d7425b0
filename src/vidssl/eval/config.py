"""Evaluation settings: typed dataclasses, YAML presets with inheritance, ``key=value`` overrides.

Uses the same machinery as the training config (`vidssl.config.parse`): presets are
``vidssl/config/presets/eval/<name>.yaml`` and may
inherit with ``defaults: [...]``; unknown keys and bad
values are one-line `ConfigError`s with a suggestion. Sections: ``data``, ``retrieval``,
``linear``, ``finetune``, ``runtime``.

Example:
    >>> cfg = load_eval_config("coclr_retrieval", ["data.root=data/ucf101", "runtime.device=cuda"])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vidssl.config.parse import (
    build_dataclass,
    closest_key_hint,
    merge_trees,
    parse_overrides,
    read_yaml_chain,
    to_tree,
)
from vidssl.config.schema import PRESET_DIR
from vidssl.errors import ConfigError

__all__ = [
    "EVAL_PRESET_DIR",
    "EvalConfig",
    "EvalData",
    "FinetuneSettings",
    "LinearSettings",
    "RetrievalSettings",
    "RuntimeSettings",
    "eval_presets",
    "load_eval_config",
]

EVAL_PRESET_DIR = PRESET_DIR / "eval"


@dataclass
class EvalData:
    """Dataset and clip geometry (train split = gallery / training set, test split = queries)."""

    dataset: str = "ucf101"
    root: str = "data/ucf101"
    media: str | None = None
    flow_media: str | None = None
    split_id: int = 1
    train_split: str = "train"
    test_split: str = "test"
    seq_len: int = 32
    ds: int = 1
    img_size: int = 128
    crop_size: int = 224
    batch_size: int = 4
    workers: int = 4


@dataclass
class RetrievalSettings:
    """Nearest-neighbour retrieval (``protocol``: coclr, full or pcl)."""

    protocol: Literal["coclr", "full", "pcl"] = "coclr"
    ks: list[int] = field(default_factory=lambda: [1, 5, 10, 20, 50])


@dataclass
class LinearSettings:
    """Linear probe on frozen features: L2 → BatchNorm1d → Linear, SGD, ×gamma at milestones.

    ``train_clips``: ``windows`` (every sliding window of each train video, centre crop,
    extracted once: the fast probe) or ``augmented`` (each epoch one random clip per video with
    fine-tuning augmentation: the reference; ``augment_repeats=0`` draws fresh clips every epoch,
    ``n > 0`` cycles ``n`` clip sets drawn once). ``batch_size`` is the global batch;
    ``drop_last`` drops each epoch's last incomplete batch (the reference: 64 with drop_last).
    """

    epochs: int = 100
    lr: float = 0.1
    weight_decay: float = 1e-3
    momentum: float = 0.9
    milestones: list[int] = field(default_factory=lambda: [60, 80])
    gamma: float = 0.1
    batch_size: int = 256
    train_clips: Literal["windows", "augmented"] = "windows"
    augment_repeats: int = 0
    drop_last: bool = False


@dataclass
class FinetuneSettings:
    """End-to-end fine-tuning: Dropout → Linear on the backbone, multi-crop testing.

    ``protocol=pcl`` is PCL's ``ft_classify.py`` (`vidssl.eval.finetune_pcl`): ``val_videos``
    training videos held out, ``ReduceLROnPlateau(plateau_factor, plateau_patience, min_lr)`` on
    their loss, the best-val model tested on ``test_clips`` uniform clips (logits averaged);
    ``normalize_input=false`` feeds [0, 1] frames (the reference fine-tunes un-normalised).
    ``milestones``, ``crops`` and ``dropout`` are CoCLR-protocol settings (pcl: no dropout).

    ``batch_size`` is the global batch (clips per optimiser step; evaluation runs in one
    process, so there is no per-device split). CoCLR's command ran 2 GPUs × 32 under
    DataParallel, i.e. 64 clips per step, with ``drop_last=True``.
    """

    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-3
    backbone_lr_mult: float = 0.1
    weight_decay: float = 1e-3
    momentum: float = 0.9
    epochs: int = 500
    milestones: list[int] = field(default_factory=lambda: [400, 450])
    gamma: float = 0.1
    dropout: float = 0.9
    crops: Literal["center", "five", "ten"] = "ten"
    protocol: Literal["coclr", "pcl"] = "coclr"
    val_videos: int = 0
    plateau_patience: int = 30
    plateau_factor: float = 0.1
    min_lr: float = 1e-5
    test_clips: int = 10
    normalize_input: bool = True
    batch_size: int = 64
    drop_last: bool = True


@dataclass
class RuntimeSettings:
    """Where and how the evaluation runs.

    ``amp`` (bf16 autocast on CUDA) is off by default: the references evaluate in fp32;
    ``runtime.amp=true`` is the faster option.
    """

    device: str = "auto"
    amp: bool = False
    seed: int = 0
    forward_batch: int = 64
    progress: bool = True
    cache_features: bool = False
    out: str = "runs/eval"


@dataclass
class EvalConfig:
    """All evaluation settings."""

    data: EvalData = field(default_factory=EvalData)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    linear: LinearSettings = field(default_factory=LinearSettings)
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain nested dict."""
        return to_tree(self)


def eval_presets() -> list[str]:
    """Names of the packaged evaluation presets, sorted."""
    return sorted(p.stem for p in EVAL_PRESET_DIR.glob("*.yaml"))


def _eval_preset_path(name: str) -> Path:
    name = name.removeprefix("eval/")
    path = EVAL_PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown eval preset '{name}'{closest_key_hint(name, eval_presets())}")
    return path


def _check(cfg: EvalConfig) -> EvalConfig:
    positive = {
        "data.seq_len": cfg.data.seq_len,
        "data.ds": cfg.data.ds,
        "data.img_size": cfg.data.img_size,
        "data.crop_size": cfg.data.crop_size,
        "data.batch_size": cfg.data.batch_size,
        "linear.epochs": cfg.linear.epochs,
        "linear.batch_size": cfg.linear.batch_size,
        "finetune.epochs": cfg.finetune.epochs,
        "finetune.batch_size": cfg.finetune.batch_size,
        "runtime.forward_batch": cfg.runtime.forward_batch,
    }
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{key}={value} is not a positive integer")
    if cfg.linear.augment_repeats < 0:
        raise ConfigError(f"linear.augment_repeats={cfg.linear.augment_repeats} is not >= 0")
    if cfg.data.workers < 0:
        raise ConfigError(f"data.workers={cfg.data.workers} is not >= 0")
    if not 0.0 <= cfg.finetune.dropout < 1.0:
        raise ConfigError(f"finetune.dropout={cfg.finetune.dropout} is not in [0, 1)")
    if not cfg.retrieval.ks or min(cfg.retrieval.ks) < 1:
        raise ConfigError(f"retrieval.ks={cfg.retrieval.ks} must be positive integers")
    return cfg


def load_eval_config(
    preset_or_path: str | Path | None = None, overrides: Sequence[str] = ()
) -> EvalConfig:
    """Loads an eval preset (``coclr_retrieval``) or YAML path, then ``key=value`` overrides.

    Args:
        preset_or_path: A name from `eval_presets`, a ``.yaml`` path, or None for the defaults.
        overrides: Dotted ``key=value`` strings (``data.root=/data/ucf101``, ``linear.epochs=10``).

    Returns:
        The validated `EvalConfig`.

    Raises:
        ConfigError: Unknown preset/file/key or a bad value.
    """
    tree: dict[str, Any] = {}
    if preset_or_path is not None:
        text = str(preset_or_path)
        if text.endswith((".yaml", ".yml")):
            path = Path(text)
            if not path.is_file():
                raise ConfigError(f"eval config file {path} does not exist")
        else:
            path = _eval_preset_path(text)
        tree = read_yaml_chain(path, _eval_preset_path)
    tree = merge_trees(tree, parse_overrides(list(overrides)))
    return _check(build_dataclass(EvalConfig, tree))
