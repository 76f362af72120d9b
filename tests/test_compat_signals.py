"""``ptmscrape/compat/signals.py``: signals dispatched without an asyncio task per receiver, with
Scrapy's results, errors and warnings."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import warnings

from pydispatch import dispatcher
from pydispatch.dispatcher import getAllReceivers, liveReceivers
from pydispatch.robustapply import robustApply
from scrapy.exceptions import ScrapyDeprecationWarning
from scrapy.signalmanager import SignalManager
from twisted.internet.defer import succeed

from ptmscrape.compat.signals import InlineSignalDispatch, apply, receivers_of, send_catch_log_async
from spiders.huggingface import HuggingfaceSpider
from tests.crawl import project_crawler

SIGNAL = object()


class Skipped(Exception):
    """A receiver's exception the sender asked not to log (``dont_log``)."""


def _receivers(calls: list[str]):
    def plain(item):
        calls.append("plain")
        return f"plain {item}"

    async def coroutine(item):
        calls.append("coroutine")
        await asyncio.sleep(0)
        return f"coroutine {item}"

    def deferred(item):
        calls.append("deferred")
        return succeed(f"deferred {item}")

    def failing(item):
        calls.append("failing")
        raise ValueError(f"broken on {item}")

    async def failing_later(item):
        calls.append("failing_later")
        raise Skipped(item)

    return [plain, coroutine, deferred, failing, failing_later]


def _dispatch(dispatch, caplog) -> tuple[list, list[str], list[str], list[str]]:
    calls: list[str] = []
    manager = SignalManager(object())
    receivers = _receivers(calls)
    for receiver in receivers:
        manager.connect(receiver, signal=SIGNAL)
    caplog.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = asyncio.run(dispatch(manager, signal=SIGNAL, item="m1", dont_log=Skipped))
    shown = [(getattr(r, "__name__", r), type(v).__name__ if isinstance(v, Exception) else v) for r, v in results]
    assert [r for r, _ in results] == receivers
    return (shown, calls, [str(w.message).split(" at 0x")[0] for w in caught
                           if issubclass(w.category, ScrapyDeprecationWarning)],
            [r.getMessage().split(" at 0x")[0] for r in caplog.records if r.levelno >= logging.ERROR])


def test_results_errors_and_warnings_are_scrapys(caplog):
    async def scrapys(manager, **kw):
        return await SignalManager.send_catch_log_async(manager, **kw)

    results, calls, deprecations, errors = _dispatch(send_catch_log_async, caplog)
    scrapy_results, scrapy_calls, scrapy_deprecations, scrapy_errors = _dispatch(scrapys, caplog)
    assert (results, deprecations, errors) == (scrapy_results, scrapy_deprecations, scrapy_errors)
    assert results == [("plain", "plain m1"), ("coroutine", "coroutine m1"), ("deferred", "deferred m1"),
                       ("failing", "ValueError"), ("failing_later", "Skipped")]
    assert len(deprecations) == 1 and "returned a Deferred" in deprecations[0]
    assert errors == ["Error caught on signal handler: <function _receivers.<locals>.failing"]
    # Every receiver is called in order; a coroutine function's body runs when its coroutine is
    # awaited: after the plain receivers here, on a loop turn of its own in Scrapy's dispatch.
    assert scrapy_calls == ["plain", "coroutine", "deferred", "failing", "failing_later"]
    assert calls == ["plain", "deferred", "failing", "coroutine", "failing_later"]


def test_plain_receivers_run_without_a_loop_turn():
    manager = SignalManager(object())
    seen = []

    def stats(item):
        seen.append(("stats", item))

    def feed(item):
        seen.append(("feed", item))

    manager.connect(stats, signal=SIGNAL)  # weakly, as Scrapy connects: this test holds them
    manager.connect(feed, signal=SIGNAL)
    dispatch = send_catch_log_async(manager, signal=SIGNAL, item="m1")
    try:
        dispatch.send(None)  # one step: finished unless it waits for the event loop
    except StopIteration as done:
        results = done.value
    else:
        dispatch.close()
        raise AssertionError("the dispatch waited for the event loop")
    assert seen == [("stats", "m1"), ("feed", "m1")]
    assert [value for _, value in results] == [None, None]


def test_awaitable_results_are_awaited_together():
    """As with Scrapy's gather: a receiver may wait for one connected after it."""
    manager = SignalManager(object())

    async def run():
        ready = asyncio.Event()

        async def waits():
            await ready.wait()
            return "waited"

        async def sets():
            ready.set()
            return "set"

        manager.connect(waits, signal=SIGNAL)
        manager.connect(sets, signal=SIGNAL)
        return await asyncio.wait_for(send_catch_log_async(manager, signal=SIGNAL), 5)

    assert [value for _, value in asyncio.run(run())] == ["waited", "set"]


def test_the_project_dispatches_signals_with_it():
    crawler = project_crawler(HuggingfaceSpider)
    assert any(isinstance(ext, InlineSignalDispatch) for ext in crawler.extensions.middlewares)
    assert crawler.signals.send_catch_log_async.func is send_catch_log_async
    assert crawler.signals.send_catch_log_async.args == (crawler.signals,)


class _Receiver:
    def method(self, item, spider):
        return ("method", item, spider)

    def everything(self, item, **rest):
        return ("everything", item, sorted(rest))

    def keyword_only(self, item, *, spider=None):
        return ("keyword_only", item, spider)

    @staticmethod
    def static(signal, item):
        return ("static", signal is SIGNAL, item)

    def __call__(self, item, response=None):
        return ("call", item, response)


def test_receivers_are_called_with_what_robustapply_passes():
    receiver = _Receiver()

    def function(item, response, spider=None):
        return ("function", item, response, spider)

    def takes_none():
        return "none"

    callables = [receiver.method, receiver.everything, receiver.keyword_only, _Receiver.static, receiver,
                 function, takes_none, functools.partial(function, response="partial"), len]
    arguments = {"signal": SIGNAL, "sender": "sender", "item": "m1", "response": "r", "spider": "s"}
    for each in callables * 2:  # the second round with what the first one worked out
        try:
            expected = robustApply(each, **arguments)
        except Exception as exc:
            expected = type(exc)
        try:
            got = apply(each, dict(arguments))
        except Exception as exc:
            got = type(exc)
        assert got == expected, each
    assert apply(receiver.method, arguments) == ("method", "m1", "s")


def _pydispatch_receivers(manager, signal=SIGNAL):
    return list(liveReceivers(getAllReceivers(manager.sender, signal)))


def test_receivers_are_those_pydispatcher_finds_in_its_order():
    manager = SignalManager(object())
    held = [_Receiver() for _ in range(4)]
    assert list(receivers_of(manager.sender, SIGNAL)) == _pydispatch_receivers(manager) == []
    for each in held:
        manager.connect(each.method, signal=SIGNAL)
    manager.connect(held[0].method, signal=SIGNAL)  # connected again: moves to the end
    assert list(receivers_of(manager.sender, SIGNAL)) == _pydispatch_receivers(manager)
    assert [r.__self__ for r in receivers_of(manager.sender, SIGNAL)] == held[1:] + held[:1]
    manager.disconnect(held[2].method, signal=SIGNAL)
    assert list(receivers_of(manager.sender, SIGNAL)) == _pydispatch_receivers(manager)
    assert len(list(receivers_of(manager.sender, SIGNAL))) == 3

    # A receiver whose object is gone (weakly connected, as Scrapy connects) is not called.
    del held[1]
    gc.collect()
    assert list(receivers_of(manager.sender, SIGNAL)) == _pydispatch_receivers(manager)
    assert len(list(receivers_of(manager.sender, SIGNAL))) == 2

    # Receivers of any signal, or from any sender, and a strong reference: PyDispatcher's order.
    def any_signal(item):
        return item

    def any_sender(item):
        return item

    manager.connect(any_signal, signal=dispatcher.Any)
    dispatcher.connect(any_sender, signal=SIGNAL, sender=dispatcher.Any, weak=False)
    try:
        mixed = list(receivers_of(manager.sender, SIGNAL))
        assert mixed == _pydispatch_receivers(manager)
        assert mixed[-2:] == [any_signal, any_sender]
    finally:
        dispatcher.disconnect(any_sender, signal=SIGNAL, sender=dispatcher.Any, weak=False)
        manager.disconnect(any_signal, signal=dispatcher.Any)
    assert list(receivers_of(manager.sender, SIGNAL)) == _pydispatch_receivers(manager)
    assert len(list(receivers_of(manager.sender, SIGNAL))) == 2
