-- The per-document event log. doc_heads holds each log's newest seq and
-- hash; appends lock that row, so seq is gap-free per document even with
-- several nodes writing. Events and snapshots go when their head goes.
CREATE TABLE doc_heads (
    doc_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL
);

CREATE TABLE doc_events (
    doc_id TEXT NOT NULL REFERENCES doc_heads (doc_id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('update', 'restore', 'fork')),
    payload BLOB NOT NULL,
    author_id TEXT,
    node_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    meta TEXT,
    hash BLOB NOT NULL,
    PRIMARY KEY (doc_id, seq)
);
CREATE INDEX doc_events_time ON doc_events (doc_id, created_at);

CREATE TABLE doc_snapshots (
    doc_id TEXT NOT NULL REFERENCES doc_heads (doc_id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    state BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (doc_id, seq)
);
