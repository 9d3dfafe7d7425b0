"""``trainer.logger=wandb``: optional, never required, and not part of what a resume compares."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from tests.engine_toy import toy_config

from vidssl.config.schema import config_differences
from vidssl.errors import ConfigError
from vidssl.train.engine import build_trainer


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed")
def test_wandb_logger_without_the_package_is_a_config_error(tmp_path: Path) -> None:
    cfg = toy_config(tmp_path, "trainer.logger=wandb")
    with pytest.raises(ConfigError, match=r"vidssl\[wandb\]"):
        build_trainer(cfg)


def test_logger_choice_does_not_block_a_resume(tmp_path: Path) -> None:
    csv_run = toy_config(tmp_path).to_dict()
    wandb_run = toy_config(tmp_path, "trainer.logger=wandb").to_dict()
    assert csv_run["trainer"]["logger"] == "csv"
    del csv_run["trainer"]["logger"]  # a run saved before the option existed
    assert config_differences(csv_run, wandb_run) == []
    with pytest.raises(ConfigError):
        toy_config(tmp_path, "trainer.logger=mlflow")
