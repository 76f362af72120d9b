"""Hugging Face change history and community data through the Hub API (``-a history=…``).

* ``spider.py``  — the spider mixin: which calls to make per model, their paging, what changed;
* ``store.py``   — the history files of the dataset tree and the state a re-crawl starts from;
* ``tables.py``  — rows of the ``commit``, ``ref``, ``discussion``, ``discussion_event`` and
  ``file`` tables (no Scrapy: for exporters);
* ``progress.py`` — the progress line (calls, models, rows).

The pipeline that writes the history items is ``pipelines/history.py``.
"""
