"""Project commands (``COMMANDS_MODULE``): ``crawl`` with exit statuses (see ``crawl.py``)."""
