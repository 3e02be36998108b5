-- A compact log: runs of 256 consecutive events (aligned on seq) are packed
-- into one doc_event_blocks row, column by column and compressed; doc_events
-- keeps only the newest events (the tail) until they fill a block. A block
-- stores the hash before it, the full hash of its last event and a short
-- prefix of every other event's hash; the rest are recomputed by chaining.
-- Existing logs are packed by the step that runs with this migration.
CREATE TABLE doc_event_blocks (
    doc_id TEXT NOT NULL REFERENCES doc_heads (doc_id) ON DELETE CASCADE,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    min_at REAL NOT NULL,
    max_at REAL NOT NULL,
    kinds INTEGER NOT NULL,
    previous BLOB NOT NULL,
    last_hash BLOB NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (doc_id, first_seq)
);

-- Time lookups read block bounds and at most a block's worth of tail rows.
DROP INDEX doc_events_time;
