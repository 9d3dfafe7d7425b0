"""``vidssl pretrain PRESET|CONFIG.yaml [key=value ...]``: self-supervised pre-training.

Loads the config, builds the dataset (`vidssl.data.dataset_builder.build_pretrain_dataset`) and
the method (`vidssl.methods.registry.build_method`), trains with `vidssl.engine.fit` (resuming per
``trainer.resume``), then exports the query encoder's backbone to ``<run_dir>/encoder/``
(``encoder.safetensors`` + ``encoder.json``, loadable with `vidssl.models.load_encoder`) and
prints a one-line summary.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path
from typing import Any

#: Lightning messages that say nothing useful about a vidssl run (torch 2.13 treespec
#: deprecation inside Lightning; the logging-interval hint on tiny runs).
_QUIET_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\).*",
    r".*smaller than the logging interval.*",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the command's options to ``parser``."""
    parser.epilog = (
        "Examples: vidssl pretrain infonce/tiny data.root=data/synth; vidssl pretrain "
        "infonce/ucf101_rgb data.root=data/ucf101 trainer.devices=2. Outputs in trainer.run_dir: "
        "checkpoints/ (last.ckpt, epoch_NNNN.ckpt), metrics.csv, config.yaml, env.json, encoder/."
    )
    parser.add_argument("config", metavar="PRESET", help="preset name (infonce/tiny) or YAML path")
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="config overrides (optim.lr=0.01)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")


def _final_loss_callback() -> Any:
    from lightning.pytorch.callbacks import Callback

    class LastLoss(Callback):
        """Keeps the last training loss (as a tensor: no host sync per step)."""

        def __init__(self) -> None:
            self.loss: Any = None

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, *args) -> None:
            if isinstance(outputs, dict) and "loss" in outputs:
                self.loss = outputs["loss"].detach()

    return LastLoss()


def run(args: argparse.Namespace) -> int:
    """Trains, exports the encoder and prints the summary; returns 0."""
    import yaml

    from vidssl.config import load_config

    cfg = load_config(args.config, args.overrides)
    if args.dry_run:
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None), end="")
        return 0
    for message in _QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message)

    from vidssl.data.dataset_builder import build_pretrain_dataset
    from vidssl.engine import fit
    from vidssl.methods.registry import build_method
    from vidssl.models.checkpoint_export import export_encoder

    dataset = build_pretrain_dataset(cfg)
    method = build_method(cfg)
    run_dir = Path(cfg.trainer.run_dir)
    last_loss = _final_loss_callback()
    start = time.perf_counter()
    trainer = fit(method, dataset, cfg, run_dir, callbacks=[last_loss])
    seconds = time.perf_counter() - start
    if not trainer.is_global_zero:
        return 0
    d = cfg.data
    export_encoder(
        method.backbone,
        run_dir / "encoder",
        modality=d.modality,
        normalization="imagenet",  # the CoCLR view policies normalise with ImageNet statistics
        input_size=(d.seq_len, d.img_size, d.img_size),
        source={
            "method": cfg.method.name,
            "config": str(args.config),
            "checkpoint": str(run_dir / "checkpoints" / "last.ckpt"),
            "global_step": int(trainer.global_step),
        },
    )
    loss = "n/a" if last_loss.loss is None else f"{float(last_loss.loss):.4f}"
    skipped = dataset.failures()
    names = dataset.failed_videos()
    shown = (": " + ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")) if skipped else ""
    print(
        f"pretrain {cfg.method.name}: {trainer.global_step} steps, final loss {loss}, "
        f"{seconds:.1f} s, skipped {skipped} unreadable videos{shown}; "
        f"encoder in {run_dir / 'encoder'}"
    )
    return 0
