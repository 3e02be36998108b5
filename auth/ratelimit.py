"""Failure counters for login and registration, per client address and per email.

Fixed one-minute windows: a key that reached the limit is refused until its
window ends, and ``Retry-After`` says when that is. With Redis the counters
are shared by every node (``INCR`` and the first ``EXPIRE`` run atomically in
one Lua script, so a crash between them cannot leave a counter that never
expires); without it they live in this process, in a bounded table.
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

# KEYS[1]: counter; ARGV[1]: window in ms. Returns [count, ms left in window].
_HIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""
# KEYS: counters; ARGV[1]: limit. Returns the longest wait in ms (0: allowed).
_CHECK_SCRIPT = """
local wait = 0
for _, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  if count >= tonumber(ARGV[1]) then
    wait = math.max(wait, redis.call('PTTL', key))
  end
end
return wait
"""


class RateLimiter(Protocol):
    """Counts failures per key and refuses keys that reached the limit."""

    async def check(self, *keys: str) -> None:
        """Refuse the request if any key has reached the limit.

        Raises:
            RateLimitedError: with the seconds until the earliest retry may succeed.
        """
        ...

    async def hit(self, *keys: str) -> None:
        """Count one failure (or, for registration, one attempt) against each key."""
        ...


def create_rate_limiter(
    redis: aioredis.Redis | None, *, failures_per_minute: int, prefix: str | None = None
) -> RateLimiter:
    """The Redis-backed limiter when a client is given, else the in-process one.

    Args:
        redis: a shared Redis client, or None for a single node.
        failures_per_minute: how many failures a key may have in one window.
        prefix: Redis key prefix; :data:`KEY_PREFIX` when omitted.
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

    async def check(self, *keys: str) -> None:
        """See :meth:`RateLimiter.check`."""
        now = self._clock()
        waits = [
            ends - now
            for ends, count in (self._windows.get(key, (0.0, 0)) for key in keys)
            if ends > now and count >= self._limit
        ]
        if waits:
            raise RateLimitedError(max(1, math.ceil(max(waits))))

    async def hit(self, *keys: str) -> None:
        """See :meth:`RateLimiter.hit`."""
        now = self._clock()
        for key in keys:
            ends, count = self._windows.pop(key, (0.0, 0))
            if ends <= now:
                ends, count = now + WINDOW_SECONDS, 0
            self._windows[key] = (ends, count + 1)
        while len(self._windows) > self._max_keys:
            self._windows.popitem(last=False)


class RedisRateLimiter:
    """Fixed-window counters in Redis, shared by every node."""

    def __init__(self, redis: aioredis.Redis, limit: int, prefix: str) -> None:
        self._redis = redis
        self._limit = limit
        self._prefix = prefix
        self._hit = redis.register_script(_HIT_SCRIPT)
        self._check = redis.register_script(_CHECK_SCRIPT)

    async def check(self, *keys: str) -> None:
        """See :meth:`RateLimiter.check`."""
        wait_ms = int(
            await self._check(keys=[self._prefix + key for key in keys], args=[self._limit])
        )
        if wait_ms > 0:
            raise RateLimitedError(max(1, math.ceil(wait_ms / 1000)))

    async def hit(self, *keys: str) -> None:
        """See :meth:`RateLimiter.hit`."""
        for key in keys:
            await self._hit(keys=[self._prefix + key], args=[WINDOW_SECONDS * 1000])
