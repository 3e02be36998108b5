"""Signed JWT access and refresh tokens (HS256, our own issuer and audience).

Both kinds carry a ``typ`` claim and are verified against it, so a refresh
token is never accepted where an access token is expected, or the other way
round. The algorithm is fixed on decode, never taken from the token's header,
and ``exp``/``iat``/``sub``/``aud``/``iss`` are required: PyJWT's defaults
would accept a token without ``exp`` forever.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from auth.errors import InvalidTokenError
from auth.signing_key import MIN_SECRET_BYTES

ALGORITHM = "HS256"
ISSUER = "collab"
AUDIENCE = "collab"
ACCESS = "access"
REFRESH = "refresh"
# Tolerates small clock differences between nodes; tokens live for minutes.
LEEWAY_SECONDS = 5
_REQUIRED = ["exp", "iat", "sub", "aud", "iss", "jti", "typ"]


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token says."""

    user_id: str
    expires_at: float
    token_id: str


@dataclass(frozen=True, slots=True)
class RefreshClaims:
    """What a verified refresh token says; ``token_id`` is its ``refresh_tokens`` row."""

    user_id: str
    family_id: str
    token_id: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class IssuedRefresh:
    """A freshly signed refresh token and the facts to store about it."""

    token: str
    token_id: str
    family_id: str
    expires_at: float


class TokenSigner:
    """Issues and verifies this server's tokens with one HMAC secret."""

    def __init__(
        self,
        secret: str,
        *,
        access_ttl: int,
        refresh_ttl: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Keep the secret and lifetimes.

        Raises:
            ValueError: the secret is shorter than 32 bytes or a lifetime is not positive.
        """
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"the token secret must be at least {MIN_SECRET_BYTES} bytes")
        if access_ttl <= 0 or refresh_ttl <= 0:
            raise ValueError("token lifetimes must be positive")
        self._secret = secret
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self._clock = clock

    def issue_access(self, user_id: str) -> str:
        """A signed access token for ``user_id``, valid for ``access_ttl`` seconds."""
        token, _, _ = self._encode(user_id, ACCESS, self.access_ttl, {})
        return token

    def verify_access(self, token: str) -> AccessClaims:
        """Check an access token's signature, expiry, issuer, audience and kind.

        Raises:
            InvalidTokenError: the token is not a valid, unexpired access token of ours.
        """
        claims = self._decode(token, ACCESS)
        return AccessClaims(
            user_id=claims["sub"], expires_at=float(claims["exp"]), token_id=claims["jti"]
        )

    def issue_refresh(self, user_id: str, family_id: str | None = None) -> IssuedRefresh:
        """A signed refresh token; a new family unless ``family_id`` continues one."""
        family = family_id or uuid.uuid4().hex
        token, token_id, expires_at = self._encode(
            user_id, REFRESH, self.refresh_ttl, {"fam": family}
        )
        return IssuedRefresh(token, token_id, family, expires_at)

    def verify_refresh(self, token: str) -> RefreshClaims:
        """Check a refresh token's signature, expiry, issuer, audience and kind.

        Whether it was already spent or revoked is the store's business.

        Raises:
            InvalidTokenError: the token is not a valid, unexpired refresh token of ours.
        """
        claims = self._decode(token, REFRESH)
        family = claims.get("fam")
        if not isinstance(family, str) or not family:
            raise InvalidTokenError("the refresh token has no family")
        return RefreshClaims(
            user_id=claims["sub"],
            family_id=family,
            token_id=claims["jti"],
            expires_at=float(claims["exp"]),
        )

    def _encode(
        self, user_id: str, kind: str, ttl: int, extra: dict[str, Any]
    ) -> tuple[str, str, float]:
        now = self._clock()
        token_id = uuid.uuid4().hex
        expires_at = int(now) + ttl
        payload = {
            "sub": user_id,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": int(now),
            "exp": expires_at,
            "jti": token_id,
            "typ": kind,
            **extra,
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM), token_id, float(expires_at)

    def _decode(self, token: str, kind: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=LEEWAY_SECONDS,
                options={
                    "require": _REQUIRED,
                    "strict_aud": True,
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(_reason(exc)) from None
        if claims.get("typ") != kind:
            raise InvalidTokenError(f"expected a token of kind {kind!r}")
        if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("jti"), str):
            raise InvalidTokenError("the token's subject or id is malformed")
        return claims


def _reason(exc: jwt.PyJWTError) -> str:
    # A short, fixed message per failure: never echo the token or library internals.
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "the token has expired"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"the token lacks the {exc.claim!r} claim"
    return "the token is not valid"
