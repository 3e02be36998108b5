-- The tail of a log (doc_events) reuses its rows: an event takes slot
-- (seq - 1) % 512, whose previous event was packed into a block by then, and
-- rewrites that row in place. SQLite cannot change a primary key, so the
-- table is rebuilt. 0006 packed every whole block, so no log has more than
-- 255 rows here.
CREATE TABLE doc_events_v7 (
    doc_id TEXT NOT NULL REFERENCES doc_heads (doc_id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (
        kind IN ('update', 'restore', 'fork', 'rollback', 'merge', 'edit', 'import')
    ),
    payload BLOB NOT NULL,
    author_id TEXT,
    node_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    meta TEXT,
    hash BLOB NOT NULL,
    source TEXT,
    slot INTEGER NOT NULL,
    PRIMARY KEY (doc_id, slot)
);
INSERT INTO doc_events_v7
    (doc_id, seq, kind, payload, author_id, node_id, created_at, meta, hash, source, slot)
    SELECT doc_id, seq, kind, payload, author_id, node_id, created_at, meta, hash, source,
        (seq - 1) % 512
    FROM doc_events;
DROP TABLE doc_events;
ALTER TABLE doc_events_v7 RENAME TO doc_events;
