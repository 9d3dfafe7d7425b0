"""Charades model, optimiser groups, learning-rate schedule and precise BN (severe.md §5, §7)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vidssl.downstream.charades.presets import load_charades_config, preset_names
from vidssl.downstream.trainer import precise_bn
from vidssl.methods.registry import build_method


def test_head_is_pool_dropout_linear_512_to_157():
    model = build_method(load_charades_config("charades/scratch"))
    assert isinstance(model.dropout, nn.Dropout) and model.dropout.p == 0.5
    assert (model.classifier.in_features, model.classifier.out_features) == (512, 157)
    model.eval()
    clips = torch.randn(2, 3, 8, 32, 32)
    expected = model.classifier(model.backbone.forward_map(clips).mean(dim=(2, 3, 4)))
    assert torch.allclose(model(clips), expected, atol=1e-5)
    labels = torch.tensor([[1.0] * 157, [0.0] * 157])
    with torch.no_grad():
        logits = model(clips)
    # BCE with logits, mean over the batch and classes (float64 reference)
    p = torch.sigmoid(logits.double())
    reference = -(labels * p.log() + (1 - labels) * (1 - p).log()).mean()
    loss = model.task_loss(logits, {"label": labels})
    assert float(loss) == pytest.approx(float(reference), rel=1e-5)


def test_lr_schedule_warmup_and_steps_at_reference_epochs():
    cfg = load_charades_config("charades/scratch", ["model.width_mult=0.125"])
    model = build_method(cfg)
    model.steps_per_epoch = 10
    setup = model.configure_optimizers()
    optimizer, scheduler = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    seen = {}
    for iteration in range(57 * 10):
        if iteration % 10 == 0:
            seen[iteration // 10] = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
    expected = {
        0: 1e-4,
        2: 1e-4 + (0.0375 - 1e-4) / 2,  # linear warm-up over 4 epochs
        4: 0.0375,
        41: 0.00375,
        49: 0.000375,
        56: 0.000375,
    }
    for epoch, lr in expected.items():
        assert seen[epoch] == pytest.approx(lr, rel=1e-9), epoch
    assert all(group["momentum"] == 0.9 and group["nesterov"] for group in optimizer.param_groups)


def test_batch_norm_is_exempt_from_weight_decay_and_lr_scales_with_batch():
    cfg = load_charades_config("charades/scratch", ["model.width_mult=0.125", "data.batch_size=32"])
    model = build_method(cfg)
    model.steps_per_epoch = 1
    groups = {g["name"]: g for g in model.configure_optimizers()["optimizer"].param_groups}
    bn_params = {id(p) for m in model.modules() if isinstance(m, nn.BatchNorm3d)
                 for p in m.parameters()}  # fmt: skip
    assert {id(p) for p in groups["no_decay"]["params"]} == bn_params
    assert groups["no_decay"]["weight_decay"] == 0.0 and groups["decay"]["weight_decay"] == 1e-4
    assert any(p is model.classifier.bias for p in groups["decay"]["params"])  # as the reference
    # batch 32 = 2 × the reference batch 16: lr 0.075 after warm-up (warm-up start 2e-4)
    assert groups["decay"]["initial_lr"] == pytest.approx(0.075)
    assert groups["decay"]["lr"] == pytest.approx(2e-4)


def test_precise_bn_sets_running_stats_to_the_average_over_batches():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3, momentum=0.1)).eval()
    batches = [torch.randn(5, 3) * (i + 1) + i for i in range(4)]
    used = precise_bn(model, iter(batches), num_batches=3)
    assert used == 3
    with torch.no_grad():
        feats = [model[0](b).double() for b in batches[:3]]
    mean = torch.stack([f.mean(0) for f in feats]).mean(0)
    var = torch.stack([f.var(0, unbiased=True) for f in feats]).mean(0)
    bn = model[1]
    assert torch.allclose(bn.running_mean.double(), mean, atol=1e-6)
    assert torch.allclose(bn.running_var.double(), var, atol=1e-6)
    assert bn.momentum == 0.1 and not model.training


def test_presets_cover_eleven_inits_four_seeds_and_tiny():
    names = preset_names()
    assert len(names) == 11 * 4 + 1 and "charades/gdt_seed3" in names
    cfg = load_charades_config("charades/gdt_seed3")
    assert (cfg.trainer.seed, cfg.method.init, cfg.method.checkpoint) == (
        3, "gdt", "checkpoints_pretraining/gdt/gdt_K400.pth",
    )  # fmt: skip
    assert (cfg.data.seq_len, cfg.data.ds, cfg.data.img_size, cfg.trainer.epochs) == (
        32,
        8,
        112,
        57,
    )
    assert load_charades_config("charades/tclr").model.backbone == "r2plus1d_18_tclr"
