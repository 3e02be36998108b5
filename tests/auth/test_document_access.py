"""The account and its access to a document, read in one query at a WebSocket upgrade."""

from __future__ import annotations

import uuid

from auth.access import Role, account_and_document_access, document_access
from auth.tokens import TokenSigner
from auth.users import get_user
from eventstore import Database
from tests.conftest import TEST_SECRET
from tests.realtime.seed import seed_database

ROLES: dict[str, Role | None] = {
    "owner": Role.OWNER,
    "editor": Role.EDITOR,
    "viewer": Role.VIEWER,
    "stranger": None,
}


async def test_it_reads_what_the_two_separate_reads_read(db: Database) -> None:
    seeded = await seed_database(db, TokenSigner(TEST_SECRET, access_ttl=60, refresh_ttl=60), ROLES)
    for name, user in seeded.users.items():
        for doc_id in (seeded.doc_id, "unknown-doc"):
            found = await account_and_document_access(db, user.id, doc_id)
            separately = (await get_user(db, user.id), await document_access(db, doc_id, user.id))
            assert found == separately
            assert found is not None
            expected = ROLES[name] if doc_id == seeded.doc_id else None
            assert (found[1].role if found[1] else None) == expected


async def test_an_account_that_is_gone_is_none(db: Database) -> None:
    seeded = await seed_database(db, TokenSigner(TEST_SECRET, access_ttl=60, refresh_ttl=60), ROLES)
    assert await account_and_document_access(db, str(uuid.uuid4()), seeded.doc_id) is None
    assert await account_and_document_access(db, "'; DROP TABLE users; --", "x") is None
