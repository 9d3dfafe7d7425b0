"""VCP / PCL cloze tuples: 3 clips in order, a remote clip, a cloze label and its parameters.

`VcpTupleDataset` is the data side of the video-cloze pretext (VCP, and PCL(VCP) on top of it).
One item is one video's tuple (`vidssl.data.sampling.VcpTuples`):

- ``"views"``: four ``C×T×H×W`` clips, each augmented with its own random draws (the reference
  re-seeds its per-frame transforms per clip): the three tuple clips, then the remote clip when
  the label is 4 (otherwise a copy of the middle view, never used);
- ``"cloze_label"``: the cloze class, uniform over 0–4 (none, rotation, quadrant permutation,
  chunk swap, remote clip); when no remote clip fits it is redrawn uniformly over 0–3, as the
  reference does, so such videos never get class 4;
- ``"rot_k"``: rotation by ``k·90°``, ``k`` uniform in {1, 2, 3} (used by class 1);
- ``"swap"``: two distinct 4-frame chunks to swap (used by class 3), int64 ``[2]``;
- the usual metadata (``"label"`` is the action class, ``"index"`` the row in the dataset's
  table, used as the memory-bank slot by PCL).

The cloze operations themselves run batched on the device (`vidssl.methods.cloze`).

Short videos. The reference keeps only videos with at least ``span`` (64) frames. Here videos of
known length below that are removed from the table when the dataset is built, counted in
``short_videos`` and logged (one line with the count and the first names); a video whose length
is unknown until it is opened and turns out too short is skipped like an unreadable one (it is
counted in ``failures()`` and replaced), never clamped or padded.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from vidssl.data.catalogs import VideoTable
from vidssl.data.datasets import ClipDataset, read_clips
from vidssl.data.sampling import VcpTuples
from vidssl.data.transforms.compose import Compose
from vidssl.errors import CorruptVideoError, DataError

log = logging.getLogger(__name__)

__all__ = ["CLOZE_CLASSES", "REMOTE_CLASS", "VcpTupleDataset", "draw_cloze_label"]

#: The cloze classes, in label order.
CLOZE_CLASSES = ("none", "rotation", "quadrants", "chunk_swap", "remote")
#: Label of the temporal-remote class (needs a remote clip).
REMOTE_CLASS = 4


def draw_cloze_label(rng: np.random.Generator, has_remote: bool) -> int:
    """The reference's label draw: uniform over 0–4, redrawn over 0–3 if 4 has no remote clip."""
    label = int(rng.integers(REMOTE_CLASS + 1))
    if label == REMOTE_CLASS and not has_remote:
        label = int(rng.integers(REMOTE_CLASS))
    return label


class VcpTupleDataset(ClipDataset):
    """Cloze tuples of every video long enough for one (see the module docstring).

    Args:
        table: The videos; rows with a known frame count below ``sampler.min_frames`` are
            dropped here and counted in ``short_videos`` / ``short_names``.
        sampler: The tuple geometry (`VcpTuples`; ``clip_stride=11`` is the reference's stride).
        transform: The per-clip transform (`vidssl.data.transforms.presets.pcl_train`); it is
            applied to each of the four clips with its own draws.
        source_kwargs: Passed to `VideoTable.source`.

    Raises:
        DataError: No video of the table is long enough for a tuple.
    """

    def __init__(
        self,
        table: VideoTable,
        sampler: VcpTuples,
        transform: Compose,
        *,
        source_kwargs: dict[str, Any] | None = None,
    ) -> None:
        need = sampler.min_frames
        short = (table.n_frames >= 0) & (table.n_frames < need)
        self.short_videos = int(short.sum())
        self.short_names = [str(p) for p in table.paths[short]]
        if self.short_videos:
            shown = ", ".join(self.short_names[:5]) + (", ..." if self.short_videos > 5 else "")
            log.warning(
                "%s %s: skipped %d videos shorter than the %d-frame tuple: %s",
                table.name, table.split, self.short_videos, need, shown,
            )  # fmt: skip
        if self.short_videos == len(table):
            raise DataError(
                f"{table.name} {table.split}: none of its {len(table)} videos has the {need} "
                "frames a cloze tuple needs"
            )
        super().__init__(table.subset(np.flatnonzero(~short)), sampler, source_kwargs=source_kwargs)
        self.transform = transform

    def make_item(self, video: int, rng: np.random.Generator) -> dict[str, Any]:
        """Tuple clips + remote (or middle copy), each augmented, plus the cloze draws."""
        source = self.table.source(video, **self.source_kwargs)
        n_frames = int(self.table.n_frames[video])
        n_frames = n_frames if n_frames >= 0 else len(source)
        need = self.sampler.min_frames
        if n_frames < need:
            raise CorruptVideoError(
                f"{self.table.paths[video]}: {n_frames} frames, fewer than the {need}-frame tuple"
            )
        clips = self.sampler(n_frames, rng)
        tuple_len = self.sampler.tuple_len
        has_remote = len(clips) > tuple_len
        label = draw_cloze_label(rng, has_remote)
        rot_k = int(rng.integers(1, 4))
        first = int(rng.integers(4))
        swap = [first, (first + int(rng.integers(1, 4))) % 4]
        read = clips if label == REMOTE_CLASS else clips[:tuple_len]
        frames = read_clips(source, read)
        views = [self.transform(clip, rng) for clip in frames]
        middle = tuple_len // 2
        if label != REMOTE_CLASS:
            views.append(views[middle])
        item: dict[str, Any] = {
            "views": views,
            "cloze_label": label,
            "rot_k": rot_k,
            "swap": torch.tensor(swap, dtype=torch.int64),
        }
        spans = read if label == REMOTE_CLASS else [*read, read[middle]]
        item.update(self.base_item(video, spans))
        return item


def build_tuple_dataset(
    data: Any,
    split: str,
    *,
    interval: int = 8,
    tuple_len: int = 3,
    remote_distance: int = 16,
    reference_stride: bool = False,
    strong: bool = True,
) -> VcpTupleDataset:
    """The cloze-tuple dataset of one split, from a run config's ``data`` section.

    Clips are ``data.seq_len`` frames (16 in the references), cropped to ``data.img_size``
    (112) from frames resized to ``img_size·(128, 171)/112``; ``strong`` is PCL's ``--aug True``
    (colour jitter, grey, blur, flip, ImageNet normalisation), else resize + crop only on [0, 1]
    (VCP). ``reference_stride`` places clip ``i`` at ``start + i·(tuple_len + interval)`` (the
    references' 11-frame stride, clips spanning 38 frames) instead of ``i·(seq_len + interval)``.

    Args:
        data: ``cfg.data`` (dataset, root, media, split_id, seq_len, img_size).
        split: ``train``, or ``test`` for the validation tuples.
        interval: Frames between the tuple's clips (nominal geometry).
        tuple_len: Clips per tuple.
        remote_distance: Least gap between the tuple and its remote clip.
        reference_stride: Use the references' clip stride.
        strong: Strong (PCL) or weak (VCP) augmentation.
    """
    from vidssl.data.catalogs import table as catalogs
    from vidssl.data.transforms.presets import pcl_train

    table = catalogs.load(data.dataset, data.root, split, split_id=data.split_id, media=data.media)
    sampler = VcpTuples(
        clip_len=data.seq_len,
        interval=interval,
        tuple_len=tuple_len,
        remote_distance=remote_distance,
        clip_stride=tuple_len + interval if reference_stride else None,
    )
    size = data.img_size
    resize = (round(size * 128 / 112), round(size * 171 / 112))
    return VcpTupleDataset(table, sampler, pcl_train(size, resize, strong=strong))
