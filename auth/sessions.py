"""Login sessions: refresh-token families that rotate on every use.

Each login starts a family. A refresh spends its token and issues the next
one in the same family. Only SHA-256 digests of tokens are stored, so a
leaked table cannot be replayed. Presenting a spent token means two parties
hold the same family (a stolen token was used): the whole family is revoked,
so the thief and the victim are both logged out of that session.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from auth.errors import InvalidTokenError
from auth.tokens import IssuedRefresh, TokenSigner
from eventstore import Connection, Database

_INSERT = (
    "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6)"
)
# Spending is one conditional UPDATE, so two concurrent refreshes with the
# same token cannot both succeed on either engine: exactly one matches.
_SPEND = (
    "UPDATE refresh_tokens SET spent_at = $2 WHERE token_hash = $1"
    " AND spent_at IS NULL AND revoked_at IS NULL AND expires_at > $2"
)
_SELECT = "SELECT user_id, family_id FROM refresh_tokens WHERE token_hash = $1"
_REVOKE_FAMILY = (
    "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL"
)


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What register, login and refresh answer with."""

    user_id: str
    access_token: str
    refresh_token: str
    expires_in: int


def token_digest(token: str) -> str:
    """The stored form of a refresh token."""
    return hashlib.sha256(token.encode()).hexdigest()


async def start_session(db: Database, signer: TokenSigner, user_id: str) -> TokenPair:
    """Issue a first token pair for ``user_id`` in a new family."""
    issued = signer.issue_refresh(user_id)
    await _store(db, user_id, issued)
    return TokenPair(user_id, signer.issue_access(user_id), issued.token, signer.access_ttl)


async def rotate_session(db: Database, signer: TokenSigner, refresh_token: str) -> TokenPair:
    """Spend ``refresh_token`` and issue the next pair of its family.

    Raises:
        InvalidTokenError: the token does not verify, is unknown, expired or
            revoked, or was already spent (then its family is revoked too).
    """
    claims = signer.verify_refresh(refresh_token)
    digest = token_digest(refresh_token)
    now = time.time()
    issued: IssuedRefresh | None = None
    async with db.transaction() as conn:
        spent = await conn.execute(_SPEND, digest, now)
        row = await conn.fetchrow(_SELECT, digest)
        if row is None or row["user_id"] != claims.user_id:
            raise InvalidTokenError("unknown refresh token")
        if spent:
            issued = signer.issue_refresh(claims.user_id, row["family_id"])
            await _store(conn, claims.user_id, issued)
        else:
            await conn.execute(_REVOKE_FAMILY, row["family_id"], now)
    # The revocation above must commit, so the error is raised after the
    # transaction rather than inside it (which would roll it back).
    if issued is None:
        raise InvalidTokenError("this refresh token was already used or revoked")
    return TokenPair(
        claims.user_id, signer.issue_access(claims.user_id), issued.token, signer.access_ttl
    )


async def end_session(db: Database, signer: TokenSigner, refresh_token: str, user_id: str) -> None:
    """Revoke the family of ``refresh_token`` (logout); repeating it is harmless.

    Raises:
        InvalidTokenError: the token does not verify or is not one of ``user_id``'s.
    """
    claims = signer.verify_refresh(refresh_token)
    row = await db.fetchrow(_SELECT, token_digest(refresh_token))
    if row is None or row["user_id"] != user_id or claims.user_id != user_id:
        raise InvalidTokenError("unknown refresh token")
    await db.execute(_REVOKE_FAMILY, row["family_id"], time.time())


async def _store(db: Connection, user_id: str, issued: IssuedRefresh) -> None:
    await db.execute(
        _INSERT,
        issued.token_id,
        issued.family_id,
        user_id,
        token_digest(issued.token),
        issued.expires_at,
        time.time(),
    )
