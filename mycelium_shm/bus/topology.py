"""Topology files: which process hosts which service, and how to reach it.

Format (TOML)::

    # Schema file, relative to this file.  Optional if the program passes one.
    schema = "../../schemas/trading.toml"

    [nodes.feed]                       # a node is one process
    services = ["market_data"]         # the services it hosts
    endpoint = { kind = "shm", name = "pipeline.feed" }   # where it receives

    [nodes.core]
    services = ["strategy", "risk"]
    endpoint = { kind = "tcp", address = "127.0.0.1:47100" }

    [nodes.exec]
    language = "rust"                  # python (the default), rust or ocaml
    command = ["../../bindings/rust/target/release/examples/trading_node"]
    services = ["execution"]
    endpoint = { kind = "unix", path = "/tmp/pipeline-exec.sock" }

    [services.market_data]
    class = "examples.pipeline.services:MarketData"   # "module:Class", optional
    consumes = []                                     # message type names
    publishes = ["MarketTick"]                        # optional (see Routing)
    config = { ticks = 1000 }                         # keyword arguments, optional

Languages: a ``python`` node hosts Python classes (``class`` of its
services) and runs as ``python -m mycelium_shm.bus run``.  A ``rust`` or
``ocaml`` node is a program: ``command`` is its argv (required; the first
element, when it holds a ``/`` and is relative, is relative to the topology
file's directory, and so is the program's working directory), started with
``--plan <file>``: the node's plan (:meth:`Topology.plan`, JSON), the only
thing such a node reads.  Its services are the names compiled into the
program, so ``class`` is refused there; ``config`` goes to the service as
JSON.

Endpoints: ``kind = "shm"`` with ``name`` (and optional ``capacity``, a power
of two), ``kind = "unix"`` with ``path`` (relative paths are relative to the
topology file), ``kind = "tcp"`` with ``address = "host:port"``.  A node needs
an endpoint when the topology has several nodes and one of its services
consumes something.

Shared memory, two ways (top-level ``shm``):

* ``shm = "mailbox"`` (the default): a node's shm endpoint is the channel it
  *receives* on; every node sending to it writes there (one write per
  consuming node).
* ``shm = "broadcast"``: a node's shm endpoint is the broadcast channel it
  *publishes* on (docs/FORMAT.md section 14); every other shm node that
  consumes something reads it with its own durable cursor, named after the
  consuming node.  A message reaching K nodes is written once.  Every node
  that sends to shm nodes needs an shm endpoint then, even one that
  consumes nothing; a channel has at most 10 readers (9 consuming nodes and
  one spare for ``mycelium-shm tail``).

Routing (the choice documented here): every service declares the message
types it ``consumes``.  A node subscribes locally to what its services
consume, and a message published in node A is sent to node B if and only if
a service hosted on B consumes its type; then it is written once to B's
endpoint, whatever the number of consumers there.  When every service of A
declares what it ``publishes``, A links (or, in broadcast mode, lets
subscribe) only the nodes that consume one of those types: no idle links,
and no node woken for frames it will drop.  Frames go straight from
the publishing node to every consuming node (there is no forwarding), so no
message crosses twice or comes back.

Errors: :class:`TopologyError` names the file, the line and the problem
(``topology.toml:12: node 'core': endpoint kind 'udp' is not one of shm, unix,
tcp``).
"""

from __future__ import annotations

import datetime
import functools
import importlib
import inspect
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import TopologyError

if TYPE_CHECKING:
    from .bus import MessageBus

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the tomli backport has the same API
    import tomli as tomllib

__all__ = [
    "BROADCAST_SPARE_READERS",
    "BROADCAST_UNTETHER_MS",
    "LANGUAGES",
    "PLAN_VERSION",
    "SHM_MODES",
    "Endpoint",
    "NodeSpec",
    "ServiceSpec",
    "Topology",
]

#: Values of the top-level ``shm`` key.
SHM_MODES = ("mailbox", "broadcast")
#: Cursor slots of a node's broadcast channel beyond its subscribers (tools).
BROADCAST_SPARE_READERS = 1
#: A subscriber that holds the publisher back this long is untethered.
BROADCAST_UNTETHER_MS = 10_000
_MAX_READERS = 10

_KINDS = ("shm", "unix", "tcp")
#: The languages a node may be written in.
LANGUAGES = ("python", "rust", "ocaml")
#: Version of the node plan (:meth:`Topology.plan`).
PLAN_VERSION = 1
_ENDPOINT_KEYS = {"shm": {"name", "capacity"}, "unix": {"path"}, "tcp": {"address"}}
_UNIX_PATH_MAX = 107
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Endpoint:
    """A node's inbound endpoint."""

    kind: str
    #: Channel name (shm), socket path (unix) or ``"host:port"`` (tcp).
    target: str
    capacity: int = 1 << 20

    @property
    def tcp_address(self) -> tuple[str, int]:
        """``(host, port)`` of a tcp endpoint."""
        from .transports.socket import parse_tcp_address

        return parse_tcp_address(self.target)

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}"

    def plan(self) -> dict[str, Any]:
        """The endpoint as a node plan states it (see :meth:`Topology.plan`)."""
        if self.kind == "shm":
            return {"kind": "shm", "name": self.target, "capacity": self.capacity}
        if self.kind == "unix":
            return {"kind": "unix", "path": os.path.abspath(self.target)}
        host, port = self.tcp_address
        return {"kind": "tcp", "host": host, "port": port}


@dataclass(frozen=True)
class ServiceSpec:
    """A service declared in ``[services.<name>]``."""

    name: str
    consumes: tuple[str, ...]
    class_path: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    #: The type names it publishes (``publishes = [...]``), or None: not
    #: declared, so it may publish anything.
    publishes: tuple[str, ...] | None = None

    def load_class(self) -> Callable[..., Any]:
        """Import the ``class = "module:Class"`` of this service."""
        if self.class_path is None:
            raise LookupError(f"service {self.name!r} has no class in the topology")
        module_name, _, attr = self.class_path.partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj  # type: ignore[no-any-return]


@dataclass(frozen=True)
class NodeSpec:
    """A node (process) declared in ``[nodes.<name>]``."""

    name: str
    services: tuple[str, ...]
    endpoint: Endpoint | None
    #: One of :data:`LANGUAGES`.
    language: str = "python"
    #: The argv of a rust/ocaml node (its program resolved), None for python nodes.
    command: tuple[str, ...] | None = None


def _a(word: str) -> str:
    """``word`` with its indefinite article: "a rust", "an ocaml"."""
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def _non_json(value: Any, key: str = "") -> tuple[str, Any] | None:
    """The first (dotted key, value) of a TOML value that JSON cannot hold, if any."""
    if isinstance(value, dict):
        for k, v in value.items():
            found = _non_json(v, f"{key}.{k}" if key else str(k))
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _non_json(v, f"{key}[{i}]")
            if found is not None:
                return found
    elif isinstance(value, (datetime.date, datetime.time)):
        return key, value
    elif isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return key, value
    return None


class _Lines:
    """Maps TOML table/key paths to the line that defines them."""

    _HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    _KEY = re.compile(r"^\s*((?:\"[^\"]*\"|'[^']*'|[A-Za-z0-9_.\- ]+?))\s*=")

    def __init__(self, text: str) -> None:
        self._lines: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        depth = 0
        for number, raw in enumerate(text.splitlines(), start=1):
            if depth > 0:
                depth += raw.count("[") - raw.count("]")
                continue
            header = self._HEADER.match(raw)
            if header:
                table = self._split(header.group(1))
                self._lines.setdefault(table, number)
                continue
            key = self._KEY.match(raw)
            if key:
                path = table + self._split(key.group(1))
                self._lines.setdefault(path, number)
                rest = raw[key.end() :]
                depth = max(0, rest.count("[") - rest.count("]"))

    @staticmethod
    def _split(dotted: str) -> tuple[str, ...]:
        parts = re.findall(r"\"([^\"]*)\"|'([^']*)'|([^.\s]+)", dotted)
        return tuple(a or b or c for a, b, c in parts)

    def of(self, *path: str) -> int | None:
        """The line of the longest prefix of ``path`` that has one."""
        for n in range(len(path), 0, -1):
            line = self._lines.get(tuple(path[:n]))
            if line is not None:
                return line
        return None


class Topology:
    """A parsed, validated topology file.  Build with :meth:`load`."""

    def __init__(
        self,
        path: Path,
        nodes: dict[str, NodeSpec],
        services: dict[str, ServiceSpec],
        schema_path: Path | None,
        schema: Any = None,
        shm_mode: str = "mailbox",
    ) -> None:
        self.path = path
        #: ``"mailbox"`` or ``"broadcast"`` (the module docstring).
        self.shm_mode = shm_mode
        self.nodes = nodes
        self.services = services
        self.schema_path = schema_path
        #: The schema the file was checked against (loaded or passed in), if any.
        self.schema = schema
        self._lines: _Lines | None = None

    def error(self, problem: str, *where: str) -> TopologyError:
        """A :class:`TopologyError` at the line defining ``where`` (a key path), if known."""
        line = None
        if where and self._lines is not None:
            line = self._lines.of(*where)
        return TopologyError(self.path, line, problem)

    # -- loading and validation ---------------------------------------------

    @classmethod
    def load(cls, path: str | Path, *, schema: Any = None) -> Topology:
        """Parse and check a topology file; raise :class:`TopologyError` if invalid.

        With ``schema`` (or a ``schema`` key in the file) every consumed type
        name is checked against the schema too.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TopologyError(path, None, f"cannot read the file: {exc.strerror or exc}") from exc
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
            line = int(match.group(1)) if match else None
            if match is None and "end of document" in str(exc):
                line = max(1, len(text.rstrip().splitlines()))
            problem = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
            if match:
                problem += f" (column {match.group(2)})"
            raise TopologyError(path, line, f"not valid TOML: {problem}") from exc
        return cls._from_data(path, data, _Lines(text), schema)

    @classmethod
    def _from_data(cls, path: Path, data: dict[str, Any], lines: _Lines, schema: Any) -> Topology:
        def fail(problem: str, *where: str) -> TopologyError:
            return TopologyError(path, lines.of(*where) if where else None, problem)

        for key in data:
            if key not in ("schema", "shm", "nodes", "services"):
                raise fail(
                    f"unknown top-level key {key!r} (expected schema, shm, nodes, services)", key
                )
        shm_mode = data.get("shm", "mailbox")
        if shm_mode not in SHM_MODES:
            raise fail(
                f"shm = {shm_mode!r} is not one of {', '.join(repr(m) for m in SHM_MODES)}", "shm"
            )

        schema_path: Path | None = None
        if "schema" in data:
            if not isinstance(data["schema"], str):
                raise fail("schema must be a path string", "schema")
            schema_path = (path.parent / data["schema"]).resolve()
            if schema is None:
                if not schema_path.is_file():
                    raise fail(f"schema file {str(schema_path)!r} does not exist", "schema")
                from mycelium_shm.protocol import Schema

                try:
                    schema = Schema.load(schema_path)
                except Exception as exc:
                    raise fail(
                        f"schema file {str(schema_path)!r} is invalid: {exc}", "schema"
                    ) from exc

        raw_services = data.get("services", {})
        if not isinstance(raw_services, dict):
            raise fail("services must be a table of [services.<name>] tables", "services")
        services: dict[str, ServiceSpec] = {}
        for sname, spec in raw_services.items():
            where = ("services", sname)
            if not _NAME_RE.match(sname):
                raise fail(f"service name {sname!r} may only hold letters, digits, _ . -", *where)
            if not isinstance(spec, dict):
                raise fail(f"service {sname!r} must be a table", *where)
            for key in spec:
                if key not in ("consumes", "publishes", "class", "config"):
                    raise fail(
                        f"service {sname!r}: unknown key {key!r} "
                        "(expected consumes, publishes, class, config)",
                        *where,
                        key,
                    )
            if "consumes" not in spec:
                raise fail(
                    f"service {sname!r}: missing 'consumes' (a list of message "
                    "type names, [] for none)",
                    *where,
                )
            lists: dict[str, list[str]] = {}
            for key in ("consumes", "publishes"):
                if key not in spec:
                    continue
                names = spec[key]
                if not isinstance(names, list) or not all(isinstance(c, str) for c in names):
                    raise fail(f"service {sname!r}: {key} must be a list of type names", *where, key)
                if len(set(names)) != len(names):
                    raise fail(f"service {sname!r}: {key} lists a type twice", *where, key)
                if schema is not None:
                    for tname in names:
                        try:
                            schema.message_type(tname)
                        except (KeyError, LookupError, ValueError):
                            raise fail(
                                f"service {sname!r}: {key} {tname!r}, which is not a "
                                "message type of the schema",
                                *where,
                                key,
                            ) from None
                lists[key] = names
            consumes = lists["consumes"]
            publishes = tuple(lists["publishes"]) if "publishes" in lists else None
            class_path = spec.get("class")
            if class_path is not None and (
                not isinstance(class_path, str) or not re.match(r"^[\w.]+:[\w.]+$", class_path)
            ):
                raise fail(f'service {sname!r}: class must be "module:Class"', *where, "class")
            config = spec.get("config", {})
            if not isinstance(config, dict):
                raise fail(f"service {sname!r}: config must be a table", *where, "config")
            services[sname] = ServiceSpec(sname, tuple(consumes), class_path, config, publishes)

        raw_nodes = data.get("nodes")
        if raw_nodes is None:
            raise fail("no [nodes.<name>] table: a topology needs at least one node")
        if not isinstance(raw_nodes, dict) or not raw_nodes:
            raise fail("nodes must be a table of [nodes.<name>] tables", "nodes")
        nodes: dict[str, NodeSpec] = {}
        placed: dict[str, str] = {}
        seen_endpoints: dict[tuple[str, str], str] = {}
        for nname, spec in raw_nodes.items():
            where = ("nodes", nname)
            if not _NAME_RE.match(nname):
                raise fail(f"node name {nname!r} may only hold letters, digits, _ . -", *where)
            if not isinstance(spec, dict):
                raise fail(f"node {nname!r} must be a table", *where)
            for key in spec:
                if key not in ("services", "endpoint", "language", "command"):
                    raise fail(
                        f"node {nname!r}: unknown key {key!r} "
                        "(expected services, endpoint, language, command)",
                        *where,
                        key,
                    )
            language, command = cls._language_and_command(path, nname, spec, fail, where)
            hosted = spec.get("services")
            if (
                not isinstance(hosted, list)
                or not hosted
                or not all(isinstance(s, str) for s in hosted)
            ):
                raise fail(
                    f"node {nname!r}: services must be a non-empty list of service names",
                    *where,
                    "services",
                )
            for sname in hosted:
                if sname not in services:
                    raise fail(
                        f"node {nname!r}: service {sname!r} is not declared in a "
                        f"[services.{sname}] table",
                        *where,
                        "services",
                    )
                if sname in placed:
                    raise fail(
                        f"node {nname!r}: service {sname!r} is already hosted by node "
                        f"{placed[sname]!r}",
                        *where,
                        "services",
                    )
                placed[sname] = nname
            endpoint = None
            if "endpoint" in spec:
                endpoint = cls._endpoint(path, nname, spec["endpoint"], fail, where)
                endpoint_key = (endpoint.kind, endpoint.target)
                if endpoint_key in seen_endpoints:
                    raise fail(
                        f"node {nname!r}: endpoint {endpoint} is also node "
                        f"{seen_endpoints[endpoint_key]!r}'s",
                        *where,
                        "endpoint",
                    )
                seen_endpoints[endpoint_key] = nname
            nodes[nname] = NodeSpec(nname, tuple(hosted), endpoint, language, command)

        for sname, service in services.items():
            if sname not in placed:
                raise fail(f"service {sname!r} is declared but no node hosts it", "services", sname)
            host = nodes[placed[sname]]
            if host.language == "python":
                continue
            if service.class_path is not None:
                raise fail(
                    f"service {sname!r}: class is for Python services, but node "
                    f"{host.name!r} that hosts it is {_a(host.language)} node (its program "
                    "maps service names to the services compiled into it)",
                    "services",
                    sname,
                    "class",
                )
            bad = _non_json(service.config)
            if bad is not None:
                key, value = bad
                raise fail(
                    f"service {sname!r}: config key {key!r} holds a "
                    f"{type(value).__name__}, which {_a(host.language)} node cannot "
                    "receive (its plan is JSON: use a string)",
                    "services",
                    sname,
                    "config",
                    *key.split("."),
                )
        if len(nodes) > 1:
            for node in nodes.values():
                if node.endpoint is None and any(services[s].consumes for s in node.services):
                    raise fail(
                        f"node {node.name!r} hosts services that consume messages but "
                        "has no endpoint to receive them on",
                        "nodes",
                        node.name,
                    )
        topology = cls(path, nodes, services, schema_path, schema, shm_mode)
        topology._lines = lines
        if shm_mode == "broadcast":
            topology._check_broadcast(fail)
        return topology

    def _check_broadcast(self, fail: Callable[..., TopologyError]) -> None:
        """In broadcast mode every node sending to shm consumers publishes on
        an shm endpoint of its own, read by at most the channel's slots."""
        for node in self.nodes.values():
            consumers = self.broadcast_subscribers(node.name)
            if not consumers:
                continue
            if node.endpoint is None or node.endpoint.kind != "shm":
                raise fail(
                    f"node {node.name!r} sends to shm nodes ({', '.join(consumers)}): with "
                    'shm = "broadcast" it needs endpoint = { kind = "shm", name = "..." }, '
                    "the channel it publishes on",
                    "nodes",
                    node.name,
                )
            if len(consumers) + BROADCAST_SPARE_READERS > _MAX_READERS:
                raise fail(
                    f"node {node.name!r}: {len(consumers)} shm nodes consume from it, more "
                    f"than the {_MAX_READERS - BROADCAST_SPARE_READERS} a broadcast channel "
                    "can serve (use mailbox shm or sockets for some)",
                    "nodes",
                    node.name,
                )

    @staticmethod
    def _language_and_command(
        path: Path,
        nname: str,
        spec: dict[str, Any],
        fail: Callable[..., TopologyError],
        where: tuple[str, str],
    ) -> tuple[str, tuple[str, ...] | None]:
        language = spec.get("language", "python")
        if language not in LANGUAGES:
            raise fail(
                f"node {nname!r}: language {language!r} is not one of {', '.join(LANGUAGES)}",
                *where,
                "language",
            )
        if language == "python":
            if "command" in spec:
                raise fail(
                    f"node {nname!r}: command is for rust and ocaml nodes; a python node "
                    "runs its services' classes (remove command, or set language)",
                    *where,
                    "command",
                )
            return language, None
        raw = spec.get("command")
        if raw is None:
            raise fail(
                f'node {nname!r}: {_a(language)} node needs command = ["<program>", ...] '
                "(started with --plan <file>)",
                *where,
            )
        if (
            not isinstance(raw, list)
            or not raw
            or not all(isinstance(a, str) for a in raw)
            or not raw[0]
        ):
            raise fail(
                f"node {nname!r}: command must be a non-empty list of strings "
                '(the program and its arguments), e.g. ["./node"]',
                *where,
                "command",
            )
        program = raw[0]
        if "/" in program and not os.path.isabs(program):
            program = os.path.normpath(os.path.join(path.resolve().parent, program))
        return language, (program, *raw[1:])

    @staticmethod
    def _endpoint(
        path: Path,
        nname: str,
        raw: Any,
        fail: Callable[..., TopologyError],
        where: tuple[str, str],
    ) -> Endpoint:
        at = (*where, "endpoint")
        if not isinstance(raw, dict):
            raise fail(
                f'node {nname!r}: endpoint must be a table like {{ kind = "shm", name = "..." }}',
                *at,
            )
        kind = raw.get("kind")
        if kind not in _KINDS:
            raise fail(
                f"node {nname!r}: endpoint kind {kind!r} is not one of {', '.join(_KINDS)}",
                *at,
                "kind",
            )
        allowed = _ENDPOINT_KEYS[kind] | {"kind"}
        for key in raw:
            if key not in allowed:
                raise fail(
                    f"node {nname!r}: {kind} endpoint has unknown key {key!r} "
                    f"(expected {', '.join(sorted(allowed))})",
                    *at,
                    key,
                )
        if kind == "shm":
            name = raw.get("name")
            if not isinstance(name, str) or not name:
                raise fail(f'node {nname!r}: shm endpoint needs name = "<channel>"', *at)
            if "/" in name or len(name) > 245:
                raise fail(
                    f"node {nname!r}: shm channel name {name!r} is invalid "
                    "(no '/', at most 245 bytes)",
                    *at,
                    "name",
                )
            capacity = raw.get("capacity", 1 << 20)
            if (
                not isinstance(capacity, int)
                or isinstance(capacity, bool)
                or capacity < 1024
                or capacity & (capacity - 1)
            ):
                raise fail(
                    f"node {nname!r}: shm capacity {capacity!r} must be a power of two >= 1024",
                    *at,
                    "capacity",
                )
            return Endpoint("shm", name, capacity)
        if kind == "unix":
            sock_path = raw.get("path")
            if not isinstance(sock_path, str) or not sock_path:
                raise fail(f'node {nname!r}: unix endpoint needs path = "<socket file>"', *at)
            full = str(path.parent / sock_path)
            if len(full.encode()) > _UNIX_PATH_MAX:
                raise fail(
                    f"node {nname!r}: unix socket path is {len(full.encode())} bytes, "
                    f"more than the {_UNIX_PATH_MAX} the OS allows",
                    *at,
                    "path",
                )
            return Endpoint("unix", full)
        address = raw.get("address")
        if not isinstance(address, str):
            raise fail(f'node {nname!r}: tcp endpoint needs address = "host:port"', *at)
        from .transports.socket import parse_tcp_address

        try:
            parse_tcp_address(address)
        except ValueError as exc:
            raise fail(f"node {nname!r}: {exc}", *at, "address") from None
        return Endpoint("tcp", address)

    # -- queries ------------------------------------------------------------

    def node_of(self, service_name: str) -> NodeSpec:
        """The node hosting a service (KeyError naming the known services if none)."""
        for node in self.nodes.values():
            if service_name in node.services:
                return node
        raise KeyError(
            f"no node hosts service {service_name!r} in {self.path} "
            f"(services: {', '.join(sorted(self.services))})"
        )

    def consumed_by(self, node_name: str) -> list[str]:
        """The message type names consumed by the services of one node, sorted."""
        node = self.nodes[node_name]
        return sorted({t for s in node.services for t in self.services[s].consumes})

    def published_by(self, node_name: str) -> set[str] | None:
        """The type names a node's services publish, if every one of them
        declares ``publishes``; None (anything) otherwise."""
        declared = [self.services[s].publishes for s in self.nodes[node_name].services]
        if any(p is None for p in declared):
            return None
        return {t for p in declared if p is not None for t in p}

    def routes_from(self, node_name: str) -> dict[str, list[str]]:
        """For each other node with an endpoint, the type names sent to it
        from ``node_name``: what it consumes (and ``node_name`` publishes,
        when its services declare it), if anything."""
        published = self.published_by(node_name)
        routes = {}
        for other in self.nodes.values():
            if other.name == node_name or other.endpoint is None:
                continue
            types = self.consumed_by(other.name)
            if published is not None:
                types = [t for t in types if t in published]
            if types:
                routes[other.name] = types
        return routes

    def has_inbound(self, node_name: str) -> bool:
        """Whether a node receives from other nodes on its endpoint (it has one,
        consumes, and in broadcast mode it is not shm: then it subscribes)."""
        node = self.nodes[node_name]
        return (
            len(self.nodes) > 1
            and node.endpoint is not None
            and bool(self.consumed_by(node_name))
            and not (self.shm_mode == "broadcast" and node.endpoint.kind == "shm")
        )

    def _broadcast_to(self, node_name: str) -> bool:
        """Broadcast mode: whether messages reach this node over shm broadcast."""
        endpoint = self.nodes[node_name].endpoint
        return self.shm_mode == "broadcast" and endpoint is not None and endpoint.kind == "shm"

    def socket_routes_from(self, node_name: str) -> dict[str, list[str]]:
        """The routes of :meth:`routes_from` that are links (all of them in
        mailbox mode; the unix/tcp ones in broadcast mode)."""
        return {
            other: types
            for other, types in self.routes_from(node_name).items()
            if not self._broadcast_to(other)
        }

    def broadcast_subscribers(self, node_name: str) -> list[str]:
        """Broadcast mode: the shm nodes that read this node's channel (with
        cursors of their names), in file order; [] in mailbox mode."""
        return [other for other in self.routes_from(node_name) if self._broadcast_to(other)]

    def broadcast_publishers(self, node_name: str) -> list[str]:
        """Broadcast mode: the nodes whose channels this node reads."""
        return [
            other
            for other in self.nodes
            if other != node_name and node_name in self.broadcast_subscribers(other)
        ]

    def publication_plan(self, node_name: str) -> dict[str, Any] | None:
        """The ``publication`` key of a node's plan (None: it publishes on no
        broadcast channel)."""
        subscribers = self.broadcast_subscribers(node_name)
        endpoint = self.nodes[node_name].endpoint
        if not subscribers or endpoint is None:
            return None
        return {
            "kind": "shm-broadcast",
            "name": endpoint.target,
            "capacity": endpoint.capacity,
            "subscribers": subscribers,
            "spare_readers": BROADCAST_SPARE_READERS,
            "untether_ms": BROADCAST_UNTETHER_MS,
            "types": sorted({t for s in subscribers for t in self.routes_from(node_name)[s]}),
        }

    def subscriptions_plan(self, node_name: str) -> list[dict[str, Any]]:
        """The ``subscriptions`` key of a node's plan."""
        plans = []
        for other in self.broadcast_publishers(node_name):
            endpoint = self.nodes[other].endpoint
            assert endpoint is not None
            plans.append({"node": other, "name": endpoint.target, "cursor": node_name})
        return plans

    def plan(self, node_name: str) -> dict[str, Any]:
        """The resolved plan of one node: what a rust/ocaml node reads instead of this file.

        A JSON-ready dict, what ``python -m mycelium_shm.bus plan`` prints::

            {"version": 1, "topology": "/abs/topology.toml", "node": "md", "language": "rust",
             "schema": {"path": "/abs/schema.toml", "digest": "<64 hex>"},
             "services": [{"name": ..., "consumes": [...], "config": {...}}, ...],
             "inbound": {"kind": "shm", "name": ..., "capacity": ...}
                      | {"kind": "unix", "path": "/abs"} | {"kind": "tcp", "host": ..., "port": ...}
                      | None,
             "links": [{"node": ..., "types": [...], "endpoint": {...}}, ...]}

        ``services`` are in the node's order (the order it drains them at
        shutdown), ``links`` in the file's node order and follow the routing
        rule of this module: one per other node consuming something, with the
        sorted type names its services consume.
        """
        if node_name not in self.nodes:
            raise KeyError(f"no node {node_name!r} in {self.path} (nodes: {', '.join(self.nodes)})")
        if self.schema_path is None:
            raise self.error("no schema key: a node plan names the schema file")
        schema = self.load_schema()
        node = self.nodes[node_name]
        inbound = node.endpoint.plan() if node.endpoint and self.has_inbound(node_name) else None
        links = []
        for other, types in self.socket_routes_from(node_name).items():
            endpoint = self.nodes[other].endpoint
            assert endpoint is not None
            links.append({"node": other, "types": types, "endpoint": endpoint.plan()})
        return {
            "version": PLAN_VERSION,
            "topology": str(self.path.resolve()),
            "node": node_name,
            "language": node.language,
            "schema": {"path": str(self.schema_path), "digest": schema.digest_hex},
            "services": [
                {
                    "name": name,
                    "consumes": list(self.services[name].consumes),
                    "config": self.services[name].config,
                }
                for name in node.services
            ],
            "inbound": inbound,
            "links": links,
            "publication": self.publication_plan(node_name),
            "subscriptions": self.subscriptions_plan(node_name),
        }

    def service_factory(self, name: str) -> Callable[[], Any]:
        """A zero-argument factory of a Python service: its ``class`` with its ``config``.

        Raises :class:`TopologyError` at the line of ``class`` when the module
        or class cannot be imported, and at the line of ``config`` when a key
        is not a parameter of the class (or a required one is missing).
        """
        spec = self.services[name]
        where = ("services", name)
        if spec.class_path is None:
            raise self.error(
                f'service {name!r} has no class = "module:Class" (and none was passed)', *where
            )
        module_name, _, attr = spec.class_path.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError as exc:
            raise self.error(
                f"service {name!r}: cannot import module {module_name!r} of class "
                f"{spec.class_path!r}: {exc}",
                *where,
                "class",
            ) from None
        except Exception as exc:
            raise self.error(
                f"service {name!r}: importing module {module_name!r} failed: "
                f"{type(exc).__name__}: {exc}",
                *where,
                "class",
            ) from None
        for part in attr.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise self.error(
                    f"service {name!r}: module {module_name!r} has no {attr!r}", *where, "class"
                ) from None
        if not callable(obj):
            raise self.error(
                f"service {name!r}: {spec.class_path!r} is not a class", *where, "class"
            )
        try:
            signature = inspect.signature(obj)
        except (TypeError, ValueError):
            signature = None
        if signature is not None:
            try:
                signature.bind(**spec.config)
            except TypeError as exc:
                params = [
                    p.name
                    for p in signature.parameters.values()
                    if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                ]
                unknown = [k for k in spec.config if k not in signature.parameters]
                has_kwargs = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
                at: tuple[str, ...] = ("config",)
                if unknown and not has_kwargs:
                    at = ("config", unknown[0])
                    problem = f"config key {unknown[0]!r} is not a parameter of"
                else:
                    problem = f"config does not fit ({exc}) the parameters of"
                raise self.error(
                    f"service {name!r}: {problem} {spec.class_path} "
                    f"(parameters: {', '.join(params) or 'none'})",
                    *where,
                    *at,
                ) from None
        factory: Callable[[], Any] = functools.partial(obj, **spec.config)
        return factory

    def load_schema(self) -> Any:
        """The schema named by the file's ``schema`` key (TopologyError if none)."""
        if self.schema is not None:
            return self.schema
        if self.schema_path is None:
            raise TopologyError(self.path, None, "no schema key: pass the schema explicitly")
        from mycelium_shm.protocol import Schema

        return Schema.load(self.schema_path)

    # -- building -------------------------------------------------------------

    def build_bus(self, node_name: str, *, schema: Any = None, thread: bool = True) -> MessageBus:
        """The :class:`MessageBus` of one node: its inbound endpoint and its links.

        The bus comes back *not started*: subscribe first, then call
        ``bus.start()`` (or ``bus.poll()`` with ``thread=False``), so no frame
        arrives before its subscribers exist.  Frames sent meanwhile wait in
        the channel or the socket backlog.
        """
        from .bus import MessageBus

        if node_name not in self.nodes:
            raise KeyError(f"no node {node_name!r} in {self.path}")
        if schema is None:
            schema = self.load_schema()
        node = self.nodes[node_name]
        bus = MessageBus(schema, name=node_name, autostart=False)
        try:
            if node.endpoint is not None and self.has_inbound(node_name):
                bus.add_inbound(self._inbound(node.endpoint, schema), thread=thread)
            for other, types in self.socket_routes_from(node_name).items():
                endpoint = self.nodes[other].endpoint
                assert endpoint is not None
                bus.add_link(self._link(endpoint, schema, other), types)
            publication = self.publication_plan(node_name)
            if publication is not None:
                from .transports.shm import ShmPublication

                # The node owns its channel, as a mailbox node its inbound one.
                bus.add_link(
                    ShmPublication(
                        publication["name"],
                        subscribers=publication["subscribers"],
                        schema=schema,
                        capacity=publication["capacity"],
                        spare_readers=publication["spare_readers"],
                        untether=publication["untether_ms"] / 1000,
                        unlink_on_close=True,
                        name=f"{node_name}@shm-pub:{publication['name']}",
                    ),
                    publication["types"],
                )
            for sub in self.subscriptions_plan(node_name):
                from .transports.shm import ShmSubscription

                bus.add_inbound(
                    ShmSubscription(
                        sub["name"],
                        sub["cursor"],
                        schema=schema,
                        name=f"{node_name}@shm-sub:{sub['name']}",
                    ),
                    thread=thread,
                )
        except BaseException:
            bus.close(timeout=0)
            raise
        return bus

    @staticmethod
    def _inbound(endpoint: Endpoint, schema: Any) -> Any:
        if endpoint.kind == "shm":
            from .transports.shm import ShmInbound

            # The node's process owns its channel: it removes it when it closes
            # (a clean exit, or a start that failed after the channel was made).
            # A node that crashes cannot, so its restarted process finds the
            # frames sent meanwhile; the launcher removes what is left at stop.
            return ShmInbound(
                endpoint.target, schema=schema, capacity=endpoint.capacity, unlink_on_close=True
            )
        from .transports.socket import SocketInbound

        address = endpoint.tcp_address if endpoint.kind == "tcp" else endpoint.target
        return SocketInbound(address, schema=schema)

    @staticmethod
    def _link(endpoint: Endpoint, schema: Any, node_name: str) -> Any:
        if endpoint.kind == "shm":
            from .transports.shm import ShmLink

            return ShmLink(
                endpoint.target, schema=schema, name=f"{node_name}@shm:{endpoint.target}"
            )
        from .transports.socket import SocketLink

        address = endpoint.tcp_address if endpoint.kind == "tcp" else endpoint.target
        return SocketLink(address, schema=schema, name=f"{node_name}@{endpoint}")

    def shm_channels(self) -> list[str]:
        """Every shared-memory channel name the topology uses (for cleanup)."""
        return [
            n.endpoint.target
            for n in self.nodes.values()
            if n.endpoint is not None and n.endpoint.kind == "shm"
        ]

    def unlink_channels(self) -> None:
        """Remove every shared-memory channel of the topology that exists."""
        from mycelium_shm import unlink

        for name in self.shm_channels():
            unlink(name, missing_ok=True)

    def __repr__(self) -> str:
        return f"<Topology {self.path} nodes={list(self.nodes)}>"
