"""The two kinds of item that flow through the pipelines.

A spider yields a :class:`RawModelItem` — the hub's own payload, untouched, plus where it came from.
The map stage turns it into a :class:`PTMRecord`, the uniform record described by
``schema/ptm-record.schema.json``. A record is a plain ``dict`` for feed exporters and the JSON
Schema; the raw item it came from rides along as an attribute (``record.raw``), so it is stored by
the store stage but never exported.
"""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from typing import Any

SCHEMA_VERSION = "1.2.0"


@dataclasses.dataclass
class RawModelItem:
    hub: str  # spider name, e.g. "huggingface"
    # The hub's own id of the model (may be hostile: never a path as is), as HubSpider.raw_item
    # gives it: cut to 300 characters, for log lines and hand-offs. Mappers take a model's identity
    # from the payload (or the context) whole, never from here.
    model_id: str
    url: str  # where the payload was fetched
    payload: Any  # JSON-able payload exactly as the hub served it
    # Hints a spider knows but the payload does not (e.g. the hub's base URL); mappers read them.
    context: dict[str, Any] = dataclasses.field(default_factory=dict)
    # The payload's JSON text as the hub served it, when the spider has it (an element of a JSON
    # array page): stored as it is instead of re-encoding ``payload``.
    payload_json: str | None = None
    # Distributed crawl: the model's hand-off was put back in the shared queue because the worker
    # that had taken it died (``ptmscrape.redis_scheduler``); that worker may have marked it seen.
    redelivered: bool = False
    # The request whose response gave the model (a listing page, the model's own page): a JOBDIR
    # job fetches it again when the store stage could not store the model (``ptmscrape/jobdir.py``).
    # A reference only, never stored nor handed off; None when unknown.
    request: Any = dataclasses.field(default=None, repr=False, compare=False)


class PTMRecord(dict):
    """A uniform PTM record (a dict); ``raw`` is the :class:`RawModelItem` it was mapped from."""

    raw: RawModelItem | None = None

    @property
    def label(self) -> str:
        """How log lines and errors name this model: ``hub:model id``."""
        hub_info = self.get("ModelHub")
        hub = hub_info.get("ModelHubName", "?") if isinstance(hub_info, dict) else "?"
        return printable(f"{hub}:{self.raw.model_id if self.raw else self.get('ModelName')}")


def printable(text: object, limit: int = 200) -> str:
    """Hub text made safe for one log line: control characters escaped (no fake log lines, no
    terminal escapes), cut to ``limit`` characters with the full length noted."""
    text = str(text)
    out = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text[:limit])
    return out if len(text) <= limit else f"{out}…({len(text)} chars)"


def load_schema() -> dict[str, Any]:
    text = resources.files("ptmscrape").joinpath("schema/ptm-record.schema.json").read_text("utf-8")
    return json.loads(text)
