from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from tests.engine_toy import ToyConfig, ToyMethod, toy_config

from vidssl.config.schema import MethodConfig
from vidssl.errors import ConfigError
from vidssl.methods.base import BaseMethod
from vidssl.methods.registry import build_method, method_class, register_method, registered_methods


def test_lookup_and_name_attribute() -> None:
    assert {"toy", "toy_variant"} <= set(registered_methods())
    assert method_class("toy") is ToyMethod and ToyMethod.method_name == "toy"
    assert register_method("toy")(ToyMethod) is ToyMethod  # same class again: allowed


def test_unknown_name_lists_registered_methods() -> None:
    with pytest.raises(ConfigError) as info:
        method_class("tyo")
    message = str(info.value)
    assert message.startswith("unknown method.name 'tyo'; did you mean 'toy'? (registered: ")
    assert "toy_variant" in message and "\n" not in message


def test_registration_errors() -> None:
    @dataclass
    class OtherConfig(MethodConfig):
        name: str = "toy"

    class Other(BaseMethod):
        config_class = OtherConfig

    with pytest.raises(ValueError, match="method name 'toy' is already registered by ToyMethod"):
        register_method("toy")(Other)
    with pytest.raises(TypeError, match="needs a BaseMethod subclass"):
        register_method("plain")(torch.nn.Linear)  # type: ignore[arg-type]


def test_build_method_seeds_initial_weights(tmp_path: Path) -> None:
    first = build_method(toy_config(tmp_path))
    second = build_method(toy_config(tmp_path))
    other_seed = build_method(toy_config(tmp_path, "trainer.seed=1"))
    assert isinstance(first, ToyMethod) and isinstance(first.cfg.method, ToyConfig)
    assert torch.equal(first.head.weight, second.head.weight)
    assert not torch.equal(first.head.weight, other_seed.head.weight)


def test_build_method_rejects_a_foreign_method_section(tmp_path: Path) -> None:
    cfg = toy_config(tmp_path)
    cfg.method = MethodConfig(name="toy")
    with pytest.raises(
        ConfigError, match="method section is a MethodConfig, but method 'toy' expects ToyConfig"
    ):
        build_method(cfg)
