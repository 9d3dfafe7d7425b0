"""CVTCL's per-sub-clip augmentation draw (``utils/augmentation_local.py``, issue 11 item 4).

Each of the S sub-clip pairs (segment j of clip 1, segment j of clip 2) goes through the view
policy with its own draw: its own TwoClip/OneClip choice, crop, jitter and flip.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from tests.data.dataset_helpers import table, write_frame_folder

from vidssl.data.datasets import MultiViewDataset
from vidssl.data.sampling import MultiRandomClips
from vidssl.data.transforms.compose import Compose, HorizontalFlip, RandomResizedCrop, ToFloat
from vidssl.data.transforms.presets import CoclrViewPolicy
from vidssl.errors import ConfigError
from vidssl.methods.registry import load_config

N_FRAMES, SEQ, S = 40, 8, 4


class Recording(Compose):
    """Crop + flip + ToFloat that records every parameter draw."""

    def __init__(self, log: list[tuple[Any, ...]]) -> None:
        super().__init__([RandomResizedCrop(16, draw="retry"), HorizontalFlip(0.5), ToFloat()])
        self.log = log

    def sample(self, rng: np.random.Generator, height: int, width: int) -> tuple[Any, ...]:
        params = super().sample(rng, height, width)
        self.log.append(params)
        return params


@pytest.fixture
def dataset(tmp_path) -> tuple[MultiViewDataset, list]:
    # frame k is the constant grey 5·k, so a view's frames tell which frames it shows
    frames = np.repeat(5 * np.arange(N_FRAMES, dtype=np.uint8), 24 * 32 * 3).reshape(
        N_FRAMES, 24, 32, 3
    )
    write_frame_folder(tmp_path / "c" / "v", frames)
    log: list = []
    policy = CoclrViewPolicy(Recording(log), Recording(log))
    videos = table(tmp_path, ["c/v"], storage="frames", n_frames=[N_FRAMES])
    return MultiViewDataset(videos, MultiRandomClips(2, SEQ), policy, subclips=S), log


def _frame_ids(view: torch.Tensor) -> list[int]:
    """The frame index shown by each frame of a ``C×T×H×W`` float view (grey 5·k / 255)."""
    return [round(float(v) * 255 / 5) for v in view[0, :, 8, 8]]


def test_sub_clip_pairs_have_their_own_draws(dataset) -> None:
    data, log = dataset
    item = data.make_item(0, np.random.default_rng(3))
    pairs = item["subclip_views"]
    assert len(pairs) == S and all(len(p) == 2 for p in pairs)
    assert all(v.shape == (3, SEQ // S, 16, 16) for p in pairs for v in p)
    assert len(log) == 2 + 2 * S  # whole views, then one draw per view of every sub-clip pair
    boxes = [params[0] for params in log]
    first_views = boxes[2::2]  # view 1 of sub-clip pairs 1..4
    assert len(set(first_views)) == S  # every sub-clip pair has its own crop
    assert not set(first_views) & set(boxes[:2])  # and not the whole clip's crop


def test_sub_clip_views_show_segment_j_of_the_two_clips(dataset) -> None:
    data, _ = dataset
    sub = SEQ // S
    for seed in range(8):
        item = data.make_item(0, np.random.default_rng(seed))
        starts = {_frame_ids(v)[0] for v in item["views"]}  # the clips' first frames
        for view in item["views"]:
            ids = _frame_ids(view)
            assert ids == list(range(ids[0], ids[0] + SEQ))
        clip_starts = set()
        for j, pair in enumerate(item["subclip_views"]):
            for view in pair:
                ids = _frame_ids(view)
                assert ids == list(range(ids[0], ids[0] + sub))
                clip_starts.add(ids[0] - j * sub)
        assert len(clip_starts) <= 2  # every sub-clip view is segment j of one of two clips
        if len(clip_starts) == 2:
            assert starts <= clip_starts


def test_cross_view_presets_draw_per_sub_clip_and_local_stage_cuts() -> None:
    for preset in ("cvtcl/ucf101_rgb", "cvtcl/ucf101_flow", "cvtcl/tiny"):
        assert load_config(preset).data.subclip_views == 4
    for preset in ("cvtcl/ucf101_rgb_local", "cvtcl/tiny_local"):
        assert load_config(preset).data.subclip_views == 0
    assert load_config("cvtcl/ucf101_rgb", ["data.subclip_views=0"]).data.subclip_views == 0
    with pytest.raises(ConfigError, match=r"data\.subclip_views=2 must be 0"):
        load_config("cvtcl/ucf101_rgb", ["data.subclip_views=2"])
