-- The tail of a log (doc_events) reuses its rows: an event takes slot
-- (seq - 1) % 512, whose previous event was packed into a block by then, and
-- rewrites that row in place. Only non-indexed columns change, so Postgres
-- updates it on its own page (HOT) and prunes the old version there without
-- waiting for a vacuum; the free half of each page (fillfactor) leaves room.
-- 0006 packed every whole block, so no log has more than 255 rows here.
ALTER TABLE doc_events ADD COLUMN slot INTEGER;
UPDATE doc_events SET slot = (seq - 1) % 512;
ALTER TABLE doc_events ALTER COLUMN slot SET NOT NULL;
ALTER TABLE doc_events DROP CONSTRAINT doc_events_pkey;
ALTER TABLE doc_events ADD PRIMARY KEY (doc_id, slot);
ALTER TABLE doc_events SET (fillfactor = 50);
