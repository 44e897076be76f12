-- The packaged extension on a server that preloads it: CREATE EXTENSION, an
-- append, and a stale append refused with SQLSTATE V0001.
CREATE EXTENSION event_store;
SELECT * FROM event_store.es_append('smoke-1', 0, 'Created', '{"n": 1}');
DO $$
BEGIN
  PERFORM event_store.es_append('smoke-1', 0, 'Created', '{"n": 2}');
  RAISE EXCEPTION 'a stale append was not refused';
EXCEPTION WHEN SQLSTATE 'V0001' THEN
  RAISE NOTICE 'stale append refused with V0001';
END $$;
DO $$
BEGIN
  IF event_store.es_stream_version('smoke-1') <> 1 THEN
    RAISE EXCEPTION 'stream smoke-1 is at version %, not 1', event_store.es_stream_version('smoke-1');
  END IF;
END $$;
