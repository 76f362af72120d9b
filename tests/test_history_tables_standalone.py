"""The history tables module is for exporters: it must load without Scrapy."""

import subprocess
import sys

from tests.crawl import ROOT


def test_tables_module_imports_no_scrapy():
    probe = ("import sys; from ptmscrape.history import tables; "
             "assert set(tables.TABLES) == {'commit', 'ref', 'discussion', 'discussion_event', 'file'}; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('scrapy', 'twisted')))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
