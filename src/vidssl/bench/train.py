"""``vidssl bench train``: one InfoNCE step in vidssl vs the same step in a bare PyTorch loop.

Both sides train the same model (``ProjectionEncoder`` query/key encoders on a `build_backbone`
backbone) on the same two-view batch, resident on the device, with the same work per step:
query forward, EMA of the key encoder (multi-tensor kernels), key forward, logits against a
cloned queue, cross-entropy, backward, Adam step, enqueue.

- **vidssl**: the real ``infonce`` method (preset ``infonce/ucf101_rgb`` with the sizes
  overridden) inside the real Lightning trainer through `vidssl.train.engine.fit`: schedule, NaN
  check,
  metric logging every ``trainer.log_every_n_steps`` steps, callbacks; only the progress bar is off.
- **bare**: a hand-written loop of plain PyTorch calls, no framework.

A step is timed from one batch start to the next (the device is synchronised at each start, on
both sides), so everything between two steps counts. The median over ``--steps`` timed steps
after ``--warmup`` untimed ones is reported per side; the runs alternate (bare, vidssl) for
``--rounds`` rounds and the medians pool all timed steps. ``overhead_ms`` is the difference of
the medians, ``ratio`` their quotient (target ≤ 1.10).

Default sizes are the reference's per-GPU step on CUDA (S3D, batch 32, 32×128², K=2048) and a
real S3D step on CPU (batch 2, 16×64²); ``--quick`` is a seconds-long smoke run (S3D at width
1/16, 8×32², batch 4, K=16) whose ratio is dominated by the fixed per-step cost of the trainer.
Full measurement: ``vidssl bench train --out benchmarks/results/train.json`` on an idle machine.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import logging
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from vidssl.bench.common import int_option
from vidssl.errors import UserError

logger = logging.getLogger(__name__)

TARGET_RATIO = 1.10
PRESET = "infonce/ucf101_rgb"
_LIGHTNING_NOISE = (
    ".*does not have many workers.*",
    ".*smaller than the logging interval.*",
    r".*isinstance\(treespec, LeafSpec\).*",
)


@dataclass(frozen=True)
class TrainBenchSettings:
    """Sizes and loop lengths of one benchmark run."""

    device: str
    precision: str
    backbone: str
    width_mult: float
    batch_size: int
    frames: int
    size: int
    queue_size: int
    steps: int
    warmup: int
    rounds: int


def resolve_settings(args: argparse.Namespace) -> TrainBenchSettings:
    """Fills the defaults for the device and ``--quick`` and checks the values."""
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available to this torch build")
    if args.quick:
        sizes = {"width": 0.0625, "batch": 4, "frames": 8, "size": 32, "queue": 16}
    elif device == "cuda":
        sizes = {"width": 1.0, "batch": 32, "frames": 32, "size": 128, "queue": 2048}
    else:
        sizes = {"width": 1.0, "batch": 2, "frames": 16, "size": 64, "queue": 2048}
    width = args.width_mult if args.width_mult is not None else sizes["width"]
    if not width > 0:
        raise UserError(f"--width-mult: expected a positive number, got {width}")
    settings = TrainBenchSettings(
        device=device,
        precision=args.precision,
        backbone=args.backbone,
        width_mult=float(width),
        batch_size=int_option(args.batch_size, sizes["batch"], "--batch-size"),
        frames=int_option(args.frames, sizes["frames"], "--frames"),
        size=int_option(args.size, sizes["size"], "--size"),
        queue_size=int_option(args.queue_size, sizes["queue"], "--queue-size"),
        steps=int_option(args.steps, 3 if args.quick else 20, "--steps", 2),
        warmup=int_option(args.warmup, 1 if args.quick else 5, "--warmup", 0),
        rounds=int_option(args.rounds, 1 if args.quick else 2, "--rounds"),
    )
    if settings.queue_size % settings.batch_size:
        raise UserError(
            f"--queue-size {settings.queue_size} is not a multiple of --batch-size "
            f"{settings.batch_size}"
        )
    return settings


def _config(settings: TrainBenchSettings, run_dir: Path) -> Any:
    from vidssl.methods.registry import load_config

    s = settings
    return load_config(
        PRESET,
        [
            f"model.backbone={s.backbone}", f"model.width_mult={s.width_mult}",
            f"data.batch_size={s.batch_size}", f"data.seq_len={s.frames}",
            f"data.img_size={s.size}", "data.workers=0", "data.pin_memory=false",
            f"method.queue_size={s.queue_size}", "trainer.devices=1", "trainer.epochs=1",
            f"trainer.accelerator={'gpu' if s.device == 'cuda' else 'cpu'}",
            f"trainer.precision={s.precision}", f"trainer.max_steps={s.warmup + s.steps + 1}",
            "trainer.progress_bar_refresh=0", "trainer.checkpoint_every_n_epochs=0",
            f"trainer.run_dir={run_dir}",
        ],
    )  # fmt: skip


def _synchronize(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_batch(settings: TrainBenchSettings, device: Any) -> dict[str, Any]:
    """A two-view batch of random clips on ``device`` (seeded, identical for both sides)."""
    import torch

    gen = torch.Generator().manual_seed(0)
    shape = (settings.batch_size, 3, settings.frames, settings.size, settings.size)
    views = [torch.randn(shape, generator=gen).to(device) for _ in range(2)]
    index = torch.arange(settings.batch_size, device=device)
    return {"views": views, "label": index, "index": index, "group": index}


class TimedRun(NamedTuple):
    """Seconds per timed step and the query encoder's weights after the run."""

    seconds: list[float]
    encoder_q: dict[str, Any]


def _timed_intervals(starts: list[float], warmup: int) -> list[float]:
    """Seconds between consecutive step starts, without the first ``warmup`` steps."""
    return [end - start for start, end in itertools.pairwise(starts)][warmup:]


def _detached(module: Any) -> dict[str, Any]:
    return {k: v.detach().float().cpu() for k, v in module.state_dict().items()}


def time_vidssl(settings: TrainBenchSettings, batch: dict[str, Any]) -> TimedRun:
    """Seconds between consecutive batch starts of a real `fit` run (warm-up dropped)."""
    from lightning.pytorch.callbacks import Callback
    from torch.utils.data import DataLoader, Dataset

    from vidssl.methods.registry import build_method
    from vidssl.train.engine import fit

    class SameBatch(Dataset):
        def __len__(self) -> int:
            return settings.warmup + settings.steps + 1

        def __getitem__(self, index: int) -> dict[str, Any]:
            return batch

    starts: list[float] = []

    class StepClock(Callback):
        def on_train_batch_start(self, trainer: Any, *args: Any) -> None:
            _synchronize(batch["views"][0].device)
            starts.append(time.perf_counter())

    lightning_log = logging.getLogger("lightning.pytorch")
    previous_level = lightning_log.level
    lightning_log.setLevel(logging.WARNING)  # no "GPU available" banner for every run
    with tempfile.TemporaryDirectory(prefix="vidssl-bench-train-") as run_dir:
        cfg = _config(settings, Path(run_dir))
        method = build_method(cfg)
        loader = DataLoader(SameBatch(), batch_size=None, shuffle=False, num_workers=0)
        with warnings.catch_warnings():  # Lightning's advice about loaders and short epochs
            for message in _LIGHTNING_NOISE:
                warnings.filterwarnings("ignore", message)
            try:
                fit(method, loader, cfg, callbacks=[StepClock()])
            finally:
                lightning_log.setLevel(previous_level)
    return TimedRun(_timed_intervals(starts, settings.warmup), _detached(method.encoder_q))


def time_bare(settings: TrainBenchSettings, batch: dict[str, Any]) -> TimedRun:
    """Seconds per step of a hand-written MoCo loop doing the same work (warm-up dropped)."""
    import torch
    import torch.nn.functional as F

    from vidssl.models import build_backbone
    from vidssl.models.heads import ProjectionEncoder

    device = batch["views"][0].device
    torch.backends.cudnn.benchmark = True  # as the references and vidssl's trainer.benchmark
    torch.manual_seed(0)
    backbone = build_backbone(settings.backbone, width_mult=settings.width_mult)
    encoder_q = ProjectionEncoder(backbone, None, 128).to(device).train()
    encoder_k = copy.deepcopy(encoder_q).requires_grad_(False)
    params_q, params_k = list(encoder_q.parameters()), list(encoder_k.parameters())
    queue = F.normalize(torch.randn(settings.queue_size, 128, device=device), dim=1)
    ptr, momentum, temperature = 0, 0.999, 0.07
    optimizer = torch.optim.Adam(params_q, lr=1e-3, weight_decay=1e-5)
    bf16 = settings.precision == "bf16-mixed"
    target = torch.zeros(settings.batch_size, dtype=torch.long, device=device)
    starts: list[float] = []
    for _ in range(settings.warmup + settings.steps + 1):
        _synchronize(device)
        starts.append(time.perf_counter())
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            q = encoder_q(batch["views"][0])
            with torch.no_grad():
                torch._foreach_mul_(params_k, momentum)
                torch._foreach_add_(params_k, torch._foreach_mul(params_q, 1.0 - momentum))
                k = encoder_k(batch["views"][1])
        negatives = queue.clone()
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ negatives.T], dim=1) / temperature
        loss = F.cross_entropy(logits, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        queue[ptr : ptr + settings.batch_size] = k
        ptr = (ptr + settings.batch_size) % settings.queue_size
    return TimedRun(_timed_intervals(starts, settings.warmup), _detached(encoder_q))


def _summary(seconds: list[float]) -> dict[str, Any]:
    ms = [1000.0 * s for s in seconds]
    return {
        "ms_per_step_median": statistics.median(ms),
        "ms_per_step_mean": statistics.fmean(ms),
        "ms_per_step_min": min(ms),
        "steps_ms": ms,
    }


def measure(settings: TrainBenchSettings) -> dict[str, Any]:
    """Runs the alternating rounds and returns both sides' summaries, ratio and overhead."""
    import torch

    device = torch.device(settings.device)
    batch = make_batch(settings, device)
    timings: dict[str, list[float]] = {"bare": [], "vidssl": []}
    rounds: list[dict[str, float]] = []
    weight_difference = 0.0
    for round_index in range(settings.rounds):
        medians, weights = {}, {}
        for side, timer in (("bare", time_bare), ("vidssl", time_vidssl)):
            result = timer(settings, batch)
            timings[side] += result.seconds
            medians[side] = 1000.0 * statistics.median(result.seconds)
            weights[side] = result.encoder_q
            if device.type == "cuda":
                torch.cuda.empty_cache()
        weight_difference = max(
            weight_difference,
            max(float((weights["bare"][k] - v).abs().max()) for k, v in weights["vidssl"].items()),
        )
        logger.info("round %d: %s", round_index + 1, medians)
        rounds.append(medians)
    bare, ours = _summary(timings["bare"]), _summary(timings["vidssl"])
    ratio = ours["ms_per_step_median"] / bare["ms_per_step_median"]
    return {
        "bare": bare,
        "vidssl": ours,
        "round_medians_ms": rounds,
        "ratio": ratio,
        "overhead_ms": ours["ms_per_step_median"] - bare["ms_per_step_median"],
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
        # Same seed, same work: both runs end at the same query encoder (up to kernel
        # non-determinism on GPU); a large value means the loops did not do the same step.
        "max_weight_difference": weight_difference,
    }
