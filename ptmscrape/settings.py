"""Scrapy settings for ptmscrape.

Every custom setting has the ``PTM_`` prefix, is defined here with its default and a one-line doc
comment, and is listed in the README's settings table (a test keeps the two in sync).
Override any of them on the command line: ``scrapy crawl huggingface -s PTM_CLONE=0``.
"""

import os

BOT_NAME = "ptmscrape"
SPIDER_MODULES = ["spiders"]
NEWSPIDER_MODULE = "spiders"

# --- hubs -----------------------------------------------------------------------------------
# Base URL of the Hugging Face Hub (API under /api, git repositories under /<model id>).
PTM_HUGGINGFACE_URL = "https://huggingface.co"
# Fields requested from /api/models with expand[] (empty: use full=true&config=true&cardData=true).
PTM_HUGGINGFACE_EXPAND = [
    "author", "cardData", "config", "createdAt", "disabled", "downloads", "downloadsAllTime",
    "gated", "lastModified", "library_name", "likes", "pipeline_tag", "private", "safetensors",
    "sha", "siblings", "tags", "usedStorage",
]
# Models per /api/models page (the Hub caps it at 1000).
PTM_HUGGINGFACE_PAGE_SIZE = 1000

# --- dataset tree ---------------------------------------------------------------------------
# Root of the dataset tree: <dir>/<hub>/{<hub>.jsonl,snapshots/,json/metadata/,repos/}.
PTM_DATA_DIR = "data"

# --- clone stage ----------------------------------------------------------------------------
# Clone (or update) each model's git repository into <data>/<hub>/repos/<owner>/<name>.
PTM_CLONE = True
# Fetch Git LFS objects (model weights). Off: only the small LFS pointer files are checked out.
PTM_CLONE_LFS = False
# History depth of new clones; 0 clones the full history.
PTM_CLONE_DEPTH = 0
# Git processes running at once (threads off the reactor; the crawl never waits on them).
PTM_CLONE_CONCURRENCY = 4
# Colon-separated git transports allowed for clones (git's GIT_ALLOW_PROTOCOL syntax).
PTM_GIT_ALLOW_PROTOCOL = "https"
# Abort a transfer slower than 1 KB/s for this many seconds (git's http.lowSpeedTime).
PTM_GIT_STALL_TIMEOUT = 60
# Kill any single git command (clone, fetch, lfs pull) running longer than this many seconds.
PTM_GIT_TIMEOUT = 3600

# --- reports -------------------------------------------------------------------------------
# Write the crawl's final stats (finish reason, ptm/... counters) as JSON to this file ('' = off).
PTM_STATS_FILE = ""

# --- politeness and rate limits -------------------------------------------------------------
# Longest wait (seconds) honoured from a 429's RateLimit t= or Retry-After before giving up.
PTM_RATELIMIT_MAX_WAIT = 600
# How many times one request is retried after a 429 before it is reported as failed.
PTM_RATELIMIT_MAX_RETRIES = 8

# --- Scrapy ---------------------------------------------------------------------------------
ROBOTSTXT_OBEY = False  # the hubs' APIs are meant for programmatic use
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 8
DOWNLOAD_TIMEOUT = 120
RETRY_TIMES = 5
USER_AGENT = "ptmscrape (+https://github.com/ptmscrape/ptmscrape)"
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = os.environ.get("PTM_LOG_LEVEL", "INFO")
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"

DOWNLOADER_MIDDLEWARES = {
    # Before RetryMiddleware (550) on the response path: waits what the hub asks on a 429.
    "ptmscrape.middlewares.RateLimitMiddleware": 560,
    # After RedirectMiddleware (600) on the request path, so the token is added at download
    # time only and never copied into a queued (JOBDIR, Redis) redirect or retry request.
    "ptmscrape.middlewares.HubAuthMiddleware": 650,
}

EXTENSIONS = {
    "ptmscrape.extensions.StatsFile": 500,
}

ITEM_PIPELINES = {
    "pipelines.map.MapPipeline": 100,
    "pipelines.validate.ValidatePipeline": 200,
    "pipelines.dedupe.DedupePipeline": 300,
    "pipelines.clone.ClonePipeline": 400,
    "pipelines.store.StorePipeline": 500,
}
