"""``vidssl bench reliability``: run the fault-injection scenarios and write the report.

The scenarios live in `vidssl.bench.reliability`; this module only parses arguments.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``bench reliability`` options."""
    parser.add_argument("--groups", help="comma-separated scenario groups (default: all)")
    parser.add_argument("--quick", action="store_true", help="the small sizes the tests use")
    parser.add_argument("--out", type=Path, metavar="FILE.json", help="write the JSON rows")
    parser.add_argument("--table", type=Path, metavar="FILE.md", help="write the markdown table")
    parser.add_argument("--work-dir", type=Path, help="keep the scenarios' files here")


def run(args: argparse.Namespace) -> int:
    """Runs the groups, prints the table; exit code 1 when a row failed."""
    from vidssl.bench.common import environment, write_report
    from vidssl.bench.reliability import GROUPS, markdown_table, run_groups
    from vidssl.utils.io import atomic_write_text

    names = [g for g in (args.groups or ",".join(GROUPS)).split(",") if g]
    if args.work_dir is not None:
        args.work_dir.mkdir(parents=True, exist_ok=True)
        rows, seconds = run_groups(names, args.work_dir, args.quick)
    else:
        with tempfile.TemporaryDirectory(prefix="vidssl-reliability-") as tmp:
            rows, seconds = run_groups(names, Path(tmp), args.quick)
    table = markdown_table(rows)
    print(table)
    report = {
        "environment": environment(),
        "quick": args.quick,
        "group_seconds": seconds,
        "rows": [row.to_dict() for row in rows],
    }
    write_report(args.out, report)
    if args.table:
        atomic_write_text(args.table, table + "\n")
    failed = [row.scenario for row in rows if not row.passed]
    if failed:
        print(f"{len(failed)} scenario(s) failed: {'; '.join(failed)}")
        return 1
    return 0
