"""Tell open connections that access changed (filled in by the real-time layer).

Routes that remove or demote a member, or delete a document or project, call
these after their transaction commits.
"""

from __future__ import annotations

from aiohttp import web


async def access_changed(app: web.Application, project_id: str, user_id: str) -> None:
    """A member of ``project_id`` was removed or had their role changed."""


async def documents_deleted(app: web.Application, doc_ids: list[str]) -> None:
    """These documents no longer exist."""
