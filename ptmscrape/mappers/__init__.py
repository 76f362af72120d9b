"""One mapper per hub: ``map_raw(raw: RawModelItem) -> dict`` (pure, no I/O).

A hub's mapper is the module ``ptmscrape.mappers.<hub>``; the map stage finds it by the raw
item's ``hub``. Mappers raise :class:`~ptmscrape.mappers.common.MappingError` for a payload
they cannot map, naming the reason.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from ptmscrape.items import RawModelItem

Mapper = Callable[[RawModelItem], dict[str, Any]]


def mapper_for(hub: str) -> Mapper:
    if not hub.isidentifier():
        raise LookupError(f"no mapper for hub {hub!r}")
    try:
        module = importlib.import_module(f"ptmscrape.mappers.{hub}")
    except ModuleNotFoundError:
        raise LookupError(f"no mapper for hub {hub!r}") from None
    return module.map_raw
