"""The crawl's garbage-collector settings (ptmscrape/gc_tuning.py) are in force only while the
engine runs."""

import gc

from ptmscrape import settings
from ptmscrape.gc_tuning import CRAWL_GC_THRESHOLD, GcTuning


def test_the_collector_is_tuned_while_the_engine_runs_and_restored_after():
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    ext = GcTuning()
    ext.engine_started()
    try:
        assert gc.get_threshold() == (max(CRAWL_GC_THRESHOLD, before[0]), *before[1:])
        assert gc.get_freeze_count() > 0  # start-up objects are no longer traversed
        ext.engine_started()  # a second start signal changes nothing
        assert gc.get_threshold()[0] == max(CRAWL_GC_THRESHOLD, before[0])
    finally:
        ext.engine_stopped()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    ext.engine_stopped()  # and a second stop neither
    assert gc.get_threshold() == before


def test_every_crawl_has_it():
    assert settings.EXTENSIONS.get("ptmscrape.gc_tuning.GcTuning") is not None


def test_two_crawls_at_once_restore_the_collector_when_the_last_one_stops():
    before = gc.get_threshold()
    first, second = GcTuning(), GcTuning()
    first.engine_started()
    second.engine_started()
    first.engine_stopped()
    assert gc.get_threshold()[0] == max(CRAWL_GC_THRESHOLD, before[0]) and gc.get_freeze_count() > 0
    second.engine_stopped()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
