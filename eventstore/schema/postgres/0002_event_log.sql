-- The per-document event log. doc_heads holds each log's newest seq and
-- hash; appends lock that row, so seq is gap-free per document even with
-- several nodes writing. Events and snapshots go when their head goes.
CREATE TABLE doc_heads (
    doc_id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash BYTEA NOT NULL
);

CREATE TABLE doc_events (
    doc_id TEXT NOT NULL REFERENCES doc_heads (doc_id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('update', 'restore', 'fork')),
    payload BYTEA NOT NULL,
    author_id TEXT,
    node_id TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    meta TEXT,
    hash BYTEA NOT NULL,
    PRIMARY KEY (doc_id, seq)
);
CREATE INDEX doc_events_time ON doc_events (doc_id, created_at);

CREATE TABLE doc_snapshots (
    doc_id TEXT NOT NULL REFERENCES doc_heads (doc_id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    state BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (doc_id, seq)
);
