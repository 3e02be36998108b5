-- Code-execution jobs. The row is the source of truth for a job's state;
-- the queue (Redis stream or in-process) only carries "job X is runnable".
-- A worker claims a job with a conditional UPDATE that sets a lease, renews
-- the lease while it runs, and finishes with another conditional UPDATE, so
-- a finished job never runs again and a dead worker's job is re-queued (up
-- to max_attempts) once its lease expires. Times are epoch seconds.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    document_id TEXT REFERENCES documents (id) ON DELETE SET NULL,
    seq BIGINT,
    submitted_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    language TEXT NOT NULL,
    source TEXT NOT NULL,
    stdin TEXT NOT NULL,
    timeout_ms INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (
        status IN ('queued', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled', 'error')
    ),
    exit_code INTEGER,
    stdout TEXT NOT NULL DEFAULT '',
    stderr TEXT NOT NULL DEFAULT '',
    truncated BOOLEAN NOT NULL DEFAULT FALSE,
    duration_ms INTEGER,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    lease_owner TEXT,
    lease_expires_at DOUBLE PRECISION,
    enqueued_at DOUBLE PRECISION NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION
);
CREATE INDEX jobs_project ON jobs (project_id, created_at);
-- The reaper scans queued and running jobs by time; finished jobs are the
-- bulk of the table and stay out of this index's hot range.
CREATE INDEX jobs_status ON jobs (status, lease_expires_at);
