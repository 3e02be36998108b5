"""Every history route is in the OpenAPI document with its schemas and examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Client

ROUTES = [
    ("get", "/api/documents/{doc_id}/activity", None),
    ("get", "/api/documents/{doc_id}/changeset", None),
    ("post", "/api/documents/{doc_id}/rollback", "application/json"),
    ("post", "/api/documents/{doc_id}/edits", "application/json"),
    ("post", "/api/documents/{doc_id}/updates", "application/octet-stream"),
    ("post", "/api/documents/{doc_id}/merge", "application/json"),
    ("get", "/api/projects/{project_id}/trash", None),
    ("post", "/api/documents/{doc_id}/undelete", None),
    ("delete", "/api/documents/{doc_id}", None),
    ("get", "/api/documents/{doc_id}/history", None),
]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The spec does not depend on the database: SQLite only."""
    return f"sqlite:///{tmp_path}/collab.db"


@pytest.fixture
async def spec(client: Client) -> dict[str, Any]:
    response = await client.get("/api/docs/openapi.json")
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


def component(spec: dict[str, Any], ref: str) -> dict[str, Any]:
    found: dict[str, Any] = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return found


def has_example(spec: dict[str, Any], schema: dict[str, Any], depth: int = 0) -> bool:
    """Some property (or nested schema) carries an example."""
    for prop in schema.get("properties", {}).values():
        if "example" in prop or "example" in prop.get("items", {}):
            return True
        ref = prop.get("$ref") or prop.get("items", {}).get("$ref")
        if ref and depth < 3 and has_example(spec, component(spec, ref), depth + 1):
            return True
    return False


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=lambda v: str(v))
async def test_route_is_documented(
    spec: dict[str, Any], method: str, path: str, body: str | None
) -> None:
    operation = spec["paths"][path][method]
    assert operation["summary"] and operation["tags"]
    success = [code for code in operation["responses"] if code.startswith("2")]
    assert success, operation["responses"]
    response = operation["responses"][success[0]]
    if success[0] != "204":
        schema = response["content"]["application/json"]["schema"]
        assert has_example(spec, component(spec, schema["$ref"])), path
    path_params = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
    assert {name for name in ("doc_id", "project_id") if "{" + name + "}" in path} <= path_params
    if body is not None:
        request = operation["requestBody"]
        assert request["required"] is True
        content = request["content"][body]
        if body == "application/json":
            assert has_example(spec, component(spec, content["schema"]["$ref"])), path
