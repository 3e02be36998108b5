"""People in a browser: one Playwright context and page each, and helpers to act as them.

Two browser contexts are two people with their own sessionStorage. The REST
helpers set up what a test does not exercise through the page (accounts,
projects, documents, members) over plain HTTP.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page
from playwright.async_api import expect as pw_expect

from tests.support.nodes import RunningNode

CHROMIUM = Path(os.environ.get("COLLAB_TEST_CHROMIUM", "/usr/bin/chromium"))
# As root in a container, without a GPU, and without Chromium phoning home
# (the machine's closed network refuses those connections noisily).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET = "e2e-demo-secret-0123456789abcdef0123456789"
PASSWORD = "correct horse battery"
WAIT_MS = 15_000

# Routes the page tries and does without when the server answers 404 (a
# server without the live event stream); Chromium reports each such 404.
OPTIONAL_ROUTES = ("/api/events",)

# The editor's text without widgets: remote cursors put their name labels
# inside the lines, and those are not part of the document.
EDITOR_TEXT_JS = """() => Array.from(document.querySelectorAll('#editor .cm-line'), (line) => {
  const copy = line.cloneNode(true)
  copy.querySelectorAll('.cm-ySelectionCaret, .cm-widgetBuffer').forEach((n) => n.remove())
  return copy.textContent
}).join('\\n')"""


def expect(target: Any) -> Any:
    """Playwright's ``expect`` (untyped here: playwright is not type-checked)."""
    return pw_expect(target)


class Person:
    """One browser context (own sessionStorage) with one page, and its console errors."""

    def __init__(self, context: BrowserContext, page: Page) -> None:
        self.context = context
        self.page = page
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        url = str(message.location.get("url", ""))
        if "404" in message.text and url.endswith(OPTIONAL_ROUTES):
            return
        if message.type == "error":
            self.errors.append(f"console error: {message.text} ({message.location.get('url')})")

    @classmethod
    async def open(cls, browser: Browser, node: RunningNode, *, hash_path: str = "") -> Person:
        """A new context (a new person) with the page open at ``/#hash_path``."""
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        person = cls(context, await context.new_page())
        await person.page.goto(f"{node.url}/" + (f"#{hash_path}" if hash_path else ""))
        return person

    async def editor_text(self) -> str:
        text: str = await self.page.evaluate(EDITOR_TEXT_JS)
        return text

    async def wait_for_text(self, expected: str) -> None:
        """Wait until the editor shows exactly ``expected``."""
        await self.page.wait_for_function(
            f"(expected) => ({EDITOR_TEXT_JS})() === expected", arg=expected, timeout=WAIT_MS
        )

    async def type_at_end(self, text: str) -> None:
        """Click into the editor, go to the end of the document and type."""
        await self.page.locator("#editor .cm-content").click()
        await self.page.keyboard.press("Control+End")
        await self.page.keyboard.type(text, delay=15)
        # Close an autocompletion popup, so that a later Enter is a newline.
        await self.page.keyboard.press("Escape")


async def register_in_ui(person: Person, email: str, name: str) -> None:
    page = person.page
    await page.get_by_role("tab", name="Create account").click()
    form = page.locator("#register-form")
    await form.get_by_label("Display name").fill(name)
    await form.get_by_label("Email").fill(email)
    await form.get_by_label("Password").fill(PASSWORD)
    await form.get_by_role("button", name="Create account").click()
    await expect(page.locator("#whoami")).to_have_text(name, timeout=WAIT_MS)


async def log_in_ui(person: Person, email: str, name: str) -> None:
    form = person.page.locator("#login-form")
    await form.get_by_label("Email").fill(email)
    await form.get_by_label("Password").fill(PASSWORD)
    await form.get_by_role("button", name="Sign in").click()
    await expect(person.page.locator("#whoami")).to_have_text(name, timeout=WAIT_MS)


async def register_api(
    http: aiohttp.ClientSession, node: RunningNode, email: str, name: str
) -> None:
    body = {"email": email, "password": PASSWORD, "display_name": name}
    async with http.post(f"{node.url}/api/auth/register", json=body) as response:
        assert response.status == 201, await response.text()


async def token_of(http: aiohttp.ClientSession, node: RunningNode, email: str) -> str:
    body = {"email": email, "password": PASSWORD}
    async with http.post(f"{node.url}/api/auth/login", json=body) as response:
        assert response.status == 200, await response.text()
        token: str = (await response.json())["access_token"]
        return token


async def wait_connected(person: Person) -> None:
    await expect(person.page.locator("#conn")).to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )


async def api_json(
    http: aiohttp.ClientSession,
    node: RunningNode,
    method: str,
    path: str,
    token: str,
    body: dict[str, Any] | None = None,
) -> tuple[int, Any]:
    """Call the REST API as the holder of ``token``; the status and the parsed answer."""
    headers = {"Authorization": f"Bearer {token}"}
    async with http.request(method, f"{node.url}{path}", json=body, headers=headers) as response:
        answer = await response.json() if response.content_type == "application/json" else None
        return response.status, answer


async def server_text(http: aiohttp.ClientSession, node: RunningNode, token: str, doc: str) -> str:
    """The document's text at the server's head."""
    status, answer = await api_json(http, node, "GET", f"/api/documents/{doc}/content", token)
    assert status == 200, answer
    text: str = answer["text"]
    return text


async def wait_server_text(
    http: aiohttp.ClientSession, node: RunningNode, token: str, doc: str, expected: str
) -> None:
    """Wait until the server's head holds exactly ``expected``."""
    text = None
    try:
        async with asyncio.timeout(WAIT_MS / 1000):
            while (text := await server_text(http, node, token, doc)) != expected:  # noqa: ASYNC110 (polling the API)
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"server text {text!r} never became {expected!r}") from None


class SharedDocument:
    """A project of Alice's with one document, Bob an editor in it (set up over REST)."""

    def __init__(self, node: RunningNode, project_id: str, document_id: str) -> None:
        self.node = node
        self.project_id = project_id
        self.document_id = document_id

    @property
    def url(self) -> str:
        """The page's address with the document open."""
        return f"{self.node.url}/#/projects/{self.project_id}/documents/{self.document_id}"

    @classmethod
    async def create(
        cls,
        http: aiohttp.ClientSession,
        node: RunningNode,
        name: str = "main.py",
        project: str = "P",
    ) -> SharedDocument:
        """Register Alice and Bob, and share Alice's new document with Bob."""
        await register_api(http, node, "alice@example.com", "Alice")
        await register_api(http, node, "bob@example.com", "Bob")
        token = await token_of(http, node, "alice@example.com")
        status, created = await api_json(
            http, node, "POST", "/api/projects", token, {"name": project}
        )
        assert status == 201, created
        path = f"/api/projects/{created['id']}"
        body = {"name": name, "language": "python"}
        status, doc = await api_json(http, node, "POST", f"{path}/documents", token, body)
        assert status == 201, doc
        member = {"email": "bob@example.com", "role": "editor"}
        status, answer = await api_json(http, node, "POST", f"{path}/members", token, member)
        assert status == 201, answer
        return cls(node, created["id"], doc["id"])

    async def open_as(self, browser: Browser, email: str, name: str) -> Person:
        """A new person (browser context) signed in with the document open."""
        person = await Person.open(browser, self.node, hash_path=self.url.split("/#", 1)[1])
        await log_in_ui(person, email, name)
        await wait_connected(person)
        return person


async def route_exists(
    http: aiohttp.ClientSession, node: RunningNode, method: str, path: str
) -> bool:
    """Whether the node serves ``method path`` at all (a branch may not have it yet).

    aiohttp answers an unknown path with 404 and a known path with another
    method with 405, before authentication; a route that exists answers 401
    to a request without a token.
    """
    async with http.request(method, f"{node.url}{path}") as response:
        return response.status not in (404, 405)
