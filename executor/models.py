"""What a job is: its statuses, its row, and how the API renders it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eventstore import Row
from webcore.fields import iso_time

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
TIMED_OUT = "timed_out"
CANCELLED = "cancelled"
ERROR = "error"
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, TIMED_OUT, CANCELLED, ERROR)
FINAL_STATUSES = frozenset({SUCCEEDED, FAILED, TIMED_OUT, CANCELLED, ERROR})

# The columns every read of a job selects, in Job's field order.
JOB_COLUMNS = (
    "id, project_id, document_id, seq, language, status, exit_code, stdout, stderr,"
    " truncated, duration_ms, created_at, started_at, finished_at, error, output"
)


@dataclass(frozen=True, slots=True)
class Job:
    """A job as clients see it (times are epoch seconds)."""

    id: str
    project_id: str
    document_id: str | None
    seq: int | None
    language: str
    status: str
    exit_code: int | None
    stdout: str
    stderr: str
    truncated: bool
    duration_ms: int | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None
    output: str = "[]"

    @property
    def finished(self) -> bool:
        """True once the job reached a final status."""
        return self.status in FINAL_STATUSES

    @classmethod
    def from_row(cls, row: Row) -> Job:
        """Build from a row selected with :data:`JOB_COLUMNS`."""
        # SQLite returns booleans as 0/1.
        return cls(**(row | {"truncated": bool(row["truncated"])}))

    def to_json(self) -> dict[str, Any]:
        """The ``job`` object the HTTP API returns, times as ISO-8601 UTC."""
        return {
            "id": self.id,
            "project_id": self.project_id,
            "document_id": self.document_id,
            "seq": self.seq,
            "language": self.language,
            "status": self.status,
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "truncated": self.truncated,
            "duration_ms": self.duration_ms,
            "created_at": iso_time(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "error": self.error,
            "output": self.chunks(),
        }

    def chunks(self) -> list[dict[str, Any]]:
        """Both streams as one ordered sequence of ``{stream, offset, text}``."""
        try:
            chunks = json.loads(self.output)
        except ValueError:
            return []
        return chunks if isinstance(chunks, list) else []


@dataclass(frozen=True, slots=True, kw_only=True)
class NewJob:
    """What a submission stores."""

    project_id: str
    document_id: str | None
    seq: int | None
    submitted_by: str | None
    language: str
    source: str
    stdin: str
    timeout_ms: int


@dataclass(frozen=True, slots=True)
class Claim:
    """A job a runner now holds the lease of, with what it needs to run it."""

    job_id: str
    language: str
    source: str
    stdin: str
    timeout_ms: int
    attempt: int
    created_at: float
    # The name of the document the job runs, if it runs one that still exists.
    document_name: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended, as stored on the job."""

    status: str
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    duration_ms: int | None = None
    error: str | None = None
    output: str = "[]"


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else iso_time(epoch)
