"""Scrapy 2.19's stats collector without its per-attribute deprecation trampoline.

``scrapy.statscollectors.StatsCollector`` defines ``__getattribute__`` in Python to wrap ten methods
in a check that warns when a caller passes the deprecated ``spider`` argument (scrapy/scrapy#7011;
#7045 made it cheaper, not free). Every attribute read on the collector goes through it — including
``self._stats`` inside ``inc_value`` — and each read first fails a look-up of ``_cached_<name>``
with an ``AttributeError``. Scrapy counts every item, response and log record, the stages count
every model: in a metadata crawl this was ~12% of the interpreter's time (py-spy, 20,000 models),
~60 µs a model (bench/RESULTS.md, third round).

:class:`StatsCollector` is Scrapy's ``MemoryStatsCollector`` with plain attribute access: same
methods, same stats, the ``spider`` argument still accepted (and, as in Scrapy, unused), only the
deprecation warning for passing it is not given. ``STATS_CLASS`` names it (``settings.py``);
``tests/test_compat_upstream.py`` has a strict-xfail test that XPASSes once Scrapy's collector
reads its attributes plainly, and then this module can go.
"""

from __future__ import annotations

from scrapy.statscollectors import MemoryStatsCollector


class StatsCollector(MemoryStatsCollector):
    __getattribute__ = object.__getattribute__
