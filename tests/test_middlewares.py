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
