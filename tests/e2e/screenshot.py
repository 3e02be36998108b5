"""Take the README's screenshot: two people editing one document, with named cursors.

Runs a real node (embedded SQLite in a temporary directory) and Debian's
headless Chromium, exactly as the browser tests do::

    .venv/bin/python -m tests.e2e.screenshot docs/images/two-editors.png
"""

from __future__ import annotations

import asyncio
import base64
import sys
import tempfile
from pathlib import Path

import aiohttp
from playwright.async_api import Browser, ViewportSize, async_playwright

from tests.e2e.people import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SECRET,
    WAIT_MS,
    Person,
    SharedDocument,
    expect,
)
from tests.support.nodes import running_node

# What Alice has typed when Bob joins in; Bob then adds the last line.
ALICE_TEXT = '''def greet(name: str) -> str:
    """Say hello."""
    return f"Hello, {name}!"


for person in ["Alice", "Bob"]:
    print(greet(person))
'''
BOB_TEXT = "print('edited together')"
VIEWPORT: ViewportSize = {"width": 860, "height": 540}
MAX_BYTES = 300 * 1024


async def take(path: Path) -> None:
    """Write the screenshot to ``path``."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {"COLLAB_DATABASE_URL": f"sqlite:///{tmp}/x.db", "COLLAB_JWT_SECRET": SECRET}
        async with running_node(env) as node, aiohttp.ClientSession() as http:
            shared = await SharedDocument.create(http, node, name="greet.py", project="Greetings")
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
                )
                try:
                    alice = await shared.open_as(browser, "alice@example.com", "Alice")
                    await alice.page.set_viewport_size(VIEWPORT)
                    await alice.page.locator("#editor .cm-content").click()
                    await alice.page.keyboard.insert_text(ALICE_TEXT)
                    bob = await shared.open_as(browser, "bob@example.com", "Bob")
                    await bob.wait_for_text(ALICE_TEXT)
                    await bob.type_at_end(BOB_TEXT)
                    await alice.wait_for_text(ALICE_TEXT + BOB_TEXT)
                    await bob.page.set_viewport_size(VIEWPORT)
                    await move_cursor(alice, line=3)
                    await run_and_wait(alice)
                    for person, other in ((alice, "Bob"), (bob, "Alice")):
                        label = person.page.locator("#editor .cm-ySelectionInfo", has_text=other)
                        await expect(label).to_be_visible(timeout=WAIT_MS)
                    shots = [await alice.page.screenshot(), await bob.page.screenshot()]
                    await side_by_side(browser, shots, path)
                finally:
                    await browser.close()


async def side_by_side(browser: Browser, shots: list[bytes], path: Path) -> None:
    """Put Alice's and Bob's screens next to each other, captioned, into one PNG."""
    figures = "".join(
        f"<figure><figcaption>{name}'s browser</figcaption>"
        f'<img src="data:image/png;base64,{base64.b64encode(shot).decode()}"></figure>'
        for name, shot in zip(("Alice", "Bob"), shots, strict=True)
    )
    page = await browser.new_page(viewport={"width": 2 * VIEWPORT["width"] + 36, "height": 100})
    await page.set_content(
        "<style>body{margin:0;padding:8px;display:flex;gap:12px;background:#d0d7de;"
        "font:600 14px system-ui,sans-serif}figure{margin:0}figcaption{padding:0 0 6px 2px}"
        "img{display:block;border:1px solid #8c959f}</style>" + figures
    )
    await page.screenshot(path=str(path), full_page=True)
    await page.close()


async def move_cursor(person: Person, *, line: int) -> None:
    """Put the person's cursor at the end of ``line`` (1-based), so others see it there."""
    await person.page.locator("#editor .cm-line").nth(line - 1).click()
    await person.page.keyboard.press("End")


async def run_and_wait(person: Person) -> None:
    """Run the document and wait for its output."""
    await person.page.get_by_role("button", name="Run").click()
    await expect(person.page.locator("#job-status")).to_have_attribute(
        "data-status", "succeeded", timeout=30_000
    )


def main() -> None:
    """``python -m tests.e2e.screenshot OUT.png``."""
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m tests.e2e.screenshot OUT.png")
    out = Path(sys.argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(take(out))
    size = out.stat().st_size
    print(f"{out}: {size / 1024:.0f} KiB")
    if size > MAX_BYTES:
        raise SystemExit(f"{out} is larger than {MAX_BYTES // 1024} KiB")


if __name__ == "__main__":
    main()
