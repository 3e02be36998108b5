"""The browser demo at ``GET /``, driven in headless Chromium against a real node.

A real ``collab serve`` process serves the committed bundle; Playwright drives
Debian's Chromium (never a downloaded browser). Two browser contexts are two
people with their own sessionStorage: they edit one document together, see
each other's cursors, run it, and one loses access.

Where /usr/bin/chromium is missing the browser tests are skipped, except under
CI=true or COLLAB_REQUIRE_SERVICES=1, where that fails the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright
from playwright.async_api import expect as pw_expect

from collab.api.demo import STATIC_DIR
from tests.services import services_required
from tests.support.nodes import REPO_ROOT, RunningNode, running_node

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

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


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[RunningNode]:
    """One server on a fresh SQLite database."""
    env = {"COLLAB_DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "COLLAB_JWT_SECRET": SECRET}
    async with running_node(env, workdir=tmp_path / "node") as running:
        yield running


def require_chromium() -> None:
    """Skip without Chromium, or fail when services are required."""
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if services_required():
        pytest.fail(f"{message}; required under CI=true or COLLAB_REQUIRE_SERVICES=1")
    pytest.skip(message)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian Chromium."""
    require_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


class Person:
    """One browser context (own sessionStorage) with one page, and its console errors."""

    def __init__(self, context: BrowserContext, page: Page) -> None:
        self.context = context
        self.page = page
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console error: {message.text} ({message.location.get('url')})")

    @classmethod
    async def open(cls, browser: Browser, node: RunningNode) -> Person:
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        person = cls(context, await context.new_page())
        await person.page.goto(f"{node.url}/")
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


# --- the page itself ----------------------------------------------------------------


async def test_page_and_assets_are_served_with_a_strict_policy(node: RunningNode) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{node.url}/") as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            page = await response.text()
            policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy
        assert "connect-src 'self' ws: wss:" in policy
        assert "frame-ancestors 'none'" in policy
        assert "/demo/app.js?v=" in page
        assert "/demo/app.css?v=" in page

        async with http.get(
            f"{node.url}/demo/app.js", headers={"Accept-Encoding": "gzip"}
        ) as response:
            assert response.status == 200
            assert response.content_type in ("application/javascript", "text/javascript")
            # The precompressed copy is what goes over the wire.
            assert response.headers.get("Content-Encoding") == "gzip"
            assert len(await response.read()) == (STATIC_DIR / "app.js").stat().st_size

        # No listing, no escape from the directory, no token needed.
        for path, statuses in [
            ("/demo/", {403, 404}),
            ("/demo/../pyproject.toml", {403, 404}),
            ("/demo/%2e%2e/demo.py", {403, 404}),
            ("/demo/..%2f..%2fpyproject.toml", {403, 404}),
            ("/demo/app.css", {200}),
        ]:
            async with http.get(
                f"{node.url}{path}", allow_redirects=False, skip_auto_headers=["Accept-Encoding"]
            ) as response:
                assert response.status in statuses, path


async def test_page_loads_without_console_errors(browser: Browser, node: RunningNode) -> None:
    person = await Person.open(browser, node)
    page = person.page
    await expect(page.locator("#login-form")).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_role("tab", name="Create account")).to_be_visible()
    await page.wait_for_load_state("networkidle")
    assert person.errors == []


# --- two people, one document --------------------------------------------------------


async def test_two_people_edit_run_and_lose_access(browser: Browser, node: RunningNode) -> None:
    alice = await Person.open(browser, node)
    bob = await Person.open(browser, node)
    async with aiohttp.ClientSession() as http:
        await register_api(http, node, "bob@example.com", "Bob")

        # Alice signs up, creates a project and a document, and shares it.
        await register_in_ui(alice, "alice@example.com", "Alice")
        await alice.page.get_by_label("New project name").fill("Pair programming")
        await alice.page.get_by_role("button", name="Create", exact=True).click()
        await expect(alice.page.locator("#documents-title")).to_have_text(
            "Pair programming", timeout=WAIT_MS
        )
        await alice.page.get_by_label("New document name").fill("main.py")
        await alice.page.locator("#new-document").get_by_role("button", name="Add").click()
        await expect(alice.page.locator("#doc-title")).to_have_text("main.py", timeout=WAIT_MS)
        await expect(alice.page.locator("#doc-lang")).to_have_text("python")
        await wait_connected(alice)

        members = alice.page.locator("#add-member")
        await members.get_by_label("Member email").fill("bob@example.com")
        await members.get_by_label("Role").select_option("editor")
        await members.get_by_role("button", name="Add").click()
        await expect(alice.page.locator("#members li")).to_have_count(2, timeout=WAIT_MS)
        await expect(alice.page.locator("#members")).to_contain_text("Bob")

        # Bob signs in and opens the same document from the lists.
        await log_in_ui(bob, "bob@example.com", "Bob")
        await bob.page.get_by_role("link", name="Pair programming").click()
        await bob.page.get_by_role("link", name="main.py").click()
        await wait_connected(bob)
        assert bob.page.url == alice.page.url  # the hash names project and document

        # Each sees what the other types.
        await alice.type_at_end("x = 1")
        await bob.wait_for_text("x = 1")
        await bob.type_at_end("\nprint(x + 1)\nprint('hi')")
        expected = "x = 1\nprint(x + 1)\nprint('hi')"
        await alice.wait_for_text(expected)
        assert await alice.editor_text() == await bob.editor_text() == expected

        doc_id = alice.page.url.rsplit("/", 1)[-1]
        token = await token_of(http, node, "alice@example.com")
        async with http.get(
            f"{node.url}/api/documents/{doc_id}/content",
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            assert response.status == 200
            assert (await response.json())["text"] == expected

        # The other person's cursor carries their (server-stamped) name.
        label_on_alice = alice.page.locator("#editor .cm-ySelectionInfo", has_text="Bob")
        await expect(label_on_alice).to_be_visible(timeout=WAIT_MS)
        await alice.page.locator("#editor .cm-content").click()  # her cursor moves: Bob sees it
        label_on_bob = bob.page.locator("#editor .cm-ySelectionInfo", has_text="Alice")
        await expect(label_on_bob).to_be_visible(timeout=WAIT_MS)
        await expect(alice.page.locator("#peers")).to_contain_text("Bob")
        await expect(bob.page.locator("#peers")).to_contain_text("Alice")

        # Run shows the program's output.
        await bob.page.get_by_role("button", name="Run").click()
        await expect(bob.page.locator("#job-status")).to_have_attribute(
            "data-status", "succeeded", timeout=30_000
        )
        output = await bob.page.locator("#output").text_content()
        assert output == "2\nhi\n"
        await expect(bob.page.locator("#job-status")).to_contain_text("exit 0")

        # Demoted to viewer, Bob's editor turns read-only and Run is disabled.
        await alice.page.get_by_label("Role of Bob").select_option("viewer")
        await expect(bob.page.locator("#conn")).to_contain_text("read-only", timeout=WAIT_MS)
        await expect(bob.page.locator("#editor .cm-content")).to_have_attribute(
            "contenteditable", "false"
        )
        await expect(bob.page.get_by_role("button", name="Run")).to_be_disabled()
        await wait_connected(bob)
        assert alice.errors == []
        assert bob.errors == []

        # Alice removes Bob: his connection is closed with a readable reason,
        # and his cursor leaves her editor.
        await alice.page.get_by_role("button", name="Remove Bob").click()
        await expect(bob.page.locator("#conn")).to_have_attribute(
            "data-state", "closed", timeout=WAIT_MS
        )
        await expect(bob.page.locator("#conn")).to_contain_text("4403")
        await expect(bob.page.locator("#conn")).to_contain_text("no access")
        await expect(label_on_alice).to_have_count(0, timeout=WAIT_MS)
        await expect(alice.page.locator("#peers")).to_have_text("")
        await expect(bob.page.locator("#editor .cm-content")).to_have_attribute(
            "contenteditable", "false"
        )
        assert alice.errors == []
        # Bob's page asked for the project to learn why it was closed: a 404
        # that Chromium reports on the console, and the only one expected.
        assert [e for e in bob.errors if "/api/projects/" not in e or "404" not in e] == []


# --- the committed bundle -------------------------------------------------------------


def test_committed_bundle_matches_the_sources() -> None:
    """``collab/static/demo`` is what ``demo/build.mjs`` makes of ``demo/src``."""
    for name in ("index.html", "app.js", "app.css", "app.js.gz", "favicon.svg"):
        assert (STATIC_DIR / name).is_file(), f"{name} is missing from {STATIC_DIR}"
    node_bin = shutil.which("node")
    if node_bin is None or not (REPO_ROOT / "demo" / "node_modules" / "esbuild").is_dir():
        pytest.skip("needs Node.js and demo/node_modules (cd demo && npm ci)")
    result = subprocess.run(
        [node_bin, "build.mjs", "--check"],
        cwd=REPO_ROOT / "demo",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
