"""Stage 1: raw hub item -> uniform PTM record, with the hub's mapper.

A repository URL carrying someone's credentials (``https://user:pw@host/x``) leaves this stage as
``https://***@host/x``: validate, dedupe, clone, store and the logs never see the secret (the clone
stage then refuses the URL: "credentials in the URL are not accepted").
"""

from __future__ import annotations

import logging

from scrapy.exceptions import DropItem

from ptmscrape import signals as ptm_signals
from ptmscrape.gitrepo import without_credentials
from ptmscrape.items import PTMRecord, RawModelItem, printable
from ptmscrape.loop_turns import loop_turns
from ptmscrape.mappers import mapper_for
from ptmscrape.mappers.common import MappingError
from ptmscrape.stats import ITEMS_FAILED, ITEMS_FAILED_BY_ERROR, MAP_FAILED, MAP_MAPPED

logger = logging.getLogger(__name__)

# Every this many models the stage gives the event loop a turn. The stages' work is all CPU, so
# without it the loop turns only between batches of CONCURRENT_ITEMS models, and the next listing
# page (requested first, see ``spiders_base.LISTING_PRIORITY``), whose body is read 64 KB a turn,
# would arrive only after the current page's models were processed, not while.
LOOP_TURN_EVERY = 8


class UnmappableModel(DropItem):
    """The hub payload of a model could not be mapped (the message says which and why)."""


class MapPipeline:
    def __init__(self, crawler):
        self.stats = crawler.stats
        self._signal = crawler.signals.send_catch_log
        self._count = crawler.stats.inc_value  # bound once (Scrapy's own STATS_CLASS wraps each read)
        self.mappers: dict[str, object] = {}  # hub -> map_raw (import once, not once per model)
        self._models = 0

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_item(self, item):
        if not isinstance(item, RawModelItem):
            return item
        self._models += 1
        if self._models % LOOP_TURN_EVERY == 0:
            await loop_turns()
        try:
            mapper = self.mappers.get(item.hub) or self.mappers.setdefault(item.hub, mapper_for(item.hub))
            record = PTMRecord(mapper(item))
        except (MappingError, LookupError) as exc:  # LookupError: mapper_for() knows no such hub
            self._count(MAP_FAILED)
            self._signal(ptm_signals.model_unmapped, item=item)
            raise UnmappableModel(f"{_label(item)}: {exc}") from None
        except Exception as exc:  # a mapper bug must not stop a week-long crawl...
            label = _label(item)
            logger.exception("Mapper crashed on %s", label)
            # ...but it is no bad hub data (ptm/map/failed): the model is lost to an error in an item
            # stage, which fails the crawl (ptmscrape/verdict.py), as Scrapy's item_error would.
            self._count(ITEMS_FAILED)
            self._count(ITEMS_FAILED_BY_ERROR + type(exc).__name__)
            self._signal(ptm_signals.model_unmapped, item=item)
            raise UnmappableModel(f"{label}: mapper error {type(exc).__name__}: {exc}") from None
        if isinstance(record.get("RepoURL"), str):
            record["RepoURL"] = without_credentials(record["RepoURL"])
        record.raw = item
        self._count(MAP_MAPPED)
        return record


def _label(item: RawModelItem) -> str:
    """How an error names the model (escaped: built only when there is an error to report)."""
    return printable(f"{item.hub}:{item.model_id}")
