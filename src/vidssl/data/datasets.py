"""Map-style video datasets: catalog rows → sampled clips → augmented views, as dict items.

Every item is a dict (the keys other rooms rely on)::

    {"views": [C×T×H×W tensor per view], "label": int (or a multi-hot tensor), "index": int,
     "clip": (start, end), "clips": int64 [n_views, 2], "video": str, "group": int}

plus ``"flow_views"`` for two-stream data and ``"device_params"`` when the augmentation runs on
the device, and with ``subclips=S`` (CVTCL's per-sub-clip draw) ``"subclip_views"`` (and
``"subclip_flow_views"``): ``S`` pairs ``[view 1, view 2]`` of sub-clip ``j``.
``"index"`` is the row of the video in the table, ``"clip"`` the frame span covered by
all of the item's clips, ``"clips"`` each view's own ``(start, end)``, ``"video"`` the video's path
in the table. ``"group"`` is the video's source-group id (UCF101 ``gXX`` siblings share one) where
the catalog has one, else a unique id (``max group + 1 + index``; the index itself when the
catalog has no groups at all), so sibling masking never merges unrelated videos.

Randomness. An item draws one seed from numpy's global generator, which `vidssl.train.loader`
seeds per sample from ``(seed, epoch, position)``; clips and augmentation then come from
``np.random.default_rng([seed, 1])`` and a failed video's replacement order from
``default_rng([seed, 2])``. Items therefore do not depend on the worker count.

Unreadable videos. A `CorruptVideoError` (or a frame index past the real end of a video whose
stated frame count was too large) marks the video in the dataset's shared `FailureMap` (logged
once, counted once over all DataLoader workers) and the item is made from another video instead;
`failures()` and `failed_videos()` report them. When every video fails, `DataError`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from vidssl.data.catalogs import VideoTable
from vidssl.data.dataset_failures import FailureMap
from vidssl.data.sampling import ClipInfo, ClipSampler, sample_two_stream
from vidssl.data.transforms import ops
from vidssl.data.transforms.compose import Compose
from vidssl.data.transforms.presets import ViewSet
from vidssl.errors import CorruptVideoError, DataError

__all__ = ["ClassificationDataset", "ClipDataset", "MultiViewDataset", "ViewPolicy", "read_clips"]


class ViewPolicy(Protocol):
    """Turns a sample's clips into views (`CoclrViewPolicy`, `PerClipViews`)."""

    def __call__(
        self,
        clips: Sequence[torch.Tensor],
        rng: np.random.Generator,
        flow_clips: Sequence[torch.Tensor] | None = None,
    ) -> ViewSet:
        """Makes the views (and flow views with the same draws)."""
        ...


def read_clips(source: Any, clips: list[ClipInfo]) -> list[torch.Tensor]:
    """Reads all clips of one video in one call (one decode of the span), split per clip."""
    frames = source.read(np.concatenate([clip.indices for clip in clips]))
    return list(torch.split(frames, [len(clip.indices) for clip in clips]))


class ClipDataset(Dataset):
    """Base of the datasets: failure handling, clip reading and item metadata.

    Subclasses implement `make_item`. Use `MultiViewDataset` or `ClassificationDataset`.

    Args:
        table: the videos (`vidssl.data.catalogs.load`).
        sampler: which clips of a video to read.
        flow_table: the flow of the same videos, row-aligned with ``table``
            (`vidssl.data.catalogs.table.align`); makes the dataset two-stream.
        source_kwargs: passed to `VideoTable.source` (e.g. ``min_short_side``).
    """

    def __init__(
        self,
        table: VideoTable,
        sampler: ClipSampler,
        *,
        flow_table: VideoTable | None = None,
        source_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if flow_table is not None and (
            len(flow_table) != len(table)
            or not np.array_equal(flow_table.video_keys(), table.video_keys())
        ):
            raise DataError(
                f"flow table ({len(flow_table)} videos at {flow_table.media}) is not row-aligned "
                f"with the RGB table ({len(table)} videos); pass both through catalogs.align"
            )
        self.table = table
        self.flow_table = flow_table
        self.sampler = sampler
        self.source_kwargs = dict(source_kwargs or {})
        self.failure_map = FailureMap(table.paths, f"{table.name} {table.split} ({table.media})")
        groups = table.groups
        self._group_offset = int(groups.max()) + 1 if len(groups) else 0

    def __len__(self) -> int:
        return len(self.table)

    # ------------------------------------------------------------------------ failures
    def failures(self) -> int:
        """Distinct videos found unreadable so far (all workers together)."""
        return self.failure_map.count()

    def failed_videos(self) -> list[str]:
        """Paths (as in the table) of the videos found unreadable so far."""
        return self.failure_map.failed_videos()

    # ------------------------------------------------------------------------ items
    def __getitem__(self, index: int) -> dict[str, Any]:
        """The item of video ``index``, or of a replacement if that video cannot be read."""
        seed = int(np.random.randint(2**63 - 1, dtype=np.int64))
        for video in self.failure_map.candidates(int(index), seed):
            try:
                return self.make_item(video, np.random.default_rng([seed, 1]))
            except (CorruptVideoError, IndexError) as error:
                self.failure_map.mark(video, error)
        raise AssertionError("unreachable: candidates() raises when exhausted")

    def make_item(self, video: int, rng: np.random.Generator) -> dict[str, Any]:
        """Builds the item of ``video``; raises `CorruptVideoError` if it cannot be read."""
        raise NotImplementedError

    def group_of(self, video: int) -> int:
        """The source-group id of ``video`` (a unique id when the catalog has none)."""
        group = int(self.table.groups[video])
        return group if group >= 0 else self._group_offset + video

    def label_of(self, video: int) -> int | torch.Tensor:
        """Class id (int), or the multi-hot row (int64 tensor) of a multi-label table."""
        label = self.table.labels[video]
        return int(label) if np.ndim(label) == 0 else torch.from_numpy(np.array(label))

    def read_video_clips(
        self, video: int, rng: np.random.Generator
    ) -> tuple[list[ClipInfo], list[torch.Tensor], list[torch.Tensor] | None]:
        """Draws the clips of ``video`` and reads them (RGB, and flow at the same indices).

        Two-stream clips are drawn on ``min(n_rgb, n_flow)`` frames (CoCLR).
        """
        source = self.table.source(video, **self.source_kwargs)
        n_rgb = int(self.table.n_frames[video])
        n_rgb = n_rgb if n_rgb >= 0 else len(source)
        if self.flow_table is None:
            clips = self.sampler(n_rgb, rng)
            return clips, read_clips(source, clips), None
        flow_source = self.flow_table.source(video, **self.source_kwargs)
        n_flow = int(self.flow_table.n_frames[video])
        n_flow = n_flow if n_flow >= 0 else len(flow_source)
        clips = sample_two_stream(self.sampler, n_rgb, n_flow, rng)
        rgb, flow = read_clips(source, clips), read_clips(flow_source, clips)
        if rgb[0].shape[1:3] != flow[0].shape[1:3]:
            raise CorruptVideoError(
                f"{self.table.paths[video]}: RGB frames {tuple(rgb[0].shape[1:3])} and flow "
                f"frames {tuple(flow[0].shape[1:3])} differ in size"
            )
        return clips, rgb, flow

    def base_item(self, video: int, clips: Sequence[ClipInfo]) -> dict[str, Any]:
        """The metadata keys of an item made from ``clips`` of ``video`` (no views)."""
        spans = torch.tensor([[clip.start, clip.end] for clip in clips], dtype=torch.int64)
        return {
            "label": self.label_of(video),
            "index": video,
            "clip": (int(spans[:, 0].min()), int(spans[:, 1].max())),
            "clips": spans,
            "video": str(self.table.paths[video]),
            "group": self.group_of(video),
        }


class MultiViewDataset(ClipDataset):
    """Self-supervised training data: ``n`` clips per video, one augmented view per clip.

    With ``sampler=MultiRandomClips(2, seq_len, ds)`` and ``views=CoclrViewPolicy()`` this is
    CoCLR's ``*_2CLIP`` datasets (``ucf101-2clip``, ``k400-2clip``, their flow variants with a
    flow ``table``); with a ``flow_table`` it is the ``*_2STREAM_*`` datasets: RGB and flow read at
    the same frame indices, each flow view made with its RGB view's crop, flip and colour draws.

    Args:
        table: the videos.
        sampler: the clips of a video (one per view the policy expects).
        views: the view policy (`CoclrViewPolicy` for 2 clips, `PerClipViews` for any number).
        flow_table: row-aligned flow table (two-stream; items get ``"flow_views"``).
        source_kwargs: passed to `VideoTable.source`.
        residual: feed every finished view (not the flow views) as a residual clip of this mode
            (`vidssl.data.transforms.ops.residual`); None keeps the frames.
        subclips: ``S > 0`` adds CVTCL's sub-clip views (``utils/augmentation_local.py``): the
            clips are cut into ``S`` consecutive equal segments, and for each ``j`` the view
            policy makes the two views of the pair (segment ``j`` of clip 1, segment ``j`` of
            clip 2) with its own draw (TwoClip/OneClip, crop, jitter, flip), after the whole-clip
            views. Items get ``"subclip_views"`` (and ``"subclip_flow_views"``).
    """

    def __init__(
        self,
        table: VideoTable,
        sampler: ClipSampler,
        views: ViewPolicy,
        *,
        flow_table: VideoTable | None = None,
        source_kwargs: dict[str, Any] | None = None,
        residual: str | None = None,
        subclips: int = 0,
    ) -> None:
        super().__init__(table, sampler, flow_table=flow_table, source_kwargs=source_kwargs)
        self.views = views
        self.residual = residual
        if subclips < 0:
            raise DataError(f"subclips={subclips} is not >= 0")
        self.subclips = subclips

    def _finish(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.residual is None:
            return views
        return [ops.residual(view, self.residual) for view in views]

    def make_item(self, video: int, rng: np.random.Generator) -> dict[str, Any]:
        """Clips → views; ``"clips"`` follows the views (OneClip views share a clip)."""
        clips, rgb, flow = self.read_video_clips(video, rng)
        made = self.views(rgb, rng, flow)
        item: dict[str, Any] = {"views": self._finish(made.views)}
        item.update(self.base_item(video, [clips[i] for i in made.clip_ids]))
        if made.flow_views is not None:
            item["flow_views"] = made.flow_views
        if made.device_params is not None:
            item["device_params"] = made.device_params
        if self.subclips:
            item.update(self._subclip_views(rgb, flow, rng))
        return item

    def _subclip_views(
        self, rgb: list[torch.Tensor], flow: list[torch.Tensor] | None, rng: np.random.Generator
    ) -> dict[str, Any]:
        """The view pair of every sub-clip, each drawn separately (see the class docstring)."""
        n = self.subclips
        if len(rgb) != 2 or len(rgb[0]) % n or len(rgb[1]) != len(rgb[0]):
            raise DataError(f"sub-clip views need 2 equal clips of a multiple of {n} frames")
        cut = lambda clip, j: clip[j * (len(clip) // n) : (j + 1) * (len(clip) // n)]  # noqa: E731
        pairs, flow_pairs = [], []
        for j in range(n):
            made = self.views(
                [cut(c, j) for c in rgb], rng, None if flow is None else [cut(f, j) for f in flow]
            )
            pairs.append(self._finish(made.views))
            flow_pairs.append(made.flow_views)
        out: dict[str, Any] = {"subclip_views": pairs}
        if flow is not None:
            out["subclip_flow_views"] = flow_pairs
        return out


class ClassificationDataset(ClipDataset):
    """Labelled clips for evaluation and fine-tuning: one clip, or all windows, per video.

    ``RandomClip`` + `coclr_finetune` gives CoCLR's fine-tuning train items; ``SlidingWindows``
    (or ``UniformClips``) + `coclr_eval` its test items (one view per window; with a `MultiCrop`
    transform, every crop of every window, window-major).

    Args:
        table: the videos.
        sampler: the clips of a video (each becomes one view, or several with `MultiCrop`).
        transform: a clip transform (`Compose`, ...) or a `MultiCrop`; random parameters are drawn
            per clip. Flow clips get the same draws as their RGB clip.
        flow_table: row-aligned flow table (items get ``"flow_views"``).
        source_kwargs: passed to `VideoTable.source`.
    """

    def __init__(
        self,
        table: VideoTable,
        sampler: ClipSampler,
        transform: Any,
        *,
        flow_table: VideoTable | None = None,
        source_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(table, sampler, flow_table=flow_table, source_kwargs=source_kwargs)
        self.transform = transform

    def _transform(
        self, clip: torch.Tensor, flow: torch.Tensor | None, rng: np.random.Generator
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The views of one clip and of its flow clip (same draws)."""
        if isinstance(self.transform, Compose):
            params = self.transform.sample(rng, int(clip.shape[1]), int(clip.shape[2]))
            flow_out = [] if flow is None else [self.transform.apply(flow, params, flow=True)]
            return [self.transform.apply(clip, params)], flow_out
        flow_rng = copy.deepcopy(rng)  # the flow clip replays the RGB clip's draws
        as_list = lambda out: out if isinstance(out, list) else [out]  # noqa: E731
        views = as_list(self.transform(clip, rng))
        return views, [] if flow is None else as_list(self.transform(flow, flow_rng))

    def make_item(self, video: int, rng: np.random.Generator) -> dict[str, Any]:
        """Reads the clips and transforms each one."""
        clips, rgb, flow = self.read_video_clips(video, rng)
        views: list[torch.Tensor] = []
        flow_views: list[torch.Tensor] = []
        spans: list[ClipInfo] = []
        for i, clip in enumerate(rgb):
            made, made_flow = self._transform(clip, None if flow is None else flow[i], rng)
            views += made
            flow_views += made_flow
            spans += [clips[i]] * len(made)
        item: dict[str, Any] = {"views": views}
        item.update(self.base_item(video, spans))
        if flow is not None:
            item["flow_views"] = flow_views
        return item
