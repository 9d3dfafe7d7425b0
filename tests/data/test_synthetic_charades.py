"""Synthetic Charades: objects appear exactly during their action intervals; CSV timing."""

from __future__ import annotations

import numpy as np
import pytest

from vidssl.data.synthetic.charades import (
    CharadesSynthParams,
    _csv_text,
    plan_actions,
    render_charades_video,
)
from vidssl.errors import UserError


def _block_means(frame: np.ndarray) -> np.ndarray:
    h, w = (s - s % 8 for s in frame.shape[:2])
    blocks = frame[:h, :w].astype(np.float64).reshape(h // 8, 8, w // 8, 8, 3)
    return blocks.mean(axis=(1, 3))


@pytest.mark.parametrize("index", range(6))
def test_objects_are_present_only_inside_action_intervals(index):
    params = CharadesSynthParams(classes=6, frames=40, size=48)
    frames = render_charades_video(params, index)
    n_frames, actions = plan_actions(params, index)
    assert frames.shape == (n_frames, 48, 64, 3)
    active = np.zeros(n_frames, dtype=bool)
    for action in actions:
        assert 0 <= action.start <= action.end < n_frames
        active[action.start : action.end + 1] = True
    empty = np.flatnonzero(~active)
    if empty.size < 2:
        pytest.skip("no pair of action-free frames in this video")
    reference = _block_means(frames[empty[0]])
    # action-free frames: the static background up to averaged sensor noise
    for i in empty[1:]:
        assert np.abs(_block_means(frames[i]) - reference).max() < 4.0
    # frames with an action show an object somewhere (wrap-around can hide it briefly)
    shown = [np.abs(_block_means(frames[i]) - reference).max() > 20 for i in np.flatnonzero(active)]
    assert np.mean(shown) > 0.8


def test_csv_times_keep_the_first_and_last_frame_inside_the_interval():
    params = CharadesSynthParams(train_videos=4)
    lines = _csv_text(params, range(4)).splitlines()
    assert lines[0].split(",")[-2:] == ["actions", "length"]
    for index, line in zip(range(4), lines[1:]):
        _, actions = plan_actions(params, index)
        field = line.split(",")[-2]
        for action, text in zip(actions, field.split(";")):
            label, start, end = text.split()
            assert label == f"c{action.label:03d}"
            assert float(start) <= action.start / 24 and action.end / 24 <= float(end)
            assert float(start) > (action.start - 1) / 24 and float(end) < (action.end + 1) / 24


def test_bad_parameters_are_user_errors():
    with pytest.raises(UserError, match="--classes"):
        CharadesSynthParams(classes=0).validate()
