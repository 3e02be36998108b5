-- History people can use: every event may name the tool or agent that made
-- it (source), the event kinds grow, and deleted documents wait in their
-- project's trash (doc_trash) with their whole log until they are purged.
ALTER TABLE doc_events ADD COLUMN source TEXT;
ALTER TABLE doc_events DROP CONSTRAINT doc_events_kind_check;
ALTER TABLE doc_events ADD CONSTRAINT doc_events_kind_check CHECK (
    kind IN ('update', 'restore', 'fork', 'rollback', 'merge', 'edit', 'import')
);

CREATE TABLE doc_trash (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    language TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    deleted_at DOUBLE PRECISION NOT NULL,
    deleted_by TEXT
);
CREATE INDEX doc_trash_project ON doc_trash (project_id);
CREATE INDEX doc_trash_deleted_at ON doc_trash (deleted_at);

-- A trashed document's log goes when its trash row goes (a purge, or its
-- project being deleted), unless the row went because it was undeleted.
CREATE FUNCTION doc_trash_drop_log() RETURNS trigger AS $$ BEGIN DELETE FROM doc_heads WHERE doc_id = OLD.id AND NOT EXISTS (SELECT 1 FROM documents WHERE id = OLD.id); RETURN OLD; END $$ LANGUAGE plpgsql;
CREATE TRIGGER doc_trash_drop_log AFTER DELETE ON doc_trash
    FOR EACH ROW EXECUTE FUNCTION doc_trash_drop_log();
