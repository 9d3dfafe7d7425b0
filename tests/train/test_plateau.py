"""Plateau scheduling on a validation metric: ``schedule.plateau_*`` steps ReduceLROnPlateau once
per epoch, after validation, on the logged value (exact lr sequence by hand)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from tests.engine_toy import ToyConfig, ToyDataset, ToyMethod, toy_config

from vidssl.errors import ConfigError
from vidssl.methods.registry import build_method, register_method
from vidssl.train.engine import fit

#: The validation loss each epoch logs (epoch k logs SCRIPT[k]).
SCRIPT = [1.0, 0.5, 0.6, 0.7, 0.4, 0.9, 0.9, 0.9, 0.9]


@dataclass
class ScriptedValConfig(ToyConfig):
    name: str = "toy_scripted_val"


@register_method("toy_scripted_val")
class ScriptedVal(ToyMethod):
    """Logs ``SCRIPT[epoch]`` as ``val/loss`` and records the lr each epoch trains with."""

    config_class = ScriptedValConfig

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self.epoch_lrs: list[float] = []

    def on_train_epoch_start(self) -> None:
        self.epoch_lrs.append(self.optimizers().param_groups[0]["lr"])

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.log("val/loss", SCRIPT[self.current_epoch], on_epoch=True, batch_size=len(batch["x"]))


def _config(run_dir, *extra):
    return toy_config(
        run_dir, "method.name=toy_scripted_val", "schedule.name=none", "schedule.warmup_epochs=0",
        "schedule.min_lr=0", "optim.lr=0.1", "schedule.plateau_monitor=val/loss",
        "schedule.plateau_patience=1", "schedule.plateau_factor=0.1",
        "schedule.plateau_min_lr=0.001", f"trainer.epochs={len(SCRIPT)}", *extra,
    )  # fmt: skip


def test_plateau_steps_on_the_validation_metric_by_hand(tmp_path) -> None:
    cfg = _config(tmp_path)
    method = build_method(cfg)
    fit(method, ToyDataset(8), cfg, val_data=ToyDataset(4))
    # patience 1: the 2nd epoch in a row without improvement on the best (0.5, then 0.4)
    # multiplies the lr by 0.1 for the next epoch: after epochs 3 and 6; after epoch 8 the
    # lr would be 1e-4 but stays at min_lr 1e-3
    assert method.epoch_lrs == pytest.approx([0.1] * 4 + [0.01] * 3 + [0.001] * 2)
    assert method.plateau.state_dict()["best"] == pytest.approx(0.4)
    assert method.optimizers().param_groups[0]["lr"] == pytest.approx(0.001)


def test_plateau_needs_validation_data_and_one_schedule(tmp_path) -> None:
    cfg = _config(tmp_path)
    with pytest.raises(ConfigError, match="needs validation data"):
        fit(build_method(cfg), ToyDataset(8), cfg)
    with pytest.raises(ConfigError, match="plateau_monitor"):
        _config(tmp_path, "schedule.name=cosine")
    cfg = _config(tmp_path / "other", "schedule.plateau_monitor=val/missing", "trainer.epochs=1")
    with pytest.raises(ConfigError, match="was not logged by validation"):
        fit(build_method(cfg), ToyDataset(8), cfg, val_data=ToyDataset(4))
