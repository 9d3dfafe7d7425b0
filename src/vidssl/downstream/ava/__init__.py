"""AVA v2.2 spatio-temporal action detection (SEVERE): evaluator, RoI head, dataset.

Public API: `evaluate_files` (frame-mAP@0.5 on the official files).
"""

from vidssl.downstream.ava.evaluate import evaluate, evaluate_files

__all__ = ["evaluate", "evaluate_files"]
