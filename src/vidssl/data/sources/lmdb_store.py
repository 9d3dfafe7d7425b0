"""CoCLR-compatible LMDB frame stores.

Layout (CoCLR ``dataset/convert_video_to_lmdb.py``): one LMDB per dataset and modality; video ``i``
is stored under key ``b'%09d' % i`` as ``msgpack.dumps(list_of_jpeg_bytes)`` (frames in sorted
file order); metadata keys ``__keys__`` (byte keys in insertion order), ``__len__`` (video count),
``__order__`` ('Class/video' per id) and ``__vlen__`` (frame counts aligned with ``__keys__``), all
msgpack'ed. Files written by msgpack 0.6 pack str and bytes alike as raw, so everything is read with
``raw=True`` and decoded here.
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import lmdb
import msgpack
import numpy as np
from tqdm import tqdm

from vidssl.data.sources.frame_files import list_frames
from vidssl.errors import DataError, UserError
from vidssl.utils.io import atomic_write_text

logger = logging.getLogger(__name__)

INITIAL_MAP_SIZE = 64 << 20
"""Starting LMDB map size of the writer (it doubles whenever a record does not fit)."""


LmdbError = lmdb.Error
"""Base class of the errors raised by the ``lmdb`` binding."""


def open_env(db_path: str | os.PathLike, *, readonly: bool = True) -> lmdb.Environment:
    """Opens an LMDB the way CoCLR readers do (read-only, no lock, no readahead, no meminit)."""
    db_path = Path(db_path)
    return lmdb.open(
        str(db_path),
        subdir=db_path.is_dir(),
        readonly=readonly,
        lock=False,
        readahead=False,
        meminit=False,
        max_readers=512,
    )


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


@dataclass(frozen=True)
class LmdbIndex:
    """The metadata of a CoCLR LMDB.

    Attributes:
        order: numpy unicode array, ``order[i]`` is the 'Class/video' name of video id ``i``.
        keys: numpy bytes array, the record key of video id ``i`` (``b'%09d' % i``).
        vlen: int64 array, frame count of video id ``i`` (re-aligned to ``order``).
    """

    order: np.ndarray
    keys: np.ndarray
    vlen: np.ndarray

    def lookup(self) -> dict[str, int]:
        """Maps 'Class/video' to its video id."""
        return {name: i for i, name in enumerate(self.order.tolist())}


def read_index(db_path: str | os.PathLike) -> LmdbIndex:
    """Reads ``__order__``, ``__keys__`` and ``__vlen__`` of a CoCLR LMDB.

    ``__vlen__`` is aligned with ``__keys__`` (insertion order), which need not be id order, so it
    is re-sorted by key to line up with ``__order__`` (as CoCLR's flow reader does). The database
    stays open for this process (see `shared_reader`): py-lmdb allows one open per file.

    Raises:
        KeyError: a metadata key is missing (not a CoCLR LMDB).
    """
    reader = shared_reader(db_path)
    order, vlen = _read_metadata(reader.env, db_path)
    keys = np.array([b"%09d" % i for i in range(len(order))], dtype="S9")
    return LmdbIndex(order=np.array([_text(v) for v in order], dtype=str), keys=keys, vlen=vlen)


def _read_metadata(env: lmdb.Environment, db_path: str | os.PathLike) -> tuple[list, np.ndarray]:
    """(``__order__`` entries as stored, frame counts by video id, -1 where unknown)."""
    raw = {}
    with env.begin(write=False) as txn:
        for name in (b"__order__", b"__keys__", b"__vlen__"):
            value = txn.get(name)
            if value is None:
                raise KeyError(f"{db_path} has no {name.decode()} record")
            raw[name] = msgpack.loads(value, raw=True)
    keys_in_insertion = [k if isinstance(k, bytes) else k.encode() for k in raw[b"__keys__"]]
    vlen_by_key = dict(zip(keys_in_insertion, (int(v) for v in raw[b"__vlen__"])))
    order = raw[b"__order__"]
    vlen = np.array([vlen_by_key.get(b"%09d" % i, -1) for i in range(len(order))], np.int64)
    return order, vlen


class LmdbReader:
    """Read access to one CoCLR LMDB: name → id lookup, frame counts, per-video JPEG lists.

    Use `shared_reader`, which opens each database once per process. Metadata is kept in numpy
    arrays (names as UTF-8 bytes), so a reader of a Kinetics-size LMDB costs a few tens of MB and
    forked workers do not touch millions of Python refcounts.
    """

    def __init__(self, db_path: str | os.PathLike) -> None:
        self.db_path = Path(db_path)
        self.pid = os.getpid()
        self.identity: tuple[int, int] | None = None
        self.env = open_env(self.db_path)
        try:
            order, self.vlen = _read_metadata(self.env, self.db_path)
        except BaseException:
            self.env.close()
            raise
        names = np.array([v if isinstance(v, bytes) else v.encode() for v in order], dtype=bytes)
        self._sorted_ids = np.argsort(names, kind="stable")
        self._sorted_names = names[self._sorted_ids]

    def __len__(self) -> int:
        return len(self.vlen)

    def video_id(self, name: str) -> int:
        """The id of video 'Class/video' (trailing slashes ignored).

        Raises:
            KeyError: the name is not in ``__order__``.
        """
        wanted = name.strip("/").encode()
        slot = int(np.searchsorted(self._sorted_names, wanted))
        if slot == len(self._sorted_names) or self._sorted_names[slot] != wanted:
            raise KeyError(f"{name!r} is not in {self.db_path.name} __order__")
        return int(self._sorted_ids[slot])

    def frame_count(self, video_id: int) -> int:
        """Frame count of ``video_id`` from ``__vlen__`` (-1 when the metadata lacks it)."""
        if not 0 <= video_id < len(self.vlen):
            raise KeyError(f"video id {video_id} not in {self.db_path.name} ({len(self)} videos)")
        return int(self.vlen[video_id])

    def record(self, video_id: int) -> list[bytes]:
        """The JPEG bytes of every frame of ``video_id``.

        Raises:
            KeyError: no record under ``b'%09d' % video_id``.
            ValueError: the record is not a msgpack list of bytes.
        """
        with self.env.begin(write=False, buffers=False) as txn:
            value = txn.get(b"%09d" % video_id)
        if value is None:
            raise KeyError(f"no record {video_id:09d} in {self.db_path.name}")
        frames = msgpack.loads(value, raw=True)
        if not isinstance(frames, list) or not all(isinstance(f, bytes) for f in frames):
            raise ValueError(f"record {video_id:09d} is not a list of JPEG bytes")
        return frames


_READERS: dict[str, LmdbReader] = {}


def _file_identity(db_path: Path) -> tuple[int, int]:
    data_file = db_path / "data.mdb" if db_path.is_dir() else db_path
    stat = data_file.stat()
    return stat.st_dev, stat.st_ino


def shared_reader(db_path: str | os.PathLike) -> LmdbReader:
    """The `LmdbReader` of ``db_path`` for this process, opened on first use.

    A reader inherited through fork (DataLoader workers) belongs to the parent: it is closed in the
    child (py-lmdb refuses a second open of a file while the first is registered) and the child
    opens its own. A database replaced on disk since it was opened is reopened.

    Raises:
        lmdb.Error: the database cannot be opened.
        OSError: ``db_path`` does not exist.
        KeyError: it lacks the CoCLR metadata records.
    """
    db_path = Path(db_path)
    path_key = str(db_path.resolve())
    identity = _file_identity(db_path)
    reader = _READERS.get(path_key)
    if reader is not None and (reader.pid != os.getpid() or reader.identity != identity):
        del _READERS[path_key]
        reader.env.close()
        reader = None
    if reader is None:
        reader = _READERS[path_key] = LmdbReader(db_path)
        reader.identity = identity
    return reader


def close_readers() -> None:
    """Closes every reader `shared_reader` opened in this process (they reopen on next use)."""
    for path_key in list(_READERS):
        _READERS.pop(path_key).env.close()


# ----------------------------------------------------------------------------------------- writer


@dataclass(frozen=True)
class LmdbWriteSummary:
    """What `write_lmdb` stored.

    Attributes:
        videos: number of video records.
        frames: total number of frames.
        empty: 'Class/video' names of folders without frames (stored as empty lists, like CoCLR).
    """

    videos: int
    frames: int
    empty: tuple[str, ...]


def coclr_video_order(names: list[str], seed: int = 0) -> list[str]:
    """Video ids as CoCLR assigns them: ``random.seed(seed); random.shuffle(sorted(names))``.

    ``names`` are 'Class/video' strings; position in the returned list is the video id.
    """
    order = sorted(names)
    random.Random(seed).shuffle(order)  # same stream as random.seed(seed) + random.shuffle
    return order


def _video_folders(frames_root: Path) -> dict[str, list[str]]:
    """Class name → sorted video folder names, for the ``Class/video/`` layout (hidden skipped)."""
    layout = {}
    for class_dir in sorted(frames_root.iterdir()):
        if class_dir.is_dir() and not class_dir.name.startswith("."):
            layout[class_dir.name] = sorted(
                entry.name
                for entry in class_dir.iterdir()
                if entry.is_dir() and not entry.name.startswith(".")
            )
    return layout


def _put_growing(env: lmdb.Environment, key: bytes, value: bytes) -> None:
    """Stores one record in its own transaction, doubling the map size while it does not fit."""
    while True:
        try:
            with env.begin(write=True) as txn:
                txn.put(key, value)
            return
        except lmdb.MapFullError:
            new_size = 2 * env.info()["map_size"] + 2 * len(value)
            logger.debug("LMDB map full, growing to %d bytes", new_size)
            env.set_mapsize(new_size)


def write_lmdb(
    frames_root: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    seed: int = 0,
    progress: bool = True,
) -> LmdbWriteSummary:
    """Packs ``frames_root/Class/video/`` frame folders into a CoCLR-layout LMDB file.

    Ids follow `coclr_video_order` (so they match CoCLR's converter on the same folders); records
    are written class by class (sorted), videos sorted within a class, which fixes the order of
    ``__keys__`` and ``__vlen__``. Each record is ``msgpack.dumps`` of the frames' file bytes in
    frame order (not re-encoded). The database is built under a temporary name next to
    ``out_path`` and renamed into place when complete; ``<out_path>-order`` lists the ids' names.

    Raises:
        DataError: ``frames_root`` is missing or holds no ``Class/video`` folders.
        UserError: ``out_path`` is an existing directory.
    """
    frames_root, out_path = Path(frames_root), Path(out_path)
    if not frames_root.is_dir():
        raise DataError(f"frame root {frames_root} does not exist (expected Class/video/ folders)")
    if out_path.is_dir():
        raise UserError(f"LMDB output {out_path} is a directory; expected a file path like x.lmdb")
    layout = _video_folders(frames_root)
    names = [f"{cls}/{video}" for cls, videos in layout.items() for video in videos]
    if not names:
        raise DataError(f"no Class/video/ frame folders under {frames_root}")
    order = coclr_video_order(names, seed)
    video_id = {name: i for i, name in enumerate(order)}

    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp_name)
    keys, vlens, empty = [], [], []
    try:
        env = lmdb.open(
            tmp_name, subdir=False, map_size=INITIAL_MAP_SIZE, lock=False, meminit=False, sync=False
        )
        try:
            for name in tqdm(names, desc="lmdb", unit="video", disable=None if progress else True):
                frame_bytes = [path.read_bytes() for path in list_frames(frames_root / name)]
                if not frame_bytes:
                    empty.append(name)
                key = b"%09d" % video_id[name]
                _put_growing(env, key, msgpack.dumps(frame_bytes))
                keys.append(key)
                vlens.append(len(frame_bytes))
            for meta_key, value in (
                (b"__keys__", keys),
                (b"__len__", len(keys)),
                (b"__order__", order),
                (b"__vlen__", vlens),
            ):
                _put_growing(env, meta_key, msgpack.dumps(value))
            env.sync(True)
        finally:
            env.close()
        atomic_write_text(Path(f"{out_path}-order"), "\n".join(order))
        os.replace(tmp_path, out_path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    if empty:
        logger.warning("%d empty frame folders stored as empty records: %s", len(empty), empty[:5])
    return LmdbWriteSummary(videos=len(keys), frames=int(sum(vlens)), empty=tuple(empty))
