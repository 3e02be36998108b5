"""The history panel in headless Chromium: two people, a rollback, a notice, the slider."""

from __future__ import annotations

from typing import Any

import aiohttp
from playwright.async_api import Browser

from tests.e2e.people import (
    WAIT_MS,
    Person,
    expect,
    log_in_ui,
    register_api,
    token_of,
    wait_connected,
)
from tests.support.nodes import RunningNode


async def post(http: aiohttp.ClientSession, url: str, token: str, body: Any) -> Any:
    async with http.post(url, json=body, headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 201, await r.text()
        return await r.json()


async def open_document(person: Person, email: str, name: str, hash_path: str) -> None:
    await log_in_ui(person, email, name)
    await person.page.evaluate("(path) => { location.hash = path }", hash_path)
    await wait_connected(person)
    await expect(person.page.locator("#history-slider")).to_be_visible(timeout=WAIT_MS)


async def test_rolling_back_an_author_from_the_panel(browser: Browser, node: RunningNode) -> None:
    async with aiohttp.ClientSession() as http:
        await register_api(http, node, "alice@example.com", "Alice")
        await register_api(http, node, "bob@example.com", "Bob")
        token = await token_of(http, node, "alice@example.com")
        project = await post(http, f"{node.url}/api/projects", token, {"name": "History"})
        base = f"{node.url}/api/projects/{project['id']}"
        await post(http, f"{base}/members", token, {"email": "bob@example.com", "role": "editor"})
        doc = await post(
            http, f"{base}/documents", token, {"name": "notes.txt", "language": "text"}
        )
    hash_path = f"#/projects/{project['id']}/documents/{doc['id']}"
    alice = await Person.open(browser, node)
    bob = await Person.open(browser, node)
    await open_document(alice, "alice@example.com", "Alice", hash_path)
    await open_document(bob, "bob@example.com", "Bob", hash_path)

    await alice.type_at_end("alpha")
    await bob.wait_for_text("alpha")
    await bob.type_at_end(" bravo")
    await alice.wait_for_text("alpha bravo")
    await alice.type_at_end(" charlie")
    await bob.wait_for_text("alpha bravo charlie")

    # The slider at 0 shows everything as inserted, attributed to its author.
    panel = alice.page.locator("#history")
    await panel.get_by_role("button", name="Refresh").click()
    await expect(panel.locator("#history-sessions li").first).to_be_visible(timeout=WAIT_MS)
    await alice.page.locator("#history-slider").fill("0")
    await expect(panel.locator("#history-seq")).to_contain_text("#0 of", timeout=WAIT_MS)
    bob_runs = panel.locator('#history-changes ins[title^="Bob ·"]')
    await expect(bob_runs.first).to_be_visible(timeout=WAIT_MS)
    await expect(panel.locator("#history-changes")).to_have_text("alpha bravo charlie")
    by_bob = await alice.page.evaluate(
        """() => Array.from(document.querySelectorAll('#history-changes ins'))
          .filter((run) => run.title.startsWith('Bob ·')).map((run) => run.textContent).join('')"""
    )
    assert by_bob == " bravo"

    # Alice rolls back Bob: both editors show her text alone, and Bob is told.
    await panel.get_by_role("button", name="Roll back Bob").click()
    await alice.wait_for_text("alpha charlie")
    await bob.wait_for_text("alpha charlie")
    notice = bob.page.locator("#history-notice")
    await expect(notice).to_contain_text("Alice rolled back changes", timeout=WAIT_MS)
    assert alice.errors == []
    assert bob.errors == []
