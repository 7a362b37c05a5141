"""The live timeline: numbered events, a backlog for late subscribers, never blocking."""

from __future__ import annotations

import asyncio
import threading

from facesearch.cameras import EventFeed


def test_numbered_and_recent():
    feed = EventFeed(recent=3, first_id=1)
    for i in range(5):
        assert feed.publish({"event": "appear", "track": i})["id"] == i + 1
    assert [e["id"] for e in feed.recent()] == [3, 4, 5]
    assert [e["id"] for e in feed.recent(after=3)] == [4, 5]
    assert [e["id"] for e in feed.recent(limit=1)] == [5]


def test_a_subscriber_gets_the_backlog_then_new_events_from_other_threads():
    feed = EventFeed(first_id=1)
    feed.publish({"n": 1})
    feed.publish({"n": 2})

    async def run():
        got = []
        agen = feed.subscribe(after=1, heartbeat=0.05)

        def later():
            for n in (3, 4):
                feed.publish({"n": n})

        async for item in agen:
            if item is None:
                if not got or got[-1]["n"] == 2:
                    threading.Thread(target=later).start()
                continue
            got.append(item)
            if item["n"] == 4:
                break
        await agen.aclose()
        return got

    got = asyncio.run(run())
    assert [e["n"] for e in got] == [2, 3, 4] and [e["id"] for e in got] == [2, 3, 4]
    assert feed.subscribers == 0


def test_a_slow_subscriber_loses_its_oldest_events_and_blocks_nobody():
    from facesearch.cameras import feed as feed_module

    feed = EventFeed()

    async def run():
        agen = feed.subscribe(heartbeat=0.05)
        first = await agen.__anext__()  # subscribed; now fall behind
        assert first is None
        for n in range(feed_module.SUBSCRIBER_QUEUE + 50):
            feed.publish({"n": n})  # the publisher is never blocked
        await asyncio.sleep(0.05)  # let the loop run the queued hand-overs
        item = await agen.__anext__()
        await agen.aclose()
        return item

    item = asyncio.run(run())
    assert item["n"] == 50  # the 50 oldest were dropped for this subscriber


def test_ids_keep_growing_across_restarts():
    import time

    before = EventFeed().publish({"n": 1})["id"]
    time.sleep(0.002)
    after = EventFeed().publish({"n": 1})["id"]  # a restarted server numbers on from later
    assert after > before
