-- es_read_stream, es_stream_version, es_head_position.
SET search_path = event_store, public;

SELECT last_version FROM es_append('read-1', 0,
  (SELECT jsonb_agg(jsonb_build_object('type', 'T' || i, 'data', jsonb_build_object('i', i)))
     FROM generate_series(1, 10) i));

-- Forwards: all, from a version, at most max_count.
SELECT string_agg(version::text, ' ') FROM es_read_stream('read-1');
SELECT string_agg(version::text, ' ') FROM es_read_stream('read-1', 4);
SELECT string_agg(version::text, ' ') FROM es_read_stream('read-1', 4, 3);
SELECT string_agg(version::text, ' ') FROM es_read_stream(stream => 'read-1', max_count => 2);
SELECT count(*) FROM es_read_stream('read-1', 11);
-- Backwards: from the end (from_version NULL), or from a version down.
SELECT string_agg(version::text, ' ') FROM es_read_stream('read-1', NULL, 3, true);
SELECT string_agg(version::text, ' ') FROM es_read_stream('read-1', 4, NULL, true);
SELECT string_agg(version::text, ' ') FROM es_read_stream('read-1', 4, 2, true);
SELECT string_agg(version::text, ' ') FROM es_read_stream('read-1', 100, NULL, true);
-- A stream that does not exist: no rows, version 0.
SELECT count(*) FROM es_read_stream('no-such-stream');
SELECT es_stream_version('read-1') AS existing, es_stream_version('no-such-stream') AS missing;

-- The rows are es_event composites with every column.
SELECT pg_typeof(e) AS type, e.stream, e.version, e.type, e.data, e.metadata, e.schema_version
  FROM es_read_stream('read-1', 1, 1) e;
SELECT attname, format_type(atttypid, atttypmod)
  FROM pg_attribute WHERE attrelid = 'event_store.es_event'::regclass AND attnum > 0 ORDER BY attnum;
-- A LIMIT that stops early.
SELECT version FROM es_read_stream('read-1') LIMIT 2;

-- Stream reads use the caller's snapshot: a transaction sees its own
-- appends; the feed head does not move until they commit.
SELECT es_head_position() AS h0 \gset
BEGIN;
SELECT last_version FROM es_append('read-1', 10, 'T11', '{}');
SELECT string_agg(version::text, ' ') FROM es_read_stream('read-1', 9);
SELECT es_stream_version('read-1');
SELECT es_head_position() = :h0 AS head_unmoved;
COMMIT;
SELECT es_head_position() - :h0 AS head_moved_by;
SELECT es_head_position() = (SELECT max(position) FROM events) AS head_is_newest;
-- The head takes a fresh snapshot: never inside a parallel plan.
-- force_parallel_mode is debug_parallel_query from PostgreSQL 16 on
SELECT CASE WHEN current_setting('server_version_num')::int >= 160000
            THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END AS parallel_setting \gset
SET :parallel_setting = on;
SELECT es_head_position() = (SELECT max(position) FROM events) AS head_in_parallel_mode;
RESET :parallel_setting;

-- Events appended by a plain INSERT read back the same way.
INSERT INTO events (stream, type, data) VALUES ('read-2', 'A', '{"x": 1}'), ('read-2', 'B', '{"x": 2}');
SELECT version, type, data FROM es_read_stream('read-2');

-- Result rows stay in memory up to the larger of event_store.read_mem and
-- work_mem, and spill to a temporary file past that (about 2MB here).
SELECT count(*) FROM (SELECT es_append('read-big', NULL, 'Padded',
       jsonb_build_object('pad', repeat('x', 1000))) FROM generate_series(1, 2000)) a;
CREATE FUNCTION pg_temp.temp_blocks_written(query text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    plan json;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) ' || query INTO plan;
    RETURN (plan -> 0 -> 'Plan' ->> 'Temp Written Blocks')::bigint;
END
$$;
SHOW event_store.read_mem;
SET work_mem = '64kB';
SELECT pg_temp.temp_blocks_written($$SELECT * FROM es_read_stream('read-big')$$) AS default_read_mem_no_spill;
SET event_store.read_mem = '64kB';
SELECT pg_temp.temp_blocks_written($$SELECT * FROM es_read_stream('read-big')$$) > 0 AS small_read_mem_spills;
SELECT pg_temp.temp_blocks_written($$SELECT * FROM es_load_aggregate('read-big')$$) > 0 AS aggregate_spills;
SET work_mem = '16MB';
SELECT pg_temp.temp_blocks_written($$SELECT * FROM es_read_stream('read-big')$$) AS larger_work_mem_applies;
RESET work_mem;
RESET event_store.read_mem;
