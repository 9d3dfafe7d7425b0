"""Parsing helpers shared by the catalog readers: annotation lines, paths, class lists.

Every problem in an annotation file is a `DataError` whose message starts with ``FILE:LINE:``, so a
user can jump to the offending line.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path, PurePosixPath

from vidssl.errors import DataError

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv")
_LOOSE_DROP = re.compile(r"[()'\"]")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[/\\]")


def match_key(name: str) -> str:
    """The key under which names are matched loosely: case-folded, spaces as ``_``, no ``()'"``.

    It makes ``HandstandPushups`` meet ``HandStandPushups`` (UCF101) and ``air drumming`` meet
    ``air_drumming`` (Kinetics folders); exact names are always tried first.
    """
    return _LOOSE_DROP.sub("", name.casefold().replace(" ", "_"))


def require_file(path: Path, expected: str) -> Path:
    """Returns ``path`` if it is a file, else raises a `DataError` that says what was expected."""
    if not path.is_file():
        raise DataError(f"{path} not found; expected {expected}")
    return path


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror})") from None


def annotation_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yields ``(line_number, stripped_text)`` for the non-blank lines of a text file (1-based)."""
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        text = line.strip()
        if text:
            yield number, text


def csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Yields ``(line_number, fields)`` for the non-blank rows of a CSV file, fields stripped."""
    reader = csv.reader(io.StringIO(_read_text(path)))
    for fields in reader:
        if any(field.strip() for field in fields):
            yield reader.line_num, [field.strip() for field in fields]


def relative_video_path(text: str, source: Path, line: int) -> str:
    """Validates a path read from an annotation and returns it in ``a/b/c`` form.

    Backslashes become ``/``; ``.`` parts, empty parts and a trailing ``/`` are dropped.

    Raises:
        DataError: the path is absolute, contains ``..`` or is empty.
    """
    path = text.strip().replace("\\", "/")
    if path.startswith("/") or _WINDOWS_DRIVE.match(text.strip()):
        raise DataError(
            f"{source}:{line}: absolute path {text!r}; expected a path relative to the media"
            " directory"
        )
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise DataError(f"{source}:{line}: path {text!r} contains '..'; expected Class/video")
    if not parts:
        raise DataError(f"{source}:{line}: empty video path")
    return "/".join(parts)


def strip_video_extension(path: str) -> str:
    """Drops a video-container suffix (``.avi``, ``.mp4``, ...) from a path, if it has one."""
    suffix = PurePosixPath(path).suffix
    return path[: -len(suffix)] if suffix.lower() in VIDEO_EXTENSIONS else path


def read_class_list(path: Path) -> tuple[str, ...]:
    """Reads a class list: ``classInd.txt`` lines ``<id> <name>`` (1-based) or one name per line.

    Raises:
        DataError: the ids are not 1..N in order, a name repeats, or the file lists no class.
    """
    names: list[str] = []
    for number, text in annotation_lines(path):
        first, _, rest = text.partition(" ")
        if first.isdigit() and rest.strip():
            if int(first) != len(names) + 1:
                raise DataError(
                    f"{path}:{number}: class id {first}; expected {len(names) + 1} (ids 1..N in"
                    " order)"
                )
            name = rest.strip()
        else:
            name = text
        if name in names:
            raise DataError(f"{path}:{number}: class {name!r} listed twice")
        names.append(name)
    if not names:
        raise DataError(f"{path} lists no class; expected '<id> <name>' or '<name>' lines")
    return tuple(names)


class ClassLookup:
    """Maps class names to ids: the exact name first, then a unique loose (`match_key`) match."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self._exact = {name: index for index, name in enumerate(self.names)}
        loose: dict[str, list[int]] = {}
        for index, name in enumerate(self.names):
            loose.setdefault(match_key(name), []).append(index)
        self._loose = {key: ids[0] for key, ids in loose.items() if len(ids) == 1}

    def get(self, name: str) -> int | None:
        """The id of ``name``, or ``None`` if no class (or more than one, loosely) matches."""
        index = self._exact.get(name)
        return index if index is not None else self._loose.get(match_key(name))

    def require(self, name: str, source: Path, line: int, listed_in: str) -> int:
        """Like `get`, but an unknown name is a `DataError` naming the file and line."""
        index = self.get(name)
        if index is None:
            raise DataError(f"{source}:{line}: unknown class {name!r} (not in {listed_in})")
        return index


def first_existing(candidates: Iterable[Path]) -> Path | None:
    """The first path of ``candidates`` that exists, or ``None``."""
    return next((path for path in candidates if path.exists()), None)
