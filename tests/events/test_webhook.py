"""Webhooks delivered to a real HTTP server on loopback: order, retries, signatures, no blocking."""

from __future__ import annotations

import hmac
import time

import pytest
from receivers import Receiver

from facesearch.errors import InputError
from facesearch.events import Dispatcher, event_payload
from facesearch.events.webhook import SIGNATURE_HEADER, WebhookSink, sign


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def events(n: int, camera: str = "door") -> list[dict]:
    return [
        event_payload(
            {
                "t": i,
                "frame": i,
                "event": "recognized",
                "track": 1,
                "name": "amy",
                "similarity": 0.8,
                "box": [1, 2, 3, 4],
            },
            camera,
        )
        for i in range(n)
    ]


def test_events_arrive_in_order_with_a_valid_signature(receiver):
    d = Dispatcher([WebhookSink(receiver.url, secret="s3cret")])
    for e in events(5):
        d.send(e)
    got = receiver.wait_for(5)
    d.close()
    assert [e["frame"] for e in got] == list(range(5))
    assert got[0]["camera"] == "door" and got[0]["name"] == "amy" and "time" in got[0]
    for h in receiver.headers:
        assert hmac.compare_digest(h[SIGNATURE_HEADER], sign(h["_body"], "s3cret"))
    assert d.stats()[next(iter(d.stats()))] == {"delivered": 5, "failed": 0, "dropped": 0}


def test_a_failing_receiver_gets_the_event_when_it_recovers(receiver):
    receiver.fail_next = 2
    d = Dispatcher([WebhookSink(receiver.url, max_backoff=0.2)])
    d.send(events(1)[0])
    assert len(receiver.wait_for(1)) == 1
    d.close()
    assert receiver.fail_next == 0  # it failed twice first


def test_a_slow_receiver_never_blocks_send(receiver):
    receiver.gate.clear()  # every request now waits
    d = Dispatcher([WebhookSink(receiver.url)], queue_size=3)
    for e in events(10):
        d.send(e)  # returns although nothing can be delivered yet
    assert receiver.got == []
    receiver.gate.set()
    d.close()  # delivers what is queued
    got = [e["frame"] for e in receiver.got]
    # perhaps one already in flight when the queue filled, then the newest three
    assert got[-3:] == [7, 8, 9] and len(got) in (3, 4)
    assert sum(s["dropped"] for s in d.stats().values()) == 10 - len(got)


def test_an_unreachable_receiver_is_given_up_without_harm():
    d = Dispatcher([WebhookSink("http://127.0.0.1:9/nowhere", attempts=2, max_backoff=0.1)])
    d.send(events(1)[0])
    deadline = time.monotonic() + 20
    while d.stats()[next(iter(d.stats()))]["failed"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    d.close()
    assert d.stats()[next(iter(d.stats()))]["failed"] == 1


@pytest.mark.parametrize("url", ["ftp://host/x", "not a url", "http://"])
def test_bad_urls_are_one_line_errors(url):
    with pytest.raises(InputError, match="expected an http"):
        WebhookSink(url)
