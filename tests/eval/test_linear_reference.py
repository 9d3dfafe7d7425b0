"""The reference linear-probe protocol (``coclr_linear``) and the fast probe (issue 11 item 5).

Reference (``main_classifier.py --train_what last``): every epoch one random augmented clip per
train video through the frozen backbone, batches of 64 with ``drop_last``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.eval.eval_helpers import fake_encoder, video_table

from vidssl.errors import UserError
from vidssl.eval import linear
from vidssl.eval.config import LinearSettings, load_eval_config
from vidssl.eval.linear import probe_batches, train_clip_source, train_linear_probe_epochs
from vidssl.eval.run import Stream


def test_presets_reference_and_fast() -> None:
    ref = load_eval_config("coclr_linear").linear
    assert (ref.train_clips, ref.augment_repeats, ref.batch_size, ref.drop_last) == (
        "augmented", 0, 64, True,
    )  # fmt: skip
    assert (ref.epochs, ref.lr, ref.weight_decay, ref.milestones) == (100, 0.1, 1e-3, [60, 80])
    fast = load_eval_config("coclr_linear_fast").linear
    assert (fast.train_clips, fast.batch_size, fast.drop_last) == ("windows", 256, False)
    assert (fast.epochs, fast.lr, fast.milestones) == (100, 0.1, [60, 80])


@pytest.mark.parametrize(
    ("n", "drop_last", "sizes"),
    [
        (9537, True, [64] * 149),  # UCF101 split 1: 149 steps per epoch, 1 video left out
        (150, True, [64, 64]),
        (150, False, [64, 64, 22]),
        (129, False, [64, 64]),  # a last batch of one is always dropped (BatchNorm)
    ],
)
def test_probe_batches(n: int, drop_last: bool, sizes: list[int]) -> None:
    batches = probe_batches(n, 64, drop_last, torch.Generator().manual_seed(0))
    assert [len(b) for b in batches] == sizes
    seen = torch.cat(batches)
    assert len(set(seen.tolist())) == len(seen) and int(seen.min()) >= 0 and int(seen.max()) < n


def test_each_epoch_trains_on_its_own_features_in_batches_of_64(monkeypatch) -> None:
    sizes: list[int] = []

    class RecordingProbe(linear.LinearProbe):
        def forward(self, feats: torch.Tensor) -> torch.Tensor:
            sizes.append(len(feats))
            return super().forward(feats)

    monkeypatch.setattr(linear, "LinearProbe", RecordingProbe)
    calls: list[int] = []

    def epoch_features(epoch: int) -> tuple[torch.Tensor, np.ndarray]:
        calls.append(epoch)
        g = torch.Generator().manual_seed(epoch)
        return torch.randn(150, 8, generator=g), np.arange(150) % 3

    settings = LinearSettings(epochs=3, milestones=[], batch_size=64, drop_last=True)
    _, lrs = train_linear_probe_epochs(epoch_features, 3, settings)
    assert calls == [0, 1, 2] and sizes == [64, 64] * 3 and lrs == [0.1] * 3


def test_drop_last_with_too_few_clips_is_refused() -> None:
    settings = LinearSettings(epochs=1, batch_size=64, drop_last=True)
    feats = (torch.randn(10, 4), np.arange(10) % 2)
    with pytest.raises(UserError, match="leaves no batch for 10 training clips"):
        train_linear_probe_epochs(lambda _e: feats, 2, settings)


@pytest.fixture
def stream(make_video) -> Stream:
    train = video_table(make_video, [12, 14, 16, 18, 20], [0, 1, 0, 1, 0], split="train")
    return Stream("rgb", fake_encoder(), train, train)


def _cfg(*overrides: str):
    tiny = ["data.seq_len=8", "data.img_size=16", "data.crop_size=32", "data.workers=0"]
    runtime = ["runtime.device=cpu", "runtime.progress=false"]
    return load_eval_config("coclr_linear", [*tiny, *runtime, *overrides])


def test_reference_probe_sees_one_fresh_augmented_clip_per_video_per_epoch(stream) -> None:
    source = train_clip_source(_cfg(), stream)
    epochs = [source(e) for e in range(3)]
    for out in epochs:
        assert sorted(out.video.tolist()) == [0, 1, 2, 3, 4]  # one clip per video
        assert out.window.tolist() == [0] * 5 and out.features.shape == (5, 3)
    for a, b in ((0, 1), (1, 2), (0, 2)):
        # fresh crop/jitter/flip/start per epoch: every video's feature changes
        diff = (epochs[a].features - epochs[b].features).abs().sum(dim=1)
        assert bool((diff > 1e-6).all())
    torch.testing.assert_close(source(2).features, epochs[2].features)  # same epoch, same clips


def test_augment_repeats_cycles_clip_sets_drawn_once(stream) -> None:
    source = train_clip_source(_cfg("linear.augment_repeats=2"), stream)
    first, second, third = source(0), source(1), source(2)
    torch.testing.assert_close(third.features, first.features)
    assert not torch.allclose(second.features, first.features)


def test_fast_probe_uses_every_window_every_epoch(stream) -> None:
    source = train_clip_source(_cfg("linear.train_clips=windows"), stream)
    out = source(0)
    assert source(5) is out
    # sliding windows of 8 frames, stride 8 // 2 - 1 = 3: 12 frames -> 2, ..., 20 -> 5 windows
    assert out.windows_per_video() == {0: 2, 1: 3, 2: 3, 3: 4, 4: 5}
