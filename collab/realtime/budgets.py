"""Message budgets: token buckets per connection and per user.

A sender over its budget is slowed down, not disconnected: the endpoint
awaits :meth:`TokenBucket.spend` before handling its next message, so while
the bucket refills its messages wait in the connection's small inbox, the
socket stops being read once that is full, and TCP pushes back on the
client. A stock client that bursts thousands of edits therefore syncs a
little later instead of being closed and never reconnecting.
"""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    """Allow ``rate`` events a second with bursts up to ``burst``."""

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._stamp = time.monotonic()

    def take(self) -> bool:
        """Spend one token; False (and nothing spent) when none is left."""
        self._refill()
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def reserve(self) -> float:
        """Spend one token now, possibly on credit; return the seconds until it is paid.

        Going into debt (instead of polling until a token appears) keeps the
        order of waiting senders fair when several share one bucket.
        """
        self._refill()
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate

    async def spend(self) -> None:
        """Spend one token, waiting as long as the budget requires."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now


class UserBuckets:
    """One token bucket per connected user, shared by all their connections.

    A per-connection limit alone lets one account multiply its rate by
    opening more sockets. Buckets live while the user has a connection.
    """

    def __init__(self, rate: float, burst: float) -> None:
        self._rate = rate
        self._burst = burst
        self._buckets: dict[str, tuple[TokenBucket, int]] = {}

    def acquire(self, user_id: str) -> TokenBucket:
        """The user's bucket (created on their first connection)."""
        bucket, count = self._buckets.get(user_id, (None, 0))
        if bucket is None:
            bucket = TokenBucket(self._rate, self._burst)
        self._buckets[user_id] = (bucket, count + 1)
        return bucket

    def release(self, user_id: str) -> None:
        """One of the user's connections closed."""
        bucket, count = self._buckets[user_id]
        if count <= 1:
            del self._buckets[user_id]
        else:
            self._buckets[user_id] = (bucket, count - 1)
