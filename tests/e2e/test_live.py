"""Live lists, invitations and shared runs in the demo, in headless Chromium.

These need server routes that a node may not have yet: the live event stream
``GET /api/events`` and the invitation routes. Each test skips (cleanly, with
the reason) when the node answers 404 for the route it needs.
"""

from __future__ import annotations

import aiohttp
import pytest
from playwright.async_api import Browser, Page

from tests.e2e.people import (
    WAIT_MS,
    Person,
    SharedDocument,
    api_json,
    expect,
    log_in_ui,
    register_api,
    register_in_ui,
    route_exists,
    token_of,
    wait_connected,
)
from tests.support.nodes import RunningNode

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

NO_RELOAD_MARK_JS = "() => { window.__sameDocument = true }"
SAME_DOCUMENT_JS = "() => window.__sameDocument === true"


async def require_route(
    http: aiohttp.ClientSession, node: RunningNode, method: str, path: str
) -> None:
    """Skip the test when the node does not serve ``method path`` yet."""
    if not await route_exists(http, node, method, path):
        pytest.skip(f"the server has no {method} {path} yet (404)")


async def mark_page(page: Page) -> None:
    """Mark the loaded page, to check later that nothing reloaded it."""
    await page.evaluate(NO_RELOAD_MARK_JS)


async def still_same_page(page: Page) -> bool:
    """Whether the page marked by :func:`mark_page` was never reloaded."""
    same: bool = await page.evaluate(SAME_DOCUMENT_JS)
    return same


async def test_lists_follow_shares_new_documents_and_deletions(
    browser: Browser, node: RunningNode
) -> None:
    async with aiohttp.ClientSession() as http:
        await require_route(http, node, "GET", "/api/events")
        await register_api(http, node, "alice@example.com", "Alice")
        await register_api(http, node, "bob@example.com", "Bob")
        bob = await Person.open(browser, node)
        await log_in_ui(bob, "bob@example.com", "Bob")
        await expect(bob.page.locator("#no-projects")).to_be_visible()
        await mark_page(bob.page)

        # Alice shares a project: it appears in Bob's list without a reload.
        alice = await token_of(http, node, "alice@example.com")
        status, project = await api_json(http, node, "POST", "/api/projects", alice, {"name": "P"})
        assert status == 201, project
        path = f"/api/projects/{project['id']}"
        member = {"email": "bob@example.com", "role": "editor"}
        await api_json(http, node, "POST", f"{path}/members", alice, member)
        link = bob.page.locator("#projects").get_by_role("link", name="P")
        await expect(link).to_be_visible(timeout=WAIT_MS)
        await link.click()

        # Two documents of one name appear, and can be told apart.
        docs = []
        for _ in range(2):
            body = {"name": "main.py", "language": "python"}
            status, doc = await api_json(http, node, "POST", f"{path}/documents", alice, body)
            assert status == 201, doc
            docs.append(doc)
        entries = bob.page.locator("#documents li")
        await expect(entries).to_have_count(2, timeout=WAIT_MS)
        labels = await entries.locator("a").all_text_contents()
        assert len(set(labels)) == 2, labels
        assert all(label.startswith("main.py") for label in labels)

        # A deletion disappears too.
        await api_json(http, node, "DELETE", f"/api/documents/{docs[0]['id']}", alice)
        await expect(entries).to_have_count(1, timeout=WAIT_MS)
        await expect(bob.page.locator(f"#documents li[data-id='{docs[1]['id']}']")).to_be_visible()
        assert await still_same_page(bob.page)
        assert bob.errors == []


async def test_invitation_link_joins_a_new_account(browser: Browser, node: RunningNode) -> None:
    async with aiohttp.ClientSession() as http:
        await require_route(http, node, "POST", "/api/projects/0/invites")
    alice = await Person.open(browser, node)
    await register_in_ui(alice, "alice@example.com", "Alice")
    await alice.page.get_by_label("New project name").fill("Invited")
    await alice.page.get_by_role("button", name="Create", exact=True).click()
    await expect(alice.page.locator("#documents-title")).to_have_text("Invited", timeout=WAIT_MS)

    form = alice.page.locator("#invite-form")
    await form.get_by_label("Invitation role").select_option("viewer")
    await form.get_by_role("button", name="Invite link").click()
    field = alice.page.get_by_label("Invitation link")
    await expect(field).to_be_visible(timeout=WAIT_MS)
    link = await field.input_value()
    assert "#invite=" in link
    await alice.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await alice.page.get_by_role("button", name="Copy").click()
    await expect(alice.page.locator("#toast")).to_contain_text("copied", timeout=WAIT_MS)
    assert await alice.page.evaluate("() => navigator.clipboard.readText()") == link

    # Carol opens the link, creates an account, and is in.
    carol = await Person.open(browser, node, hash_path=link.split("#", 1)[1])
    await expect(carol.page.locator("#auth-message")).to_contain_text("invited", timeout=WAIT_MS)
    assert "invite=" not in carol.page.url  # the token leaves the address bar
    await register_in_ui(carol, "carol@example.com", "Carol")
    await expect(carol.page.locator("#documents-title")).to_have_text("Invited", timeout=WAIT_MS)
    entry = carol.page.locator("#projects li", has_text="Invited")
    await expect(entry.locator(".role")).to_have_text("viewer")

    # A forged link is refused with a message, not a crash.
    await carol.page.goto(f"{node.url}/#invite=not-a-real-invitation-token")
    await expect(carol.page.locator("#toast")).to_contain_text("no longer valid", timeout=WAIT_MS)
    assert alice.errors == []
    assert [e for e in carol.errors if "/api/invites/" not in e] == []


async def test_everyone_in_the_document_follows_a_run(browser: Browser, node: RunningNode) -> None:
    async with aiohttp.ClientSession() as http:
        await require_route(http, node, "GET", "/api/events")
        shared = await SharedDocument.create(http, node)
    alice = await shared.open_as(browser, "alice@example.com", "Alice")
    bob = await shared.open_as(browser, "bob@example.com", "Bob")
    await alice.type_at_end("print('together')")
    await bob.wait_for_text("print('together')")

    await alice.page.get_by_role("button", name="Run").click()
    # Bob did not press anything: he sees who started it, its output and its end.
    await expect(bob.page.locator("#job-by")).to_have_text("run by Alice", timeout=WAIT_MS)
    await expect(bob.page.locator("#job-status")).to_have_attribute(
        "data-status", "succeeded", timeout=30_000
    )
    await expect(bob.page.locator("#output")).to_have_text("together\n")
    await expect(alice.page.locator("#job-by")).to_have_text("run by you")
    await wait_connected(bob)
    assert alice.errors == bob.errors == []
