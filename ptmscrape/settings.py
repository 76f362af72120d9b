"""Scrapy settings for ptmscrape.

Every custom setting has the ``PTM_`` prefix, is defined here with its default and a one-line doc
comment, and is listed in the settings table of docs/settings.md (a test keeps the two in sync).
Override any of them on the command line: ``scrapy crawl huggingface -s PTM_CLONE=0``.
"""

import os

BOT_NAME = "ptmscrape"
SPIDER_MODULES = ["spiders"]
NEWSPIDER_MODULE = "spiders"
# Project commands: `scrapy crawl` checks arguments and settings first and exits 0/1/2 (README
# "Exit status"); `scrapy export` and `scrapy report` turn the dataset tree into tables and a report.
COMMANDS_MODULE = "ptmscrape.commands"

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
# Commits per /api/models/<id>/commits/<rev> page of -a history=commits (the Hub's default is 50).
PTM_HUGGINGFACE_COMMITS_PAGE_SIZE = 100
# Days after which -a history=discussions fetches a stored discussion's details again though its list
# entry did not move (an edited or hidden comment moves nothing the list shows); 0 = never.
PTM_HUGGINGFACE_DISCUSSIONS_REFRESH_DAYS = 0
# URL of Modelhub's model index (a JSON array; each model's code is a GitHub repository).
PTM_MODELHUB_INDEX_URL = "https://raw.githubusercontent.com/modelhub-ai/modelhub/master/models.json"
# Base URL of PyTorch Hub (listing <base>/research-models/compact, model pages <base>/<slug>/).
PTM_PYTORCHHUB_URL = "https://pytorch.org/hub"
# Base URL of ModelZoo (JSON API under /api/models/, JavaScript site pages under / and /model/).
PTM_MODELZOO_URL = "https://modelzoo.co"
# Seconds Splash waits after a ModelZoo page loaded (-a render=splash) for its JavaScript to fill it.
PTM_MODELZOO_SPLASH_WAIT = 1.0
# Raw-file base of the ONNX Model Zoo repository (<base>/README.md, <base>/<model folder>/README.md).
PTM_ONNX_RAW_URL = "https://raw.githubusercontent.com/onnx/models/main"
# The ONNX Model Zoo git repository holding every model folder (cloned once per crawl).
PTM_ONNX_REPO_URL = "https://github.com/onnx/models"
# GitHub git-trees listing (recursive) of the ONNX zoo: finds the generated models and model folders
# no index table links; empty: skip them.
PTM_ONNX_TREE_URL = "https://api.github.com/repos/onnx/models/git/trees/main?recursive=1"
# Base URL of Civitai (REST API under /api/v1/; models have no git repository).
PTM_CIVITAI_URL = "https://civitai.com"
# Models per /api/v1/models page (the API allows at most 100).
PTM_CIVITAI_PAGE_SIZE = 100
# Base URL of the Ollama site (HTML library listing <base>/library, tag pages <base>/library/<m>/tags).
PTM_OLLAMA_URL = "https://ollama.com"
# Base URL of Ollama's OCI registry (tag manifests at <base>/v2/library/<model>/manifests/<tag>).
PTM_OLLAMA_REGISTRY_URL = "https://registry.ollama.ai"
# Base URL of ModelScope (catalogue PUT /api/v1/dolphin/models, git repositories /<owner>/<name>.git).
PTM_MODELSCOPE_URL = "https://www.modelscope.cn"
# Models per ModelScope listing page (PageSize of the catalogue and of the per-owner listing).
PTM_MODELSCOPE_PAGE_SIZE = 100
# The tensorflow/tfhub.dev git repository: TF Hub's model documentation (cloned once per crawl).
PTM_TFHUB_REPO_URL = "https://github.com/tensorflow/tfhub.dev"
# Raw-file base of tensorflow/tfhub.dev (<base>/assets/docs/<publisher>/models/<model>/<version>.md).
PTM_TFHUB_RAW_URL = "https://raw.githubusercontent.com/tensorflow/tfhub.dev/master"
# GitHub's recursive git-trees API for tensorflow/tfhub.dev: every model file in one request.
PTM_TFHUB_TREE_URL = "https://api.github.com/repos/tensorflow/tfhub.dev/git/trees/master?recursive=1"
# The OpenVINO Open Model Zoo git repository holding every model.yml (cloned once per crawl).
PTM_OPENVINO_REPO_URL = "https://github.com/openvinotoolkit/open_model_zoo"
# Raw-file base of open_model_zoo (<base>/models/{intel,public}/<name>/model.yml).
PTM_OPENVINO_RAW_URL = "https://raw.githubusercontent.com/openvinotoolkit/open_model_zoo/master"
# GitHub's recursive git-trees API for open_model_zoo: every model.yml in one request.
PTM_OPENVINO_TREE_URL = "https://api.github.com/repos/openvinotoolkit/open_model_zoo/git/trees/master?recursive=1"

# --- dataset tree ---------------------------------------------------------------------------
# Root of the dataset tree: <dir>/<hub>/{<hub>.jsonl,snapshots/,json/payloads/,repos/}.
PTM_DATA_DIR = "data"

# --- clone stage ----------------------------------------------------------------------------
# Clone (or update) each model's git repository into <data>/<hub>/repos/<owner>/<name>.
PTM_CLONE = True
# Fetch Git LFS objects (model weights). Off: only the small LFS pointer files are checked out.
PTM_CLONE_LFS = False
# History depth of new clones; 0 clones the full history.
PTM_CLONE_DEPTH = 0
# Git processes running at once (threads off the reactor; the crawl never waits on them).
# A clone mostly waits on round trips (bench/RESULTS.md: 16 clone 5x faster than a git clone loop).
PTM_CLONE_CONCURRENCY = 16
# Start no clone or update while the data dir's file system has less than this many GB (10^9 bytes)
# free, and stop those running once it falls below; their models get CloneStatus
# "failed: not enough free disk space (...)" and the crawl exits 1. 0 = off.
PTM_CLONE_MIN_FREE_GB = 10.0
# Kill a new clone once what it downloaded (pack or loose objects, LFS objects) passes this many GB, or an update
# once what it added to its clone's objects does; its model gets CloneStatus "failed: larger than PTM_CLONE_MAX_GB"
# and nothing lands (an updated clone stays as it was). 0 = off.
PTM_CLONE_MAX_GB = 20.0
# Try a clone or update again, up to this many times, when it failed for a reason of the moment
# (HTTP 429 or 5xx, a connection dropped or stalled; never a 401/403/404, a missing branch, a size or
# disk limit), within the crawl. 0 = off: the next crawl tries again.
PTM_CLONE_RETRIES = 2
# Seconds before the first such retry, doubled before each further one (at most 600).
PTM_CLONE_RETRY_DELAY = 30.0
# Colon-separated git transports allowed for clones (git's GIT_ALLOW_PROTOCOL syntax).
PTM_GIT_ALLOW_PROTOCOL = "https"
# Abort a transfer slower than 1 KB/s for this many seconds (git's http.lowSpeedTime).
PTM_GIT_STALL_TIMEOUT = 60
# Kill any single git command (clone, fetch, lfs pull) running longer than this many seconds.
PTM_GIT_TIMEOUT = 3600
# Give git the hub's token (e.g. HF_TOKEN) for the hub's own host only, so gated repos clone.
PTM_GIT_SEND_TOKEN = True

# --- distributed crawl (scrapy-redis; see ptmscrape/distributed.py) -------------------------
# Redis URL shared by all workers of a distributed crawl, e.g. redis://host:6379/0 ('' = one process).
# Also read from the environment: a password given with -s shows in `ps`, and with Scrapyd's
# setting= in its listjobs.json and web pages.
PTM_REDIS_URL = os.environ.get("PTM_REDIS_URL", "")
# Prefix of the crawl's Redis keys (<prefix>:<spider>:requests, …); one prefix per distributed crawl.
PTM_REDIS_PREFIX = "ptmscrape"

# --- reports -------------------------------------------------------------------------------
# Write the crawl's final stats (finish reason, ptm/... counters) as JSON to this file ('' = off).
PTM_STATS_FILE = ""
# CSV feeds: a text cell beginning with = + - @ tab or CR gets a leading ' (spreadsheets run such
# cells as formulas, and hub text is anybody's); off for exact values in pandas.
PTM_CSV_FORMULA_GUARD = True
# Seconds between clone progress lines (queued/running/done/failed, bytes); 0 = off.
PTM_PROGRESS_INTERVAL = 60.0
# Every this many seconds, log each download waited on longer than that (URL, seconds); 0 = off.
PTM_WAIT_REPORT_INTERVAL = 30.0
# Run spidermon's end-of-crawl monitors (min items, max errors, finish reason); see monitors.py.
PTM_MONITORS = False

# --- politeness and rate limits -------------------------------------------------------------
# Longest wait (seconds) honoured from a 429's RateLimit t= or Retry-After (a longer one is cut to it).
PTM_RATELIMIT_MAX_WAIT = 600.0
# Longest wait (seconds) until a rate limit's window resets at the time the hub names (GitHub's 403 or 429
# with x-ratelimit-remaining: 0 and x-ratelimit-reset; its window is an hour); a later reset gives the request up.
PTM_RATELIMIT_MAX_RESET_WAIT = 3660.0
# How many times one request is retried after a 429 before it is reported as failed.
PTM_RATELIMIT_MAX_RETRIES = 8
# Wait (seconds) before retrying a 429 that names no wait; doubles with each further 429.
PTM_RATELIMIT_DEFAULT_WAIT = 5.0
# Seconds before the first retry of a failed or malformed page; doubles each retry (jittered).
PTM_RETRY_BACKOFF = 1.0
# Longest back-off (seconds) between two retries of one page.
PTM_RETRY_BACKOFF_MAX = 60.0
# Pace requests once a response's RateLimit header shows fewer calls left than this share of the quota.
PTM_RATELIMIT_PACE_BELOW = 0.1
# Times a malformed page (cut short, not JSON, incomplete HTML) is fetched again before it is reported.
PTM_PAGE_RETRIES = 3
# An HTML page larger than this many MB is reported, not parsed: lxml takes ~40 bytes of memory per
# byte of tiny elements (a 200 MB page, several at once, filled a 24 GB machine). Hub pages are < 1 MB.
PTM_MAX_HTML_MB = 4

# --- Scrapy ---------------------------------------------------------------------------------
ROBOTSTXT_OBEY = False  # the hubs' APIs are meant for programmatic use
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 8
# API-sized: a silent hub is given up after (5 retries + 1) x 30 s + back-off (~31 s) < 4 min.
DOWNLOAD_TIMEOUT = 30
# Scrapy's default is 1 GB per response (16 at once); hub answers are a few MB (a Hugging Face page
# of 1,000 models ~2 MB, GitHub's trees at most 7 MB). A larger one fails its page (DownloadCancelledError).
DOWNLOAD_MAXSIZE = 64 * 1024 * 1024
RETRY_TIMES = 5
USER_AGENT = "ptmscrape (+https://github.com/ptmscrape/ptmscrape)"
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = os.environ.get("PTM_LOG_LEVEL", "INFO")
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
LOGSTATS_INTERVAL = 60.0  # pages and items per minute, logged by Scrapy's LogStats
# Scrapy's telnet console logs its password at INFO, in a log Scrapyd serves over HTTP; with it, a
# local user runs code in the crawl, which holds HF_TOKEN. -s TELNETCONSOLE_ENABLED=1 brings it back.
TELNETCONSOLE_ENABLED = False
# Scrapy 2.19's remote control (an HTTP server running Python sent to it) writes its port and token to
# a file in ~/.local/state/scrapy/job_files, outside the data dir, which every killed crawl leaves
# there for good. -s REMOTE_CONTROL_ENABLED=1 brings it back.
REMOTE_CONTROL_ENABLED = False
LOG_FORMATTER = "ptmscrape.logformatter.ConciseLogFormatter"  # dropped items: reason + a short excerpt
# Scrapy's in-memory stats without the per-attribute deprecation check that cost ~60 µs a model.
STATS_CLASS = "ptmscrape.compat.stats.StatsCollector"
# Scrapy's item pipeline chain without naming every stage for every item (~7 µs a model).
ITEM_PROCESSOR = "ptmscrape.compat.itemproc.ItemPipelineManager"
# Scrapy reads and parses a generator callback's source on every response to warn of a `return
# value` in it (its cache never hits for bound methods: ~2 ms a page); tests/test_project.py checks
# every spider's callbacks once instead.
WARN_ON_GENERATOR_RETURN_VALUE = False

DOWNLOADER_MIDDLEWARES = {
    # Before RetryMiddleware (550) on the response path: waits what the hub asks on a 429.
    "ptmscrape.middlewares.RateLimitMiddleware": 560,
    # Spreads requests out while the hub's RateLimit header shows few calls left (history crawls).
    "ptmscrape.middlewares.RateLimitPacingMiddleware": 570,
    # Scrapy's retries (5xx, resets, cut-off bodies) with exponential back-off (PTM_RETRY_BACKOFF).
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "ptmscrape.middlewares.BackoffRetryMiddleware": 550,
    # Before RedirectMiddleware (600) on the response path: a redirect to another host fails the request.
    "ptmscrape.middlewares.HubRedirectMiddleware": 605,
    # After RedirectMiddleware (600) on the request path, so the token is added at download
    # time only and never copied into a queued (JOBDIR, Redis) redirect or retry request.
    "ptmscrape.middlewares.HubAuthMiddleware": 650,
}

SPIDER_MIDDLEWARES = {
    # Scrapy's URLLENGTH_LIMIT, but a next page or history call it refuses is reported as lost.
    "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
    "ptmscrape.middlewares.ReportedUrlLengthMiddleware": 800,
    # Closest to the spider: a listing's next page goes out before the page's models are processed.
    "ptmscrape.next_page_first.NextPageFirstMiddleware": 950,
}

# Splash server for JavaScript pages (modelzoo -a render=splash); also read from the environment.
SPLASH_URL = os.environ.get("SPLASH_URL", "")

ADDONS = {
    # Scrapy's scheduler, dupefilter and disk queue, keeping a request whose JOBDIR write fails (a full
    # disk) in memory; before RedisDistribution, which puts the shared ones in their place.
    "ptmscrape.jobdir_writes.JobdirWrites": -10,
    # Switches to the shared Redis scheduler when PTM_REDIS_URL is set (does nothing otherwise).
    "ptmscrape.distributed.RedisDistribution": 0,
    # Enables spidermon's monitors when PTM_MONITORS is on (does nothing otherwise).
    "ptmscrape.monitors.Monitors": 0,
    # Routes Splash requests through Splash when SPLASH_URL is set (does nothing otherwise).
    "ptmscrape.rendering.SplashRendering": 0,
}

# JSON Lines feeds (-O x.jsonl): Scrapy's exporter, minus its per-field walk for dict items.
FEED_EXPORTERS = {
    "jsonlines": "ptmscrape.exporters.JsonLinesItemExporter",
    "jsonl": "ptmscrape.exporters.JsonLinesItemExporter",
    "jl": "ptmscrape.exporters.JsonLinesItemExporter",
    # CSV (-O x.csv): nested keys flattened into columns (ModelHub.ModelHubName), lists as JSON.
    "csv": "ptmscrape.exporters.CsvItemExporter",
}

EXTENSIONS = {
    # Scrapy's (same priority), reporting a spider.state it cannot write (ptmscrape/jobdir_writes.py).
    "scrapy.extensions.spiderstate.SpiderState": None,
    "ptmscrape.jobdir_writes.JobSpiderState": 0,
    # Scrapy's (same priority), with a feed the disk stops taking said once and failing the crawl.
    "scrapy.extensions.feedexport.FeedExporter": None,
    "ptmscrape.feeds.GuardedFeedExporter": 0,
    # Signals dispatched without an asyncio task per receiver (item_scraped: ~55 µs a model).
    "ptmscrape.compat.signals.InlineSignalDispatch": 0,
    # After Scrapy's SpiderState (0): with JOBDIR, makes resuming after a hard kill safe.
    "ptmscrape.jobdir.JobGuard": 100,
    # Before StatsFile: the verdict (exit status, reason) is in the stats file too.
    "ptmscrape.extensions.CrawlVerdict": 400,
    "ptmscrape.extensions.WaitReport": 500,
    "ptmscrape.extensions.StatsFile": 500,
    "ptmscrape.extensions.CloneProgress": 500,
    "ptmscrape.history.progress.HistoryProgress": 500,
    # Models not seen by a complete crawl, after the store stage's merge (fed by ptmscrape/signals.py).
    "ptmscrape.removed.RemovedModelsReport": 500,
    # Fewer garbage collections during the crawl (a crawl's data is freed by reference counting).
    "ptmscrape.gc_tuning.GcTuning": 900,
}

ITEM_PIPELINES = {
    # -a history=… items (not models): stored in <data>/<hub>/history/ and kept out of the rest.
    "pipelines.history.HistoryPipeline": 50,
    "pipelines.map.MapPipeline": 100,
    "pipelines.validate.ValidatePipeline": 200,
    "pipelines.dedupe.DedupePipeline": 300,
    "pipelines.clone.ClonePipeline": 400,
    "pipelines.store.StorePipeline": 500,
}
