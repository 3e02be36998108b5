"""Cross-node messages: committed updates, presence, and access changes.

Messages are hints, not truth. Pub/sub may drop or reorder them, so a
receiver applies an update only when it is the next ``seq`` it expects and
otherwise reads the missing events from the log. A single node uses
:class:`LocalRelay`, which delivers nothing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class UpdateCommitted:
    """Event ``seq`` of ``doc_id`` was committed on ``node_id``."""

    node_id: str
    doc_id: str
    seq: int
    update: bytes


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    """An awareness update from a client of ``node_id`` (already filtered and stamped)."""

    node_id: str
    doc_id: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class AccessChanged:
    """A member's role changed or was removed (``doc_ids`` empty), or documents went."""

    node_id: str
    project_id: str
    user_id: str | None
    doc_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NodeAlive:
    """Heartbeat: ``node_id`` is up. Nodes that stop sending one lose their presence."""

    node_id: str


RelayMessage = UpdateCommitted | PresenceChanged | AccessChanged | NodeAlive
MessageHandler = Callable[[RelayMessage], Awaitable[None]]


class Relay(Protocol):
    """What rooms need from the transport between nodes."""

    async def publish(self, message: RelayMessage) -> None:
        """Send to every other node (best effort)."""
        ...

    async def watch(self, doc_id: str) -> None:
        """Start receiving messages about ``doc_id``."""
        ...

    async def unwatch(self, doc_id: str) -> None:
        """Stop receiving messages about ``doc_id``."""
        ...

    @property
    def healthy(self) -> bool:
        """False while messages cannot be delivered."""
        ...


class LocalRelay:
    """One node: there is nobody to tell."""

    async def publish(self, message: RelayMessage) -> None:
        """Nothing to do."""

    async def watch(self, doc_id: str) -> None:
        """Nothing to do."""

    async def unwatch(self, doc_id: str) -> None:
        """Nothing to do."""

    @property
    def healthy(self) -> bool:
        """Always."""
        return True


def encode_message(message: RelayMessage) -> bytes:
    """Serialise for the wire (JSON; update bytes in base64)."""
    body: dict[str, Any]
    if isinstance(message, UpdateCommitted):
        body = {"t": "update", "doc": message.doc_id, "seq": message.seq, "p": _b64(message.update)}
    elif isinstance(message, PresenceChanged):
        body = {"t": "presence", "doc": message.doc_id, "p": _b64(message.payload)}
    elif isinstance(message, NodeAlive):
        body = {"t": "alive"}
    else:
        body = {
            "t": "access",
            "project": message.project_id,
            "user": message.user_id,
            "docs": list(message.doc_ids),
        }
    body["node"] = message.node_id
    return json.dumps(body, separators=(",", ":")).encode()


def decode_message(data: bytes) -> RelayMessage | None:
    """Parse a relay message; None when it is not one of ours or is malformed."""
    try:
        body = json.loads(data)
        kind, node = body["t"], str(body["node"])
        if kind == "update":
            return UpdateCommitted(node, str(body["doc"]), int(body["seq"]), _unb64(body["p"]))
        if kind == "presence":
            return PresenceChanged(node, str(body["doc"]), _unb64(body["p"]))
        if kind == "alive":
            return NodeAlive(node)
        if kind == "access":
            user = body["user"]
            docs = tuple(str(d) for d in body["docs"])
            return AccessChanged(
                node, str(body["project"]), None if user is None else str(user), docs
            )
    except (ValueError, KeyError, TypeError):
        return None
    return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)
