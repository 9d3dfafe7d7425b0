"""Dataset catalogs: official split/annotation files → a numpy-backed `VideoTable`.

A catalog is two steps. A *reader* (one module per dataset, registered with `register`) parses the
annotation files of one split into `SplitEntries`: video ids such as ``'Class/v_X_g01_c01'``,
labels, source groups and the class list. `load` then binds those ids to the pixels in ``media``
(`vidssl.data.sources.media`): a directory of video files, a directory of frame folders, or a
CoCLR LMDB,
detected from the path. Videos the split lists but the media lacks are dropped, counted in
`VideoTable.missing` and logged once.

Everything per video is a numpy array (unicode paths, int64 labels / frame counts / groups), so
DataLoader workers share the table without copy-on-read of Python objects.

Built-in catalogs: ``ucf101``, ``hmdb51``, ``kinetics400``, ``coclr_csv`` (CoCLR split CSVs) and
``csv`` (generic ``path,label``). A new dataset is one module that calls `register`.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vidssl.data.catalogs.files import match_key, strip_video_extension
from vidssl.errors import DataError, UserError

if TYPE_CHECKING:
    from vidssl.data.sources import FrameSource

logger = logging.getLogger(__name__)

STORAGES = ("video", "frames", "lmdb")
_BUILTIN_MODULES = (
    "vidssl.data.catalogs.ucf101",
    "vidssl.data.catalogs.hmdb51",
    "vidssl.data.catalogs.kinetics",
    "vidssl.data.catalogs.csv",
)


@dataclass(frozen=True, eq=False)
class VideoTable:
    """The videos of one dataset split, bound to one media store; numpy arrays only.

    Attributes:
        name: catalog name ('ucf101', 'hmdb51', 'kinetics400', 'coclr_csv', 'csv', ...).
        split: 'train', 'test' or 'val'.
        media: absolute path of the video directory, frame-folder directory or LMDB.
        storage: 'video', 'frames' or 'lmdb'.
        paths: unicode [N]; the video's path relative to ``media`` (with its file extension for
            storage 'video'), or its 'Class/video' name in the LMDB.
        labels: int64 [N] class ids (-1 = none), or [N, C] multi-hot for multi-label sets.
        n_frames: int64 [N] frame counts; -1 = unknown until the source is opened.
        groups: int64 [N] source-group ids (UCF101 ``gXX`` siblings share one), -1 = none.
        class_names: class id → name.
        missing: how many videos of the split were not found in ``media`` (left out).
    """

    name: str
    split: str
    media: str
    storage: str
    paths: np.ndarray
    labels: np.ndarray
    n_frames: np.ndarray
    groups: np.ndarray
    class_names: tuple[str, ...]
    missing: int = 0

    def __post_init__(self) -> None:
        if self.storage not in STORAGES:
            raise ValueError(f"storage {self.storage!r}; expected one of {STORAGES}")
        if self.paths.dtype.kind != "U":
            raise TypeError(f"paths must be a numpy unicode array, got {self.paths.dtype}")
        for field in ("labels", "n_frames", "groups"):
            array = getattr(self, field)
            if array.dtype != np.int64:
                raise TypeError(f"{field} must be int64, got {array.dtype}")
            if len(array) != len(self.paths):
                raise ValueError(f"{field} has {len(array)} rows, paths has {len(self.paths)}")

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: Sequence[int] | np.ndarray) -> VideoTable:
        """A table of the rows ``indices`` (integer positions, or a boolean mask), in that order."""
        index = np.asarray(indices)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        index = index.astype(np.int64, copy=False)
        return dataclasses.replace(
            self,
            paths=self.paths[index],
            labels=self.labels[index],
            n_frames=self.n_frames[index],
            groups=self.groups[index],
        )

    def source(self, i: int, **kwargs: Any) -> FrameSource:
        """Opens video ``i`` as a `vidssl.data.sources.base` frame source.

        Args:
            i: row of the table.
            **kwargs: passed to the source (e.g. ``threads`` for `VideoFile`, ``min_short_side``
                for `FrameFolder` and `LmdbVideo`).

        Returns:
            ``VideoFile(media/path)``, ``FrameFolder(media/path)`` or ``LmdbVideo(media, path)``.
        """
        sources = importlib.import_module("vidssl.data.sources.base")
        path = str(self.paths[i])
        if self.storage == "lmdb":
            return sources.LmdbVideo(self.media, path, **kwargs)
        full_path = os.path.join(self.media, path)
        if self.storage == "frames":
            return sources.FrameFolder(full_path, **kwargs)
        return sources.VideoFile(full_path, **kwargs)

    def video_keys(self) -> np.ndarray:
        """Storage-independent keys of the videos (no file extension, loosely normalised).

        The same video has the same key in an RGB table, its flow table and its LMDB table.
        """
        strip = strip_video_extension if self.storage == "video" else (lambda path: path)
        return np.array([match_key(strip(path)) for path in self.paths.tolist()], dtype=str)


def align(*tables: VideoTable) -> tuple[VideoTable, ...]:
    """Restricts tables (e.g. RGB and flow of one split) to the videos all of them hold.

    Rows follow the first table's order, so row ``i`` is the same video in every returned table.
    The number of videos dropped is logged.
    """
    if not tables:
        return ()
    keys = [table.video_keys() for table in tables]
    common = keys[0]
    for other in keys[1:]:
        common = common[np.isin(common, other)]
    aligned = []
    for table, table_keys in zip(tables, keys):
        position = {key: row for row, key in enumerate(table_keys.tolist())}
        aligned.append(table.subset([position[key] for key in common.tolist()]))
    dropped = max(len(table) for table in tables) - len(common)
    if dropped:
        logger.warning(
            "aligning %s tables: %d videos are not in every store and are left out (%d remain)",
            "/".join(table.storage for table in tables),
            dropped,
            len(common),
        )
    return tuple(aligned)


@dataclass(frozen=True)
class SplitEntries:
    """What a catalog reader parses from the annotation of one split, before media binding.

    Attributes:
        videos: unicode [N] video ids relative to the media root, without file extension
            ('Class/v_X_g01_c01'); matched to the media exactly first, then loosely.
        labels: int64 [N] class ids, or [N, C] multi-hot.
        class_names: class id → name.
        annotation: the file the entries come from (for messages).
        groups: int64 [N] source groups, or ``None`` (all -1).
        n_frames: int64 [N] frame counts stated by the annotation, or ``None``.
        media_hint: where the annotation says the pixels are, if it does (CoCLR CSV paths).
    """

    videos: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    annotation: Path
    groups: np.ndarray | None = None
    n_frames: np.ndarray | None = None
    media_hint: Path | None = None


Reader = Callable[..., SplitEntries]
DefaultMedia = Callable[[Path, str, SplitEntries], Sequence[Path]]


@dataclass(frozen=True)
class CatalogSpec:
    """A registered catalog: its reader and what it accepts."""

    name: str
    read: Reader
    splits: tuple[str, ...]
    split_ids: tuple[int, ...]
    default_media: DefaultMedia
    layout: str


_REGISTRY: dict[str, CatalogSpec] = {}


def register(
    name: str,
    *,
    splits: Sequence[str],
    split_ids: Sequence[int] = (1,),
    default_media: DefaultMedia,
    layout: str,
) -> Callable[[Reader], Reader]:
    """Decorator that registers a catalog reader under ``name``.

    The reader is called as ``read(root: Path, split: str, split_id: int, **options)`` and returns
    `SplitEntries`; its keyword-only parameters are the options `load` accepts for it.

    Args:
        name: the catalog name used in `load` and in configs.
        splits: accepted split names.
        split_ids: accepted split numbers.
        default_media: ``(root, split, entries) -> candidate media paths``; the first that exists
            is used when `load` gets no ``media``.
        layout: what ``root`` must hold, for error messages.
    """

    def decorator(read: Reader) -> Reader:
        _REGISTRY[name] = CatalogSpec(
            name, read, tuple(splits), tuple(split_ids), default_media, layout
        )
        return read

    return decorator


def known() -> tuple[str, ...]:
    """Names of the registered catalogs, sorted."""
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
    return tuple(sorted(_REGISTRY))


def _spec(name: str) -> CatalogSpec:
    names = known()
    if name not in _REGISTRY:
        raise UserError(f"unknown dataset {name!r}; known datasets: {', '.join(names)}")
    return _REGISTRY[name]


def _check_options(spec: CatalogSpec, options: dict[str, Any]) -> None:
    parameters = inspect.signature(spec.read).parameters
    accepted = sorted(p.name for p in parameters.values() if p.kind is p.KEYWORD_ONLY)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise UserError(
            f"unknown option(s) {', '.join(unknown)} for dataset {spec.name!r}; accepted:"
            f" {', '.join(accepted) or 'none'}"
        )


def _media_path(spec: CatalogSpec, root: Path, split: str, entries: SplitEntries) -> Path:
    candidates = list(spec.default_media(root, split, entries))
    for candidate in candidates:
        if candidate.exists():
            return candidate
    shown = " or ".join(str(path) for path in candidates) or "(none known)"
    raise DataError(f"no media for {spec.name} {split} found at {shown}; pass media=PATH")


def load(
    name: str,
    root: str | os.PathLike,
    split: str,
    *,
    split_id: int = 1,
    media: str | os.PathLike | None = None,
    **kwargs: Any,
) -> VideoTable:
    """Reads one split of a dataset and binds it to its media.

    Args:
        name: a registered catalog ('ucf101', 'hmdb51', 'kinetics400', 'coclr_csv', 'csv', ...).
        root: the directory holding the annotation / split files.
        split: 'train', 'test' or 'val' (as the catalog accepts).
        split_id: the split number (UCF101 and HMDB51: 1-3).
        media: video directory, frame-folder directory (RGB or flow) or LMDB; default per dataset
            (e.g. ``root/UCF-101``). The storage kind is detected from it.
        **kwargs: catalog options (e.g. ``video_source`` for UCF101, ``annotations`` for CSVs).

    Returns:
        The `VideoTable`; videos absent from ``media`` are left out and counted in ``missing``.

    Raises:
        UserError: unknown dataset, split, split number or option.
        DataError: a missing root, annotation or media, or a malformed annotation line.
    """
    from vidssl.data.sources.media import bind

    spec = _spec(name)
    if split not in spec.splits:
        raise UserError(f"unknown split {split!r} for {name}; expected one of {spec.splits}")
    if split_id not in spec.split_ids:
        first, last = spec.split_ids[0], spec.split_ids[-1]
        shown = f"{first}-{last}" if last != first else str(first)
        raise UserError(f"split_id {split_id} out of range for {name}; expected {shown}")
    _check_options(spec, kwargs)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(
            f"dataset root {root} does not exist; expected a directory with {spec.layout}"
        )
    entries = spec.read(root, split, split_id, **kwargs)
    if len(entries.videos) == 0:
        raise DataError(f"{entries.annotation} lists no video for split {split!r}")
    if media is not None:
        media_path = Path(media).expanduser()
    else:
        media_path = _media_path(spec, root, split, entries)
    binding = bind(media_path, entries.videos, entries.n_frames, annotation=entries.annotation)
    keep = binding.keep
    groups = entries.groups if entries.groups is not None else np.full(len(entries.videos), -1)
    table = VideoTable(
        name=name,
        split=split,
        media=str(media_path.absolute()),
        storage=binding.storage,
        paths=binding.paths,
        labels=np.asarray(entries.labels, dtype=np.int64)[keep],
        n_frames=binding.n_frames,
        groups=np.asarray(groups, dtype=np.int64)[keep],
        class_names=tuple(entries.class_names),
        missing=binding.missing,
    )
    logger.info(
        "%s %s split %d: %d videos, %d classes, %s storage at %s (%d missing)",
        name, split, split_id, len(table), len(table.class_names), table.storage, table.media,
        table.missing,
    )  # fmt: skip
    return table
