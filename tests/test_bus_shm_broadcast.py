"""The bus over broadcast channels: ShmPublication (one channel per
publishing node) and ShmSubscription (each consuming node reads it with its
own cursor).  A publish that reaches K nodes is one write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from bus_support import tick, wait_for

from mycelium_shm import ShmReader, cursors, inspect
from mycelium_shm.bus import ShmPublication, ShmSubscription
from mycelium_shm.errors import ReaderBusy, SchemaMismatch
from mycelium_shm.protocol import Schema

ROOT = Path(__file__).resolve().parent.parent


def test_one_write_reaches_every_subscriber(schema, buses, channel):
    name = channel()
    pub_bus = buses("feed")
    pub = pub_bus.add_link(
        ShmPublication(name, subscribers=["a", "b", "c"], schema=schema), [schema.MarketTick]
    )
    subs = {}
    for node in ("a", "b", "c"):
        bus = buses(node)
        subs[node] = bus.subscriber(schema.MarketTick, maxsize=10_000)
        bus.add_inbound(ShmSubscription(name, node, schema=schema))
    for i in range(2000):
        pub_bus.publish(tick(schema, i))
    for node, sub in subs.items():
        got = [sub.get(timeout=5).seq for _ in range(2000)]
        assert got == list(range(2000)), node
    info = inspect(name)
    assert info.stats["frames_written"] == 2000  # once, not once per subscriber
    table = {c["name"]: c for c in cursors(name)}
    assert set(table) == {"a", "b", "c"}
    assert all(c["frames_read"] == 2000 and c["lost"] == 0 for c in table.values())
    assert pub.subscribers == ("a", "b", "c")


def test_frames_published_before_a_subscriber_starts_are_kept(schema, buses, channel):
    """The publication registers every subscriber's cursor when it opens."""
    name = channel()
    pub_bus = buses("feed")
    pub_bus.add_link(ShmPublication(name, subscribers=["late"], schema=schema), [schema.MarketTick])
    for i in range(50):
        pub_bus.publish(tick(schema, i))
    late = buses("late")
    sub = late.subscriber(schema.MarketTick)
    late.add_inbound(ShmSubscription(name, "late", schema=schema))
    assert [sub.get(timeout=5).seq for _ in range(50)] == list(range(50))


def test_subscription_waits_for_the_channel_and_polls(schema, buses, channel):
    name = channel()
    node = buses("node")
    seen: list[int] = []
    node.subscribe(schema.MarketTick, lambda m: seen.append(m.seq))
    node.add_inbound(ShmSubscription(name, "node", schema=schema), thread=False)
    assert node.poll() == 0  # no channel yet
    pub = ShmPublication(name, subscribers=["node"], schema=schema)
    for i in range(5):
        pub.send(*schema.encode(tick(schema, i)))
    assert wait_for(lambda: node.poll() > 0 or len(seen) >= 5)
    while node.poll():
        pass
    assert seen == [0, 1, 2, 3, 4]
    pub.close()


def test_a_cursor_held_for_an_instant_is_waited_for(schema, channel):
    """A subscription that finds its cursor held by another live reader for
    a moment (here the test's own reader) tries again."""
    name = channel()
    pub = ShmPublication(name, subscribers=["n"], schema=schema)
    holder = ShmReader(name, schema=schema, cursor="n")  # the registration's hold
    sub = ShmSubscription(name, "n", schema=schema)  # no error: not attached yet
    seen: list[int] = []
    assert sub.poll(lambda t, p: seen.append(t)) == 0
    holder.close()
    type_id, payload = schema.encode(tick(schema, 1))
    pub.send(type_id, payload)
    assert wait_for(lambda: sub.poll(lambda t, p: seen.append(t)) > 0)
    assert seen == [type_id]
    sub.close()
    pub.close()


def test_a_cursor_held_longer_than_the_grace_is_refused(schema, channel, monkeypatch):
    """Another live reader of the same name is an error once the grace is over."""
    from mycelium_shm.bus.transports import shm

    monkeypatch.setattr(shm, "BUSY_GRACE_S", 0.05)
    name = channel()
    pub = ShmPublication(name, subscribers=["n"], schema=schema)
    holder = ShmReader(name, schema=schema, cursor="n")
    sub = ShmSubscription(name, "n", schema=schema)
    assert sub.poll(lambda t, p: None) == 0
    with pytest.raises(ReaderBusy, match="held by a live reader"):
        assert wait_for(lambda: sub.poll(lambda t, p: None) < 0, timeout=2)
    holder.close()
    pub.close()


def test_schema_mismatch_is_refused(schema, channel):
    name = channel()
    other = Schema.from_toml_str(
        '[[message]]\nname = "Other"\nid = 1\nfields = [{ name = "x", type = "u8" }]\n'
    )
    pub = ShmPublication(name, subscribers=["x"], schema=other)
    with pytest.raises(SchemaMismatch):
        ShmReader(name, schema=schema, cursor="x")
    with pytest.raises(SchemaMismatch):  # the channel exists: refused at once
        ShmSubscription(name, "y", schema=schema)
    pub.close()


_SUBSCRIBER = textwrap.dedent(
    """
    import sys
    from mycelium_shm.bus import MessageBus, ShmSubscription
    from mycelium_shm.protocol import Schema
    schema = Schema.load(sys.argv[1])
    bus = MessageBus(schema)
    sub = bus.subscriber(schema.MarketTick, maxsize=100000)
    bus.add_inbound(ShmSubscription(sys.argv[2], "proc", schema=schema))
    print("ready", flush=True)
    want = int(sys.argv[3])
    while True:
        tick = sub.get(timeout=30)
        print(tick.seq, flush=True)
        if tick.seq == want - 1:
            break
    bus.close()
    """
)


def test_a_killed_subscriber_process_resumes_its_cursor(schema, buses, channel):
    """Kill the subscribing process mid-stream, start it again: it gets the
    rest from its durable cursor, nothing lost (the publisher went on)."""
    name = channel()
    pub_bus = buses("feed")
    pub_bus.add_link(ShmPublication(name, subscribers=["proc"], schema=schema), [schema.MarketTick])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-c", _SUBSCRIBER, str(ROOT / "schemas" / "trading.toml"), name, "400"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env)
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == b"ready"
        for i in range(200):
            pub_bus.publish(tick(schema, i))
        seen_first: list[int] = []
        while len(seen_first) < 100:
            seen_first.append(int(first.stdout.readline()))
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        consumed = cursors(name)[0]["frames_read"]  # taken from the ring by the first
        for i in range(200, 400):
            pub_bus.publish(tick(schema, i))
        second = subprocess.run(cmd, capture_output=True, env=env, timeout=60, check=True)
    finally:
        if first.poll() is None:
            first.kill()
        first.wait(10)
        if first.stdout is not None:
            first.stdout.close()
    lines = second.stdout.decode().split()
    assert lines[0] == "ready"
    seen_second = [int(x) for x in lines[1:]]
    # The channel lost nothing: the second process starts exactly where the
    # first one's cursor stood (what the first had taken into its in-process
    # queue but not handled died with it: the bus's queues are in memory).
    assert len(seen_first) <= consumed <= 200
    assert seen_second == list(range(consumed, 400))
    assert seen_first == list(range(100))
    assert cursors(name)[0]["lost"] == 0
