-- History people can use: every event may name the tool or agent that made
-- it (source), the event kinds grow, and deleted documents wait in their
-- project's trash (doc_trash) with their whole log until they are purged.
-- SQLite cannot change a CHECK constraint, so doc_events is rebuilt.
CREATE TABLE doc_events_v4 (
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
    PRIMARY KEY (doc_id, seq)
);
INSERT INTO doc_events_v4 (doc_id, seq, kind, payload, author_id, node_id, created_at, meta, hash)
    SELECT doc_id, seq, kind, payload, author_id, node_id, created_at, meta, hash FROM doc_events;
DROP TABLE doc_events;
ALTER TABLE doc_events_v4 RENAME TO doc_events;
CREATE INDEX doc_events_time ON doc_events (doc_id, created_at);

CREATE TABLE doc_trash (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    language TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    deleted_at REAL NOT NULL,
    deleted_by TEXT
);
CREATE INDEX doc_trash_project ON doc_trash (project_id);
CREATE INDEX doc_trash_deleted_at ON doc_trash (deleted_at);

-- A trashed document's log goes when its trash row goes (a purge, or its
-- project being deleted), unless the row went because it was undeleted.
CREATE TRIGGER doc_trash_drop_log AFTER DELETE ON doc_trash FOR EACH ROW BEGIN DELETE FROM doc_heads WHERE doc_id = OLD.id AND NOT EXISTS (SELECT 1 FROM documents WHERE id = OLD.id); END;
