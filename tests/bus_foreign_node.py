"""A "foreign" bus node for the launcher tests: a program that knows only its plan.

It stands for a Rust or OCaml node (a topology node with ``language`` and
``command``): the launcher starts it as ``command + ["--plan", FILE]`` with
``MYCELIUM_BUS_PLAN=FILE``, and it never reads the topology file.  It speaks
the shared-memory wire protocol of ``mycelium_shm/bus`` with the raw
channel API only (``ShmReader``/``ShmWriter`` and the schema's TLV codec):
its inbound is a channel it creates (or takes over) with the plan's schema
digest and capacity, each link a writer on the peer's channel, attached with
backoff while frames queue, every frame ``(type id, TLV payload)``.

Services, by name, as a Rust/OCaml program compiles them in:

``relay``
    consumes MarketTick; publishes ``Signal(strategy_id=7, symbol=f"relay-{pid}",
    tick_seq=tick.seq, side=1, strength=0.5, features=[tick.bid])`` for each.
``ticker``
    publishes ``config["count"]`` MarketTicks (seq 0..count-1) at start.

Config keys every service takes: ``report`` (a file: the node appends one JSON
line when it starts, with its argv, environment plan path and pid, and one
line per message it received) and ``ignore_sigterm`` (the node then has to be
killed).  On SIGTERM/SIGINT it stops reading, writes what its links still
queue, and exits 0; it leaves its inbound channel for the launcher to remove.
An unknown service or a digest that differs from the schema file's: exit 2.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections import deque
from typing import Any

from mycelium_shm import ShmReader, ShmWriter
from mycelium_shm.errors import ChannelNotFound
from mycelium_shm.protocol import Schema

EXIT_CONFIG = 2
SERVICES = ("relay", "ticker")


def log(node: str, text: str) -> None:
    print(f"{node} foreign: {text}", file=sys.stderr, flush=True)


class Link:
    """A writer on a peer node's channel; frames queue until the channel exists."""

    def __init__(self, plan: dict[str, Any], schema: Schema) -> None:
        self.node = plan["node"]
        self.types = set(plan["types"])
        self.channel = plan["endpoint"]["name"]
        self.schema = schema
        self.writer: ShmWriter | None = None
        self.pending: deque[tuple[int, bytes]] = deque()
        self.next_try = 0.0
        self.delay = 0.005

    def send(self, type_id: int, payload: bytes) -> None:
        self.pending.append((type_id, payload))
        self.pump()

    def pump(self) -> None:
        if self.writer is None:
            if time.monotonic() < self.next_try:
                return
            try:
                self.writer = ShmWriter(self.channel, schema=self.schema)
            except ChannelNotFound:
                self.next_try = time.monotonic() + self.delay
                self.delay = min(self.delay * 2, 0.2)
                return
        while self.pending:
            self.writer.write(*self.pending[0], timeout=5.0)
            self.pending.popleft()


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[-2] != "--plan":
        print("usage: bus_foreign_node.py [...] --plan FILE", file=sys.stderr)
        return EXIT_CONFIG
    plan_path = argv[-1]
    with open(plan_path, encoding="utf-8") as f:
        plan = json.load(f)
    node = plan["node"]
    schema = Schema.load(plan["schema"]["path"])
    if schema.digest_hex != plan["schema"]["digest"]:
        log(node, "schema digest of the plan differs from its schema file")
        return EXIT_CONFIG
    for service in plan["services"]:
        if service["name"] not in SERVICES:
            log(node, f"unknown service {service['name']!r} (this program has relay, ticker)")
            return EXIT_CONFIG
    for link in plan["links"]:
        if link["endpoint"]["kind"] != "shm":
            log(node, f"link to {link['node']}: only shm links here")
            return EXIT_CONFIG
    config: dict[str, Any] = {}
    for service in plan["services"]:
        config.update(service["config"])
    stop: list[int] = []
    if config.get("ignore_sigterm"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
    signal.signal(signal.SIGINT, lambda signum, frame: stop.append(signum))

    report = open(config["report"], "a", buffering=1) if "report" in config else None

    def record(entry: dict[str, Any]) -> None:
        if report is not None:
            report.write(json.dumps(entry) + "\n")

    inbound = plan["inbound"]
    reader = None
    if inbound is not None:
        if inbound["kind"] != "shm":
            log(node, "inbound: only shm here")
            return EXIT_CONFIG
        reader = ShmReader(
            inbound["name"],
            create=True,
            exist_ok=True,
            capacity=inbound["capacity"],
            schema=schema,
        )
    links = [Link(link, schema) for link in plan["links"]]

    def publish(msg: Any) -> None:
        type_id, payload = schema.encode(msg)
        name = type(msg).__name__
        for link in links:
            if name in link.types:
                link.send(type_id, payload)

    record(
        {
            "event": "start",
            "pid": os.getpid(),
            "argv": argv,
            "env_plan": os.environ.get("MYCELIUM_BUS_PLAN"),
            "cwd": os.getcwd(),
            "plan_mode": oct(os.stat(plan_path).st_mode & 0o777),
            "plan_dir_mode": oct(os.stat(os.path.dirname(plan_path)).st_mode & 0o777),
            "plan": plan,
        }
    )
    names = [s["name"] for s in plan["services"]]
    if "ticker" in names:
        for seq in range(int(config.get("count", 0))):
            publish(
                schema.MarketTick(
                    symbol="foreign", seq=seq, ts_ns=seq, bid=1.0, ask=2.0, bid_size=1, ask_size=1
                )
            )
    log(node, f"started {', '.join(names)}")
    while not stop:
        for link in links:
            link.pump()
        if reader is None:
            time.sleep(0.02)
            continue
        frame = reader.read(timeout=0.02)
        if frame is None:
            continue
        msg = schema.decode(frame.type_id, frame.payload)
        record({"event": "recv", "type": type(msg).__name__, "seq": getattr(msg, "seq", None)})
        if "relay" in names and type(msg).__name__ == "MarketTick":
            publish(
                schema.Signal(
                    strategy_id=7,
                    symbol=f"relay-{os.getpid()}",
                    tick_seq=msg.seq,
                    side=1,
                    strength=0.5,
                    features=[msg.bid],
                )
            )
    # Stop receiving, flush the links (peers that never came up get 2 s), exit 0.
    deadline = time.monotonic() + 2.0
    while any(link.pending for link in links) and time.monotonic() < deadline:
        for link in links:
            link.pump()
        time.sleep(0.005)
    if reader is not None:
        reader.close()
    for link in links:
        if link.writer is not None:
            link.writer.close()
    record({"event": "stop", "signal": stop[0]})
    log(node, "stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
