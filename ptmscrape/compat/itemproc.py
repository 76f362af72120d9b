"""Scrapy 2.19's item pipeline chain without its per-stage overhead.

``ItemPipelineManager.process_item_async`` runs each stage through ``MiddlewareManager._process_chain``,
which formats the stage's qualified name (for a warning it gives only if the stage returns a
Deferred) and wraps a plain return value in a coroutine, for every stage and every item: ~8 µs an
item through the project's six stages, against ~2 µs for calling them (``bench/RESULTS.md``, fourth
round).

:class:`ItemPipelineManager` (``ITEM_PROCESSOR`` in ``settings.py``) runs the same stages in the same
order with the same arguments (``spider`` still passed to a stage that requires it), awaits what is
awaitable and warns, as Scrapy does, when a stage returns a Deferred; it only names the stage when
it warns. ``tests/test_compat_upstream.py`` has a strict-xfail test that XPASSes once Scrapy's chain
stops naming every stage for every item; then this module and ``ITEM_PROCESSOR`` can go.
"""

from __future__ import annotations

import inspect
from types import CoroutineType
from typing import Any

from scrapy.pipelines import ItemPipelineManager as ScrapyItemPipelineManager
from scrapy.utils.defer import ensure_awaitable
from scrapy.utils.python import global_object_name
from twisted.internet.defer import Deferred


class ItemPipelineManager(ScrapyItemPipelineManager):
    async def process_item_async(self, item: Any) -> Any:
        needs_spider = self._mw_methods_requiring_spider
        for method in self.methods["process_item"]:
            result = method(item, self._spider) if method in needs_spider else method(item)  # type: ignore[misc]
            if type(result) is CoroutineType:
                item = await result
            elif isinstance(result, Deferred) or inspect.isawaitable(result):
                item = await ensure_awaitable(result, _warn=global_object_name(method))
            else:
                item = result
        return item
