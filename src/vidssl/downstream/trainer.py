"""The shared SEVERE downstream trainer: backbone from any initialisation + a task head.

A task (Charades here, AVA next) subclasses `DownstreamModule` (a `BaseMethod`, so the Lightning
engine `vidssl.train.engine.fit` gives it DDP, precision, exact resume, progress, CSV and
TensorBoard logs) and `DownstreamTask` (its datasets, evaluation and result summary); then
`run_downstream` trains, recomputes BatchNorm statistics (precise BN), evaluates and writes
``results.json`` + ``results.md``, or only evaluates a finished run (``evaluate_only``).

What the module owns (severe.md §5, §7):

- the backbone, built strictly by `vidssl.models.checkpoints.load_foreign` from ``method.init``
  and ``method.checkpoint``, or from a vidssl-exported encoder (``init=vidssl``); its
  `LoadReport` is printed and saved as ``init_report.json``;
- SGD with BatchNorm parameters exempt from weight decay (the reference's ``BN.WEIGHT_DECAY=0``;
  other biases, i.e. the classifier's, keep it, as in the reference), learning rate
  ``optim.lr · global_batch / method.reference_batch`` (the schedule, warm-up start included,
  is scaled with it; the reference at batch 16 is unscaled), the per-iteration schedule of
  ``cfg.schedule`` (warm-up, then ×``gamma`` at the milestones).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from vidssl.config.schema import Config, MethodConfig, config_differences
from vidssl.errors import CheckpointError, ConfigError, UserError
from vidssl.methods.base import BaseMethod
from vidssl.models.backbones import VideoBackbone
from vidssl.models.checkpoints import LoadReport, load_encoder, load_foreign_with_report
from vidssl.models.checkpoints.arch import arch_of
from vidssl.models.checkpoints.io import file_sha256
from vidssl.optim import build_optimizer, build_scheduler
from vidssl.train.engine import fit
from vidssl.train.loader import SeededItems
from vidssl.utils.io import atomic_write_text

log = logging.getLogger(__name__)

#: The initialisations SEVERE compares (severe.md §4), as ``load_foreign`` method names.
INITS = (
    "scratch", "supervised", "selavi", "moco", "video_moco", "pretext_contrast", "rspnet",
    "avid_cma", "ctp", "tclr", "gdt",
)  # fmt: skip
BACKBONES = ("r2plus1d_18", "r2plus1d_18_tclr")


@dataclass
class DownstreamConfig(MethodConfig):
    """Fields every downstream task shares.

    ``init`` names the initialisation (`INITS`, any case); ``checkpoint`` is its file (None for
    scratch); ``trust_checkpoint`` allows arbitrary unpickling. ``reference_batch`` is the global
    batch that ``optim.lr`` is given for. ``precise_bn_batches`` training batches recompute the
    BatchNorm statistics before evaluation (0 = off). ``eval_batch_size`` is the test batch.
    """

    init: str = "scratch"
    checkpoint: str | None = None
    trust_checkpoint: bool = False
    num_classes: int = 157
    dropout: float = 0.5
    reference_batch: int = 16
    precise_bn_batches: int = 200
    eval_batch_size: int = 16


def is_batch_norm(module: nn.Module) -> bool:
    """Whether ``module`` is a BatchNorm layer (any dimension)."""
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


def param_groups(
    model: nn.Module, lr: float, weight_decay: float, *, no_decay_bias: bool = False
) -> list[dict[str, Any]]:
    """Two SGD groups: BatchNorm parameters (no weight decay) and all others (``weight_decay``).

    With ``no_decay_bias`` every other 1-d parameter (biases) is exempt as well.
    """
    norm_ids = {id(p) for m in model.modules() if is_batch_norm(m) for p in m.parameters(False)}
    decay, no_decay = [], []
    for param in model.parameters():
        if not param.requires_grad:
            continue
        exempt = id(param) in norm_ids or (no_decay_bias and param.ndim <= 1)
        (no_decay if exempt else decay).append(param)
    groups = [{"params": decay, "lr": lr, "weight_decay": weight_decay, "name": "decay"}]
    if no_decay:
        groups.append({"params": no_decay, "lr": lr, "weight_decay": 0.0, "name": "no_decay"})
    return groups


@torch.no_grad()
def precise_bn(model: nn.Module, batches: Iterable[torch.Tensor], num_batches: int) -> int:
    """Recomputes every BatchNorm's running statistics as plain averages over batches.

    After this, each layer's ``running_mean`` / ``running_var`` is the mean over the batches of
    that layer's batch mean / unbiased batch variance (fvcore ``update_bn_stats``, used by
    PySlowFast's ``BN.USE_PRECISE_STATS``). The model runs in train mode; its mode and the
    layers' momenta are restored afterwards.

    Returns:
        The number of batches used (fewer when ``batches`` runs out).
    """
    layers = [m for m in model.modules() if is_batch_norm(m)]
    if not layers or num_batches < 1:
        return 0
    momenta = [m.momentum for m in layers]
    was_training = model.training
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average
    model.train()
    used = 0
    try:
        for clips in batches:
            model(clips)
            used += 1
            if used >= num_batches:
                break
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        model.train(was_training)
    return used


def _load_vidssl_encoder(cfg: Config) -> tuple[VideoBackbone, LoadReport]:
    m: DownstreamConfig = cfg.method  # type: ignore[assignment]
    path = Path(str(m.checkpoint))
    backbone = load_encoder(path)
    spec = backbone.config()
    arch = arch_of(backbone)
    if arch != cfg.model.backbone or abs(spec["width_mult"] - cfg.model.width_mult) > 1e-9:
        raise CheckpointError(
            f"encoder {path} is a {arch} of width {spec['width_mult']}, the config asks for "
            f"model.backbone={cfg.model.backbone} model.width_mult={cfg.model.width_mult}"
        )
    weights = (
        path / "encoder.safetensors" if path.is_dir() else path.with_name("encoder.safetensors")
    )
    keys = list(backbone.state_dict())
    report = LoadReport(
        "vidssl", arch, spec["in_channels"], spec["width_mult"], str(weights),
        file_sha256(weights), "", "", loaded={key: key for key in keys},
    )  # fmt: skip
    return backbone, report


def load_initialisation(cfg: Config) -> tuple[VideoBackbone, LoadReport]:
    """The backbone of ``method.init`` (strict) and what was loaded into it.

    SEVERE inits go through `load_foreign` (architecture ``model.backbone``, width
    ``model.width_mult``); ``vidssl`` takes an exported encoder (directory of
    ``encoder.safetensors`` + ``encoder.json``, `vidssl.models.load_encoder`).

    Raises:
        CheckpointError: The file does not fit (method, architecture, width or keys).
    """
    m: DownstreamConfig = cfg.method  # type: ignore[assignment]
    try:
        if m.init.lower() == "vidssl":
            backbone, report = _load_vidssl_encoder(cfg)
        else:
            backbone, report = load_foreign_with_report(
                m.checkpoint, m.init, cfg.model.backbone, trust=m.trust_checkpoint,
                width_mult=cfg.model.width_mult, in_channels=cfg.model.in_channels,
            )  # fmt: skip
    except CheckpointError as error:
        raise CheckpointError(f"method.init={m.init}: {error}") from None
    if report.arch not in BACKBONES:
        raise CheckpointError(
            f"{m.checkpoint} holds a {report.arch} backbone; SEVERE tasks use {BACKBONES}"
        )
    return backbone, report


class DownstreamModule(BaseMethod):
    """Backbone (strictly loaded) → global average pool → dropout → ``Linear(F, num_classes)``.

    Subclasses set ``config_class`` and implement `task_loss`.
    """

    config_class: ClassVar[type[MethodConfig]] = DownstreamConfig

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        backbone, report = load_initialisation(cfg)
        self.backbone = backbone.train()
        self.load_report = report
        self.build_head(backbone.feature_dim)

    def build_head(self, feature_dim: int) -> None:
        """Adds the task head on ``feature_dim`` backbone features (default: dropout + linear)."""
        m: DownstreamConfig = self.cfg.method  # type: ignore[assignment]
        self.dropout = nn.Dropout(m.dropout)
        self.classifier = nn.Linear(feature_dim, m.num_classes)

    @classmethod
    def validate_config(cls, cfg: Config) -> None:
        """Checks the init name, checkpoint presence and the backbone."""
        m: DownstreamConfig = cfg.method  # type: ignore[assignment]
        if m.init.lower() not in (*INITS, "vidssl"):
            raise ConfigError(f"method.init={m.init!r} is not one of {', '.join(INITS)} or vidssl")
        if (m.init.lower() == "scratch") != (m.checkpoint is None):
            raise ConfigError(
                "method.init=scratch takes no checkpoint" if m.checkpoint
                else f"method.init={m.init} needs a checkpoint (--checkpoint FILE)"
            )  # fmt: skip
        if cfg.model.backbone not in BACKBONES:
            raise ConfigError(f"model.backbone={cfg.model.backbone!r} is not one of {BACKBONES}")
        if not 0 <= m.dropout < 1:
            raise ConfigError(f"method.dropout={m.dropout} is not in [0, 1)")

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Logits ``B×num_classes`` for clips ``B×C×T×H×W``."""
        return self.classifier(self.dropout(self.backbone(clips)))

    def task_loss(self, logits: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        """The task's training loss."""
        raise NotImplementedError

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        """One step: forward the clip, task loss."""
        return {"loss": self.task_loss(self(batch["views"][0]), batch)}

    def global_batch(self) -> int:
        """``data.batch_size`` × processes."""
        world = self._trainer.world_size if self._trainer is not None else 1
        return self.cfg.data.batch_size * world

    def configure_optimizers(self) -> dict[str, Any]:
        """SGD over `param_groups` at the linearly scaled lr, and the per-iteration schedule."""
        m: DownstreamConfig = self.cfg.method  # type: ignore[assignment]
        o = self.cfg.optim
        lr = o.lr * self.global_batch() / m.reference_batch
        groups = param_groups(self, lr, o.weight_decay, no_decay_bias=o.no_decay_bias_norm)
        optimizer = build_optimizer(groups, o)
        scheduler = build_scheduler(
            optimizer, self.cfg.schedule, o.lr, self._steps_per_epoch(), self.cfg.trainer.epochs
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


class DownstreamTask:
    """What a task adds to the trainer: datasets, evaluation and its result summary.

    Attributes:
        name: Task name (``charades``), also the ``method.name`` of its module.
        metric: Key of the headline number in the results (``mAP``).
    """

    name: ClassVar[str] = ""
    metric: ClassVar[str] = ""

    def datasets(self, cfg: Config) -> tuple[Dataset, Dataset]:
        """The training dataset and the test dataset."""
        raise NotImplementedError

    def evaluate(
        self, model: DownstreamModule, test_data: Dataset, cfg: Config, out_dir: Path
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Runs the test protocol; returns ``(results, protocol)`` (files may go to out_dir)."""
        raise NotImplementedError

    def train_loader(self, train_data: Dataset, cfg: Config) -> Dataset | DataLoader:
        """What `fit` trains on: the dataset itself (default) or a resumable loader.

        Override to batch differently, e.g. ``build_train_loader(data, cfg, collate_fn)``.
        """
        return train_data


def _device(cfg: Config) -> torch.device:
    use_gpu = cfg.trainer.accelerator != "cpu" and torch.cuda.is_available()
    return torch.device("cuda" if use_gpu else "cpu")


def view_batches(
    dataset: Dataset,
    cfg: Config,
    *,
    batch_size: int,
    shuffle_seed: int | None = None,
    collate_fn: Any = None,
) -> Iterator[dict[str, Any]]:
    """Collated batches of ``dataset`` with items seeded by position (worker-count independent).

    ``shuffle_seed`` visits the items in a seeded random order (`vidssl.train.loader.SeededItems`
    then seeds each item by its position in that order); ``collate_fn`` replaces the default.
    """
    if shuffle_seed is not None:
        size = len(dataset)  # type: ignore[arg-type]
        dataset = Subset(dataset, np.random.default_rng([shuffle_seed, 7]).permutation(size))
    yield from DataLoader(
        SeededItems(dataset, cfg.trainer.seed), batch_size=batch_size, shuffle=False,
        num_workers=cfg.data.workers, pin_memory=torch.cuda.is_available(), collate_fn=collate_fn,
    )  # fmt: skip


def _load_trained(module: DownstreamModule, cfg: Config, run_dir: Path) -> int:
    path = run_dir / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise UserError(f"{run_dir} has no checkpoints/last.ckpt to evaluate; train it first")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    meta = checkpoint.get("vidssl", {})
    if meta.get("method") != cfg.method.name:
        raise CheckpointError(f"{path} is not a {cfg.method.name} run")
    differences = config_differences(meta.get("config", {}), cfg.to_dict())
    if differences:
        log.warning("evaluating %s with settings that differ from training: %s", path,
                    ", ".join(differences))  # fmt: skip
    module.load_state_dict(checkpoint["state_dict"])
    return int(checkpoint.get("global_step", 0))


def _write_markdown(record: dict[str, Any], path: Path, metric: str) -> None:
    init = record["encoders"]["rgb"]
    lines = [
        f"# {record['task']}: {metric} {100 * record[metric]:.2f}",
        "",
        f"- init: {init['method']} ({init['checkpoint'] or 'no checkpoint'}, "
        f"sha256 {init['sha256'] or '-'})",
        "- protocol: " + ", ".join(f"{k} {v}" for k, v in record["protocol"].items()),
        f"- test videos: {record['dataset'].get('test_videos')}, "
        f"skipped {record['skipped']['count']}",
        f"- per-class AP: {record['results'].get('per_class_file', '-')}",
        f"- global step: {record['global_step']}",
    ]
    atomic_write_text(path, "\n".join(lines) + "\n")


def run_downstream(
    task: DownstreamTask, cfg: Config, *, evaluate_only: bool = False
) -> dict[str, Any] | None:
    """Trains (resuming per ``trainer.resume``) and evaluates, or only evaluates a saved run.

    Writes to ``trainer.run_dir``: ``init_report.json``, the engine's outputs (checkpoints,
    metrics.csv, config.yaml), and after evaluation ``results.json`` / ``results.md`` plus the
    task's files. Training stopped early by ``trainer.max_steps`` is not evaluated (resume it).

    Returns:
        The result record, or None when nothing was evaluated (stopped early, or not rank 0).
    """
    from vidssl.methods.registry import build_method

    run_dir = Path(cfg.trainer.run_dir)
    train_data, test_data = task.datasets(cfg)
    module: DownstreamModule = build_method(cfg)  # type: ignore[assignment]
    report = module.load_report
    for line in report.summary_lines():
        print(line)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "init_report.json", json.dumps(report.to_dict(), indent=2) + "\n")
    started = time.perf_counter()
    if evaluate_only:
        step = _load_trained(module, cfg, run_dir)
    else:
        trainer = fit(module, task.train_loader(train_data, cfg), cfg, run_dir)
        step = trainer.global_step
        planned = cfg.trainer.epochs * (module.steps_per_epoch or 0)
        if step < planned:
            log.warning("training stopped at step %d of %d; resume to finish", step, planned)
            return None
        if not trainer.is_global_zero:
            return None
    device = _device(cfg)
    model = module.to(device)
    m: DownstreamConfig = cfg.method  # type: ignore[assignment]
    used = precise_bn(
        model,
        (
            batch["views"][0].to(device)
            for batch in view_batches(
                train_data, cfg, batch_size=cfg.data.batch_size, shuffle_seed=cfg.trainer.seed
            )
        ),
        m.precise_bn_batches,
    )  # fmt: skip
    model.eval()
    results, protocol = task.evaluate(model, test_data, cfg, run_dir)
    protocol["precise_bn_batches"] = used
    from vidssl.eval.results import make_record

    test_videos, skipped = results.pop("videos"), results.pop("skipped", [])
    record = make_record(
        task.name,
        dataset={"name": task.name, "root": cfg.data.root, "test_videos": test_videos},
        protocol=protocol,
        encoders={
            "rgb": {
                "method": report.method,
                "checkpoint": report.path,
                "sha256": report.sha256,
                "arch": report.arch,
            }
        },
        results=results,
        skipped={"test": skipped},
        settings=cfg.to_dict(),
    )
    record[task.metric] = results[task.metric]
    record["global_step"] = step
    record["seconds"] = round(time.perf_counter() - started, 2)
    atomic_write_text(run_dir / "results.json", json.dumps(record, indent=2, default=str) + "\n")
    _write_markdown(record, run_dir / "results.md", task.metric)
    return record
