"""Reference-style loaders and the decode-only ceiling for ``vidssl bench loader``.

- `WholeVideoDecode`: decodes every frame of a video sequentially with PyAV into a list, then
  indexes the wanted frames (what a loader without keyframe seeking does).
- `coclr_lmdb_images` + `PilClipDataset`: CoCLR-style reading (``dataset/lmdb_dataset.py``): the
  whole record is unpacked (msgpack list of JPEG bytes), each sampled frame is decoded with PIL,
  and the views are made by per-frame PIL augmentation (`PilCoclrAugment`, CoCLR's
  ``base``/``null`` transforms under its ``TransformController``); the same per-frame PIL path
  reads frame folders (``Image.open(path)`` per frame).
- `DecodeOnlyDataset`: our sources reading just the sampled frames, no augmentation.
- `DecordVideo`: a frame source over ``decord.VideoReader`` (only when decord is installed).

All datasets draw their randomness like `vidssl.data.datasets.ClipDataset` (one seed from numpy's
global generator per item), so under `vidssl.train.loader.ResumableLoader` every loader reads the
same clips of the same videos.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import av
import msgpack
import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageFilter

from vidssl.data.catalogs import VideoTable
from vidssl.data.datasets import ClipDataset
from vidssl.data.sources import VideoFile, lmdb_store
from vidssl.data.sources.frame_files import frame_file_name
from vidssl.data.sources.video_file import check_frame_indices
from vidssl.data.transforms.presets import CoclrViewPolicy

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ------------------------------------------------------------------------------ whole-video decode


class WholeVideoDecode:
    """A frame source that decodes the whole video for every read, then indexes it.

    Args:
        path: the video file.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = path

    def __len__(self) -> int:
        return len(VideoFile(self.path))

    def read(self, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Decodes all frames (one thread, like `VideoFile`) and returns those at ``indices``."""
        with av.open(str(self.path)) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        order = check_frame_indices(indices, len(frames), self.path)
        return torch.from_numpy(np.stack(frames)[order])


class DecordVideo:
    """A frame source over ``decord.VideoReader`` (optional baseline; decord is no dependency).

    A new reader (one thread) per read, as a shuffled dataset over many videos would use it.

    Args:
        path: the video file.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = path

    def _reader(self) -> Any:
        import decord

        return decord.VideoReader(str(self.path), num_threads=1)

    def __len__(self) -> int:
        return len(self._reader())

    def read(self, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        """The frames at ``indices`` as decord returns them (``T×H×W×3`` uint8)."""
        reader = self._reader()
        order = check_frame_indices(indices, len(reader), self.path)
        return torch.from_numpy(reader.get_batch(order.tolist()).asnumpy())


@dataclass(frozen=True, eq=False)
class SwappedSourceTable(VideoTable):
    """A `VideoTable` whose rows are opened by ``factory(media/path)`` instead of our sources."""

    factory: Callable[[str], Any] | None = None

    def source(self, i: int, **kwargs: Any) -> Any:
        """``factory(media/path)`` for row ``i`` (keyword arguments are ignored)."""
        assert self.factory is not None
        return self.factory(os.path.join(self.media, str(self.paths[i])))


# ------------------------------------------------------------------------------ decode-only ceiling


class DecodeOnlyDataset(ClipDataset):
    """Reads the sampled clips with the table's sources and returns only their frame count."""

    def make_item(self, video: int, rng: np.random.Generator) -> dict[str, Any]:
        """Decodes the clips of ``video``; the item is ``{"frames": n}``."""
        _, rgb, _ = self.read_video_clips(video, rng)
        return {"frames": sum(int(clip.shape[0]) for clip in rgb)}


# ------------------------------------------------------------------------------ CoCLR-style PIL


def coclr_lmdb_images(
    env: Any, video_id: int, indices: Sequence[int] | np.ndarray
) -> list[Image.Image]:
    """CoCLR's LMDB read: unpack the whole record, PIL-decode each sampled frame (repeats too)."""
    with env.begin(write=False) as txn:
        raw = msgpack.loads(txn.get(b"%09d" % video_id), raw=True)
    return [Image.open(io.BytesIO(raw[int(i)])).convert("RGB") for i in indices]


def folder_images(directory: str, indices: Sequence[int] | np.ndarray) -> list[Image.Image]:
    """Per-frame PIL reading of an ``image_%05d.jpg`` folder (name built from the index)."""
    return [
        Image.open(os.path.join(directory, frame_file_name("image", int(i) + 1))).convert("RGB")
        for i in indices
    ]


def _crop_box(rng: np.random.Generator, width: int, height: int) -> tuple[int, int, int, int]:
    """CoCLR ``RandomSizedCrop`` box: area U(0.2, 1), aspect U(3/4, 4/3), w/h swap p=0.5."""
    for _ in range(10):
        area = rng.uniform(0.2, 1.0) * width * height
        aspect = rng.uniform(3 / 4, 4 / 3)
        w, h = round(np.sqrt(area * aspect)), round(np.sqrt(area / aspect))
        if rng.random() < 0.5:
            w, h = h, w
        if w <= width and h <= height:
            x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            return x, y, x + w, y + h
    side = min(width, height)  # fallback: the centred square
    x, y = (width - side) // 2, (height - side) // 2
    return x, y, x + side, y + side


def _adjust_hue(image: Image.Image, shift: float) -> Image.Image:
    hsv = np.array(image.convert("HSV"))
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + round(shift * 255)) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


class PilCoclrAugment:
    """CoCLR's two-view augmentation done frame by frame on PIL images.

    Parameters are drawn once per clip (CoCLR's per-``seq_len`` consistency) and applied to every
    frame: crop + bicubic resize, colour jitter (0.4, 0.4, 0.4, 0.1) p=0.8 in random op order,
    channel-split grey p=0.2 (channel drawn per frame), Gaussian blur σ ∈ [0.1, 2] p=0.5 and flip
    for ``base``; crop + flip for ``null``; then ``ToTensor`` per frame and the ImageNet
    normalisation. The views follow `CoclrViewPolicy.plan`.

    Args:
        size: output side.
    """

    def __init__(self, size: int = 128) -> None:
        self.size = size
        self.policy = CoclrViewPolicy()
        self.mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(3, 1, 1, 1)

    def view(self, frames: list[Image.Image], strong: bool, rng: np.random.Generator) -> Any:
        """One ``C×T×H×W`` float view of a clip of PIL frames.

        Draw order: crop, jitter, grey, blur, flip.
        """
        box = _crop_box(rng, *frames[0].size)
        jitter: list[Callable[[Image.Image], Image.Image]] = []
        grey, radius = None, None
        if strong:
            if rng.random() < 0.8:
                b, c, s = (rng.uniform(0.6, 1.4) for _ in range(3))
                h = rng.uniform(-0.1, 0.1)
                ops = [
                    lambda im: ImageEnhance.Brightness(im).enhance(b),
                    lambda im: ImageEnhance.Contrast(im).enhance(c),
                    lambda im: ImageEnhance.Color(im).enhance(s),
                    lambda im: _adjust_hue(im, h),
                ]
                jitter = [ops[k] for k in rng.permutation(4)]
            if rng.random() < 0.2:
                grey = rng.integers(0, 3, size=len(frames)).tolist()  # channel per frame
            if rng.random() < 0.5:
                radius = rng.uniform(0.1, 2.0)
        flip = rng.random() < 0.5
        out = []
        for t, frame in enumerate(frames):
            image = frame.crop(box).resize((self.size, self.size), Image.Resampling.BICUBIC)
            for op in jitter:
                image = op(image)
            if grey is not None:
                channel = image.split()[grey[t]]
                image = Image.merge("RGB", (channel, channel, channel))
            if radius is not None:
                image = image.filter(ImageFilter.GaussianBlur(radius))
            if flip:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            out.append(torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div(255))
        clip = torch.stack(out, dim=1)
        return (clip - self.mean) / self.std

    def __call__(
        self, clips: list[list[Image.Image]], rng: np.random.Generator
    ) -> tuple[list[torch.Tensor], list[int]]:
        """The two views and the clip each came from."""
        plan = self.policy.plan(rng)
        return [self.view(clips[c], strong, rng) for c, strong in plan], [c for c, _ in plan]


class PilClipDataset(ClipDataset):
    """CoCLR-style two-clip dataset over an LMDB or frame folders: per-frame PIL everything.

    Args:
        table: an ``lmdb`` or ``frames`` table.
        sampler: the clip sampler (same as ours, so the same clips are read).
        size: output side.
    """

    def __init__(self, table: VideoTable, sampler: Any, size: int) -> None:
        super().__init__(table, sampler)
        self.augment = PilCoclrAugment(size)
        self._ids: dict[str, int] | None = None
        if table.storage == "lmdb":
            self._ids = lmdb_store.read_index(table.media).lookup()  # CoCLR: name → id at init
            lmdb_store.close_readers()

    def _images(self, video: int, indices: np.ndarray) -> list[Image.Image]:
        path = str(self.table.paths[video])
        if self._ids is not None:
            env = lmdb_store.shared_reader(self.table.media).env
            return coclr_lmdb_images(env, self._ids[path], indices)
        return folder_images(os.path.join(self.table.media, path), indices)

    def make_item(self, video: int, rng: np.random.Generator) -> dict[str, Any]:
        """Two clips → PIL frames → two per-frame-augmented views."""
        n_frames = int(self.table.n_frames[video])
        if n_frames < 0:
            n_frames = len(self.table.source(video))
        clips = self.sampler(n_frames, rng)
        frames = self._images(video, np.concatenate([clip.indices for clip in clips]))
        per_clip, start = [], 0
        for clip in clips:
            per_clip.append(frames[start : start + len(clip.indices)])
            start += len(clip.indices)
        views, clip_ids = self.augment(per_clip, rng)
        item: dict[str, Any] = {"views": views}
        item.update(self.base_item(video, [clips[i] for i in clip_ids]))
        return item
