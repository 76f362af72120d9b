import email.utils
import time

from scrapy.http import Headers

from ptmscrape.middlewares import named_wait


def test_ratelimit_header_t_parameter():
    assert named_wait(Headers({"RateLimit": '"api";r=0;t=55'})) == 55
    assert named_wait(Headers({"RateLimit": '"default";r=10;t=3'})) == 3


def test_retry_after_seconds_and_http_date():
    assert named_wait(Headers({"Retry-After": "7"})) == 7
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= named_wait(Headers({"Retry-After": later})) <= 31


def test_no_or_garbage_wait_header():
    assert named_wait(Headers({})) is None
    assert named_wait(Headers({"Retry-After": "soon"})) is None


def test_the_hub_token_goes_to_the_hubs_host_on_its_scheme_only(monkeypatch):
    from scrapy import Request

    from ptmscrape.middlewares import HubAuthMiddleware
    from spiders.huggingface import HuggingfaceSpider
    from tests.crawl import project_crawler

    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    crawler = project_crawler(HuggingfaceSpider, {"PTM_HUGGINGFACE_URL": "https://hub.example"})
    crawler.spider = HuggingfaceSpider.from_crawler(crawler)
    auth = HubAuthMiddleware.from_crawler(crawler)

    def sent(url):
        request = Request(url)
        auth.process_request(request)
        return request.headers.get("Authorization")

    assert sent("https://hub.example/api/models") == b"Bearer hf_test_token"
    assert sent("http://hub.example/api/models") is None  # a downgrade to plain http
    assert sent("https://other.example/api/models") is None


def test_a_proxy_password_is_sent_to_the_proxy_and_never_kept_on_a_request(monkeypatch):
    """Scrapy's HttpProxyMiddleware sends the password of ``https_proxy=http://user:pw@host`` as a
    ``Proxy-Authorization`` header and leaves it on the request: retry and redirect copies carried
    it into the JOBDIR's queue (pickled) or Redis. It is taken off as the token is, and sent again."""
    import base64
    import pickle

    from scrapy import Request
    from scrapy.downloadermiddlewares.httpproxy import HttpProxyMiddleware
    from scrapy.downloadermiddlewares.retry import get_retry_request
    from scrapy.http import Response

    from ptmscrape.middlewares import HubAuthMiddleware
    from spiders.huggingface import HuggingfaceSpider
    from tests.crawl import project_crawler

    monkeypatch.setenv("https_proxy", "http://user:pr0xy-secret@127.0.0.1:3128")
    crawler = project_crawler(HuggingfaceSpider, {"PTM_HUGGINGFACE_URL": "https://hub.example"})
    crawler.spider = HuggingfaceSpider.from_crawler(crawler)
    proxy, auth = HttpProxyMiddleware.from_crawler(crawler), HubAuthMiddleware.from_crawler(crawler)
    sent = b"Basic " + base64.b64encode(b"user:pr0xy-secret")

    def download(request):  # the request path (650, then 750), then the response path
        auth.process_request(request)
        proxy.process_request(request)
        headers = request.headers.get("Proxy-Authorization"), request.meta.get("proxy")
        auth.process_response(request, Response(request.url, status=503))
        return headers

    request = Request("https://hub.example/api/models")
    assert download(request) == (sent, "http://127.0.0.1:3128")
    retry = get_retry_request(request, spider=crawler.spider, reason="503")
    assert b"pr0xy-secret" not in pickle.dumps(retry.to_dict(spider=crawler.spider))
    assert base64.b64encode(b"user:pr0xy-secret") not in pickle.dumps(retry.to_dict(spider=crawler.spider))
    assert download(retry) == (sent, "http://127.0.0.1:3128")  # the retry is sent through the proxy, logged in


def _github_limit(status=403, remaining="0", reset_in=None, body=b'{"message":"API rate limit exceeded"}', **more):
    """A GitHub rate-limit answer as the REST API sends it (headers lower-case, as GitHub's are)."""
    from scrapy.http import Response

    date = 1_800_000_000
    headers = {"date": email.utils.formatdate(date, usegmt=True), "x-ratelimit-limit": "60",
               "x-ratelimit-remaining": remaining, "x-ratelimit-used": "60", "x-ratelimit-resource": "core",
               **({"x-ratelimit-reset": str(date + reset_in)} if reset_in is not None else {}), **more}
    return Response("https://api.github.com/repos/o/r/git/trees/main?recursive=1", status=status,
                    headers=headers, body=body)


def _ratelimit_answer(response, settings=None):
    """What RateLimitMiddleware makes of ``response``: ``(what it returned or raised, seconds it slept)``."""
    import asyncio

    from scrapy import Request

    from ptmscrape import middlewares
    from ptmscrape.middlewares import RateLimitMiddleware
    from spiders.tfhub import TfhubSpider
    from tests.crawl import project_crawler

    crawler = project_crawler(TfhubSpider, settings)
    middleware = RateLimitMiddleware.from_crawler(crawler)
    slept = []

    async def sleep(crawler, seconds):
        slept.append(seconds)
        return True

    async def answer():
        real_sleep, middlewares.sleep_unless_closing = middlewares.sleep_unless_closing, sleep
        try:
            return await middleware.process_response(Request(response.url), response)
        except Exception as exc:  # noqa: BLE001 - what it raised is the answer
            return exc
        finally:
            middlewares.sleep_unless_closing = real_sleep

    return asyncio.run(answer()), slept, crawler.stats


def test_githubs_403_of_a_rate_limit_waits_until_the_reset_then_retries():
    """GitHub answers its primary limit with 403 (or 429), x-ratelimit-remaining 0 and the reset as
    a Unix time: waited for, counted from the answer's Date (GitHub's clock), then retried. Scrapy
    failed such a tree request as an ordinary 403: a whole hub (tfhub, openvino) lost, exit 1."""
    from scrapy import Request

    for status in (403, 429):
        retry, slept, stats = _ratelimit_answer(_github_limit(status, reset_in=900))
        assert isinstance(retry, Request) and retry.meta["ptm_ratelimit_retries"] == 1 and retry.dont_filter
        assert slept == [901.0]  # the whole wait (PTM_RATELIMIT_MAX_WAIT cuts named waits only)
        assert stats.get_value("ptm/ratelimit/waits") == 1
    # A secondary limit: 403 with retry-after, or with only its message (at least a minute).
    retry, slept, _ = _ratelimit_answer(_github_limit(remaining="41", **{"retry-after": "30"}))
    assert isinstance(retry, Request) and slept == [30.0]
    retry, slept, _ = _ratelimit_answer(_github_limit(remaining="41", body=(
        b'{"message":"You have exceeded a secondary rate limit. Please wait a few minutes."}')))
    assert isinstance(retry, Request) and slept == [60.0]


def test_an_ordinary_403_is_not_waited_for():
    response = _github_limit(remaining="59", reset_in=900, body=b'{"message":"Resource not accessible by integration"}')
    answer, slept, stats = _ratelimit_answer(response)
    assert answer is response and slept == [] and stats.get_value("ptm/ratelimit/waits") is None
    # Nor a 403 with no rate-limit header at all (a gated repository on the Hugging Face Hub).
    from scrapy.http import Response
    gated = Response("https://hub.example/api/models/o/m", status=403, body=b"Access to model o/m is restricted")
    assert _ratelimit_answer(gated)[0] is gated


def test_a_503_with_rate_limit_budget_left_is_no_rate_limit():
    """The Hub sends ``RateLimit: "api";r=<left>;t=<window>`` on every answer. A 503 of an overloaded
    server with budget left was taken for a rate limit: the window's seconds (minutes) waited, up to
    PTM_RATELIMIT_MAX_RETRIES times, and counted as rate-limit waits. It is left to Scrapy's retries
    now; a 503 with the budget spent, or with Retry-After, is still waited for."""
    from scrapy import Request
    from scrapy.http import Response

    url = "https://hub.example/api/models"
    overloaded = Response(url, status=503, headers={"RateLimit": '"api";r=412;t=240'})
    answer, slept, stats = _ratelimit_answer(overloaded)
    assert answer is overloaded and slept == [] and stats.get_value("ptm/ratelimit/waits") is None
    for headers, wait in (({"RateLimit": '"api";r=0;t=240'}, 240.0),
                          ({"RateLimit": '"api";r=412;t=240', "Retry-After": "7"}, 240.0),
                          ({"Retry-After": "7"}, 7.0)):
        answer, slept, _ = _ratelimit_answer(Response(url, status=503, headers=headers),
                                             {"PTM_RATELIMIT_MAX_WAIT": 600})
        assert isinstance(answer, Request) and slept == [wait], headers


def test_a_reset_later_than_the_longest_wait_gives_the_request_up_at_once():
    from ptmscrape.middlewares import RateLimited

    answer, slept, stats = _ratelimit_answer(_github_limit(reset_in=3000), {"PTM_RATELIMIT_MAX_RESET_WAIT": 600})
    assert isinstance(answer, RateLimited) and answer.status == 403 and slept == []
    assert "resets in 3001 s, later than PTM_RATELIMIT_MAX_RESET_WAIT=600" in str(answer)
    assert stats.get_value("ptm/ratelimit/gave_up") == 1


def test_reset_wait_reads_githubs_headers():
    from ptmscrape.middlewares import reset_wait

    date = email.utils.formatdate(1_800_000_000, usegmt=True)
    assert reset_wait(Headers({"Date": date, "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1800000100"})) == 101
    assert reset_wait(Headers({"Date": date, "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000000"})) == 1
    assert reset_wait(Headers({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"})) == 30  # seconds left
    assert reset_wait(Headers({"Date": date, "X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "1800000100"})) is None
    assert reset_wait(Headers({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "soon"})) is None
    assert named_wait(Headers({"Retry-After": "7", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"})) == 7


def test_a_wait_ends_within_a_second_once_the_crawl_closes_and_the_request_is_queued_again():
    """Scrapy's graceful stop (Ctrl-C once, a pause) waits for the requests in the downloader: one
    waiting out a rate limit held the pause for the rest of its wait (up to an hour for GitHub's
    reset), and a supervisor's stop timeout then killed the crawl. Now the wait ends and the request
    goes back to the scheduler (the JOBDIR's queue), unfetched and not counted as a retry."""
    import asyncio
    import types

    from scrapy import Request

    from ptmscrape.middlewares import RateLimitMiddleware, sleep_unless_closing
    from spiders.tfhub import TfhubSpider
    from tests.crawl import project_crawler

    crawler = project_crawler(TfhubSpider)
    engine = crawler.engine = types.SimpleNamespace(running=True, _slot=types.SimpleNamespace(closing=None))

    async def close_soon():
        await asyncio.sleep(0.05)
        engine.running = False

    async def wait(seconds):  # an hour's wait that outlasts the bound fails the test (TimeoutError)
        whole, _ = await asyncio.wait_for(asyncio.gather(sleep_unless_closing(crawler, seconds), close_soon()), 60)
        return whole

    assert asyncio.run(wait(0.01)) is True  # a short wait is slept whole
    engine.running = True
    assert asyncio.run(wait(3600)) is False
    engine.running, engine._slot.closing = True, object()  # a spider closing (CLOSESPIDER_…)
    assert asyncio.run(wait(3600)) is False

    engine._slot.closing, engine.running = None, False  # closing: the limited request is handed back
    middleware = RateLimitMiddleware.from_crawler(crawler)
    request = Request("https://api.github.com/repos/o/r/git/trees/main?recursive=1", meta={"ptm_ratelimit_retries": 2})
    back = asyncio.run(middleware.process_response(request, _github_limit(reset_in=1800)))
    assert isinstance(back, Request) and back.url == request.url and back.dont_filter
    assert back.meta["ptm_ratelimit_retries"] == 2
