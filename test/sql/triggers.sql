-- The numbering trigger of plain INSERTs; immutability of events.
SET search_path = event_store, public;
SELECT es_head_position() AS p0 \gset

-- Version and position are assigned as by es_append.
INSERT INTO events (stream, type, data)
VALUES ('plain-1', 'A', '{}'), ('plain-1', 'B', '{}'), ('plain-2', 'A', '{}')
RETURNING stream, version, position - :p0 AS pos;
-- A given version must be the next one.
INSERT INTO events (stream, version, type, data) VALUES ('plain-1', 3, 'C', '{}') RETURNING version;
SELECT regress.err($$INSERT INTO events (stream, version, type, data) VALUES ('plain-1', 3, 'D', '{}')$$);
SELECT regress.err($$INSERT INTO events (stream, version, type, data) VALUES ('plain-1', 7, 'D', '{}')$$);
SELECT regress.err($$INSERT INTO events (stream, version, type, data) VALUES ('plain-9', 2, 'D', '{}')$$);
-- Mixed with es_append.
SELECT last_version FROM es_append('plain-1', 3, 'E', '{}');
INSERT INTO events (stream, type, data) VALUES ('plain-1', 'F', '{}') RETURNING version;
SELECT string_agg(version || type, ' ' ORDER BY version) FROM es_read_stream('plain-1');
SELECT version FROM streams WHERE name = 'plain-1';
-- INSERT ... SELECT of many rows into one stream.
INSERT INTO events (stream, type, data)
SELECT 'plain-3', 'N', jsonb_build_object('n', n) FROM generate_series(1, 50) n;
SELECT count(*), min(version), max(version), es_stream_version('plain-3'),
       bool_and((data->>'n')::int = version) AS in_order
  FROM events WHERE stream = 'plain-3';
-- COPY goes through the trigger too.
COPY events (stream, type, data) FROM stdin;
plain-4	A	{}
plain-4	B	{"x": 1}
\.
SELECT version, type, data FROM es_read_stream('plain-4');

-- A given position must not be below the next free one; a higher one is
-- taken, and later positions continue above it.
SELECT regexp_replace(regress.err($$INSERT INTO events (position, stream, type, data) VALUES (1, 'plain-5', 'A', '{}')$$),
                      'is \d+', 'is N');
SELECT es_head_position() + 100 AS far \gset
INSERT INTO events (position, stream, type, data) VALUES (:far, 'plain-5', 'A', '{}')
RETURNING position = :far AS kept;
SELECT first_position > :far AS continues_above FROM es_append('plain-5', 1, 'B', '{}');

-- INSERT ... ON CONFLICT (event_id) DO NOTHING: an idempotent plain insert.
-- A skipped row leaves no gap: the stream's version follows inserted rows only.
INSERT INTO events (stream, type, data, event_id)
VALUES ('plain-7', 'A', '{}', 'c0000000-0000-4000-8000-000000000001')
ON CONFLICT (event_id) DO NOTHING RETURNING version;
INSERT INTO events (stream, type, data, event_id)
VALUES ('plain-7', 'A', '{}', 'c0000000-0000-4000-8000-000000000001')
ON CONFLICT (event_id) DO NOTHING RETURNING version;
SELECT es_stream_version('plain-7') AS version_after_skip;
INSERT INTO events (stream, type, data) VALUES ('plain-7', 'B', '{}') RETURNING version;
SELECT last_version FROM es_append('plain-7', 2, 'C', '{}');
SELECT string_agg(version || type, ' ' ORDER BY version) FROM es_read_stream('plain-7');
-- A row skipped by ON CONFLICT DO NOTHING does not create its stream.
INSERT INTO events (stream, type, data, event_id)
VALUES ('plain-8', 'A', '{}', 'c0000000-0000-4000-8000-000000000001')
ON CONFLICT (event_id) DO NOTHING;
SELECT count(*) AS plain_8_rows FROM streams WHERE name = 'plain-8';

-- A plain INSERT and es_append to one stream in one statement: the streams
-- row moves only at the end of the INSERT, es_append counts the stored rows.
WITH i AS (INSERT INTO events (stream, type, data) VALUES ('plain-9', 'Inserted', '{}') RETURNING version)
SELECT i.version AS inserted, a.last_version AS appended
  FROM i, LATERAL es_append('plain-9', NULL, 'Appended', '{}') a;
WITH i AS (INSERT INTO events (stream, type, data) VALUES ('plain-9', 'Inserted', '{}') RETURNING version)
SELECT i.version AS inserted, a.last_version AS appended
  FROM i, LATERAL es_append('plain-9', 3, 'Appended', '{}') a;
SELECT string_agg(version || type, ' ' ORDER BY version), es_stream_version('plain-9')
  FROM es_read_stream('plain-9');

-- Positions are bounded; versions start at 1.
SELECT regress.err($$INSERT INTO events (position, stream, type, data)
                     VALUES (9223372036854775807, 'plain-5', 'A', '{}')$$);
SELECT regress.err($$INSERT INTO events (stream, version, type, data) VALUES ('plain-5', 0, 'A', '{}')$$);
SELECT regress.err($$INSERT INTO events (stream, version, type, data)
                     VALUES ('plain-5', -9223372036854775808, 'A', '{}')$$);

-- Many writes to one stream in one transaction, with savepoints rolled back
-- in between: the transaction goes straight to its own newest streams row,
-- and forgets it when a subtransaction aborts.
BEGIN;
DO $$
BEGIN
  FOR i IN 1..2000 LOOP
    PERFORM event_store.es_append('loop-2', i - 1, 'Tick', jsonb_build_object('i', i));
  END LOOP;
END $$;
INSERT INTO events (stream, type, data) SELECT 'loop-2', 'Bulk', '{}' FROM generate_series(1, 2000);
SAVEPOINT s1;
SELECT last_version FROM es_append('loop-2', 4000, 'Undone', '{}');
INSERT INTO events (stream, type, data) VALUES ('loop-2', 'Undone', '{}');
ROLLBACK TO SAVEPOINT s1;
SELECT last_version FROM es_append('loop-2', 4000, 'Kept', '{}');
INSERT INTO events (stream, type, data) VALUES ('loop-2', 'Kept', '{}') RETURNING version;
COMMIT;
SELECT count(*), max(version), es_stream_version('loop-2'),
       count(*) FILTER (WHERE type = 'Undone') AS undone
  FROM events WHERE stream = 'loop-2';

-- Bad rows.
SELECT regress.stored() AS before \gset
SELECT regress.err($$INSERT INTO events (stream, type, data) VALUES (NULL, 'A', '{}')$$);
SELECT regress.err($$INSERT INTO events (stream, type, data) VALUES ('plain-6', NULL, '{}')$$);
SELECT regress.err($$INSERT INTO events (stream, type, data) VALUES ('plain-6', 'A', NULL)$$);
SELECT regress.err($$INSERT INTO events (stream, type, data) VALUES ('', 'A', '{}')$$);
SELECT regress.err($$INSERT INTO events (stream, type, data) VALUES ('-plain', 'A', '{}')$$);
SELECT regress.err($$INSERT INTO events (stream, type, data) VALUES ('plain-6', '', '{}')$$);
SELECT regress.err($$INSERT INTO events (stream, type, data, metadata) VALUES ('plain-6', 'A', '{}', '[]')$$);
SELECT regress.err($$INSERT INTO events (stream, type, data, schema_version) VALUES ('plain-6', 'A', '{}', 0)$$);
SELECT regress.err($$INSERT INTO events (stream, type, data, event_id) VALUES ('plain-6', 'A', '{}', NULL)$$);
-- an event id that exists (appended in the append test)
SELECT regress.err($$INSERT INTO events (stream, type, data, event_id)
                     VALUES ('plain-6', 'A', '{}', '5b1f3c2e-7a1d-4c3e-9a2b-0c1d2e3f4a5b')$$);
SELECT regress.err($$INSERT INTO events (stream, type, data) VALUES ('plain-6', 'A', '{}'), ('plain-6', 'B', NULL)$$);
SELECT regress.stored() = :'before' AS nothing_stored, es_stream_version('plain-6') AS version;

-- Events are immutable for every role, the superuser included, whatever
-- the statement and even when no row matches.
SELECT regress.err($$UPDATE events SET type = 'X' WHERE false$$);
SELECT regress.err($$DELETE FROM events WHERE position = -1$$);
SELECT regress.err($$TRUNCATE events$$);
SELECT regress.err($$TRUNCATE events, streams$$);
SELECT regress.err($$MERGE INTO events e USING (SELECT 1::bigint AS p) s ON e.position = s.p
                     WHEN MATCHED THEN DELETE$$);
SELECT regress.err($$INSERT INTO events (stream, type, data, event_id)
                     SELECT stream, type, data, event_id FROM events LIMIT 1
                     ON CONFLICT (event_id) DO UPDATE SET type = 'X'$$);
-- Streams are maintained by the functions only.
SELECT regress.err($$UPDATE streams SET version = 0$$);
SELECT regress.err($$DELETE FROM streams$$);
SELECT regress.err($$TRUNCATE streams$$);
SELECT regress.err($$TRUNCATE streams CASCADE$$);
-- The refusal also holds in replication role: the triggers are ENABLE ALWAYS.
SET session_replication_role = replica;
SELECT regress.err($$DELETE FROM events$$);
SELECT regress.err($$UPDATE streams SET version = 0$$);
RESET session_replication_role;
SELECT tgname, tgenabled FROM pg_trigger
 WHERE tgrelid IN ('event_store.events'::regclass, 'event_store.streams'::regclass) AND NOT tgisinternal
 ORDER BY tgname;
SELECT regress.stored() = :'before' AS nothing_changed;
