-- The functions check table privileges: INSERT on events to append, SELECT
-- to read.  Nobody may change or remove events.
SET search_path = event_store, public;
CREATE ROLE regress_es_nobody;
CREATE ROLE regress_es_reader;
CREATE ROLE regress_es_writer;
GRANT SELECT ON event_store.events, event_store.streams TO regress_es_reader, regress_es_writer;
GRANT INSERT ON event_store.events TO regress_es_writer;
SELECT last_version FROM es_append('priv-1', 0, 'Created', '{}');

SET ROLE regress_es_nobody;
SELECT regress.err($$SELECT event_store.es_append('priv-1', NULL, 'T', '{}')$$);
SELECT regress.err($$SELECT * FROM event_store.es_read_stream('priv-1')$$);
SELECT regress.err($$SELECT event_store.es_stream_version('priv-1')$$);
SELECT regress.err($$SELECT event_store.es_head_position()$$);
SELECT regress.err($$SELECT count(*) FROM event_store.events$$);
RESET ROLE;

SET ROLE regress_es_reader;
SELECT count(*) FROM event_store.es_read_stream('priv-1');
SELECT event_store.es_stream_version('priv-1') AS version, event_store.es_head_position() > 0 AS has_head;
SELECT regress.err($$SELECT event_store.es_append('priv-1', NULL, 'T', '{}')$$);
SELECT regress.err($$INSERT INTO event_store.events (stream, type, data) VALUES ('priv-1', 'T', '{}')$$);
RESET ROLE;

SET ROLE regress_es_writer;
SELECT last_version FROM event_store.es_append('priv-1', 1, 'Written', '{}');
INSERT INTO event_store.events (stream, type, data) VALUES ('priv-1', 'Inserted', '{}') RETURNING version;
SELECT regress.err($$UPDATE event_store.events SET type = 'X'$$);
SELECT regress.err($$DELETE FROM event_store.events$$);
SELECT regress.err($$UPDATE event_store.streams SET version = 0$$);
-- only the owner (a restore) may give positions
SELECT regress.err($$INSERT INTO event_store.events (position, stream, type, data)
                     VALUES (4611686018427387903, 'priv-1', 'T', '{}')$$);
-- nor another time than the transaction's start
SELECT regress.err($$INSERT INTO event_store.events (stream, type, data, created_at)
                     VALUES ('priv-1', 'T', '{}', '2000-01-01')$$);
INSERT INTO event_store.events (stream, type, data, created_at)
VALUES ('priv-1', 'AtNow', '{}', now()) RETURNING version, created_at = now() AS at_start;
RESET ROLE;
-- the owner may (a restore)
BEGIN;
INSERT INTO event_store.events (stream, type, data, created_at)
VALUES ('priv-1', 'Restored', '{}', '2000-01-01 00:00:00+00') RETURNING version, created_at;
ROLLBACK;

-- Even with UPDATE, DELETE and TRUNCATE granted, the triggers refuse.
GRANT UPDATE, DELETE, TRUNCATE ON event_store.events TO regress_es_writer;
SET ROLE regress_es_writer;
SELECT regress.err($$UPDATE event_store.events SET type = 'X'$$);
SELECT regress.err($$DELETE FROM event_store.events$$);
SELECT regress.err($$TRUNCATE event_store.events$$);
RESET ROLE;
SELECT string_agg(version || type, ' ' ORDER BY version) FROM es_read_stream('priv-1');

-- The functions read the tables directly, past row-level security: for a
-- role that RLS applies to, they refuse rather than read past the policies.
-- (Superusers and the table owner bypass RLS anyway.)
ALTER TABLE event_store.events ENABLE ROW LEVEL SECURITY;
SELECT count(*) FROM es_read_stream('priv-1');
SET ROLE regress_es_writer;
SELECT regress.err($$SELECT * FROM event_store.es_read_stream('priv-1')$$);
SELECT regress.err($$SELECT event_store.es_append('priv-1', NULL, 'T', '{}')$$);
SELECT regress.err($$SELECT event_store.es_head_position()$$);
RESET ROLE;
ALTER TABLE event_store.events DISABLE ROW LEVEL SECURITY;

REVOKE ALL ON event_store.events, event_store.streams FROM regress_es_reader, regress_es_writer;
DROP ROLE regress_es_nobody;
DROP ROLE regress_es_reader;
DROP ROLE regress_es_writer;
