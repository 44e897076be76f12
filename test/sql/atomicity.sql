-- An append that fails, or whose transaction fails later, leaves nothing.
SET search_path = event_store, public;
SELECT last_version FROM es_append('atom-1', 0, 'Created', '{}');
SELECT regress.stored() AS before \gset
SELECT es_head_position() AS h0 \gset

-- An error later in the same transaction undoes the appends.
BEGIN;
SELECT last_version FROM es_append('atom-1', 1, 'Changed', '{}');
SELECT last_version FROM es_append('atom-2', 0, 'Created', '{}');
INSERT INTO events (stream, type, data) VALUES ('atom-2', 'Inserted', '{}');
SELECT 1 / 0;
ROLLBACK;
SELECT regress.stored() = :'before' AS unchanged, es_stream_version('atom-1') AS v1,
       es_stream_version('atom-2') AS v2, es_head_position() = :h0 AS head_unchanged;

-- An error inside one append (a duplicate id in the third event) stores none of it.
SELECT regress.err($$SELECT es_append('atom-1', 1, '[
    {"type": "A", "data": {}},
    {"type": "B", "data": {}, "id": "b0000000-0000-4000-8000-000000000001"},
    {"type": "C", "data": {}, "id": "b0000000-0000-4000-8000-000000000001"}]')$$);
SELECT regress.stored() = :'before' AS unchanged, es_stream_version('atom-1') AS v1;

-- A savepoint rolled back after an append: the versions are given again.
BEGIN;
SAVEPOINT s1;
SELECT last_version FROM es_append('atom-1', 1, 'InSavepoint', '{}');
ROLLBACK TO SAVEPOINT s1;
SELECT es_stream_version('atom-1') AS after_rollback_to;
SELECT last_version FROM es_append('atom-1', 1, 'AfterSavepoint', '{}');
COMMIT;
SELECT string_agg(version || type, ' ' ORDER BY version) FROM es_read_stream('atom-1');
-- positions of the rolled-back append are skipped, never reused
SELECT count(*) AS events_after_h0, min(position) > :h0 + 1 AS skipped
  FROM events WHERE position > :h0;

-- A PL/pgSQL exception block (a subtransaction) around an append.
DO $$
BEGIN
  PERFORM event_store.es_append('atom-3', 0, 'Created', '{}');
  PERFORM 1 / 0;
EXCEPTION WHEN division_by_zero THEN
  NULL;
END $$;
SELECT es_stream_version('atom-3');

-- PREPARE TRANSACTION of an appending transaction is refused (it would hold
-- back every reader of the feed); the transaction is rolled back.
BEGIN;
SELECT last_version FROM es_append('atom-4', 0, 'Created', '{}');
PREPARE TRANSACTION 'es_atomicity';
\echo :LAST_ERROR_SQLSTATE
SELECT es_stream_version('atom-4') AS v4,
       (SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'es_atomicity') AS prepared;
-- Without an append, two-phase commit works as usual.
BEGIN;
SELECT es_stream_version('atom-1');
PREPARE TRANSACTION 'es_atomicity_read';
COMMIT PREPARED 'es_atomicity_read';

-- Appends are refused in read-only transactions.
BEGIN READ ONLY;
SELECT regress.err($$SELECT es_append('atom-5', 0, 'Created', '{}')$$);
SELECT regress.err($$INSERT INTO events (stream, type, data) VALUES ('atom-5', 'Created', '{}')$$);
ROLLBACK;
SELECT es_stream_version('atom-5');
