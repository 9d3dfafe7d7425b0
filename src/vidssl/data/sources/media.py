"""Binding catalog video ids to the pixels: storage detection and per-video lookup.

Three storage kinds, detected from the media path:

- ``'lmdb'``: a ``.lmdb`` file, or a directory holding ``data.mdb`` (CoCLR layout); a video is
  found by its 'Class/video' name in ``__order__`` and its frame count is ``__vlen__``.
- ``'frames'``: a directory of ``Class/video/`` frame folders (``image_%05d.jpg``,
  ``frame%06d.jpg``, ``flow_%05d.jpg``, ...); frame counts are counted.
- ``'video'``: a directory of ``Class/video.ext`` files; frame counts are unknown (-1) unless the
  annotation states them.

Names are matched exactly first, then loosely (`match_key`: case, spaces/underscores), and only
directories a video id leads to are listed, so stray folders (UCF101's ``TSP_Flows``) are never
looked at. A directory whose matched videos are mostly folders is 'frames', else 'video'.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vidssl.data.catalogs.files import VIDEO_EXTENSIONS, match_key
from vidssl.data.sources.frame_files import count_frames
from vidssl.errors import DataError

logger = logging.getLogger(__name__)
_EXAMPLES = 3


@dataclass(frozen=True)
class MediaBinding:
    """The part of a split found in a media store.

    Attributes:
        storage: 'video', 'frames' or 'lmdb'.
        keep: int64 positions (into the split's video ids) of the videos found, in split order.
        paths: unicode, per kept video: path relative to the media root, or LMDB name.
        n_frames: int64, per kept video (-1 = unknown).
        missing: number of split videos not found.
    """

    storage: str
    keep: np.ndarray
    paths: np.ndarray
    n_frames: np.ndarray
    missing: int


def is_lmdb(media: Path) -> bool:
    """Whether ``media`` is an LMDB: a ``.lmdb`` file or a directory holding ``data.mdb``."""
    if media.is_dir():
        return (media / "data.mdb").is_file()
    return media.is_file() and media.suffix == ".lmdb"


def _loose_pick(exact: dict[str, str], loose: dict[str, list[str]], name: str) -> str | None:
    hit = exact.get(name)
    if hit is not None:
        return hit
    candidates = loose.get(match_key(name), [])
    return candidates[0] if len(candidates) == 1 else None


@dataclass
class _Listing:
    """One media directory: sub-directories and video files, by exact and by loose name."""

    dirs: dict[str, str] = field(default_factory=dict)
    loose_dirs: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # stem → file name
    loose_files: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def scan(cls, directory: Path) -> _Listing:
        listing = cls()
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError:
            return listing
        for entry in entries:
            if entry.is_dir():
                listing.dirs[entry.name] = entry.name
                listing.loose_dirs.setdefault(match_key(entry.name), []).append(entry.name)
                continue
            stem, suffix = os.path.splitext(entry.name)
            if suffix.lower() in VIDEO_EXTENSIONS and stem not in listing.files:
                listing.files[stem] = entry.name
                listing.loose_files.setdefault(match_key(stem), []).append(entry.name)
        return listing


class _DirectoryIndex:
    """Lists media directories on demand (each once) and finds videos in them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._listings: dict[str, _Listing] = {}
        self._resolved: dict[str, str | None] = {"": ""}

    def _listing(self, relative_dir: str) -> _Listing:
        if relative_dir not in self._listings:
            self._listings[relative_dir] = _Listing.scan(self.root / relative_dir)
        return self._listings[relative_dir]

    def _resolve_dir(self, wanted: str) -> str | None:
        """The actual relative path of directory ``wanted`` ('A/B'), or ``None``."""
        if wanted not in self._resolved:
            parent, _, name = wanted.rpartition("/")
            actual_parent = self._resolve_dir(parent)
            actual = None
            if actual_parent is not None:
                listing = self._listing(actual_parent)
                found = _loose_pick(listing.dirs, listing.loose_dirs, name)
                if found is not None:
                    actual = f"{actual_parent}/{found}" if actual_parent else found
            self._resolved[wanted] = actual
        return self._resolved[wanted]

    def find(self, video_id: str) -> tuple[str | None, str | None]:
        """``(video file, frame folder)`` relative paths for ``video_id``; ``None`` if absent."""
        parent, _, stem = video_id.rpartition("/")
        actual_parent = self._resolve_dir(parent)
        if actual_parent is None:
            return None, None
        listing = self._listing(actual_parent)
        prefix = f"{actual_parent}/" if actual_parent else ""
        file_name = _loose_pick(listing.files, listing.loose_files, stem)
        dir_name = _loose_pick(listing.dirs, listing.loose_dirs, stem)
        return (
            prefix + file_name if file_name is not None else None,
            prefix + dir_name if dir_name is not None else None,
        )


def _bind_directory(
    media: Path, videos: list[str], annotation_counts: np.ndarray | None
) -> MediaBinding:
    index = _DirectoryIndex(media)
    found = [index.find(video) for video in tqdm(videos, desc="finding videos", disable=None)]
    n_files = sum(file is not None for file, _ in found)
    n_dirs = sum(folder is not None for _, folder in found)
    storage = "frames" if n_dirs > n_files else "video"
    slot = 1 if storage == "frames" else 0
    keep = np.array([i for i, hit in enumerate(found) if hit[slot] is not None], dtype=np.int64)
    paths = np.array([found[i][slot] for i in keep.tolist()], dtype=str)
    if storage == "frames":
        counts = [
            count_frames(media / path)
            for path in tqdm(paths.tolist(), desc="counting frames", disable=None)
        ]
        n_frames = np.array(counts, dtype=np.int64)
        empty = np.flatnonzero(n_frames == 0)
        if len(empty):
            logger.warning(
                "%d frame folders in %s hold no frame files (e.g. %s); they are kept with 0 frames",
                len(empty), media, ", ".join(paths[empty[:_EXAMPLES]].tolist()),
            )  # fmt: skip
    elif annotation_counts is not None:
        n_frames = np.asarray(annotation_counts, dtype=np.int64)[keep]
    else:
        n_frames = np.full(len(keep), -1, dtype=np.int64)
    return MediaBinding(storage, keep, paths.astype(str), n_frames, len(videos) - len(keep))


def _bind_lmdb(
    media: Path, videos: list[str], annotation_counts: np.ndarray | None
) -> MediaBinding:
    import lmdb

    from vidssl.data.sources.lmdb_store import read_index

    try:
        index = read_index(media)
    except KeyError as error:
        raise DataError(f"{media} is not a CoCLR LMDB: {error.args[0]}") from None
    except lmdb.Error as error:
        raise DataError(f"{media} cannot be opened as an LMDB: {error}") from None
    names = index.order.tolist()
    exact = {name: name for name in names}
    loose: dict[str, list[str]] = {}
    for name in names:
        loose.setdefault(match_key(name), []).append(name)
    row_of = {name: row for row, name in enumerate(names)}
    hits = [_loose_pick(exact, loose, video) for video in videos]
    keep = np.array([i for i, hit in enumerate(hits) if hit is not None], dtype=np.int64)
    rows = np.array([row_of[hits[i]] for i in keep.tolist()], dtype=np.int64)
    n_frames = index.vlen[rows] if len(rows) else np.zeros(0, dtype=np.int64)
    if annotation_counts is not None:
        stated = np.asarray(annotation_counts, dtype=np.int64)[keep]
        n_frames = np.where(n_frames >= 0, n_frames, stated)
    paths = index.order[rows] if len(rows) else np.zeros(0, dtype=str)
    return MediaBinding("lmdb", keep, paths, n_frames.astype(np.int64), len(videos) - len(keep))


def bind(
    media: Path,
    videos: np.ndarray,
    annotation_counts: np.ndarray | None = None,
    *,
    annotation: Path | None = None,
) -> MediaBinding:
    """Finds the videos ``videos`` ('Class/video' ids, no extension) in ``media``.

    Args:
        media: a video directory, a frame-folder directory or an LMDB.
        videos: unicode video ids from the annotation.
        annotation_counts: frame counts the annotation states, used where the storage has none
            (video files; LMDB records without ``__vlen__``). Counted frame folders and LMDB
            ``__vlen__`` win, because a flow store holds one frame fewer than its RGB annotation.
        annotation: the annotation file, for messages.

    Returns:
        The `MediaBinding`; videos not found are logged once (count and examples).

    Raises:
        DataError: ``media`` does not exist, is not a readable store, or holds none of the videos.
    """
    if not media.exists():
        raise DataError(
            f"media {media} does not exist; expected a directory of Class/video files or frame"
            " folders, or a CoCLR .lmdb"
        )
    video_list = [str(video) for video in np.asarray(videos).tolist()]
    if is_lmdb(media):
        binding = _bind_lmdb(media, video_list, annotation_counts)
    elif media.is_dir():
        binding = _bind_directory(media, video_list, annotation_counts)
    else:
        raise DataError(f"media {media} is neither a directory nor an .lmdb file")
    listed = f" listed in {annotation}" if annotation is not None else ""
    if len(binding.keep) == 0:
        raise DataError(
            f"none of the {len(video_list)} videos{listed} is in {media} (e.g."
            f" {video_list[0]!r}); expected Class/video files, Class/video/ frame folders or a"
            " CoCLR LMDB"
        )
    if binding.missing:
        found = np.zeros(len(video_list), dtype=bool)
        found[binding.keep] = True
        examples = [video_list[i] for i in np.flatnonzero(~found)[:_EXAMPLES].tolist()]
        logger.warning(
            "%d of %d videos%s are not in %s (%s storage) and are left out, e.g. %s",
            binding.missing, len(video_list), listed, media, binding.storage,
            ", ".join(examples),
        )  # fmt: skip
    return binding
