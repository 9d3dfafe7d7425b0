"""Optical-flow extraction throughput; same as ``vidssl bench flow`` (see its ``--help``).

Full measurement (a few minutes on 2 cores):
    python benchmarks/bench_flow.py --out benchmarks/results/flow.json
"""

from __future__ import annotations

import sys

from vidssl.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "flow", *sys.argv[1:]]))
