from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tests.engine_toy import ToyConfig

from vidssl.config.schema import Config, available_presets, config_differences, save_resolved
from vidssl.errors import ConfigError
from vidssl.methods.registry import load_config


def write_yaml(path: Path, tree: dict) -> Path:
    path.write_text(yaml.safe_dump(tree))
    return path


@pytest.fixture
def toy_yaml(tmp_path: Path) -> Path:
    return write_yaml(
        tmp_path / "toy.yaml",
        {
            "defaults": ["base/adam_multistep"],
            "method": {"name": "toy", "hidden": 6},
            "schedule": {"milestones": [250, 280]},
            "trainer": {"epochs": 300},
        },
    )


def test_preset_inheritance_file_and_overrides_in_order(toy_yaml: Path) -> None:
    cfg = load_config(toy_yaml, ["optim.lr=5e-4", "method.dropout=0.5"])
    assert isinstance(cfg, Config) and isinstance(cfg.method, ToyConfig)
    # from base/adam_multistep.yaml
    assert (cfg.optim.name, cfg.optim.weight_decay, cfg.optim.betas) == ("adam", 1e-5, (0.9, 0.999))
    assert (cfg.schedule.name, cfg.schedule.gamma) == ("multistep", 0.1)
    # from the file itself, then the overrides
    assert cfg.schedule.milestones == [250, 280] and cfg.trainer.epochs == 300
    assert cfg.optim.lr == 5e-4 and cfg.method.dropout == 0.5 and cfg.method.hidden == 6
    # untouched dataclass defaults
    assert cfg.data.batch_size == 32 and cfg.trainer.nan_policy == "stop"


def test_relative_yaml_bases_merge_deeply_and_later_wins(tmp_path: Path) -> None:
    write_yaml(tmp_path / "a.yaml", {"optim": {"lr": 0.1, "momentum": 0.5}, "data": {"ds": 2}})
    write_yaml(tmp_path / "b.yaml", {"defaults": "a.yaml", "optim": {"lr": 0.2}})
    child = write_yaml(
        tmp_path / "c.yaml", {"defaults": ["b.yaml", "base/tiny"], "method": {"name": "toy"}}
    )
    cfg = load_config(child)
    assert (cfg.optim.lr, cfg.optim.momentum, cfg.data.ds) == (0.2, 0.5, 2)
    assert (cfg.data.img_size, cfg.trainer.accelerator) == (32, "cpu")  # from base/tiny


def test_inheritance_cycle_is_reported(tmp_path: Path) -> None:
    write_yaml(tmp_path / "a.yaml", {"defaults": "b.yaml"})
    write_yaml(tmp_path / "b.yaml", {"defaults": "a.yaml"})
    with pytest.raises(ConfigError, match=r"config inheritance cycle: a.yaml -> b.yaml -> a.yaml"):
        load_config(tmp_path / "a.yaml")


@pytest.mark.parametrize(
    ("override", "attribute", "expected"),
    [
        ("optim.lr=1e-2", ("optim", "lr"), 0.01),
        ("optim.lr=3", ("optim", "lr"), 3.0),
        ("trainer.devices=2", ("trainer", "devices"), "2"),
        ("trainer.precision=16-mixed", ("trainer", "precision"), "16-mixed"),
        ("trainer.precision=32", ("trainer", "precision"), "32"),
        ("schedule.milestones=[80, 90]", ("schedule", "milestones"), [80, 90]),
        ("optim.betas=[0.5,0.9]", ("optim", "betas"), (0.5, 0.9)),
        ("optim.lr_mult.backbone=0.1", ("optim", "lr_mult"), {"backbone": 0.1}),
        ("data.drop_last=false", ("data", "drop_last"), False),
        ("data.drop_last=yes", ("data", "drop_last"), True),
        ("data.media=null", ("data", "media"), None),
        ("data.media=/x/y.lmdb", ("data", "media"), "/x/y.lmdb"),
        ("model.proj_hidden_dim=512", ("model", "proj_hidden_dim"), 512),
        ("trainer.epochs=10.0", ("trainer", "epochs"), 10),
    ],
)
def test_override_coercion(toy_yaml: Path, override: str, attribute: tuple, expected) -> None:
    cfg = load_config(toy_yaml, [override])
    value = getattr(getattr(cfg, attribute[0]), attribute[1])
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lrr=0.1", "unknown config key 'optim.lrr'; did you mean 'optim.lr'?"),
        ("optimm.lr=0.1", "unknown config key 'optimm'; did you mean 'optim'?"),
        ("method.hiden=3", "unknown config key 'method.hiden'; did you mean 'method.hidden'?"),
        ("optim.lr=abc", "optim.lr='abc' is not a float"),
        ("trainer.epochs=2.5", "trainer.epochs=2.5 is not an int"),
        ("data.drop_last=maybe", "data.drop_last='maybe' is not a bool (true/false)"),
        ("schedule.milestones=80", "schedule.milestones=80 is not a list of int"),
        (
            "schedule.milestones=[90,80]",
            "schedule.milestones=[90, 80] is not a strictly increasing",
        ),
        ("data.batch_size=0", "data.batch_size=0 is not a positive int"),
        ("trainer.devices=two", "trainer.devices='two' is not 'auto' or a positive int"),
        ("optim=3", "optim=3 is not a section (keys: name, lr,"),
        ("optim.lr", "bad override 'optim.lr': expected key=value"),
        ("method.name=toyy", "unknown method.name 'toyy'; did you mean 'toy'?"),
        ("optim.lr_mult.backbone=x", "optim.lr_mult.backbone='x' is not a float"),
        (
            "schedule.warmup_epochs=2",
            "schedule.warmup_epochs=2.0 is not 0 when schedule.warmup_multipliers is set",
        ),
    ],
)
def test_bad_keys_and_values_give_one_line_errors(
    toy_yaml: Path, override: str, message: str
) -> None:
    extra = ["schedule.warmup_multipliers=[0.1,1]"] if "warmup_epochs" in override else []
    with pytest.raises(ConfigError) as info:
        load_config(toy_yaml, [*extra, override])
    text = str(info.value)
    assert "\n" not in text
    assert message in text


def test_precision_choices_message_lists_all(toy_yaml: Path) -> None:
    with pytest.raises(ConfigError, match=r"one of 'auto', '32', 'bf16-mixed', '16-mixed'$"):
        load_config(toy_yaml, ["trainer.precision=fp8"])


def test_unknown_method_lists_registered_names(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "x.yaml", {"method": {"name": "zzz_nothing"}})
    with pytest.raises(ConfigError, match=r"unknown method.name 'zzz_nothing'.*registered: .*toy"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"config has no 'method.name'"):
        load_config(write_yaml(tmp_path / "y.yaml", {"optim": {"lr": 0.1}}))


def test_unknown_preset_suggests_closest() -> None:
    assert {"base/adam_multistep", "base/larc_cosine", "base/tiny"} <= set(available_presets())
    with pytest.raises(
        ConfigError, match=r"unknown preset 'base/larc_cosin'; did you mean 'base/larc_cosine'\?"
    ):
        load_config("base/larc_cosin")
    with pytest.raises(ConfigError, match=r"config file /nonexistent/x.yaml does not exist"):
        load_config("/nonexistent/x.yaml")


def test_vicc_base_preset_values(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path / "v.yaml", {"defaults": "base/larc_cosine", "method": {"name": "toy"}}
    )
    cfg = load_config(path)
    o, s = cfg.optim, cfg.schedule
    assert (o.name, o.lr, o.weight_decay, o.momentum, o.larc_trust, o.larc_clip) == (
        "larc_sgd", 0.6, 1e-6, 0.9, 0.001, False,
    )  # fmt: skip
    assert (s.name, s.min_lr, s.warmup_epochs) == ("cosine", 6e-4, 0.0)


def test_interpolation_is_resolved_after_overrides(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path / "i.yaml",
        {"method": {"name": "toy"}, "trainer": {"run_dir": "runs/${method.name}_${optim.lr}"}},
    )
    assert load_config(path, ["optim.lr=0.5"]).trainer.run_dir == "runs/toy_0.5"
    bad = write_yaml(
        tmp_path / "b.yaml", {"method": {"name": "toy"}, "trainer": {"run_dir": "${nope}"}}
    )
    with pytest.raises(ConfigError, match=r"^config interpolation failed: "):
        load_config(bad)


def test_save_resolved_round_trips_and_records_environment(toy_yaml: Path, tmp_path: Path) -> None:
    cfg = load_config(toy_yaml, ["optim.lr_mult.backbone=0.1", "optim.betas=[0.8,0.9]"])
    run_dir = tmp_path / "run"
    save_resolved(cfg, run_dir)
    assert load_config(run_dir / "config.yaml") == cfg
    env = json.loads((run_dir / "env.json").read_text())
    assert {"python", "versions", "cuda_devices", "git_commit", "command"} <= set(env)
    assert env["versions"]["torch"].startswith("2.") and env["versions"]["lightning"]
    assert env["versions"]["numpy"] and "av" in env["versions"]


def test_config_differences_ignore_run_control_keys(toy_yaml: Path) -> None:
    a = load_config(toy_yaml).to_dict()
    b = load_config(toy_yaml, ["trainer.max_steps=5", "data.workers=0", "optim.lr=0.5"]).to_dict()
    c = load_config(toy_yaml, ["method.hidden=9", "schedule.milestones=[1]"]).to_dict()
    assert config_differences(a, b) == ["optim.lr"]
    assert config_differences(a, c) == ["method.hidden", "schedule.milestones"]
