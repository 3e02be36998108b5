"""The application factory: state, middlewares, routes and resource lifetimes."""

from __future__ import annotations

import asyncio
import functools
import logging
import weakref
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from aiohttp import web
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from auth import routes as auth_routes
from auth.keys import RATE_LIMITER, TOKEN_SIGNER
from auth.middleware import auth_middleware
from auth.ratelimit import create_rate_limiter
from auth.signing_key import load_signing_key
from auth.tokens import TokenSigner
from collab.api import (
    activity,
    changeset,
    content,
    documents,
    events,
    feed,
    history,
    invites,
    members,
    merge,
    ops,
    projects,
    rollback,
    trash,
    versions,
    writes,
)
from collab.api.demo import setup_demo
from collab.api.examples import complete_openapi
from collab.api.feed import close_feeds
from collab.api.history_cache import HISTORY_CACHE, HistoryCache
from collab.api.openapi import setup_openapi
from collab.config import Settings
from collab.forwarded import forwarded_middleware
from collab.keys import READINESS_CHECKS, REDIS, SETTINGS
from collab.live.lifecycle import close_live_streams, live_ctx, publish
from collab.metrics import metrics_handler
from collab.realtime.budgets import UserBuckets
from collab.realtime.endpoint import close_websockets, ws_handler
from collab.realtime.keys import CHANGE_SIGNALS, USER_BUCKETS, WEBSOCKETS
from collab.realtime.lifecycle import rooms_ctx
from collab.realtime.signals import ChangeSignals
from eventstore import apply_migrations, open_database
from eventstore.keys import DATABASE
from executor import routes as job_routes
from executor.announce import JobAnnouncer
from executor.context import jobs_ctx
from executor.keys import JOB_ANNOUNCER, STREAMS_CLOSING
from executor.routes import close_job_streams
from webcore.middlewares import error_middleware, request_id_middleware
from webcore.origins import (
    ORIGIN_POLICY,
    OriginPolicy,
    add_cors_headers,
    cors_preflight_middleware,
)
from webcore.validation import validation_middleware

logger = logging.getLogger(__name__)


def create_app(settings: Settings) -> web.Application:
    """Build the application; nothing is connected until startup."""
    app = web.Application(
        middlewares=[
            request_id_middleware,
            error_middleware,
            forwarded_middleware,
            cors_preflight_middleware,
            auth_middleware,
            validation_middleware,
        ],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[ORIGIN_POLICY] = OriginPolicy(settings.allowed_origins)
    app.on_response_prepare.append(add_cors_headers)
    app[WEBSOCKETS] = weakref.WeakSet()
    # A user's connections together may send twice what one connection may.
    app[USER_BUCKETS] = UserBuckets(2 * settings.updates_per_second, 2 * settings.update_burst)
    app[READINESS_CHECKS] = []
    app[CHANGE_SIGNALS] = ChangeSignals()
    app[HISTORY_CACHE] = HistoryCache()
    app[TOKEN_SIGNER] = TokenSigner(
        load_signing_key(settings.jwt_secret, settings.data_dir),
        access_ttl=settings.access_token_ttl,
        refresh_ttl=settings.refresh_token_ttl,
    )

    # Started in this order, cleaned up in reverse: everything that writes
    # stops before the database closes, which closes last.
    app.cleanup_ctx.append(database_ctx)
    if settings.redis_url:
        app.cleanup_ctx.append(redis_ctx)
    app.cleanup_ctx.append(rate_limiter_ctx)
    app.cleanup_ctx.append(live_ctx)
    app.cleanup_ctx.append(jobs_ctx(settings, readiness_checks=READINESS_CHECKS))
    app.cleanup_ctx.append(rooms_ctx)
    app.cleanup_ctx.append(trash.trash_purge_ctx)
    app.on_shutdown.append(close_websockets)
    app.on_shutdown.append(close_feeds)
    app.on_shutdown.append(close_live_streams)
    app[STREAMS_CLOSING] = asyncio.Event()
    app[JOB_ANNOUNCER] = JobAnnouncer(functools.partial(publish, app))
    app.on_shutdown.append(close_job_streams)

    app.add_routes(ops.routes)
    app.router.add_get("/metrics", metrics_handler)
    app.add_routes(auth_routes.routes)
    app.add_routes(projects.routes)
    app.add_routes(members.routes)
    app.add_routes(invites.routes)
    app.add_routes(documents.routes)
    app.add_routes(content.routes)
    app.add_routes(history.routes)
    app.add_routes(versions.routes)
    app.add_routes(activity.routes)
    app.add_routes(changeset.routes)
    app.add_routes(rollback.routes)
    app.add_routes(writes.routes)
    app.add_routes(merge.routes)
    app.add_routes(trash.routes)
    app.add_routes(feed.routes)
    app.add_routes(events.routes)
    app.add_routes(job_routes.routes)
    app.router.add_get("/ws/{doc_id}", ws_handler, name="websocket")
    setup_demo(app)
    setup_openapi(app)
    app.on_startup.append(complete_openapi)  # after the document is generated
    return app


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the database and bring its schema up to date."""
    async with open_database(app[SETTINGS].database_url) as db:
        applied = await apply_migrations(db)
        if applied:
            logger.info("database migrated to version %d", applied[-1])
        app[DATABASE] = db
        yield


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """One Redis client for relay, rate limits and jobs."""
    url = app[SETTINGS].redis_url
    assert url is not None
    # Retries let a command ride over a pooled connection that died while
    # Redis was away, instead of failing once after it is back.
    client = aioredis.from_url(
        url,
        socket_connect_timeout=2,
        socket_timeout=5,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    app[REDIS] = client
    try:
        yield
    finally:
        await client.aclose()


async def rate_limiter_ctx(app: web.Application) -> AsyncIterator[None]:
    """Login/register limits: shared through Redis when configured, else in-process."""
    settings = app[SETTINGS]
    app[RATE_LIMITER] = create_rate_limiter(
        app.get(REDIS),
        failures_per_minute=settings.auth_failures_per_minute,
        prefix=f"{settings.redis_prefix}:rl:",
    )
    yield
