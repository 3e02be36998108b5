"""The OpenAPI document: every request body has examples the server accepts; errors are typed."""

from __future__ import annotations

import json
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
from aiohttp import DummyCookieJar
from pytest_aiohttp import AiohttpClient

from auth.cookies import REFRESH_COOKIE, SESSION_COOKIE
from collab.api.examples import DOCUMENT_ID, FORK_ID, PROJECT_ID
from collab.app import create_app
from collab.config import Settings
from tests.auth.fixtures import Account, Client, add_member, create_account
from tests.conftest import TEST_SECRET

# The order the examples are tried in: each may need what an earlier one made.
ORDER = [
    ("POST", "/api/auth/register"),
    ("POST", "/api/auth/login"),
    ("POST", "/api/auth/refresh"),
    ("POST", "/api/projects"),
    ("PATCH", "/api/projects/{project_id}"),
    ("POST", "/api/projects/{project_id}/members"),
    ("PATCH", "/api/projects/{project_id}/members/{user_id}"),
    ("POST", "/api/projects/{project_id}/invites"),
    ("POST", "/api/projects/{project_id}/documents"),
    ("PATCH", "/api/documents/{doc_id}"),
    ("POST", "/api/documents/{doc_id}/restore"),
    ("POST", "/api/documents/{doc_id}/fork"),
    ("POST", "/api/documents/{doc_id}/edits"),
    ("POST", "/api/documents/{doc_id}/rollback"),
    ("POST", "/api/documents/{doc_id}/merge"),
    ("POST", "/api/jobs"),
    ("POST", "/api/auth/logout"),
]


@pytest.fixture
async def node(tmp_path: Path, aiohttp_client: AiohttpClient) -> Client:
    """A fresh node on SQLite, so the example account does not exist yet."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/collab.db",
        jwt_secret=TEST_SECRET,
        data_dir=tmp_path / "data",
    )
    return await aiohttp_client(create_app(settings), cookie_jar=DummyCookieJar())


async def _spec(client: Client) -> dict[str, Any]:
    spec: dict[str, Any] = await (await client.get("/api/docs/openapi.json")).json()
    return spec


# The one binary body: a raw Yjs update, described rather than exemplified.
RAW_UPDATES = ("POST", "/api/documents/{doc_id}/updates")


def _bodies(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if isinstance(operation, dict)
        and "requestBody" in operation
        and (method.upper(), path) != RAW_UPDATES
    }


async def test_the_raw_update_body_says_what_to_send(node: Client) -> None:
    operation = (await _spec(node))["paths"][RAW_UPDATES[1]]["post"]
    assert "application/octet-stream" in operation["requestBody"]["content"]
    assert "00 00" in operation["requestBody"]["description"]


class Browser:
    """Cookies and ids the examples build up, sent the way Swagger UI in a browser would."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.cookies: dict[str, str] = {}
        self.ids: dict[str, str] = {}

    def headers(self) -> dict[str, str]:
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        origin = f"http://{self.client.server.host}:{self.client.server.port}"
        return {"Cookie": cookie, "Origin": origin} if cookie else {"Origin": origin}

    def keep(self, response: Any) -> None:
        jar: SimpleCookie = SimpleCookie()
        for header in response.headers.getall("Set-Cookie", []):
            jar.load(header)
        for name in (SESSION_COOKIE, REFRESH_COOKIE):
            if name in jar:
                self.cookies[name] = jar[name].value

    def fill(self, text: str) -> str:
        for name, value in self.ids.items():
            text = text.replace("{" + name + "}", value)
        for placeholder, name in ((PROJECT_ID, "project_id"), (DOCUMENT_ID, "doc_id")):
            text = text.replace(placeholder, self.ids.get(name, ""))
        return text.replace(FORK_ID, self.ids.get("fork_id", ""))


async def test_every_request_body_has_examples(node: Client) -> None:
    bodies = _bodies(await _spec(node))
    assert set(bodies) == set(ORDER), "add the new route's examples and put it in ORDER"
    for key, operation in bodies.items():
        examples = operation["requestBody"]["content"]["application/json"].get("examples")
        assert examples, f"{key}: no examples"
        assert all(example["summary"] and "value" in example for example in examples.values())


async def test_every_example_is_accepted(node: Client) -> None:
    bodies = _bodies(await _spec(node))
    browser = Browser(node)
    for method, path in ORDER:
        if path == "/api/projects/{project_id}/members/{user_id}":
            member = await create_account(node)
            ada = Account("", "", browser.cookies[SESSION_COOKIE], "")
            await add_member(node, ada, browser.ids["project_id"], member.email, "editor")
            browser.ids["user_id"] = member.id
        examples = bodies[(method, path)]["requestBody"]["content"]["application/json"]["examples"]
        for name, example in examples.items():
            body = json.loads(browser.fill(json.dumps(example["value"])))
            response = await node.request(
                method, browser.fill(path), json=body, headers=browser.headers()
            )
            assert 200 <= response.status < 300, (method, path, name, await response.text())
            browser.keep(response)
            if response.status != 204:
                _remember(browser, path, await response.json())


def _remember(browser: Browser, path: str, data: dict[str, Any]) -> None:
    if path == "/api/projects":
        browser.ids["project_id"] = data["id"]
    elif path == "/api/projects/{project_id}/documents":
        browser.ids["doc_id"] = data["id"]
    elif path == "/api/documents/{doc_id}/fork":
        browser.ids["fork_id"] = data["id"]


async def test_error_statuses_are_documented_with_the_error_shape(node: Client) -> None:
    spec = await _spec(node)
    assert "Error" in spec["components"]["schemas"]
    jobs = spec["paths"]["/api/jobs"]["post"]["responses"]
    for status in ("400", "401", "403", "404", "413", "422", "503"):
        assert status in jobs, status
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/") or path.startswith("/api/docs"):
            continue
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert "content" in response, (method, path, status)
            if "requestBody" in operation:
                assert "422" in operation["responses"], (method, path)
    register = spec["paths"]["/api/auth/register"]["post"]["responses"]
    assert "401" not in register  # public
    assert "401" in spec["paths"]["/api/projects"]["post"]["responses"]
