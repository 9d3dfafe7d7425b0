"""Parsing behind `vidssl.config.schema`: YAML chains, ``key=value`` overrides, dataclasses.

Nothing here knows the vidssl schema. The pieces are:

- `read_yaml_chain`: reads one YAML file and, first, the files named in its ``defaults:`` list
  (preset names or paths), deep-merged in order so that later files win;
- `parse_overrides` + `merge_trees`: ``a.b.c=value`` strings (values parsed as YAML) merged into
  the tree;
- `build_dataclass`: validates a plain tree against a dataclass schema and coerces values to the
  annotated types. Unknown keys and bad values raise a one-line `ConfigError` that names the full
  dotted key and, for unknown keys, suggests the closest valid key.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from vidssl.errors import ConfigError

#: Maps a dotted section path (e.g. ``"method"``) to the dataclass to use for it instead of the
#: annotated one; lets the method section take the schema of the chosen method.
SectionTypes = Mapping[str, type]

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def closest_key_hint(key: str, valid: list[str], prefix: str = "") -> str:
    """Returns ``"; did you mean 'x'?"`` for the closest valid key, or the list of valid keys.

    Args:
        key: The unknown key (last component only).
        valid: The valid keys at that level.
        prefix: Dotted path of the level (``"optim."``), put in front of the suggestion.
    """
    matches = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if matches:
        return f"; did you mean '{prefix}{matches[0]}'?"
    return f"; valid keys: {', '.join(valid)}" if valid else ""


def merge_trees(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merges two nested dicts: mappings merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_trees(merged[key], value)
        else:
            merged[key] = value
    return merged


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        reason = str(error).replace("\n", " ")
        raise ConfigError(f"config file {path} is not valid YAML: {reason}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of keys, not {type(data).__name__}"
        )
    return data


def read_yaml_chain(
    path: Path, resolve_name: Callable[[str], Path], _seen: tuple[Path, ...] = ()
) -> dict[str, Any]:
    """Reads a YAML config and the bases named in its ``defaults:`` key, merged in order.

    Args:
        path: The YAML file.
        resolve_name: Turns a preset name (an entry that does not end in ``.yaml``/``.yml``) into
            a file path; entries ending in ``.yaml``/``.yml`` are paths relative to ``path``.
        _seen: Files already on the inheritance chain (cycle detection).

    Returns:
        The merged tree without the ``defaults`` key.
    """
    path = path.resolve()
    if path in _seen:
        chain = " -> ".join(p.name for p in (*_seen, path))
        raise ConfigError(f"config inheritance cycle: {chain}")
    data = _load_yaml(path)
    bases = data.pop("defaults", None) or []
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"'defaults' in {path} must be a preset name or a list of them")
    merged: dict[str, Any] = {}
    for base in bases:
        if base.endswith((".yaml", ".yml")):
            base_path = path.parent / base
            if not base_path.is_file():
                raise ConfigError(f"base config {base} named in {path} does not exist")
        else:
            base_path = resolve_name(base)
        merged = merge_trees(merged, read_yaml_chain(base_path, resolve_name, (*_seen, path)))
    return merge_trees(merged, data)


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """Turns ``["optim.lr=0.1", "schedule.milestones=[80,90]"]`` into a nested dict.

    Values are parsed as YAML scalars/lists (``null``, numbers, ``true``, ``[1, 2]``); a value that
    is not valid YAML stays a string.
    """
    tree: dict[str, Any] = {}
    for override in overrides:
        key, sep, text = override.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"bad override '{override}': expected key=value, e.g. optim.lr=0.01")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return tree


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {_type_name(typing.get_args(annotation)[1])}"
    return getattr(annotation, "__name__", str(annotation))


def _bad(key: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(f"{key}={value!r} is not {expected}")


def coerce_value(value: Any, annotation: Any, key: str) -> Any:
    """Converts ``value`` to ``annotation`` (int, float, bool, str, Literal, Optional, list, dict).

    Strings are parsed (``"1e-3"`` → 0.001, ``"true"`` → True); ints are accepted for floats,
    integral floats for ints. Raises `ConfigError` naming ``key`` when the value does not fit.
    """
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        members = typing.get_args(annotation)
        if value is None and type(None) in members:
            return None
        errors = []
        for member in (m for m in members if m is not type(None)):
            try:
                return coerce_value(value, member, key)
            except ConfigError as error:
                errors.append(error)
        raise errors[0]
    if origin is Literal:
        choices = typing.get_args(annotation)
        text = str(value) if not isinstance(value, bool) else str(value).lower()
        for choice in choices:
            if text == str(choice):
                return choice
        raise _bad(key, value, "one of " + ", ".join(repr(str(c)) for c in choices))
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _bad(key, value, f"a {_type_name(annotation)}")
        item_type = next((a for a in typing.get_args(annotation) if a is not Ellipsis), Any)
        items = [coerce_value(v, item_type, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _bad(key, value, f"a {_type_name(annotation)}")
        value_type = typing.get_args(annotation)[1]
        return {str(k): coerce_value(v, value_type, f"{key}.{k}") for k, v in value.items()}
    if annotation is Any:
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, str)) and str(value).strip().lower() in _TRUE | _FALSE:
            return str(value).strip().lower() in _TRUE
        raise _bad(key, value, "a bool (true/false)")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise _bad(key, value, "an int")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise _bad(key, value, "a float")
    if annotation is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise _bad(key, value, "a string")
    raise TypeError(f"unsupported config annotation {annotation!r} for {key}")


def build_dataclass(
    cls: type, data: Any, prefix: str = "", section_types: SectionTypes | None = None
) -> Any:
    """Builds dataclass ``cls`` from the plain tree ``data``, validating every key and value.

    Args:
        cls: A dataclass type; nested dataclass fields are built recursively.
        data: A mapping (or None for "all defaults").
        prefix: The dotted path of ``data`` in the whole config (for error messages).
        section_types: Dotted section paths whose dataclass replaces the annotated one.

    Returns:
        An instance of ``cls`` (or of its replacement from ``section_types``).
    """
    section_types = section_types or {}
    cls = section_types.get(prefix.rstrip("."), cls)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        keys = ", ".join(f.name for f in dataclasses.fields(cls))
        raise ConfigError(f"{prefix.rstrip('.')}={data!r} is not a section (keys: {keys})")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            hint = closest_key_hint(str(key), list(fields), prefix)
            raise ConfigError(f"unknown config key '{prefix}{key}'{hint}")
    values: dict[str, Any] = {}
    for name, field in fields.items():
        annotation = hints[name]
        full_key = f"{prefix}{name}"
        is_section = dataclasses.is_dataclass(annotation) or full_key in section_types
        if name not in data:
            if is_section and full_key in section_types:
                values[name] = build_dataclass(annotation, {}, f"{full_key}.", section_types)
            elif (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            ):
                raise ConfigError(f"missing config key '{full_key}'")
            continue
        if is_section:
            values[name] = build_dataclass(annotation, data[name], f"{full_key}.", section_types)
        else:
            values[name] = coerce_value(data[name], annotation, full_key)
    return cls(**values)


def to_tree(instance: Any) -> dict[str, Any]:
    """Dataclass → plain nested dict of YAML-safe values (tuples become lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(instance))


def flatten_tree(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (lists are leaves)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            flat.update(flatten_tree(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
