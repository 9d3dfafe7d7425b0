"""``report.md``: its table is summary.json's numbers, its findings name this run's numbers."""

from __future__ import annotations

import re

from vidssl.demo.report import best_init, findings, format_report, format_table

STREAMS = ("rgb", "flow", "rgb+flow")


def _values(r1: float, linear: float) -> dict[str, float]:
    return {
        "R@1": r1,
        "R@5": r1 + 0.1,
        "R@10": 0.9,
        "R@20": 1.0,
        "R@50": 1.0,
        "linear_top1": linear,
    }


def _summary() -> dict:
    results = {
        stream: {
            "coclr": _values(0.30 + i / 100, 0.50),
            "random": _values(0.125, 0.25),
            "pretrained": _values(0.40 - i / 10, 0.45),
        }
        for i, stream in enumerate(STREAMS)
    }
    return {
        "results": results,
        "timings": {"synth": 1.0, "eval": 2.5, "total": 3.5},
        "settings": {"seed": 0, "classes": 10},
        "plots": {"recall": "recall_at_k.png", "grid": "retrieval_grid.png"},
        "chance": 0.1,
        "diagnostics": {
            "CoCLR rgb": {"train/mining_recall": 0.125},
            "ViCC rgb (cross)": {
                "train/code_agreement": 0.5,
                "train/code_agreement_other_class": 0.25,
            },
        },
    }


def test_table_rows_follow_the_palette_order():
    rows = format_table(_summary()["results"]).splitlines()[2:5]
    assert [row.split("|")[2].strip() for row in rows] == ["random", "pretrained", "coclr"]


def test_report_table_equals_the_summary_numbers():
    summary = _summary()
    report = format_report(summary)
    rows = re.findall(
        r"^\| (rgb\+flow|rgb|flow) \| (\w+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$",
        report,
        flags=re.M,
    )
    assert len(rows) == 9
    for stream, init, r1, r5, linear in rows:
        values = summary["results"][stream][init]
        assert float(r1) == round(100 * values["R@1"], 1)
        assert float(r5) == round(100 * values["R@5"], 1)
        assert float(linear) == round(100 * values["linear_top1"], 1)
    assert "![R@k per stream (chance dashed)](recall_at_k.png)" in report
    assert "| eval | 2.5 |" in report and "| seed | 0 |" in report


def test_best_init_and_findings_name_this_runs_numbers():
    summary = _summary()
    # rgb: pretrained 40 % > coclr 30 %; rgb+flow: coclr 32 % > pretrained 20 %
    assert best_init(summary["results"], "rgb") == "pretrained"
    assert best_init(summary["results"]) == "coclr"
    text = findings(summary)
    assert (
        "On rgb, the best pre-trained encoder (InfoNCE) beats random initialisation at R@1: "
        "40.0 % vs 12.5 % (linear top-1 45.0 % vs 25.0 %)." in text
    )
    assert "On rgb+flow, the best pre-trained encoder (CoCLR) beats" in text
    assert (
        "Co-training (CoCLR) does not improve on single-stream InfoNCE on rgb R@1: "
        "30.0 % vs 40.0 %." in text
    )
    assert (
        "CoCLR rgb: class recall of mined positives 12.5 % after the queue warm-up "
        "(chance 10.0 %)." in text
    )
