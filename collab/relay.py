"""Cross-node messages: committed updates, presence, and access changes.

Messages are hints, not truth. Pub/sub may drop or reorder them, so a
receiver applies an update only when it is the next ``seq`` it expects and
otherwise reads the missing events from the log. A single node uses
:class:`LocalRelay`, which delivers nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol


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


RelayMessage = UpdateCommitted | PresenceChanged | AccessChanged
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
