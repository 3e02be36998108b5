"""``/api/auth/*``: register, login, refresh, logout and the caller's account."""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, request_schema, response_schema

from auth.cookies import clear_session_cookies, refresh_cookie, set_session_cookies
from auth.errors import InvalidCredentialsError, InvalidTokenError, OriginRefusedError
from auth.keys import CURRENT_USER, RATE_LIMITER, TOKEN_SIGNER
from auth.middleware import origin_allowed, public
from auth.models import User
from auth.passwords import hash_password, needs_rehash, verify_dummy, verify_password
from auth.schemas import (
    AuthTokensSchema,
    LoginRequestSchema,
    LogoutRequestSchema,
    RefreshRequestSchema,
    RegisterRequestSchema,
    UserSchema,
    user_json,
)
from auth.sessions import TokenPair, end_session, rotate_session, start_session
from auth.users import create_user, get_credentials, get_user, set_password_hash
from eventstore.keys import DATABASE
from webcore.validation import body, optional_body

routes = web.RouteTableDef()
_TAGS = ["auth"]
_NO_TOKEN: list[dict[str, list[str]]] = []  # OpenAPI: this operation needs no bearer token


@routes.post("/api/auth/register")
@public
@docs(
    tags=_TAGS,
    summary="Create an account",
    description="Emails are case-insensitive and unique (409 `email_taken`); passwords have"
    " at least 8 characters. Answers with a first token pair, like login. Limited per client"
    " address (429 `rate_limited` with `Retry-After`).",
    security=_NO_TOKEN,
    responses={409: {"description": "`email_taken`"}, 429: {"description": "`rate_limited`"}},
)
@request_schema(RegisterRequestSchema, required=True)
@response_schema(AuthTokensSchema, 201, description="The account and its first token pair.")
async def register(request: web.Request) -> web.Response:
    """Create an account and log it in."""
    # Every attempt counts (none is given back): this bounds account creation
    # and email probing (409) per address.
    await request.app[RATE_LIMITER].acquire("register:addr:" + _address(request))
    data = body(request)
    password_hash = await hash_password(data["password"])
    user = await create_user(
        request.app[DATABASE],
        email=data["email"],
        display_name=data["display_name"],
        password_hash=password_hash,
    )
    pair = await start_session(request.app[DATABASE], request.app[TOKEN_SIGNER], user.id)
    return _tokens_response(request, user, pair, status=201)


@routes.post("/api/auth/login")
@public
@docs(
    tags=_TAGS,
    summary="Log in with email and password",
    description="An unknown email and a wrong password give the same 401"
    " `invalid_credentials`. Failures are limited per email and per client address"
    " (429 `rate_limited` with `Retry-After`).",
    security=_NO_TOKEN,
    responses={
        401: {"description": "`invalid_credentials`"},
        429: {"description": "`rate_limited`"},
    },
)
@request_schema(LoginRequestSchema, required=True)
@response_schema(AuthTokensSchema, 200, description="The account and a new token pair.")
async def login(request: web.Request) -> web.Response:
    """Exchange email and password for a token pair."""
    data = body(request)
    limiter = request.app[RATE_LIMITER]
    keys = ("login:addr:" + _address(request), "login:email:" + _digest(data["email"]))
    await limiter.acquire(*keys)
    user = await _check_password(request, data["email"], data["password"])
    await limiter.release(*keys)  # only failures use up the budget
    pair = await start_session(request.app[DATABASE], request.app[TOKEN_SIGNER], user.id)
    return _tokens_response(request, user, pair)


@routes.post("/api/auth/refresh")
@public
@docs(
    tags=_TAGS,
    summary="Exchange a refresh token for a new pair",
    description="Refresh tokens are single use. Presenting one that was already used"
    " answers 401 `invalid_token` and revokes every token of its login session. A browser"
    " sends no body: the `collab_refresh` cookie is used (from an allowed Origin only,"
    " else 403 `origin_refused`), and both session cookies are renewed.",
    security=_NO_TOKEN,
    responses={
        401: {"description": "`invalid_token`"},
        403: {"description": "`origin_refused`"},
    },
)
@request_schema(RefreshRequestSchema)
@optional_body
@response_schema(AuthTokensSchema, 200, description="The account and the next token pair.")
async def refresh(request: web.Request) -> web.Response:
    """Rotate a refresh token (from the body, or else the refresh cookie)."""
    token = _refresh_token(request)
    db = request.app[DATABASE]
    pair = await rotate_session(db, request.app[TOKEN_SIGNER], token)
    user = await get_user(db, pair.user_id)
    if user is None:  # deleted between the two queries; its tokens went with it
        raise InvalidTokenError("the account no longer exists")
    return _tokens_response(request, user, pair)


@routes.post("/api/auth/logout")
@docs(
    tags=_TAGS,
    summary="End a login session",
    description="Revokes the refresh token (from the body, or else the `collab_refresh`"
    " cookie) and every token of its session, and clears the session cookies. Access tokens"
    " already issued stay valid until they expire (minutes).",
    responses={
        204: {"description": "Logged out."},
        401: {
            "description": "`unauthorized`, or `invalid_token` for a refresh token that is"
            " not the caller's."
        },
    },
)
@request_schema(LogoutRequestSchema)
@optional_body
async def logout(request: web.Request) -> web.Response:
    """Revoke the caller's refresh token family and clear the session cookies."""
    token = _refresh_token(request)
    user = request[CURRENT_USER]
    await end_session(request.app[DATABASE], request.app[TOKEN_SIGNER], token, user.id)
    response = web.Response(status=204)
    clear_session_cookies(response)
    return response


@routes.get("/api/auth/me")
@docs(tags=_TAGS, summary="The caller's account")
@response_schema(UserSchema, 200, description="The account of the access token's owner.")
async def me(request: web.Request) -> web.Response:
    """Answer with the authenticated account."""
    return web.json_response(user_json(request[CURRENT_USER]))


async def _check_password(request: web.Request, email: str, password: str) -> User:
    db = request.app[DATABASE]
    credentials = await get_credentials(db, email)
    if credentials is None:
        await verify_dummy(password)  # same time as a wrong password: no account probing
    elif await verify_password(credentials.password_hash, password):
        if needs_rehash(credentials.password_hash):
            await set_password_hash(db, credentials.user.id, await hash_password(password))
        return credentials.user
    raise InvalidCredentialsError()


def _refresh_token(request: web.Request) -> str:
    """The refresh token of the body, or else of the cookie (from an allowed origin)."""
    token: str | None = body(request).get("refresh_token")
    if token:
        return token
    token = refresh_cookie(request)
    if token is None:
        raise InvalidTokenError("send a refresh_token in the body or the collab_refresh cookie")
    if not origin_allowed(request):
        raise OriginRefusedError()
    return token


def _tokens_response(
    request: web.Request, user: User, pair: TokenPair, status: int = 200
) -> web.Response:
    response = web.json_response(_tokens_json(user, pair), status=status)
    set_session_cookies(request, response, pair, request.app[TOKEN_SIGNER].refresh_ttl)
    return response


def _tokens_json(user: User, pair: TokenPair) -> dict[str, Any]:
    return {
        "user": user_json(user),
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "bearer",
        "expires_in": pair.expires_in,
        # The session also travels in HttpOnly cookies, which a page cannot see.
        "session_cookie": True,
    }


def _address(request: web.Request) -> str:
    # The peer address; behind a reverse proxy this is the proxy, so limits
    # then apply to it as a whole (X-Forwarded-For is not trusted blindly).
    return request.remote or "unknown"


def _digest(email: str) -> str:
    # Keys hold a digest, not the address: no personal data in Redis.
    return hashlib.sha256(email.encode()).hexdigest()[:32]
