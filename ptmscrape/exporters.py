"""Feed exporters: Scrapy's JSON Lines exporter with a shortcut for plain-dict items.

For a dict item (every PTM record) with no ``FEED_EXPORT_FIELDS`` and no field serializers,
Scrapy's exporter rebuilds the same dict field by field through an ``ItemAdapter``, which costs
three times the JSON encoding itself on a million-model crawl. The shortcut encodes the dict as it
is; the bytes written are the same.
"""

from __future__ import annotations

from typing import Any

from scrapy.exporters import BaseItemExporter
from scrapy.exporters import JsonLinesItemExporter as ScrapyJsonLinesItemExporter
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
