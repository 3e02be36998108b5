"""Request body examples for the OpenAPI document, one per variant of each body.

Swagger UI offers these in "Try it out". Each one is accepted by the server
as it stands once the ids in it name real objects (``PROJECT_ID`` and
``DOCUMENT_ID`` are placeholders, as are the path's parameters); a test
posts every one of them. The refresh and logout examples are empty: in a
browser the session cookies set by register and login stand in.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp_apigami.constants import SWAGGER_DICT

PROJECT_ID = "0b6f4e0c2d7a4f3b9a8e1c5d7f9b2a4c"
DOCUMENT_ID = "5c2e9d1a7b3f4e6c8d0a1b2c3d4e5f60"
FORK_ID = "9e8d7c6b5a4f4e3d2c1b0a9f8e7d6c5b"
EMAIL = "ada@example.com"
PASSWORD = "correct horse battery staple"  # noqa: S105 - a documentation example

Example = dict[str, Any]
# (METHOD, path) -> {name: (summary, value)}
EXAMPLES: dict[tuple[str, str], dict[str, tuple[str, Example]]] = {
    ("POST", "/api/auth/register"): {
        "account": (
            "A new account",
            {"email": EMAIL, "password": PASSWORD, "display_name": "Ada Lovelace"},
        )
    },
    ("POST", "/api/auth/login"): {
        "password": ("Email and password", {"email": EMAIL, "password": PASSWORD})
    },
    ("POST", "/api/auth/refresh"): {
        "cookie": ("Use the collab_refresh cookie (browsers)", {}),
    },
    ("POST", "/api/auth/logout"): {
        "cookie": ("End the session of the collab_refresh cookie (browsers)", {}),
    },
    ("POST", "/api/projects"): {
        "project": ("A project", {"name": "Compilers", "description": "Homework"})
    },
    ("PATCH", "/api/projects/{project_id}"): {"rename": ("A new name", {"name": "Compilers 2"})},
    ("POST", "/api/projects/{project_id}/members"): {
        "member": ("Add by email", {"email": "grace@example.com", "role": "editor"})
    },
    ("PATCH", "/api/projects/{project_id}/members/{user_id}"): {
        "demote": ("Make a viewer", {"role": "viewer"})
    },
    ("POST", "/api/projects/{project_id}/invites"): {
        "link": ("A link anyone can use once", {"role": "viewer", "expires_in_hours": 24}),
        "email": (
            "For one email address",
            {"role": "editor", "email": "grace@example.com", "expires_in_hours": 72},
        ),
    },
    ("POST", "/api/projects/{project_id}/documents"): {
        "python": ("A Python file", {"name": "main.py", "language": "python"})
    },
    ("PATCH", "/api/documents/{doc_id}"): {"rename": ("A new name", {"name": "app.py"})},
    ("POST", "/api/documents/{doc_id}/restore"): {
        "empty": ("Back to the empty document", {"seq": 0})
    },
    ("POST", "/api/documents/{doc_id}/fork"): {
        "copy": ("A copy of the current text", {"name": "main (copy).py"})
    },
    ("POST", "/api/documents/{doc_id}/edits"): {
        "splice": (
            "Insert a line at the start, labelled as a bot's",
            {"edits": [{"index": 0, "delete": 0, "insert": "# checked\n"}], "source": "bot:lint"},
        ),
        "older": (
            "Positions in the text as it was at seq 1, merged with what came after",
            {"edits": [{"index": 0, "delete": 0, "insert": "# from seq 1\n"}], "base_seq": 1},
        ),
    },
    ("POST", "/api/documents/{doc_id}/rollback"): {
        "source": ("Undo everything a bot wrote", {"source": "bot:lint"}),
        "range": ("Undo the events after seq 1", {"after_seq": 1}),
    },
    ("POST", "/api/documents/{doc_id}/merge"): {
        "fork": ("Bring a fork's changes back", {"from_document_id": FORK_ID}),
    },
    ("POST", "/api/jobs"): {
        "document": ("Run a document's current text", {"document_id": DOCUMENT_ID}),
        "inline": (
            "Run source code in a project",
            {
                "project_id": PROJECT_ID,
                "language": "python",
                "source": "print(input().upper())",
                "stdin": "hello",
                "timeout_ms": 5000,
            },
        ),
    },
}


# Binary bodies: Swagger UI sends a file; the description says what to put in it.
RAW_UPDATE_DESCRIPTION = (
    "A Yjs update as `Y.encodeStateAsUpdate` or an `update` event produces it. Two zero"
    " bytes (`00 00`) are the empty update: the answer is then `{seq: null}`."
)


def add_examples(spec: dict[str, Any]) -> None:
    """Put :data:`EXAMPLES` into the request bodies of ``spec`` (in place)."""
    raw = spec.get("paths", {}).get("/api/documents/{doc_id}/updates", {}).get("post")
    if raw is not None and "requestBody" in raw:
        raw["requestBody"]["description"] = RAW_UPDATE_DESCRIPTION
    for (method, path), examples in EXAMPLES.items():
        operation = spec.get("paths", {}).get(path, {}).get(method.lower())
        if operation is None or "requestBody" not in operation:
            continue
        media = (
            operation["requestBody"].setdefault("content", {}).setdefault("application/json", {})
        )
        media["examples"] = {
            name: {"summary": summary, "value": value}
            for name, (summary, value) in examples.items()
        }


async def complete_openapi(app: web.Application) -> None:
    """``on_startup``, after the document is generated: the request examples."""
    spec: dict[str, Any] = app[SWAGGER_DICT]
    add_examples(spec)
