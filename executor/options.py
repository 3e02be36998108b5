"""Tuning of the job machinery, read from ``COLLAB_JOB_*`` variables.

``executor`` cannot import ``collab.config``, so these few knobs are read
here, by the server's jobs context and by ``collab worker`` alike:

=================================  =============  =============================================
variable                           default        meaning
=================================  =============  =============================================
``COLLAB_JOB_QUEUE``               ``collab:jobs``  Redis stream (and cancel channel) of the queue
``COLLAB_JOB_LEASE_SECONDS``       ``30``         a running job's lease; a worker silent that
                                                  long is presumed dead
``COLLAB_JOB_HEARTBEAT_SECONDS``   ``5``          how often a runner renews its lease, saves the
                                                  output so far and checks for a cancel
``COLLAB_JOB_MAX_ATTEMPTS``        ``3``          runs a job may start before it ends ``error``
``COLLAB_JOB_REAP_SECONDS``        ``5``          how often the reaper looks for expired leases
``COLLAB_JOB_REQUEUE_SECONDS``     ``300``        a job queued this long is queued again, in
                                                  case its message was lost
``COLLAB_JOB_MAX_QUEUED``          ``1000``       more queued jobs than this: submit gives 503
=================================  =============  =============================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class OptionsError(ValueError):
    """A ``COLLAB_JOB_*`` variable is malformed; the message names it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JobOptions:
    """How jobs are queued, leased and retried."""

    queue_name: str = "collab:jobs"
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
    def from_env(cls, environ: Mapping[str, str]) -> JobOptions:
        """Read the ``COLLAB_JOB_*`` variables; unset ones keep their defaults.

        Raises:
            OptionsError: a value is malformed or out of range.
        """
        d = cls()
        return cls(
            queue_name=environ.get("COLLAB_JOB_QUEUE", "").strip() or d.queue_name,
            lease_seconds=_number(environ, "COLLAB_JOB_LEASE_SECONDS", d.lease_seconds),
            heartbeat_seconds=_number(environ, "COLLAB_JOB_HEARTBEAT_SECONDS", d.heartbeat_seconds),
            max_attempts=int(_number(environ, "COLLAB_JOB_MAX_ATTEMPTS", d.max_attempts)),
            reap_seconds=_number(environ, "COLLAB_JOB_REAP_SECONDS", d.reap_seconds),
            requeue_seconds=_number(environ, "COLLAB_JOB_REQUEUE_SECONDS", d.requeue_seconds),
            max_queued=int(_number(environ, "COLLAB_JOB_MAX_QUEUED", d.max_queued)),
        )


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
