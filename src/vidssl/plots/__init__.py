"""Plots of runs and results.

`core`: loss curves, recall@k bars, frame strips and retrieval grids; `palette`: one colour per
method, the same in every plot and table; `panels`: small multiples for comparing methods (R@k per
stream, linear-probe bars, per-stage training curves, training diagnostics). Every function writes
one PNG atomically and returns its path; matplotlib runs on the ``Agg`` backend.
"""

from vidssl.plots.core import (
    frame_strip,
    plot_loss_curves,
    plot_recall_bars,
    plot_retrieval_grid,
    read_metric_curve,
)

__all__ = [
    "frame_strip",
    "plot_loss_curves",
    "plot_recall_bars",
    "plot_retrieval_grid",
    "read_metric_curve",
]
