"""Forged, altered, expired and misused tokens are all refused (401 ``unauthorized``).

Each attack is a token presented to ``GET /api/auth/me``; the signer is also
checked on its own, without HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from auth.errors import InvalidTokenError
from auth.tokens import TokenSigner
from tests.auth.fixtures import Account, Client, assert_error, bearer, create_account
from tests.conftest import TEST_SECRET

_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_RSA_PUBLIC_PEM = _RSA_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(
    header: dict[str, Any], claims: dict[str, Any], key: bytes | None, digest: str = "sha256"
) -> str:
    """A JWT built by hand, HMAC-signed with ``key`` (or unsigned)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = b"" if key is None else hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{_b64(signature)}"


def _claims(user_id: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "iss": "collab",
        "aud": "collab",
        "iat": now,
        "exp": now + 600,
        "jti": "0" * 32,
        "typ": "access",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, TEST_SECRET, algorithm="HS256")


def _tampered(account: Account) -> str:
    header, payload, signature = account.access_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp"] += 3600  # a longer life, same signature
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


ATTACKS: dict[str, Callable[[Account], str]] = {
    "alg none": lambda a: _forge({"alg": "none", "typ": "JWT"}, _claims(a.id), None),
    "alg None, signed": lambda a: _forge(
        {"alg": "None", "typ": "JWT"}, _claims(a.id), TEST_SECRET.encode()
    ),
    "RS256 with a real RSA key": lambda a: jwt.encode(_claims(a.id), _RSA_KEY, algorithm="RS256"),
    "HS256 keyed with the RSA public key": lambda a: _forge(
        {"alg": "HS256", "typ": "JWT"}, _claims(a.id), _RSA_PUBLIC_PEM
    ),
    "HS512 with the real secret": lambda a: _forge(
        {"alg": "HS512", "typ": "JWT"}, _claims(a.id), TEST_SECRET.encode(), "sha512"
    ),
    "another secret": lambda a: jwt.encode(_claims(a.id), "y" * 48, algorithm="HS256"),
    "tampered payload": _tampered,
    "signature stripped": lambda a: a.access_token.rsplit(".", 1)[0] + ".",
    "expired": lambda a: _signed(
        _claims(a.id, iat=int(time.time()) - 7200, exp=int(time.time()) - 60)
    ),
    "missing exp": lambda a: _signed(_claims(a.id, exp=None)),
    "missing iat": lambda a: _signed(_claims(a.id, iat=None)),
    "missing sub": lambda a: _signed(_claims(a.id, sub=None)),
    "missing typ": lambda a: _signed(_claims(a.id, typ=None)),
    "wrong issuer": lambda a: _signed(_claims(a.id, iss="someone-else")),
    "wrong audience": lambda a: _signed(_claims(a.id, aud="someone-else")),
    "audience list": lambda a: _signed(_claims(a.id, aud=["collab", "someone-else"])),
    "refresh token as access token": lambda a: a.refresh_token,
    "unknown user": lambda a: _signed(_claims("no-such-user")),
    "not a JWT": lambda a: "not-a-token",
}


@pytest.mark.parametrize("attack", ATTACKS)
async def test_forged_token_is_refused(client: Client, attack: str) -> None:
    account = await create_account(client)
    token = ATTACKS[attack](account)
    response = await client.get("/api/auth/me", headers=bearer(token))
    await assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # The genuine token still works: the attack was refused, not everything.
    assert (await client.get("/api/auth/me", headers=account.headers)).status == 200


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "bearer"],
)
async def test_missing_or_malformed_authorization(client: Client, header: str) -> None:
    response = await client.get("/api/auth/me", headers={"Authorization": header})
    await assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_scheme_is_case_insensitive(client: Client) -> None:
    account = await create_account(client)
    response = await client.get(
        "/api/auth/me", headers={"Authorization": f"bEaReR {account.access_token}"}
    )
    assert response.status == 200


async def test_access_token_is_not_a_refresh_token(client: Client) -> None:
    account = await create_account(client)
    response = await client.post("/api/auth/refresh", json={"refresh_token": account.access_token})
    await assert_error(response, 401, "invalid_token")


async def test_forged_refresh_token_is_refused(client: Client) -> None:
    account = await create_account(client)
    claims = _claims(account.id, typ="refresh", fam="f" * 32)
    response = await client.post("/api/auth/refresh", json={"refresh_token": _signed(claims)})
    await assert_error(response, 401, "invalid_token")  # signed, but never issued


async def test_refresh_reuse_revokes_the_family(client: Client) -> None:
    account = await create_account(client)
    other_session = await client.post(
        "/api/auth/login", json={"email": account.email, "password": "correct horse battery staple"}
    )
    other_refresh = (await other_session.json())["refresh_token"]

    first = await client.post("/api/auth/refresh", json={"refresh_token": account.refresh_token})
    assert first.status == 200
    newer = (await first.json())["refresh_token"]
    assert newer != account.refresh_token

    reuse = await client.post("/api/auth/refresh", json={"refresh_token": account.refresh_token})
    await assert_error(reuse, 401, "invalid_token")
    # The thief may hold the newer token: it is revoked with its family.
    after = await client.post("/api/auth/refresh", json={"refresh_token": newer})
    await assert_error(after, 401, "invalid_token")
    # Another login of the same account is another family, untouched.
    untouched = await client.post("/api/auth/refresh", json={"refresh_token": other_refresh})
    assert untouched.status == 200


async def test_refresh_tokens_are_stored_hashed(client: Client) -> None:
    from eventstore.keys import DATABASE

    account = await create_account(client)
    rows = await client.app[DATABASE].fetch("SELECT token_hash, family_id FROM refresh_tokens")
    assert len(rows) == 1
    assert rows[0]["token_hash"] == hashlib.sha256(account.refresh_token.encode()).hexdigest()
    assert account.refresh_token not in json.dumps(rows)


# The signer on its own.

SIGNER = TokenSigner(TEST_SECRET, access_ttl=60, refresh_ttl=600)


def test_signer_round_trip() -> None:
    claims = SIGNER.verify_access(SIGNER.issue_access("u1"))
    assert claims.user_id == "u1"
    assert claims.expires_at == pytest.approx(time.time() + 60, abs=2)
    issued = SIGNER.issue_refresh("u1")
    refreshed = SIGNER.verify_refresh(issued.token)
    assert (refreshed.user_id, refreshed.family_id, refreshed.token_id) == (
        "u1",
        issued.family_id,
        issued.token_id,
    )


def test_signer_keeps_kinds_apart() -> None:
    with pytest.raises(InvalidTokenError):
        SIGNER.verify_access(SIGNER.issue_refresh("u1").token)
    with pytest.raises(InvalidTokenError):
        SIGNER.verify_refresh(SIGNER.issue_access("u1"))


def test_signer_tokens_expire() -> None:
    past = TokenSigner(TEST_SECRET, access_ttl=1, refresh_ttl=1, clock=lambda: time.time() - 60)
    with pytest.raises(InvalidTokenError, match="expired"):
        SIGNER.verify_access(past.issue_access("u1"))


def test_signer_refuses_short_secrets() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        TokenSigner("short", access_ttl=60, refresh_ttl=60)
