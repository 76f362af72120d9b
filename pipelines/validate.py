"""Stage 2: check each record against the published JSON Schema (ptmscrape/schema/)."""

from __future__ import annotations

from jsonschema import Draft202012Validator
from scrapy.exceptions import DropItem

from ptmscrape.items import PTMRecord, load_schema


class InvalidRecord(DropItem):
    """A record does not match the PTM JSON Schema (the message names the model and field)."""


class ValidatePipeline:
    def __init__(self, crawler):
        self.stats = crawler.stats
        self.validator = Draft202012Validator(load_schema())

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_item(self, record: PTMRecord):
        error = next(self.validator.iter_errors(record), None)
        if error is None:
            self.stats.inc_value("ptm/validate/valid")
            return record
        self.stats.inc_value("ptm/validate/invalid")
        where = "/".join(str(p) for p in error.absolute_path) or "(record)"
        label = record.label if isinstance(record, PTMRecord) else "?"
        raise InvalidRecord(f"{label}: {where}: {error.message[:300]}")
