import os

import numpy as np
import pytest

from vidssl.utils.io import atomic_directory, atomic_write_bytes, remove_partials
from vidssl.utils.jpeg import decode_jpeg, encode_jpeg


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a" / "b.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert os.listdir(target.parent) == ["b.bin"]


def test_atomic_directory_publishes_only_on_success(tmp_path):
    with atomic_directory(tmp_path / "video") as tmp:
        (tmp / "x.jpg").write_bytes(b"1")
    assert (tmp_path / "video" / "x.jpg").read_bytes() == b"1"
    with pytest.raises(RuntimeError), atomic_directory(tmp_path / "broken") as tmp:
        (tmp / "x.jpg").write_bytes(b"1")
        raise RuntimeError("killed")
    assert not (tmp_path / "broken").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["video"]


def test_remove_partials(tmp_path):
    (tmp_path / "c" / ".v.partial-abc").mkdir(parents=True)
    (tmp_path / "c" / "done").mkdir()
    assert remove_partials(tmp_path) == 1
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["done"]


def test_jpeg_round_trip_and_draft_size():
    image = np.zeros((240, 320, 3), np.uint8)
    image[:, 160:] = (250, 10, 10)
    data = encode_jpeg(image, quality=95)
    full = decode_jpeg(data)
    assert full.shape == (240, 320, 3)
    assert np.abs(full.astype(int) - image).max() <= 12
    reduced = decode_jpeg(data, min_short_side=112)
    # 240 // 112 = 2 -> libjpeg scales by 1/2 at most while keeping the short side >= 112
    assert reduced.shape == (120, 160, 3)
    assert decode_jpeg(data, min_short_side=200).shape == (240, 320, 3)
