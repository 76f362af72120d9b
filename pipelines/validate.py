"""Stage 2: check each record against the published JSON Schema (ptmscrape/schema/).

``jsonschema`` is the authority, but it costs ~200 µs a record; two cheaper checkers clear the
valid ones first, each never looser than ``jsonschema`` on this schema: ``ptmscrape.quick_check``
(~14 µs a Hugging Face record: exact types and the schema's few constraints), then a validator
compiled by ``fastjsonschema`` (~20 µs) for the records the first is not sure of. Only records both
reject are re-checked, and the reason comes from ``jsonschema`` as before. The two slower ones
(fastjsonschema's compilation ~40 ms; jsonschema ~40 ms to import, most of it its format checkers)
are built when first needed: a crawl of records the quick check clears starts without them.
"""

from __future__ import annotations

import fastjsonschema
from scrapy.exceptions import DropItem

from ptmscrape.items import PTMRecord, load_schema
from ptmscrape.quick_check import compile_quick_check
from ptmscrape.stats import VALIDATE_INVALID, VALIDATE_VALID


class InvalidRecord(DropItem):
    """A record does not match the PTM JSON Schema (the message names the model and field)."""


class ValidatePipeline:
    def __init__(self, crawler):
        self.stats = crawler.stats
        self._count = crawler.stats.inc_value  # bound once (Scrapy's own STATS_CLASS wraps each read)
        self.schema = load_schema()
        self._validator = None
        self._fast_check = None
        self.quick_check = compile_quick_check(self.schema)

    @property
    def fast_check(self):
        """fastjsonschema's compiled validator for the schema, built when first needed."""
        if self._fast_check is None:
            # use_formats=False: "format" is an annotation only, as in jsonschema's default.
            self._fast_check = fastjsonschema.compile(self.schema, use_formats=False)
        return self._fast_check

    @property
    def validator(self):
        """jsonschema's validator for the schema, built when first needed."""
        if self._validator is None:
            from jsonschema import Draft202012Validator

            self._validator = Draft202012Validator(self.schema)
        return self._validator

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_item(self, record: PTMRecord):
        error = None
        if not self.quick_check(record):
            try:
                self.fast_check(record)
            except fastjsonschema.JsonSchemaException:
                error = next(self.validator.iter_errors(record), None)
        if error is None:
            self._count(VALIDATE_VALID)
            return record
        self._count(VALIDATE_INVALID)
        where = "/".join(str(p) for p in error.absolute_path) or "(record)"
        label = record.label if isinstance(record, PTMRecord) else "?"
        raise InvalidRecord(f"{label}: {where}: {error.message[:300]}")
