"""The AVA keyframe dataset (map-style) and its collate function.

One item per keyframe with at least one box: the 32×2 clip centred on the keyframe (clamped at the
video ends), transformed with its boxes for the split (`vidssl.data.transforms.boxes`), and

``{"clip": C×T×H×W float, "boxes": [K, 4] pixels of the clip, "labels": [K, 80] float multi-hot,
"ori_boxes": [K, 4] normalised boxes as read, "video": name, "video_index": int, "second": int,
"index": int}``.

`ava_collate` concatenates boxes across the batch with the batch index as column 0 (the layout
`roi_align` takes) and adds ``metadata`` = ``[video_index, second]`` per box, like the reference.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vidssl.data.catalogs.ava import FrameList, read_frame_lists
from vidssl.data.catalogs.ava_keyframes import (
    Keyframes,
    clip_frame_indices,
    collect_keyframes,
    eval_box_lists,
    train_box_lists,
)
from vidssl.data.dataset_failures import FailureMap
from vidssl.data.sources.frame_paths import FramePaths
from vidssl.data.transforms.boxes import (
    ava_test_transform,
    ava_train_transform,
    ava_val_transform,
    finish_clip,
    normalised_to_pixels,
)
from vidssl.data.transforms.ops import clip_to_cthw
from vidssl.errors import ConfigError, CorruptVideoError, DataError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class AvaClipSpec:
    """Clip sampling and augmentation settings (the SEVERE defaults).

    Attributes:
        num_frames: frames per clip (32).
        stride: frame step (2).
        crop_size: train/val crop and test short side (112).
        jitter: train short-side range (256, 320).
        flip_probability: train horizontal flip probability (0.5).
    """

    num_frames: int = 32
    stride: int = 2
    crop_size: int = 112
    jitter: tuple[int, int] = (256, 320)
    flip_probability: float = 0.5


class AvaDataset(torch.utils.data.Dataset):
    """AVA keyframes of one split.

    Args:
        frame_dir: root the frame-list paths are relative to.
        frame_list: the split's `FrameList` (video order and frame paths).
        keyframes: the split's `Keyframes`.
        split: ``"train"`` (random jitter/crop/flip), ``"val"`` (centre crop) or ``"test"``
            (full frame).
        spec: clip settings.
        seed: base seed of the train augmentation (item ``i`` of epoch ``e`` uses
            ``default_rng([seed, e, i])``); set `epoch` before each epoch.
    """

    def __init__(
        self,
        frame_dir: str | os.PathLike,
        frame_list: FrameList,
        keyframes: Keyframes,
        split: str,
        spec: AvaClipSpec | None = None,
        seed: int = 0,
    ) -> None:
        if split not in SPLITS:
            raise ConfigError(f"AVA split must be one of {SPLITS}, got {split!r}")
        if len(keyframes) == 0:
            raise DataError(f"AVA {split}: no keyframe with a box")
        self.frame_dir = Path(frame_dir)
        self.frame_list = frame_list
        self.keyframes = keyframes
        self.split = split
        self.spec = spec or AvaClipSpec()
        self.seed = seed
        self.epoch = 0
        self.failures = FailureMap(np.asarray(frame_list.videos, dtype=str), f"ava {split}")
        self._by_video = [
            np.flatnonzero(keyframes.video_index == v) for v in range(len(frame_list.videos))
        ]

    def __len__(self) -> int:
        return len(self.keyframes)

    def _read(self, index: int) -> torch.Tensor:
        video = int(self.keyframes.video_index[index])
        names = self.frame_list.frames[video]
        frames = clip_frame_indices(
            int(self.keyframes.center_frame[index]), len(names), self.spec.num_frames,
            self.spec.stride,
        )  # fmt: skip
        wanted, order = np.unique(frames, return_inverse=True)  # AVA videos have ~27k frames
        source = FramePaths([self.frame_dir / names[i] for i in wanted.tolist()])
        return clip_to_cthw(source.read(order.reshape(-1)))

    def _candidates(self, index: int, seed: list[int]) -> Iterator[int]:
        """The keyframe itself, then keyframes of replacement videos (seeded, train only)."""
        video = int(self.keyframes.video_index[index])
        item_seed = int(np.random.default_rng(seed).integers(2**31))
        for other in self.failures.candidates(video, item_seed):
            if other == video:
                yield index
            elif len(self._by_video[other]):
                choice = np.random.default_rng([*seed, other]).integers(len(self._by_video[other]))
                yield int(self._by_video[other][choice])

    def __getitem__(self, index: int) -> dict[str, object]:
        seed = [self.seed, self.epoch, index]
        if self.split != "train":  # evaluation must see every keyframe: no replacement
            return self._item(index, self._read(index), seed)
        for pick in self._candidates(index, seed):
            try:
                clip = self._read(pick)
            except CorruptVideoError as error:
                self.failures.mark(int(self.keyframes.video_index[pick]), error)
                continue
            return self._item(pick, clip, seed)
        raise DataError(f"ava {self.split}: every video is unreadable")

    def _item(self, index: int, clip: torch.Tensor, seed: list[int]) -> dict[str, object]:
        ori_boxes, labels = self.keyframes.boxes_of(index)
        boxes = normalised_to_pixels(ori_boxes, *clip.shape[-2:])
        if self.split == "train":
            rng = np.random.default_rng(seed)
            clip, boxes = ava_train_transform(
                clip, boxes, rng, self.spec.jitter, self.spec.crop_size,
                self.spec.flip_probability,
            )  # fmt: skip
        elif self.split == "val":
            clip, boxes = ava_val_transform(clip, boxes, self.spec.crop_size)
        else:
            clip, boxes = ava_test_transform(clip, boxes, self.spec.crop_size)
        clip, boxes = finish_clip(clip, boxes)
        video = int(self.keyframes.video_index[index])
        return {
            "clip": clip,
            "boxes": torch.as_tensor(boxes, dtype=torch.float32),
            "labels": torch.as_tensor(labels, dtype=torch.float32),
            "ori_boxes": torch.as_tensor(ori_boxes, dtype=torch.float32),
            "video": self.frame_list.videos[video],
            "video_index": video,
            "second": int(self.keyframes.second[index]),
            "index": index,
        }


def ava_collate(items: list[dict[str, object]]) -> dict[str, object]:
    """Batches AVA items: stacked clips, boxes ``[ΣK, 5]`` with the batch index in column 0.

    Raises:
        DataError: clips of different sizes (full-frame test clips need batch size 1 per step).
    """
    shapes = {tuple(item["clip"].shape) for item in items}
    if len(shapes) > 1:
        raise DataError(f"AVA clips of different sizes {sorted(shapes)} in one batch; use batch 1")
    boxes = [
        torch.cat([torch.full((len(item["boxes"]), 1), float(i)), item["boxes"]], dim=1)
        for i, item in enumerate(items)
    ]
    metadata = [
        torch.tensor([[item["video_index"], item["second"]]] * len(item["boxes"]), dtype=torch.long)
        for item in items
    ]
    return {
        "clip": torch.stack([item["clip"] for item in items]),
        "boxes": torch.cat(boxes),
        "labels": torch.cat([item["labels"] for item in items]),
        "ori_boxes": torch.cat([item["ori_boxes"] for item in items]),
        "metadata": torch.cat(metadata).reshape(-1, 2),
        "index": torch.tensor([item["index"] for item in items], dtype=torch.long),
    }


def build_ava_dataset(
    root: str | os.PathLike,
    split: str,
    spec: AvaClipSpec | None = None,
    seed: int = 0,
    full_test_on_val: bool = False,
    gt_copy_as_predicted: bool = True,
    score_threshold: float = 0.9,
    frames: str = "frames",
    annotations: str = "annotations",
) -> AvaDataset:
    """The AVA dataset of a prepared root (``frames/``, ``annotations/`` as the reference lays out).

    Train: ``train.csv`` with GT + detected boxes (`train_box_lists`); val/test: ``val.csv`` with
    the detected val boxes, val keeping every 4th second unless ``full_test_on_val``.
    """
    root = Path(root)
    annotation_dir = root / annotations
    frame_list = read_frame_lists(
        [annotation_dir / ("train.csv" if split == "train" else "val.csv")]
    )
    if split == "train":
        lists = train_box_lists(annotation_dir, gt_copy_as_predicted)
    else:
        lists = eval_box_lists(annotation_dir)
    stride = 4 if split == "val" and not full_test_on_val else 1
    keyframes = collect_keyframes(lists, frame_list.videos, score_threshold, second_stride=stride)
    return AvaDataset(root / frames, frame_list, keyframes, split, spec, seed)
