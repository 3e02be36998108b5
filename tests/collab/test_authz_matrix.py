"""Who may call what: every route of accounts, projects, members and documents
against every kind of caller, from one table.

The table is checked against the router, so a route added without a row
here fails the suite. Statuses are the API's: anonymous 401,
non-member 404 (a project's existence never leaks), role too low 403.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from auth import routes as auth_routes
from collab.api import documents, members, projects
from tests.auth.fixtures import PASSWORD, Account, Client, Team, create_account, create_team
from tests.auth.fixtures import cheap_passwords as cheap_passwords

ACTORS = ("anonymous", "outsider", "viewer", "editor", "owner")
Body = Callable[[Client, Team, Account | None], Awaitable[dict[str, Any]]]


async def _no_body(client: Client, team: Team, actor: Account | None) -> dict[str, Any]:
    return {}


async def _register(client: Client, team: Team, actor: Account | None) -> dict[str, Any]:
    email = f"new-{uuid.uuid4().hex[:12]}@example.com"
    return {"email": email, "password": PASSWORD, "display_name": "New"}


async def _login(client: Client, team: Team, actor: Account | None) -> dict[str, Any]:
    return {"email": team.owner.email, "password": PASSWORD}


async def _fresh_refresh(client: Client, team: Team, actor: Account | None) -> dict[str, Any]:
    return {"refresh_token": (await create_account(client)).refresh_token}


async def _own_refresh(client: Client, team: Team, actor: Account | None) -> dict[str, Any]:
    return {"refresh_token": (actor or team.owner).refresh_token}


async def _project(client: Client, team: Team, actor: Account | None) -> dict[str, Any]:
    return {"name": "Another project", "description": "from the matrix"}


async def _rename(client: Client, team: Team, actor: Account | None) -> dict[str, Any]:
    return {"name": "Renamed"}


async def _new_member(client: Client, team: Team, actor: Account | None) -> dict[str, Any]:
    return {"email": (await create_account(client, "newbie")).email, "role": "viewer"}


async def _demote(client: Client, team: Team, actor: Account | None) -> dict[str, Any]:
    return {"role": "viewer"}


async def _document(client: Client, team: Team, actor: Account | None) -> dict[str, Any]:
    return {"name": "other.py", "language": "python"}


@dataclass(frozen=True)
class Case:
    """One route: what to send, and the status each kind of caller gets."""

    method: str
    path: str
    statuses: tuple[int, int, int, int, int]  # in the order of ACTORS
    body: Body = field(default=_no_body)

    @property
    def public(self) -> bool:
        """Reachable without a token."""
        return self.statuses[0] != 401


# Member routes act on ``team.other`` (an editor who is not the caller).
TABLE = [
    Case("POST", "/api/auth/register", (201, 201, 201, 201, 201), _register),
    Case("POST", "/api/auth/login", (200, 200, 200, 200, 200), _login),
    Case("POST", "/api/auth/refresh", (200, 200, 200, 200, 200), _fresh_refresh),
    Case("POST", "/api/auth/logout", (401, 204, 204, 204, 204), _own_refresh),
    Case("GET", "/api/auth/me", (401, 200, 200, 200, 200)),
    Case("POST", "/api/projects", (401, 201, 201, 201, 201), _project),
    Case("GET", "/api/projects", (401, 200, 200, 200, 200)),
    Case("GET", "/api/projects/{project_id}", (401, 404, 200, 200, 200)),
    Case("PATCH", "/api/projects/{project_id}", (401, 404, 403, 403, 200), _rename),
    Case("DELETE", "/api/projects/{project_id}", (401, 404, 403, 403, 204)),
    Case("GET", "/api/projects/{project_id}/members", (401, 404, 200, 200, 200)),
    Case("POST", "/api/projects/{project_id}/members", (401, 404, 403, 403, 201), _new_member),
    Case(
        "PATCH", "/api/projects/{project_id}/members/{user_id}", (401, 404, 403, 403, 200), _demote
    ),
    Case("DELETE", "/api/projects/{project_id}/members/{user_id}", (401, 404, 403, 403, 204)),
    Case("POST", "/api/projects/{project_id}/documents", (401, 404, 403, 201, 201), _document),
    Case("GET", "/api/projects/{project_id}/documents", (401, 404, 200, 200, 200)),
    Case("GET", "/api/documents/{doc_id}", (401, 404, 200, 200, 200)),
    Case("PATCH", "/api/documents/{doc_id}", (401, 404, 403, 200, 200), _rename),
    Case("DELETE", "/api/documents/{doc_id}", (401, 404, 403, 403, 204)),
]
OUR_ROUTES = [auth_routes.routes, projects.routes, members.routes, documents.routes]


def _route_keys(table: web.RouteTableDef) -> set[tuple[str, str]]:
    return {(r.method, r.path) for r in table if isinstance(r, web.RouteDef)}


def test_table_covers_every_route_we_register() -> None:
    registered = set().union(*(_route_keys(table) for table in OUR_ROUTES))
    tabled = {(case.method, case.path) for case in TABLE}
    assert registered == tabled
    assert len(tabled) == len(TABLE), "a route appears twice in the table"


async def test_table_routes_are_in_the_app_router(client: Client) -> None:
    served = {
        (route.method, route.resource.canonical)
        for route in client.app.router.routes()
        if route.resource is not None
    }
    missing = {(case.method, case.path) for case in TABLE} - served
    assert not missing


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("case", TABLE, ids=lambda case: f"{case.method} {case.path}")
async def test_authorization(client: Client, case: Case, actor: str) -> None:
    team = await create_team(client)
    account = team.actor(actor)
    path = case.path.format(project_id=team.project_id, doc_id=team.doc_id, user_id=team.other.id)
    body = await case.body(client, team, account)
    response = await client.request(
        case.method,
        path,
        json=body if case.method in ("POST", "PATCH") else None,
        headers=account.headers if account else {},
    )
    expected = case.statuses[ACTORS.index(actor)]
    assert response.status == expected, await response.text()
    if expected >= 400:
        error = (await response.json())["error"]
        assert error["code"] == {401: "unauthorized", 403: "forbidden", 404: "not_found"}[expected]
    if expected == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_no_api_route_is_public_by_accident(client: Client) -> None:
    """Every /api route (ours and other modules') needs a token unless the table says not."""
    public = {(case.method, case.path) for case in TABLE if case.public}
    checked = 0
    for route in client.app.router.routes():
        resource = route.resource
        if resource is None or route.method in ("HEAD", "OPTIONS", "*"):
            continue
        path = resource.canonical
        if not path.startswith("/api/") or path.startswith("/api/docs"):
            continue
        if (route.method, path) in public:
            continue
        url = path.replace("{", "").replace("}", "")  # any value will do: auth comes first
        response = await client.request(route.method, url)
        assert response.status == 401, f"{route.method} {path}: {response.status}"
        checked += 1
    assert checked >= len(TABLE) - len(public)
