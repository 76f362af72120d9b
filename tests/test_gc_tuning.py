"""The crawl's garbage-collector settings (ptmscrape/gc_tuning.py) are in force only while the
engine runs."""

import gc
import os
import subprocess

from ptmscrape import settings
from ptmscrape.gc_tuning import CRAWL_GC_THRESHOLD, GcTuning, freeze_before_exit
from tests.crawl import ROOT, crawl_command


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


def test_freezing_before_exit_keeps_the_collector_off_what_exists():
    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # cyclic garbage once the names are gone
    del a, b
    try:
        freeze_before_exit()
        assert gc.collect() == 0 and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    assert gc.collect() >= 2  # the collector finds the pair again


def test_a_crawl_process_ends_with_its_objects_frozen(tmp_path, hf_replica):
    """Python's collections at shutdown skip frozen objects: the crawl command freezes them after the
    crawl (GcTuning has unfrozen the start-up objects when the engine stopped)."""
    seen = tmp_path / "freeze-count"
    cmd = crawl_command("huggingface", tmp_path / "out.jsonl", tmp_path / "data", tmp_path / "stats.json",
                        args={"limit": 2}, settings={"PTM_HUGGINGFACE_URL": hf_replica.url, "PTM_CLONE": 0})
    # Registered before Scrapy's own handlers, so it runs after them, as late as a handler can.
    program = ("import atexit, gc, sys\n"
               f"atexit.register(lambda: open({str(seen)!r}, 'w').write(str(gc.get_freeze_count())))\n"
               "from scrapy.cmdline import execute\n"
               "sys.argv = ['scrapy', *sys.argv[1:]]\n"
               "execute()\n")
    proc = subprocess.run([cmd[0], "-c", program, *cmd[3:]], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(seen.read_text()) > 10_000
