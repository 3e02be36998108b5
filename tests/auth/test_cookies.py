"""Cookie sessions: set by register/login/refresh, cleared by logout, Origin-checked."""

from __future__ import annotations

from http.cookies import SimpleCookie
from pathlib import Path

from aiohttp import ClientResponse, DummyCookieJar, WSMsgType
from pytest_aiohttp import AiohttpClient

from auth.cookies import REFRESH_COOKIE, SESSION_COOKIE
from collab.app import create_app
from collab.config import Settings
from tests.auth.fixtures import (
    PASSWORD,
    Account,
    Client,
    assert_error,
    create_document,
    create_project,
    register,
    unique_email,
)
from tests.conftest import TEST_SECRET

FOREIGN = "https://evil.example"


def _cookies(response: object) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.getall("Set-Cookie", []):  # type: ignore[attr-defined]
        jar.load(header)
    return jar


def _own(client: Client) -> str:
    return f"http://{client.server.host}:{client.server.port}"


def _cookie_header(session: str | None = None, refresh: str | None = None) -> str:
    parts = []
    if session is not None:
        parts.append(f"{SESSION_COOKIE}={session}")
    if refresh is not None:
        parts.append(f"{REFRESH_COOKIE}={refresh}")
    return "; ".join(parts)


async def _call(client: Client, method: str, path: str, **kwargs: object) -> ClientResponse:
    """A request carrying only the cookies given explicitly (the jar is emptied first)."""
    client.session.cookie_jar.clear()
    return await client.request(method, path, **kwargs)  # type: ignore[arg-type]


async def _login(client: Client) -> tuple[str, str]:
    """Register, log in and return the (session, refresh) cookie values of the login."""
    email = unique_email()
    await register(client, email)
    client.session.cookie_jar.clear()
    response = await _call(
        client, "POST", "/api/auth/login", json={"email": email, "password": PASSWORD}
    )
    assert response.status == 200
    jar = _cookies(response)
    client.session.cookie_jar.clear()  # each test sends its cookies explicitly
    return jar[SESSION_COOKIE].value, jar[REFRESH_COOKIE].value


async def test_register_and_login_set_httponly_lax_cookies(client: Client) -> None:
    email = unique_email()
    response = await _call(
        client,
        "POST",
        "/api/auth/register",
        json={"email": email, "password": PASSWORD, "display_name": "Ada"},
    )
    assert response.status == 201
    body = await response.json()
    jar = _cookies(response)
    session, refresh = jar[SESSION_COOKIE], jar[REFRESH_COOKIE]
    assert session.value == body["access_token"]
    assert refresh.value == body["refresh_token"]
    assert session["path"] == "/" and refresh["path"] == "/api/auth"
    assert session["max-age"] == str(body["expires_in"])
    for cookie in (session, refresh):
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Lax"
        assert not cookie["secure"]  # plain HTTP here; HTTPS requests get Secure


async def test_session_cookie_authenticates_reads(client: Client) -> None:
    session, _ = await _login(client)
    response = await _call(
        client, "GET", "/api/auth/me", headers={"Cookie": _cookie_header(session)}
    )
    assert response.status == 200


async def test_cookie_write_needs_an_allowed_origin(client: Client) -> None:
    session, _ = await _login(client)
    cookie = {"Cookie": _cookie_header(session)}
    for origin in (None, FOREIGN, "null"):
        headers = dict(cookie, **({"Origin": origin} if origin else {}))
        response = await _call(client, "POST", "/api/projects", json={"name": "x"}, headers=headers)
        await assert_error(response, 403, "origin_refused")
    response = await _call(
        client,
        "POST",
        "/api/projects",
        json={"name": "x"},
        headers=dict(cookie, Origin=_own(client)),
    )
    assert response.status == 201


async def test_bearer_write_needs_no_origin(client: Client) -> None:
    session, _ = await _login(client)
    response = await _call(
        client,
        "POST",
        "/api/projects",
        json={"name": "x"},
        headers={"Authorization": f"Bearer {session}", "Origin": FOREIGN},
    )
    assert response.status == 201


async def test_invalid_session_cookie_is_401(client: Client) -> None:
    for value in ("garbage", "a" * 5000, ""):
        response = await _call(
            client, "GET", "/api/auth/me", headers={"Cookie": _cookie_header(value)}
        )
        await assert_error(response, 401)


async def test_refresh_with_empty_body_uses_the_cookie(client: Client) -> None:
    _, refresh = await _login(client)
    response = await _call(
        client,
        "POST",
        "/api/auth/refresh",
        headers={"Cookie": _cookie_header(refresh=refresh), "Origin": _own(client)},
    )
    assert response.status == 200, await response.text()
    jar = _cookies(response)
    assert jar[SESSION_COOKIE].value == (await response.json())["access_token"]
    assert jar[REFRESH_COOKIE].value != refresh
    # the spent cookie cannot be used again
    again = await _call(
        client,
        "POST",
        "/api/auth/refresh",
        headers={"Cookie": _cookie_header(refresh=refresh), "Origin": _own(client)},
    )
    await assert_error(again, 401, "invalid_token")


async def test_refresh_cookie_from_a_foreign_origin_is_refused(client: Client) -> None:
    _, refresh = await _login(client)
    for origin in ({"Origin": FOREIGN}, {}):
        response = await _call(
            client,
            "POST",
            "/api/auth/refresh",
            headers={"Cookie": _cookie_header(refresh=refresh), **origin},
        )
        await assert_error(response, 403, "origin_refused")


async def test_refresh_without_body_or_cookie_is_401(client: Client) -> None:
    client.session.cookie_jar.clear()
    for data in (b"", b"{}"):
        response = await _call(client, "POST", "/api/auth/refresh", data=data)
        await assert_error(response, 401, "invalid_token")
    response = await _call(client, "POST", "/api/auth/refresh", data=b"[1]")
    await assert_error(response, 422)


async def test_logout_by_cookie_clears_both_cookies(client: Client) -> None:
    session, refresh = await _login(client)
    response = await _call(
        client,
        "POST",
        "/api/auth/logout",
        headers={"Cookie": _cookie_header(session, refresh), "Origin": _own(client)},
    )
    assert response.status == 204
    jar = _cookies(response)
    assert jar[SESSION_COOKIE].value == "" and jar[REFRESH_COOKIE].value == ""
    assert jar[REFRESH_COOKIE]["path"] == "/api/auth"
    reuse = await _call(
        client,
        "POST",
        "/api/auth/refresh",
        headers={"Cookie": _cookie_header(refresh=refresh), "Origin": _own(client)},
    )
    await assert_error(reuse, 401, "invalid_token")


async def _websocket_close(client: Client, doc_id: str, headers: dict[str, str]) -> int | None:
    async with client.ws_connect(f"/ws/{doc_id}", headers=headers) as ws:
        message = await ws.receive(timeout=10)
        if message.type is WSMsgType.BINARY:
            return None  # the server started the sync: accepted
        assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
        return ws.close_code


async def test_websocket_accepts_the_cookie_from_its_own_origin_only(client: Client) -> None:
    session, _ = await _login(client)
    owner = Account("", "", session, "")
    project_id = await create_project(client, owner)
    doc_id = await create_document(client, owner, project_id)
    cookie = {"Cookie": _cookie_header(session)}
    assert await _websocket_close(client, doc_id, dict(cookie, Origin=_own(client))) is None
    assert await _websocket_close(client, doc_id, dict(cookie, Origin=FOREIGN)) == 4403
    assert await _websocket_close(client, doc_id, cookie) == 4403  # no Origin at all
    assert await _websocket_close(client, doc_id, {"Origin": _own(client)}) == 4401
    stale = {"Cookie": _cookie_header("not-a-token"), "Origin": _own(client)}
    assert await _websocket_close(client, doc_id, stale) == 4401


async def test_listed_origins_get_cors_and_may_use_cookies(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    listed = "https://editor.example.com"
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/collab.db",
        jwt_secret=TEST_SECRET,
        data_dir=tmp_path / "data",
        allowed_origins=(listed,),
    )
    client = await aiohttp_client(create_app(settings), cookie_jar=DummyCookieJar())
    preflight = await _call(
        client,
        "OPTIONS",
        "/api/projects",
        headers={"Origin": listed, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == listed
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    session, _ = await _login(client)
    response = await _call(
        client,
        "POST",
        "/api/projects",
        json={"name": "x"},
        headers={"Cookie": _cookie_header(session), "Origin": listed},
    )
    assert response.status == 201
    assert response.headers["Access-Control-Allow-Origin"] == listed
    foreign = await _call(
        client,
        "GET",
        "/api/projects",
        headers={"Cookie": _cookie_header(session), "Origin": FOREIGN},
    )
    assert foreign.status == 200
    assert "Access-Control-Allow-Origin" not in foreign.headers
    refused = await _call(
        client,
        "OPTIONS",
        "/api/projects",
        headers={"Origin": FOREIGN, "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in refused.headers


async def test_behind_a_tls_proxy(client: Client) -> None:
    email = unique_email()
    response = await _call(
        client,
        "POST",
        "/api/auth/register",
        json={"email": email, "password": PASSWORD, "display_name": "Ada"},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert response.status == 201
    session = _cookies(response)[SESSION_COOKIE]
    assert session["secure"] is True
    host = f"{client.server.host}:{client.server.port}"
    cookie = {"Cookie": _cookie_header(session.value)}
    # The page is https://host while the proxy talks plain HTTP to us: same site.
    tls_page = await _call(
        client,
        "POST",
        "/api/projects",
        json={"name": "x"},
        headers=dict(cookie, Origin=f"https://{host}"),
    )
    assert tls_page.status == 201
    other_port = f"http://{client.server.host}:{(client.server.port or 0) + 1}"
    refused = await _call(
        client, "POST", "/api/projects", json={"name": "x"}, headers=dict(cookie, Origin=other_port)
    )
    await assert_error(refused, 403, "origin_refused")


async def test_listed_origin_may_open_a_websocket_with_the_cookie(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    listed = "https://editor.example.com"
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/collab.db",
        jwt_secret=TEST_SECRET,
        data_dir=tmp_path / "data",
        allowed_origins=(listed,),
    )
    client = await aiohttp_client(create_app(settings), cookie_jar=DummyCookieJar())
    session, _ = await _login(client)
    owner = Account("", "", session, "")
    doc_id = await create_document(client, owner, await create_project(client, owner))
    cookie = {"Cookie": _cookie_header(session)}
    assert await _websocket_close(client, doc_id, dict(cookie, Origin=listed)) is None
    assert await _websocket_close(client, doc_id, dict(cookie, Origin=FOREIGN)) == 4403
