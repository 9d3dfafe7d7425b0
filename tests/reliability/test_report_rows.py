"""The reliability report's rows, table and group runner."""

from __future__ import annotations

import pytest

from vidssl.bench.reliability import GROUPS, run_groups
from vidssl.bench.reliability.rows import Row, markdown_table, row_from_dict
from vidssl.errors import UserError


def test_table_has_one_line_per_row_with_escaped_cells_and_formatted_figures():
    rows = [
        Row("data", "10 % bad", "zero|byte", "completed", "skipping a.avi", "none", 1.5,
            {"ratio": 0.91234, "skipped": 3}),
        Row("disk", "ENOSPC", "write fails", "kept previous", passed=False),
    ]  # fmt: skip
    lines = markdown_table(rows).splitlines()
    assert len(lines) == 4
    assert lines[2] == (
        "| data | 10 % bad | zero\\|byte | completed | `skipping a.avi` | none | 1.50 "
        "| ratio 0.912, skipped 3 | ✓ |"
    )
    assert lines[3] == "| disk | ENOSPC | write fails | kept previous | – | none | – | – | ✗ |"


def test_rows_round_trip_through_their_dict():
    row = Row("scale", "240k catalog", "metadata only", "built", figures={"seconds": 2.0})
    assert row_from_dict(row.to_dict()) == row


def test_an_unknown_group_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="--groups nope: expected some of"):
        run_groups(["nope"], tmp_path, quick=True)
    assert all(isinstance(module, str) for module in GROUPS.values())
