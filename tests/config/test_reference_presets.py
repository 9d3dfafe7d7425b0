"""Presets named after a reference command reproduce it by default (issue 11).

Values are the reference commands' (see ``/work/shared/reference/coclr_cpr_cvtcl.md`` §4–5).
"""

from __future__ import annotations

import pytest

from vidssl.errors import ConfigError
from vidssl.eval.config import load_eval_config
from vidssl.methods.registry import load_config

REFERENCE_PRESETS = [
    "infonce/ucf101_rgb",
    "infonce/ucf101_flow",
    "infonce/k400_rgb",
    "infonce/k400_flow",
    "ubernce/ucf101_rgb",
    "coclr/ucf101_rgb",
    "coclr/ucf101_flow",
    "coclr/ucf101_rgb_cycle2",
    "coclr/ucf101_flow_cycle2",
    "coclr/k400_rgb",
    "coclr/k400_flow",
    "cpr/ucf101_rgb",
    "cpr/ucf101_flow",
    "cpr/k400_rgb",
    "cpr/k400_flow",
    "cvtcl/ucf101_rgb_local",
    "cvtcl/ucf101_flow_local",
    "cvtcl/ucf101_rgb",
    "cvtcl/ucf101_flow",
]

FLOW_PRESETS = {
    "infonce/ucf101_flow",
    "infonce/k400_flow",
    "coclr/ucf101_flow",
    "coclr/ucf101_flow_cycle2",
    "coclr/k400_flow",
    "coclr/tiny_flow",
    "cpr/ucf101_flow",
    "cpr/k400_flow",
    "cvtcl/ucf101_flow_local",
    "cvtcl/ucf101_flow",
    "cvtcl/tiny_flow_local",
}


@pytest.mark.parametrize("preset", REFERENCE_PRESETS)
def test_reference_presets_train_in_fp32(preset: str) -> None:
    assert load_config(preset).trainer.precision == "32"


def test_bf16_is_an_override() -> None:
    cfg = load_config("coclr/ucf101_rgb", ["trainer.precision=bf16-mixed"])
    assert cfg.trainer.precision == "bf16-mixed"


@pytest.mark.parametrize("preset", ["coclr_retrieval", "coclr_linear", "coclr_finetune"])
def test_evaluation_runs_in_fp32_by_default(preset: str) -> None:
    assert load_eval_config(preset).runtime.amp is False
    assert load_eval_config(preset, ["runtime.amp=true"]).runtime.amp is True


@pytest.mark.parametrize("preset", [*sorted(FLOW_PRESETS), "coclr/ucf101_rgb", "cvtcl/tiny"])
def test_trained_stream_modality(preset: str) -> None:
    expected = "flow" if preset in FLOW_PRESETS else "rgb"
    assert load_config(preset).data.modality == expected


@pytest.mark.parametrize("preset", ["coclr/ucf101_flow", "cpr/ucf101_flow", "cvtcl/ucf101_flow"])
def test_a_flow_trained_stage_cannot_be_exported_as_rgb(preset: str) -> None:
    with pytest.raises(ConfigError, match=r"data\.modality=rgb but method\.reverse=True"):
        load_config(preset, ["data.modality=rgb"])


def test_an_rgb_trained_stage_cannot_claim_flow() -> None:
    with pytest.raises(ConfigError, match="trains the rgb stream"):
        load_config("coclr/ucf101_rgb", ["data.modality=flow"])


def _lr_at_epoch_starts(preset: str, overrides: list[str], epochs: list[int]) -> list[float]:
    """The lr the optimiser holds at the first step of each epoch (3 steps per epoch)."""
    import torch

    from vidssl.optim import build_optimizer, build_scheduler

    cfg = load_config(preset, overrides)
    steps = 3
    optimizer = build_optimizer([{"params": [torch.nn.Parameter(torch.zeros(1))]}], cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.schedule, cfg.optim.lr, steps, cfg.trainer.epochs)
    lrs = {}
    for iteration in range(max(epochs) * steps + 1):
        if iteration % steps == 0 and iteration // steps in epochs:
            lrs[iteration // steps] = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
    return [lrs[e] for e in epochs]


def test_cvtcl_local_stage_trains_at_constant_5e4_like_the_reference() -> None:
    # local_nce.py computes warm-up multipliers but adjust_learning_rate starts from args.lr:
    # 5e-4 from epoch 0, x0.1 at 250 and 280.
    epochs = [0, 1, 2, 3, 4, 249, 250, 279, 280]
    got = _lr_at_epoch_starts("cvtcl/ucf101_rgb_local", [], epochs)
    expected = [5e-4] * 6 + [5e-5, 5e-5, 5e-6]
    assert got == pytest.approx(expected, rel=1e-12)


def test_cvtcl_local_warm_up_is_an_option() -> None:
    option = ["schedule.warmup_multipliers=[0.01,0.05,0.1,0.5,1.0]"]
    got = _lr_at_epoch_starts("cvtcl/ucf101_flow_local", option, [0, 1, 2, 3, 4, 5])
    expected = [5e-6, 2.5e-5, 5e-5, 2.5e-4, 5e-4, 5e-4]
    assert got == pytest.approx(expected, rel=1e-12)
