"""Real ``scrapy crawl modelzoo`` runs (subprocess) against the local ModelZoo replica: the JSON API
path, and the rendered-site path through a real Splash server."""

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from ptmscrape.dataset.payloads import read_payload
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.items import load_schema
from tests.crawl import run_crawl
from tests.replicas.modelzoo import ModelZooReplica, detail, fixture_models
from tests.replicas.server import Replica, Reply
from tests.services import missing, require_service

VALIDATOR = Draft202012Validator(load_schema())
SPLASH_URL = os.environ.get("SPLASH_URL", "http://127.0.0.1:8050")
SPLASH_PORT = os.environ.get("PTM_SPLASH_PORT", "8050")  # .ci/splash.sh's port and pid file
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def zoo(tmp_path):
    with ModelZooReplica(fixture_models(), tmp_path / "github", page_size=5) as replica:
        yield replica


def crawl(zoo, workdir, **kwargs):
    return run_crawl("modelzoo", workdir, settings={"PTM_MODELZOO_URL": zoo.url, **kwargs.pop("settings", {})},
                     env=zoo.git_env(), **kwargs)


def log(repo_dir):
    return subprocess.run(["git", "-C", str(repo_dir), "log", "--format=%H", "--reverse"], capture_output=True,
                          text=True, check=True).stdout.split()


def by_name(items):
    return {i["ModelName"]: i for i in items}


def test_api_crawl_maps_validates_stores_and_clones(tmp_path, zoo):
    result = crawl(zoo, tmp_path)
    items = by_name(result.items)

    assert sorted(items) == sorted(zoo.models)
    for item in items.values():
        assert list(VALIDATOR.iter_errors(item)) == [], item["ModelName"]
        payload = read_payload(DatasetTree(result.data_dir), item["ModelHub"]["MetadataFilePath"])
        assert payload == detail(zoo.models[item["ModelName"]])  # the hub's detail object, as served
    # Offset paging: 5 + 5 + 4 models, then the empty page at offset 14 ends the listing.
    assert [p for m, p in zoo.replica.requests if p.startswith("/api/models/") and p[12].isdigit()] == \
        ["/api/models/0/", "/api/models/5/", "/api/models/10/", "/api/models/14/"]

    openpose = items["openpose-caffe"]
    assert openpose["CloneStatus"] == "cloned"
    assert openpose["RepoPath"] == "modelzoo/repos/CMU-Perceptual-Computing-Lab/openpose"
    assert log(result.data_dir / openpose["RepoPath"])[-1] == openpose["LatestGitCommitSHA"]

    # Two models in folders of one repository: one clone, each model's SHA is its folder's commit.
    resnet, retinanet = items["resnet-tensorflow-2"], items["retinanet-tensorflow"]
    assert resnet["RepoPath"] == retinanet["RepoPath"] == "modelzoo/repos/acme-research/model-garden"
    first, second = log(result.data_dir / resnet["RepoPath"])
    assert (resnet["LatestGitCommitSHA"], retinanet["LatestGitCommitSHA"]) == (first, second)
    assert zoo.replica.count("GET", r"^/acme-research/model-garden/info/refs") == 1

    # No repository: the record is kept, the clone skipped or failed with the reason.
    assert (items["ray"]["RepoURL"], items["ray"]["CloneStatus"]) == (None, "skipped")
    assert (items["graph-nets"]["RepoURL"], items["graph-nets"]["CloneStatus"]) == (None, "skipped")
    assert items["chainercv"]["CloneStatus"].startswith("failed: repository not found")
    assert items["chainercv"]["RepoPath"] is None

    stats = result.stats
    assert stats["finish_reason"] == "finished"
    assert stats["ptm/store/records"] == stats["item_scraped_count"] == 14
    assert (stats["ptm/clone/cloned"], stats["ptm/clone/skipped"], stats["ptm/clone/failed"]) == (11, 2, 1)
    assert len(result.records("modelzoo")) == 14


def test_bad_detail_json_is_reported_and_the_crawl_goes_on(tmp_path, zoo):
    zoo.bodies["tts"] = b'{"title": "TTS", "stars": '
    result = crawl(zoo, tmp_path, settings={"PTM_CLONE": "0", "PTM_PAGE_RETRIES": "0"}, check=False)
    assert sorted(by_name(result.items)) == sorted(set(zoo.models) - {"tts"})
    assert result.stats["ptm/pages/failed/malformed JSON"] == 1
    errors = [line for line in result.log.splitlines() if " ERROR: " in line]
    assert len(errors) == 2 and f"{zoo.url}/api/models/tts/" in errors[0] and "malformed JSON" in errors[0]
    # The lost page fails the crawl: the last line says so, and the exit status (README "Exit status").
    assert errors[1].endswith("Crawl verdict: exit status 1: 1 page failed (malformed JSON: 1)")
    assert result.returncode == 1


def test_splash_crawl_of_the_javascript_site_yields_the_api_records(tmp_path, zoo):
    splash = require_service("Splash", SPLASH_URL, start_hint="bash .ci/splash.sh")

    # Without JavaScript, the site's pages carry no model data at all.
    for path in ("/", "/model/detectron2"):
        shell = urllib.request.urlopen(zoo.url + path, timeout=10).read().decode()
        assert "model-detail-div box-shadow" in shell  # only inside the script
        assert 'class="model-detail-div' not in shell and "Detectron2" not in shell
        assert "detectron2" not in shell.lower().replace("/model/detectron2", "")

    api = crawl(zoo, tmp_path / "api")
    before = len(zoo.replica.requests)
    # An API hiccup while a model page and a listing page render: the script shows an error
    # instead of the data, and the spider has Splash render the page again.
    zoo.fail_once = {"/api/models/stylegan/", "/api/models/5/"}
    rendered = crawl(zoo, tmp_path / "splash", args={"render": "splash"}, settings={"SPLASH_URL": splash})

    def comparable(items):  # the payload locators name each crawl's file: payloads are compared below
        return sorted(({**{k: v for k, v in i.items() if k != "CrawledAt"},
                        "ModelHub": {k: v for k, v in i["ModelHub"].items() if k != "MetadataFilePath"}}
                       for i in items), key=lambda r: r["id"])

    assert len(rendered.items) == 14
    assert comparable(rendered.items) == comparable(api.items)
    api_items = {i["id"]: i for i in api.items}
    for item in rendered.items:
        assert read_payload(DatasetTree(rendered.data_dir), item["ModelHub"]["MetadataFilePath"]) == \
            read_payload(DatasetTree(api.data_dir), api_items[item["id"]]["ModelHub"]["MetadataFilePath"])

    # The pages went through Splash, and Splash's browser ran the script that called the API.
    stats = rendered.stats
    # 4 listing pages, 14 model pages, 2 rendered again
    assert stats["splash/execute/response_count/200"] == 4 + 14 + 2
    assert stats["ptm/pages/retried/page not rendered"] == 2 and "ptm/pages/failed" not in stats
    splash_paths = [p for m, p in zoo.replica.requests[before:]]
    assert splash_paths.count("/") == 1 and "/?offset=14" in splash_paths
    assert splash_paths.count("/model/stylegan") == splash_paths.count("/?offset=5") == 2
    assert {f"/model/{slug}" for slug in zoo.models} <= set(splash_paths)
    assert {f"/api/models/{slug}/" for slug in zoo.models} <= set(splash_paths)


def test_a_rendered_next_page_link_back_to_the_first_page_fails_the_crawl(tmp_path, zoo):
    """The site's ``a.next-page`` that leads back to a page read already: Scrapy's dupefilter dropped
    it in silence and the crawl exited 0 with the models after it never listed (the API's paging and
    the other hubs' report it, docs/failures.md)."""
    import re

    from tests.replicas.server import Reply

    splash = require_service("Splash", SPLASH_URL, start_hint="bash .ci/splash.sh")
    slugs = list(zoo.models)

    def listing(req, m):  # static pages: the first two models, then the third and a link back to "/"
        offset = int(req.arg("offset") or 0)
        cards = "".join(f'<a class="model-detail-div box-shadow w-100" href="/model/{s}">{s}</a>'
                        for s in slugs[offset:offset + 2])
        following = "/?offset=2" if offset == 0 else "/"
        return Reply.text(f'<!doctype html><html><body>{cards}<a class="next-page" href="{following}">More</a>'
                          f"</body></html>", content_type="text/html; charset=utf-8")

    zoo.replica.routes.insert(0, ("GET", re.compile(r"/"), listing))
    result = crawl(zoo, tmp_path, args={"render": "splash"},
                   settings={"SPLASH_URL": splash, "PTM_CLONE": "0"}, check=False)
    assert sorted(i["ModelName"] for i in result.items) == sorted(slugs[:4])
    assert "Listing loops: its next page" in result.log
    assert result.stats["ptm/pages/failed/listing loops"] == 1
    assert result.returncode == 1


def failing_splash() -> Replica:
    """A stand-in Splash server on 127.0.0.1: the render (``execute``) of a page whose URL holds ``hang``
    answers nothing until the client gives up; of any other, Splash's 504 (its render timeout)."""

    def render(incoming, match):
        if "hang" in json.loads(incoming.body).get("url", ""):
            return Reply(cut=-1, stall=6)
        return Reply.json({"error": 504, "type": "GlobalTimeoutError",
                           "description": "Timeout exceeded rendering page", "info": {"timeout": 30}}, 504)

    splash = Replica()
    splash.route("POST", "/execute", render)
    return splash


def test_pages_splash_fails_to_render_are_reported_by_page_and_splashs_reason(tmp_path, zoo):
    """Splash timing out (504) on one model page and never answering for another: each ERROR named
    Splash's endpoint ('http://127.0.0.1:8050/execute (HTTP 504: Ignoring non-200 response)'),
    not the model's page, and not Splash's reason; the wait report named the endpoint too."""
    with failing_splash() as splash:
        result = crawl(zoo, tmp_path, args={"render": "splash", "models": "timeout-model,hang-model"}, check=False,
                       settings={"SPLASH_URL": splash.url, "RETRY_TIMES": 1, "PTM_RETRY_BACKOFF": 0.05,
                                 "PTM_CLONE": 0, "DOWNLOAD_TIMEOUT": 2, "PTM_WAIT_REPORT_INTERVAL": 1})
    assert result.returncode == 1 and "Traceback" not in result.log, result.log[-3000:]
    endpoint = f"Splash at {splash.url}/execute"
    assert (f"Page failed after retries: {zoo.url}/model/timeout-model (HTTP 504: {endpoint}: "
            "GlobalTimeoutError: Timeout exceeded rendering page)") in result.log, result.log[-3000:]
    assert f"Page failed after retries: {zoo.url}/model/hang-model (DownloadTimeoutError: {endpoint}: " in result.log
    assert f"s for {zoo.url}/model/hang-model through {endpoint} (attempt " in result.log
    assert result.stats["ptm/pages/failed/HTTP 504"] == result.stats["ptm/pages/failed/DownloadTimeoutError"] == 1
    assert result.log.rstrip().splitlines()[-1].endswith(
        "exit status 1: 2 pages failed (DownloadTimeoutError: 1, HTTP 504: 1); nothing was stored")


def hub_errors(zoo, render: str):
    """The hub's errors, on the API's paths or the rendered site's (HTML pages, as a site serves
    them, the 500 page with the site's "no models" box): the second listing page answers 500, the
    first listed model's page 404, the second's 429 (``Retry-After: 1``) once."""
    slugs = list(zoo.models)
    gone, limited = slugs[0], slugs[1]
    if render == "api":
        paths = {"500": "/api/models/5/", "404": f"/api/models/{gone}/", "429": f"/api/models/{limited}/"}
    else:
        paths = {"500": "/?offset=5", "404": f"/model/{gone}", "429": f"/model/{limited}"}
    limited_once = []

    def page(status, text):
        if render == "api":
            return Reply.json({"detail": text}, status)
        return Reply.text(f'<!doctype html><html><body><h1>{text}</h1><div class="no-models">No models here'
                          f"</div></body></html>", status, content_type="text/html; charset=utf-8")

    def intercept(incoming, call_next):
        path = incoming.path + ("?" + "&".join(f"{k}={v}" for k, v in incoming.query) if incoming.query else "")
        if path == paths["500"]:
            return page(500, "Internal Server Error")
        if path == paths["404"]:
            return page(404, "Not Found")
        if path == paths["429"] and not limited_once:
            limited_once.append(path)
            reply = page(429, "Too Many Requests")
            reply.headers["Retry-After"] = "1"
            return reply
        return call_next()

    zoo.replica.interceptors.append(intercept)
    return paths, gone, limited


@pytest.mark.parametrize("render", ["api", "splash"])
def test_a_hubs_error_pages_fail_a_rendered_crawl_as_they_fail_the_api_crawl(tmp_path, zoo, render):
    """Through Splash (render.html), a 500 listing page rendered as a 200 "no models" page: the
    listing ended there "successfully" (exit 0, the models after it never listed, nothing said); a
    404 model page was "not rendered" (fetched again, then failed under the wrong reason), a 429 one
    failed the same way instead of waiting as the hub asked. Now each is the hub's status, as on the
    API: the 500 retried (RETRY_TIMES) then reported, the listing cut short; the 404 a page not
    found, not retried; the 429 waited for and fetched again; the same verdict either way."""
    settings = {"PTM_CLONE": "0", "RETRY_TIMES": "1", "PTM_RETRY_BACKOFF": "0.05", "PTM_PAGE_RETRIES": "1"}
    if render == "splash":
        settings["SPLASH_URL"] = require_service("Splash", SPLASH_URL, start_hint="bash .ci/splash.sh")
    paths, gone, limited = hub_errors(zoo, render)
    result = crawl(zoo, tmp_path, args={"render": render}, settings=settings, check=False)
    log = result.log
    assert "Traceback" not in log, log[-4000:]
    assert sorted(i["ModelName"] for i in result.items) == sorted(set(list(zoo.models)[:5]) - {gone}), log[-4000:]
    requested = [p for _, p in zoo.replica.requests]
    assert requested.count(paths["500"]) == 2  # retried once (RETRY_TIMES=1), as Scrapy retries a 500
    assert requested.count(paths["404"]) == 1  # a 404 is not retried
    assert requested.count(paths["429"]) == 2  # waited for, then fetched again
    assert f"Page failed after retries: {zoo.url}{paths['500']} (HTTP 500: Ignoring non-200 response)" in log
    assert f"The listing ends at {zoo.url}{paths['500']}: the pages after it were not read" in log
    assert f"Page not found: {zoo.url}{paths['404']} (HTTP 404)" in log
    assert f"HTTP 429 from {zoo.url}{paths['429']}: waiting 1.0s as the hub asks" in log
    stats = result.stats
    assert (stats["ptm/pages/failed/HTTP 500"], stats["ptm/pages/failed/HTTP 404"]) == (1, 1)
    assert (stats["ptm/pages/not_found"], stats["ptm/pages/listing_cut_short"]) == (1, 1)
    assert stats["ptm/ratelimit/waits"] == 1 and "ptm/pages/retried" not in stats
    assert stats["finish_reason"] == "failed_pages" and result.returncode == 1
    assert log.rstrip().splitlines()[-1].endswith(
        "Crawl verdict: exit status 1: 1 page not found (HTTP 404); 1 page failed (HTTP 500: 1); the listing "
        "ended at a failed page: the pages after it were not read"), log[-2000:]


def splash_python() -> Path | None:
    """The python of a Splash venv: this checkout's ``.splash-venv``, or else that of the Splash
    ``.ci/splash.sh`` started (its pid file), which it leaves running and does not install again
    in another checkout (a clean clone's CI on a machine whose Splash already answers)."""
    python = ROOT / ".splash-venv" / "bin" / "python"
    if python.exists():
        return python
    try:
        pid = int(Path(f"/tmp/ptmscrape-splash-{SPLASH_PORT}.pid").read_text())
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except (OSError, ValueError):
        return None
    started = Path(argv0)
    return started if started.name.startswith("python") and (started.parent / "activate").exists() else None


@pytest.fixture
def splash_without_lua():
    """A real Splash 3.5 (the venv of ``.ci/splash.sh``) started with ``--disable-lua`` on a free
    127.0.0.1 port: it has no ``execute`` endpoint (404)."""
    python = splash_python()
    if python is None:
        missing("no .splash-venv to start a Splash without Lua from; install it with: bash .ci/splash.sh")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    env = {**os.environ, "QTWEBENGINE_CHROMIUM_FLAGS": "--no-sandbox", "QT_QPA_PLATFORM": "offscreen",
           "QT_QUICK_BACKEND": "software"}
    proc = subprocess.Popen([str(python), "-m", "splash.server", "-i", "127.0.0.1", "-p", str(port),
                             "--disable-xvfb", "--disable-lua"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"{url}/_ping", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail("Splash --disable-lua did not start")
                time.sleep(0.1)
        else:
            pytest.fail("Splash --disable-lua did not answer /_ping in 60 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_splash_without_lua_fails_each_page_saying_so(tmp_path, zoo, splash_without_lua):
    """Pages are rendered by a Lua script (Splash's execute endpoint): a Splash started with
    --disable-lua answers 404 'No Such Resource' for every page, which was reported as 'HTTP 404:
    Splash at …/execute: Ignoring non-200 response', naming no cause."""
    result = crawl(zoo, tmp_path, args={"render": "splash", "models": "a-model"}, check=False,
                   settings={"SPLASH_URL": splash_without_lua, "PTM_CLONE": 0})
    assert result.returncode == 1 and "Traceback" not in result.log, result.log[-3000:]
    assert (f"Page failed (not retried): {zoo.url}/model/a-model (HTTP 404: Splash at {splash_without_lua}/execute: "
            "no execute endpoint: this Splash runs no Lua scripts (started with --disable-lua?), and pages are "
            "rendered by one (ptmscrape.rendering.RENDER_SCRIPT))") in result.log, result.log[-3000:]
