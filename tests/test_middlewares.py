import email.utils
import time

from scrapy.http import Headers

from ptmscrape.middlewares import wait_seconds


def test_ratelimit_header_t_parameter():
    assert wait_seconds(Headers({"RateLimit": '"api";r=0;t=55'})) == 55
    assert wait_seconds(Headers({"RateLimit": '"default";r=10;t=3'})) == 3


def test_retry_after_seconds_and_http_date():
    assert wait_seconds(Headers({"Retry-After": "7"})) == 7
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= wait_seconds(Headers({"Retry-After": later})) <= 31


def test_no_or_garbage_wait_header():
    assert wait_seconds(Headers({})) is None
    assert wait_seconds(Headers({"Retry-After": "soon"})) is None


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
