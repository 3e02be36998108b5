"""Events of a document's log and the hash chain that links them.

``hash = SHA-256(previous hash || header || update)`` where the header is the
canonical JSON of the event's other fields. Changing, removing or reordering
any event breaks every hash after it, which ``collab replay --verify`` finds.

``source`` (the tool or agent that made an event) joined the header later: it
is appended only when set, so events written before it existed, which have
none, keep the hash they were stored with.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

EventKind = Literal["update", "restore", "fork", "rollback", "merge", "edit", "import"]
EVENT_KINDS: tuple[EventKind, ...] = (
    "update",
    "restore",
    "fork",
    "rollback",
    "merge",
    "edit",
    "import",
)

# What a ``source`` label may be: a tool or agent name such as ``ai:assistant``.
SOURCE_PATTERN = re.compile(r"[a-z0-9:._-]{1,64}")


def is_valid_source(label: str) -> bool:
    """True when ``label`` is 1 to 64 characters of ``[a-z0-9:._-]``."""
    return SOURCE_PATTERN.fullmatch(label) is not None


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event about to be appended."""

    kind: EventKind
    update: bytes
    author_id: str | None
    node_id: str
    meta: dict[str, Any] | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as committed, with its place in the log."""

    doc_id: str
    seq: int
    kind: EventKind
    update: bytes
    author_id: str | None
    node_id: str
    created_at: float
    meta: dict[str, Any] | None
    hash: bytes
    source: str | None = None


def chain_hash(previous: bytes, doc_id: str, seq: int, event: NewEvent, created_at: float) -> bytes:
    """The hash of ``event`` placed at ``seq`` after an event hashed ``previous``."""
    fields: list[Any] = [
        doc_id,
        seq,
        event.kind,
        event.author_id,
        event.node_id,
        created_at,
        event.meta,
    ]
    if event.source is not None:
        fields.append(event.source)
    header = json.dumps(
        fields,
        separators=(",", ":"),
        sort_keys=True,
    ).encode("utf-8")
    digest = hashlib.sha256(previous)
    digest.update(len(header).to_bytes(4, "big"))
    digest.update(header)
    digest.update(event.update)
    return digest.digest()


def verify_chain(previous: bytes, events: list[StoredEvent]) -> int | None:
    """The seq of the first event whose hash does not follow, or None if all do."""
    for stored in events:
        event = NewEvent(
            stored.kind,
            stored.update,
            stored.author_id,
            stored.node_id,
            stored.meta,
            stored.source,
        )
        if chain_hash(previous, stored.doc_id, stored.seq, event, stored.created_at) != stored.hash:
            return stored.seq
        previous = stored.hash
    return None


def canonical_meta(meta: dict[str, Any] | None) -> str | None:
    """``meta`` exactly as the hash header spells it (sorted keys, no spaces)."""
    return None if meta is None else json.dumps(meta, separators=(",", ":"), sort_keys=True)


# (kind, update, author_id, node_id, created_at, canonical meta, source) of one event.
EventFields = tuple[EventKind, bytes, str | None, str, float, str | None, str | None]


class ChainHasher:
    """:func:`chain_hash` for many events of one document, several times faster.

    The header is assembled from cached JSON spellings of the few distinct
    strings a log holds (kinds, authors, nodes, sources) instead of one
    ``json.dumps`` per event; it is byte for byte the header :func:`chain_hash`
    builds (the tests compare the two), so the chain's definition is unchanged.
    """

    def __init__(self, doc_id: str) -> None:
        self._prefix = "[" + json.dumps(doc_id) + ","
        self._spelled: dict[str | None, str] = {None: "null"}

    def _spell(self, value: str | None) -> str:
        spelled = self._spelled.get(value)
        if spelled is None:
            spelled = self._spelled[value] = json.dumps(value)
        return spelled

    def hashes(self, previous: bytes, first_seq: int, events: Sequence[EventFields]) -> list[bytes]:
        """The hash of each event, the first chained onto ``previous`` at ``first_seq``."""
        spell = self._spell
        prefix = self._prefix
        sha256 = hashlib.sha256
        # "kind,author,node" spelled once per distinct combination.
        who: dict[tuple[str, str | None, str], str] = {}
        out = []
        seq = first_seq
        # Events committed together share their time: spell it once.
        last_time: float | None = None
        moment = ""
        for kind, update, author, node, created_at, meta, source in events:
            if created_at != last_time or type(created_at) is not float:
                moment = _spell_number(created_at)
                last_time = created_at
            middle = who.get((kind, author, node))
            if middle is None:
                middle = who[kind, author, node] = f"{spell(kind)},{spell(author)},{spell(node)}"
            tail = "]" if source is None else "," + spell(source) + "]"
            header = (
                f"{prefix}{seq},{middle},{moment},{'null' if meta is None else meta}{tail}"
            ).encode()
            previous = sha256(previous + len(header).to_bytes(4, "big") + header + update).digest()
            out.append(previous)
            seq += 1
        return out


def _spell_number(value: float) -> str:
    # json.dumps spells a finite float with float.__repr__, and an int as int.
    return float.__repr__(value) if type(value) is float else json.dumps(value)
