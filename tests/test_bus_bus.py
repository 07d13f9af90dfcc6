"""Tests of mycelium_shm.bus.bus: local delivery and bridges to shared-memory channels."""

from __future__ import annotations

import threading

import pytest
from bus_support import tick, wait_for

from mycelium_shm.bus import BusClosed, MessageBus, ShmInbound, ShmLink


def test_handlers_get_the_same_object(schema, buses):
    """Every local handler receives the published object itself."""
    bus = buses("a")
    got: list[object] = []
    bus.subscribe(schema.MarketTick, got.append)
    bus.subscribe("MarketTick", got.append)
    msg = tick(schema, 1)
    bus.publisher(schema.MarketTick).publish(msg)
    assert got == [msg, msg] and all(m is msg for m in got)


def test_publisher_refuses_other_types(schema, buses):
    """A publisher only publishes its own message type."""
    pub = buses("a").publisher(schema.Signal)
    with pytest.raises(TypeError):
        pub.publish(tick(schema, 1))


def test_a_failing_handler_does_not_stop_delivery(schema, buses):
    """A handler that raises is reported; later handlers still run."""
    errors: list[tuple[BaseException, str]] = []
    bus = MessageBus(schema, on_error=lambda exc, ctx: errors.append((exc, ctx)))
    got: list[object] = []

    def broken(msg: object) -> None:
        raise RuntimeError("boom")

    bus.subscribe(schema.MarketTick, broken)
    bus.subscribe(schema.MarketTick, got.append)
    bus.publish(tick(schema, 1))
    bus.close()
    assert len(got) == 1 and isinstance(errors[0][0], RuntimeError)
    assert bus.stats["handler_errors"] == 1


def test_cancelled_subscription_gets_nothing(schema, buses):
    """Subscription.cancel stops deliveries."""
    bus = buses("a")
    got: list[object] = []
    sub = bus.subscribe(schema.MarketTick, got.append)
    bus.publish(tick(schema, 1))
    sub.cancel()
    bus.publish(tick(schema, 2))
    assert [m.seq for m in got] == [1]


def test_concurrent_publish_and_subscribe(schema, buses):
    """Publishing from threads while others subscribe loses nothing for stable subscribers."""
    bus = buses("a")
    counts = [0]
    lock = threading.Lock()

    def count(msg: object) -> None:
        with lock:
            counts[0] += 1

    bus.subscribe(schema.MarketTick, count)
    pub = bus.publisher(schema.MarketTick)

    def publish() -> None:
        for i in range(2000):
            pub.publish(tick(schema, i))

    def churn() -> None:
        for _ in range(200):
            bus.subscribe(schema.MarketTick, lambda m: None).cancel()

    threads = [threading.Thread(target=publish) for _ in range(4)]
    threads.append(threading.Thread(target=churn))
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert counts[0] == 8000


def test_closed_bus_refuses_publish(schema):
    """Publishing on a closed bus raises BusClosed."""
    bus = MessageBus(schema)
    pub = bus.publisher(schema.MarketTick)
    bus.close()
    with pytest.raises(BusClosed):
        pub.publish(tick(schema, 1))


def test_bus_without_schema_works_locally():
    """A bus without a schema delivers any Python objects by class."""

    class Ping:
        pass

    bus = MessageBus()
    got: list[object] = []
    bus.subscribe(Ping, got.append)
    msg = Ping()
    bus.publish(msg)
    bus.close()
    assert got[0] is msg


def test_shm_bridge_delivers_to_the_other_bus(schema, buses, channel):
    """Chosen types go out on a link; the other bus's reader thread delivers them."""
    name = channel()
    a, b = buses("a"), buses("b")
    b.add_inbound(ShmInbound(name, schema=schema))
    sub = b.subscriber(schema.MarketTick)
    a.add_link(ShmLink(name, schema=schema), [schema.MarketTick])
    a.publish(tick(schema, 7))
    a.publish(schema.Stop(last_seq=0, reason="not bridged"))
    assert sub.get(timeout=5) == tick(schema, 7)
    assert b.subscribed_types() == [schema.MarketTick]


def test_no_echo_between_buses_bridged_both_ways(schema, buses, channel):
    """A message crosses once and never comes back to the channel it came from."""
    ca, cb = channel(), channel()
    a, b = buses("a"), buses("b")
    a.add_inbound(ShmInbound(ca, schema=schema))
    b.add_inbound(ShmInbound(cb, schema=schema))
    a.add_link(ShmLink(cb, schema=schema), [schema.MarketTick])
    b.add_link(ShmLink(ca, schema=schema), [schema.MarketTick])
    got_a: list[object] = []
    got_b: list[object] = []
    a.subscribe(schema.MarketTick, got_a.append)
    b.subscribe(schema.MarketTick, got_b.append)
    a.publish(tick(schema, 1))
    assert wait_for(lambda: len(got_b) == 1)
    b.publish(tick(schema, 2))
    assert wait_for(lambda: len(got_a) == 2)
    # A marker published last on each side proves nothing else is still in flight.
    a.publish(tick(schema, 99))
    assert wait_for(lambda: len(got_b) == 3)
    assert [m.seq for m in got_a] == [1, 2, 99]
    assert [m.seq for m in got_b] == [1, 2, 99]
    assert a.stats["received"] == 1 and b.stats["received"] == 2
