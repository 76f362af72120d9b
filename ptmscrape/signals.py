"""This project's own signals (Scrapy's are in ``scrapy.signals``): how one part tells another what
happened, so that no part reads another's stats as shared state. Sent with
``crawler.signals.send_catch_log(signal, **arguments)``.
"""

from __future__ import annotations

snapshot_opened = object()
"""The store stage opened this crawl's snapshot. Arguments: ``tree`` (the ``DatasetTree``),
``hub``, ``stamp`` (of this crawl's files) and ``snapshot`` (the snapshot's ``Path``)."""

records_merged = object()
"""The store stage merged snapshots into ``<hub>.jsonl`` as the crawl closed. Arguments:
``snapshots`` (their ``Path``s) and ``carried`` (how many models of the file none of them holds)."""

page_failed = object()
"""A page was lost for good (failed to download, or still malformed after its retries, or a
truncated listing): the models it lists may be missing from this crawl. Arguments: ``kind`` and
``request`` (the page's request, to fetch it again when a JOBDIR job resumes; None if unknown)."""

history_call_lost = object()
"""An ``-a history`` call was lost for good (failed after retries, rate limited, still malformed, a
next link off the hub; not the hub's refusals): that model's history of one kind is missing from this
crawl. Arguments: ``reason`` and ``request`` (the call's request, to fetch it again when a JOBDIR job
resumes; None if unknown)."""

model_unmapped = object()
"""A model the hub listed could not be mapped to a record. Argument: ``item`` (its ``RawModelItem``)."""

model_not_stored = object()
"""The store stage could not store a model (the dataset tree refused its lines: a full disk, …) and
dropped it; the crawl is being stopped. Arguments: ``reason`` and ``request`` (the request whose
response gave the model: a listing page, the model's own page; with a JOBDIR it is fetched again
when the job resumes, its fingerprint being in Scrapy's ``requests.seen``; None if unknown)."""

jobdir_write_failed = object()
"""A write to Scrapy's state in the ``JOBDIR`` failed (``ptmscrape/jobdir_writes.py``); the request
concerned is kept in memory, so this run loses nothing, but the ``JOBDIR`` no longer holds the job's
state. Arguments: ``where`` (``requests.queue`` or ``requests.seen``) and ``error`` (the exception, an
``OSError`` but for a damaged queue file)."""
