-- The defects of issue 13 that one session shows, and the classes they
-- stand for: user functions checked whenever they are resolved and run as
-- their owner under a fixed search_path; rows written directly into tables
-- a role may write; the pre-commit clean-up of empty streams; retention and
-- a long transaction; erasure; parallel plans; the SQLSTATEs of bad input;
-- memory of reads that fail inside subtransactions.  (What needs two
-- sessions is in test/specs: read_snapshot, upcaster_in_use,
-- time_travel_prefix, drop_extension_race.)  Streams and types start with
-- "ok"; positions are printed relative to the head at the start.
SET search_path = event_store, public;
SELECT es_head_position() AS p0 \gset

CREATE ROLE regress_ok_keeper;
CREATE ROLE regress_ok_reader;
GRANT USAGE ON SCHEMA regress TO regress_ok_keeper, regress_ok_reader;
GRANT SELECT, INSERT, DELETE ON event_store.upcasters TO regress_ok_keeper;
GRANT SELECT ON event_store.events, event_store.streams, event_store.snapshots
   TO regress_ok_reader, regress_ok_keeper;
GRANT CREATE ON SCHEMA regress TO regress_ok_keeper;

-- 1. An upcaster is checked every time it is resolved, not only when it is
-- registered.  Its owner re-creates it with the same arguments and another
-- result: reads of the type fail with 42P13 (old code: SIGSEGV for bigint,
-- XX000 for text).
SELECT last_version FROM es_append('okup-1', 0, 'OkUp', '{"n": 1}');
SET ROLE regress_ok_keeper;
CREATE FUNCTION regress.ok_up(data jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE
    AS $$ SELECT data || '{"up": true}' $$;
SELECT es_register_upcaster('OkUp', 1, 'regress.ok_up(jsonb)');
RESET ROLE;
SELECT version, data, schema_version FROM es_read_stream('okup-1');
SET ROLE regress_ok_keeper;
DROP FUNCTION regress.ok_up(jsonb);
CREATE FUNCTION regress.ok_up(data jsonb) RETURNS bigint LANGUAGE sql IMMUTABLE
    AS $$ SELECT 42::bigint $$;
RESET ROLE;
SELECT regexp_replace(regress.err($$SELECT * FROM es_read_stream('okup-1')$$), 'position \d+', 'position N');
SELECT regexp_replace(regress.err($$SELECT * FROM es_read_all($$ || :p0 || $$, 100, ARRAY['OkUp'])$$), 'position \d+', 'position N');
SELECT regexp_replace(regress.err($$SELECT * FROM es_load_aggregate('okup-1')$$), 'position \d+', 'position N');
SELECT regexp_replace(regress.err($$SELECT * FROM es_read_stream_at('okup-1', 1)$$), 'position \d+', 'position N');
SET ROLE regress_ok_keeper;
DROP FUNCTION regress.ok_up(jsonb);
CREATE FUNCTION regress.ok_up(data jsonb) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT 'text' $$;
RESET ROLE;
SELECT regexp_replace(regress.err($$SELECT * FROM es_read_stream('okup-1')$$), 'position \d+', 'position N');
SET ROLE regress_ok_keeper;
DROP FUNCTION regress.ok_up(jsonb);
CREATE FUNCTION regress.ok_up(data jsonb) RETURNS SETOF jsonb LANGUAGE sql IMMUTABLE
    AS $$ SELECT data $$;
RESET ROLE;
SELECT regexp_replace(regress.err($$SELECT * FROM es_read_stream('okup-1')$$), 'position \d+', 'position N');
SET ROLE regress_ok_keeper;
DROP FUNCTION regress.ok_up(jsonb);
CREATE PROCEDURE regress.ok_up(data jsonb) LANGUAGE sql AS $$ SELECT 1 $$;
RESET ROLE;
SELECT regexp_replace(regress.err($$SELECT * FROM es_read_stream('okup-1')$$), 'position \d+', 'position N');
SET ROLE regress_ok_keeper;
DROP PROCEDURE regress.ok_up(jsonb);
CREATE FUNCTION regress.ok_up(data jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE
    AS $$ SELECT data || '{"up": "again"}' $$;
RESET ROLE;
SELECT version, data, schema_version FROM es_read_stream('okup-1');

-- Rows written into upcasters directly are checked as es_register_upcaster
-- checks its arguments (old code: any text was stored, and a read of the
-- type then crashed the server).
SET ROLE regress_ok_keeper;
SELECT regress.err($$INSERT INTO event_store.upcasters (type, from_schema_version, upcaster)
                     VALUES ('OkUp', 2, 'pg_catalog.jsonb_array_length(jsonb)')$$);
SELECT regress.err($$INSERT INTO event_store.upcasters (type, from_schema_version, upcaster)
                     VALUES ('OkUp', 2, 'pg_catalog.jsonb_strip_nulls(jsonb)')$$);
SELECT regress.err($$INSERT INTO event_store.upcasters (type, from_schema_version, upcaster)
                     VALUES ('OkUp', 2, 'regress.no_such_function(jsonb)')$$);
SELECT regress.err($$INSERT INTO event_store.upcasters (type, from_schema_version, upcaster)
                     VALUES ('', 2, 'regress.ok_up(jsonb)')$$);
CREATE FUNCTION regress.ok_up_v2(data jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE
    AS $$ SELECT data || '{"v3": true}' $$;
SET search_path = regress, event_store, public;
INSERT INTO event_store.upcasters (type, from_schema_version, upcaster)
VALUES ('OkUp', 2, 'ok_up_v2(jsonb)');
SET search_path = event_store, public;
RESET ROLE;
-- stored qualified, whatever the writer's search_path
SELECT type, from_schema_version, upcaster FROM upcasters WHERE type = 'OkUp' ORDER BY 2;
SELECT version, data, schema_version FROM es_read_stream('okup-1');
-- however written, a type's chain has no hole (old code: a direct INSERT
-- left one, and es_unregister_upcaster could then never remove the middle)
SET ROLE regress_ok_keeper;
SELECT regress.err($$INSERT INTO event_store.upcasters (type, from_schema_version, upcaster)
                     VALUES ('OkUp', 5, 'regress.ok_up_v2(jsonb)')$$);
INSERT INTO event_store.upcasters (type, from_schema_version, upcaster)
VALUES ('OkUp', 3, 'regress.ok_up_v2(jsonb)');
SELECT regress.err($$DELETE FROM event_store.upcasters WHERE type = 'OkUp' AND from_schema_version = 2$$);
RESET ROLE;
SELECT es_unregister_upcaster('OkUp', 3);
SELECT es_unregister_upcaster('OkUp', 2);
-- A signature names its function, never an OID (to_regprocedure of 16 and
-- later takes one): refused to the keeper; the owner of the table may store
-- any text (a restore), and a read then finds no function (42883) on every
-- version, never the function of that OID.
SET ROLE regress_ok_keeper;
SELECT regexp_replace(regress.err(format($$INSERT INTO event_store.upcasters (type, from_schema_version, upcaster)
                     VALUES ('OkNum', 1, %L)$$, 'regress.ok_up(jsonb)'::regprocedure::oid::text)),
                      'function \d+', 'function OID');
RESET ROLE;
INSERT INTO event_store.upcasters (type, from_schema_version, upcaster)
VALUES ('OkNum', 1, 'regress.ok_up(jsonb)'::regprocedure::oid::text);
SELECT last_version FROM es_append('oknum-1', 0, 'OkNum', '{}');
SELECT regexp_replace(regexp_replace(regress.err($$SELECT * FROM es_read_stream('oknum-1')$$),
                                     'position \d+', 'position N'), 'function \d+', 'function OID');
DELETE FROM event_store.upcasters WHERE type = 'OkNum';

-- 7. An upcaster is resolved under a fixed search_path, not the reader's:
-- a function planted in a schema on the first reader's path is never run,
-- neither by that reader nor by later reads of the same connection.
SELECT last_version FROM es_append('okpath-1', 0, 'OkPath', '{"a": null, "b": 1}');
SELECT es_register_upcaster('OkPath', 1, 'jsonb_strip_nulls(jsonb)');
SELECT upcaster FROM upcasters WHERE type = 'OkPath';
-- as a row of 0.1.0 named it: unqualified
ALTER TABLE upcasters DISABLE TRIGGER upcasters_check;
UPDATE upcasters SET upcaster = 'jsonb_strip_nulls(jsonb)' WHERE type = 'OkPath';
ALTER TABLE upcasters ENABLE ALWAYS TRIGGER upcasters_check;
SELECT upcaster FROM upcasters WHERE type = 'OkPath';
CREATE SCHEMA regress_ok_attacker;
GRANT USAGE ON SCHEMA regress_ok_attacker TO PUBLIC;
CREATE FUNCTION regress_ok_attacker.jsonb_strip_nulls(jsonb) RETURNS jsonb LANGUAGE sql
    AS $$ SELECT '{"pwned": true}'::jsonb $$;
DISCARD ALL;
SET search_path = regress_ok_attacker, pg_catalog, event_store;
SELECT data FROM es_read_stream('okpath-1');
RESET search_path;
SELECT data FROM event_store.es_read_stream('okpath-1');
SET search_path = event_store, public;

-- Upcasters run as their owner, under search_path pg_catalog, pg_temp, as
-- a security-restricted operation, read-only: what they read is checked
-- against the owner's privileges, and they cannot change the reader's
-- session (a temporary table: refused, as every utility command).
SET ROLE regress_ok_keeper;
CREATE FUNCTION regress.ok_whoami(data jsonb) RETURNS jsonb LANGUAGE sql STABLE
    AS $$ SELECT data || jsonb_build_object('user', current_user, 'path', current_setting('search_path')) $$;
CREATE FUNCTION regress.ok_settle(data jsonb) RETURNS jsonb LANGUAGE plpgsql
    AS $$ BEGIN CREATE TEMP TABLE ok_planted (x int); RETURN data; END $$;
SELECT es_register_upcaster('OkWho', 1, 'regress.ok_whoami(jsonb)');
SELECT es_register_upcaster('OkSettle', 1, 'regress.ok_settle(jsonb)');
RESET ROLE;
SELECT last_version FROM es_append('okwho-1', 0, 'OkWho', '{}');
SELECT last_version FROM es_append('oksettle-1', 0, 'OkSettle', '{}');
SET ROLE regress_ok_reader;
SET search_path = public;
SELECT data FROM event_store.es_read_stream('okwho-1');
SELECT current_user, current_setting('search_path') AS path_after;
SELECT regress.err($$SELECT * FROM event_store.es_read_stream('oksettle-1')$$);
RESET ROLE;
SET search_path = event_store, public;
-- Nothing an upcaster sets outlives its call: not in the reader's session
-- after the read, not in the next upcaster's call (which may run as another
-- owner) within the read.
SET ROLE regress_ok_keeper;
CREATE FUNCTION regress.ok_setter(data jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('search_path', 'regress, pg_catalog', false);
  PERFORM set_config('statement_timeout', '1234ms', false);
  RETURN data;
END $$;
SELECT es_register_upcaster('OkSet', 1, 'regress.ok_setter(jsonb)');
RESET ROLE;
SELECT last_version FROM es_append('okset-1', 0,
  '[{"type": "OkSet", "data": {}}, {"type": "OkWho", "data": {}}, {"type": "OkSet", "data": {}}]');
SET ROLE regress_ok_reader;
SET search_path = public;
SET statement_timeout = 0;
SELECT version, type, data->>'path' AS path_seen_by_next_upcaster FROM event_store.es_read_stream('okset-1');
SELECT current_setting('search_path') AS path_after, current_setting('statement_timeout') AS timeout_after;
RESET ROLE;
RESET statement_timeout;
SET search_path = event_store, public;
-- An upcaster that drops another one the same read has resolved: refused,
-- an upcaster runs no utility command (old code: XX000 "cache lookup
-- failed for function").
CREATE FUNCTION regress.ok_victim(data jsonb) RETURNS jsonb LANGUAGE plpgsql
    AS $$ BEGIN RETURN data || '{"victim": true}'; END $$;
CREATE FUNCTION regress.ok_dropper(data jsonb) RETURNS jsonb LANGUAGE plpgsql
    AS $$ BEGIN EXECUTE 'DROP FUNCTION IF EXISTS regress.ok_victim(jsonb)'; RETURN data; END $$;
SELECT es_register_upcaster('OkVictim', 1, 'regress.ok_victim(jsonb)');
SELECT es_register_upcaster('OkDropper', 1, 'regress.ok_dropper(jsonb)');
SELECT last_version FROM es_append('okdrop-1', 0,
  '[{"type": "OkVictim", "data": {}}, {"type": "OkDropper", "data": {}}, {"type": "OkVictim", "data": {}}]');
SELECT regexp_replace(regress.err($$SELECT * FROM es_read_stream('okdrop-1')$$), 'position \d+', 'position N');
-- and the feed, whose snapshot a parallel operation cannot take, refused
-- with a proper error when an upcaster calls it from a parallel plan (old
-- code: XX000)
CREATE FUNCTION regress.ok_feeder(data jsonb) RETURNS jsonb LANGUAGE plpgsql
    AS $$ BEGIN RETURN data || jsonb_build_object('head', event_store.es_head_position()); END $$;
SELECT es_register_upcaster('OkFeeder', 1, 'regress.ok_feeder(jsonb)');
SELECT last_version FROM es_append('okfeed-1', 0, 'OkFeeder', '{}');

-- 4. The pre-commit clean-up drops only the untouched row a skipped plain
-- INSERT created.  An erasure in the same transaction keeps its tombstone
-- (old code: deleted at commit, the name usable again, a later erasure
-- failing with 23505); a snapshot row referencing the stream keeps it (old
-- code: the foreign key broken in the live database).
SELECT last_version FROM es_append('okskip-1', 0, 'T', '{}', NULL, '01890000-0000-7000-8000-0000000000a1');
BEGIN;
INSERT INTO events (event_id, stream, type, data)
VALUES ('01890000-0000-7000-8000-0000000000a1', 'okskip-2', 'T', '{}')
ON CONFLICT (event_id) DO NOTHING;
SELECT es_erase_stream('okskip-2', 'test');
COMMIT;
SELECT name, version, erased_at IS NOT NULL AS erased FROM streams WHERE name = 'okskip-2';
SELECT regress.err($$SELECT * FROM es_append('okskip-2', NULL, 'T', '{}')$$);
SELECT regress.err($$SELECT es_erase_stream('okskip-2')$$);
BEGIN;
INSERT INTO events (event_id, stream, type, data)
VALUES ('01890000-0000-7000-8000-0000000000a1', 'okskip-3', 'T', '{}')
ON CONFLICT (event_id) DO NOTHING;
INSERT INTO snapshots (stream, version, state) VALUES ('okskip-3', 1, '{}');
COMMIT;
SELECT s.stream, t.name IS NOT NULL AS stream_row_kept
  FROM snapshots s LEFT JOIN streams t ON t.name = s.stream WHERE s.stream = 'okskip-3';
SELECT count(*) AS orphan_snapshots
  FROM snapshots s WHERE NOT EXISTS (SELECT 1 FROM streams t WHERE t.name = s.stream);
-- the untouched row of a skipped insert still goes
BEGIN;
INSERT INTO events (event_id, stream, type, data)
VALUES ('01890000-0000-7000-8000-0000000000a1', 'okskip-4', 'T', '{}')
ON CONFLICT (event_id) DO NOTHING;
COMMIT;
SELECT count(*) AS empty_stream_left FROM streams WHERE name = 'okskip-4';

-- 8. Erasure drops the stream's metadata: the tombstone keeps no user keys.
SELECT last_version FROM es_append('okerase-1', 0, 'T', '{}');
SELECT es_set_stream_metadata('okerase-1', '{"owner_email": "ann@example.com", "max_count": 5}');
SELECT es_erase_stream('okerase-1', 'request') AS erased;
SELECT metadata, erased_at IS NOT NULL AS erased FROM streams WHERE name = 'okerase-1';

-- 6. An append to a stream with max_age is not hidden at its commit, however
-- long its transaction ran: max_age never hides the stream's last append.
-- A later append hides it (old code: hidden from the moment it committed,
-- from every read and from the feed).
SELECT es_head_position() AS p6 \gset
SELECT last_version FROM es_append('okage-1', 0, 'T', '{"n": 1}');
SELECT es_set_stream_metadata('okage-1', '{"max_age": 1}');
BEGIN;
SELECT pg_sleep(1.2);
SELECT last_version FROM es_append('okage-1', 1, 'T', '{"n": 2}');
COMMIT;
SELECT string_agg(version::text, ',') AS read_stream FROM es_read_stream('okage-1');
SELECT string_agg(version::text, ',') AS feed FROM es_read_all(:p6, 100) WHERE stream = 'okage-1';
SELECT string_agg(CASE WHEN type = '$snapshot' THEN 'snap@' || version ELSE version::text END, ',') AS aggregate
  FROM es_load_aggregate('okage-1');
SELECT pg_sleep(1.2);
SELECT last_version FROM es_append('okage-1', 2, 'T', '{"n": 3}');
SELECT string_agg(version::text, ',') AS read_stream FROM es_read_stream('okage-1');
-- created_at never decreases within a stream
SELECT bool_and(e2.created_at >= e1.created_at) AS created_at_never_decreases
  FROM events e1 JOIN events e2 ON e2.stream = e1.stream AND e2.version = e1.version + 1
 WHERE e1.stream LIKE 'ok%';

-- 10. Reads in a plan with a Gather node, with their caches invalidated
-- just before (old code: XX000 "cannot update SecondarySnapshot during a
-- parallel operation").
CREATE TABLE regress.ok_big AS SELECT g AS id FROM generate_series(1, 50000) g;
ANALYZE regress.ok_big;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SELECT es_set_stream_metadata('okup-1', '{"note": "invalidate"}') IS NOT NULL AS invalidated;
SELECT count(*) > 0 AS gather_in_plan
  FROM regress.explain_json($$SELECT (SELECT count(*) FROM event_store.es_read_stream('okup-1')),
                                     count(*) FROM regress.ok_big$$) q,
       LATERAL jsonb_path_query(q::jsonb, 'strict $.**."Node Type"') n
 WHERE n #>> '{}' = 'Gather';
SELECT (SELECT count(*) FROM es_read_stream('okup-1')) AS read_stream,
       (SELECT count(*) FROM es_read_stream_at('okup-1', 1)) AS read_stream_at,
       (SELECT count(*) FROM es_load_aggregate('okup-1')) AS load_aggregate,
       (SELECT count(*) FROM es_load_snapshot('okup-1')) AS load_snapshot,
       (SELECT es_stream_version('okup-1')) AS stream_version,
       count(*) AS big
  FROM regress.ok_big;
SELECT regress.err($$SELECT (SELECT count(*) FROM event_store.es_read_stream('okfeed-1')), count(*) FROM regress.ok_big$$);
-- force_parallel_mode is debug_parallel_query from PostgreSQL 16 on
SELECT CASE WHEN current_setting('server_version_num')::int >= 160000
            THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END AS parallel_setting \gset
SET :parallel_setting = on;
SELECT count(*) FROM es_load_snapshot('okup-1');
SELECT es_stream_version('okup-1');
RESET :parallel_setting;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;

-- 12. SQLSTATEs of bad input to the SQL functions.
SELECT regress.err($$SELECT es_save_snapshot('', 1, '{}')$$);
SELECT regress.err($$SELECT es_save_snapshot(repeat('x', 5000), 1, '{}')$$);
SELECT regress.err($$SELECT es_save_snapshot('-x', 1, '{}')$$);
SELECT regress.err($$SELECT es_unregister_upcaster(NULL, NULL)$$);
SELECT regress.err($$SELECT es_unregister_upcaster('OkUp', NULL)$$);
SELECT regress.err($$SELECT es_register_upcaster(repeat('t', 501), 1, 'regress.ok_up(jsonb)')$$);

-- 5. Reads that fail inside subtransactions leave no memory behind (old
-- code: every failed read's result rows stayed until the transaction
-- ended; 200 reads of 500 one-kilobyte events here kept about 100 MB).
SELECT last_version FROM es_append('okmem-1', 0,
  (SELECT jsonb_agg(jsonb_build_object('type', 'T', 'data', jsonb_build_object('pad', repeat('x', 1000))))
     FROM generate_series(1, 500)));
CREATE FUNCTION regress.backend_memory() RETURNS bigint LANGUAGE sql
    AS $$ SELECT sum(total_bytes)::bigint FROM pg_backend_memory_contexts $$;
BEGIN;
SELECT regress.backend_memory() AS before \gset
DO $$
BEGIN
  FOR i IN 1..200 LOOP
    BEGIN
      PERFORM 1 / (count(*) - count(*)) FROM event_store.es_read_stream('okmem-1');
    EXCEPTION WHEN division_by_zero THEN
      NULL;
    END;
  END LOOP;
END $$;
SELECT regress.backend_memory() - :before < 1024 * 1024 AS within_a_megabyte;
COMMIT;


-- 6. Review findings, second round.
-- 6a. An upcaster whose own search_path leaves pg_temp out would search the
-- reader's temporary schema first while running as its owner: refused when
-- registered, and when a read resolves it after an ALTER.
CREATE FUNCTION regress.rv_path(d jsonb) RETURNS jsonb LANGUAGE sql
    SET search_path = regress AS $$ SELECT d || '{"path": 1}' $$;
SELECT regress.err($$SELECT es_register_upcaster('RvPath', 1, 'regress.rv_path(jsonb)')$$);
ALTER FUNCTION regress.rv_path(jsonb) SET search_path = regress, pg_temp;
SELECT es_register_upcaster('RvPath', 1, 'regress.rv_path(jsonb)');
SELECT last_version FROM es_append('rvpath-1', NULL, 'RvPath', '{}');
SELECT data FROM es_read_stream('rvpath-1');
ALTER FUNCTION regress.rv_path(jsonb) SET search_path = regress;
SELECT regress.err($$SELECT data FROM es_read_stream('rvpath-1')$$);
ALTER FUNCTION regress.rv_path(jsonb) RESET search_path;
SELECT data FROM es_read_stream('rvpath-1');

-- 6b. An upcaster runs read-only: it cannot write a table or take a
-- sequence's value in the reader's transaction.
CREATE TABLE regress.rv_log (note text);
CREATE SEQUENCE regress.rv_seq;
CREATE FUNCTION regress.rv_writes(d jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO regress.rv_log VALUES ('written by an upcaster');
  RETURN d;
END $$;
CREATE FUNCTION regress.rv_nextval(d jsonb) RETURNS jsonb LANGUAGE sql
    AS $$ SELECT d || jsonb_build_object('n', nextval('regress.rv_seq')) $$;
SELECT es_register_upcaster('RvWrites', 1, 'regress.rv_writes(jsonb)');
SELECT es_register_upcaster('RvNextval', 1, 'regress.rv_nextval(jsonb)');
SELECT last_version FROM es_append('rvwrites-1', NULL, 'RvWrites', '{}');
SELECT last_version FROM es_append('rvnextval-1', NULL, 'RvNextval', '{}');
SELECT regress.err($$SELECT data FROM es_read_stream('rvwrites-1')$$);
SELECT regress.err($$SELECT data FROM es_read_stream('rvnextval-1')$$);
SELECT count(*) AS rows_written FROM regress.rv_log;
-- the reader's transaction is not left read-only
BEGIN;
SELECT regress.err($$SELECT data FROM es_read_stream('rvwrites-1')$$);
INSERT INTO regress.rv_log VALUES ('the reader writes after the read');
SELECT current_setting('transaction_read_only') AS read_only;
ROLLBACK;

-- 6c. A change of upcasters is seen by a read later in the same statement.
CREATE FUNCTION regress.rv_same(d jsonb) RETURNS jsonb LANGUAGE sql
    AS $$ SELECT d || '{"same": 1}' $$;
CREATE FUNCTION regress.rv_read(s text) RETURNS jsonb LANGUAGE sql VOLATILE
    AS $$ SELECT jsonb_agg(data) FROM event_store.es_read_stream(s) $$;
SELECT last_version FROM es_append('rvsame-1', NULL, 'RvSame', '{"a": 1}');
SELECT regress.rv_read('rvsame-1') AS before;
WITH ins AS (
  INSERT INTO event_store.upcasters (type, from_schema_version, upcaster)
  VALUES ('RvSame', 1, 'regress.rv_same(jsonb)') RETURNING 1)
SELECT (SELECT count(*) FROM ins) AS inserted, regress.rv_read('rvsame-1') AS same_statement;

-- 6d. A change of rules rolled back to a savepoint does not refuse PREPARE.
BEGIN;
SAVEPOINT s;
SELECT es_set_stream_metadata('rvsame-1', '{"max_count": 1}') IS NOT NULL AS set;
ROLLBACK TO SAVEPOINT s;
PREPARE TRANSACTION 'es_rv_prepare';
COMMIT PREPARED 'es_rv_prepare';
SELECT metadata FROM event_store.streams WHERE name = 'rvsame-1';
-- ... while one that stays is refused, in a subtransaction that committed
BEGIN;
SAVEPOINT s;
SELECT es_set_stream_metadata('rvsame-1', '{"max_count": 1}') IS NOT NULL AS set;
RELEASE SAVEPOINT s;
PREPARE TRANSACTION 'es_rv_prepare';

-- 6e. A type whose chain already has a hole (as 0.1.0 could leave it)
-- refuses only changes of its own type that keep the hole.
ALTER TABLE event_store.upcasters DISABLE TRIGGER upcasters_inserted;
INSERT INTO event_store.upcasters (type, from_schema_version, upcaster)
VALUES ('RvHole', 1, 'regress.rv_same(jsonb)'), ('RvHole', 3, 'regress.rv_same(jsonb)');
ALTER TABLE event_store.upcasters ENABLE ALWAYS TRIGGER upcasters_inserted;
SELECT es_register_upcaster('RvOther', 1, 'regress.rv_same(jsonb)');
SELECT regress.err($$SELECT es_register_upcaster('RvHole', 4, 'regress.rv_same(jsonb)')$$);
INSERT INTO event_store.upcasters (type, from_schema_version, upcaster)
VALUES ('RvHole', 2, 'regress.rv_same(jsonb)');
SELECT type, array_agg(from_schema_version ORDER BY from_schema_version) AS chain
  FROM event_store.upcasters WHERE type IN ('RvHole', 'RvOther') GROUP BY type ORDER BY type;

-- 6f. Third review: an upcaster that sets transaction_read_only in its
-- body leaves the reader's transaction as it was; one that reaches for the
-- reader's cursors, or locks, or changes upcasters, is refused; a
-- search_path must end with pg_temp.
CREATE FUNCTION regress.rv_ro(d jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  SET transaction_read_only = on;
  RETURN d;
END $$;
SELECT es_register_upcaster('RvRo', 1, 'regress.rv_ro(jsonb)');
SELECT last_version FROM es_append('rvro-1', NULL, 'RvRo', '{}');
BEGIN;
SELECT count(*) FROM es_read_stream('rvro-1');
SELECT current_setting('transaction_read_only') AS read_only_after;
INSERT INTO regress.rv_log VALUES ('written after the read');
ROLLBACK;
CREATE FUNCTION regress.rv_fetch(d jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
  FOR r IN EXECUTE 'FETCH ALL FROM rv_cursor' LOOP
    d := d || jsonb_build_object('stolen', r.note);
  END LOOP;
  RETURN d;
END $$;
CREATE FUNCTION regress.rv_lock(d jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  PERFORM event_store._es_lock_upcasters();
  RETURN d;
END $$;
CREATE FUNCTION regress.rv_locktable(d jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  LOCK TABLE regress.rv_log IN EXCLUSIVE MODE;
  RETURN d;
END $$;
SELECT es_register_upcaster('RvFetch', 1, 'regress.rv_fetch(jsonb)');
SELECT es_register_upcaster('RvLock', 1, 'regress.rv_lock(jsonb)');
SELECT es_register_upcaster('RvLockTable', 1, 'regress.rv_locktable(jsonb)');
SELECT last_version FROM es_append('rvfetch-1', NULL, 'RvFetch', '{}');
SELECT last_version FROM es_append('rvlock-1', NULL, 'RvLock', '{}');
SELECT last_version FROM es_append('rvlocktable-1', NULL, 'RvLockTable', '{}');
INSERT INTO regress.rv_log VALUES ('the reader''s secret');
BEGIN;
DECLARE rv_cursor CURSOR FOR SELECT note FROM regress.rv_log;
SELECT regress.err($$SELECT data FROM es_read_stream('rvfetch-1')$$);
FETCH ALL FROM rv_cursor;
SELECT regress.err($$SELECT data FROM es_read_stream('rvlock-1')$$);
SELECT regress.err($$SELECT data FROM es_read_stream('rvlocktable-1')$$);
COMMIT;
CREATE FUNCTION regress.rv_first(d jsonb) RETURNS jsonb LANGUAGE sql
    SET search_path = pg_temp, regress AS $$ SELECT d $$;
SELECT regress.err($$SELECT es_register_upcaster('RvFirst', 1, 'regress.rv_first(jsonb)')$$);
DELETE FROM regress.rv_log;

-- 6g. Fourth review: the reader's open cursors are fenced off from
-- upcasters: PL/pgSQL's own FETCH, MOVE, CLOSE and OPEN on a refcursor
-- naming one fail the read, and so does a cursor an upcaster leaves open;
-- a FOR loop of the upcaster's own works, and the reader's cursor goes on.
INSERT INTO regress.rv_log VALUES ('row 1'), ('row 2'), ('row 3');
CREATE FUNCTION regress.rv_peek(d jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE c refcursor := 'rv_cur'; r record;
BEGIN
  FETCH c INTO r;
  RETURN d || jsonb_build_object('stolen', r.note);
END $$;
CREATE FUNCTION regress.rv_swap(d jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE c refcursor := 'rv_cur';
BEGIN
  CLOSE c;
  OPEN c FOR SELECT 'planted'::text AS note;
  RETURN d;
END $$;
CREATE FUNCTION regress.rv_plant(d jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE c refcursor := 'rv_planted';
BEGIN
  OPEN c FOR SELECT 'planted'::text AS note;
  RETURN d;
END $$;
CREATE FUNCTION regress.rv_loop(d jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE r record; n int := 0;
BEGIN
  FOR r IN SELECT g FROM generate_series(1, 3) g LOOP
    n := n + r.g;
  END LOOP;
  RETURN d || jsonb_build_object('sum', n);
END $$;
SELECT es_register_upcaster('RvPeek', 1, 'regress.rv_peek(jsonb)');
SELECT es_register_upcaster('RvSwap', 1, 'regress.rv_swap(jsonb)');
SELECT es_register_upcaster('RvPlant', 1, 'regress.rv_plant(jsonb)');
SELECT es_register_upcaster('RvLoop', 1, 'regress.rv_loop(jsonb)');
SELECT last_version FROM es_append('rvpeek-1', NULL, 'RvPeek', '{}');
SELECT last_version FROM es_append('rvswap-1', NULL, 'RvSwap', '{}');
SELECT last_version FROM es_append('rvplant-1', NULL, 'RvPlant', '{}');
SELECT last_version FROM es_append('rvloop-1', NULL, 'RvLoop', '{}');
BEGIN;
DECLARE rv_cur CURSOR FOR SELECT note FROM regress.rv_log ORDER BY note;
FETCH 1 FROM rv_cur;
SELECT regress.err($$SELECT data FROM es_read_stream('rvplant-1')$$);
SELECT data FROM es_read_stream('rvloop-1');
-- the reader's cursor is where it was, and nothing was planted
FETCH 1 FROM rv_cur;
SELECT name FROM pg_cursors ORDER BY name;
-- an upcaster that fetches from it fails the read (and the cursor, which
-- the refused fetch leaves failed)
SELECT regress.err($$SELECT data FROM es_read_stream('rvpeek-1')$$);
ROLLBACK;
-- an upcaster that closes the reader's cursor and opens its own under that
-- name fails the read; what it opened goes with the read's subtransaction
-- (the reader's cursor stays closed: CLOSE is not transactional)
BEGIN;
DECLARE rv_cur CURSOR FOR SELECT note FROM regress.rv_log ORDER BY note;
FETCH 1 FROM rv_cur;
SELECT regress.err($$SELECT data FROM es_read_stream('rvswap-1')$$);
SELECT name FROM pg_cursors ORDER BY name;
ROLLBACK;
DELETE FROM regress.rv_log;

DROP TABLE regress.ok_big;
DROP SCHEMA regress_ok_attacker CASCADE;
