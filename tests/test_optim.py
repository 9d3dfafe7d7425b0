from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vidssl.config.schema import OptimConfig, ScheduleConfig
from vidssl.errors import ConfigError
from vidssl.optim import LARC, build_optimizer, build_param_groups, build_scheduler, lr_multiplier


class TwoPart(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
        self.backbone2 = nn.Linear(1, 1)  # shares a name prefix, not a component, with "backbone"
        self.head = nn.Linear(3, 2)
        self.frozen = nn.Parameter(torch.ones(2), requires_grad=False)


def test_param_groups_lr_multipliers_and_no_decay() -> None:
    model = TwoPart()
    cfg = OptimConfig(
        lr=0.1, weight_decay=0.01, lr_mult={"backbone": 0.1, "head": 2.0}, no_decay_bias_norm=True
    )
    groups = build_param_groups(model.named_parameters(), cfg)
    by_name = {g["name"]: g for g in groups}
    ids = {name: {id(p) for p in g["params"]} for name, g in by_name.items()}
    p = dict(model.named_parameters())
    assert ids == {
        "lr_x0.1": {id(p["backbone.0.weight"])},
        "lr_x0.1_no_decay": {
            id(p[k]) for k in ("backbone.0.bias", "backbone.1.weight", "backbone.1.bias")
        },
        "lr_x1": {id(p["backbone2.weight"])},
        "lr_x1_no_decay": {id(p["backbone2.bias"])},
        "lr_x2": {id(p["head.weight"])},
        "lr_x2_no_decay": {id(p["head.bias"])},
    }  # the frozen parameter is in no group
    assert by_name["lr_x0.1"]["lr"] == pytest.approx(0.01) and by_name["lr_x2"]["lr"] == 0.2
    assert (
        by_name["lr_x0.1"]["weight_decay"] == 0.01
        and by_name["lr_x2_no_decay"]["weight_decay"] == 0.0
    )
    optimizer = build_optimizer(groups, OptimConfig(name="adam", lr=0.1))
    assert isinstance(optimizer, torch.optim.Adam)
    assert [g["lr"] for g in optimizer.param_groups] == [g["lr"] for g in groups]


def test_lr_mult_prefix_matching_no_parameter_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"optim.lr_mult.encoder matches no trainable parameter; "
                       r"top-level names: backbone, backbone2, head"):  # fmt: skip
        build_param_groups(TwoPart().named_parameters(), OptimConfig(lr_mult={"encoder": 0.1}))


def test_adam_skips_parameters_without_gradient() -> None:
    used, unused = nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(3))
    optimizer = build_optimizer(
        build_param_groups([("a", used), ("b", unused)], OptimConfig()), OptimConfig(name="adam")
    )
    (used * torch.arange(3.0)).sum().backward()
    optimizer.step()
    assert unused not in optimizer.state and torch.equal(unused.detach(), torch.ones(3))
    assert used in optimizer.state and not torch.equal(used.detach(), torch.ones(3))


# --------------------------------------------------------------------------------- schedules
@pytest.mark.parametrize(
    ("iteration", "expected_lr"),
    [
        (0, 0.0),  # warm-up from warmup_start_lr=0
        (5, 0.025),  # 0.5 of 2 warm-up epochs: 0.1 · 0.25
        (20, 0.1),  # warm-up done, cosine starts at lr
        (45, 0.1 * (0.01 + 0.495 * (1 + math.cos(math.pi / 4)))),  # 2.5 of 10 cosine epochs
        (70, 0.1 * (0.01 + 0.495)),  # half-way: (lr + min_lr) / 2
        (120, 0.001),  # end: min_lr
    ],
)
def test_warmup_cosine_per_iteration(iteration: int, expected_lr: float) -> None:
    cfg = ScheduleConfig(name="cosine", min_lr=0.001, warmup_epochs=2)
    lr = 0.1 * lr_multiplier(cfg, 0.1, iteration, steps_per_epoch=10, epochs=12)
    assert lr == pytest.approx(expected_lr, rel=1e-12, abs=1e-15)


def test_vicc_cosine_at_epoch_300_of_500() -> None:
    # The reference notes: ViCC single-stream weights are taken 300 epochs into a 500-epoch cosine
    # schedule, "at about lr 0.21": 0.0006 + ½·0.5994·(1 + cos(0.6π)) = 0.20768...
    cfg = ScheduleConfig(name="cosine", min_lr=0.0006)
    lr = 0.6 * lr_multiplier(cfg, 0.6, 300 * 49, steps_per_epoch=49, epochs=500)
    assert lr == pytest.approx(0.0006 + 0.2997 * (1 - 0.30901699437494745), rel=1e-12)


@pytest.mark.parametrize(
    ("iteration", "expected_lr"),
    [(0, 1e-3), (250 * 149 - 1, 1e-3), (250 * 149, 1e-4), (280 * 149 - 1, 1e-4), (280 * 149, 1e-5)],
)
def test_coclr_multistep(iteration: int, expected_lr: float) -> None:
    cfg = ScheduleConfig(name="multistep", milestones=[250, 280], gamma=0.1)
    lr = 1e-3 * lr_multiplier(cfg, 1e-3, iteration, steps_per_epoch=149, epochs=300)
    assert lr == pytest.approx(expected_lr, rel=1e-12)


@pytest.mark.parametrize(
    ("iteration", "expected_lr"),
    [(0, 5e-6), (9, 5e-6), (15, 2.5e-5), (25, 5e-5), (35, 2.5e-4), (45, 5e-4), (2499, 5e-4),
     (2500, 5e-5), (2800, 5e-6)],
)  # fmt: skip
def test_cvtcl_explicit_warmup_multipliers_then_multistep(
    iteration: int, expected_lr: float
) -> None:
    cfg = ScheduleConfig(
        name="multistep", milestones=[250, 280], warmup_multipliers=[0.01, 0.05, 0.1, 0.5, 1.0]
    )
    lr = 5e-4 * lr_multiplier(cfg, 5e-4, iteration, steps_per_epoch=10, epochs=300)
    assert lr == pytest.approx(expected_lr, rel=1e-12)


def test_step_none_and_per_epoch_cosine() -> None:
    step = ScheduleConfig(name="step", step_size=30, gamma=0.5)
    assert lr_multiplier(step, 1.0, 65 * 7 + 3, steps_per_epoch=7, epochs=100) == 0.25
    assert lr_multiplier(ScheduleConfig(), 1.0, 12345, steps_per_epoch=7, epochs=100) == 1.0
    per_epoch = ScheduleConfig(name="cosine", per_iteration=False)
    # iteration 15 of 10/epoch is epoch 1: progress 1/10 of the cosine, not 1.5/10
    value = lr_multiplier(per_epoch, 1.0, 15, steps_per_epoch=10, epochs=10)
    assert value == pytest.approx(0.5 * (1 + math.cos(0.1 * math.pi)), rel=1e-12)


def test_scheduler_sets_every_group_each_iteration() -> None:
    model = TwoPart()
    optim_cfg = OptimConfig(name="sgd", lr=0.1, lr_mult={"head": 0.5})
    optimizer = build_optimizer(build_param_groups(model.named_parameters(), optim_cfg), optim_cfg)
    sched_cfg = ScheduleConfig(name="cosine", warmup_epochs=1)
    scheduler = build_scheduler(optimizer, sched_cfg, 0.1, steps_per_epoch=4, epochs=3)
    for iteration in range(12):
        mult = lr_multiplier(sched_cfg, 0.1, iteration, 4, 3)
        lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}
        assert lrs["lr_x1"] == pytest.approx(0.1 * mult) and lrs["lr_x0.5"] == pytest.approx(
            0.05 * mult
        )
        optimizer.step()
        scheduler.step()


# ------------------------------------------------------------------------------------- LARC
def larc_sgd(params, lr: float, wd: float, momentum: float = 0.0, clip: bool = False) -> LARC:
    return LARC(
        torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd), 0.001, clip, 1e-8
    )


def test_larc_single_step_matches_hand_computation() -> None:
    w = nn.Parameter(torch.tensor([3.0, 4.0], dtype=torch.float64))  # ‖w‖ = 5
    w.grad = torch.tensor([0.6, 0.8], dtype=torch.float64)  # ‖g‖ = 1
    optimizer = larc_sgd([w], lr=0.5, wd=0.1)
    optimizer.step()
    local = 0.001 * 5 / (1 + 0.1 * 5 + 1e-8)  # trust·‖w‖ / (‖g‖ + wd·‖w‖ + eps)
    expected = [3 - 0.5 * local * (0.6 + 0.1 * 3), 4 - 0.5 * local * (0.8 + 0.1 * 4)]
    assert w.detach().tolist() == pytest.approx(expected, rel=1e-14)
    assert optimizer.param_groups[0]["weight_decay"] == 0.1  # restored after the step


def test_larc_clip_mode_and_zero_norm_parameter() -> None:
    w = nn.Parameter(torch.tensor([3.0, 4.0], dtype=torch.float64))
    w.grad = torch.tensor([0.6, 0.8], dtype=torch.float64)
    zero = nn.Parameter(torch.zeros(2, dtype=torch.float64))
    zero.grad = torch.tensor([1.0, -2.0], dtype=torch.float64)
    larc_sgd([w, zero], lr=0.5, wd=0.1, clip=True).step()
    factor = min(0.001 * 5 / (1.5 + 1e-8) / 0.5, 1.0)
    assert w.detach().tolist() == pytest.approx([3 - 0.5 * factor * 0.9, 4 - 0.5 * factor * 1.2])
    # ‖w‖ = 0: plain SGD step with the raw gradient and no decay
    assert zero.detach().tolist() == pytest.approx([-0.5, 1.0])


def test_larc_momentum_two_steps_and_state_dict() -> None:
    w = nn.Parameter(torch.tensor([3.0, 4.0], dtype=torch.float64))
    optimizer = larc_sgd([w], lr=0.5, wd=0.1, momentum=0.9)
    grads = [(0.6, 0.8), (1.0, 0.0)]
    x, buf = [3.0, 4.0], None
    for g in grads:
        w.grad = torch.tensor(g, dtype=torch.float64)
        optimizer.step()
        w_norm, g_norm = math.hypot(*x), math.hypot(*g)
        local = 0.001 * w_norm / (g_norm + 0.1 * w_norm + 1e-8)
        d = [(gi + 0.1 * xi) * local for gi, xi in zip(g, x)]
        buf = d if buf is None else [0.9 * b + di for b, di in zip(buf, d)]
        x = [xi - 0.5 * b for xi, b in zip(x, buf)]
        assert w.detach().tolist() == pytest.approx(x, rel=1e-13)
    state = optimizer.state_dict()
    inner = optimizer.optimizer.state_dict()
    assert state["param_groups"] == inner["param_groups"] and list(state["state"]) == [0]
    assert torch.equal(state["state"][0]["momentum_buffer"], inner["state"][0]["momentum_buffer"])
    clone = larc_sgd([nn.Parameter(w.detach().clone())], lr=0.5, wd=0.1, momentum=0.9)
    clone.load_state_dict(state)
    restored = clone.state_dict()["state"][0]["momentum_buffer"]
    assert torch.equal(restored, state["state"][0]["momentum_buffer"])
    assert restored.tolist() == pytest.approx(buf, rel=1e-13)


def test_larc_works_with_lr_scheduler_and_build_optimizer() -> None:
    model = TwoPart()
    cfg = OptimConfig(name="larc_sgd", lr=0.6, weight_decay=1e-6)
    optimizer = build_optimizer(build_param_groups(model.named_parameters(), cfg), cfg)
    assert (
        isinstance(optimizer, LARC) and optimizer.param_groups is optimizer.optimizer.param_groups
    )
    scheduler = build_scheduler(
        optimizer, ScheduleConfig(name="step", step_size=1, gamma=0.5), 0.6, 1, 3
    )
    model.head(torch.ones(2, 3)).sum().backward()
    optimizer.step()
    scheduler.step()
    assert optimizer.optimizer.param_groups[0]["lr"] == pytest.approx(0.3)
