"""The job bus: live job events and cancel requests, published and subscribed.

Events are hints, not data: pub/sub may drop them, so every output chunk
carries its offset in the stream and a reader repairs a gap, and finds the
end of a job it missed, from the jobs table (the source of truth).

``InMemoryJobBus`` serves one process (the embedded default);
``RedisJobBus`` carries events over Redis pub/sub channels
``<prefix>:job:<id>`` to whichever node holds the client's stream, and
cancel requests to every worker on one channel per queue,
``<prefix>:job-cancel:<queue>``; ``<prefix>`` is ``COLLAB_REDIS_PREFIX``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

CancelHandler = Callable[[str], None]
_RETRY_SECONDS = 1.0
_SUBSCRIBE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One event of a job.

    Attributes:
        kind: ``"status"``, ``"stdout"``, ``"stderr"`` or ``"done"``.
        status: The new status (``kind == "status"``).
        text: A piece of output (``stdout``/``stderr``).
        offset: Where ``text`` starts in its stream, in characters.
    """

    kind: str
    status: str = ""
    text: str = ""
    offset: int = 0

    def encode(self) -> str:
        """The wire form (JSON)."""
        return json.dumps(asdict(self))

    @classmethod
    def decode(cls, raw: str | bytes) -> JobEvent | None:
        """Parse the wire form; None when it is not a job event."""
        try:
            data = json.loads(raw)
            return cls(
                str(data["kind"]), str(data["status"]), str(data["text"]), int(data["offset"])
            )
        except (ValueError, KeyError, TypeError):
            return None


class Subscription(Protocol):
    """The events of one job, from the moment of subscribing."""

    async def get(self, seconds: float) -> JobEvent | None:
        """The next event, or None after ``seconds`` without one."""
        ...


class JobBus(Protocol):
    """Publishes job events and cancel requests."""

    async def publish(self, job_id: str, event: JobEvent) -> None:
        """Send ``event`` to the job's subscribers (best effort)."""
        ...

    def subscribe(self, job_id: str) -> AbstractAsyncContextManager[Subscription]:
        """Receive the job's events while the context is open."""
        ...

    async def request_cancel(self, job_id: str) -> None:
        """Ask whichever runner holds ``job_id`` to stop it."""
        ...

    def cancel_listener(self, handler: CancelHandler) -> AbstractAsyncContextManager[None]:
        """Call ``handler(job_id)`` for every cancel request while open."""
        ...


class _QueueSubscription:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[JobEvent] = asyncio.Queue()

    async def get(self, seconds: float) -> JobEvent | None:
        try:
            async with asyncio.timeout(seconds):
                return await self.queue.get()
        except TimeoutError:
            return None


class _SilentSubscription:
    """Stands in when Redis is down: the reader falls back to the database."""

    async def get(self, seconds: float) -> JobEvent | None:
        await asyncio.sleep(seconds)
        return None


class InMemoryJobBus:
    """Fan-out inside one process."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[_QueueSubscription]] = {}
        self._cancel_handlers: list[CancelHandler] = []

    async def publish(self, job_id: str, event: JobEvent) -> None:
        """Queue ``event`` for every subscriber of the job."""
        for subscription in self._subscribers.get(job_id, ()):
            subscription.queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(self, job_id: str) -> AsyncIterator[Subscription]:
        """Receive the job's events while the context is open."""
        subscription = _QueueSubscription()
        self._subscribers.setdefault(job_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._subscribers[job_id]
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[job_id]

    async def request_cancel(self, job_id: str) -> None:
        """Tell the local runner at once."""
        for handler in list(self._cancel_handlers):
            handler(job_id)

    @asynccontextmanager
    async def cancel_listener(self, handler: CancelHandler) -> AsyncIterator[None]:
        """Call ``handler`` for cancel requests while open."""
        self._cancel_handlers.append(handler)
        try:
            yield
        finally:
            self._cancel_handlers.remove(handler)


def job_channel(prefix: str, job_id: str) -> str:
    """The pub/sub channel of one job's events.

    Args:
        prefix: The deployment's Redis prefix (``COLLAB_REDIS_PREFIX``).
        job_id: The job.
    """
    return f"{prefix}:job:{job_id}"


def cancel_channel(prefix: str, queue_name: str) -> str:
    """The pub/sub channel of cancel requests for the workers of one queue.

    Args:
        prefix: The deployment's Redis prefix (``COLLAB_REDIS_PREFIX``).
        queue_name: The queue's stream.
    """
    # Per queue as well as per prefix: queues named explicitly
    # (COLLAB_JOB_QUEUE, as tests do) share a prefix but not their cancels.
    return f"{prefix}:job-cancel:{queue_name}"


class RedisJobBus:
    """Events over Redis pub/sub, for several nodes and workers.

    Args:
        client: The Redis connection pool.
        prefix: Starts every channel name (``COLLAB_REDIS_PREFIX``).
        queue_name: The queue whose workers receive the cancel requests.
    """

    def __init__(self, client: aioredis.Redis, *, prefix: str, queue_name: str) -> None:
        self._client = client
        self._prefix = prefix
        self._cancel_channel = cancel_channel(prefix, queue_name)

    async def publish(self, job_id: str, event: JobEvent) -> None:
        """Publish; a Redis failure is logged, readers repair from the database."""
        try:
            await self._client.publish(job_channel(self._prefix, job_id), event.encode())
        except (RedisError, OSError) as exc:
            logger.warning("could not publish an event of job %s: %s", job_id, exc)

    @asynccontextmanager
    async def subscribe(self, job_id: str) -> AsyncIterator[Subscription]:
        """Subscribe on a connection of our own until the context closes."""
        pubsub = self._client.pubsub()
        try:
            await _subscribed(pubsub, job_channel(self._prefix, job_id))
        except (RedisError, OSError) as exc:
            logger.warning("live events of job %s unavailable: %s", job_id, exc)
            await _close(pubsub)
            yield _SilentSubscription()
            return
        try:
            yield _RedisSubscription(pubsub)
        finally:
            await _close(pubsub)

    async def request_cancel(self, job_id: str) -> None:
        """Publish the request; runners also poll the flag in the database."""
        try:
            await self._client.publish(self._cancel_channel, job_id)
        except (RedisError, OSError) as exc:
            logger.warning("could not publish the cancel of job %s: %s", job_id, exc)

    @asynccontextmanager
    async def cancel_listener(self, handler: CancelHandler) -> AsyncIterator[None]:
        """Listen on a background task, reconnecting after failures."""
        stop = asyncio.Event()
        task = asyncio.create_task(self._listen_cancels(handler, stop))
        try:
            yield
        finally:
            # Not task.cancel(): redis-py 8 can swallow a CancelledError
            # raised inside a read. The loop checks ``stop`` every second.
            stop.set()
            await task

    async def _listen_cancels(self, handler: CancelHandler, stop: asyncio.Event) -> None:
        while not stop.is_set():
            pubsub = self._client.pubsub()
            try:
                await _subscribed(pubsub, self._cancel_channel)
                while not stop.is_set():
                    message = await pubsub.get_message(timeout=_RETRY_SECONDS)
                    if message is not None and message["type"] == "message":
                        handler(_text(message["data"]))
            except (RedisError, OSError) as exc:
                logger.warning("cancel channel lost (%s); resubscribing", exc)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_RETRY_SECONDS):
                        await stop.wait()
            finally:
                await _close(pubsub)


class _RedisSubscription:
    def __init__(self, pubsub: Any) -> None:
        self._pubsub = pubsub
        self._broken = False

    async def get(self, seconds: float) -> JobEvent | None:
        if self._broken:
            return await _SilentSubscription().get(seconds)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            try:
                message = await self._pubsub.get_message(timeout=left)
            except (RedisError, OSError) as exc:
                logger.warning("live job events interrupted: %s", exc)
                self._broken = True
                return None
            if message is not None and message["type"] == "message":
                return JobEvent.decode(message["data"])
        return None


async def _subscribed(pubsub: Any, channel: str) -> None:
    """Subscribe and wait for the server's confirmation.

    Pub/sub drops whatever is published before the subscription is active,
    so a reader must not read the database until this returns.
    """
    await pubsub.subscribe(channel)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _SUBSCRIBE_SECONDS
    # A deadline, not asyncio.timeout(): redis-py 8 can swallow the
    # cancellation that asyncio.timeout() relies on.
    while (left := deadline - loop.time()) > 0:
        reply = await pubsub.get_message(timeout=left)
        if reply is not None and reply["type"] == "subscribe":
            return
    raise TimeoutError(f"no confirmation of the subscription to {channel}")


async def _close(pubsub: Any) -> None:
    with contextlib.suppress(RedisError, OSError):
        await pubsub.aclose()


def _text(data: str | bytes) -> str:
    return data.decode() if isinstance(data, bytes) else data
