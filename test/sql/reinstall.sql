-- What a transaction remembers of the streams it wrote is checked before it
-- is used: the streams table may be rewritten or recreated in the same
-- transaction.  Nested inserts and failing subtransactions keep numbering
-- right.  (The last file: it drops and recreates the extension.)
SET search_path = event_store, public;

-- CLUSTER rewrites the streams table mid-transaction.
BEGIN;
SELECT last_version FROM es_append('re-a', NULL, 'T', '{}');
SELECT last_version FROM es_append('re-b', NULL, 'T', '{}');
SELECT last_version FROM es_append('re-b', NULL, 'T', '{}');
CLUSTER event_store.streams USING streams_name_key;
SELECT last_version FROM es_append('re-b', NULL, 'T', '{}');
SELECT last_version FROM es_append('re-a', NULL, 'T', '{}');
COMMIT;
SELECT name, version FROM streams WHERE name LIKE 're-%' ORDER BY name;

-- A subtransaction that fails after each append (PL/pgSQL exception blocks).
DO $$
BEGIN
  FOR i IN 1..500 LOOP
    PERFORM event_store.es_append('re-loop', i - 1, 'Kept', '{}');
    BEGIN
      PERFORM event_store.es_append('re-loop', i, 'Undone', '{}');
      PERFORM 1 / 0;
    EXCEPTION WHEN division_by_zero THEN
      NULL;
    END;
  END LOOP;
END $$;
SELECT count(*), max(version), es_stream_version('re-loop'),
       count(*) FILTER (WHERE type = 'Undone') AS undone
  FROM events WHERE stream = 're-loop';

-- A user trigger that inserts into events itself (a nested statement): the
-- outer statement's new stream is kept, and a row skipped by ON CONFLICT DO
-- NOTHING still leaves no stream behind.
CREATE FUNCTION regress.audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.stream <> 're-audit' THEN
    INSERT INTO event_store.events (stream, type, data)
    VALUES ('re-audit', 'Seen', jsonb_build_object('stream', NEW.stream));
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER events_zaudit BEFORE INSERT ON event_store.events
  FOR EACH ROW EXECUTE FUNCTION regress.audit();
INSERT INTO events (stream, type, data) VALUES ('re-new', 'Created', '{}') RETURNING version;
INSERT INTO events (stream, type, data, event_id)
VALUES ('re-skipped', 'Dup', '{}', '5b1f3c2e-7a1d-4c3e-9a2b-0c1d2e3f4a5b')
ON CONFLICT (event_id) DO NOTHING;
DROP TRIGGER events_zaudit ON event_store.events;
SELECT name, version FROM streams WHERE name IN ('re-new', 're-skipped', 're-audit') ORDER BY name;

-- DROP EXTENSION and CREATE EXTENSION inside a transaction that appended:
-- the new tables are new files.  (Positions go on from where they were: the
-- transaction still holds some, so the register is not reset.)
BEGIN;
SELECT last_version FROM es_append('re-c', NULL, 'T', '{}');
SELECT last_version FROM es_append('re-d', NULL, 'T', '{}');
DROP EXTENSION event_store;
CREATE EXTENSION event_store;
SELECT last_version FROM es_append('re-x', NULL, 'T', '{}');
SELECT last_version FROM es_append('re-d', NULL, 'T', '{}');
COMMIT;
SELECT name, version FROM streams ORDER BY name;
SELECT stream, version FROM es_read_all() ORDER BY position;
