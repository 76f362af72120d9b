"""Splash on Scrapy 2.19: the fixed scrapy-splash components (ptmscrape/compat/splash.py), the settings
helper and add-on (ptmscrape/rendering.py), and a real crawl through the Splash server of ``.ci/splash.sh``.

The integration test needs Splash at ``SPLASH_URL`` (default http://127.0.0.1:8050): skipped when it
is not running, failed under ``CI=true`` (tests/services.py).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import uuid
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
import scrapy

from ptmscrape import rendering
from ptmscrape.compat import splash  # first: it makes scrapy_splash importable on this Scrapy (fix 1)

import scrapy_splash  # noqa: E402  (isort: skip)
from scrapy.core.downloader import Downloader
from scrapy.core.downloader.middleware import DownloaderMiddlewareManager
from scrapy.core.spidermw import SpiderMiddlewareManager
from scrapy.downloadermiddlewares.offsite import OffsiteMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.misc import load_object
from scrapy.utils.test import get_crawler

from tests.crawl import crawl_command
from tests.replicas.modelzoo import ModelZooReplica, fixture_models
from tests.services import require_service

ROOT = Path(__file__).resolve().parent.parent
SPLASH_URL = os.environ.get("SPLASH_URL", "http://127.0.0.1:8050")


def splash_warnings(lines) -> list[str]:
    """Warning lines (DeprecationWarning, ScrapyDeprecationWarning …) that concern Splash code."""
    return [
        line for line in lines
        if "Warning" in line
        and re.search(r"scrapy_splash|ptmscrape[./](compat[./])?splash|ptmscrape[./]rendering|Splash", line)
    ]


# --- cheap: import, settings, components --------------------------------------------------------


def test_import_works_and_settings_point_at_the_fixed_classes():
    # Importing ptmscrape.compat.splash made scrapy_splash importable on this Scrapy (fix 1).
    assert scrapy_splash.SplashRequest is splash.SplashRequest
    fixed = {
        "DOWNLOADER_MIDDLEWARES": {
            "ptmscrape.compat.splash.SplashCookiesMiddleware": (
                splash.SplashCookiesMiddleware, scrapy_splash.SplashCookiesMiddleware),
            "ptmscrape.compat.splash.SplashMiddleware": (splash.SplashMiddleware, scrapy_splash.SplashMiddleware),
        },
        "SPIDER_MIDDLEWARES": {
            "ptmscrape.compat.splash.SplashDeduplicateArgsMiddleware": (
                splash.SplashDeduplicateArgsMiddleware, scrapy_splash.SplashDeduplicateArgsMiddleware),
        },
    }
    s = rendering.splash_settings("http://splash.test:8050")
    assert s["SPLASH_URL"] == "http://splash.test:8050"
    for name, classes in fixed.items():
        for path, (ours, upstream) in classes.items():
            assert path in s[name]
            assert load_object(path) is ours and issubclass(ours, upstream)
    assert s["DOWNLOADER_MIDDLEWARES"]["ptmscrape.compat.splash.SplashMiddleware"] == 725
    assert s["DOWNLOADER_MIDDLEWARES"][
        "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware"] == 810
    assert load_object(s["REQUEST_FINGERPRINTER_CLASS"]) is splash.SplashRequestFingerprinter
    assert load_object(s["DUPEFILTER_CLASS"]) is splash.SplashAwareDupeFilter
    assert load_object(s["HTTPCACHE_STORAGE"]) is splash.SplashAwareFSCacheStorage
    assert not any(k.startswith("scrapy_splash.") for k in s["DOWNLOADER_MIDDLEWARES"])


def test_splash_settings_are_empty_without_a_splash_url(monkeypatch):
    monkeypatch.delenv("SPLASH_URL", raising=False)
    assert rendering.splash_settings() == {}
    assert rendering.splash_settings("") == {}
    assert rendering.splash_settings({"SPLASH_URL": "", "DOWNLOADER_MIDDLEWARES": {"a.B": 1}}) == {}
    monkeypatch.setenv("SPLASH_URL", "http://envsplash:8050")
    assert rendering.splash_settings()["SPLASH_URL"] == "http://envsplash:8050"


def test_splash_settings_merge_into_existing_settings():
    current = {
        "SPLASH_URL": "http://127.0.0.1:8050",
        "DOWNLOADER_MIDDLEWARES": {"ptmscrape.middlewares.HubAuthMiddleware": 650,
                                   "scrapy_splash.SplashMiddleware": 725},
        "SPIDER_MIDDLEWARES": {"scrapy_splash.SplashDeduplicateArgsMiddleware": 100},
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        "REQUEST_FINGERPRINTER_CLASS": "my.project.Fingerprinter",
    }
    s = rendering.splash_settings(current)
    assert s["DOWNLOADER_MIDDLEWARES"]["ptmscrape.middlewares.HubAuthMiddleware"] == 650
    assert "scrapy_splash.SplashMiddleware" not in s["DOWNLOADER_MIDDLEWARES"]  # replaced by ours
    assert s["SPIDER_MIDDLEWARES"] == {"ptmscrape.compat.splash.SplashDeduplicateArgsMiddleware": 100}
    assert "DUPEFILTER_CLASS" not in s  # scrapy-redis's is kept
    assert s["SCRAPY_SPLASH_REQUEST_FINGERPRINTER_BASE_CLASS"] == "my.project.Fingerprinter"
    assert current["DOWNLOADER_MIDDLEWARES"]["scrapy_splash.SplashMiddleware"] == 725  # not mutated


def test_addon_enables_splash_only_with_a_splash_url():
    off = get_crawler(settings_dict={"ADDONS": {rendering.SplashRendering: 0}})
    assert not any("splash" in str(k).lower() for k in off.settings.getdict("DOWNLOADER_MIDDLEWARES"))
    assert off.settings["REQUEST_FINGERPRINTER_CLASS"] == "scrapy.utils.request.RequestFingerprinter"

    on = get_crawler(settings_dict={"ADDONS": {rendering.SplashRendering: 0},
                                    "SPLASH_URL": "http://127.0.0.1:8050"})
    dmw = on.settings.getdict("DOWNLOADER_MIDDLEWARES")
    assert dmw[splash.SplashMiddleware] == 725 and dmw[splash.SplashCookiesMiddleware] == 723
    assert on.settings.getdict("SPIDER_MIDDLEWARES")[splash.SplashDeduplicateArgsMiddleware] == 100
    assert on.settings["DUPEFILTER_CLASS"] == "ptmscrape.compat.splash.SplashAwareDupeFilter"
    assert isinstance(on.request_fingerprinter, splash.SplashRequestFingerprinter)


def test_scrapy_accepts_the_fixed_middlewares_without_deprecation_warnings():
    crawler = get_crawler(settings_dict=rendering.splash_settings(SPLASH_URL))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Upstream's SplashDeduplicateArgsMiddleware makes this raise TypeError (fix 3), and every
        # upstream downloader middleware method warns about its spider argument (fix 5).
        dmw = DownloaderMiddlewareManager.from_crawler(crawler)
        smw = SpiderMiddlewareManager.from_crawler(crawler)
        splash.SplashAwareDupeFilter.from_crawler(crawler)
        splash.SplashRequestFingerprinter.from_crawler(crawler).fingerprint(rendering.splash_request("http://a.test/"))
    assert splash_warnings(f"{w.category.__name__}: {w.message} ({w.filename})" for w in caught) == []
    assert any(isinstance(mw, splash.SplashMiddleware) for mw in dmw.middlewares)
    assert any(isinstance(mw, splash.SplashDeduplicateArgsMiddleware) for mw in smw.middlewares)


def test_splash_request_is_the_render_script_with_wait():
    req = rendering.splash_request("http://a.test/page", wait=1.5, timeout=20, args={"images": 0},
                                cb_kwargs={"k": 1})
    assert isinstance(req, scrapy_splash.SplashRequest)
    assert req.meta["splash"]["endpoint"] == "execute"
    assert req.meta["splash"]["args"] == {"url": "http://a.test/page", "wait": 1.5, "timeout": 20, "images": 0,
                                          "lua_source": rendering.RENDER_SCRIPT}
    assert req.cb_kwargs == {"k": 1}
    assert rendering.splash_request("http://a.test/")._splash_args["wait"] == rendering.DEFAULT_WAIT


def test_fingerprints_tell_rendered_from_plain_requests():
    crawler = get_crawler(settings_dict=rendering.splash_settings(SPLASH_URL))
    fp = crawler.request_fingerprinter.fingerprint
    url = "http://a.test/page"
    assert fp(rendering.splash_request(url)) == fp(rendering.splash_request(url))
    assert fp(rendering.splash_request(url)) != fp(scrapy.Request(url))
    assert fp(rendering.splash_request(url, wait=2)) != fp(rendering.splash_request(url))
    # The dupefilter and cache storage are Splash-aware even under a plain fingerprinter.
    plain = get_crawler()
    df = splash.SplashAwareDupeFilter.from_crawler(plain)
    assert not df.request_seen(rendering.splash_request(url))
    assert not df.request_seen(scrapy.Request(url))
    assert df.request_seen(rendering.splash_request(url))


def _splash_middleware(allowed_domains):
    class Spider(scrapy.Spider):
        name = "t"

    Spider.allowed_domains = allowed_domains
    crawler = get_crawler(Spider, rendering.splash_settings("http://127.0.0.1:8050"))
    crawler.spider = crawler._create_spider()
    crawler.engine = SimpleNamespace(downloader=SimpleNamespace(get_slot_key=lambda r: f"slot:{r.url}"))
    return crawler, splash.SplashMiddleware.from_crawler(crawler)


def test_splash_middleware_uses_the_public_slot_key_and_passes_offsite():
    assert hasattr(Downloader, "get_slot_key") and not hasattr(Downloader, "_get_slot_key")
    crawler, mw = _splash_middleware(["site.test"])
    original = rendering.splash_request("http://site.test/page")
    rewritten = mw.process_request(original)  # no spider argument: Scrapy 2.19 passes none
    assert rewritten.url == "http://127.0.0.1:8050/execute"
    assert rewritten.meta["download_slot"] == "slot:http://site.test/page"  # fix 2
    offsite = OffsiteMiddleware.from_crawler(crawler)
    offsite.spider_opened(crawler.spider)
    offsite.process_request(rewritten)  # fix 8: not "Filtered offsite request to '127.0.0.1'"
    del rewritten.meta["allow_offsite"]
    with pytest.raises(IgnoreRequest):  # what upstream's rewritten request gets
        offsite.process_request(rewritten)


# --- loaded only when used ----------------------------------------------------------------------

# Runs ``scrapy <argv>`` and prints, at exit, which of the libraries that ptmscrape.compat fixes it loaded.
_LOADED = (
    "import atexit, sys\n"
    "libs = {'scrapy_splash', 'scrapy_redis', 'redis', 'spidermon'}\n"
    "atexit.register(lambda: print('LOADED', sorted(libs & {m.split('.')[0] for m in sys.modules})))\n"
    "from scrapy.cmdline import execute\n"
    "execute(['scrapy', *sys.argv[1:]])\n"
)


@pytest.mark.parametrize("splash_url, loaded", [("", []), ("http://127.0.0.1:9", ["scrapy_splash"])])
def test_a_crawl_imports_scrapy_splash_only_when_splash_url_is_set(tmp_path, splash_url, loaded):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCRAPY_", "SPLASH_"))}
    with ModelZooReplica(fixture_models(), tmp_path / "github", page_size=5) as zoo:
        cmd = crawl_command("modelzoo", tmp_path / "out.jsonl", tmp_path / "data", tmp_path / "stats.json",
                            args={"limit": 2},
                            settings={"PTM_MODELZOO_URL": zoo.url, "PTM_CLONE": 0, "SPLASH_URL": splash_url})
        assert cmd[1:3] == ["-m", "scrapy.cmdline"]
        proc = subprocess.run([sys.executable, "-c", _LOADED, *cmd[3:]], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=180)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2, log[-4000:]  # a real crawl
    assert f"LOADED {loaded}" in proc.stdout, log[-4000:]


# --- integration: a real crawl through the real Splash ------------------------------------------

SHELL = b"""<!doctype html>
<html><head><title>js shell</title></head>
<body><div id="app">loading</div>
<script>
  // XMLHttpRequest, not fetch(): Splash's default engine is QtWebKit 602 (Safari 10), without fetch.
  var xhr = new XMLHttpRequest();
  xhr.open("GET", "/titles.json");
  xhr.onload = function () {
    var titles = JSON.parse(xhr.responseText).titles;
    document.getElementById("app").innerHTML = titles.map(function (t) {
      return '<h1 class="title">' + t + "</h1>";
    }).join("");
  };
  xhr.send();
</script></body></html>
"""

SPIDER = '''
import scrapy
from ptmscrape.rendering import splash_request


class JsSpider(scrapy.Spider):
    name = "js"
    # Splash only because the crawl sets SPLASH_URL (-s): the add-on does nothing without it.
    custom_settings = {"ADDONS": {"ptmscrape.rendering.SplashRendering": 0}}

    async def start(self):
        yield splash_request(self.page, self.parse, wait=0.5, cb_kwargs={"via": "splash"})
        yield scrapy.Request(self.page, self.parse, cb_kwargs={"via": "plain"})

    def parse(self, response, via):
        yield {
            "via": via,
            "url": response.url,
            "titles": response.css("h1.title::text").getall(),
            "app": response.css("#app::text").get(),
            "response_class": type(response).__name__,
        }
'''


class _QuietHandler(BaseHTTPRequestHandler):
    """A local site's handler: no request log, and ``answer`` for a whole reply."""

    def answer(self, status: int, body: bytes, ctype: str = "text/html; charset=utf-8", **headers: str):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _LocalSite:
    """A 127.0.0.1 server (thread, free port) for Splash to render; ``url`` without a trailing slash."""

    def __init__(self, handler):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class _Page(_LocalSite):
    """A 127.0.0.1 server (thread, free port) serving the JS shell and the JSON it loads."""

    def __init__(self, titles):
        page = self
        self.titles = titles
        self.paths: list[str] = []

        class Handler(_QuietHandler):
            def do_GET(self):
                page.paths.append(self.path)
                if self.path == "/titles.json":
                    body, ctype = json.dumps({"titles": page.titles}).encode(), "application/json"
                elif self.path == "/":
                    body, ctype = SHELL, "text/html; charset=utf-8"
                else:
                    self.send_error(404)
                    return
                self.answer(200, body, ctype)

        super().__init__(Handler)
        self.url += "/"


def test_spider_sees_javascript_content_through_real_splash(tmp_path):
    splash_url = require_service("Splash", SPLASH_URL, start_hint="bash .ci/splash.sh")
    titles = [f"model-{uuid.uuid4().hex[:8]}", f"model-{uuid.uuid4().hex[:8]}"]
    spider_file = tmp_path / "js_spider.py"
    spider_file.write_text(SPIDER)
    out = tmp_path / "items.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPY_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONWARNINGS"] = "default"  # show DeprecationWarnings too, not only Scrapy's

    with _Page(titles) as page:
        proc = subprocess.run(
            [sys.executable, "-m", "scrapy.cmdline", "runspider", str(spider_file),
             "-a", f"page={page.url}", "-s", f"SPLASH_URL={splash_url}", "-s", "LOG_LEVEL=INFO",
             "-O", str(out)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
        )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    items = {item["via"]: item for item in json.loads(out.read_text())}
    assert set(items) == {"splash", "plain"}, log[-4000:]

    rendered, plain = items["splash"], items["plain"]
    assert rendered["titles"] == titles, log[-4000:]  # written by the page's JavaScript
    assert rendered["url"] == page.url  # the page's URL, not Splash's
    assert rendered["response_class"] == "SplashJsonResponse"  # the render script's JSON, its "html" the body
    assert plain["titles"] == [] and plain["app"] == "loading"  # the bare shell
    assert "/titles.json" in page.paths  # fetched by Splash's browser, only it runs the script
    assert "'splash/execute/response_count/200': 1" in log

    assert splash_warnings(log.splitlines()) == [], "deprecation warnings from the Splash middlewares"
    assert "Traceback" not in log, log[-4000:]


# --- the hub's own status, carried through Splash -------------------------------------------------

STATUS_SPIDER = '''
import scrapy
from ptmscrape.rendering import splash_request


class StatusSpider(scrapy.Spider):
    name = "status"
    custom_settings = {"ADDONS": {"ptmscrape.rendering.SplashRendering": 0}, "RETRY_ENABLED": False}

    async def start(self):
        for path in self.paths.split(","):
            yield splash_request(self.base + path, self.parse, wait=0.1, cb_kwargs={"path": path},
                                 meta={"handle_httpstatus_all": True})
        yield splash_request(self.refused, self.parse, cb_kwargs={"path": "refused"},
                             meta={"handle_httpstatus_all": True})

    def parse(self, response, path):
        from ptmscrape.rendering import page_status, splash_error

        yield {
            "path": path,
            "page_status": page_status(response),
            "splash_error": splash_error(response),
            "url": response.url,
            "status": response.status,
            "splash_status": getattr(response, "splash_response_status", None),
            "retry_after": (response.headers.get("Retry-After") or b"").decode(),
            "text": " ".join(response.css("p::text").getall()),
            "no_models": bool(response.css(".no-models")),
        }
'''


class _StatusPages(_LocalSite):
    """A 127.0.0.1 server whose ``/<status>`` answers that status with a small HTML page (``/<status>/empty``:
    no body), a 429 with ``Retry-After: 7``."""

    def __init__(self):
        class Handler(_QuietHandler):
            def do_GET(self):
                code, _, rest = self.path.strip("/").partition("/")
                body = b"" if rest == "empty" else (
                    f'<!doctype html><html><body><p>hub said {code}</p><div class="no-models">No models</div>'
                    f"</body></html>".encode())
                self.answer(int(code), body, **({"Retry-After": "7"} if code == "429" else {}))

        super().__init__(Handler)


def test_the_hubs_status_reaches_the_spider_through_real_splash(tmp_path):
    """Splash 3.5's render.html answered 200 for a hub's error page that has a body (its own 502
    only for one without), and has no argument that carries the page's status (scrapy-splash's
    ``http_status_from_error_code`` is a request option of the ``execute`` endpoint; Splash 3.5
    ignores it as a render.html argument): a 500, 503 or 429 page reached the callback as a 200
    page, a 404 with a body too. Rendered by the project's script, the response carries the hub's
    status and headers; Splash's own answer stays in ``splash_response_status``."""
    paths = ["/200", "/404", "/500", "/503", "/429", "/404/empty", "/500/empty"]
    with socket.socket() as closed:  # a port nothing listens on: Splash's browser cannot reach the page
        closed.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{closed.getsockname()[1]}/"
    with _StatusPages() as pages:
        got, log = _run_page_spider(tmp_path, pages.url, paths, STATUS_SPIDER, refused=refused)
    assert sorted(got) == sorted([*paths, "refused"]), log[-4000:]
    # No answer of the page's own: Splash's 502, as render.html gave it, with Splash's reason.
    unreached = got.pop("refused")
    assert (unreached["status"], unreached["splash_status"], unreached["page_status"]) == (502, 502, False)
    assert unreached["splash_error"] == "RenderError: Error rendering page (network1 Connection refused)"
    for path, item in got.items():
        code = int(path.split("/")[1])
        assert (item["status"], item["splash_status"]) == (code, 200), (path, item)  # the hub's; Splash's
        assert item["page_status"] and item["splash_error"] is None
        assert item["url"] == pages.url + path
    for code in (200, 404, 500, 503, 429):  # the page as rendered, whatever its status
        assert got[f"/{code}"]["text"] == f"hub said {code}" and got[f"/{code}"]["no_models"]
    assert got["/429"]["retry_after"] == "7"  # the hub's headers: RateLimitMiddleware reads the wait
    assert "'splash/execute/response_count/200': 7" in log and "'splash/execute/response_count/502': 1" in log


# --- what the hub is sent, and from where the page came -------------------------------------------

PAGE_SPIDER = '''
import scrapy
from ptmscrape.rendering import splash_request


class PageSpider(scrapy.Spider):
    name = "page"
    custom_settings = {"ADDONS": {"ptmscrape.rendering.SplashRendering": 0}, "RETRY_ENABLED": False,
                       "USER_AGENT": "ptmscrape-test-agent/1",
                       "DEFAULT_REQUEST_HEADERS": {"Accept-Language": "x-ptm-test"}}

    async def start(self):
        for path in self.paths.split(","):
            yield splash_request(self.base + path, self.parse, wait=0.1, cb_kwargs={"path": path},
                                 errback=self.failed, meta={"path": path})

    def parse(self, response, path):
        yield {"path": path, "url": response.url, "text": " ".join(response.css("p::text").getall())}

    def failed(self, failure):
        yield {"path": failure.request.meta["path"], "failed": failure.type.__name__}
'''


class _EchoPages(_LocalSite):
    """A 127.0.0.1 server: ``/page`` names the User-Agent and Accept-Language it was sent (and records
    them in ``seen``), ``/away`` redirects to ``elsewhere`` + ``/landed``, ``/here`` to ``/page``."""

    def __init__(self, elsewhere: str = ""):
        site = self
        self.seen: list[tuple[str, str, str]] = []

        class Handler(_QuietHandler):
            def do_GET(self):
                site.seen.append((self.path, self.headers.get("User-Agent", ""),
                                  self.headers.get("Accept-Language", "")))
                if self.path in ("/away", "/here"):
                    self.send_response(302)
                    self.send_header("Location", elsewhere + "/landed" if self.path == "/away" else "/page")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = f"<html><body><p>{self.path} of {site.url}</p></body></html>".encode()
                self.answer(200, body)

        super().__init__(Handler)


def _run_page_spider(tmp_path, base: str, paths: list[str], source: str = PAGE_SPIDER,
                     **spider_args: str) -> tuple[dict, str]:
    """``source``'s spider run through the real Splash over ``base`` + ``paths``: its items by path, and its log."""
    splash_url = require_service("Splash", SPLASH_URL, start_hint="bash .ci/splash.sh")
    spider_file = tmp_path / "page_spider.py"
    spider_file.write_text(source)
    out = tmp_path / "items.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPY_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    more = [arg for name, value in spider_args.items() for arg in ("-a", f"{name}={value}")]
    proc = subprocess.run(
        [sys.executable, "-m", "scrapy.cmdline", "runspider", str(spider_file), "-a", f"base={base}",
         "-a", "paths=" + ",".join(paths), *more, "-s", f"SPLASH_URL={splash_url}", "-s", "LOG_LEVEL=INFO",
         "-O", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Traceback" not in log, log[-4000:]
    return {item["path"]: item for item in json.loads(out.read_text())}, log


def test_the_hub_is_sent_the_crawls_headers_through_real_splash(tmp_path):
    """render.html sent the page request with the request's headers (scrapy-splash passes them as
    the ``headers`` argument): the crawl's User-Agent and DEFAULT_REQUEST_HEADERS. The render
    script ignored that argument, so the hub saw Splash's browser's own User-Agent."""
    with _EchoPages() as site:
        got, log = _run_page_spider(tmp_path, site.url, ["/page"])
    assert got["/page"]["text"] == f"/page of {site.url}", log[-4000:]
    assert ("/page", "ptmscrape-test-agent/1", "x-ptm-test") in site.seen, site.seen


def test_a_rendered_page_redirected_to_another_host_is_refused_through_real_splash(tmp_path):
    """Splash's browser follows a hub's redirect to any host; the rendered page came back as the
    hub's (``response.url`` the hub's URL), past HubRedirectMiddleware, which refuses such a
    redirect for a plain request. The render script names the URL it ended on, and the middleware
    refuses a rendered page from another host as it refuses the redirect; one on the hub's own
    host is kept."""
    with _EchoPages() as elsewhere, _EchoPages(elsewhere.url) as site:
        # runspider reads no project settings: the spider enables the project's middleware itself.
        spider = PAGE_SPIDER.replace('"RETRY_ENABLED": False,', '"RETRY_ENABLED": False, "DOWNLOADER_MIDDLEWARES": '
                                     '{"ptmscrape.middlewares.HubRedirectMiddleware": 605},')
        got, log = _run_page_spider(tmp_path, site.url, ["/away", "/here"], source=spider)
    assert got["/here"].get("text") == f"/page of {site.url}", log[-4000:]  # same host: followed
    assert got["/away"] == {"path": "/away", "failed": "RedirectLeavesHub"}, (got, log[-4000:])
