"""Message budgets: token buckets per connection and per user."""

from __future__ import annotations

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
        """Spend one token; False when none is left."""
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


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
