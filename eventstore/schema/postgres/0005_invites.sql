-- Invitations to a project. Only a SHA-256 digest of the token is stored,
-- so a leaked table cannot be used to join projects. An invitation is used
-- once: accepting it sets accepted_at/accepted_by with a conditional
-- UPDATE, so two people cannot both spend one token. email, when set,
-- names the only account that may accept it. Times are epoch seconds.
CREATE TABLE project_invites (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('editor', 'viewer')),
    email TEXT,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    revoked_at DOUBLE PRECISION,
    accepted_at DOUBLE PRECISION,
    accepted_by TEXT REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX project_invites_project ON project_invites (project_id, created_at);

-- A job's output as one ordered sequence, so stdout and stderr keep their
-- relative order: a JSON array of {"stream", "offset", "text"} chunks, where
-- offset counts characters from the start of that stream.
ALTER TABLE jobs ADD COLUMN output TEXT NOT NULL DEFAULT '[]';
