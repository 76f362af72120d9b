"""The dataset tree as an analyst opens it: an SQLite database (``sqlite.py``), Parquet files
(``parquet.py``) and an HTML report with plots (``report.py``). The tables are a registry
(``registry.py``); the core ones are in ``models.py``. Scrapy-free: the ``scrapy export`` and
``scrapy report`` commands (``ptmscrape/commands/``) only parse options and call these modules."""
