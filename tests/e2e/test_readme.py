"""The README's first hour: it links every docs page and shows a real, small screenshot."""

from __future__ import annotations

import re

from tests.support.nodes import REPO_ROOT

README = REPO_ROOT / "README.md"
SCREENSHOT = REPO_ROOT / "docs" / "images" / "two-editors.png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_readme_links_every_docs_page() -> None:
    text = README.read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\((docs/[\w-]+\.md)\)", text))
    pages = {f"docs/{page.name}" for page in (REPO_ROOT / "docs").glob("*.md")}
    assert pages - linked == set()


def test_readme_starts_with_running_and_opening_the_editor() -> None:
    text = README.read_text(encoding="utf-8")
    order = [
        text.index("make run"),
        text.index("http://127.0.0.1:8080"),
        text.index("](docs/images/two-editors.png)"),
        text.index("make test"),
        text.index("/api/docs"),
        text.index("```mermaid"),
    ]
    assert order == sorted(order)
    assert "COLLAB_PORT" in text
    assert "--port" in text


def test_screenshot_is_a_small_png() -> None:
    data = SCREENSHOT.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) < 300 * 1024
