"""WebSocket frames as a server reads and writes them (RFC 6455 section 5).

Only what the real-time endpoint needs: no extension is ever negotiated (so
the three RSV bits must be clear), frames from a client must be masked, and
frames to a client never are.
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple

CONTINUATION: Final = 0x0
TEXT: Final = 0x1
BINARY: Final = 0x2
CLOSE: Final = 0x8
PING: Final = 0x9
PONG: Final = 0xA
_DATA_OPCODES = frozenset({CONTINUATION, TEXT, BINARY})
_CONTROL_OPCODES = frozenset({CLOSE, PING, PONG})
# A control frame's payload is at most 125 bytes (RFC 6455 5.5).
MAX_CONTROL_PAYLOAD: Final = 125

_FIN: Final = 0x80
_RSV: Final = 0x70
_MASKED: Final = 0x80
_HEADER_SHORT = struct.Struct("!BB").pack
_HEADER_MEDIUM = struct.Struct("!BBH").pack
_HEADER_LONG = struct.Struct("!BBQ").pack

# An unmasked ping frame with no payload.
PING_FRAME: Final = b"\x89\x00"


class FramingError(Exception):
    """The client broke RFC 6455 framing; the connection cannot go on."""


class TooLargeError(Exception):
    """A data frame declares more bytes than the connection accepts."""

    def __init__(self, limit: int, frame_size: int) -> None:
        super().__init__(f"message larger than {limit} bytes")
        # The whole frame's length, header included: what to skip to get past it.
        self.frame_size = frame_size


class Frame(NamedTuple):
    """One frame read from a client, its payload already unmasked."""

    fin: bool
    opcode: int
    payload: bytes


def frame(opcode: int, payload: bytes) -> bytes:
    """``payload`` as one final, unmasked frame of ``opcode``."""
    first = _FIN | opcode
    size = len(payload)
    if size < 126:
        header = _HEADER_SHORT(first, size)
    elif size < 65536:
        header = _HEADER_MEDIUM(first, 126, size)
    else:
        header = _HEADER_LONG(first, 127, size)
    return header + payload


def binary_frame(payload: bytes) -> bytes:
    """``payload`` as one unmasked binary frame."""
    return frame(BINARY, payload)


def close_frame(code: int, reason: str) -> bytes:
    """A close frame with ``code`` and as much of ``reason`` as fits (123 bytes)."""
    encoded = reason.encode()[: MAX_CONTROL_PAYLOAD - 2]
    # Cut at a character boundary: the client must be able to decode it.
    encoded = encoded.decode("utf-8", "ignore").encode()
    return frame(CLOSE, code.to_bytes(2, "big") + encoded)


def close_code_of(payload: bytes) -> int | None:
    """The status code of a client's close frame (None when it gives none).

    Raises:
        FramingError: a one-byte payload, a code no endpoint may send, or a
            reason that is not UTF-8.
    """
    if not payload:
        return None
    if len(payload) == 1:
        raise FramingError("close frame with a one-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if not (1000 <= code <= 1014 and code not in (1004, 1005, 1006)) and not (3000 <= code <= 4999):
        raise FramingError(f"close code {code} may not be sent")
    try:
        payload[2:].decode()
    except UnicodeDecodeError:
        raise FramingError("close reason is not UTF-8") from None
    return code


def read_frame(buffer: bytearray, max_payload: int) -> Frame | None:
    """Take the first whole frame off ``buffer``; None until one has arrived.

    The declared length is checked before any payload is buffered, so an
    oversized frame is refused from its header.

    Raises:
        FramingError: the frame breaks RFC 6455 (unmasked, RSV bits, unknown
            opcode, a fragmented or oversized control frame).
        TooLargeError: a data frame longer than ``max_payload``.
    """
    available = len(buffer)
    if available < 2:
        return None
    first, second = buffer[0], buffer[1]
    opcode = first & 0x0F
    _check_header(first, second, opcode)
    size = second & 0x7F
    start = 2
    if size == 126:
        if available < 4:
            return None
        size = int.from_bytes(buffer[2:4], "big")
        start = 4
    elif size == 127:
        if available < 10:
            return None
        size = int.from_bytes(buffer[2:10], "big")
        start = 10
    end = start + 4 + size
    if size > max_payload and opcode in _DATA_OPCODES:
        raise TooLargeError(max_payload, end)
    if available < end:
        return None
    payload = unmask(buffer[start + 4 : end], bytes(buffer[start : start + 4]))
    del buffer[:end]
    return Frame(bool(first & _FIN), opcode, payload)


def _check_header(first: int, second: int, opcode: int) -> None:
    if first & _RSV:
        raise FramingError("reserved bits set without an extension")
    if not second & _MASKED:
        raise FramingError("client frames must be masked")
    if opcode in _CONTROL_OPCODES:
        if not first & _FIN:
            raise FramingError("fragmented control frame")
        if second & 0x7F > MAX_CONTROL_PAYLOAD:
            raise FramingError("control frame longer than 125 bytes")
    elif opcode not in _DATA_OPCODES:
        raise FramingError(f"unknown opcode {opcode:#x}")


def unmask(payload: bytes | bytearray, mask: bytes) -> bytes:
    """``payload`` XOR the repeated 4-byte ``mask``.

    One big-integer XOR instead of a Python loop per byte: a few microseconds
    for a typical update, about a millisecond per MiB.
    """
    size = len(payload)
    if not size:
        return b""
    key = (mask * ((size + 3) // 4))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(
        size, "little"
    )
