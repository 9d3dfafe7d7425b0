"""Pre-training as a library call: config → dataset → method → `vidssl.train.engine.fit` → encoder.

`run_pretraining` is what ``vidssl pretrain`` runs; multi-stage schedules
(`vidssl.train.schedule`) and the demo call it once per stage.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidssl.config.schema import Config

#: Lightning messages that say nothing useful about a vidssl run: torch 2.13's treespec
#: deprecation inside Lightning; the logging-interval hint on tiny runs; CoCLR's frozen
#: other-stream encoder is in eval mode by design; and while CoCLR's queue fills no optimiser
#: step is taken but the per-iteration schedule still advances (as in the reference).
_QUIET_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\).*",
    r".*smaller than the logging interval.*",
    r".*module\(s\) in eval mode at the start of training.*",
    r".*lr_scheduler.step\(\)` before `optimizer.step\(\)`.*",
)


@dataclass(frozen=True)
class PretrainResult:
    """What one pre-training run produced (on rank 0; other ranks get ``encoder_dir=None``)."""

    run_dir: Path
    encoder_dir: Path | None
    global_step: int
    final_loss: float | None
    seconds: float
    skipped_videos: tuple[str, ...]

    def summary(self, method: str) -> str:
        """The one-line summary ``vidssl pretrain`` prints."""
        loss = "n/a" if self.final_loss is None else f"{self.final_loss:.4f}"
        names = self.skipped_videos
        shown = (": " + ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")) if names else ""
        return (
            f"pretrain {method}: {self.global_step} steps, final loss {loss}, "
            f"{self.seconds:.1f} s, skipped {len(names)} unreadable videos{shown}; "
            f"encoder in {self.encoder_dir}"
        )


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


def quiet_lightning_warnings() -> None:
    """Hides Lightning warnings that carry no information for vidssl users."""
    for message in _QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message)


def trained_residual(cfg: Config) -> str | None:
    """The residual mode the trained encoder sees: ``data.residual`` applies to RGB clips only.

    A flow encoder (``data.modality=flow``, e.g. CoCLR's reverse stage, whose RGB clips feed the
    frozen mining encoder) sees plain flow.
    """
    d = cfg.data
    return d.residual if d.residual != "none" and d.modality == "rgb" else None


def run_pretraining(cfg: Config, source: str = "") -> PretrainResult:
    """Trains ``cfg`` (resuming per ``cfg.trainer.resume``) and exports the encoder.

    The query encoder's backbone goes to ``<run_dir>/encoder/`` (``encoder.safetensors`` +
    ``encoder.json``, loadable with `vidssl.models.load_encoder`).

    Args:
        cfg: A validated config (`vidssl.methods.registry.load_config`).
        source: The preset name or file the config came from (recorded in ``encoder.json``).

    Returns:
        Run directory, encoder directory, steps, final loss, wall time and skipped videos.

    Raises:
        UserError: Bad data paths or settings (one line).
    """
    quiet_lightning_warnings()
    from vidssl.data.dataset_builder import augmentation_keys, trained_augmentation
    from vidssl.methods.registry import build_method, method_class
    from vidssl.models.checkpoints.export import export_encoder
    from vidssl.train.engine import fit

    dataset, val_dataset = method_class(cfg.method.name).build_datasets(cfg)
    method = build_method(cfg)
    run_dir = Path(cfg.trainer.run_dir)
    last_loss = _final_loss_callback()
    start = time.perf_counter()
    trainer = fit(method, dataset, cfg, run_dir, val_data=val_dataset, callbacks=[last_loss])
    seconds = time.perf_counter() - start
    encoder_dir = None
    if trainer.is_global_zero:
        d = cfg.data
        contract = method.encoder_input()
        encoder_dir = run_dir / "encoder"
        export_encoder(
            method.backbone,
            encoder_dir,
            modality=d.modality,
            # the CoCLR view policies normalise with ImageNet stats
            normalization=contract.get("normalization", "imagenet"),
            input_size=(d.seq_len, d.img_size, d.img_size),
            residual=contract.get("residual", trained_residual(cfg)),
            source={
                "method": cfg.method.name,
                "config": source,
                "checkpoint": str(run_dir / "checkpoints" / "last.ckpt"),
                "global_step": int(trainer.global_step),
            },
            extra={"augmentation": trained_augmentation(**augmentation_keys(d))},
        )
    return PretrainResult(
        run_dir=run_dir,
        encoder_dir=encoder_dir,
        global_step=int(trainer.global_step),
        final_loss=None if last_loss.loss is None else float(last_loss.loss),
        seconds=seconds,
        skipped_videos=tuple(dataset.failed_videos()),
    )
