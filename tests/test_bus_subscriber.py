"""Tests of mycelium_shm.bus.subscriber: queues, overflow policies, async iteration."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from mycelium_shm.bus import BusClosed, MessageBus, Overflow, SubscriberOverflow
from mycelium_shm.protocol import Schema


@pytest.fixture
def bus(schema: Schema):
    b = MessageBus(schema, name="test")
    yield b
    b.close(timeout=1)


def stop(schema: Schema, n: int):
    return schema.Stop(last_seq=n, reason="")


def test_subscriber_gets_the_published_object_not_a_copy(schema, bus):
    """A queued message is the very object that was published."""
    sub = bus.subscriber(schema.Stop)
    msg = stop(schema, 1)
    bus.publish(msg)
    assert sub.get(timeout=1) is msg


def test_subscriber_over_several_types_keeps_one_fifo(schema, bus):
    """Messages of all subscribed types share one queue in publish order."""
    sub = bus.subscriber("Stop", "Fill")
    fill = schema.Fill(order_id=1, venue=b"ABCD", qty=1, price=1.0, fee=0.0, ts_ns=0)
    first, last = stop(schema, 1), stop(schema, 2)
    for m in (first, fill, last):
        bus.publish(m)
    assert sub.drain() == [first, fill, last]


def test_drop_oldest_keeps_the_newest_messages(schema, bus):
    """DROP_OLDEST discards from the head and counts the discards."""
    sub = bus.subscriber(schema.Stop, maxsize=3, overflow=Overflow.DROP_OLDEST)
    for i in range(5):
        bus.publish(stop(schema, i))
    assert [m.last_seq for m in sub.drain()] == [2, 3, 4]
    assert sub.dropped == 2


def test_drop_newest_keeps_the_oldest_messages(schema, bus):
    """DROP_NEWEST discards the incoming message when full."""
    sub = bus.subscriber(schema.Stop, maxsize=3, overflow="drop_newest")
    for i in range(5):
        bus.publish(stop(schema, i))
    assert [m.last_seq for m in sub.drain()] == [0, 1, 2]
    assert sub.dropped == 2


def test_raise_policy_raises_in_the_publisher(schema, bus):
    """RAISE makes publish fail with SubscriberOverflow (a Full) when the queue is full."""
    sub = bus.subscriber(schema.Stop, maxsize=1, overflow=Overflow.RAISE)
    bus.publish(stop(schema, 0))
    with pytest.raises(SubscriberOverflow):
        bus.publish(stop(schema, 1))
    assert len(sub) == 1


def test_block_policy_waits_for_room(schema, bus):
    """BLOCK holds the publisher until the consumer takes a message; nothing is lost."""
    sub = bus.subscriber(schema.Stop, maxsize=2, overflow=Overflow.BLOCK)
    done = threading.Event()

    def produce() -> None:
        for i in range(5):
            bus.publish(stop(schema, i))
        done.set()

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    deadline = time.monotonic() + 5
    while len(sub) < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert not done.is_set()
    got = [sub.get(timeout=5).last_seq for _ in range(5)]
    producer.join(5)
    assert got == [0, 1, 2, 3, 4] and done.is_set()


def test_close_ends_iteration_after_draining(schema, bus):
    """Closing unsubscribes; iteration yields what is queued, then stops."""
    sub = bus.subscriber(schema.Stop)
    bus.publish(stop(schema, 1))
    sub.close()
    bus.publish(stop(schema, 2))
    assert [m.last_seq for m in sub] == [1]
    with pytest.raises(BusClosed):
        sub.get(timeout=0)


def test_get_times_out(schema, bus):
    """get() raises TimeoutError when nothing arrives in time."""
    sub = bus.subscriber(schema.Stop)
    with pytest.raises(TimeoutError):
        sub.get(timeout=0.01)


def test_async_iteration_receives_from_other_threads(schema, bus):
    """``async for`` wakes on messages published from another thread."""
    sub = bus.subscriber(schema.Stop, maxsize=4)

    def produce() -> None:
        for i in range(20):
            bus.publish(stop(schema, i))
        sub.close()

    async def consume() -> list[int]:
        threading.Thread(target=produce, daemon=True).start()
        return [m.last_seq async for m in sub]

    assert asyncio.run(asyncio.wait_for(consume(), 5)) == list(range(20))


def test_async_wait_can_be_cancelled(schema, bus):
    """A cancelled ``__anext__`` leaves no waiter behind."""
    sub = bus.subscriber(schema.Stop)

    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(sub.__anext__(), 0.01)

    asyncio.run(main())
    assert sub._async_waiters == []
    bus.publish(stop(schema, 3))
    assert sub.get(timeout=1).last_seq == 3
