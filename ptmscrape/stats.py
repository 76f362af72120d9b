"""Every stats name the project counts, one constant each: ``ptm/<stage>/…``.

A name ending in ``/`` is the prefix of a family (``CLONE_FAILED_BY_REASON + reason`` is
``ptm/clone/failed/<reason>``). ``docs/stats.md`` lists every one, with its meaning, and no other
module spells a ``ptm/…`` name out (``tests/test_docs.py`` checks both).
"""

from __future__ import annotations

# -- pages (spiders): what the hub served ------------------------------------------------------
PAGES_FAILED = "ptm/pages/failed"
PAGES_FAILED_BY_KIND = "ptm/pages/failed/"
PAGES_NOT_FOUND = "ptm/pages/not_found"
# Listing pages lost for good that a next page was asked from: the pages after them were not read.
PAGES_LISTING_CUT_SHORT = "ptm/pages/listing_cut_short"
PAGES_RETRIED = "ptm/pages/retried"
PAGES_RETRIED_BY_KIND = "ptm/pages/retried/"
PAGES_TREE_TRUNCATED = "ptm/pages/tree_truncated"
PAGES_TREE_MODEL_FILES = "ptm/pages/tree_model_files"
PAGES_UNSAFE_TREE_PATHS = "ptm/pages/unsafe_tree_paths"
PAGES_GENERATED_MODELS_LISTED = "ptm/pages/generated_models_listed"
PAGES_UNVERIFIED_MODELS_SKIPPED = "ptm/pages/unverified_models_skipped"
PAGES_UNLISTED_MODEL_FOLDERS = "ptm/pages/unlisted_model_folders"
PAGES_ENTRIES_WITHOUT_NAME = "ptm/pages/entries_without_name"
PAGES_ENTRIES_WITHOUT_SLUG = "ptm/pages/entries_without_slug"
PAGES_INVALID_TAGS = "ptm/pages/invalid_tags"
PAGES_MALFORMED_TABLE_ROWS = "ptm/pages/malformed_table_rows"
PAGES_NOT_A_MODEL = "ptm/pages/not_a_model"
PAGES_READMES_WITHOUT_MODELS = "ptm/pages/readmes_without_models"
PAGES_ROWS_WITHOUT_LINK = "ptm/pages/rows_without_link"

# -- rate limits (downloader middleware) -------------------------------------------------------
RATELIMIT_WAITS = "ptm/ratelimit/waits"
RATELIMIT_WAIT_SECONDS = "ptm/ratelimit/wait_seconds"
RATELIMIT_PACED = "ptm/ratelimit/paced"
RATELIMIT_PACED_SECONDS = "ptm/ratelimit/paced_seconds"
RATELIMIT_GAVE_UP = "ptm/ratelimit/gave_up"

# -- pipeline stages ---------------------------------------------------------------------------
MAP_MAPPED = "ptm/map/mapped"
MAP_FAILED = "ptm/map/failed"
VALIDATE_VALID = "ptm/validate/valid"
VALIDATE_INVALID = "ptm/validate/invalid"
DEDUPE_UNIQUE = "ptm/dedupe/unique"
DEDUPE_DUPLICATE = "ptm/dedupe/duplicate"
DEDUPE_STORED_BEFORE_RESUME = "ptm/dedupe/stored_before_resume"
DEDUPE_STORED_BY_EARLIER_RUNS = "ptm/dedupe/stored_by_earlier_runs"
DEDUPE_REDELIVERED = "ptm/dedupe/redelivered"
DEDUPE_STORED_BY_DEAD_WORKER = "ptm/dedupe/stored_by_dead_worker"
CLONE_BY_STATUS = "ptm/clone/"
CLONE_CLONED = "ptm/clone/cloned"
CLONE_DEFERRED = "ptm/clone/deferred"  # git jobs the crawl's close came before (a pause)
CLONE_UPDATED = "ptm/clone/updated"
CLONE_UNCHANGED = "ptm/clone/unchanged"
CLONE_SKIPPED = "ptm/clone/skipped"
CLONE_FAILED = "ptm/clone/failed"
CLONE_FAILED_BY_REASON = "ptm/clone/failed/"
# Models whose clone was not started: less free disk space than PTM_CLONE_MIN_FREE_GB (the verdict counts it).
CLONE_FAILED_NO_DISK_SPACE = "ptm/clone/failed/not enough free disk space"
# Models whose clone failed for a reason of this machine, not of the repository (a read-only, full or
# failing file system, git missing or broken; not lack of disk space, counted above): the verdict counts it.
CLONE_FAILED_LOCALLY = "ptm/clone/failed_locally"
CLONE_FAILED_LOCALLY_BY_REASON = "ptm/clone/failed_locally/"
CLONE_REPOS_BY_STATUS = "ptm/clone/repos/"
# Tries again of a git job that failed for a reason of the moment (PTM_CLONE_RETRIES), by reason.
CLONE_RETRIED = "ptm/clone/retried"
CLONE_RETRIED_BY_REASON = "ptm/clone/retried/"
# Git jobs waiting now to be tried again (a gauge, as ptm/clone/waiting and ptm/clone/running).
CLONE_RETRYING = "ptm/clone/retrying"
CLONE_NO_REPO_URL = "ptm/clone/no_repo_url"
CLONE_QUEUED = "ptm/clone/queued"
CLONE_SHARED = "ptm/clone/shared"
CLONE_WAITING = "ptm/clone/waiting"
CLONE_RUNNING = "ptm/clone/running"
CLONE_BYTES = "ptm/clone/bytes"
STORE_RECORDS = "ptm/store/records"
STORE_RAW_PAYLOADS = "ptm/store/raw_payloads"
STORE_RAW_PAYLOADS_UNCHANGED = "ptm/store/raw_payloads_unchanged"
STORE_SNAPSHOT = "ptm/store/snapshot"
STORE_DATASET_RECORDS = "ptm/store/dataset_records"
STORE_NOT_SEEN_THIS_CRAWL = "ptm/store/not_seen_this_crawl"
STORE_REMOVED = "ptm/store/removed"
STORE_FAILED = "ptm/store/failed"
STORE_FAILED_BY_REASON = "ptm/store/failed/"
STORE_MERGE_FAILED = "ptm/store/merge_failed"

# -- feeds (-O out.csv) ------------------------------------------------------------------------
FEED_CSV_CELLS_GUARDED = "ptm/feed/csv_cells_guarded"
# Items a feed missed: its file stopped taking them (a full disk; ptmscrape/feeds.py). Fails the crawl.
FEED_NOT_WRITTEN = "ptm/feed/not_written"
FEED_NOT_WRITTEN_BY_REASON = "ptm/feed/not_written/"

# -- -a history ---------------------------------------------------------------------------------
HISTORY_MODELS = "ptm/history/models"
HISTORY_CALLS = "ptm/history/calls"
HISTORY_CALLS_BY_KIND = "ptm/history/calls/"
HISTORY_FAILED = "ptm/history/failed"
HISTORY_FAILED_BY = "ptm/history/failed/"
HISTORY_LOST = "ptm/history/lost"
HISTORY_LOST_BY_REASON = "ptm/history/lost/"
HISTORY_UNCHANGED_BY_KIND = "ptm/history/unchanged/"
HISTORY_MALFORMED_BY_KIND = "ptm/history/malformed/"
HISTORY_SKIPPED_BY_REASON = "ptm/history/skipped/"
HISTORY_STORED_BY_FILE = "ptm/history/stored/"
HISTORY_STORED_FAILURES = "ptm/history/stored/failures"
HISTORY_REWRITTEN = "ptm/history/rewritten"
HISTORY_RELISTED = "ptm/history/relisted"
HISTORY_PR_HEAD_MOVED = "ptm/history/pr_head_moved"
HISTORY_REFRESHED = "ptm/history/refreshed"

# -- the crawl as a whole ----------------------------------------------------------------------
JOB_RESTARTED_AFTER_KILL = "ptm/job/restarted_after_kill"
JOB_RESTARTED_AFTER_UNSAVED_STATE = "ptm/job/restarted_after_unsaved_state"
JOB_STATE_NOT_SAVED = "ptm/job/state_not_saved"
JOB_PAGES_FETCHED_AGAIN = "ptm/job/pages_fetched_again"
JOB_HISTORY_CALLS_FETCHED_AGAIN = "ptm/job/history_calls_fetched_again"
JOB_UNSTORED_FETCHED_AGAIN = "ptm/job/pages_of_unstored_models_fetched_again"
DISTRIBUTED_REQUEUED = "ptm/distributed/requeued"
MONITORS_PASSED = "ptm/monitors/passed"
MONITORS_FAILED = "ptm/monitors/failed"
MONITORS_FAILED_BY_MONITOR = "ptm/monitors/failed/"
# Models an item stage failed on with an error it did not foresee (an exception other than
# DropItem): the model is lost; by the exception's class.
ITEMS_FAILED = "ptm/items/failed"
ITEMS_FAILED_BY_ERROR = "ptm/items/failed/"
VERDICT_EXIT_STATUS = "ptm/verdict/exit_status"
VERDICT_REASON = "ptm/verdict/reason"


def names() -> dict[str, str]:
    """Every constant of this module: ``{constant: stats name}``."""
    return {k: v for k, v in globals().items() if k.isupper() and isinstance(v, str) and v.startswith("ptm/")}
