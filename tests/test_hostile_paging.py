"""Hostile paging: a hub whose next cursor or link repeats, or points back to an earlier page, or
whose offsets do not advance. The crawl ends, says which page and why, counts it, and exits 1 (the
listing was not read to its end, so no model is reported as removed)."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

import ptmscrape.settings as project_settings
from ptmscrape.middlewares import same_origin
from tests.crawl import run_crawl
from tests.replicas.civitai import CivitaiReplica, fixture_models, synthetic_models
from tests.replicas.huggingface import (
    HuggingFaceReplica,
    fixture_models as hf_fixture_models,
    synthetic_models as hf_models,
)
from tests.replicas.huggingface_history import HubHistory
from tests.replicas.modelscope import ModelScopeReplica, envelope, fixture_models as ms_fixture_models
from tests.replicas.ollama import OllamaReplica, fixture_models as ollama_models, manifest_bytes
from tests.replicas.server import Replica, Reply

FAST = {"PTM_RETRY_BACKOFF": 0.01, "PTM_RETRY_BACKOFF_MAX": 0.05, "PTM_RATELIMIT_DEFAULT_WAIT": 0.05}


class LoopingCivitai(CivitaiReplica):
    """Pages of 3 whose cursors lead a -> b -> a: the third page points back to the second."""

    def _listing(self, req, m):
        pages = {None: (0, "a"), "a": (3, "b"), "b": (6, "a")}
        start, following = pages[req.arg("cursor")]
        return Reply.json({"items": self.visible()[start:start + 3], "metadata": {"nextCursor": following}})


def test_a_civitai_cursor_that_points_back_fails_the_crawl_naming_the_page(tmp_path):
    with LoopingCivitai(fixture_models() + synthetic_models(8)) as hub:
        result = run_crawl("civitai", tmp_path, settings=hub.settings(PTM_CIVITAI_PAGE_SIZE=3, **FAST), check=False)
        assert len(hub.listing_requests()) == 3
    assert result.returncode == 1, result.log[-3000:]
    assert len(result.items) == 9  # what the three pages listed is kept
    assert "Listing loops: its next page" in result.log and "cursor=a was read already" in result.log
    stats = result.stats
    assert stats["ptm/pages/failed/listing loops"] == 1 and stats["finish_reason"] == "failed_pages"
    assert "listing loops" in stats["ptm/verdict/reason"]


class LinkBackHub(HuggingFaceReplica):
    """The second page's Link leads back to the first page."""

    def _listing(self, req, m):
        reply = super()._listing(req, m)
        if req.arg("cursor"):
            params = urlencode([(k, v) for k, v in req.query if k != "cursor"])
            reply.headers["Link"] = f'<{self.url}/api/models?{params}>; rel="next"'
        return reply


def test_a_hugging_face_link_back_to_the_first_page_fails_the_crawl(tmp_path):
    with LinkBackHub(hf_models(6), repos=False) as hub:
        result = run_crawl("huggingface", tmp_path, settings={"PTM_HUGGINGFACE_URL": hub.url, "PTM_CLONE": 0,
                                                              "PTM_HUGGINGFACE_PAGE_SIZE": 3, **FAST}, check=False)
    assert result.returncode == 1, result.log[-3000:]
    assert len(result.items) == 6
    assert "Listing loops: its next page" in result.log
    assert result.stats["ptm/pages/failed/listing loops"] == 1


class HugeCursorCivitai(CivitaiReplica):
    """A first page whose next cursor makes a URL longer than URLLENGTH_LIMIT."""

    def _listing(self, req, m):
        if req.arg("cursor"):
            return Reply.json({"items": self.visible()[3:], "metadata": {}})
        return Reply.json({"items": self.visible()[:3], "metadata": {"nextCursor": "c" * 5000}})


def test_a_next_page_url_over_the_length_limit_is_a_failed_page_not_a_silent_end(tmp_path):
    with HugeCursorCivitai(fixture_models() + synthetic_models(4)) as hub:
        result = run_crawl("civitai", tmp_path, settings=hub.settings(PTM_CIVITAI_PAGE_SIZE=3, **FAST), check=False)
        assert len(hub.listing_requests()) == 1
    assert result.returncode == 1, result.log[-3000:]
    assert len(result.items) == 3
    assert "Page not requested: " in result.log and "URL longer than URLLENGTH_LIMIT (2083): 5" in result.log
    assert result.stats["ptm/pages/failed/URL too long"] == 1


class HugeLinkHistory(HubHistory):
    def _commits(self, req, m):
        reply = super()._commits(req, m)
        reply.headers["Link"] = (f'<{self.prefix}/api/models/{m.group("id")}/commits/{m.group("rev")}'
                                 f'?cursor={"c" * 3000}>; rel="next"')
        return reply


def test_a_history_next_link_over_the_length_limit_is_a_lost_call_of_that_model(tmp_path):
    with HuggingFaceReplica(hf_fixture_models()[:2], repos=False) as replica:
        HugeLinkHistory(replica, prefix="/hf")
        result = run_crawl("huggingface", tmp_path, args={"history": "commits"}, check=False,
                           settings={"PTM_HUGGINGFACE_URL": replica.url + "/hf", "PTM_CLONE": 0, **FAST})
    assert result.returncode == 1, result.log[-3000:]
    assert len(result.items) == 2
    assert result.stats["ptm/history/lost/URL too long"] == 2
    assert "(commits) not stored: URL too long (URL longer than URLLENGTH_LIMIT (2083)" in result.log
    failures = (result.data_dir / "huggingface/history/failures.jsonl").read_text().splitlines()
    assert len(failures) == 2 and all('"reason":"URL too long"' in line for line in failures)


class LoopingHistory(HubHistory):
    """Commits whose next link leads to a page that links to itself; discussions whose every page
    starts at 0 and counts a billion (a hub that ignores ``p``)."""

    def _commits(self, req, m):
        reply = super()._commits(req, m)
        reply.headers["Link"] = f'<{self.prefix}/api/models/{m.group("id")}/commits/{m.group("rev")}?p=0>; rel="next"'
        return reply

    def _discussions(self, req, m):
        if int(req.arg("p", "0")) > 50:  # the test's own stop: the crawl must have given up long before
            return Reply.json({"discussions": [], "count": 0, "start": 0})
        return Reply.json({"discussions": [{"num": 1, "title": "x", "status": "open"}], "count": 10**9, "start": 0})


def test_history_pagings_that_repeat_or_do_not_advance_are_lost_calls_not_endless(tmp_path):
    with HuggingFaceReplica(hf_fixture_models()[:2], repos=False) as replica:
        LoopingHistory(replica, prefix="/hf")
        result = run_crawl("huggingface", tmp_path, args={"history": "commits,discussions"}, check=False,
                           settings={"PTM_HUGGINGFACE_URL": replica.url + "/hf", "PTM_CLONE": 0, **FAST})
        assert replica.replica.count("GET", r"/discussions\?p=") == 4  # pages 0 and 1 of each model
        assert replica.replica.count("GET", r"/commits/") == 4  # the first page and ?p=0 of each
    assert result.returncode == 1, result.log[-3000:]
    stats = result.stats
    assert stats["ptm/history/lost/next page link repeats an earlier page"] == 2
    assert stats["ptm/history/lost/discussion list does not advance"] == 2
    assert "(commits) not stored: next page link repeats an earlier page (http" in result.log
    assert "(discussions) not stored: discussion list does not advance (start 0 on page 1" in result.log
    assert "dupefilter/filtered" not in stats


class StringCountHistory(HubHistory):
    """Discussion lists whose count and start are strings ("7", "3"), or for one model junk."""

    def _discussions(self, req, m):
        reply = super()._discussions(req, m)
        body = json.loads(reply.body)
        if "count" in body:
            junk = m.group("id") == self.junk_model
            body["count"], body["start"] = ("many" if junk else str(body["count"])), str(body["start"])
        return Reply.json(body, reply.status)


def test_a_discussion_list_paged_with_string_counts_is_read_whole_and_junk_counts_are_a_lost_call(tmp_path):
    """The list's count and start as strings were taken for "no more pages": every page after the
    first was left unread, with exit status 0."""
    models = hf_fixture_models()[:3]
    with HuggingFaceReplica(models, repos=False) as replica:
        hub = StringCountHistory(replica, discussions_page=1, prefix="/hf")
        served = {model_id: len(h.discussions) for model_id, h in hub.served().items()}
        hub.junk_model, *readable = sorted(served, key=served.get)
        assert all(served[model_id] >= 2 for model_id in readable), served  # paged, one a page
        result = run_crawl("huggingface", tmp_path, args={"history": "discussions"}, check=False,
                           settings={"PTM_HUGGINGFACE_URL": replica.url + "/hf", "PTM_CLONE": 0, **FAST})
        asked = {model_id: replica.replica.count("GET", rf"/api/models/{re.escape(model_id)}/discussions\?p=")
                 for model_id in served}
    assert result.returncode == 1, result.log[-3000:]
    assert [asked[model_id] for model_id in readable] == [served[model_id] for model_id in readable]
    assert result.stats["ptm/history/lost/malformed discussion paging"] == 1
    said = [line for line in result.log.splitlines() if "malformed discussion paging" in line]
    assert any(hub.junk_model in line and "count 'many'" in line for line in said), said


class StuckModelScope(ModelScopeReplica):
    """A catalogue that ignores PageNumber: every page is the first, and TotalCount says a trillion."""

    def _catalogue(self, req, m):
        body = json.loads(req.body)
        self.bodies.append(("catalogue", body))
        if body["PageNumber"] > 50:  # the test's own stop: the crawl must have given up long before
            return Reply.json(envelope({"Model": {"Models": [], "TotalCount": 0}}))
        return Reply.json(envelope({"Model": {"Models": list(self.models.values())[:2], "TotalCount": 10**12}}))


def test_a_modelscope_catalogue_that_ignores_page_numbers_is_not_paged_for_ever(tmp_path):
    with StuckModelScope(ms_fixture_models()) as hub:
        result = run_crawl("modelscope", tmp_path, check=False, settings={
            "PTM_MODELSCOPE_URL": hub.url, "PTM_CLONE": 0, "PTM_MODELSCOPE_PAGE_SIZE": 2, **FAST})
        assert len(hub.listing_puts()) == 2
    assert result.returncode == 1, result.log[-3000:]
    assert len(result.items) == 2
    assert "(listing does not advance (page 2 lists only models of page 1))" in result.log
    assert result.stats["ptm/pages/failed/listing does not advance"] == 1


class RedirectingCivitai(CivitaiReplica):
    """The second listing page redirects to another host (``localhost`` for the replica's 127.0.0.1)."""

    def __init__(self, *args, elsewhere: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.elsewhere = elsewhere

    def _listing(self, req, m):
        if req.arg("cursor"):
            return Reply(302, b"", {"Location": f"{self.elsewhere}/api/v1/models?limit=3"})
        return super()._listing(req, m)


def test_a_redirect_to_another_host_is_not_followed_but_reported(tmp_path):
    with Replica() as other:
        other.route("GET", r"/.*", lambda req, m: Reply.json({"items": [{"id": 1, "name": "planted"}]}))
        elsewhere = other.url.replace("127.0.0.1", "localhost")
        with RedirectingCivitai(fixture_models() + synthetic_models(4), elsewhere=elsewhere) as hub:
            result = run_crawl("civitai", tmp_path, settings=hub.settings(PTM_CIVITAI_PAGE_SIZE=3, **FAST),
                               check=False)
        assert other.requests == []
    assert result.returncode == 1, result.log[-3000:]
    assert len(result.items) == 3
    assert "(RedirectLeavesHub: HTTP 302 redirect to another host: 'http://localhost:" in result.log
    assert result.stats["ptm/pages/failed/RedirectLeavesHub"] == 1


def test_same_origin_allows_only_the_requests_host_and_port_and_an_upgrade_to_https():
    assert same_origin("https://hub.example/a", "https://hub.example/b?c")
    assert same_origin("https://hub.example/a", "https://HUB.example:443/b")
    assert same_origin("http://hub.example/a", "https://hub.example/b")
    assert not same_origin("https://hub.example/a", "http://hub.example/b")
    assert not same_origin("https://hub.example/a", "https://169.254.169.254/latest/meta-data/")
    assert not same_origin("http://127.0.0.1:8000/a", "http://127.0.0.1:8001/a")
    assert not same_origin("http://127.0.0.1:8000/a", "http://localhost:8000/a")
    assert not same_origin("https://hub.example/a", "https://hub.example:99999/a")
    assert not same_origin("https://hub.example/a", "https://hub.example.evil/a")
    # A site moving to or from www. (https://modelzoo.co -> https://www.modelzoo.co) stays the hub.
    assert same_origin("https://hub.example/a", "https://www.hub.example/a")
    assert same_origin("http://www.hub.example/a", "https://hub.example/a")
    assert not same_origin("https://hub.example/a", "https://www2.hub.example/a")
    assert not same_origin("https://hub.example/a", "https://www.hub.example.evil/a")


class DigestRedirectOllama(OllamaReplica):
    """Every tag's manifest redirects (same host) to one URL per model, as to its digest."""

    def _manifest(self, req, m):
        model, tag = m.group("model"), m.group("tag")
        if tag == "by-digest":
            body = manifest_bytes(model, ollama_models()[model][0])
            return Reply(200, body, {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
        return Reply(307, b"", {"Location": f"{self.registry_url}/v2/library/{model}/manifests/by-digest"})


def test_a_same_host_redirect_to_a_url_fetched_already_is_followed_not_dropped(tmp_path):
    with DigestRedirectOllama() as hub:
        result = run_crawl("ollama", tmp_path, settings=hub.settings(**FAST))
    records = {r["ModelName"]: r for r in result.items}
    assert sorted(records) == sorted(ollama_models())  # every model, with each of its tags
    for name, tags in ollama_models().items():
        assert sorted(v["Name"] for v in records[name]["ModelVersions"]) == sorted(tags)
        assert all(v["Error"] is None for v in records[name]["ModelVersions"])


class HugeTagsPageOllama(OllamaReplica):
    """gemma2's tags page is 1.5 MB of tiny elements (whole: it ends in </html>)."""

    def _tags(self, req, m):
        if m.group("model") == "gemma2":
            body = b"<html><body>" + b"<p>x</p>" * 190_000 + b"</body></html>"
            return Reply(200, body, {"Content-Type": "text/html"})
        return super()._tags(req, m)


def test_an_html_page_over_the_size_limit_is_reported_not_parsed(tmp_path):
    with HugeTagsPageOllama() as hub:
        result = run_crawl("ollama", tmp_path, settings=hub.settings(PTM_MAX_HTML_MB=1, **FAST), check=False)
    assert result.returncode == 1, result.log[-3000:]
    assert sorted(r["ModelName"] for r in result.items) == sorted(set(ollama_models()) - {"gemma2"})
    assert "/library/gemma2/tags (page too large (1520026 bytes, over PTM_MAX_HTML_MB=1))" in result.log
    assert result.stats["ptm/pages/failed/page too large"] == 1
    # and no answer of any kind may take a GB (Scrapy's default) of memory
    assert project_settings.DOWNLOAD_MAXSIZE == 64 * 1024 * 1024 and project_settings.PTM_MAX_HTML_MB == 4


class WrongTypedCursorCivitai(CivitaiReplica):
    def __init__(self, *args, metadata, **kwargs):
        super().__init__(*args, **kwargs)
        self.metadata = metadata

    def _listing(self, req, m):
        if req.arg("cursor"):
            return Reply.json({"items": self.visible()[3:], "metadata": {}})
        return Reply.json({"items": self.visible()[:3], "metadata": self.metadata})


@pytest.mark.parametrize("metadata, reason", [
    ({"nextCursor": {"id": 5}}, "malformed next cursor (a dict: {'id': 5})"),
    ({"nextCursor": 12.5}, "malformed next cursor (a float: 12.5)"),
    ({"nextCursor": [1, 2]}, "malformed next cursor (a list: [1, 2])"),
    ([{"nextCursor": "x"}], "malformed next cursor (metadata is a list)"),
    ("next", "malformed next cursor (metadata is a str)"),
])
def test_a_civitai_next_cursor_of_the_wrong_type_is_reported_not_taken_for_the_end(tmp_path, metadata, reason):
    with WrongTypedCursorCivitai(fixture_models() + synthetic_models(4), metadata=metadata) as hub:
        result = run_crawl("civitai", tmp_path, settings=hub.settings(PTM_CIVITAI_PAGE_SIZE=3, **FAST), check=False)
    assert result.returncode == 1, result.log[-3000:]
    assert len(result.items) == 3
    assert f"nsfw=true ({reason})" in result.log
    assert result.stats["ptm/pages/failed/malformed next cursor"] == 1



class SecondPageDownHub(HuggingFaceReplica):
    """Pages whose third one's Link leads back to the second, which answers 404 while ``down``
    (a page the JOBDIR job fetches again)."""

    down = True
    second: str | None = None

    def _listing(self, req, m):
        reply = super()._listing(req, m)
        if not req.arg("cursor"):
            self.second = reply.headers["Link"]
        elif req.arg("cursor") == parse_qs(urlsplit(self.second[1:].split(">")[0]).query)["cursor"][0]:
            if self.down:
                return Reply(404, b"", {})
        else:
            reply.headers["Link"] = self.second
        return reply


def test_a_link_back_to_a_page_a_resumed_job_fetches_again_is_a_loop_as_in_a_fresh_crawl(tmp_path):
    """The second page failed in the job's first run; the resumed run fetches it again, reads the
    third page, whose Link leads back to the second: a loop, as in a fresh crawl (it ended the
    listing in silence, exit status 0, as pages fetched again were not remembered)."""
    with SecondPageDownHub(hf_models(6), repos=False) as hub:
        settings = {"PTM_HUGGINGFACE_URL": hub.url, "PTM_CLONE": 0, "PTM_HUGGINGFACE_PAGE_SIZE": 2,
                    "JOBDIR": str(tmp_path / "job"), **FAST}
        first = run_crawl("huggingface", tmp_path, settings=settings, out_name="1.jsonl", check=False)
        assert first.returncode == 1 and len(first.items) == 2, first.log[-3000:]
        hub.down = False
        resumed = run_crawl("huggingface", tmp_path, settings=settings, out_name="2.jsonl", check=False)
    assert "fetching again the 1 page(s)" in resumed.log, resumed.log[-3000:]
    assert len(resumed.items) == 4
    assert "Listing loops: its next page" in resumed.log, resumed.log[-3000:]
    assert resumed.returncode == 1
    assert resumed.stats["ptm/pages/failed/listing loops"] == 1
