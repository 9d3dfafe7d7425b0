"""One colour per method, the same in every plot and in the order of every table.

Methods are named by their registry name (``infonce``, ``coclr``, ``vicc``, ``pcl``, ...) or by
the demo's init names (``random``; ``pretrained`` is the demo's InfoNCE encoder). Random
initialisation is grey; the methods take a fixed qualitative palette (Okabe & Ito's colour-blind
safe set) in a fixed order; a name the palette does not know gets a colour from the remaining
entries, the same for the same name in every run.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

__all__ = ["METHOD_ORDER", "display_name", "method_color", "method_key", "sort_methods"]

#: Known methods in table / legend order.
METHOD_ORDER = ("random", "infonce", "ubernce", "coclr", "cpr", "cvtcl", "vicc", "pcl", "vcp")

_COLORS = {
    "random": "#8c8c8c",
    "infonce": "#0072B2",
    "ubernce": "#56B4E9",
    "coclr": "#E69F00",
    "cpr": "#F0E442",
    "cvtcl": "#D55E00",
    "vicc": "#009E73",
    "pcl": "#CC79A7",
    "vcp": "#882255",
}
_SPARE = ("#332288", "#44AA99", "#999933", "#AA4499", "#117733", "#661100")
_ALIASES = {"pretrained": "infonce", "scratch": "random"}
_NAMES = {
    "random": "random init",
    "infonce": "InfoNCE",
    "ubernce": "UberNCE",
    "coclr": "CoCLR",
    "cpr": "CPR",
    "cvtcl": "CVTCL",
    "vicc": "ViCC",
    "pcl": "PCL",
    "vcp": "VCP",
}


def method_key(name: str) -> str:
    """The palette key of a method or init name (case-insensitive; ``pretrained`` → ``infonce``)."""
    key = name.strip().lower()
    return _ALIASES.get(key, key)


def method_color(name: str) -> str:
    """The method's colour as a hex string; unknown names get a stable spare colour."""
    key = method_key(name)
    if key in _COLORS:
        return _COLORS[key]
    return _SPARE[zlib.crc32(key.encode()) % len(_SPARE)]


def display_name(name: str) -> str:
    """The name shown in legends and tables (``pretrained`` → ``InfoNCE``)."""
    key = method_key(name)
    return _NAMES.get(key, name)


def sort_methods(names: Iterable[str]) -> list[str]:
    """The names in palette order; unknown names after the known ones, in their given order."""
    names = list(names)
    rank = {key: i for i, key in enumerate(METHOD_ORDER)}
    return sorted(names, key=lambda n: (rank.get(method_key(n), len(rank)), names.index(n)))
