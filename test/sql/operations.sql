-- Operations (docs/operations.md): the counters of es_stats() move by
-- exactly what committed (a rolled-back append counts only as rolled back,
-- a rolled-back savepoint's events nowhere), conflicts count when raised,
-- an idempotent retry once; the oldest appending transaction is shown;
-- es_consumer_metrics lists consumers and projections; pg_monitor reads
-- both and nothing else.  The counters are the database's since the server
-- started, so each case compares before and after.
SET search_path = regress, public;

CREATE TEMP TABLE s0 AS SELECT * FROM event_store.es_stats();
CREATE FUNCTION pg_temp.delta() RETURNS TABLE (
    transactions bigint, events bigint, bytes bigint, rolled_back bigint,
    conflicts bigint, idempotent_retries bigint, erasures bigint)
LANGUAGE sql AS $$
  SELECT n.transactions - o.transactions, n.events - o.events, n.bytes - o.bytes,
         n.rolled_back - o.rolled_back, n.conflicts - o.conflicts,
         n.idempotent_retries - o.idempotent_retries, n.erasures - o.erasures
    FROM event_store.es_stats() n, s0 o
$$;
CREATE FUNCTION pg_temp.again() RETURNS void LANGUAGE sql AS $$
  DELETE FROM s0; INSERT INTO s0 SELECT * FROM event_store.es_stats()
$$;

SELECT database = current_database() AS this_database, stats_reset <= now() AS reset_before,
       head = event_store.es_head_position() AS head, oldest_xact_pid IS NULL AS none_open
  FROM event_store.es_stats();

-- committed: 4 appends in one transaction, and one of two events; 3 rolled back
SELECT count(*) FROM generate_series(1, 4) i,
  LATERAL event_store.es_append('ops-' || i, NULL, 'Counted', jsonb_build_object('i', i)) a;
SELECT last_version FROM event_store.es_append('ops-5', NULL,
  '[{"type": "Counted", "data": {"a": 1}, "metadata": {"m": true}}, {"type": "Counted", "data": {}}]');
BEGIN;
SELECT last_version FROM event_store.es_append('ops-1', NULL, 'Lost', '{}');
ROLLBACK;
BEGIN;
SELECT last_version FROM event_store.es_append('ops-2', NULL, 'Lost', '{}');
ROLLBACK;
BEGIN;
SELECT last_version FROM event_store.es_append('ops-3', NULL, 'Lost', '{}');
ROLLBACK;
-- bytes: the sizes of the committed events' data and metadata as jsonb values
SELECT d.*, d.bytes = (SELECT sum(pg_column_size(e.data::text::jsonb)
                                  + coalesce(pg_column_size(e.metadata::text::jsonb), 0))
                         FROM event_store.events e WHERE e.stream LIKE 'ops-%') AS bytes_exact
  FROM pg_temp.delta() d;
SELECT pg_temp.again();

-- a savepoint rolled back: its events count nowhere; the transaction once
BEGIN;
SELECT last_version FROM event_store.es_append('ops-1', NULL, 'Kept', '{}');
SAVEPOINT a;
SELECT last_version FROM event_store.es_append('ops-1', NULL, 'Lost', '{}');
SAVEPOINT b;
SELECT last_version FROM event_store.es_append('ops-1', NULL, 'Lost', '{}');
RELEASE b;
ROLLBACK TO a;
SAVEPOINT c;
SELECT last_version FROM event_store.es_append('ops-1', NULL, 'Kept', '{}');
RELEASE c;
COMMIT;
SELECT transactions, events, rolled_back FROM pg_temp.delta();
SELECT pg_temp.again();

-- committed transactions that kept no event count nowhere: an append
-- rolled back to its savepoint, one undone by an exception block, a plain
-- INSERT skipped by ON CONFLICT DO NOTHING (it took a position all the same)
BEGIN;
SAVEPOINT a;
SELECT last_version FROM event_store.es_append('ops-1', NULL, 'Lost', '{}');
ROLLBACK TO a;
COMMIT;
DO $$
BEGIN
  PERFORM event_store.es_append('ops-1', NULL, 'Lost', '{}');
  RAISE EXCEPTION 'undo';
EXCEPTION WHEN raise_exception THEN NULL;
END $$;
INSERT INTO event_store.events (stream, type, data, event_id)
  SELECT 'ops-1', 'Dup', '{}', event_id FROM event_store.events WHERE stream = 'ops-1' LIMIT 1
  ON CONFLICT (event_id) DO NOTHING;
SELECT transactions, events, rolled_back FROM pg_temp.delta();
SELECT pg_temp.again();

-- a wrong expected version counts as a conflict when raised, though its
-- transaction rolls back; so does one caught in an exception block
SELECT event_store.es_append('ops-1', 1, 'Conflict', '{}');
DO $$
BEGIN
  PERFORM event_store.es_append('ops-1', 1, 'Conflict', '{}');
EXCEPTION WHEN sqlstate 'V0001' THEN NULL;
END $$;
SELECT transactions, events, rolled_back, conflicts FROM pg_temp.delta();
SELECT pg_temp.again();

-- an idempotent retry: counted once when recognised (a rolled-back one
-- too, as a conflict is), and its events not again
SELECT last_position > 0 AS stored FROM event_store.es_append('ops-6', NULL, 'Once', '{}', NULL,
  '0190f0a0-0000-7000-8000-00000000c0de');
SELECT last_position > 0 AS retried FROM event_store.es_append('ops-6', NULL, 'Once', '{}', NULL,
  '0190f0a0-0000-7000-8000-00000000c0de');
BEGIN;
SELECT last_position > 0 AS retried FROM event_store.es_append('ops-6', NULL, 'Once', '{}', NULL,
  '0190f0a0-0000-7000-8000-00000000c0de');
ROLLBACK;
SELECT transactions, events, idempotent_retries FROM pg_temp.delta();
SELECT pg_temp.again();

-- plain INSERTs count as es_append does, by the rows inserted
INSERT INTO event_store.events (stream, type, data)
  VALUES ('ops-7', 'Inserted', '{"a": [1, 2]}'), ('ops-7', 'Inserted', '{}');
SELECT transactions, events, bytes = (SELECT sum(pg_column_size(e.data::text::jsonb))
                                        FROM event_store.events e WHERE e.stream = 'ops-7') AS bytes
  FROM pg_temp.delta();
SELECT pg_temp.again();

-- an erasure, committed; one rolled back counts nowhere
BEGIN;
SELECT event_store.es_erase_stream('ops-2', 'request 1');
ROLLBACK;
SELECT event_store.es_erase_stream('ops-2', 'request 2');
SELECT transactions, events, erasures FROM pg_temp.delta();
SELECT pg_temp.again();

-- the open appending transaction that holds the feed back: this one
BEGIN;
SELECT last_version FROM event_store.es_append('ops-8', NULL, 'Open', '{}');
SELECT oldest_xact_pid = pg_backend_pid() AS oldest_is_me, oldest_xact_seconds >= 0 AS age
  FROM event_store.es_stats();
COMMIT;
SELECT oldest_xact_pid IS NULL AS none_open FROM event_store.es_stats();

-- es_stats_reset: from zero, now
SELECT event_store.es_stats_reset();
SELECT transactions, events, bytes, rolled_back, conflicts, idempotent_retries, erasures,
       stats_reset > (SELECT stats_reset FROM s0) AS reset_later
  FROM event_store.es_stats();

-- es_consumer_metrics: a consumer and a projection, with their lag
BEGIN;
SELECT event_store.es_checkpoint_save('ops-consumer', event_store.es_head_position() - 2) > 0 AS saved;
CREATE ROLE ops_owner;
GRANT SELECT ON event_store.events TO ops_owner;
GRANT SELECT, INSERT, UPDATE ON event_store.projections TO ops_owner;
CREATE FUNCTION regress.ops_page(events event_store.es_event[]) RETURNS void
LANGUAGE sql AS $$ SELECT $$;
ALTER FUNCTION regress.ops_page(event_store.es_event[]) OWNER TO ops_owner;
GRANT USAGE ON SCHEMA regress TO ops_owner;
SET LOCAL ROLE ops_owner;
SELECT event_store.es_register_projection('ops-projection', 'regress.ops_page(event_store.es_event[])',
  start_position => event_store.es_head_position() - 3);
RESET ROLE;
SELECT kind, name, state, faulted, lag_positions, lag_seconds >= 0 AS lag_seconds,
       seconds_since_save >= 0 AS since_save, processed, dead_lettered, attempts, rebuilding,
       rebuild_progress
  FROM event_store.es_consumer_metrics WHERE name LIKE 'ops-%' ORDER BY kind, name;
SELECT event_store.es_run_projection('ops-projection', 10, upto => event_store.es_head_position() - 1);
SELECT kind, lag_positions, processed FROM event_store.es_consumer_metrics
 WHERE name = 'ops-projection';
SELECT event_store.es_rebuild_projection('ops-projection', 0) AS rewound;
SELECT rebuilding, rebuild_progress = 0 AS at_start FROM event_store.es_consumer_metrics
 WHERE name = 'ops-projection';

-- a consumer may write any time into checkpoints: the view stays readable
SAVEPOINT inf;
INSERT INTO event_store.checkpoints (consumer, position, updated_at) VALUES ('ops-inf', 0, 'infinity');
SELECT kind, name, seconds_since_save FROM event_store.es_consumer_metrics WHERE name = 'ops-inf';
ROLLBACK TO inf;
-- a projection's saved_at is a finite time
SELECT split_part(err($$UPDATE event_store.projections SET saved_at = 'infinity'
                        WHERE name = 'ops-projection'$$), E'\n', 1) AS infinite_save;

-- pg_monitor reads the metrics and the counters, and nothing else
CREATE ROLE ops_monitor IN ROLE pg_monitor;
CREATE ROLE ops_nobody;
SET LOCAL ROLE ops_monitor;
SELECT kind, name, lag_positions > 0 AS behind, lag_positions = head AS from_start
  FROM event_store.es_consumer_metrics WHERE name LIKE 'ops-%' ORDER BY kind, name;
SELECT head > 0 AS head, transactions >= 0 AS counters FROM event_store.es_stats();
SAVEPOINT s;
SELECT count(*) FROM event_store.events;
ROLLBACK TO s;
SELECT event_store.es_stats_reset();
ROLLBACK TO s;
SELECT count(*) FROM event_store.es_consumers;
ROLLBACK TO s;
RESET ROLE;
SET LOCAL ROLE ops_nobody;
SAVEPOINT t;
SELECT * FROM event_store.es_stats();
ROLLBACK TO t;
SELECT count(*) FROM event_store.es_consumer_metrics;
ROLLBACK;

-- what pg_monitor is granted of the extension: exactly these two
SELECT c.oid::regclass::text AS object, a.privilege_type
  FROM pg_class c, aclexplode(c.relacl) a
 WHERE c.relnamespace = 'event_store'::regnamespace AND a.grantee = 'pg_monitor'::regrole
UNION ALL
SELECT p.oid::regprocedure::text, a.privilege_type
  FROM pg_proc p, aclexplode(p.proacl) a
 WHERE p.pronamespace = 'event_store'::regnamespace AND a.grantee = 'pg_monitor'::regrole
ORDER BY 1;
