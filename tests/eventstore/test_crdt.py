"""pycrdt failures, panics included (BaseException in pyo3), become ordinary exceptions."""

from __future__ import annotations

import pytest
from pycrdt import Text

from eventstore.crdt import UpdateRejectedError, apply_update, guarded, new_doc, text_of


def test_a_real_yrs_panic_is_caught_and_flagged() -> None:
    doc = new_doc()
    text = doc.get("content", type=Text)
    text += "a😀b"
    # pycrdt counts UTF-8 bytes; deleting inside the emoji panics in yrs, and
    # pyo3's PanicException is a BaseException, not an Exception.
    with pytest.raises(UpdateRejectedError) as info:
        guarded(lambda: text.__delitem__(slice(2, 3)))
    assert info.value.panicked


def test_a_decode_error_is_not_a_panic() -> None:
    with pytest.raises(UpdateRejectedError) as info:
        apply_update(new_doc(), bytes.fromhex("010107038007010702066162f09f988000"))
    assert not info.value.panicked


def test_server_docs_use_32_bit_client_ids() -> None:
    assert all(new_doc().client_id < 2**32 for _ in range(100))


def test_text_of_reads_the_content_text() -> None:
    doc = new_doc()
    doc.get("content", type=Text).insert(0, "hi")
    assert text_of(doc) == "hi"
