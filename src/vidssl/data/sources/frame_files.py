"""Frame-folder naming conventions shared by readers, catalogs and writers.

Supported names (1-based numbering in all reference tools):
``image_%05d.jpg`` (CoCLR / MemDPC RGB), ``flow_%05d.jpg`` (CoCLR flow), ``frame%06d.jpg``
(twostreamfusion / PCL), ``img_%05d.jpg`` (mmaction2 RGB). A folder holds one naming only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

FRAME_NAME = re.compile(r"^(image_|flow_|frame|img_)(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)
RGB_TEMPLATE = "image_{:05d}.jpg"
FLOW_TEMPLATE = "flow_{:05d}.jpg"


def list_frames(directory: str | os.PathLike) -> list[Path]:
    """Returns the frame files of one video folder, sorted by frame number.

    Raises:
        FileNotFoundError: ``directory`` does not exist.
    """
    directory = Path(directory)
    numbered = []
    for entry in os.scandir(directory):
        match = FRAME_NAME.match(entry.name)
        if match:
            numbered.append((int(match.group(2)), entry.name))
    numbered.sort()
    return [directory / name for _, name in numbered]


def count_frames(directory: str | os.PathLike) -> int:
    """Number of frame files in ``directory`` (0 if it holds none)."""
    return sum(1 for entry in os.scandir(directory) if FRAME_NAME.match(entry.name))


FRAME_TEMPLATES = {
    "image": RGB_TEMPLATE,
    "frame": "frame{:06d}.jpg",
    "flow": FLOW_TEMPLATE,
    "img": "img_{:05d}.jpg",
}
"""Naming scheme → file-name template (numbering starts at 1)."""


def frame_file_name(naming: str, number: int) -> str:
    """The file name of frame ``number`` (1-based) under ``naming`` ('image', 'frame', ...).

    Raises:
        KeyError: unknown naming scheme.
    """
    return FRAME_TEMPLATES[naming].format(number)


def find_frame_folders(root: str | os.PathLike) -> list[Path]:
    """Leaf directories below ``root`` (at any depth), sorted: the frame folders of a frame root.

    Hidden directories (including ``.name.partial-*`` leftovers of killed runs) are ignored. A leaf
    directory that holds no frames is still returned, so that callers can report it as empty.
    """
    leaves = []
    for current, subdirs, _files in os.walk(root):
        subdirs[:] = sorted(name for name in subdirs if not name.startswith("."))
        if not subdirs and Path(current) != Path(root):
            leaves.append(Path(current))
    return sorted(leaves)
