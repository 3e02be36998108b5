"""The demo's keyboard run, offline state and edits kept in the browser, in headless Chromium.

Ctrl+Enter runs the document without touching its text; going offline shows
at once, with a count of the edits the server has not received; and edits
made offline survive closing the tab (y-indexeddb), reaching the server when
the document is opened again online.
"""

from __future__ import annotations

import aiohttp
import pytest
from playwright.async_api import Browser, Page

from tests.e2e.people import (
    WAIT_MS,
    Person,
    SharedDocument,
    expect,
    log_in_ui,
    token_of,
    wait_connected,
    wait_server_text,
)
from tests.support.nodes import RunningNode

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

# Whether the page's IndexedDB copy of a document holds an update containing
# `needle` (text inserted in one go is one update, stored as UTF-8).
KEPT_IN_BROWSER_JS = """async ([name, needle]) => {
  const request = (r) => new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result)
    r.onerror = () => reject(r.error)
  })
  const db = await request(indexedDB.open(name))
  try {
    const updates = await request(db.transaction('updates').objectStore('updates').getAll())
    const bytes = new TextEncoder().encode(needle)
    const contains = (u) => {
      outer: for (let i = 0; i + bytes.length <= u.length; i++) {
        for (let j = 0; j < bytes.length; j++) if (u[i + j] !== bytes[j]) continue outer
        return true
      }
      return false
    }
    return updates.some(contains)
  } finally {
    db.close()
  }
}"""


async def run_with_keyboard(person: Person) -> None:
    """Press Ctrl+Enter in the editor and wait for that run to succeed."""
    status = person.page.locator("#job-status")
    before = await status.get_attribute("data-job-id")
    await person.page.locator("#editor .cm-content").press("Control+Enter")
    await person.page.wait_for_function(
        "(before) => { const s = document.querySelector('#job-status');"
        " return s.dataset.jobId && s.dataset.jobId !== before }",
        arg=before,
        timeout=WAIT_MS,
    )
    await expect(status).to_have_attribute("data-status", "succeeded", timeout=30_000)


async def user_id(page: Page) -> str:
    """The signed-in user's id, from the page's session."""
    found: str = await page.evaluate(
        "() => JSON.parse(sessionStorage.getItem('collab.session')).user.id"
    )
    return found


async def test_ctrl_enter_runs_without_changing_the_text(
    browser: Browser, node: RunningNode
) -> None:
    async with aiohttp.ClientSession() as http:
        shared = await SharedDocument.create(http, node)
        alice = await shared.open_as(browser, "alice@example.com", "Alice")
        bob = await shared.open_as(browser, "bob@example.com", "Bob")
        text = "print('hi')"
        await alice.type_at_end(text)
        await bob.wait_for_text(text)
        token = await token_of(http, node, "alice@example.com")
        await wait_server_text(http, node, token, shared.document_id, text)

        for _ in range(3):
            await run_with_keyboard(alice)
            assert await alice.page.locator("#output").text_content() == "hi\n"

        assert await alice.editor_text() == text
        assert await bob.editor_text() == text
        await wait_server_text(http, node, token, shared.document_id, text)
        assert alice.errors == bob.errors == []


async def test_offline_shows_at_once_with_the_unsaved_edits(
    browser: Browser, node: RunningNode
) -> None:
    async with aiohttp.ClientSession() as http:
        shared = await SharedDocument.create(http, node)
        alice = await shared.open_as(browser, "alice@example.com", "Alice")
        bob = await shared.open_as(browser, "bob@example.com", "Bob")
        conn = alice.page.locator("#conn")

        await alice.context.set_offline(True)
        # The browser's offline event, not the provider's 30 s message timeout.
        await expect(conn).to_have_attribute("data-state", "offline", timeout=1_000)
        await alice.type_at_end("abc")
        await expect(conn).to_contain_text("3 edits not yet saved", timeout=WAIT_MS)
        await expect(conn).to_have_attribute("data-pending", "3")
        assert await bob.editor_text() == ""

        await alice.context.set_offline(False)
        await wait_connected(alice)
        await expect(conn).to_have_attribute("data-pending", "0")
        await expect(conn).not_to_contain_text("not yet saved")
        await bob.wait_for_text("abc")
        token = await token_of(http, node, "bob@example.com")
        await wait_server_text(http, node, token, shared.document_id, "abc")
        assert alice.errors == bob.errors == []


async def test_offline_edits_survive_closing_the_tab(browser: Browser, node: RunningNode) -> None:
    async with aiohttp.ClientSession() as http:
        shared = await SharedDocument.create(http, node)
        alice = await shared.open_as(browser, "alice@example.com", "Alice")
        store = f"collab.{await user_id(alice.page)}.{shared.document_id}"

        await alice.context.set_offline(True)
        await expect(alice.page.locator("#conn")).to_have_attribute("data-state", "offline")
        await alice.page.locator("#editor .cm-content").click()
        await alice.page.keyboard.insert_text("kept while offline")
        await expect(alice.page.locator("#conn")).to_contain_text("1 edit not yet saved")
        await alice.page.wait_for_function(
            KEPT_IN_BROWSER_JS, arg=[store, "kept while offline"], timeout=WAIT_MS
        )
        await alice.page.close()

        # Same browser, new tab, back online: sign in again (the session is
        # per tab) and open the document; the kept edit reaches the server.
        await alice.context.set_offline(False)
        page = await alice.context.new_page()
        again = Person(alice.context, page)
        await page.goto(shared.url)
        await log_in_ui(again, "alice@example.com", "Alice")
        await wait_connected(again)
        await again.wait_for_text("kept while offline")
        token = await token_of(http, node, "alice@example.com")
        await wait_server_text(http, node, token, shared.document_id, "kept while offline")
        await expect(page.locator("#conn")).to_have_attribute("data-pending", "0")
        assert again.errors == []
