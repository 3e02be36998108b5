"""A document's whole log as one portable JSON file, and checking one before import.

The file holds every event (update bytes in base64, hashes in hex) with the
document's original id, so the hash chain can be re-verified anywhere: one
changed byte, dropped or reordered event makes the first bad seq stand out.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from eventstore.events import EVENT_KINDS, StoredEvent, verify_chain
from eventstore.logs import GENESIS_HASH

FORMAT = "collab-document-log"
VERSION = 1


class PortableFormatError(ValueError):
    """The file is not a document log export this version understands."""


def event_json(event: StoredEvent) -> dict[str, Any]:
    """One event as the export file holds it."""
    return {
        "seq": event.seq,
        "kind": event.kind,
        "update": base64.b64encode(event.update).decode("ascii"),
        "author_id": event.author_id,
        "node_id": event.node_id,
        "created_at": event.created_at,
        "meta": event.meta,
        "source": event.source,
        "hash": event.hash.hex(),
    }


def parse_event(doc_id: str, raw: Any) -> StoredEvent:
    """Read one exported event back.

    Raises:
        PortableFormatError: a field is missing or of the wrong type.
    """
    try:
        kind = raw["kind"]
        if kind not in EVENT_KINDS:
            raise PortableFormatError(f"unknown event kind {kind!r}")
        event = StoredEvent(
            doc_id=doc_id,
            seq=_typed(raw["seq"], int),
            kind=kind,
            update=base64.b64decode(_typed(raw["update"], str), validate=True),
            author_id=_optional(raw.get("author_id")),
            node_id=_typed(raw["node_id"], str),
            created_at=float(_typed(raw["created_at"], (int, float))),
            meta=raw.get("meta") if isinstance(raw.get("meta"), dict) else None,
            hash=bytes.fromhex(_typed(raw["hash"], str)),
            source=_optional(raw.get("source")),
        )
    except (KeyError, TypeError, binascii.Error, ValueError) as exc:
        if isinstance(exc, PortableFormatError):
            raise
        raise PortableFormatError(f"malformed event: {exc}") from None
    return event


def first_bad_seq(events: list[StoredEvent]) -> int | None:
    """The first seq that breaks the chain (wrong hash, or out of order), else None."""
    for expected, event in enumerate(events, start=1):
        if event.seq != expected:
            return expected
    return verify_chain(GENESIS_HASH, events)


def _typed(value: Any, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise PortableFormatError(f"unexpected value {value!r}")
    return value


def _optional(value: Any) -> str | None:
    return None if value is None else str(_typed(value, str))
