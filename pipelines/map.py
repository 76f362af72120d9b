"""Stage 1: raw hub item -> uniform PTM record, with the hub's mapper."""

from __future__ import annotations

import logging

from scrapy.exceptions import DropItem

from ptmscrape.items import PTMRecord, RawModelItem, printable
from ptmscrape.mappers import mapper_for
from ptmscrape.mappers.common import MappingError

logger = logging.getLogger(__name__)


class UnmappableModel(DropItem):
    """The hub payload of a model could not be mapped (the message says which and why)."""


class MapPipeline:
    def __init__(self, crawler):
        self.stats = crawler.stats
        self.mappers: dict[str, object] = {}  # hub -> map_raw (import once, not once per model)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_item(self, item):
        if not isinstance(item, RawModelItem):
            return item
        label = printable(f"{item.hub}:{item.model_id}")
        try:
            mapper = self.mappers.get(item.hub) or self.mappers.setdefault(item.hub, mapper_for(item.hub))
            record = PTMRecord(mapper(item))
        except MappingError as exc:
            self.stats.inc_value("ptm/map/failed")
            raise UnmappableModel(f"{label}: {exc}") from None
        except LookupError as exc:
            self.stats.inc_value("ptm/map/failed")
            raise UnmappableModel(f"{label}: {exc}") from None
        except Exception as exc:  # a mapper bug must not stop a week-long crawl
            logger.exception("Mapper crashed on %s", label)
            self.stats.inc_value("ptm/map/failed")
            raise UnmappableModel(f"{label}: mapper error {type(exc).__name__}: {exc}") from None
        record.raw = item
        self.stats.inc_value("ptm/map/mapped")
        return record
