"""Extension: fewer, cheaper garbage collections while a crawl runs.

Every model allocates a few hundred containers (its decoded payload, its record), so Python's
cyclic collector ran a young-generation pass every few models and, as decoded pages piled into the
old generation, full passes over everything Scrapy and the project had loaded. Yet a crawl's data
is almost never cyclic: it is freed by reference counting. At the engine's start the objects of
start-up are frozen (``gc.freeze()``: never traversed again) and the young-generation threshold is
raised; when the last crawl of the process stops both are undone, so a process that runs crawls
(tests, several crawlers) gets its collector back as it was. Cyclic garbage is still collected,
less often.

And once a crawl command's crawl is over, :func:`freeze_before_exit` keeps Python's collections
at shutdown off everything the process loaded.
"""

from __future__ import annotations

import gc

from scrapy import signals

# Allocations between two young-generation passes during a crawl (Python's default: 700).
CRAWL_GC_THRESHOLD = 50_000


class GcTuning:
    # Crawls of this process whose engine runs (a test process or CrawlerProcess may run several at
    # once): the first one to start tunes the collector, the last one to stop restores it.
    running = 0
    saved: tuple[int, int, int] = gc.get_threshold()

    def __init__(self) -> None:
        self.started = False

    @classmethod
    def from_crawler(cls, crawler) -> GcTuning:
        ext = cls()
        crawler.signals.connect(ext.engine_started, signal=signals.engine_started)
        crawler.signals.connect(ext.engine_stopped, signal=signals.engine_stopped)
        return ext

    def engine_started(self) -> None:
        if self.started:
            return
        self.started = True
        cls = type(self)
        cls.running += 1
        if cls.running == 1:
            cls.saved = gc.get_threshold()
            gc.collect()
            gc.freeze()
            gc.set_threshold(max(CRAWL_GC_THRESHOLD, cls.saved[0]), *cls.saved[1:])

    def engine_stopped(self) -> None:
        if not self.started:
            return
        self.started = False
        cls = type(self)
        cls.running -= 1
        if cls.running == 0:
            gc.set_threshold(*cls.saved)
            gc.unfreeze()


def freeze_before_exit() -> None:
    """For a command about to end its process: freeze every object, so that the collections
    Python runs while shutting down skip them (they traversed everything Scrapy, Twisted and the
    project had loaded: ~0.3 s after every crawl on the bench machine, a tenth of a small crawl's
    time). Objects are still freed by reference counting; only cyclic garbage left at exit is not
    collected, and nothing here relies on the collector to close a file."""
    gc.freeze()
