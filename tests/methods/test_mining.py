"""CoCLR / CPR positive mining against hand examples and independent per-row brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidssl.errors import ConfigError
from vidssl.methods import losses, mining

# --- independent references: plain Python loops over rows, sorted lists ------------------------


def brute_force_topk(kf, queue_second, exclude, topk) -> list[set[int]]:
    """Per row: allowed slots sorted by (-similarity, slot), the first ``topk``."""
    kf, bank, banned = kf.double().numpy(), queue_second.double().numpy(), exclude.numpy()
    result = []
    for row in range(kf.shape[0]):
        allowed = [j for j in range(bank.shape[0]) if not banned[row, j]]
        ranked = sorted(allowed, key=lambda j: (-float(np.dot(kf[row], bank[j])), j))
        result.append(set(ranked[:topk]))
    return result


def brute_force_cascade(kf, q, queue_second, queue, exclude, topk, ratio, stages):
    """CPR cascade written from the description: one row at a time, Python lists only."""
    kf, q = kf.double().numpy(), q.double().numpy()
    other_bank, own_bank = queue_second.double().numpy(), queue.double().numpy()
    banned = exclude.numpy()
    size = other_bank.shape[0]
    result = []
    for row in range(kf.shape[0]):
        candidates = [j for j in range(size) if not banned[row, j]]
        for stage in range(stages):
            last = stage == stages - 1
            keep = topk if last else int(size * ratio ** (stage + 1))
            own = (not last) and stage % 2 == 1
            anchor, bank = (q[row], own_bank) if own else (kf[row], other_bank)
            ranked = sorted(candidates, key=lambda j: (-float(np.dot(anchor, bank[j])), j))
            candidates = sorted(ranked[:keep])
        result.append(set(candidates))
    return result


def mask_rows(mask: torch.Tensor) -> list[set[int]]:
    return [set(torch.nonzero(row).flatten().tolist()) for row in mask.cpu()]


def unit_rows(n: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    return F.normalize(torch.randn(n, dim, generator=generator, dtype=torch.float64), dim=1)


def mining_problem(batch, size, dim, seed, integer_grid=False):
    """Random ``kf, q, queue_second, queue, exclude`` (siblings plus a few random exclusions).

    ``integer_grid`` draws small integers instead, so dot products are exact in every summation
    order and many of them tie (exercises the tie-breaking rule).
    """
    generator = torch.Generator().manual_seed(seed)
    if integer_grid:
        tensors = [
            torch.randint(-2, 3, (n, dim), generator=generator).float()
            for n in (batch, batch, size, size)
        ]
    else:
        tensors = [unit_rows(n, dim, generator) for n in (batch, batch, size, size)]
    kf, q, queue_second, queue = tensors
    queue_groups = torch.randint(-1, size // 4 + 1, (size,), generator=generator)
    batch_groups = torch.randint(0, size // 4 + 1, (batch,), generator=generator)
    exclude = mining.sibling_mask(batch_groups, queue_groups)
    exclude |= torch.rand(batch, size, generator=generator) < 0.05
    return kf, q, queue_second, queue, exclude


# --- sibling mask and pool sizes ---------------------------------------------------------------


def test_sibling_mask_hand_example():
    batch_groups = torch.tensor([3, -1, 7])
    queue_groups = torch.tensor([3, -1, 7, 3, 5])
    expected = torch.tensor(
        [[True, False, False, True, False], [False] * 5, [False, False, True, False, False]]
    )
    mask = mining.sibling_mask(batch_groups, queue_groups)
    assert mask.dtype == torch.bool and torch.equal(mask, expected)


@pytest.mark.parametrize(
    ("size", "topk", "ratio", "stages", "expected"),
    [
        (2048, 5, 0.5, 7, [1024, 512, 256, 128, 64, 32, 5]),
        (16384, 5, 0.5, 7, [8192, 4096, 2048, 1024, 512, 256, 5]),
        (16, 2, 0.5, 3, [8, 4, 2]),
        (100, 3, 0.3, 3, [30, 9, 3]),
        (64, 7, 0.5, 1, [7]),
    ],
)
def test_cascade_pool_sizes(size, topk, ratio, stages, expected):
    assert mining.cascade_pool_sizes(size, topk, ratio, stages) == expected


def test_cascade_config_error_names_the_values():
    kf, q, queue_second, queue, exclude = mining_problem(2, 16, 4, seed=0)
    with pytest.raises(ConfigError) as caught:
        mining.cascade_positives(kf, q, queue_second, queue, exclude, 5, 0.5, 3)
    message = str(caught.value)
    assert message == (
        "CPR cascade keeps int(K*ratio**(stages-1)) = int(16*0.5**2) = 4 candidates before its "
        "last stage, fewer than topk=5; use fewer stages, a larger ratio or a larger queue"
    )
    assert "\n" not in message
    with pytest.raises(ConfigError, match=r"^mining topk=17 is larger than the queue size K=16$"):
        mining.topk_positives(kf, queue_second, exclude, 17)


@pytest.mark.parametrize(
    ("topk", "ratio", "stages", "pattern"),
    [(-1, 0.5, 3, "topk"), (2, 0.0, 3, "ratio"), (2, 1.5, 3, "ratio"), (2, 0.5, 0, "stages")],
)
def test_cascade_rejects_bad_settings(topk, ratio, stages, pattern):
    with pytest.raises(ConfigError, match=pattern):
        mining.cascade_pool_sizes(16, topk, ratio, stages)


# --- top-k mining ------------------------------------------------------------------------------


@pytest.mark.parametrize("integer_grid", [False, True])
@pytest.mark.parametrize(("batch", "size", "topk"), [(5, 64, 5), (3, 2048, 5), (4, 16, 16)])
def test_topk_positives_equals_brute_force(batch, size, topk, integer_grid):
    dim = 8 if integer_grid else 128
    kf, _, queue_second, _, exclude = mining_problem(
        batch, size, dim, seed=size, integer_grid=integer_grid
    )
    mined = mining.topk_positives(kf, queue_second, exclude, topk)
    assert mined.shape == (batch, size) and mined.dtype == torch.bool
    assert mask_rows(mined) == brute_force_topk(kf, queue_second, exclude, topk)
    assert not (mined & exclude).any()


def test_topk_ties_go_to_lower_slot_and_exclusion_wins():
    queue_second = torch.ones(10, 4) / 2  # every similarity ties
    kf = torch.ones(2, 4) / 2
    exclude = torch.zeros(2, 10, dtype=torch.bool)
    exclude[0, [0, 3]] = True
    exclude[1, :8] = True  # only slots 8 and 9 are allowed: fewer than topk
    mined = mining.topk_positives(kf, queue_second, exclude, 3)
    assert mask_rows(mined) == [{1, 2, 4}, {8, 9}]


def test_topk_hand_example():
    kf = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    queue_second = torch.tensor([[0.2, 0.9], [0.9, 0.1], [0.5, 0.5], [0.8, -0.3], [-1.0, 0.7]])
    exclude = torch.tensor([[False, True, False, False, False], [False] * 5])
    mined = mining.topk_positives(kf, queue_second, exclude, 2)
    # row 0 scores 0.2, (0.9 excluded), 0.5, 0.8, -1.0 -> {3, 2}; row 1: 0.9, 0.1, 0.5, -0.3, 0.7
    assert mask_rows(mined) == [{2, 3}, {0, 4}]
    assert mining.topk_positives(kf, queue_second, exclude, 0).sum() == 0


# --- CPR cascade -------------------------------------------------------------------------------


CASCADE_SETTINGS = [
    (2048, 7, 0.5, 5),
    (16, 3, 0.5, 2),
    (16, 4, 0.5, 2),
    (64, 5, 0.6, 3),
    (100, 3, 0.3, 4),
    (48, 1, 0.5, 6),
    (32, 2, 0.5, 4),
]


@pytest.mark.parametrize("integer_grid", [False, True])
@pytest.mark.parametrize(("size", "stages", "ratio", "topk"), CASCADE_SETTINGS)
def test_cascade_equals_brute_force(size, stages, ratio, topk, integer_grid):
    dim = 8 if integer_grid else 128
    problem = mining_problem(4, size, dim, seed=size + stages, integer_grid=integer_grid)
    mined = mining.cascade_positives(*problem, topk, ratio, stages)
    assert mined.shape == (4, size) and mined.dtype == torch.bool
    assert mask_rows(mined) == brute_force_cascade(*problem, topk, ratio, stages)
    assert not (mined & problem[4]).any()


def test_cascade_hand_example_alternates_views():
    # K=8, S=3, r=0.5, topk=1: pools 4 (other view) -> 2 (own view) -> 1 (other view).
    other = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    own = torch.tensor([0.1, 0.2, 0.9, 0.8, 0.5, 0.0, 0.0, 0.0])
    queue_second = torch.stack([other, torch.zeros(8)], dim=1)
    queue = torch.stack([own, torch.zeros(8)], dim=1)
    kf = q = torch.tensor([[1.0, 0.0]])
    exclude = torch.zeros(1, 8, dtype=torch.bool)
    # stage 0 keeps {0,1,2,3}; own view keeps {2,3}; the other view picks 2 (0.7 > 0.6).
    assert mask_rows(mining.cascade_positives(kf, q, queue_second, queue, exclude, 1, 0.5, 3)) == [
        {2}
    ]
    assert mask_rows(mining.topk_positives(kf, queue_second, exclude, 1)) == [{0}]
    exclude[0, 2] = True  # {0,1,3,4} -> own view {3,4} -> other view 3
    assert mask_rows(mining.cascade_positives(kf, q, queue_second, queue, exclude, 1, 0.5, 3)) == [
        {3}
    ]


def test_cascade_one_or_two_stages_is_plain_topk_and_seven_is_not():
    problem = mining_problem(8, 512, 128, seed=3)
    kf, _, queue_second, _, exclude = problem
    plain = mining.topk_positives(kf, queue_second, exclude, 5)
    for stages in (1, 2):
        assert torch.equal(mining.cascade_positives(*problem, 5, 0.5, stages), plain)
    assert not torch.equal(mining.cascade_positives(*problem, 5, 0.5, 7), plain)


def test_cascade_never_returns_excluded_slots_when_too_few_are_allowed():
    kf, q, queue_second, queue, _ = mining_problem(3, 16, 8, seed=5)
    exclude = torch.ones(3, 16, dtype=torch.bool)
    exclude[0, 15] = False  # one allowed slot, at the end of every ranking
    exclude[1, [2, 9]] = False
    mined = mining.cascade_positives(kf, q, queue_second, queue, exclude, 2, 0.5, 3)
    assert mask_rows(mined) == [{15}, {2, 9}, set()]


def test_cascade_accepts_half_precision_and_autocast():
    problem = mining_problem(4, 64, 16, seed=9)
    expected = mining.cascade_positives(*problem, 3, 0.5, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reduced = mining.cascade_positives(*problem, 3, 0.5, 4)
    assert torch.equal(reduced, expected)
    half = [t.half() if t.is_floating_point() else t for t in problem]
    mined = mining.cascade_positives(*half, 3, 0.5, 4)
    # fp16 inputs mine exactly what float32 mines on the same (rounded) values: the scores are
    # compared in float32, not in half precision where near ties would flip
    rounded = [t.float() if t.is_floating_point() else t for t in half]
    assert torch.equal(mined, mining.cascade_positives(*rounded, 3, 0.5, 4))
    assert mined.sum(dim=1).tolist() == [3] * 4


# --- CoCLR positive set and instance dropout --------------------------------------------------


def test_coclr_positive_mask_layout():
    groups_self = torch.tensor([4, -1])
    queue_groups = torch.tensor([4, 2, -1, 4])
    mined = torch.tensor([[False, True, False, False], [False, False, True, False]])
    mask = mining.coclr_positive_mask(groups_self, queue_groups, mined)
    expected = torch.tensor([[True, True, True, False, True], [True, False, False, True, False]])
    assert mask.dtype == torch.bool and torch.equal(mask, expected)


def test_drop_instance_positive_only_where_other_positives_exist():
    pos_mask = torch.tensor([[True, False, True], [True, False, False], [True, True, True]])
    kept = mining.drop_instance_positive(pos_mask, drop=False)
    assert kept is pos_mask
    dropped = mining.drop_instance_positive(pos_mask, drop=True)
    expected = torch.tensor([[False, False, True], [True, False, False], [False, True, True]])
    assert torch.equal(dropped, expected)
    assert torch.equal(pos_mask[:, 0], torch.ones(3, dtype=torch.bool))  # input untouched
    logits = torch.tensor([[1.0, 0.5, 0.2], [0.3, 0.1, 0.0], [0.0, 1.0, 2.0]])
    loss = losses.multi_positive_nce(logits, dropped)
    log_prob = torch.log_softmax(logits, dim=1)
    by_hand = -(log_prob[0, 2] + log_prob[1, 0] + torch.logsumexp(log_prob[2, 1:], 0)) / 3
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-6)


def test_instance_drop_rate_is_ninety_percent_per_step():
    steps = 20_000
    generator = torch.Generator().manual_seed(1234)
    draws = [mining.draw_instance_drop(generator) for _ in range(steps)]
    rate = sum(draws) / steps
    assert abs(rate - 0.9) < 4 * math.sqrt(0.9 * 0.1 / steps)
    replay = torch.Generator().manual_seed(1234)
    assert [mining.draw_instance_drop(replay) for _ in range(200)] == draws[:200]
    pos_mask = torch.tensor([[True, False, False, True], [True, False, False, False]])
    for drop in draws[:500]:
        out = mining.drop_instance_positive(pos_mask, drop)
        assert out[1].tolist() == [True, False, False, False]  # a lone positive is never lost
        assert bool(out[0, 0]) is not drop
    never = torch.Generator().manual_seed(0)
    assert not any(mining.draw_instance_drop(never, p=0.0) for _ in range(100))
    assert all(mining.draw_instance_drop(never, p=1.0) for _ in range(100))
    with pytest.raises(ConfigError, match="probability"):
        mining.draw_instance_drop(never, p=1.2)


# --- class mining recall -----------------------------------------------------------------------


def test_mining_class_recall_hand_example():
    mined = torch.tensor(
        [
            [True, True, False, False],  # labels 1, 2 vs query 1 -> 1/2
            [False, False, False, False],  # nothing mined: left out
            [True, True, True, True],  # 1, 2, 2, 2 vs 2 -> 3/4
            [False, False, True, False],  # 2 vs 2 -> 1
        ]
    )
    batch_labels = torch.tensor([1, 5, 2, 2])
    queue_labels = torch.tensor([1, 2, 2, 2])
    mean, median = mining.mining_class_recall(mined, batch_labels, queue_labels)
    assert mean == pytest.approx((0.5 + 0.75 + 1.0) / 3)
    assert median == pytest.approx(0.75)
    mean, median = mining.mining_class_recall(mined[:3], batch_labels[:3], queue_labels)
    assert (mean, median) == (pytest.approx(0.625), pytest.approx(0.625))  # even count: midpoint
    nothing = mining.mining_class_recall(mined[1:2], batch_labels[1:2], queue_labels)
    assert all(math.isnan(value) for value in nothing)


# --- device ------------------------------------------------------------------------------------


@pytest.mark.gpu
def test_mining_on_cuda_matches_cpu():
    problem = mining_problem(16, 2048, 128, seed=11)
    expected = mining.cascade_positives(*problem, 5, 0.5, 7)
    on_gpu = [t.cuda() for t in problem]
    mined = mining.cascade_positives(*on_gpu, 5, 0.5, 7)
    assert mined.is_cuda and torch.equal(mined.cpu(), expected)
    plain = mining.topk_positives(on_gpu[0], on_gpu[2], on_gpu[4], 5)
    assert torch.equal(plain.cpu(), mining.topk_positives(problem[0], problem[2], problem[4], 5))
    groups = torch.arange(16, device="cuda")
    mask = mining.coclr_positive_mask(groups, torch.full((2048,), -1, device="cuda"), mined)
    generator = torch.Generator(device="cuda").manual_seed(0)
    dropped = mining.drop_instance_positive(mask, mining.draw_instance_drop(generator))
    assert dropped.is_cuda and dropped.shape == (16, 2049)
