"""Per-step overhead of the vidssl/Lightning engine against a bare PyTorch loop (CPU or GPU).

Trains the same tiny MLP on the same in-memory batches with:

- ``bare``: zero_grad / forward / backward / step / scheduler.step, nothing else;
- ``bare+item``: the same plus ``loss.item()`` every step (one host sync, like any NaN check);
- ``engine``: `vidssl.train.engine.fit` with the config defaults: logging every 50 steps, progress
  bar
  refreshed every 10, the NaN check (one host sync per step), the `ResumableLoader`;
- ``engine-verbose``: logging and progress bar every step;
- ``engine-lean``: logging every 1000 steps, no progress bar, ``nan_policy=off`` and a plain
  DataLoader (no per-sample RNG seeding);
- ``lightning-raw``: a plain LightningModule in a bare ``Trainer`` (no logger, checkpoints,
  progress bar or vidssl code): Lightning's own fixed cost.

and prints the median step time of each (after warm-up) and the ratio to ``bare``. The absolute
difference (ms/step) is the engine's fixed cost; divide it by a real step time to get its share.

    python -m vidssl.bench.engine_overhead --steps 300 --width 256          # CPU, rough
    python -m vidssl.bench.engine_overhead --steps 2000 --width 2048 --device cuda
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.utils.data import DataLoader, Dataset

from vidssl.config.schema import MethodConfig
from vidssl.methods.base import BaseMethod
from vidssl.methods.registry import build_method, config_from_tree, register_method
from vidssl.optim import build_optimizer, build_param_groups, build_scheduler
from vidssl.train.engine import fit


@dataclass
class BenchConfig(MethodConfig):
    """Method config of the benchmark's MLP (no extra fields)."""

    name: str = "bench_mlp"
    width: int = 256


def make_mlp(width: int) -> nn.Module:
    """The tiny MLP every variant trains."""
    return nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))


@register_method("bench_mlp")
class BenchMethod(BaseMethod):
    """The MLP as a vidssl method (trained through `vidssl.train.engine.fit`)."""

    config_class = BenchConfig

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self.net = make_mlp(cfg.method.width)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> dict[str, Any]:
        """Mean squared output as the loss."""
        return {"loss": self.net(batch).pow(2).mean()}


class RawModule(lightning.LightningModule):
    """The MLP as a plain LightningModule (Lightning's own fixed cost)."""

    def __init__(self, width: int, steps: int) -> None:
        super().__init__()
        self.net = make_mlp(width)
        self.steps = steps

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        """Mean squared output as the loss."""
        return self.net(batch).pow(2).mean()

    def configure_optimizers(self) -> Any:
        """Plain SGD."""
        optimizer = torch.optim.SGD(self.parameters(), lr=0.01)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, self.steps)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


class Tensors(Dataset):
    """In-memory random batches, one item per step."""

    def __init__(self, n: int, width: int) -> None:
        self.data = torch.randn(n, width)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.data[index]


class StepTimer(Callback):
    """Records the time at the start of every training batch."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_start(self, trainer, *args) -> None:
        """Appends a timestamp (after a device sync)."""
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())


VARIANTS = {
    "engine": {},
    "engine-verbose": {"log_every_n_steps": 1, "progress_bar_refresh": 1},
    "engine-lean": {"log_every_n_steps": 1000, "progress_bar_refresh": 0, "nan_policy": "off"},
}


def config(args: argparse.Namespace, run_dir: str, variant: str = "engine"):
    """The vidssl config of one engine variant."""
    trainer = {
        "epochs": 1, "accelerator": "gpu" if args.device == "cuda" else "cpu", "devices": "1",
        "precision": "32", "run_dir": run_dir, "checkpoint_every_n_epochs": 0, "benchmark": False,
        **VARIANTS[variant],
    }  # fmt: skip
    tree = {
        "method": {"name": "bench_mlp", "width": args.width},
        "data": {"batch_size": args.batch, "workers": 0, "pin_memory": False},
        "optim": {"name": "sgd", "lr": 0.01},
        "schedule": {"name": "cosine"},
        "trainer": trainer,
    }
    return config_from_tree(tree)


def bare(args: argparse.Namespace, dataset: Tensors, with_item: bool) -> list[float]:
    """Step start times of the bare PyTorch loop."""
    model = make_mlp(args.width).to(args.device)
    cfg = config(args, "unused")
    optimizer = build_optimizer(build_param_groups(model.named_parameters(), cfg.optim), cfg.optim)
    loader = DataLoader(dataset, batch_size=args.batch, shuffle=True, drop_last=True)
    scheduler = build_scheduler(optimizer, cfg.schedule, cfg.optim.lr, len(loader), 1)
    times = []
    for batch in loader:
        if args.device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter())
        batch = batch.to(args.device, non_blocking=True)
        loss = model(batch).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if with_item:
            loss.item()
    return times


def engine(args: argparse.Namespace, dataset: Tensors, variant: str) -> list[float]:
    """Step start times of one `vidssl.train.engine.fit` variant."""
    with tempfile.TemporaryDirectory() as run_dir:
        cfg = config(args, run_dir, variant)
        timer = StepTimer()
        data: Dataset | DataLoader = dataset
        if variant == "engine-lean":
            data = DataLoader(dataset, batch_size=args.batch, shuffle=True, drop_last=True)
        fit(build_method(cfg), data, cfg, callbacks=[timer])
        return timer.times


def lightning_raw(args: argparse.Namespace, dataset: Tensors) -> list[float]:
    """Step start times of a bare Lightning ``Trainer``."""
    timer = StepTimer()
    trainer = lightning.Trainer(
        accelerator="gpu" if args.device == "cuda" else "cpu", devices=1, max_epochs=1,
        logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[timer],
    )  # fmt: skip
    loader = DataLoader(dataset, batch_size=args.batch, shuffle=True, drop_last=True)
    trainer.fit(RawModule(args.width, len(loader)), loader)
    return timer.times


def median_step_ms(times: list[float], warmup: int) -> float:
    """Median interval between step starts after ``warmup`` steps, in ms."""
    return 1000 * statistics.median(b - a for a, b in zip(times[warmup:], times[warmup + 1 :]))


def main() -> None:
    """Parses the options, runs every variant and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = Tensors(args.steps * args.batch, args.width)
    warmup = min(20, args.steps // 5)
    runs = {
        "bare": bare(args, dataset, with_item=False),
        "bare+item": bare(args, dataset, with_item=True),
        **{variant: engine(args, dataset, variant) for variant in VARIANTS},
        "lightning-raw": lightning_raw(args, dataset),
    }
    base = median_step_ms(runs["bare"], warmup)
    results = {}
    for name, times in runs.items():
        ms = median_step_ms(times, warmup)
        results[name] = {"ms_per_step": round(ms, 4), "ratio_to_bare": round(ms / base, 3),
                         "overhead_ms": round(ms - base, 4)}  # fmt: skip
        print(f"{name:12s} {ms:8.3f} ms/step  x{ms / base:5.2f}  (+{ms - base:.3f} ms)")
    if args.out:
        args.out.write_text(
            json.dumps({"args": vars(args) | {"out": str(args.out)}, **results}, indent=2)
        )


if __name__ == "__main__":
    main()
