"""Reading and writing WebSocket frames (RFC 6455 section 5), without a socket."""

from __future__ import annotations

import pytest

from collab.realtime import frames
from tests.realtime.rawws import client_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_535, 65_536, 200_000])
def test_every_length_encoding_reads_back(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    buffer = bytearray(client_frame(frames.BINARY, payload) + b"next")
    assert frames.read_frame(buffer, 1 << 20) == frames.Frame(True, frames.BINARY, payload)
    assert buffer == b"next"


def test_a_frame_arriving_byte_by_byte_is_read_once_whole() -> None:
    data = client_frame(frames.BINARY, bytes(300))
    buffer = bytearray()
    for i, byte in enumerate(data):
        assert frames.read_frame(buffer, 1 << 20) is None, i
        buffer.append(byte)
    assert frames.read_frame(buffer, 1 << 20) == frames.Frame(True, frames.BINARY, bytes(300))
    assert not buffer


def test_oversized_data_frame_is_refused_from_its_header() -> None:
    header = client_frame(frames.BINARY, bytes(1000))[:8]  # 2 + 2 length + 4 mask
    with pytest.raises(frames.TooLargeError) as caught:
        frames.read_frame(bytearray(header), 999)
    assert caught.value.frame_size == 2 + 2 + 4 + 1000
    assert "999" in str(caught.value)


@pytest.mark.parametrize(
    "data",
    [
        client_frame(frames.BINARY, b"x", masked=False),
        client_frame(frames.BINARY, b"x", rsv=0x10),
        client_frame(0xB, b"x"),
        client_frame(frames.PING, b"x", fin=False),
        client_frame(frames.PONG, bytes(126)),
    ],
    ids=["unmasked", "rsv", "reserved opcode", "fragmented control", "long control"],
)
def test_rule_breaking_frames_are_framing_errors(data: bytes) -> None:
    with pytest.raises(frames.FramingError):
        frames.read_frame(bytearray(data), 1 << 20)


def test_server_frames_are_unmasked_with_the_shortest_length() -> None:
    assert frames.binary_frame(b"ab") == b"\x82\x02ab"
    assert frames.binary_frame(bytes(126))[:4] == b"\x82\x7e\x00\x7e"
    assert frames.binary_frame(bytes(65_536))[:10] == b"\x82\x7f" + (65_536).to_bytes(8, "big")
    assert frames.frame(frames.PING, b"") == frames.PING_FRAME


def test_close_frame_reason_is_cut_at_a_character_boundary() -> None:
    frame = frames.close_frame(4413, "é" * 100)
    assert frame[0] == 0x88
    assert frame[1] <= 125
    assert int.from_bytes(frame[2:4], "big") == 4413
    assert frame[4:].decode() == "é" * 61


@pytest.mark.parametrize(
    ("payload", "code"),
    [(b"", None), ((1000).to_bytes(2, "big"), 1000), ((4000).to_bytes(2, "big") + b"ok", 4000)],
)
def test_close_codes_read(payload: bytes, code: int | None) -> None:
    assert frames.close_code_of(payload) == code


@pytest.mark.parametrize(
    "payload",
    [
        b"\x03",
        (999).to_bytes(2, "big"),
        (1005).to_bytes(2, "big"),
        (5000).to_bytes(2, "big"),
        (1000).to_bytes(2, "big") + b"\xc3",
    ],
    ids=["one byte", "999", "1005", "5000", "bad UTF-8"],
)
def test_close_payloads_no_client_may_send(payload: bytes) -> None:
    with pytest.raises(frames.FramingError):
        frames.close_code_of(payload)


def test_unmask_is_its_own_inverse() -> None:
    payload = bytes(range(256)) * 3 + b"\x00\x00\x00"
    masked = frames.unmask(payload, b"\x01\x80\xff\x00")
    assert masked != payload
    assert frames.unmask(masked, b"\x01\x80\xff\x00") == payload
    assert frames.unmask(b"", b"abcd") == b""
