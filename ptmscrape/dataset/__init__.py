"""The dataset tree: every path under the data dir is made here, and nowhere else.

Layout (``PTM_DATA_DIR``, default ``data``)::

    <data>/<hub>/<hub>.jsonl                    latest record of every model (one line each)
    <data>/<hub>/snapshots/<hub>-<stamp>.jsonl  the records of one crawl (a time series)
    <data>/<hub>/json/payloads/<hub>-<stamp>.jsonl  raw hub payloads of one crawl, one line each
                                                (a record's MetadataFilePath: ``<file>#<offset>``)
    <data>/<hub>/repos/<owner>/<name>/          clone of a hub-hosted repository (the model's id)
    <data>/<hub>/repos/<path below the host>/   clone of any other repository (its URL's path)
    <data>/repo-index.jsonl                     repo URL (and branch) -> clone path, shared by all hubs

One module per job; import from the module that owns it (this package re-exports nothing):

* ``paths``: path rules (``segment``, ``records_file``, ``repo_dir_of``, …), pure functions;
* ``tree``: ``DatasetTree``, checked paths and atomic writes, removal of killed writers' temp files;
* ``jsonl``: JSON Lines readers (torn tails skipped) and ``compact_json``;
* ``snapshots``: a crawl's snapshot writer, pending snapshots, the merge into ``<hub>.jsonl``;
* ``payloads``: raw payload files (writer, unchanged-payload lookup, ``read_payload``);
* ``processes``: ``pid_alive``, ``group_running``.
"""
