"""Tests of mycelium_shm.bus.transports.shm: links and inbound endpoints on channels."""

from __future__ import annotations

import threading

import pytest
from bus_support import tick, wait_for

from mycelium_shm import ShmWriter
from mycelium_shm.bus import MessageBus, ShmInbound, ShmLink
from mycelium_shm.errors import SchemaMismatch
from mycelium_shm.protocol import Schema


def test_shm_bridge_in_poll_mode(schema, buses, channel):
    """With thread=False frames wait until poll() delivers them in the caller's thread."""
    name = channel()
    a, b = buses("a"), buses("b")
    b.add_inbound(ShmInbound(name, schema=schema), thread=False)
    threads: list[threading.Thread] = []
    b.subscribe(schema.MarketTick, lambda m: threads.append(threading.current_thread()))
    a.add_link(ShmLink(name, schema=schema), [schema.MarketTick])
    for i in range(3):
        a.publish(tick(schema, i))
    assert threads == []
    assert wait_for(lambda: b.poll() > 0 or len(threads) >= 3)
    while b.poll():
        pass
    assert threads == [threading.current_thread()] * 3


def test_link_waits_for_a_channel_that_does_not_exist_yet(schema, buses, channel):
    """Frames sent before the reader creates the channel are delivered once it does."""
    name = channel()
    a, b = buses("a"), buses("b")
    link = ShmLink(name, schema=schema)
    a.add_link(link, [schema.MarketTick])
    for i in range(3):
        a.publish(tick(schema, i))
    assert link.pending == 3 and not link.connected
    sub = b.subscriber(schema.MarketTick)
    b.add_inbound(ShmInbound(name, schema=schema))
    assert [sub.get(timeout=5).seq for _ in range(3)] == [0, 1, 2]
    assert link.wait_connected(5)


def test_link_refuses_a_channel_of_another_schema(schema, channel):
    """Attaching to a channel made with another schema fails with SchemaMismatch."""
    name = channel()
    other = Schema.from_toml_str(
        '[[message]]\nname = "Other"\nid = 1\nfields = [{ name = "x", type = "u8" }]\n'
    )
    with ShmWriter(name, create=True, capacity=1 << 16, schema=other):
        link = ShmLink(name, schema=schema)
        with pytest.raises(SchemaMismatch):
            link.send(1, b"")
        link.close(timeout=0)


def test_undecodable_frame_is_counted_not_fatal(schema, buses, channel):
    """A frame that does not decode is reported and skipped."""
    name = channel()
    errors: list[BaseException] = []
    b = MessageBus(schema, on_error=lambda exc, ctx: errors.append(exc))
    try:
        b.add_inbound(ShmInbound(name, schema=schema))
        sub = b.subscriber(schema.MarketTick)
        with ShmWriter(name, schema=schema) as w:
            w.write(schema.type_id_of(schema.MarketTick), b"\x01")
            tid, payload = schema.encode(tick(schema, 5))
            w.write(tid, payload)
        assert sub.get(timeout=5).seq == 5
        assert b.stats["decode_errors"] == 1 and len(errors) == 1
    finally:
        b.close(timeout=1)
