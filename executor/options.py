"""Tuning of the job machinery: ``JobOptions`` and how ``COLLAB_JOB_*`` parse.

``collab.config.Settings.from_env`` is the one caller of ``from_env``: it
reads the environment once and hands the options down to the server's jobs
context and to ``collab worker``. Nothing in ``executor`` reads
``os.environ``; ``executor`` cannot import ``collab.config``, so the parsing
of these variables lives here.

=================================  =================  ==========================================
variable                           default            meaning
=================================  =================  ==========================================
``COLLAB_JOB_CONCURRENCY``         ``2``              jobs run at once by one node (embedded
                                                      runner) or one worker
``COLLAB_JOB_QUEUE``               ``<prefix>:jobs``  Redis stream of the queue; ``<prefix>``
                                                      is ``COLLAB_REDIS_PREFIX``
``COLLAB_JOB_LEASE_SECONDS``       ``30``             a running job's lease; a worker silent
                                                      that long is presumed dead
``COLLAB_JOB_HEARTBEAT_SECONDS``   ``5``              how often a runner renews its lease, saves
                                                      the output so far and checks for a cancel
``COLLAB_JOB_MAX_ATTEMPTS``        ``3``              runs a job may start before it ends
                                                      ``error``
``COLLAB_JOB_REAP_SECONDS``        ``5``              how often the reaper looks for expired
                                                      leases
``COLLAB_JOB_REQUEUE_SECONDS``     ``300``            a job queued this long is queued again, in
                                                      case its message was lost
``COLLAB_JOB_MAX_QUEUED``          ``1000``           more queued jobs than this: submit gives 503
=================================  =================  ==========================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class OptionsError(ValueError):
    """A ``COLLAB_JOB_*`` variable is malformed; the message names it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JobOptions:
    """How jobs are queued, leased and retried.

    Attributes:
        redis_prefix: Starts every Redis key and channel of the jobs
            (``COLLAB_REDIS_PREFIX``), so deployments can share one Redis.
        queue_name: The Redis stream of the queue.
        concurrency: Jobs run at once by one node or worker.
    """

    redis_prefix: str = "collab"
    queue_name: str = "collab:jobs"
    concurrency: int = 2
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 5.0
    max_attempts: int = 3
    reap_seconds: float = 5.0
    requeue_seconds: float = 300.0
    max_queued: int = 1000

    def __post_init__(self) -> None:
        if self.heartbeat_seconds * 2 > self.lease_seconds:
            raise OptionsError(
                "COLLAB_JOB_HEARTBEAT_SECONDS must be at most half of COLLAB_JOB_LEASE_SECONDS"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, redis_prefix: str = "collab") -> JobOptions:
        """Read the ``COLLAB_JOB_*`` variables; unset ones keep their defaults.

        Args:
            environ: The variables.
            redis_prefix: The deployment's Redis prefix; the queue is named
                after it unless ``COLLAB_JOB_QUEUE`` says otherwise.

        Raises:
            OptionsError: a value is malformed or out of range.
        """
        d = cls()
        return cls(
            redis_prefix=redis_prefix,
            queue_name=environ.get("COLLAB_JOB_QUEUE", "").strip()
            or default_queue_name(redis_prefix),
            concurrency=_integer(environ, "COLLAB_JOB_CONCURRENCY", d.concurrency),
            lease_seconds=_number(environ, "COLLAB_JOB_LEASE_SECONDS", d.lease_seconds),
            heartbeat_seconds=_number(environ, "COLLAB_JOB_HEARTBEAT_SECONDS", d.heartbeat_seconds),
            max_attempts=int(_number(environ, "COLLAB_JOB_MAX_ATTEMPTS", d.max_attempts)),
            reap_seconds=_number(environ, "COLLAB_JOB_REAP_SECONDS", d.reap_seconds),
            requeue_seconds=_number(environ, "COLLAB_JOB_REQUEUE_SECONDS", d.requeue_seconds),
            max_queued=int(_number(environ, "COLLAB_JOB_MAX_QUEUED", d.max_queued)),
        )


def default_queue_name(redis_prefix: str) -> str:
    """The queue's stream when ``COLLAB_JOB_QUEUE`` is unset: ``<prefix>:jobs``.

    Args:
        redis_prefix: The deployment's ``COLLAB_REDIS_PREFIX``.
    """
    return f"{redis_prefix}:jobs"


def _integer(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise OptionsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise OptionsError(f"{name} must be at least 1, got {raw!r}")
    return value


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise OptionsError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise OptionsError(f"{name} must be positive, got {raw!r}")
    return value
