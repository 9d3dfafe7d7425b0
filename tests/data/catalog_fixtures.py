"""Writers of tiny official-format dataset fixtures for the catalog tests (not a test module)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import lmdb
import msgpack
import numpy as np

from vidssl.utils.jpeg import encode_jpeg

# UCF101: classInd spells HandstandPushups, the files HandStandPushups (as in the official lists).
UCF_CLASSES = ("ApplyEyeMakeup", "HandstandPushups", "YoYo")
UCF_TRAIN01 = (
    ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 1),
    ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c02.avi", 1),
    ("ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi", 1),
    ("HandstandPushups/v_HandStandPushups_g08_c01.avi", 2),
    ("HandstandPushups/v_HandStandPushups_g10_c03.avi", 2),
    ("YoYo/v_YoYo_g11_c01.avi", 3),
)
UCF_TEST01 = (
    "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
    "HandstandPushups/v_HandStandPushups_g02_c01.avi",
    "YoYo/v_YoYo_g01_c02.avi",
)
# The media folder uses the file spelling.
UCF_MEDIA_FOLDER = {"HandstandPushups": "HandStandPushups"}


def write_lines(path: Path, lines: Iterable[str], newline: str = "\r\n") -> Path:
    """Writes text lines (CRLF by default, like the official UCF101 lists)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(line + newline for line in lines).encode("utf-8"))
    return path


def ucf_media_id(list_path: str) -> str:
    """List path → media id: 'HandstandPushups/v_X.avi' → 'HandStandPushups/v_X'."""
    class_dir, video = list_path.split("/")
    return f"{UCF_MEDIA_FOLDER.get(class_dir, class_dir)}/{video[:-4]}"


def write_ucf101_lists(root: Path, split_id: int = 1) -> Path:
    """Writes ``root/ucfTrainTestlist/{classInd,trainlist0K,testlist0K}.txt``."""
    lists = root / "ucfTrainTestlist"
    write_lines(lists / "classInd.txt", [f"{i} {name}" for i, name in enumerate(UCF_CLASSES, 1)])
    write_lines(lists / f"trainlist{split_id:02d}.txt", [f"{p} {c}" for p, c in UCF_TRAIN01])
    write_lines(lists / f"testlist{split_id:02d}.txt", UCF_TEST01)
    return lists


def ucf_video_ids() -> list[str]:
    """Media ids (folder spelling, no extension) of every fixture video, train then test."""
    return [ucf_media_id(path) for path, _ in UCF_TRAIN01] + [ucf_media_id(p) for p in UCF_TEST01]


def touch_videos(media: Path, video_ids: Iterable[str], extension: str = ".avi") -> None:
    """Empty placeholder video files ``media/<id><extension>`` (catalogs never decode them)."""
    for video_id in video_ids:
        path = media / f"{video_id}{extension}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def write_frame_folder(folder: Path, n_frames: int, template: str = "image_{:05d}.jpg") -> None:
    """``n_frames`` tiny JPEGs named by ``template`` (1-based), plus a non-frame file."""
    folder.mkdir(parents=True, exist_ok=True)
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    jpeg = encode_jpeg(image)
    for index in range(1, n_frames + 1):
        (folder / template.format(index)).write_bytes(jpeg)
    (folder / "notes.txt").write_text("not a frame")


def write_coclr_lmdb(
    path: Path, frame_counts: Mapping[str, int], seed: int = 0, subdir: bool = True
) -> list[str]:
    """Writes a CoCLR-layout LMDB (a directory, or one file) with the videos ``name -> n_frames``.

    Like CoCLR's converter, ids follow a shuffled order, ``__keys__`` lists keys in insertion
    order (class by class, not id order) and ``__vlen__`` is aligned with ``__keys__``.

    Returns:
        ``__order__``: the 'Class/video' name of each id.
    """
    names = sorted(frame_counts)
    order = list(names)
    np.random.default_rng(seed).shuffle(order)
    jpeg = encode_jpeg(np.zeros((8, 8, 3), dtype=np.uint8))
    env = lmdb.open(str(path), map_size=1 << 24, subdir=subdir)
    keys, vlen = [], []
    with env.begin(write=True) as txn:
        for name in names:  # insertion order: sorted by class/video, unlike the ids
            key = b"%09d" % order.index(name)
            txn.put(key, msgpack.dumps([jpeg] * frame_counts[name]))
            keys.append(key)
            vlen.append(frame_counts[name])
        txn.put(b"__keys__", msgpack.dumps(keys))
        txn.put(b"__len__", msgpack.dumps(len(order)))
        txn.put(b"__order__", msgpack.dumps(order))
        txn.put(b"__vlen__", msgpack.dumps(vlen))
    env.close()
    return order
