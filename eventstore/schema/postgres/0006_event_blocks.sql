-- A compact log: runs of 256 consecutive events (aligned on seq) are packed
-- into one doc_event_blocks row, column by column and compressed; doc_events
-- keeps only the newest events (the tail) until they fill a block. A block
-- stores the hash before it, the full hash of its last event and a short
-- prefix of every other event's hash; the rest are recomputed by chaining.
-- The body is compressed already, so TOAST stores it without trying pglz.
-- Existing logs are packed by the step that runs with this migration.
CREATE TABLE doc_event_blocks (
    doc_id TEXT NOT NULL REFERENCES doc_heads (doc_id) ON DELETE CASCADE,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    min_at DOUBLE PRECISION NOT NULL,
    max_at DOUBLE PRECISION NOT NULL,
    kinds INTEGER NOT NULL,
    previous BYTEA NOT NULL,
    last_hash BYTEA NOT NULL,
    body BYTEA NOT NULL,
    PRIMARY KEY (doc_id, first_seq)
);
ALTER TABLE doc_event_blocks ALTER COLUMN body SET STORAGE EXTERNAL;

-- Time lookups read block bounds and at most a block's worth of tail rows.
DROP INDEX doc_events_time;
