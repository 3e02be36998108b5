"""The OpenAPI document describes every route of accounts, projects, members and documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.auth.fixtures import Client
from tests.auth.fixtures import cheap_passwords as cheap_passwords
from tests.collab.test_authz_matrix import TABLE, Case


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The spec does not depend on the database: SQLite only, to stay fast."""
    return f"sqlite:///{tmp_path}/collab.db"


@pytest.fixture
async def spec(client: Client) -> dict[str, Any]:
    response = await client.get("/api/docs/openapi.json")
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


def _operation(spec: dict[str, Any], case: Case) -> dict[str, Any]:
    operation: dict[str, Any] = spec["paths"][case.path][case.method.lower()]
    return operation


@pytest.mark.parametrize("case", TABLE, ids=lambda case: f"{case.method} {case.path}")
async def test_route_is_documented(spec: dict[str, Any], case: Case) -> None:
    operation = _operation(spec, case)
    assert operation["summary"]
    assert operation["tags"]
    success = max(status for status in case.statuses if status < 300)
    assert str(success) in operation["responses"]
    if case.public:
        assert operation["security"] == []
    else:
        assert operation.get("security", spec["security"]) == [{"bearerAuth": []}]
    for name in ("project_id", "doc_id", "user_id"):
        if "{" + name + "}" in case.path:
            assert name in {p["name"] for p in operation["parameters"] if p["in"] == "path"}


@pytest.mark.parametrize(
    "case",
    [case for case in TABLE if case.method in ("POST", "PATCH")],
    ids=lambda case: f"{case.method} {case.path}",
)
async def test_request_bodies_have_schemas_and_examples(spec: dict[str, Any], case: Case) -> None:
    body = _operation(spec, case)["requestBody"]
    # Refresh and logout may send no body: the refresh cookie stands in.
    optional = case.path in ("/api/auth/refresh", "/api/auth/logout")
    assert body.get("required", False) is not optional
    ref = body["content"]["application/json"]["schema"]["$ref"]
    component = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert component["properties"]
    # Swagger UI builds the "Try it out" body from the properties' examples.
    for name, prop in component["properties"].items():
        assert "example" in prop, name


async def test_bearer_scheme_is_declared(spec: dict[str, Any]) -> None:
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
