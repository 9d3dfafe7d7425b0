"""Multi-stage schedules: planning, override routing, errors, and a tiny end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.data.dataset_helpers import tiny_synth

from vidssl import cli
from vidssl.errors import ConfigError
from vidssl.train.pretraining import run_pretraining
from vidssl.train.schedule import (
    _stage_overrides,
    is_schedule,
    load_schedule,
    plan_stages,
    run_schedule,
    split_overrides,
)


def test_is_schedule_by_name():
    assert is_schedule("coclr/ucf101_schedule") and is_schedule("x/my_schedule.yaml")
    assert not is_schedule("coclr/ucf101_rgb")


def test_ucf101_schedule_plan_seeds_each_stage_from_the_newest_right_streams():
    spec = load_schedule("coclr/ucf101_schedule")
    root = Path("r")
    stages = plan_stages(spec, root)
    assert [s.label for s in stages] == [
        "rgb_infonce", "flow_infonce", "cycle1_rgb_coclr", "cycle1_flow_coclr",
        "cycle2_rgb_coclr", "cycle2_flow_coclr",
    ]  # fmt: skip
    assert [s.directory.name for s in stages][:3] == [
        "01_rgb_infonce", "02_flow_infonce", "03_cycle1_rgb_coclr",
    ]  # fmt: skip
    d = {s.index: s.directory for s in stages}
    assert stages[0].pretrain_dirs == () and stages[1].pretrain_dirs == ()
    assert stages[2].pretrain_dirs == (d[1], d[2])  # RGB from InfoNCE-RGB, mining by InfoNCE-flow
    assert stages[3].pretrain_dirs == (d[2], d[3])  # flow from InfoNCE-flow, RGB of cycle 1
    assert stages[4].pretrain_dirs == (d[3], d[4])
    assert stages[5].pretrain_dirs == (d[4], d[5])


def _write(tmp_path, text):
    path = tmp_path / "bad_schedule.yaml"
    path.write_text(text)
    return path


def test_schedule_errors_name_the_problem(tmp_path):
    seeded_by_nothing = (
        "kind: schedule\ncycle:\n"
        "  - {name: a, preset: coclr/tiny, stream: rgb, pretrain: [rgb, flow]}\n"
    )
    with pytest.raises(
        ConfigError, match=r"stage cycle1_a is seeded by stream\(s\) \['rgb', 'flow'\]"
    ):
        load_schedule(_write(tmp_path, seeded_by_nothing))
    with pytest.raises(ConfigError, match="unknown keys \\['stagez'\\]"):
        load_schedule(_write(tmp_path, "kind: schedule\nstagez: []\n"))
    with pytest.raises(ConfigError, match="stream 'depth' is not one of"):
        load_schedule(
            _write(tmp_path, "kind: schedule\nseed:\n  - {name: a, preset: p, stream: depth}\n")
        )
    with pytest.raises(ConfigError, match="is not a schedule"):
        load_schedule(_write(tmp_path, "method: {name: infonce}\n"))


def test_overrides_are_routed_to_settings_stages_and_flow_media():
    names = ["flow_infonce", "rgb_coclr"]
    settings, common, per_stage = split_overrides(
        ["cycles=3", "trainer.run_dir=out", "data.root=D", "data.media=RGB", "data.flow_media=F",
         "rgb_coclr.method.topk=3"], names,
    )  # fmt: skip
    assert settings == {"cycles": "3", "trainer.run_dir": "out"}
    assert common == ["data.root=D", "data.media=RGB", "data.flow_media=F"]
    assert per_stage == {"rgb_coclr": ["method.topk=3"]}
    stages = {s.spec.name: s for s in plan_stages(load_schedule("coclr/tiny_schedule"), Path("o"))}
    flow = _stage_overrides(stages["flow_infonce"], common, [])
    assert "data.media=F" in flow and "data.media=RGB" not in flow
    assert not any(o.startswith("data.flow_media") for o in flow)
    coclr = _stage_overrides(stages["rgb_coclr"], common, per_stage["rgb_coclr"])
    assert {"data.media=RGB", "data.flow_media=F", "method.topk=3"} <= set(coclr)
    assert coclr[-1] == "method.pretrain=[o/01_rgb_infonce,o/02_flow_infonce]"


class _InterruptError(Exception):
    pass


@pytest.mark.slow
def test_tiny_schedule_runs_resumes_after_interruption_and_tables_every_stage(tmp_path, capsys):
    from vidssl.data.flow.dataset import extract_flow_dataset

    root = tiny_synth(tmp_path / "synth")
    extract_flow_dataset(
        root / "UCF-101",
        root / "tvl1_flow",
        source_kind="videos",
        method="farneback",
        workers=1,
        progress=False,
    )
    run_dir = tmp_path / "sched"
    overrides = [f"data.root={root}", f"trainer.run_dir={run_dir}", "data.batch_size=2",
                 "trainer.max_steps=2", "trainer.progress_bar_refresh=0"]  # fmt: skip
    calls = []
    interrupted = []

    def interrupted_in_stage_3(cfg, source=""):
        calls.append(source)
        if cfg.trainer.run_dir.endswith("03_cycle1_rgb_coclr") and not interrupted:
            interrupted.append(True)
            cfg.trainer.max_steps = 1  # train one step (a checkpoint exists), then "get killed"
            run_pretraining(cfg, source)
            raise _InterruptError
        return run_pretraining(cfg, source)

    with pytest.raises(_InterruptError):
        run_schedule("coclr/tiny_schedule", overrides, pretrain_fn=interrupted_in_stage_3)
    stage3 = run_dir / "03_cycle1_rgb_coclr"
    assert (stage3 / "checkpoints" / "last.ckpt").is_file() and not (stage3 / "stage.json").exists()
    calls.clear()
    records = run_schedule("coclr/tiny_schedule", overrides, pretrain_fn=interrupted_in_stage_3)
    assert calls == ["coclr/tiny", "coclr/tiny_flow"]  # stages 1-2 were not run again
    assert [r.label for r in records] == [
        "rgb_infonce", "flow_infonce", "cycle1_rgb_coclr", "cycle1_flow_coclr",
    ]  # fmt: skip
    assert [r.global_step for r in records] == [2, 2, 2, 2]  # stage 3 went on from step 1
    for record in records:
        assert set(record.retrieval) >= {"R@1", "R@5", "R@10", "R@20", "R@50"}
        assert 0.0 <= record.retrieval["R@1"] <= 1.0
    summary = json.loads((run_dir / "schedule.json").read_text())
    assert [s["label"] for s in summary["stages"]] == [r.label for r in records]
    table = (run_dir / "schedule.md").read_text().splitlines()
    assert len(table) == 2 + 4 and "cycle1_flow_coclr" in table[-1]
    # the frozen stream of the flow CoCLR stage is the RGB model the cycle just trained
    flow_cfg = (run_dir / "04_cycle1_flow_coclr" / "config.yaml").read_text()
    assert str(stage3) in flow_cfg and str(run_dir / "02_flow_infonce") in flow_cfg
    # the whole schedule again through the CLI: everything is finished, the table is printed
    assert cli.main(["pretrain", "coclr/tiny_schedule", *overrides]) == 0
    assert "| 4 | cycle1_flow_coclr | flow |" in capsys.readouterr().out


def test_cycles_and_evaluate_overrides_with_stub_stages(tmp_path):
    from vidssl.train.pretraining import PretrainResult

    trained = []

    def fake_pretrain(cfg, source=""):
        trained.append((source, cfg.trainer.run_dir, list(getattr(cfg.method, "pretrain", []))))
        run_dir = Path(cfg.trainer.run_dir)
        return PretrainResult(run_dir, run_dir / "encoder", 7, 1.5, 0.1, ())

    def no_retrieval(*args, **kwargs):
        raise AssertionError("evaluate=false must skip retrieval")

    records = run_schedule(
        "coclr/tiny_schedule", [f"trainer.run_dir={tmp_path}", "cycles=2", "evaluate=false"],
        pretrain_fn=fake_pretrain, retrieval_fn=no_retrieval,
    )  # fmt: skip
    assert [r.label for r in records] == [
        "rgb_infonce", "flow_infonce", "cycle1_rgb_coclr", "cycle1_flow_coclr",
        "cycle2_rgb_coclr", "cycle2_flow_coclr",
    ]  # fmt: skip
    assert [t[0] for t in trained][2:] == ["coclr/tiny", "coclr/tiny_flow"] * 2
    # cycle 2's RGB stage starts from cycle 1's RGB and mines with cycle 1's flow
    assert trained[4][2] == [
        str(tmp_path / "03_cycle1_rgb_coclr"),
        str(tmp_path / "04_cycle1_flow_coclr"),
    ]
    assert all(r.retrieval == {} and r.global_step == 7 for r in records)
    assert (
        "| 6 | cycle2_flow_coclr | flow | – | – | – | 7 |" in (tmp_path / "schedule.md").read_text()
    )
