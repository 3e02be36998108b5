"""Structural validation of untrusted Yjs updates before yrs sees them.

yrs trusts the counts an update declares: an 18-byte update that claims
billions of clients costs it half a second and half a gigabyte before it
fails. This module walks the Yjs v1 update format (structs, then the delete
set) in pure Python, checking every count against the bytes that remain and
every clock and length against sane bounds. Its cost is one linear pass; an
update that passes is one yrs can decode without allocating by declaration.

Format (Yjs ``writeStructs`` / ``readStructs`` and ``DeleteSet``)::

    update      = clients:varUint { structs:varUint client:varUint clock:varUint struct* }
                  deleteSet
    struct      = info:uint8 ( GC len | Skip len | Item )
    Item        = [origin id] [rightOrigin id] [parent] [parentSub] content(info & 31)
    deleteSet   = clients:varUint { client:varUint ranges:varUint { clock len }* }
"""

from __future__ import annotations

from collections.abc import Callable

from collab.realtime.protocol import ProtocolError, Reader, parse_json

_BITS5 = 0x1F
_BIT6 = 0x20
_BIT7 = 0x40
_BIT8 = 0x80
# Clocks and lengths count characters; JavaScript integers stay exact to 2^53.
_MAX_CLOCK = 2**53
_MAX_LENGTH = 2**32
_MAX_ANY_DEPTH = 64
_XML_ELEMENT = 3
_XML_HOOK = 5
_MAX_TYPE_REF = 6


def check_update(update: bytes) -> None:
    """Raise :class:`ProtocolError` unless ``update`` is a well-formed v1 update."""
    reader = Reader(update)
    for _ in range(reader.count(minimum_bytes_each=3)):
        structs = reader.count(minimum_bytes_each=1)
        reader.var_uint()  # client id: any 53-bit value
        clock = _clock(reader.var_uint())
        for _ in range(structs):
            clock = _clock(clock + _read_struct(reader))
    _read_delete_set(reader)
    reader.expect_end()


def check_state_vector(state_vector: bytes) -> None:
    """Raise :class:`ProtocolError` unless ``state_vector`` is well formed."""
    reader = Reader(state_vector)
    for _ in range(reader.count(minimum_bytes_each=2)):
        reader.var_uint()
        _clock(reader.var_uint())
    reader.expect_end()


def _clock(value: int) -> int:
    if value > _MAX_CLOCK:
        raise ProtocolError("clock out of range")
    return value


def _length(value: int) -> int:
    if value > _MAX_LENGTH:
        raise ProtocolError("length out of range")
    return value


def _read_struct(reader: Reader) -> int:
    """Read one struct and return how many clock ticks it spans."""
    info = reader.uint8()
    ref = info & _BITS5
    if ref in (0, 10):  # GC, Skip
        return _length(reader.var_uint())
    if info & _BIT8:
        _read_id(reader)
    if info & _BIT7:
        _read_id(reader)
    if info & (_BIT7 | _BIT8) == 0:
        if reader.var_uint() == 1:
            reader.var_string()  # a root type's name
        else:
            _read_id(reader)  # a nested type's item
        if info & _BIT6:
            reader.var_string()  # the key within a map
    return _read_content(reader, ref)


def _read_id(reader: Reader) -> None:
    reader.var_uint()
    _clock(reader.var_uint())


def _read_content(reader: Reader, ref: int) -> int:
    read = _CONTENT_READERS.get(ref)
    if read is None:
        raise ProtocolError(f"unknown content type {ref}")
    return read(reader)


def _content_deleted(reader: Reader) -> int:
    return _length(reader.var_uint())


def _content_json(reader: Reader) -> int:
    count = reader.count(minimum_bytes_each=1)
    for _ in range(count):
        value = reader.var_string()
        if value != "undefined":
            _json(value)
    return count


def _json(text: str) -> None:
    parse_json(text)


def _content_binary(reader: Reader) -> int:
    reader.var_bytes()
    return 1


def _content_string(reader: Reader) -> int:
    text = reader.var_string()
    # Clocks advance by UTF-16 code units, as Yjs counts them.
    return len(text.encode("utf-16-le")) // 2


def _content_embed(reader: Reader) -> int:
    _json(reader.var_string())
    return 1


def _content_format(reader: Reader) -> int:
    reader.var_string()
    _json(reader.var_string())
    return 1


def _content_type(reader: Reader) -> int:
    type_ref = reader.var_uint()
    if type_ref > _MAX_TYPE_REF:
        raise ProtocolError(f"unknown type reference {type_ref}")
    if type_ref in (_XML_ELEMENT, _XML_HOOK):
        reader.var_string()
    return 1


def _content_any(reader: Reader) -> int:
    count = reader.count(minimum_bytes_each=1)
    for _ in range(count):
        _read_any(reader, 0)
    return count


def _content_doc(reader: Reader) -> int:
    reader.var_string()
    _read_any(reader, 0)
    return 1


def _read_any(reader: Reader, depth: int) -> None:
    """Skip one lib0 ``any`` value (recursive for objects and arrays)."""
    if depth > _MAX_ANY_DEPTH:
        raise ProtocolError("value nested too deeply")
    tag = reader.uint8()
    if tag in (127, 126, 121, 120):  # undefined, null, false, true
        return
    if tag == 125:
        reader.var_int()
    elif tag == 124:
        reader.take(4)
    elif tag in (123, 122):
        reader.take(8)
    elif tag == 119:
        reader.var_string()
    elif tag == 118:
        for _ in range(reader.count(minimum_bytes_each=2)):
            reader.var_string()
            _read_any(reader, depth + 1)
    elif tag == 117:
        for _ in range(reader.count(minimum_bytes_each=1)):
            _read_any(reader, depth + 1)
    elif tag == 116:
        reader.var_bytes()
    else:
        raise ProtocolError(f"unknown value tag {tag}")


def _read_delete_set(reader: Reader) -> None:
    for _ in range(reader.count(minimum_bytes_each=2)):
        reader.var_uint()
        for _ in range(reader.count(minimum_bytes_each=2)):
            _clock(reader.var_uint())
            _length(reader.var_uint())


_CONTENT_READERS: dict[int, Callable[[Reader], int]] = {
    1: _content_deleted,
    2: _content_json,
    3: _content_binary,
    4: _content_string,
    5: _content_embed,
    6: _content_format,
    7: _content_type,
    8: _content_any,
    9: _content_doc,
}
