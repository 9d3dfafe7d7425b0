"""UCF101 from its official lists (``ucfTrainTestlist/``), and UCF101 source groups.

Official layout under ``root``::

    ucfTrainTestlist/classInd.txt        "1 ApplyEyeMakeup" ... (1-based ids)
    ucfTrainTestlist/trainlist0K.txt     "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"
    ucfTrainTestlist/testlist0K.txt      "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"
    UCF-101/<Class>/v_<Class>_gXX_cYY.avi    (default media)

classInd spells ``HandstandPushups`` while the video files say ``HandStandPushups``; class names
and media names are matched case-insensitively, so either spelling works in lists and folders.

Source groups: the clips ``v_Class_gXX_c*`` are cut from one source video (group ``XX``), so they
are "siblings" that contrastive methods must not treat as negatives (CoCLR, CPR). A video's group
id is ``label * 100 + XX``; with CoCLR's ``video_source.json`` (``v_Class_gXX -> int``) given as
``video_source=``, its ids are used instead.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from vidssl.data.catalogs.files import (
    ClassLookup,
    annotation_lines,
    match_key,
    read_class_list,
    relative_video_path,
    require_file,
    strip_video_extension,
)
from vidssl.data.catalogs.table import SplitEntries, register
from vidssl.errors import DataError

LIST_DIR = "ucfTrainTestlist"
_CLIP_NAME = re.compile(r"^(?P<source>v_.+_g(?P<group>\d{2}))_c\d+$")


def _load_video_source(video_source: str | os.PathLike | Mapping[str, int]) -> dict[str, int]:
    if isinstance(video_source, Mapping):
        return {str(key): int(value) for key, value in video_source.items()}
    path = Path(video_source)
    require_file(path, "CoCLR's video_source.json ({'v_Class_gXX': id, ...})")
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(mapping, dict):
        raise DataError(f"{path}: expected a JSON object {{'v_Class_gXX': id}}")
    return {str(key): int(value) for key, value in mapping.items()}


def source_groups(
    videos: np.ndarray,
    labels: np.ndarray,
    video_source: str | os.PathLike | Mapping[str, int] | None = None,
) -> np.ndarray:
    """Source-group ids of UCF101-style clips ``.../v_Class_gXX_cYY``.

    Args:
        videos: unicode video ids (the last path part is the clip name).
        labels: int64 class ids of the videos.
        video_source: CoCLR's ``video_source.json`` (path or mapping ``v_Class_gXX -> int``);
            without it the group is ``label * 100 + XX``.

    Returns:
        int64 [N]; -1 where a name does not follow the ``v_Class_gXX_cYY`` pattern.

    Raises:
        DataError: ``video_source`` has no entry for a video's source.
    """
    mapping = _load_video_source(video_source) if video_source is not None else None
    loose = {match_key(key): value for key, value in mapping.items()} if mapping else {}
    groups = np.full(len(videos), -1, dtype=np.int64)
    for row, (video, label) in enumerate(zip(np.asarray(videos).tolist(), labels.tolist())):
        match = _CLIP_NAME.match(video.rpartition("/")[2])
        if match is None:
            continue
        if mapping is None:
            groups[row] = label * 100 + int(match.group("group"))
            continue
        source = match.group("source")
        group = mapping.get(source, loose.get(match_key(source)))
        if group is None:
            raise DataError(f"video_source has no entry {source!r} (for video {video!r})")
        groups[row] = group
    return groups


def _read_split_line(
    fields: list[str], classes: ClassLookup, split_file: Path, line: int
) -> tuple[str, int]:
    if len(fields) > 2:
        raise DataError(
            f"{split_file}:{line}: {len(fields)} fields; expected 'Class/v_X.avi [<class id>]'"
        )
    path = relative_video_path(fields[0], split_file, line)
    class_dir, _, video = path.partition("/")
    if not video:
        raise DataError(f"{split_file}:{line}: path {fields[0]!r}; expected Class/v_X.avi")
    label = classes.require(class_dir, split_file, line, "classInd.txt")
    if len(fields) == 2:
        if not fields[1].lstrip("-").isdigit():
            raise DataError(f"{split_file}:{line}: class id {fields[1]!r} is not an integer")
        if int(fields[1]) != label + 1:
            raise DataError(
                f"{split_file}:{line}: class id {fields[1]} but classInd.txt gives {class_dir!r}"
                f" id {label + 1}"
            )
    return strip_video_extension(path), label


def _default_media(root: Path, split: str, entries: SplitEntries) -> list[Path]:
    return [root / "UCF-101"]


@register(
    "ucf101",
    splits=("train", "test"),
    split_ids=(1, 2, 3),
    default_media=_default_media,
    layout=f"{LIST_DIR}/{{classInd,trainlist0K,testlist0K}}.txt (and UCF-101/ as media)",
)
def read_ucf101(
    root: Path,
    split: str,
    split_id: int,
    *,
    video_source: str | os.PathLike | Mapping[str, int] | None = None,
) -> SplitEntries:
    """Reads ``ucfTrainTestlist/{train,test}list0K.txt`` with ``classInd.txt``.

    Args:
        root: directory holding ``ucfTrainTestlist/``.
        split: 'train' or 'test'.
        split_id: 1, 2 or 3.
        video_source: optional CoCLR ``video_source.json`` (path or mapping) for the groups.
    """
    list_dir = root / LIST_DIR
    class_file = require_file(
        list_dir / "classInd.txt", f"{LIST_DIR}/classInd.txt under {root} (official UCF101 lists)"
    )
    classes = ClassLookup(read_class_list(class_file))
    name = f"{split}list{split_id:02d}.txt"
    split_file = require_file(list_dir / name, f"{LIST_DIR}/{name} under {root}")
    videos: list[str] = []
    labels: list[int] = []
    for line, text in annotation_lines(split_file):
        video, label = _read_split_line(text.split(), classes, split_file, line)
        videos.append(video)
        labels.append(label)
    video_array = np.array(videos, dtype=str)
    label_array = np.array(labels, dtype=np.int64)
    return SplitEntries(
        videos=video_array,
        labels=label_array,
        class_names=classes.names,
        annotation=split_file,
        groups=source_groups(video_array, label_array, video_source),
    )
