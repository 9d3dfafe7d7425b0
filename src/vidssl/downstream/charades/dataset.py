"""Charades datasets: training clips with span labels, and the 10 × 3 test views per video.

Items are dicts ``{"views": [C×T×H×W float], "label": float [num_classes], "index": video row,
"video": id}``; test items add ``"view"`` (temporal·spatial_views + spatial) and ``"failed"``.
An unreadable training video is replaced by another (seeded order, `FailureMap`); an unreadable
test video gives blank views flagged ``failed`` and is left out of the mAP (listed as skipped).
Frames come from JPEG folders
(``media/<frame-list path>``, the ``Charades_v1_rgb`` layout) or straight from the videos
(``media/<id>.mp4``, decoded at their own rate and resampled to 24 fps by nearest frame).
Randomness comes from numpy's global generator inside ``__getitem__`` (seeded per sample by
`vidssl.train.loader.ResumableLoader`), so resume is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vidssl.data.dataset_failures import FailureMap
from vidssl.data.sources.video_file import VideoFile, check_frame_indices, stack_frames
from vidssl.data.transforms import ops
from vidssl.downstream.charades import views
from vidssl.downstream.charades.catalog import FPS, CharadesVideo, frame_path, span_label
from vidssl.downstream.charades.catalog import video_label as whole_video_label
from vidssl.errors import CorruptVideoError, DataError
from vidssl.utils.jpeg import decode_jpeg

VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv")
MEAN, STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)


@dataclass(frozen=True)
class ClipSettings:
    """Clip geometry (reference values: 32 × 8, jitter [256, 340], crop 112, 10 × 3 views)."""

    num_frames: int = 32
    stride: int = 8
    jitter: tuple[int, int] = (256, 340)
    crop: int = 112
    temporal_views: int = 10
    spatial_views: int = 3
    num_classes: int = 157


class CharadesFrames:
    """Reads 24 fps frames of one video from JPEG files or a video file (uint8 T×H×W×C)."""

    def __init__(self, media: Path, video: CharadesVideo) -> None:
        self.video = video
        self.media = media
        self._file: VideoFile | None = None
        if not (media / video.video_id).is_dir():
            for suffix in VIDEO_SUFFIXES:
                if (media / f"{video.video_id}{suffix}").is_file():
                    self._file = VideoFile(media / f"{video.video_id}{suffix}")
                    break
            else:
                raise CorruptVideoError(f"{media}: no frame folder or video for {video.video_id}")

    def read(self, indices: np.ndarray) -> torch.Tensor:
        """Frames at the 24 fps ``indices``."""
        if self._file is not None:
            rate = self._file.frame_rate or FPS
            mapped = np.rint(np.asarray(indices) * rate / FPS).astype(np.int64)
            return self._file.read(np.minimum(mapped, len(self._file) - 1))
        order = check_frame_indices(indices, self.video.n_frames, self.video.video_id)
        frames = {}
        for i in np.unique(order).tolist():
            rel = (
                self.video.frame_paths[i]
                if self.video.frame_paths
                else frame_path(self.video.video_id, i)
            )
            try:
                frames[i] = decode_jpeg((self.media / rel).read_bytes())
            except OSError as error:
                raise CorruptVideoError(f"{self.media / rel}: {error}") from error
        return stack_frames(frames, order, self.video.video_id)


def _finish(clip: torch.Tensor) -> torch.Tensor:
    return ops.normalize(ops.to_float(clip), MEAN, STD)


def _rescale(clip: torch.Tensor, short_side: int) -> torch.Tensor:
    height, width = clip.shape[-2:]
    size = views.scaled_size(int(height), int(width), short_side)
    return ops.resize(clip, size, antialias=False)


class CharadesDataset(Dataset):
    """Charades clips for training (``train=True``) or the test views (``train=False``).

    Args:
        videos: The split's videos (`read_frame_list` / `read_official_csv`).
        media: Folder with ``<id>/`` frame folders or ``<id>.mp4`` videos.
        settings: Clip geometry.
        train: Random training clips (one item per video) or 30 test views per video.
    """

    def __init__(
        self, videos: Sequence[CharadesVideo], media: str | Path, settings: ClipSettings,
        *, train: bool,
    ) -> None:  # fmt: skip
        if not videos:
            raise DataError("the Charades split has no videos")
        self.videos = list(videos)
        self.media = Path(media)
        self.settings = settings
        self.train = train
        self.views_per_video = 1 if train else settings.temporal_views * settings.spatial_views
        names = np.array([v.video_id for v in self.videos])
        self.failure_map = FailureMap(names, f"charades {'train' if train else 'test'}")

    def __len__(self) -> int:
        return len(self.videos) * self.views_per_video

    def video_labels(self) -> np.ndarray:
        """``[N, num_classes]`` test labels: the union over each whole video."""
        return np.stack([whole_video_label(v.frame_labels, self.settings.num_classes)
                         for v in self.videos])  # fmt: skip

    def failures(self) -> int:
        """Distinct unreadable videos met so far (all workers)."""
        return self.failure_map.count()

    def failed_videos(self) -> list[str]:
        """Ids of the unreadable videos met so far."""
        return self.failure_map.failed_videos()

    def _clip(self, video: CharadesVideo, start: int) -> tuple[torch.Tensor, np.ndarray]:
        s = self.settings
        if video.n_frames < 1:
            raise CorruptVideoError(f"Charades video {video.video_id} has no frames")
        indices = views.clip_indices(start, video.n_frames, s.num_frames, s.stride)
        return ops.clip_to_cthw(CharadesFrames(self.media, video).read(indices)), indices

    def _train_item(self, index: int, rng: np.random.Generator) -> dict:
        s, video = self.settings, self.videos[index]
        start = views.train_start(video.n_frames, s.num_frames, s.stride, rng)
        clip, indices = self._clip(video, start)
        clip = _rescale(clip, views.inverse_uniform_side(float(rng.random()), *s.jitter))
        top, left = views.random_crop_offset(*clip.shape[-2:], s.crop, rng)
        clip = ops.crop(clip, top, left, s.crop, s.crop)
        if rng.random() < 0.5:
            clip = ops.hflip(clip)
        label = span_label(video.frame_labels, indices, s.num_classes)
        return {"views": [_finish(clip.contiguous())], "label": torch.from_numpy(label),
                "index": index, "video": video.video_id}  # fmt: skip

    def _test_item(self, index: int, view: int) -> dict:
        s, video = self.settings, self.videos[index]
        temporal, spatial = divmod(view, s.spatial_views)
        label = torch.from_numpy(whole_video_label(video.frame_labels, s.num_classes))
        item = {"label": label, "index": index, "video": video.video_id, "view": view}
        if self.failure_map.is_bad(index):
            blank = torch.zeros(3, s.num_frames, s.crop, s.crop)
            return {"views": [blank], "failed": True, **item}
        start = views.test_starts(video.n_frames, s.num_frames, s.stride, s.temporal_views)
        try:
            clip, _ = self._clip(video, start[temporal])
        except (CorruptVideoError, IndexError) as error:
            self.failure_map.mark(index, error)
            return self._test_item(index, view)
        clip = _rescale(clip, s.crop)
        position = spatial if s.spatial_views == 3 else 1  # one view: the centre crop
        top, left = views.uniform_crop_offset(*clip.shape[-2:], s.crop, position)
        clip = ops.crop(clip, top, left, s.crop, s.crop)
        return {"views": [_finish(clip.contiguous())], "failed": False, **item}

    def __getitem__(self, item: int) -> dict:
        index, view = divmod(item, self.views_per_video)
        if not self.train:
            return self._test_item(index, view)
        seed = int(np.random.randint(0, 2**31 - 1))
        for candidate in self.failure_map.candidates(index, seed):
            try:
                return self._train_item(candidate, np.random.default_rng([seed, 1]))
            except (CorruptVideoError, IndexError) as error:
                self.failure_map.mark(candidate, error)
        raise AssertionError("unreachable: candidates() raises when exhausted")
