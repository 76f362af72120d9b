"""Feed exporters: Scrapy's JSON Lines exporter with a shortcut for plain-dict items, and a CSV
exporter that writes nested record fields as columns and JSON (see :class:`CsvItemExporter`).

For a dict item (every PTM record) with no ``FEED_EXPORT_FIELDS`` and no field serializers,
Scrapy's exporter rebuilds the same dict field by field through an ``ItemAdapter``, which costs
three times the JSON encoding itself on a million-model crawl. The shortcut encodes the dict as it
is; the bytes written are the same. It also keeps the C encoder ``JSONEncoder.encode`` would build
for every item (~2 µs of 16), and builds a new one after an item that failed to encode, whose
circular-reference markers may be left behind. An item whose text the feed's encoding cannot hold (a
lone surrogate) is written with its non-ASCII characters escaped, where Scrapy's exporter raises and
the feed loses the item.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from typing import Any

from itemadapter import ItemAdapter
from scrapy.exporters import (
    BaseItemExporter,
    CsvItemExporter as ScrapyCsvItemExporter,
    JsonLinesItemExporter as ScrapyJsonLinesItemExporter,
)
from scrapy.utils.python import to_bytes

from ptmscrape.items import PTMRecord, load_schema
from ptmscrape.stats import FEED_CSV_CELLS_GUARDED

_PLAIN_DICTS = (dict, PTMRecord)


class JsonLinesItemExporter(ScrapyJsonLinesItemExporter):
    def __init__(self, file: Any, **kwargs: Any):
        super().__init__(file, **kwargs)
        self._chunks = _c_encoder(self.encoder)

    def export_item(self, item: Any) -> None:
        try:
            if (type(item) in _PLAIN_DICTS and self.fields_to_export is None
                    and type(self).serialize_field is BaseItemExporter.serialize_field):
                self.file.write(to_bytes(self._encode(item) + "\n", self.encoding))
                return
            super().export_item(item)
        except UnicodeEncodeError:
            self._export_escaped(item)

    def _export_escaped(self, item: Any) -> None:
        """The item's line with non-ASCII characters escaped (``\\udXXX``), when its text cannot be
        encoded: a lone surrogate (hub text can hold one: ``"\\ud800"`` is valid JSON, but no UTF-8
        encodes it), or a character FEED_EXPORT_ENCODING lacks. Dataset lines do the same
        (``ptmscrape.dataset.jsonl.compact_json``). Scrapy's exporter would raise, and the feed lose
        the item."""
        encoder = self.encoder
        self.encoder = type(encoder)(**{**self._kwargs, "ensure_ascii": True})
        try:
            ScrapyJsonLinesItemExporter.export_item(self, item)  # the same line, as the shortcut writes it
        finally:
            self.encoder = encoder

    def _encode(self, item: dict[str, Any]) -> str:
        """``self.encoder.encode(item)``."""
        if self._chunks is None:
            return self.encoder.encode(item)
        try:
            return "".join(self._chunks(item, 0))
        except BaseException:
            self._chunks = _c_encoder(self.encoder)
            raise


def _c_encoder(encoder: json.JSONEncoder) -> Callable[[Any, int], Any] | None:
    """The C encoder ``encoder.encode`` builds for a dict (``JSONEncoder.iterencode``), or None
    where it would use the Python one."""
    make = json.encoder.c_make_encoder  # type: ignore[attr-defined]
    if (make is None or encoder.indent is not None or type(encoder).encode is not json.JSONEncoder.encode
            or type(encoder).iterencode is not json.JSONEncoder.iterencode):
        return None
    return make({} if encoder.check_circular else None, encoder.default,
                json.encoder.encode_basestring_ascii if encoder.ensure_ascii else json.encoder.encode_basestring,
                encoder.indent, encoder.key_separator, encoder.item_separator, encoder.sort_keys,
                encoder.skipkeys, encoder.allow_nan)


# A spreadsheet opening a CSV file runs a cell that begins with one of these as a formula
# (OWASP's "CSV injection"); hub text is anybody's.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class CsvItemExporter(ScrapyCsvItemExporter):
    """CSV a spreadsheet or ``pandas.read_csv`` can use: nested objects become columns named by
    their path (``ModelHub.ModelHubName``), lists are written as JSON (``Datasets``, ``Tags``),
    null as an empty cell. Scrapy's exporter would write Python reprs (``{'ModelHubName': …}``).
    The columns are those of the first record (every PTM record has the same keys); a record object
    whose keys the schema fixes (``ModelHub``, ``LicensePermissions``) gives one column per key
    whether it is null or not, and one whose keys are the hub's (``Metrics``) is written as JSON, so
    no record's values fall outside the first record's columns. A character the
    feed's encoding cannot hold (a lone surrogate from hub text) is written as its ``\\udXXX``
    escape, where the encoding would raise and the feed lose the record; in a list cell that is the
    JSON escape of the same character.

    With ``formula_guard`` (``PTM_CSV_FORMULA_GUARD``, on by default) a text cell that begins with
    one of ``FORMULA_STARTS`` is written after a ``'``, so a spreadsheet shows it as text instead of
    running it; ``on_guarded`` is called for each such cell (the crawl counts them)."""

    def __init__(self, file: Any, *, formula_guard: bool = True,
                 on_guarded: Callable[[], object] | None = None, **kwargs: Any):
        kwargs.setdefault("errors", "backslashreplace")
        super().__init__(file, **kwargs)
        self.formula_guard = formula_guard
        self._on_guarded = on_guarded

    @classmethod
    def from_crawler(cls, crawler: Any, file: Any, *args: Any, **kwargs: Any) -> CsvItemExporter:
        # A feed's own item_export_kwargs (FEEDS) still win over the setting.
        kwargs.setdefault("formula_guard", crawler.settings.getbool("PTM_CSV_FORMULA_GUARD"))
        stats = crawler.stats
        kwargs.setdefault("on_guarded", lambda: stats.inc_value(FEED_CSV_CELLS_GUARDED))
        return cls(file, *args, **kwargs)

    def export_item(self, item: Any) -> None:
        row = flatten(ItemAdapter(item).asdict())
        if self.formula_guard:
            for key, value in row.items():
                if isinstance(value, str) and value.startswith(FORMULA_STARTS):
                    row[key] = "'" + value
                    if self._on_guarded is not None:
                        self._on_guarded()
        super().export_item(row)


def _object_columns(properties: dict[str, Any]) -> dict[str, Any]:
    """For each property of a schema object: ``None`` (a plain value or a list: one column), the
    same for its own properties (an object with fixed keys: one column per key), or ``False`` (an
    object whose keys vary from record to record: one column, as JSON)."""
    columns: dict[str, Any] = {}
    for key, spec in properties.items():
        kinds = spec.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if "object" not in kinds:
            columns[key] = None
        elif spec.get("additionalProperties") is False and isinstance(spec.get("properties"), dict):
            columns[key] = _object_columns(spec["properties"])
        else:
            columns[key] = False
    return columns


# The record's objects: which are columns by key, which JSON (Metrics: the hub's own column names,
# which differ from model to model and would else fall outside the first record's columns).
RECORD_COLUMNS = _object_columns(load_schema()["properties"])


def flatten(record: dict[str, Any], prefix: str = "", columns: dict[str, Any] | None = RECORD_COLUMNS
            ) -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": [1]}`` -> ``{"a.b": 1, "c": "[1]"}``.

    ``columns`` (the record schema's, by default): an object with fixed keys gives a column for
    each of them, empty ones when it is null; one with open keys (``Metrics``) is one JSON cell. A
    key the schema does not know is flattened as it comes."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        shape = columns.get(key) if columns is not None else None
        if isinstance(shape, dict) and value is None:
            flat.update(flatten(dict.fromkeys(shape), name + ".", shape))
        elif isinstance(shape, dict) and isinstance(value, dict):
            flat.update(flatten(value, name + ".", shape))
        elif shape is False and value is not None:
            flat[name] = json.dumps(value, ensure_ascii=False, default=str)
        elif isinstance(value, dict):
            flat.update(flatten(value, name + ".", None))
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(value, ensure_ascii=False, default=str)
        else:
            flat[name] = value
    return flat
