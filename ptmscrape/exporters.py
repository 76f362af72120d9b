"""Feed exporters: Scrapy's JSON Lines exporter with a shortcut for plain-dict items, and a CSV
exporter that writes nested record fields as columns and JSON (see :class:`CsvItemExporter`).

For a dict item (every PTM record) with no ``FEED_EXPORT_FIELDS`` and no field serializers,
Scrapy's exporter rebuilds the same dict field by field through an ``ItemAdapter``, which costs
three times the JSON encoding itself on a million-model crawl. The shortcut encodes the dict as it
is; the bytes written are the same.
"""

from __future__ import annotations

import json
from typing import Any

from itemadapter import ItemAdapter
from scrapy.exporters import (
    BaseItemExporter,
    CsvItemExporter as ScrapyCsvItemExporter,
    JsonLinesItemExporter as ScrapyJsonLinesItemExporter,
)
from scrapy.utils.python import to_bytes

from ptmscrape.items import PTMRecord

_PLAIN_DICTS = (dict, PTMRecord)


class JsonLinesItemExporter(ScrapyJsonLinesItemExporter):
    def export_item(self, item: Any) -> None:
        if (type(item) in _PLAIN_DICTS and self.fields_to_export is None
                and type(self).serialize_field is BaseItemExporter.serialize_field):
            self.file.write(to_bytes(self.encoder.encode(item) + "\n", self.encoding))
            return
        super().export_item(item)


class CsvItemExporter(ScrapyCsvItemExporter):
    """CSV a spreadsheet or ``pandas.read_csv`` can use: nested objects become columns named by
    their path (``ModelHub.ModelHubName``), lists are written as JSON (``Datasets``, ``Tags``),
    null as an empty cell. Scrapy's exporter would write Python reprs (``{'ModelHubName': …}``).
    The columns are those of the first record (every PTM record has the same keys)."""

    def export_item(self, item: Any) -> None:
        super().export_item(flatten(ItemAdapter(item).asdict()))


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": [1]}`` -> ``{"a.b": 1, "c": "[1]"}``."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(value, ensure_ascii=False, default=str)
        else:
            flat[name] = value
    return flat
