"""A listing's next page goes out before the page's models are processed
(ptmscrape/next_page_first.py)."""

from __future__ import annotations

import asyncio
import json

from scrapy import Request

from ptmscrape import settings as project
from ptmscrape.next_page_first import NEXT_PAGE_META, TURNS, NextPageFirstMiddleware
from spiders.huggingface import HuggingfaceSpider
from tests.crawl import run_crawl
from tests.helpers import make_spider
from tests.replicas.huggingface import HuggingFaceReplica, synthetic_models


async def _outputs(*outputs):
    for output in outputs:
        yield output


def _run(outputs):
    """The middleware's output, each with the loop turns counted by then."""

    async def main():
        turns = 0
        done = False

        async def count_turns():
            nonlocal turns
            while not done:
                turns += 1
                await asyncio.sleep(0)

        counter = asyncio.ensure_future(count_turns())
        await asyncio.sleep(0)
        seen = []
        async for output in NextPageFirstMiddleware().process_spider_output(None, _outputs(*outputs)):
            seen.append((output, turns))
        done = True
        await counter
        return seen

    return asyncio.run(main())


def test_the_loop_turns_after_a_next_page_request_before_the_models_follow():
    nxt = Request("https://hub.example/api/models?cursor=2", meta={NEXT_PAGE_META: True})
    seen = _run([nxt, {"id": 1}, {"id": 2}])
    assert [o for o, _ in seen] == [nxt, {"id": 1}, {"id": 2}]  # order and outputs unchanged
    (_, at_request), (_, at_first_model), (_, at_second_model) = seen
    assert at_first_model - at_request >= TURNS
    assert at_second_model == at_first_model  # models themselves are not slowed down


def test_other_requests_and_items_pass_without_a_pause():
    detail = Request("https://hub.example/api/models/o/m")
    seen = _run([detail, {"id": 1}])
    assert [o for o, _ in seen] == [detail, {"id": 1}]
    assert seen[1][1] - seen[0][1] < TURNS


def test_every_paged_spider_marks_its_next_page_and_every_crawl_has_the_middleware():
    spider = make_spider(HuggingfaceSpider, {"PTM_HUGGINGFACE_URL": "https://hub.example"})
    request = spider.next_page("https://hub.example/api/models?cursor=2", spider.parse_listing)
    assert request.meta[NEXT_PAGE_META] is True
    assert project.SPIDER_MIDDLEWARES.get("ptmscrape.next_page_first.NextPageFirstMiddleware")


def _reached_after(tmp_path, name, spider_middlewares):
    size, pages = 150, 4
    with HuggingFaceReplica(synthetic_models(size * pages), None, repos=False) as hub:
        hub.replica.delay = 0.2  # pages are served one at a time, each while the last is processed
        # The callback's next-page request only, not the one asked for at the page's headers.
        extensions = {**project.EXTENSIONS, "tests.probes.NextPageProbe": 0, "tests.probes.NextPageAtCallbackOnly": 0}
        result = run_crawl("huggingface", tmp_path / name, settings={
            "PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": size, "PTM_CLONE": 0,
            "EXTENSIONS": json.dumps(extensions), "SPIDER_MIDDLEWARES": json.dumps(spider_middlewares)})
    assert len(result.items) == size * pages
    return size, result.stats["test/next_page_reached_after"]


def test_in_a_real_crawl_no_model_of_a_page_is_processed_before_its_next_page_is_requested(tmp_path):
    size, reached = _reached_after(tmp_path, "with", project.SPIDER_MIDDLEWARES)
    assert len(reached) == 3  # pages 2, 3 and 4
    # The request for page k+1 reached the downloader before any model of page k left the pipelines.
    assert all(count <= (k - 1) * size for k, count in enumerate(reached, start=1)), reached
    # Without the middleware (the check above can fail): the first models of the page went first.
    size, reached = _reached_after(tmp_path, "without", {})
    assert any(count > (k - 1) * size for k, count in enumerate(reached, start=1)), reached


def test_hugging_face_asks_for_the_next_page_when_a_page_s_headers_arrive_not_its_body(tmp_path):
    """Each listing page's body is held back until the next page's request arrives (20 s at most,
    under DOWNLOAD_TIMEOUT): a crawl that asked for the next page only once a body was read would
    see every body go out by the time-out instead. What is checked is that order, never a duration."""
    import dataclasses
    import threading

    class Gate(threading.Event):
        opened: bool | None = None  # whether the body went out because the event was set

        def wait(self, timeout=None):
            self.opened = super().wait(timeout)
            return self.opened

    size, pages = 50, 3
    gates = [Gate() for _ in range(pages - 1)]  # the last page's body is not held: no next page
    asked: list[str] = []

    def held_bodies(incoming, answer):
        reply = answer()
        if incoming.path.endswith("/api/models"):
            page = len(asked)
            asked.append(incoming.path)
            if page:
                gates[page - 1].set()  # the next page was asked for: the page before's body may go
            if page < len(gates):
                return dataclasses.replace(reply, body_delay=20.0, body_after=gates[page])
        return reply

    with HuggingFaceReplica(synthetic_models(size * pages), None, repos=False) as hub:
        hub.replica.interceptors.append(held_bodies)
        result = run_crawl("huggingface", tmp_path, settings={
            "PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": size, "PTM_CLONE": 0})
    assert len(result.items) == size * pages and len({item["id"] for item in result.items}) == size * pages
    assert len(asked) == pages
    # Each next page was asked for while the body of the page before was still held back.
    assert [gate.opened for gate in gates] == [True] * len(gates)
    assert result.stats.get("dupefilter/filtered") is None  # and only once


def test_a_next_page_names_the_listing_page_that_asked_for_it():
    """What tells a listing loop back to a page a resumed JOBDIR job fetches again from the link of
    the page before it (``HubSpider.listing_page_scheduled``)."""
    from scrapy.http import TextResponse

    from ptmscrape.spiders_base import LISTING_FROM_META

    spider = make_spider(HuggingfaceSpider, {"PTM_HUGGINGFACE_URL": "http://127.0.0.1:9"})
    page = spider.request(spider.base_url + "/api/models?p=1", spider.parse_listing)
    response = TextResponse(page.url, body=b"[]", request=page)
    nxt = spider.next_page(spider.base_url + "/api/models?p=2", spider.parse_listing)
    model = spider.request(spider.base_url + "/api/models/a/b", spider.parse_listing)

    async def main():
        middleware = NextPageFirstMiddleware.from_crawler(spider.crawler)
        return [out async for out in middleware.process_spider_output(response, _outputs(nxt, model))]

    assert asyncio.run(main()) == [nxt, model]
    assert nxt.meta[LISTING_FROM_META] == spider.crawler.request_fingerprinter.fingerprint(page).hex()
    assert LISTING_FROM_META not in model.meta  # not a next page
