"""CoCLR-compatible LMDB frame stores.

Layout (CoCLR ``dataset/convert_video_to_lmdb.py``): one LMDB per dataset and modality; video ``i``
is stored under key ``b'%09d' % i`` as ``msgpack.dumps(list_of_jpeg_bytes)`` (frames in sorted
file order); metadata keys ``__keys__`` (byte keys in insertion order), ``__len__`` (video count),
``__order__`` ('Class/video' per id) and ``__vlen__`` (frame counts aligned with ``__keys__``), all
msgpack'ed. Files written by msgpack 0.6 pack str and bytes alike as raw, so everything is read with
``raw=True`` and decoded here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def open_env(db_path: str | os.PathLike, *, readonly: bool = True):  # -> lmdb.Environment
    """Opens an LMDB the way CoCLR readers do (read-only, no lock, no readahead, no meminit)."""
    import lmdb

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
    is re-sorted by key to line up with ``__order__`` (as CoCLR's flow reader does).

    Raises:
        KeyError: a metadata key is missing (not a CoCLR LMDB).
    """
    import msgpack

    env = open_env(db_path)
    try:
        with env.begin(write=False) as txn:
            raw = {}
            for name in (b"__order__", b"__keys__", b"__vlen__"):
                value = txn.get(name)
                if value is None:
                    raise KeyError(f"{db_path} has no {name.decode()} record")
                raw[name] = msgpack.loads(value, raw=True)
    finally:
        env.close()
    order = np.array([_text(v) for v in raw[b"__order__"]], dtype=str)
    keys_in_insertion = [k if isinstance(k, bytes) else k.encode() for k in raw[b"__keys__"]]
    vlen_by_key = dict(zip(keys_in_insertion, (int(v) for v in raw[b"__vlen__"])))
    keys = np.array([b"%09d" % i for i in range(len(order))], dtype="S9")
    vlen = np.array([vlen_by_key.get(k, -1) for k in keys], dtype=np.int64)
    return LmdbIndex(order=order, keys=keys, vlen=vlen)
