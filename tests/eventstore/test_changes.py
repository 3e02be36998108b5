"""Character history, changesets and rollback plans, on a real editing trace and by hand."""

from __future__ import annotations

import random
from typing import Any

import pytest
from pycrdt import Doc, Text

from bench.common import load_trace, trace_updates
from eventstore import Database
from eventstore.changes import char_history, utf16_len
from eventstore.changeset import changeset
from eventstore.crdt import apply_update, new_doc, text_of
from eventstore.eventlog import EventLog
from eventstore.events import NewEvent, verify_chain
from eventstore.logs import GENESIS_HASH, create_log
from eventstore.rollback import rollback_plan
from eventstore.splices import (
    SpliceError,
    TextEdit,
    apply_from_end,
    apply_in_order,
    to_splices,
)

TRACE_TXNS = 400


def expected_texts(start: str, txns: Any) -> list[str]:
    """The text after each event, computed on plain strings (code-point positions)."""
    texts = [""]
    text = ""
    if start:
        text = start
        texts.append(text)
    for patches in txns:
        for position, deleted, inserted in patches:
            text = text[:position] + inserted + text[position + deleted :]
        texts.append(text)
    return texts


async def new_log(db: Database, doc_id: str) -> EventLog:
    async with db.transaction() as conn:
        await create_log(conn, doc_id)
    return EventLog(db)


@pytest.mark.parametrize("name", ["sveltecomponent", "rustcode"])
async def test_changeset_on_a_real_trace_at_random_pairs(db: Database, name: str) -> None:
    trace = load_trace(name)
    txns = trace.txns[:TRACE_TXNS]
    updates, final = trace_updates(trace.start, txns)
    texts = expected_texts(trace.start, txns)
    assert final == texts[-1]
    log = await new_log(db, "t")
    authors = ["ada", "bob", "cy"]
    await log.append(
        "t",
        [
            NewEvent("update", u, authors[i % 3], "n", source="ai:x" if i % 5 == 0 else None)
            for i, u in enumerate(updates)
        ],
    )
    history = await char_history(log, "t")
    assert history.seq == len(updates)
    rng = random.Random(7)
    pairs = [(rng.randrange(len(texts)), rng.randrange(len(texts))) for _ in range(60)]
    for a, b in [(0, len(texts) - 1), *pairs]:
        runs = changeset(history, a, b)
        assert "".join(r.text for r in runs if r.op != "delete") == texts[b], (a, b)
        assert "".join(r.text for r in runs if r.op != "insert") == texts[a], (a, b)
        for run in runs:
            if run.op == "keep":
                assert run.seq is None
                continue
            assert run.seq is not None and min(a, b) < run.seq <= max(a, b)
    counted = sum(info.inserted - info.deleted for info in history.events.values())
    assert counted == utf16_len(texts[-1])


def edits_by(doc: Doc[Any], change: Any) -> bytes:
    before = doc.get_state()
    change(doc.get("content", type=Text))
    return doc.get_update(before)


async def test_rollback_plan_undoes_one_author_and_keeps_later_edits(db: Database) -> None:
    ada: Doc[Any] = Doc(client_id=1)
    bob: Doc[Any] = Doc(client_id=2)
    log = await new_log(db, "r")
    stream: list[NewEvent] = []

    def commit(author: str, source: Doc[Any], change: Any) -> None:
        update = edits_by(source, change)
        (bob if source is ada else ada).apply_update(update)
        stream.append(NewEvent("update", update, author, "n"))

    commit("ada", ada, lambda t: t.insert(0, "hello world"))
    commit("bob", bob, lambda t: t.insert(5, " 😀 there"))  # "hello 😀 there world"
    commit("ada", ada, lambda t: t.__delitem__(slice(0, 5)))  # " 😀 there world"
    commit("bob", bob, lambda t: t.insert(len(str(t).encode()), "!"))
    await log.append("r", stream)
    history = await char_history(log, "r")
    assert history.text_at(4) == " 😀 there world!"
    # Undo bob: his insertions go, ada's deletion stays.
    doc = history.doc
    assert doc is not None
    apply_from_end(doc, rollback_plan(history, {2, 4}))
    assert text_of(doc) == " world"
    # Undo ada's deletion only (seq 3): "hello" comes back in place.
    again = await char_history(log, "r")
    assert again.doc is not None
    apply_from_end(again.doc, rollback_plan(again, {3}))
    assert text_of(again.doc) == "hello 😀 there world!"


async def test_source_is_stored_and_hashed(db: Database) -> None:
    log = await new_log(db, "s")
    doc = new_doc(client_id=5)
    update = edits_by(doc, lambda t: t.insert(0, "x"))
    [plain, labelled] = await log.append(
        "s",
        [
            NewEvent("update", update, "u", "n"),
            NewEvent("edit", b"\x00\x00", "u", "n", None, "ai:x"),
        ],
    )
    read = await log.read("s")
    assert [e.source for e in read] == [None, "ai:x"]
    assert verify_chain(GENESIS_HASH, read) is None
    forged = [read[0], type(read[1])(**{**_fields(read[1]), "source": "ai:y"})]
    assert verify_chain(GENESIS_HASH, forged) == 2
    fresh = new_doc()
    apply_update(fresh, plain.update)
    assert text_of(fresh) == "x"
    assert labelled.kind == "edit"


def _fields(event: Any) -> dict[str, Any]:
    return {name: getattr(event, name) for name in event.__slots__}


def test_splices_count_utf16_units() -> None:
    text = "a😀b"
    splices = to_splices(text, [TextEdit(1, 2, "é"), TextEdit(0, 0, ">")])
    doc = new_doc()
    doc.get("content", type=Text).insert(0, text)
    apply_in_order(doc, splices)
    assert text_of(doc) == ">aéb"
    with pytest.raises(SpliceError, match="surrogate"):
        to_splices(text, [TextEdit(2, 0, "x")])
    with pytest.raises(SpliceError, match="past the end"):
        to_splices(text, [TextEdit(0, 5, "")])
