"""Attempt counters for login and registration, per client address and per email.

Fixed one-minute windows. An attempt is counted *before* the password is
checked (:meth:`RateLimiter.acquire`), so a burst of concurrent guesses
cannot all slip past a check that has not seen the others yet; a login that
succeeds is given back (:meth:`RateLimiter.release`), so only failures use
up the budget. With Redis the counters are shared by every node, and each
update is one Lua script (the counter and its expiry can never be split by
a crash); without Redis they live in this process, in a bounded table.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis

from auth.errors import RateLimitedError

WINDOW_SECONDS = 60
# Keys live under this prefix in Redis; tests swap it for a unique one.
KEY_PREFIX = "collab:rl:"
# The in-process table forgets the oldest keys beyond this many, so a flood of
# distinct emails or addresses cannot grow memory without bound.
MAX_LOCAL_KEYS = 100_000

# KEYS: counters; ARGV[1]: limit, ARGV[2]: window in ms.
# Counts one attempt on every key; returns the longest wait in ms of a key
# now over the limit (0: the attempt may go ahead).
_ACQUIRE_SCRIPT = """
local wait = 0
for _, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    redis.call('PEXPIRE', key, ARGV[2])
    ttl = tonumber(ARGV[2])
  end
  if count > tonumber(ARGV[1]) then
    wait = math.max(wait, ttl)
  end
end
return wait
"""
# KEYS: counters. Gives one attempt back on every key that still exists.
_RELEASE_SCRIPT = """
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then
    redis.call('DECR', key)
  end
end
return 0
"""


class RateLimiter(Protocol):
    """Counts attempts per key and refuses keys over the limit."""

    async def acquire(self, *keys: str) -> None:
        """Count one attempt against each key.

        Raises:
            RateLimitedError: a key is over the limit; ``retry_after`` says
                when its window ends.
        """
        ...

    async def release(self, *keys: str) -> None:
        """Give back an attempt that turned out well (a successful login)."""
        ...


def create_rate_limiter(
    redis: aioredis.Redis | None, *, failures_per_minute: int, prefix: str | None = None
) -> RateLimiter:
    """The Redis-backed limiter when a client is given, else the in-process one.

    Args:
        redis: a shared Redis client, or None for a single node.
        failures_per_minute: how many attempts a key may use in one window.
        prefix: Redis key prefix; :data:`KEY_PREFIX` when omitted.

    Raises:
        ValueError: ``failures_per_minute`` is below 1.
    """
    if failures_per_minute < 1:
        raise ValueError("failures_per_minute must be at least 1")
    if redis is None:
        return LocalRateLimiter(failures_per_minute)
    return RedisRateLimiter(redis, failures_per_minute, prefix or KEY_PREFIX)


class LocalRateLimiter:
    """Fixed-window counters in this process."""

    def __init__(
        self,
        limit: int,
        *,
        max_keys: int = MAX_LOCAL_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._max_keys = max_keys
        self._clock = clock
        # key -> (window end, count); oldest insertion first for eviction.
        self._windows: OrderedDict[str, tuple[float, int]] = OrderedDict()

    async def acquire(self, *keys: str) -> None:
        """See :meth:`RateLimiter.acquire`."""
        now = self._clock()
        waits = []
        for key in keys:
            ends, count = self._windows.pop(key, (0.0, 0))
            if ends <= now:
                ends, count = now + WINDOW_SECONDS, 0
            self._windows[key] = (ends, count + 1)
            if count + 1 > self._limit:
                waits.append(ends - now)
        while len(self._windows) > self._max_keys:
            self._windows.popitem(last=False)
        if waits:
            raise RateLimitedError(max(1, math.ceil(max(waits))))

    async def release(self, *keys: str) -> None:
        """See :meth:`RateLimiter.release`."""
        for key in keys:
            window = self._windows.get(key)
            if window is not None and window[1] > 0:
                self._windows[key] = (window[0], window[1] - 1)


class RedisRateLimiter:
    """Fixed-window counters in Redis, shared by every node."""

    def __init__(self, redis: aioredis.Redis, limit: int, prefix: str) -> None:
        self._limit = limit
        self._prefix = prefix
        self._acquire = redis.register_script(_ACQUIRE_SCRIPT)
        self._release = redis.register_script(_RELEASE_SCRIPT)

    async def acquire(self, *keys: str) -> None:
        """See :meth:`RateLimiter.acquire`."""
        wait_ms = int(
            await self._acquire(
                keys=[self._prefix + key for key in keys],
                args=[self._limit, WINDOW_SECONDS * 1000],
            )
        )
        if wait_ms > 0:
            raise RateLimitedError(max(1, math.ceil(wait_ms / 1000)))

    async def release(self, *keys: str) -> None:
        """See :meth:`RateLimiter.release`."""
        await self._release(keys=[self._prefix + key for key in keys])
