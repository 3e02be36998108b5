"""The browser demo at ``GET /``, driven in headless Chromium against a real node.

A real ``collab serve`` process serves the committed bundle; Playwright drives
Debian's Chromium (never a downloaded browser). Two browser contexts are two
people with their own sessionStorage: they edit one document together, see
each other's cursors, run it, and one loses access.
"""

from __future__ import annotations

import shutil
import subprocess

import aiohttp
import pytest
from playwright.async_api import Browser

from collab.api.demo import STATIC_DIR
from tests.e2e.people import (
    WAIT_MS,
    Person,
    expect,
    log_in_ui,
    register_api,
    register_in_ui,
    token_of,
    wait_connected,
)
from tests.support.nodes import REPO_ROOT, RunningNode

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


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
