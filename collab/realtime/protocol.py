"""y-websocket framing: the lib0 encodings and the messages built from them.

A message is ``varUint type`` followed by a type-specific body:

* ``0`` sync: ``varUint subtype`` (0 step 1, 1 step 2, 2 update) and a
  ``varUint8Array`` payload (a state vector, or an update);
* ``1`` awareness: a ``varUint8Array`` holding an awareness update;
* ``3`` query awareness: no body.

Every reader here raises :class:`ProtocolError` on malformed input instead of
reading past the end, so a hostile frame costs at most one pass over its bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple

from webcore.jsonlimits import loads as loads_json

MAX_VAR_UINT_BYTES = 8  # 56 bits: far beyond any legitimate length or clock


class ProtocolError(ValueError):
    """The bytes are not a well-formed message."""


class MessageType(IntEnum):
    """Top-level y-websocket message types."""

    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3


class SyncType(IntEnum):
    """Sub-types of a sync message."""

    STEP1 = 0
    STEP2 = 1
    UPDATE = 2


class Reader:
    """A bounds-checked cursor over lib0-encoded bytes."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def remaining(self) -> int:
        """Bytes not yet read."""
        return len(self.data) - self.pos

    def uint8(self) -> int:
        """One byte."""
        if self.pos >= len(self.data):
            raise ProtocolError("unexpected end of message")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def var_uint(self) -> int:
        """An unsigned LEB128 integer of at most 56 bits."""
        # The hottest function of the update check: locals instead of
        # attribute and method lookups, and most values are one byte.
        data, pos = self.data, self.pos
        if pos >= len(data):
            raise ProtocolError("unexpected end of message")
        byte = data[pos]
        if byte < 0x80:
            self.pos = pos + 1
            return byte
        value, shift, end = byte & 0x7F, 7, pos + MAX_VAR_UINT_BYTES
        pos += 1
        while pos < end:
            if pos >= len(data):
                raise ProtocolError("unexpected end of message")
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                self.pos = pos
                return value
            shift += 7
        raise ProtocolError("variable-length integer too long")

    def var_int(self) -> int:
        """lib0's signed variable-length integer (sign in bit 6 of the first byte)."""
        first = self.uint8()
        value = first & 0x3F
        negative = bool(first & 0x40)
        shift = 6
        byte = first
        while byte & 0x80:
            if shift > 7 * MAX_VAR_UINT_BYTES:
                raise ProtocolError("variable-length integer too long")
            byte = self.uint8()
            value |= (byte & 0x7F) << shift
            shift += 7
        return -value if negative else value

    def take(self, length: int) -> bytes:
        """``length`` raw bytes."""
        if length > self.remaining:
            raise ProtocolError(f"length {length} exceeds the {self.remaining} bytes left")
        chunk = self.data[self.pos : self.pos + length]
        self.pos += length
        return chunk

    def var_bytes(self) -> bytes:
        """A ``varUint8Array``: a length then that many bytes."""
        return self.take(self.var_uint())

    def var_string(self) -> str:
        """A ``varString``: UTF-8 bytes with a length prefix."""
        try:
            return self.var_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("string is not valid UTF-8") from None

    def count(self, minimum_bytes_each: int = 1) -> int:
        """A varUint count of items that each take at least ``minimum_bytes_each`` bytes.

        A count larger than the bytes left could never be honest; rejecting it
        here stops allocation-by-declaration (a tiny frame claiming 2^40 items).
        """
        value = self.var_uint()
        if value * minimum_bytes_each > self.remaining:
            raise ProtocolError(f"count {value} exceeds the {self.remaining} bytes left")
        return value

    def expect_end(self) -> None:
        """Raise unless every byte was consumed."""
        if self.remaining:
            raise ProtocolError(f"{self.remaining} unexpected trailing bytes")


def write_var_uint(value: int) -> bytes:
    """Encode an unsigned LEB128 integer."""
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def write_var_bytes(data: bytes) -> bytes:
    """Encode a ``varUint8Array``."""
    return write_var_uint(len(data)) + data


def write_var_string(text: str) -> bytes:
    """Encode a ``varString``."""
    return write_var_bytes(text.encode("utf-8"))


@dataclass(frozen=True, slots=True)
class SyncMessage:
    """A decoded sync message."""

    subtype: SyncType
    payload: bytes


@dataclass(frozen=True, slots=True)
class AwarenessMessage:
    """A decoded awareness message (its payload is an awareness update)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class QueryAwarenessMessage:
    """A request for every awareness state."""


Message = SyncMessage | AwarenessMessage | QueryAwarenessMessage


def decode_message(data: bytes) -> Message:
    """Parse one frame.

    Raises:
        ProtocolError: malformed, truncated, trailing bytes, or an unknown type.
    """
    reader = Reader(data)
    kind = reader.var_uint()
    message: Message
    if kind == MessageType.SYNC:
        subtype = reader.var_uint()
        if subtype not in SyncType._value2member_map_:
            raise ProtocolError(f"unknown sync message type {subtype}")
        message = SyncMessage(SyncType(subtype), reader.var_bytes())
    elif kind == MessageType.AWARENESS:
        message = AwarenessMessage(reader.var_bytes())
    elif kind == MessageType.QUERY_AWARENESS:
        message = QueryAwarenessMessage()
    else:
        raise ProtocolError(f"unknown message type {kind}")
    reader.expect_end()
    return message


def sync_message(subtype: SyncType, payload: bytes) -> bytes:
    """Encode a sync message."""
    return write_var_uint(MessageType.SYNC) + write_var_uint(subtype) + write_var_bytes(payload)


def awareness_message(payload: bytes) -> bytes:
    """Encode an awareness message."""
    return write_var_uint(MessageType.AWARENESS) + write_var_bytes(payload)


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    """One client's presence: ``state`` is None when the client went away."""

    client_id: int
    clock: int
    state: dict[str, Any] | None


def decode_awareness(payload: bytes) -> list[AwarenessEntry]:
    """Parse an awareness update.

    Raises:
        ProtocolError: malformed, or a state that is not a JSON object or null.
    """
    reader = Reader(payload)
    entries = []
    for _ in range(reader.count(minimum_bytes_each=3)):
        client_id = reader.var_uint()
        clock = reader.var_uint()
        entries.append(AwarenessEntry(client_id, clock, _parse_state(reader.var_string())))
    reader.expect_end()
    return entries


class RawAwarenessEntry(NamedTuple):
    """An awareness entry whose state is still JSON text (not parsed yet).

    Every stock client re-sends each awareness change it receives, so most
    entries a server reads are copies of someone else's state that will be
    dropped: parsing only the entries that may be accepted saves a JSON parse
    per copy.
    """

    client_id: int
    clock: int
    state_json: bytes

    @property
    def removes(self) -> bool:
        """The entry says the client went away (its state is ``null``)."""
        return self.state_json == b"null"

    def parsed(self) -> AwarenessEntry:
        """The entry with its state parsed.

        Raises:
            ProtocolError: the state is not JSON, nests too deeply, or is not an object or null.
        """
        try:
            text = self.state_json.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("string is not valid UTF-8") from None
        return AwarenessEntry(self.client_id, self.clock, _parse_state(text))


def read_awareness(payload: bytes) -> list[RawAwarenessEntry]:
    """Split an awareness update into entries without parsing their states.

    Raises:
        ProtocolError: truncated, trailing bytes, or a count larger than the bytes.
    """
    reader = Reader(payload)
    entries = []
    for _ in range(reader.count(minimum_bytes_each=3)):
        client_id = reader.var_uint()
        clock = reader.var_uint()
        entries.append(RawAwarenessEntry(client_id, clock, reader.var_bytes()))
    reader.expect_end()
    return entries


def parse_json(raw: str) -> Any:
    """Parse JSON from a client, nested at most ``webcore.jsonlimits.MAX_JSON_DEPTH`` deep.

    Raises:
        ProtocolError: not JSON, or nested too deeply.
    """
    try:
        return loads_json(raw)
    except ValueError as exc:
        raise ProtocolError(f"malformed JSON: {exc}") from None


def _parse_state(raw: str) -> dict[str, Any] | None:
    state = parse_json(raw)
    if state is None or isinstance(state, dict):
        return state
    raise ProtocolError("awareness state must be an object or null")


def encode_awareness(entries: list[AwarenessEntry]) -> bytes:
    """Encode an awareness update."""
    return join_awareness([encode_awareness_entry(entry) for entry in entries])


def encode_awareness_entry(entry: AwarenessEntry) -> bytes:
    """One entry of an awareness update, to be joined with ``join_awareness``."""
    state = json.dumps(entry.state, separators=(",", ":"), ensure_ascii=False)
    return write_var_uint(entry.client_id) + write_var_uint(entry.clock) + write_var_string(state)


def join_awareness(encoded_entries: list[bytes]) -> bytes:
    """An awareness update made of entries encoded by ``encode_awareness_entry``."""
    return write_var_uint(len(encoded_entries)) + b"".join(encoded_entries)
