"""PCL(VCP) / VCP: cloze operations, residual order, memory-bank NCE and updates, the method."""

from __future__ import annotations

import math

import pytest
import torch

from vidssl.errors import ConfigError
from vidssl.methods.cloze import apply_cloze, quadrant_permutation, rotate_batch, swap_chunks
from vidssl.methods.losses import memory_bank_nce
from vidssl.methods.memory_bank import (
    draw_bank_indices,
    init_bank,
    update_bank,
    updated_rows,
)
from vidssl.methods.registry import build_method, load_config

# ------------------------------------------------------------------------ cloze operations


def _frame(values: list[list[int]]) -> torch.Tensor:
    """One 1-channel, 1-frame clip ``[1, 1, 1, H, W]``."""
    return torch.tensor(values, dtype=torch.float32)[None, None, None]


def test_rotation_by_hand() -> None:
    x = _frame([[0, 1], [2, 3]]).repeat(4, 1, 1, 1, 1)
    out = rotate_batch(x, torch.tensor([0, 1, 2, 3]))
    assert out[0, 0, 0].tolist() == [[0, 1], [2, 3]]
    assert out[1, 0, 0].tolist() == [[1, 3], [0, 2]]  # 90° counter-clockwise
    assert out[2, 0, 0].tolist() == [[3, 2], [1, 0]]
    assert out[3, 0, 0].tolist() == [[2, 0], [3, 1]]
    with pytest.raises(ConfigError, match="square"):
        rotate_batch(torch.zeros(1, 1, 1, 2, 4), torch.tensor([1]))


def test_quadrant_permutation_by_hand() -> None:
    x = _frame([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]])
    # A=[[0,1],[4,5]] B=[[2,3],[6,7]] C=[[8,9],[12,13]] D=[[10,11],[14,15]] -> DC/BA, unrotated
    assert quadrant_permutation(x)[0, 0, 0].tolist() == [
        [10, 11, 8, 9],
        [14, 15, 12, 13],
        [2, 3, 0, 1],
        [6, 7, 4, 5],
    ]


def test_chunk_swap_by_hand() -> None:
    x = torch.arange(8, dtype=torch.float32).view(1, 1, 8, 1, 1).repeat(3, 2, 1, 1, 1)
    out = swap_chunks(x, torch.tensor([[0, 2], [3, 1], [1, 1]]))
    assert out[0, 0, :, 0, 0].tolist() == [4, 5, 2, 3, 0, 1, 6, 7]
    assert out[1, 1, :, 0, 0].tolist() == [0, 1, 6, 7, 4, 5, 2, 3]
    assert out[2, 0, :, 0, 0].tolist() == list(range(8))
    with pytest.raises(ConfigError, match="divisible by 4"):
        swap_chunks(torch.zeros(1, 1, 6, 1, 1), torch.tensor([[0, 1]]))


def test_apply_cloze_picks_each_samples_operation() -> None:
    base = torch.arange(16, dtype=torch.float32).view(1, 1, 1, 4, 4)
    middle = base.expand(5, 1, 4, 4, 4).clone() + torch.arange(4.0).view(1, 1, 4, 1, 1) * 100
    remote = torch.full_like(middle, -1.0)
    labels = torch.tensor([0, 1, 2, 3, 4])
    rot_k = torch.tensor([3, 2, 1, 1, 1])
    swap = torch.tensor([[0, 1], [0, 1], [0, 1], [1, 3], [0, 1]])
    out = apply_cloze(middle, remote, labels, rot_k, swap)
    frame = base[0, 0, 0]
    assert torch.equal(out[0], middle[0])
    assert torch.equal(out[1, 0, 0], torch.rot90(frame, 2))  # rot_k of sample 1
    assert out[2, 0, 0, 0].tolist() == [10, 11, 8, 9]
    assert (out[3, 0, :, 0, 0] - frame[0, 0]).tolist() == [0, 300, 200, 100]
    assert torch.equal(out[4], remote[4])
    assert torch.equal(middle[1, 0, 0], frame)  # the input is left alone


# ------------------------------------------------------------------------ memory banks


def test_memory_bank_nce_by_hand() -> None:
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    indices = torch.tensor([[0, 1, 2], [0, 1, 1]])
    # sample 0: logits [2, 0, -2]; sample 1: positive row 0 -> [0, 2, 2] (τ = 0.5)
    loss_0 = -math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-2)))
    loss_1 = -math.log(1 / (1 + 2 * math.exp(2)))
    value = memory_bank_nce(q, bank, indices, 0.5)
    assert value.item() == pytest.approx((loss_0 + loss_1) / 2, rel=1e-6)


def test_bank_update_by_hand_last_occurrence_wins() -> None:
    bank = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    update_bank(bank, torch.tensor([0, 1, 1]), features, 0.5)
    s = 1 / math.sqrt(2)
    assert bank[0].tolist() == pytest.approx([s, s])  # normalise(0.5·[0,1] + 0.5·[1,0])
    # index 1 twice: only the last feature [0, -1] counts: normalise([0.5, -0.5])
    assert bank[1].tolist() == pytest.approx([s, -s])
    assert bank[2].tolist() == pytest.approx([0.6, 0.8])  # untouched


def test_updated_rows_formula() -> None:
    rows = torch.tensor([[3.0, 0.0]])
    features = torch.tensor([[0.0, 1.0]])
    # 0.25·[3, 0] + 0.75·[0, 1] = [0.75, 0.75] -> [1/√2, 1/√2]
    assert updated_rows(rows, features, 0.25)[0].tolist() == pytest.approx([1 / math.sqrt(2)] * 2)


def test_negatives_have_self_at_index_0_and_are_uniform() -> None:
    own = torch.tensor([5, 7, 0])
    generator = torch.Generator().manual_seed(0)
    drawn = draw_bank_indices(own, 10, 4000, generator)
    assert drawn.shape == (3, 4001)
    assert drawn[:, 0].tolist() == [5, 7, 0]
    rest = drawn[:, 1:]
    assert int(rest.min()) >= 0 and int(rest.max()) <= 9
    frequency = torch.bincount(rest.flatten(), minlength=10).float() / rest.numel()
    assert torch.allclose(frequency, torch.full((10,), 0.1), atol=0.01)


def test_bank_init_range_and_seed() -> None:
    bank = init_bank(50, 128, seed=3)
    bound = 1 / math.sqrt(128 / 3)
    assert bank.shape == (50, 128)
    assert float(bank.abs().max()) <= bound and float(bank.abs().max()) > 0.95 * bound
    assert torch.equal(bank, init_bank(50, 128, seed=3))
    assert not torch.equal(bank, init_bank(50, 128, seed=4))


# ------------------------------------------------------------------------ the methods


def pcl_method(name: str = "pcl/tiny", *overrides: str, bank_size: int = 12):
    """A tiny PCL/VCP method with banks for ``bank_size`` videos."""
    cfg = load_config(name, ["data.seq_len=4", "data.img_size=16", *overrides])
    method = build_method(cfg)
    method.attach_data(range(bank_size))
    return method


def tuple_batch(
    labels: list[int], *, seed: int = 0, frames: int = 4, size: int = 16, index=None
) -> dict:
    """A batch of cloze tuples (4 random views) with given cloze labels."""
    generator = torch.Generator().manual_seed(seed)
    count = len(labels)
    views = [torch.rand(count, 3, frames, size, size, generator=generator) for _ in range(4)]
    return {
        "views": views,
        "cloze_label": torch.tensor(labels),
        "rot_k": torch.randint(1, 4, (count,), generator=generator),
        "swap": torch.tensor([[0, 2]] * count),
        "index": torch.tensor(index if index is not None else list(range(count))),
    }


class _Capture(torch.nn.Module):
    """Stands in for the backbone: records its inputs, returns zeros of the feature width."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width
        self.inputs: list[torch.Tensor] = []

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        self.inputs.append(clips.clone())
        return torch.zeros(len(clips), self.width)


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        # cloze op first: frames [0,1,2,3] -> swap chunks 0,2 -> [2,1,0,3];
        # PCL residual roll − x: [3,2,1,0] − [2,1,0,3] = [1,1,1,−3]
        ("pcl/tiny", [1.0, 1.0, 1.0, -3.0]),
        # VCP residual ((roll − x) + 1)/2
        ("vcp/tiny", [1.0, 1.0, 1.0, -1.0]),
    ],
)
def test_residual_is_taken_after_the_cloze_operation(preset, expected) -> None:
    method = pcl_method(preset)
    capture = _Capture(method.backbone.feature_dim)
    method.backbone = capture
    batch = tuple_batch([3])
    middle = torch.arange(4.0).view(1, 1, 4, 1, 1).expand(1, 3, 4, 16, 16).clone()
    batch["views"][1] = middle
    method.clip_features(batch)
    assert len(capture.inputs) == 3
    assert capture.inputs[1][0, 0, :, 0, 0].tolist() == expected
    assert torch.equal(capture.inputs[1][0, :, :, 5, 7], capture.inputs[1][0, :, :, 0, 0])


def test_vcp_alone_has_no_head_or_banks() -> None:
    vcp = pcl_method("vcp/tiny")
    names = {name.split(".")[0] for name in vcp.state_dict()}
    assert names == {"backbone", "head"}
    pcl_w0 = pcl_method("pcl/tiny", "method.w_con=0")
    assert {name.split(".")[0] for name in pcl_w0.state_dict()} == {"backbone", "head"}
    pcl = pcl_method("pcl/tiny")
    state = pcl.state_dict()
    assert state["bank_clip1"].shape == (12, 16) and state["bank_clip3"].shape == (12, 16)
    assert state["head.weight"].shape == (5, 3 * pcl.backbone.feature_dim)
    assert state["projector.0.weight"].shape == (32, pcl.backbone.feature_dim)
    assert state["projector.2.weight"].shape == (16, 32)


def test_pcl_step_loss_and_cross_view_bank_updates(monkeypatch) -> None:
    drawn = torch.tensor([[2, 0, 1, 3], [5, 11, 11, 2], [7, 7, 0, 4], [9, 8, 6, 10]])
    monkeypatch.setattr("vidssl.methods.pcl.draw_bank_indices", lambda own, n, k: drawn)
    method = pcl_method("pcl/tiny", "method.negatives=3")
    method.eval()  # BN on running stats: each clip's feature depends on that clip only
    before_1, before_3 = method.bank_clip1.clone(), method.bank_clip3.clone()
    batch = tuple_batch([0, 1, 2, 4], index=[2, 5, 7, 9])
    step = type(method).training_step.__wrapped__
    out = step(method, batch, 0)
    expected = out["loss_cloze"] + 0.5 * (out["loss_nce_1"] + out["loss_nce_3"])
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    # f1 / f3 of an independent forward (eval mode: same values)
    with torch.no_grad():
        features = method.clip_features(batch)
        f1 = torch.nn.functional.normalize(method.projector(features[0]), dim=1)
        f3 = torch.nn.functional.normalize(method.projector(features[-1]), dim=1)
        logits = method.head(torch.cat(features, 1))
    cloze = torch.nn.functional.cross_entropy(logits, batch["cloze_label"])
    assert out["loss_cloze"].item() == pytest.approx(cloze.item(), rel=1e-5)
    rows = [2, 5, 7, 9]
    others = [i for i in range(12) if i not in rows]
    assert torch.equal(method.bank_clip1[others], before_1[others])
    new_1 = torch.nn.functional.normalize(before_1[rows].double() * 0.5 + f1.double() * 0.5, dim=1)
    new_3 = torch.nn.functional.normalize(before_3[rows].double() * 0.5 + f3.double() * 0.5, dim=1)
    assert torch.allclose(method.bank_clip1[rows].double(), new_1, atol=1e-6)
    assert torch.allclose(method.bank_clip3[rows].double(), new_3, atol=1e-6)
    # NCE₁: f1 against the clip-3 bank as it was before the update; NCE₃ the other way round
    target = torch.zeros(4, dtype=torch.long)
    for f, bank, key in ((f1, before_3, "loss_nce_1"), (f3, before_1, "loss_nce_3")):
        logit = torch.einsum("bkd,bd->bk", bank[drawn].double(), f.double()) / 0.07
        nce = torch.nn.functional.cross_entropy(logit, target)
        assert out[key].item() == pytest.approx(nce.item(), rel=1e-5)


def test_pcl_config_checks() -> None:
    with pytest.raises(ConfigError, match=r"method\.residual instead"):
        load_config("pcl/tiny", ["data.residual=pcl"])
    with pytest.raises(ConfigError, match="divisible by 4"):
        load_config("pcl/tiny", ["data.seq_len=6"])
    with pytest.raises(ConfigError, match="plateau_monitor"):
        load_config("pcl/tiny", ["schedule.name=cosine"])


def test_exported_input_contract() -> None:
    assert pcl_method("pcl/tiny").encoder_input() == {
        "residual": "pcl",
        "normalization": "imagenet",
    }
    assert pcl_method("vcp/tiny").encoder_input() == {"residual": "vcp", "normalization": "none"}


def test_presets_mirror_the_reference_commands() -> None:
    pcl = load_config("pcl/ucf101_r3d")
    m, d, o, s = pcl.method, pcl.data, pcl.optim, pcl.schedule
    assert (m.name, m.w_con, m.negatives, m.temperature, m.bank_momentum) == (
        "pcl", 0.5, 1024, 0.07, 0.5,
    )  # fmt: skip
    assert (m.proj_hidden_dim, m.proj_dim, m.residual, m.strong_aug) == (512, 128, "pcl", True)
    assert (m.interval, m.tuple_len, m.remote_distance, m.reference_stride) == (8, 3, 16, False)
    assert (d.seq_len, d.img_size, d.batch_size, pcl.model.backbone) == (16, 112, 16, "r3d_10")
    assert (o.name, o.lr, o.momentum, o.weight_decay) == ("sgd", 0.01, 0.9, 5e-4)
    assert (s.name, s.plateau_monitor, s.plateau_factor, s.plateau_patience, s.plateau_min_lr) == (
        "none", "val/loss", 0.1, 50, 1e-5,
    )  # fmt: skip
    assert (pcl.trainer.epochs, pcl.trainer.seed) == (200, 632)
    backbones = {name: load_config(f"pcl/ucf101_{name}").model.backbone
                 for name in ("r21d", "c3d", "r18")}  # fmt: skip
    assert backbones == {"r21d": "r21d_10", "c3d": "c3d", "r18": "r3d_18"}
    vcp = load_config("vcp/ucf101_r3d")
    assert (vcp.method.name, vcp.method.w_con, vcp.method.residual, vcp.method.strong_aug) == (
        "vcp", 0.0, "vcp", False,
    )  # fmt: skip
    assert (vcp.data.batch_size, vcp.schedule.plateau_monitor, vcp.optim.lr) == (8, "", 0.01)
    assert load_config("vcp/ucf101_c3d").model.backbone == "c3d"
