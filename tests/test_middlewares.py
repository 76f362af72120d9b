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
