"""Contrastive losses against analytic values, hand computations and independent float64 code."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidssl.methods import losses


def orthonormal(n: int, dim: int, seed: int = 0) -> torch.Tensor:
    """``n`` orthonormal rows of width ``dim`` (n <= dim)."""
    generator = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    return basis.T[:n].float()


def unit_rows(n: int, dim: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, dim, generator=generator), dim=1)


def numpy_ce_row(logits: np.ndarray, target: int = 0) -> float:
    """float64 -log softmax(logits)[target] computed without torch."""
    peak = logits.max()
    return float(np.log(np.exp(logits - peak).sum()) + peak - logits[target])


# --- InfoNCE: analytic values (lightly style) ---------------------------------------------------


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("queue_size", [1, 6])
@pytest.mark.parametrize("temperature", [0.07, 0.5, 1.0])
def test_infonce_aligned_pair_with_orthogonal_queue(batch, queue_size, temperature):
    dim = batch + queue_size + 2
    basis = orthonormal(batch + queue_size, dim)
    q = basis[:batch]  # q·k = 1, q·queue = 0 for every queue row
    queue = basis[batch:]
    loss = losses.infonce(q, q.clone(), queue, temperature)
    expected = -math.log(math.exp(1 / temperature) / (math.exp(1 / temperature) + queue_size))
    assert loss.dtype == torch.float32 and loss.ndim == 0
    assert loss.item() == pytest.approx(expected, rel=1e-4, abs=3e-6)


# all logits tie whatever the temperature or width: one value of each is enough
@pytest.mark.parametrize(
    ("batch", "queue_size", "dim", "temperature"), [(2, 3, 8, 0.07), (5, 16, 32, 0.2)]
)
def test_infonce_all_logits_equal_gives_log_k_plus_one(batch, queue_size, dim, temperature):
    q = unit_rows(batch, dim, seed=1)
    queue = q[:1].repeat(queue_size, 1)  # every entry equals q[0]: all logits of row 0 tie
    loss = losses.infonce(q[:1], q[:1], queue, temperature)
    assert loss.item() == pytest.approx(math.log(queue_size + 1), rel=1e-5)


def test_contrastive_logits_layout_and_values():
    q = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    k = torch.tensor([[0.0, 1.0], [0.6, 0.8]])
    queue = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # [K=3, D=2]
    logits = losses.contrastive_logits(q, k, queue, temperature=0.5)
    expected = torch.tensor([[0.0, 1.0, 0.0, -1.0], [1.0, 0.6, 0.8, -0.6]]) / 0.5
    assert logits.shape == (2, 4)
    torch.testing.assert_close(logits, expected)


def test_empty_queue_gives_zero_loss():
    q = unit_rows(3, 4, seed=2)
    assert losses.infonce(q, unit_rows(3, 4, seed=3), q[:0], 0.1).item() == 0.0


# --- InfoNCE with sibling masking ---------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("temperature", [0.07, 0.3])
def test_masked_siblings_equal_infonce_with_columns_deleted(seed, temperature):
    batch, queue_size, dim = 4, 9, 6
    q, k, queue = (
        unit_rows(batch, dim, seed),
        unit_rows(batch, dim, seed + 10),
        unit_rows(queue_size, dim, seed + 20),
    )
    mask = torch.rand(batch, queue_size, generator=torch.Generator().manual_seed(seed)) < 0.4
    loss = losses.infonce(q, k, queue, temperature, negative_mask=mask)
    q64, k64, queue64 = q.double().numpy(), k.double().numpy(), queue.double().numpy()
    expected = np.mean(
        [
            numpy_ce_row(
                np.concatenate([[q64[i] @ k64[i]], queue64[~mask[i].numpy()] @ q64[i]])
                / temperature
            )
            for i in range(batch)
        ]
    )
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert not torch.isclose(loss, losses.infonce(q, k, queue, temperature))  # mask mattered


def test_all_negatives_masked_gives_zero_loss_and_finite_gradients():
    q = unit_rows(3, 5, seed=4).requires_grad_()
    k, queue = unit_rows(3, 5, seed=5), unit_rows(7, 5, seed=6)
    loss = losses.infonce(q, k, queue, 0.07, negative_mask=torch.ones(3, 7, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(q.grad).all()


# --- multi-positive NCE: hand-computed values ---------------------------------------------------

# Row log-partitions: log(e^2+e^1+e^0+e^-1) = 2.440190, log 4 = 1.386294,
# log(e^1+e^3+e^2+e^0) = 3.440190.
HAND_LOGITS = torch.tensor([[2.0, 1.0, 0.0, -1.0], [0.0, 0.0, 0.0, 0.0], [1.0, 3.0, 2.0, 0.0]])
HAND_POSITIVES = torch.tensor(
    [[True, True, False, False], [True, False, True, True], [True, False, False, False]]
)
# sum mode:  row 0: -log((e^2+e^1)/Z) = 2.440190 - 2.313262 = 0.126928
#            row 1: -log(3/4) = 0.287682;  row 2: -(1 - 3.440190) = 2.440190
HAND_SUM = (0.126928 + 0.287682 + 2.440190) / 3  # 0.951600
# mean mode: row 0: -((2 - 2.440190) + (1 - 2.440190)) / 2 = 0.940190
#            row 1: -log(1/4) = 1.386294;  row 2: 2.440190 (single positive)
HAND_MEAN = (0.940190 + 1.386294 + 2.440190) / 3  # 1.588891


@pytest.mark.parametrize(("mode", "expected"), [("sum", HAND_SUM), ("mean", HAND_MEAN)])
def test_multi_positive_hand_example(mode, expected):
    loss = losses.multi_positive_nce(HAND_LOGITS, HAND_POSITIVES, mode=mode)
    assert loss.item() == pytest.approx(expected, abs=2e-6)


@pytest.mark.parametrize("mode", ["sum", "mean"])
@pytest.mark.parametrize(("batch", "columns"), [(1, 2), (6, 33)])
def test_single_positive_rows_reduce_to_infonce(mode, batch, columns):
    logits = torch.randn(batch, columns, generator=torch.Generator().manual_seed(columns)) * 5
    positives = torch.zeros(batch, columns, dtype=torch.bool)
    positives[:, 0] = True
    expected = F.cross_entropy(logits, torch.zeros(batch, dtype=torch.long))
    torch.testing.assert_close(losses.multi_positive_nce(logits, positives, mode), expected)


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_multi_positive_is_stable_for_huge_logits(mode):
    logits = torch.tensor([[1000.0, 999.0, -1000.0]])
    positives = torch.tensor([[True, True, False]])
    loss = losses.multi_positive_nce(logits, positives, mode)
    lse = 1000.0 + math.log(1 + math.exp(-1.0))
    expected = 0.0 if mode == "sum" else ((lse - 1000.0) + (lse - 999.0)) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_multi_positive_gradients_finite_with_masked_logits(mode):
    logits = torch.tensor([[0.5, -float("inf"), -float("inf")], [0.1, 0.2, -float("inf")]])
    logits.requires_grad_()
    positives = torch.tensor([[True, False, False], [True, True, False]])
    loss = losses.multi_positive_nce(logits, positives, mode)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_multi_positive_rejects_row_without_positive_and_bad_mode():
    with pytest.raises(ValueError, match="at least one positive"):
        losses.multi_positive_nce(HAND_LOGITS, torch.zeros_like(HAND_POSITIVES))
    with pytest.raises(ValueError, match="mode"):
        losses.multi_positive_nce(HAND_LOGITS, HAND_POSITIVES, mode="max")  # type: ignore[arg-type]


# --- precision --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_give_float32_value(dtype):
    q, k, queue = unit_rows(4, 16, 7), unit_rows(4, 16, 8), unit_rows(32, 16, 9)
    low = [t.to(dtype) for t in (q, k, queue)]
    loss = losses.infonce(*low, 0.07)
    assert loss.dtype == torch.float32
    # Exactly the fp32 computation on the rounded inputs, and close to the unrounded value.
    torch.testing.assert_close(loss, losses.infonce(*[t.float() for t in low], 0.07))
    assert loss.item() == pytest.approx(losses.infonce(q, k, queue, 0.07).item(), rel=0.05)
    half_logits = HAND_LOGITS.to(dtype)
    for mode in ("sum", "mean"):
        torch.testing.assert_close(
            losses.multi_positive_nce(half_logits, HAND_POSITIVES, mode),
            losses.multi_positive_nce(HAND_LOGITS, HAND_POSITIVES, mode),
        )


def test_autocast_region_does_not_lower_precision():
    q, k, queue = unit_rows(4, 16, 10), unit_rows(4, 16, 11), unit_rows(32, 16, 12)
    reference = losses.infonce(q, k, queue, 0.07)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        logits = losses.contrastive_logits(q, k, queue, 0.07)
        loss = losses.infonce(q, k, queue, 0.07)
    assert logits.dtype == torch.float32
    torch.testing.assert_close(loss, reference, rtol=1e-6, atol=1e-7)


# --- UberNCE ------------------------------------------------------------------------------------


def test_ubernce_matches_independent_mean_of_log_probabilities():
    q, k, queue = unit_rows(3, 6, 13), unit_rows(3, 6, 14), unit_rows(5, 6, 15)
    labels = torch.tensor([3, 5, -1])
    queue_labels = torch.tensor([3, -1, 3, 5, 2])
    loss = losses.ubernce(q, k, queue, labels, queue_labels, temperature=0.1)
    # Positives: row 0 → k, queue 0 and 2; row 1 → k, queue 3; row 2 (label -1) → k only.
    positive_columns = [[0, 1, 3], [0, 4], [0]]
    expected = []
    for i, columns in enumerate(positive_columns):
        row = np.concatenate([[q[i] @ k[i]], queue @ q[i]]).astype(np.float64) / 0.1
        expected.append(np.mean([numpy_ce_row(row, c) for c in columns]))
    assert loss.item() == pytest.approx(float(np.mean(expected)), rel=1e-5)


# --- CVTCL local losses -------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.07, 0.1, 0.5])
@pytest.mark.parametrize("n_sub", [2, 4])
def test_local_inter_analytic_and_per_subclip_infonce(temperature, n_sub):
    batch, queue_size = 3, 5
    basis = orthonormal(batch + queue_size, 12)
    q, queue = basis[:batch], basis[batch:]
    aligned_keys = q[:, None, :].repeat(1, n_sub, 1)
    expected = -math.log(math.exp(1 / temperature) / (math.exp(1 / temperature) + queue_size))
    aligned = losses.local_inter_nce(q, aligned_keys, queue, temperature).item()
    assert aligned == pytest.approx(expected, rel=1e-4, abs=3e-6)

    q, queue = unit_rows(batch, 8, 16), unit_rows(queue_size, 8, 17)
    sub_keys = F.normalize(torch.randn(batch, n_sub, 8), dim=2)
    per_subclip = [losses.infonce(q, sub_keys[:, j], queue, temperature) for j in range(n_sub)]
    torch.testing.assert_close(
        losses.local_inter_nce(q, sub_keys, queue, temperature), torch.stack(per_subclip).mean()
    )


@pytest.mark.parametrize("temperature", [0.07, 0.1, 1.0])
@pytest.mark.parametrize("aligned_index", [0, 2])
def test_local_intra_pairwise_rows(temperature, aligned_index):
    basis = orthonormal(2, 4)
    q = basis[:1]
    sub_keys = basis[1:2].repeat(4, 1)[None]  # q·k_j = 0 ...
    sub_keys[0, aligned_index] = q[0]  # ... except the aligned sub-clip: q·k_a = 1
    # Each of the 3 rows is CE([1/τ, 0]) = log(1 + e^{-1/τ}).
    expected = math.log1p(math.exp(-1 / temperature))
    loss = losses.local_intra_nce(q, sub_keys, temperature, aligned_index=aligned_index)
    assert loss.item() == pytest.approx(expected, rel=1e-4, abs=1e-7)

    q, sub_keys = unit_rows(2, 6, 18), F.normalize(torch.randn(2, 4, 6), dim=2)
    similarity = torch.einsum("bd,bsd->bs", q, sub_keys) / temperature
    rows = [
        torch.stack([similarity[:, aligned_index], similarity[:, j]], dim=1)
        for j in range(4)
        if j != aligned_index
    ]
    expected_ce = F.cross_entropy(torch.cat(rows), torch.zeros(6, dtype=torch.long))
    torch.testing.assert_close(
        losses.local_intra_nce(q, sub_keys, temperature, aligned_index), expected_ce
    )


def test_local_losses_reject_bad_shapes():
    q = unit_rows(2, 4, 19)
    with pytest.raises(ValueError, match="S >= 2"):
        losses.local_intra_nce(q, q[:, None, :], 0.1)
    with pytest.raises(ValueError, match="sub_keys"):
        losses.local_inter_nce(q, q, q, 0.1)
    with pytest.raises(ValueError, match="temperature"):
        losses.local_inter_nce(q, q[:, None, :], q, 0.0)


# --- accuracy helper ----------------------------------------------------------------------------


def test_topk_hit_rate_hand_example():
    logits = torch.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]])
    positives = torch.tensor([[False, False, True], [True, False, False]])
    rates = losses.topk_hit_rate(logits, positives, ks=(1, 2, 5))
    # top-1: both rows pick a negative; top-2: row 0 reaches column 2; k=5 uses all 3 columns.
    assert {k: v.item() for k, v in rates.items()} == {1: 0.0, 2: 0.5, 5: 1.0}


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_autocast_gives_the_cpu_float32_value(dtype):
    q, k, queue = unit_rows(8, 32, 20), unit_rows(8, 32, 21), unit_rows(64, 32, 22)
    sub_keys = F.normalize(torch.randn(8, 4, 32), dim=2)
    expected = [losses.infonce(q, k, queue, 0.07), losses.local_inter_nce(q, sub_keys, queue, 0.1)]
    with torch.autocast(device_type="cuda", dtype=dtype):
        cuda = [t.cuda() for t in (q, k, queue, sub_keys)]
        got = [
            losses.infonce(*cuda[:3], 0.07),
            losses.local_inter_nce(cuda[0], cuda[3], cuda[2], 0.1),
        ]
    for value, reference in zip(got, expected):
        assert value.dtype == torch.float32
        torch.testing.assert_close(value.cpu(), reference, rtol=1e-5, atol=1e-6)
