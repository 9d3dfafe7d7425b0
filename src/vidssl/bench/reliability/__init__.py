"""``vidssl bench reliability``: fault injection scenarios, measured, one report row each.

Each scenario group is a module of this package with

    run(workdir: pathlib.Path, quick: bool) -> list[vidssl.bench.reliability.rows.Row]

``workdir`` is an empty directory the group may fill; ``quick`` asks for the small sizes the
test suite can afford (seconds), the default for the sizes the committed report was measured at.
`GROUPS` names the modules in report order.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

from vidssl.bench.reliability.rows import Row, markdown_table
from vidssl.errors import UserError

__all__ = ["GROUPS", "Row", "markdown_table", "run_groups"]

#: Scenario group -> module under ``vidssl.bench.reliability`` (report order).
GROUPS: dict[str, str] = {}


def run_groups(names: list[str], workdir: Path, quick: bool) -> tuple[list[Row], dict[str, float]]:
    """Runs the named groups (each in its own sub-directory of ``workdir``).

    Returns:
        The rows of every group in order, and each group's wall time in seconds.

    Raises:
        UserError: an unknown group name.
    """
    unknown = [name for name in names if name not in GROUPS]
    if unknown:
        raise UserError(f"--groups {','.join(unknown)}: expected some of {', '.join(GROUPS)}")
    rows: list[Row] = []
    seconds: dict[str, float] = {}
    for name in names:
        module = importlib.import_module(f"vidssl.bench.reliability.{GROUPS[name]}")
        directory = workdir / name
        directory.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        rows.extend(module.run(directory, quick))
        seconds[name] = time.perf_counter() - start
    return rows, seconds
