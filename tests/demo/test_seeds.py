"""Mean ± std over demo seeds, paired differences, and the table written from them."""

from __future__ import annotations

import pytest

from vidssl.demo.seeds import aggregate, parse_seeds, seeds_markdown, spread
from vidssl.errors import UserError


def _summary(rgb_infonce, rgb_coclr, flow_coclr=None, recall=0.0):
    def metrics(r1):
        return {"R@1": r1, "R@5": recall, "linear_top1": 0.5}

    flow = {"pretrained": metrics(0.2)}
    if flow_coclr is not None:
        flow["coclr"] = metrics(flow_coclr)
    return {
        "chance": 0.1,
        "results": {
            "rgb": {"random": metrics(0.1), "pretrained": metrics(rgb_infonce),
                    "coclr": metrics(rgb_coclr)},
            "flow": flow,
        },
        "diagnostics": {"coclr_rgb": {"mining_recall": recall}},
    }  # fmt: skip


def test_spread_is_the_mean_and_sample_std():
    value = spread([0.1, 0.2, 0.3])
    assert value["mean"] == pytest.approx(0.2)
    assert value["std"] == pytest.approx(0.1)  # sqrt(((-.1)^2 + 0 + .1^2) / (3 - 1))
    assert spread([0.4])["std"] == 0.0


def test_aggregate_pairs_differences_by_seed_and_drops_inits_missing_from_a_run():
    # InfoNCE rgb R@1 varies a lot over seeds (0.2, 0.4, 0.6) while CoCLR is always 0.05 above:
    # the paired difference has std 0 although each init's own std is 0.2.
    runs = [
        _summary(0.2, 0.25, flow_coclr=0.3, recall=0.2),
        _summary(0.4, 0.45, flow_coclr=0.3, recall=0.3),
        _summary(0.6, 0.65, flow_coclr=None, recall=0.4),
    ]
    agg = aggregate(runs, [0, 1, 2])
    coclr = agg["results"]["rgb"]["coclr"]["R@1"]
    assert coclr["mean"] == pytest.approx(0.45) and coclr["std"] == pytest.approx(0.2)
    diff = agg["paired"]["rgb"]["coclr"]["R@1"]
    assert diff["mean"] == pytest.approx(0.05) and diff["std"] == pytest.approx(0.0, abs=1e-12)
    assert agg["paired"]["rgb"]["random"]["R@1"]["values"] == pytest.approx([-0.1, -0.3, -0.5])
    assert "coclr" not in agg["results"]["flow"]  # seed 2 has no flow CoCLR row
    assert agg["diagnostics"]["coclr_rgb"]["mining_recall"]["mean"] == pytest.approx(0.3)
    assert agg["seeds"] == [0, 1, 2] and agg["chance"] == 0.1


def test_markdown_rows_are_percent_mean_and_std_in_palette_order():
    # flow CoCLR − InfoNCE: 0.3 − 0.2 and 0.5 − 0.2 → +20 ± 14.1 points
    runs = [_summary(0.2, 0.25, flow_coclr=0.3), _summary(0.4, 0.45, flow_coclr=0.5)]
    lines = seeds_markdown(aggregate(runs, [3, 7])).splitlines()
    assert lines[0] == "Mean ± sample std over seeds 3, 7 (%; chance 10.0)."
    rows = [line for line in lines if line.startswith("| rgb |")]
    assert rows[:3] == [
        "| rgb | random init | 10.0 ± 0.0 | 0.0 ± 0.0 | 50.0 ± 0.0 |",
        "| rgb | InfoNCE | 30.0 ± 14.1 | 0.0 ± 0.0 | 50.0 ± 0.0 |",
        "| rgb | CoCLR | 35.0 ± 14.1 | 0.0 ± 0.0 | 50.0 ± 0.0 |",
    ]
    assert "| rgb | CoCLR − InfoNCE | +5.0 ± 0.0 | +0.0 ± 0.0 | +0.0 ± 0.0 |" in lines
    assert "| flow | CoCLR − InfoNCE | +20.0 ± 14.1 | +0.0 ± 0.0 | +0.0 ± 0.0 |" in lines


def test_no_runs_and_bad_seed_lists_are_user_errors():
    with pytest.raises(UserError, match="no demo runs"):
        aggregate([], [])
    assert parse_seeds("0, 1,2") == [0, 1, 2]
    for text in ("", "a,b", "1.5"):
        with pytest.raises(UserError, match=f"--seeds {text}: expected comma-separated"):
            parse_seeds(text)


def test_repeated_seeds_are_refused_before_anything_runs(tmp_path):
    from vidssl.demo.seeds import run_seeds

    def never(seed):  # pragma: no cover - must not be called
        raise AssertionError(seed)

    with pytest.raises(UserError, match="--seeds 1,1: expected distinct seeds"):
        run_seeds(tmp_path, [1, 1], never)
    assert not any(tmp_path.iterdir())
