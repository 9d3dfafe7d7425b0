"""Method registry: maps the config's ``method.name`` to a `BaseMethod` subclass.

A method module registers its class with ``@register_method("infonce")``. `method_class` imports
every module of `vidssl.methods` the first time a name is not found, so a method is available as
soon as its file exists.

Loading a training config needs the method's schema, so it is asked of the registry:
`load_config` (preset or YAML + overrides) and `config_from_tree` (a plain dict).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from vidssl.config.parse import closest_key_hint
from vidssl.config.schema import Config, MethodConfig, build_config, read_config_tree
from vidssl.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    from vidssl.methods.base import BaseMethod

MethodT = TypeVar("MethodT", bound="type[BaseMethod]")

_METHODS: dict[str, type[BaseMethod]] = {}
_NOT_METHOD_MODULES = frozenset({"base", "registry", "losses"})
_scanned = False


def register_method(name: str) -> Callable[[MethodT], MethodT]:
    """Class decorator: registers a `BaseMethod` subclass under ``name``.

    The class must set ``config_class`` to a `MethodConfig` subclass. Registering a second,
    different class under an existing name is a programming error (`ValueError`).
    """

    def decorator(cls: MethodT) -> MethodT:
        from vidssl.methods.base import BaseMethod

        if not (isinstance(cls, type) and issubclass(cls, BaseMethod)):
            raise TypeError(f"@register_method('{name}') needs a BaseMethod subclass, got {cls!r}")
        if not issubclass(cls.config_class, MethodConfig):
            raise TypeError(f"{cls.__name__}.config_class must subclass MethodConfig")
        previous = _METHODS.get(name)
        if previous is not None and (previous.__module__, previous.__qualname__) != (
            cls.__module__,
            cls.__qualname__,
        ):
            raise ValueError(
                f"method name '{name}' is already registered by {previous.__qualname__}"
            )
        cls.method_name = name
        _METHODS[name] = cls
        return cls

    return decorator


def _import_method_modules() -> None:
    global _scanned
    if _scanned:
        return
    _scanned = True
    import vidssl.methods as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in _NOT_METHOD_MODULES and not module.name.startswith("_"):
            importlib.import_module(f"vidssl.methods.{module.name}")


def registered_methods() -> list[str]:
    """All method names (after importing every method module), sorted."""
    _import_method_modules()
    return sorted(_METHODS)


def method_class(name: str) -> type[BaseMethod]:
    """The class registered under ``name``; `ConfigError` listing the valid names otherwise."""
    if name not in _METHODS:
        _import_method_modules()
    if name not in _METHODS:
        names = sorted(_METHODS)
        hint = closest_key_hint(name, names)
        raise ConfigError(f"unknown method.name '{name}'{hint} (registered: {', '.join(names)})")
    return _METHODS[name]


def build_method(cfg: Config) -> BaseMethod:
    """Seeds torch with ``trainer.seed`` (reproducible initial weights) and builds the method."""
    cls = method_class(cfg.method.name)
    if not isinstance(cfg.method, cls.config_class):
        raise ConfigError(
            f"method section is a {type(cfg.method).__name__}, but method '{cfg.method.name}' "
            f"expects {cls.config_class.__name__}; build the config with load_config"
        )
    torch.manual_seed(cfg.trainer.seed)
    return cls(cfg)


def config_from_tree(tree: dict[str, Any]) -> Config:
    """Validates a plain nested dict into a `Config` with the schema of its ``method.name``."""
    return build_config(tree, method_class)


def load_config(preset_or_path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Loads a preset name or YAML path, applies ``key=value`` overrides and validates the result.

    Args:
        preset_or_path: A preset name (``infonce/ucf101_rgb``) or a path to a ``.yaml`` file.
        overrides: Dotted ``key=value`` strings; values are parsed as YAML and coerced to the type
            of the key (``optim.lr=1e-2``, ``schedule.milestones=[80,90]``).

    Returns:
        The validated config.

    Raises:
        ConfigError: An unknown preset, file, key (with the closest valid key) or method, or a bad
            value.
    """
    return config_from_tree(read_config_tree(preset_or_path, overrides))
