import numpy as np
import pytest
import torch
from tests.eval.eval_helpers import MeanBackbone, fake_encoder, video_table

from vidssl.data.sampling import SlidingWindows
from vidssl.data.transforms.compose import Normalize
from vidssl.data.transforms.presets import coclr_multi_crop
from vidssl.eval.clips import VideoClips
from vidssl.eval.config import FinetuneSettings
from vidssl.eval.finetune import (
    CROP_VIEWS,
    FinetuneModel,
    crop_probabilities,
    evaluate_multi_crop,
    train_finetune,
)


def test_ten_crop_views_are_five_positions_times_flip(make_video):
    frames = torch.as_tensor(
        np.random.default_rng(0).integers(0, 255, (2, 40, 50, 3), dtype=np.uint8)
    )
    ten = coclr_multi_crop(30, 30, flips=True, normalization="none")
    boxes = ten.view_params(40, 50)
    assert len(boxes) == 10
    assert [(b.top, b.left, f) for b, f in boxes[:5]] == [
        (5, 10, False), (0, 0, False), (0, 20, False), (10, 0, False), (10, 20, False)
    ]  # fmt: skip
    assert [f for _, f in boxes[5:]] == [True] * 5
    views = ten(frames)
    torch.testing.assert_close(views[6], views[1].flip(-1))  # top-left, mirrored
    assert len(coclr_multi_crop(30, 30, flips=False)(frames)) == 5
    assert CROP_VIEWS["ten"] == tuple(range(10)) and CROP_VIEWS["center"] == (0,)


def test_probabilities_averaged_over_windows_then_crops():
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(5, 10, 3, generator=g).softmax(-1)
    video = np.array([2, 2, 2, 9, 9])
    modes, rows = crop_probabilities(probs, video)
    assert rows.tolist() == [2, 9]
    for row, clips in ((0, [0, 1, 2]), (1, [3, 4])):
        per_crop = [probs[clips, v].mean(0) for v in range(10)]
        torch.testing.assert_close(modes["center"][row], per_crop[0])
        torch.testing.assert_close(modes["five"][row], torch.stack(per_crop[:5]).mean(0))
        torch.testing.assert_close(modes["ten"][row], torch.stack(per_crop).mean(0))


def test_multi_crop_test_with_fake_backbone_matches_hand_computation(make_video):
    table = video_table(make_video, [12, 20], [0, 1])
    backbone = MeanBackbone()
    model = FinetuneModel(backbone, 2, dropout=0.9)
    with torch.no_grad():
        model.fc.weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]))
    views = coclr_multi_crop(40, 24, flips=True, normalization="none")
    dataset = VideoClips(table, SlidingWindows(8), views)
    modes, _, outputs = evaluate_multi_crop(model, dataset, progress=False)
    assert outputs.values.shape == (2 + 5, 10, 2)  # 12 frames: starts 0,3; 20: 0,3,6,9,12 -> 2+5
    assert outputs.windows_per_video() == {0: 2, 1: 5}
    assert not model.training  # dropout is off at test time
    frames = table.source(1).read(np.arange(20))
    hand = []
    for start in (0, 3, 6, 9, 12):
        clip_views = views(frames[start : start + 8])
        feats = torch.stack([backbone(v[None])[0] for v in clip_views])
        hand.append(model.fc(feats).softmax(-1))  # [10, 2]
    expected = torch.stack(hand).mean(0).mean(0)  # windows, then crops
    torch.testing.assert_close(modes["ten"][1], expected.detach(), rtol=1e-5, atol=1e-6)
    assert isinstance(views.then.transforms[-1], Normalize)


def test_training_uses_backbone_lr_mult_and_milestones(make_video):
    table = video_table(make_video, [10, 10, 10, 10], [0, 1, 0, 1], split="train")
    encoder = fake_encoder()
    model = FinetuneModel(encoder.model, 2, dropout=0.5)
    from vidssl.data.sampling import RandomClip
    from vidssl.data.transforms.presets import coclr_finetune

    dataset = VideoClips(table, RandomClip(8), coclr_finetune(16, normalization="none"))
    settings = FinetuneSettings(optimizer="sgd", lr=0.1, epochs=3, milestones=[1, 2])
    before = model.backbone.scale.detach().clone()
    lrs, failed = train_finetune(model, dataset, settings, batch_size=2, progress=False)
    assert lrs == pytest.approx([0.1, 0.01, 0.001]) and failed == set()
    assert not torch.equal(before, model.backbone.scale.detach())
    from vidssl.eval.finetune import finetune_optimizer

    groups = {g["name"]: g["lr"] for g in finetune_optimizer(model, settings).param_groups}
    assert groups == {"lr_x0.1": pytest.approx(0.01), "lr_x1": pytest.approx(0.1)}
