-- Snapshots, upcasting, time travel, stream metadata and retention, soft
-- delete and erasure (issue 6).  Streams and types of this file start with
-- "lc"; positions are printed relative to the head at the start.
SET search_path = event_store, public;
SELECT es_head_position() AS p0 \gset

-- Every read path over one stream, each row with its place in the result:
-- es_read_stream (forwards, backwards, from a version, at most 2),
-- es_read_stream_at (at the stream's version, at now()), es_read_all (with
-- and without a types filter), es_read_category (alone, and as the member of
-- a consumer group of 2 that reads the stream), es_load_aggregate.
CREATE FUNCTION regress.lc_read(s text, after bigint, types text[] DEFAULT NULL)
RETURNS TABLE (path text, n bigint, version bigint, type text, data jsonb,
               metadata jsonb, schema_version integer)
LANGUAGE plpgsql AS $$
DECLARE
  c text := event_store.es_category(s);
BEGIN
  RETURN QUERY SELECT '1 read_stream', r.ordinality, r.version, r.type, r.data, r.metadata, r.schema_version
    FROM event_store.es_read_stream(s) WITH ORDINALITY r;
  RETURN QUERY SELECT '2 read_stream backwards', r.ordinality, r.version, r.type, r.data, r.metadata, r.schema_version
    FROM event_store.es_read_stream(s, backwards => true) WITH ORDINALITY r;
  RETURN QUERY SELECT '3 read_stream from 2', r.ordinality, r.version, r.type, r.data, r.metadata, r.schema_version
    FROM event_store.es_read_stream(s, 2) WITH ORDINALITY r;
  RETURN QUERY SELECT '4 read_stream max 2', r.ordinality, r.version, r.type, r.data, r.metadata, r.schema_version
    FROM event_store.es_read_stream(s, NULL, 2) WITH ORDINALITY r;
  RETURN QUERY SELECT '5 read_stream_at version', r.ordinality, r.version, r.type, r.data, r.metadata, r.schema_version
    FROM event_store.es_read_stream_at(s, at_version => event_store.es_stream_version(s)) WITH ORDINALITY r;
  RETURN QUERY SELECT '6 read_stream_at time', r.ordinality, r.version, r.type, r.data, r.metadata, r.schema_version
    FROM event_store.es_read_stream_at(s, at_time => now()) WITH ORDINALITY r;
  RETURN QUERY SELECT '7 read_all', r.ordinality, r.version, r.type, r.data, r.metadata, r.schema_version
    FROM event_store.es_read_all(after, 10000) WITH ORDINALITY r WHERE r.stream = s;
  IF types IS NOT NULL THEN
    RETURN QUERY SELECT '8 read_all types', r.ordinality, r.version, r.type, r.data, r.metadata, r.schema_version
      FROM event_store.es_read_all(after, 10000, types) WITH ORDINALITY r WHERE r.stream = s;
  END IF;
  RETURN QUERY SELECT '9 read_category', r.ordinality, r.version, r.type, r.data, r.metadata, r.schema_version
    FROM event_store.es_read_category(c, after, 10000) WITH ORDINALITY r WHERE r.stream = s;
  RETURN QUERY SELECT '10 read_category member', r.ordinality, r.version, r.type, r.data, r.metadata, r.schema_version
    FROM event_store.es_read_category(c, after, 10000, event_store.es_consumer_member(s, 2), 2)
         WITH ORDINALITY r WHERE r.stream = s;
  RETURN QUERY SELECT '11 load_aggregate', r.ordinality, r.version, r.type, r.data, r.metadata, r.schema_version
    FROM event_store.es_load_aggregate(s) WITH ORDINALITY r;
END $$;

-- The versions each path returns, in its order: version/schema_version, or
-- snap@version for the snapshot of es_load_aggregate.
CREATE FUNCTION regress.lc_paths(s text, after bigint, types text[] DEFAULT NULL)
RETURNS TABLE (path text, events text)
LANGUAGE sql AS $$
  SELECT path, string_agg(CASE WHEN type = '$snapshot' THEN 'snap@' || version
                               ELSE version || '/' || schema_version END, ' ' ORDER BY n)
    FROM regress.lc_read(s, after, types)
   GROUP BY path ORDER BY split_part(path, ' ', 1)::int
$$;

-- Like lc_paths, but every path on one line: the same on every path or not.
CREATE FUNCTION regress.lc_visible(s text, after bigint) RETURNS text
LANGUAGE sql AS $$
  SELECT CASE WHEN count(DISTINCT coalesce(events, '-')) FILTER (WHERE path !~ '^(2|3|4) ') = 1
              THEN coalesce(min(events) FILTER (WHERE path ~ '^1 '), '(none)')
              ELSE string_agg(path || ': ' || coalesce(events, '-'), ' | ' ORDER BY split_part(path, ' ', 1)::int)
         END
    FROM (SELECT p.path, e.events
            FROM unnest(ARRAY['1 read_stream', '5 read_stream_at version', '6 read_stream_at time',
                              '7 read_all', '9 read_category', '10 read_category member',
                              '11 load_aggregate']) p(path)
            LEFT JOIN regress.lc_paths(s, after) e USING (path)) x
$$;

-- A role without any privilege on the tables, for the privilege checks.
CREATE ROLE regress_lc_user;

---------------------------------------------------------------------------
-- Upcasters
---------------------------------------------------------------------------
-- v1 -> v2 renames "name" to "full_name" (data only); v2 -> v3 adds a
-- default country and says in the metadata what it saw (data and metadata;
-- not STRICT: events without metadata get NULL).
CREATE FUNCTION regress.lc_opened_v2(data jsonb) RETURNS jsonb
LANGUAGE sql AS $$ SELECT (data - 'name') || jsonb_build_object('full_name', data -> 'name') $$;
CREATE FUNCTION regress.lc_opened_v3(data jsonb, metadata jsonb) RETURNS event_store.es_upcast
LANGUAGE sql AS $$
  SELECT ROW(data || '{"country": "NL"}',
             coalesce(metadata, '{}') || jsonb_build_object('had_metadata', metadata IS NOT NULL))::event_store.es_upcast
$$;

-- lcacct-1: v1 events, one stored at v2 (the chain starts there), one at v3
-- (nothing to do), and a type without upcasters.
SELECT last_version FROM es_append('lcacct-1', 0, 'LcOpened', '{"name": "Ann"}');
SELECT last_version FROM es_append('lcacct-1', 1, 'LcOpened', '{"full_name": "Bob"}', '{"m": 2}', NULL, 2);
SELECT last_version FROM es_append('lcacct-1', 2, 'LcDeposited', '{"amount": 10}', '{"m": 3}');
SELECT last_version FROM es_append('lcacct-1', 3, 'LcOpened', '{"full_name": "Cy", "country": "SE"}', NULL, NULL, 3);
SELECT last_version FROM es_append('lcacct-1', 4, 'LcOpened', '{"name": "Dee"}', '{"m": 5}');
-- lcacct-2: in the same category; an event stored above the chain stays as it is.
SELECT last_version FROM es_append('lcacct-2', 0,
  '[{"type": "LcOpened", "data": {"name": "Eve"}},
    {"type": "LcOpened", "data": {"x": 1}, "schema_version": 7},
    {"type": "LcDeposited", "data": {"amount": 5}}]');

-- No upcaster yet: every read returns what is stored.
SELECT version, type, data, metadata, schema_version FROM es_read_stream('lcacct-1');

-- Registering the chain.
SELECT es_register_upcaster('LcOpened', 1, 'regress.lc_opened_v2(jsonb)');
SELECT version, type, data, metadata, schema_version FROM es_read_stream('lcacct-1');
SELECT es_register_upcaster('LcOpened', 2, 'regress.lc_opened_v3(jsonb, jsonb)');
SELECT type, from_schema_version, upcaster FROM upcasters WHERE type LIKE 'Lc%' ORDER BY 1, 2;

-- Through the whole chain, with the schema version reached; LcDeposited and
-- the event stored at v3 unchanged, the one stored at v2 upcast once.
SELECT version, type, data, metadata, schema_version FROM es_read_stream('lcacct-1');
SELECT version, type, data, metadata, schema_version FROM es_read_stream('lcacct-2');

-- Every read path returns the same upcast events.
SELECT * FROM regress.lc_paths('lcacct-1', :p0, ARRAY['LcOpened']);
SELECT r.path, bool_and(r.data = s.data AND r.metadata IS NOT DISTINCT FROM s.metadata
                        AND r.schema_version = s.schema_version AND r.type = s.type) AS as_read_stream
  FROM regress.lc_read('lcacct-1', :p0, ARRAY['LcOpened']) r
  JOIN es_read_stream('lcacct-1') s USING (version)
 GROUP BY r.path ORDER BY split_part(r.path, ' ', 1)::int;
-- es_read_all and es_read_category over both streams.
SELECT stream, version, data, schema_version FROM es_read_all(:p0, 100, ARRAY['LcOpened'])
 WHERE stream LIKE 'lcacct-%' ORDER BY position;
SELECT stream, version, type, data ->> 'country' AS country, schema_version
  FROM es_read_category('lcacct', :p0, 100) ORDER BY position;
SELECT m AS member, stream, version, schema_version, data ->> 'full_name' AS full_name
  FROM generate_series(0, 1) m, LATERAL es_read_category('lcacct', :p0, 100, m, 2)
 WHERE type = 'LcOpened' ORDER BY m, position;
-- Time travel upcasts too.
SELECT version, data, schema_version FROM es_read_stream_at('lcacct-1', at_version => 2);
SELECT count(*), bool_and(schema_version = 3) AS all_v3 FROM es_read_stream_at('lcacct-1', at_time => now())
 WHERE type = 'LcOpened';
-- The snapshot tail of es_load_aggregate.
SELECT es_save_snapshot('lcacct-1', 2, '{"owners": ["Ann", "Bob"]}');
SELECT type, version, data, metadata, schema_version, position IS NULL AS no_position
  FROM es_load_aggregate('lcacct-1');

-- Stored events never change.
SELECT version, data, metadata, schema_version FROM events WHERE stream = 'lcacct-1' ORDER BY version;

-- Registration errors.
SELECT regress.err($$SELECT es_register_upcaster(NULL, 1, 'regress.lc_opened_v2(jsonb)')$$);
SELECT regress.err($$SELECT es_register_upcaster('LcX', NULL, 'regress.lc_opened_v2(jsonb)')$$);
SELECT regress.err($$SELECT es_register_upcaster('LcX', 1, NULL)$$);
SELECT regress.err($$SELECT es_register_upcaster('', 1, 'regress.lc_opened_v2(jsonb)')$$);
SELECT regress.err(format('SELECT es_register_upcaster(%L, 1, %L)', repeat('t', 501), 'regress.lc_opened_v2(jsonb)'));
SELECT regress.err($$SELECT es_register_upcaster('LcX', 0, 'regress.lc_opened_v2(jsonb)')$$);
SELECT regress.err($$SELECT es_register_upcaster('LcX', -1, 'regress.lc_opened_v2(jsonb)')$$);
SELECT regress.err($$SELECT es_register_upcaster('LcX', 2147483647, 'regress.lc_opened_v2(jsonb)')$$);
-- the limits themselves are accepted
SELECT es_register_upcaster(repeat('t', 500), 1, 'regress.lc_opened_v2(jsonb)');
SELECT es_unregister_upcaster(repeat('t', 500), 1);
SELECT es_register_upcaster('LcX', 2147483646, 'regress.lc_opened_v2(jsonb)');
SELECT es_unregister_upcaster('LcX', 2147483646);
-- a function that does not exist
SELECT regress.err($$SELECT es_register_upcaster('LcX', 1, 'regress.lc_no_such(jsonb)')$$);
SELECT regress.err($$SELECT es_register_upcaster('LcX', 1, 'regress.lc_opened_v2(text)')$$);
SELECT regress.err($$SELECT es_register_upcaster('LcX', 1, 0::oid::regprocedure)$$);
-- wrong signatures
CREATE FUNCTION regress.lc_bad_ret(data jsonb) RETURNS text LANGUAGE sql AS $$ SELECT data::text $$;
CREATE FUNCTION regress.lc_bad_arg(data text) RETURNS jsonb LANGUAGE sql AS $$ SELECT data::jsonb $$;
CREATE FUNCTION regress.lc_bad_two(data jsonb, metadata jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT data $$;
CREATE FUNCTION regress.lc_bad_one_upcast(data jsonb) RETURNS event_store.es_upcast
  LANGUAGE sql AS $$ SELECT ROW(data, NULL)::event_store.es_upcast $$;
CREATE FUNCTION regress.lc_bad_set(data jsonb) RETURNS SETOF jsonb LANGUAGE sql AS $$ SELECT data $$;
CREATE FUNCTION regress.lc_bad_three(a jsonb, b jsonb, c jsonb) RETURNS event_store.es_upcast
  LANGUAGE sql AS $$ SELECT ROW(a, b)::event_store.es_upcast $$;
CREATE FUNCTION regress.lc_bad_none() RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
CREATE PROCEDURE regress.lc_bad_proc(data jsonb) LANGUAGE sql AS $$ SELECT 1 $$;
SELECT regress.err($$SELECT es_register_upcaster('LcX', 1, 'regress.lc_bad_ret(jsonb)')$$);
SELECT regress.err($$SELECT es_register_upcaster('LcX', 1, 'regress.lc_bad_arg(text)')$$);
SELECT regress.err($$SELECT es_register_upcaster('LcX', 1, 'regress.lc_bad_two(jsonb, jsonb)')$$);
SELECT regress.err($$SELECT es_register_upcaster('LcX', 1, 'regress.lc_bad_one_upcast(jsonb)')$$);
SELECT regress.err($$SELECT es_register_upcaster('LcX', 1, 'regress.lc_bad_set(jsonb)')$$);
SELECT regress.err($$SELECT es_register_upcaster('LcX', 1, 'regress.lc_bad_three(jsonb, jsonb, jsonb)')$$);
SELECT regress.err($$SELECT es_register_upcaster('LcX', 1, 'regress.lc_bad_none()')$$);
SELECT regress.err($$SELECT es_register_upcaster('LcX', 1, 'regress.lc_bad_proc(jsonb)')$$);
SELECT regress.err($$SELECT es_register_upcaster('LcX', 1, 'pg_catalog.jsonb_strip_nulls(jsonb)')$$) AS builtin_ok_signature;
SELECT es_unregister_upcaster('LcX', 1);
-- duplicates, and holes in a chain: only next to its ends
SELECT regress.err($$SELECT es_register_upcaster('LcOpened', 1, 'regress.lc_opened_v2(jsonb)')$$);
SELECT regress.err($$SELECT es_register_upcaster('LcOpened', 2, 'regress.lc_opened_v2(jsonb)')$$);
SELECT regress.err($$SELECT es_register_upcaster('LcOpened', 4, 'regress.lc_opened_v2(jsonb)')$$);
SELECT es_register_upcaster('LcChain', 5, 'regress.lc_opened_v2(jsonb)');
SELECT regress.err($$SELECT es_register_upcaster('LcChain', 3, 'regress.lc_opened_v2(jsonb)')$$);
SELECT regress.err($$SELECT es_register_upcaster('LcChain', 7, 'regress.lc_opened_v2(jsonb)')$$);
SELECT es_register_upcaster('LcChain', 4, 'regress.lc_opened_v2(jsonb)');
SELECT es_register_upcaster('LcChain', 6, 'regress.lc_opened_v2(jsonb)');
SELECT string_agg(from_schema_version::text, ' ' ORDER BY from_schema_version) FROM upcasters WHERE type = 'LcChain';
-- unregistering: only the ends
SELECT regress.err($$SELECT es_unregister_upcaster('LcChain', 5)$$);
SELECT regress.err($$SELECT es_unregister_upcaster('LcChain', 3)$$);
SELECT regress.err($$SELECT es_unregister_upcaster('LcChain', 7)$$);
SELECT regress.err($$SELECT es_unregister_upcaster('LcChain', NULL)$$);
SELECT regress.err($$SELECT es_unregister_upcaster('LcNoSuchType', 1)$$);
SELECT regress.err($$SELECT es_unregister_upcaster(NULL, 1)$$);
SELECT es_unregister_upcaster('LcChain', 6);
SELECT es_unregister_upcaster('LcChain', 4);
SELECT es_unregister_upcaster('LcChain', 5);
SELECT count(*) AS lcchain_left FROM upcasters WHERE type = 'LcChain';

-- Registering needs membership in the function's owner, then SELECT and
-- INSERT on upcasters.
CREATE FUNCTION regress.lc_user_fn(data jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT data $$;
ALTER FUNCTION regress.lc_user_fn(jsonb) OWNER TO regress_lc_user;
SET ROLE regress_lc_user;
SELECT regress.err($$SELECT event_store.es_register_upcaster('LcUser', 1, 'regress.lc_opened_v2(jsonb)')$$);
SELECT regress.err($$SELECT event_store.es_register_upcaster('LcUser', 1, 'regress.lc_user_fn(jsonb)')$$);
RESET ROLE;
GRANT SELECT ON upcasters TO regress_lc_user;
SET ROLE regress_lc_user;
SELECT regress.err($$SELECT event_store.es_register_upcaster('LcUser', 1, 'regress.lc_user_fn(jsonb)')$$);
RESET ROLE;
GRANT INSERT ON upcasters TO regress_lc_user;
SET ROLE regress_lc_user;
SELECT event_store.es_register_upcaster('LcUser', 1, 'regress.lc_user_fn(jsonb)');
RESET ROLE;
SELECT es_unregister_upcaster('LcUser', 1);
REVOKE ALL ON upcasters FROM regress_lc_user;

-- Upcasters that break the rules fail the read with a clear error (the
-- position in the message is masked).
CREATE FUNCTION regress.lc_null_data(data jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT NULL::jsonb $$;
CREATE FUNCTION regress.lc_strict(data jsonb, metadata jsonb) RETURNS event_store.es_upcast
  LANGUAGE sql STRICT AS $$ SELECT ROW(data, metadata)::event_store.es_upcast $$;
CREATE FUNCTION regress.lc_null_in_row(data jsonb, metadata jsonb) RETURNS event_store.es_upcast
  LANGUAGE sql AS $$ SELECT ROW(NULL, metadata)::event_store.es_upcast $$;
CREATE FUNCTION regress.lc_md_array(data jsonb, metadata jsonb) RETURNS event_store.es_upcast
  LANGUAGE sql AS $$ SELECT ROW(data, '[1]')::event_store.es_upcast $$;
CREATE FUNCTION regress.lc_md_json_null(data jsonb, metadata jsonb) RETURNS event_store.es_upcast
  LANGUAGE sql AS $$ SELECT ROW(data || '{"up": true}', 'null')::event_store.es_upcast $$;
SELECT last_version FROM es_append('lcbad-1', 0, 'LcBad', '{"a": 1}');
SELECT last_version FROM es_append('lcbad-2', 0, 'LcBad', '{"a": 1}', '{"m": 1}');
SELECT es_register_upcaster('LcBad', 1, 'regress.lc_null_data(jsonb)');
SELECT regexp_replace(regress.err($$SELECT * FROM es_read_stream('lcbad-1')$$), 'position \d+', 'position N');
SELECT es_unregister_upcaster('LcBad', 1);
SELECT es_register_upcaster('LcBad', 1, 'regress.lc_strict(jsonb, jsonb)');
SELECT regexp_replace(regress.err($$SELECT * FROM es_read_stream('lcbad-1')$$), 'position \d+', 'position N');
-- with metadata a strict one is called
SELECT data, metadata, schema_version FROM es_read_stream('lcbad-2');
SELECT es_unregister_upcaster('LcBad', 1);
SELECT es_register_upcaster('LcBad', 1, 'regress.lc_null_in_row(jsonb, jsonb)');
SELECT regexp_replace(regress.err($$SELECT * FROM es_read_stream('lcbad-1')$$), 'position \d+', 'position N');
SELECT es_unregister_upcaster('LcBad', 1);
SELECT es_register_upcaster('LcBad', 1, 'regress.lc_md_array(jsonb, jsonb)');
SELECT regexp_replace(regress.err($$SELECT * FROM es_read_stream('lcbad-1')$$), 'position \d+', 'position N');
SELECT es_unregister_upcaster('LcBad', 1);
-- JSON null metadata means none
SELECT es_register_upcaster('LcBad', 1, 'regress.lc_md_json_null(jsonb, jsonb)');
SELECT data, metadata IS NULL AS no_metadata, schema_version FROM es_read_stream('lcbad-2');
SELECT es_unregister_upcaster('LcBad', 1);
SELECT data, metadata, schema_version FROM es_read_stream('lcbad-2');
-- an upcaster whose function was dropped (the cache is loaded after the drop;
-- the function's oid is masked)
CREATE FUNCTION regress.lc_dropped(data jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT data $$;
SELECT es_register_upcaster('LcBad', 1, 'regress.lc_dropped(jsonb)');
DROP FUNCTION regress.lc_dropped(jsonb);
SELECT regexp_replace(regress.err($$SELECT * FROM es_read_stream('lcbad-1')$$), '(function|position) \d+', '\1 N', 'g');
SELECT es_unregister_upcaster('LcBad', 1);
SELECT data, schema_version FROM es_read_stream('lcbad-1');

-- A registration rolled back is forgotten by this session's cache.
SELECT last_version FROM es_append('lccache-1', 0, 'LcCached', '{"v": 1}');
CREATE FUNCTION regress.lc_cached_v2(data jsonb) RETURNS jsonb
LANGUAGE sql AS $$ SELECT data || '{"v": 2}' $$;
BEGIN;
SELECT es_register_upcaster('LcCached', 1, 'regress.lc_cached_v2(jsonb)');
SELECT data, schema_version FROM es_read_stream('lccache-1');
ROLLBACK;
SELECT data, schema_version FROM es_read_stream('lccache-1');

-- A registration committed by another session is seen by the next read
-- here, and so is its removal.
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT format('dbname=%s host=%s port=%s user=%s', current_database(),
              split_part(current_setting('unix_socket_directories'), ',', 1),
              current_setting('port'), current_user) AS lc_conninfo \gset
SELECT dblink_connect('lc_other', :'lc_conninfo');
SELECT data, schema_version FROM es_read_stream('lccache-1');
SELECT * FROM dblink('lc_other', $$SELECT event_store.es_register_upcaster('LcCached', 1, 'regress.lc_cached_v2(jsonb)')::text$$) AS t(registered text);
SELECT data, schema_version FROM es_read_stream('lccache-1');
SELECT stream, data, schema_version FROM es_read_all(:p0, 1000, ARRAY['LcCached']);
SELECT * FROM dblink('lc_other', $$SELECT event_store.es_unregister_upcaster('LcCached', 1)::text$$) AS t(unregistered text);
SELECT data, schema_version FROM es_read_stream('lccache-1');
SELECT stream, data, schema_version FROM es_read_all(:p0, 1000, ARRAY['LcCached']);
-- Stream metadata set by another session applies to the next read here.
SELECT last_version FROM es_append('lccache-2', 0,
  '[{"type": "LcT", "data": 1}, {"type": "LcT", "data": 2}, {"type": "LcT", "data": 3}]');
SELECT regress.lc_visible('lccache-2', :p0);
SELECT * FROM dblink('lc_other', $$SELECT event_store.es_set_stream_metadata('lccache-2', '{"max_count": 1}')$$) AS t(metadata jsonb);
SELECT regress.lc_visible('lccache-2', :p0);
SELECT * FROM dblink('lc_other', $$SELECT event_store.es_set_stream_metadata('lccache-2', '{}')$$) AS t(metadata jsonb);
SELECT regress.lc_visible('lccache-2', :p0);
SELECT dblink_disconnect('lc_other');

---------------------------------------------------------------------------
-- Time travel
---------------------------------------------------------------------------
-- A restore (the owner) may give created_at: three days of LcOpened v1.
INSERT INTO events (stream, type, data, created_at) VALUES
  ('lctt-1', 'LcOpened', '{"name": "d1"}', '2020-01-01 00:00:00+00'),
  ('lctt-1', 'LcOpened', '{"name": "d2"}', '2020-01-02 00:00:00+00'),
  ('lctt-1', 'LcOpened', '{"name": "d3"}', '2020-01-03 00:00:00+00');
SELECT version, data, schema_version FROM es_read_stream_at('lctt-1', at_time => '2020-01-02 00:00:00+00');
SELECT version FROM es_read_stream_at('lctt-1', at_time => '2020-01-01 23:59:59.999999+00');
SELECT count(*) FROM es_read_stream_at('lctt-1', at_time => '2019-12-31 00:00:00+00');
SELECT string_agg(version::text, ' ') FROM es_read_stream_at('lctt-1', at_time => now());
SELECT string_agg(version::text, ' ') FROM es_read_stream_at('lctt-1', at_version => 2);
SELECT string_agg(version::text, ' ') FROM es_read_stream_at('lctt-1', 1);
SELECT count(*) FROM es_read_stream_at('lctt-1', at_version => 0);
SELECT string_agg(version::text, ' ') FROM es_read_stream_at('lctt-1', at_version => 99);
SELECT count(*) FROM es_read_stream_at('lc-nosuch', at_version => 3);
SELECT regress.err($$SELECT * FROM es_read_stream_at('lctt-1')$$);
SELECT regress.err($$SELECT * FROM es_read_stream_at('lctt-1', 1, now())$$);
SELECT regress.err($$SELECT * FROM es_read_stream_at('lctt-1', at_version => -1)$$);
SELECT regress.err($$SELECT * FROM es_read_stream_at('lctt-1', at_time => 'infinity')$$);
SELECT regress.err($$SELECT * FROM es_read_stream_at('lctt-1', at_time => '-infinity')$$);
SELECT regress.err($$SELECT * FROM es_read_stream_at(NULL, at_version => 1)$$);
SELECT regress.err($$SELECT * FROM es_read_stream_at('', at_version => 1)$$);
SELECT regress.err($$SELECT * FROM es_read_stream_at('-x', at_version => 1)$$);
SET ROLE regress_lc_user;
SELECT regress.err($$SELECT * FROM event_store.es_read_stream_at('lctt-1', at_version => 1)$$);
RESET ROLE;

---------------------------------------------------------------------------
-- Stream metadata and retention
---------------------------------------------------------------------------
SELECT es_head_position() AS pret \gset
SELECT last_version FROM es_append('lcret-1', 0,
  (SELECT jsonb_agg(jsonb_build_object('type', 'LcTick', 'data', i)) FROM generate_series(1, 5) i));
SELECT last_version FROM es_append('lcret-2', 0,
  (SELECT jsonb_agg(jsonb_build_object('type', 'LcTick', 'data', i)) FROM generate_series(1, 5) i));
-- lcret-3: two events two hours old (given by the owner), two new ones.
INSERT INTO events (stream, type, data, created_at) VALUES
  ('lcret-3', 'LcTick', '1', now() - interval '2 hours'),
  ('lcret-3', 'LcTick', '2', now() - interval '2 hours');
SELECT last_version FROM es_append('lcret-3', 2, '[{"type": "LcTick", "data": 3}, {"type": "LcTick", "data": 4}]');
SELECT s, regress.lc_visible(s, :pret) FROM unnest(ARRAY['lcret-1', 'lcret-2', 'lcret-3']) s;

SELECT es_set_stream_metadata('lcret-1', '{"max_count": 2}');
SELECT es_set_stream_metadata('lcret-2', '{"truncate_before": 3, "owner": "team-a"}');
SELECT es_set_stream_metadata('lcret-3', '{"max_age": 3600}');
SELECT name, metadata FROM streams WHERE name LIKE 'lcret-%' ORDER BY name;
-- Every read path, each rule.
SELECT * FROM regress.lc_paths('lcret-1', :pret, ARRAY['LcTick']);
SELECT * FROM regress.lc_paths('lcret-2', :pret, ARRAY['LcTick']);
SELECT * FROM regress.lc_paths('lcret-3', :pret, ARRAY['LcTick']);
-- reading from a hidden version, backwards into hidden ones, time travel to
-- a hidden version
SELECT string_agg(version::text, ' ') FROM es_read_stream('lcret-1', 1, 1);
SELECT string_agg(version::text, ' ') FROM es_read_stream('lcret-1', 4, NULL, true);
SELECT string_agg(version::text, ' ') FROM es_read_stream('lcret-2', 3, 10, true);
SELECT count(*) FROM es_read_stream_at('lcret-1', at_version => 3);
SELECT string_agg(version::text, ' ') FROM es_read_stream_at('lcret-1', at_version => 4);
-- the feed's max_count counts the events returned, not the hidden ones
SELECT string_agg(stream || ':' || version, ' ') FROM es_read_all(:pret, 3);
SELECT string_agg(stream || ':' || version, ' ') FROM es_read_category('lcret', :pret, 3);
-- the version is the stream's, whatever the rules hide
SELECT s, es_stream_version(s) FROM unnest(ARRAY['lcret-1', 'lcret-2', 'lcret-3']) s;
-- max_count keeps the newest N as the stream grows
SELECT last_version FROM es_append('lcret-1', 5, 'LcTick', '6');
SELECT regress.lc_visible('lcret-1', :pret);
-- the stored events are all still there
SELECT stream, count(*) FROM events WHERE stream LIKE 'lcret-%' GROUP BY stream ORDER BY stream;
-- rules combine: hidden if any rule hides it
SELECT es_set_stream_metadata('lcret-1', '{"max_count": 4, "truncate_before": 4}');
SELECT regress.lc_visible('lcret-1', :pret);
SELECT es_set_stream_metadata('lcret-3', '{"max_age": 3600, "max_count": 1}');
SELECT regress.lc_visible('lcret-3', :pret);
-- set replaces the whole object; null values are no rule
SELECT es_set_stream_metadata('lcret-2', '{"max_count": null, "max_age": null, "truncate_before": null}');
SELECT regress.lc_visible('lcret-2', :pret);
SELECT es_set_stream_metadata('lcret-2', '{"truncate_before": 0}');
SELECT regress.lc_visible('lcret-2', :pret);
SELECT es_set_stream_metadata('lcret-2', '{"max_count": 1.0}');
SELECT regress.lc_visible('lcret-2', :pret);
-- rules larger than the stream hide nothing
SELECT es_set_stream_metadata('lcret-2', '{"max_count": 9223372036854775807, "max_age": 3153600000}');
SELECT regress.lc_visible('lcret-2', :pret);
-- your own keys are free, nested ones are not rules
SELECT es_set_stream_metadata('lcret-2', '{"owner": "x", "nested": {"max_count": -1, "deleted_at": 1}}');
SELECT regress.lc_visible('lcret-2', :pret);
-- removing the rules shows every event again
SELECT es_set_stream_metadata(s, '{}') FROM unnest(ARRAY['lcret-1', 'lcret-2', 'lcret-3']) s;
SELECT s, regress.lc_visible(s, :pret) FROM unnest(ARRAY['lcret-1', 'lcret-2', 'lcret-3']) s;

-- Metadata of the wrong shape; nothing is stored.
SELECT es_set_stream_metadata('lcret-2', '{"keep": "me"}');
SELECT regress.err($$SELECT es_set_stream_metadata('lcret-2', NULL)$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lcret-2', '[]')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lcret-2', '"max_count"')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lcret-2', '3')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lcret-2', 'null')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lcret-2', '{"max_count": 0}')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lcret-2', '{"max_count": -1}')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lcret-2', '{"max_count": 1.5}')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lcret-2', '{"max_count": "3"}')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lcret-2', '{"max_count": true}')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lcret-2', '{"max_count": [3]}')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lcret-2', '{"max_count": 9223372036854775808}')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lcret-2', '{"max_age": 0}')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lcret-2', '{"max_age": -60}')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lcret-2', '{"max_age": 2.5}')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lcret-2', '{"max_age": "60"}')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lcret-2', '{"truncate_before": -1}')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lcret-2', '{"truncate_before": 0.5}')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lcret-2', '{"truncate_before": "2"}')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lcret-2', '{"truncate_before": {}}')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lcret-2', '{"deleted_at": "2020-01-01"}')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lcret-2', '{"deleted_at": null}')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lcret-2', '{"owner": "x", "max_count": 2, "max_age": 0}')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lc-nosuch', '{}')$$);
SELECT regress.err($$SELECT es_set_stream_metadata(NULL, '{}')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('', '{}')$$);
SELECT metadata FROM streams WHERE name = 'lcret-2';
-- it takes INSERT on events
SET ROLE regress_lc_user;
SELECT regress.err($$SELECT event_store.es_set_stream_metadata('lcret-2', '{}')$$);
RESET ROLE;
SELECT metadata FROM streams WHERE name = 'lcret-2';
SELECT es_set_stream_metadata('lcret-2', '{}');

---------------------------------------------------------------------------
-- Snapshots
---------------------------------------------------------------------------
SELECT last_version FROM es_append('lcsnap-1', 0,
  (SELECT jsonb_agg(jsonb_build_object('type', 'LcTick', 'data', i)) FROM generate_series(1, 5) i));
SELECT count(*) FROM es_load_snapshot('lcsnap-1');
SELECT type, version, data FROM es_load_aggregate('lcsnap-1');
SELECT es_save_snapshot('lcsnap-1', 3, '{"sum": 6}');
SELECT version, state, schema_version, created_at IS NOT NULL AS has_time FROM es_load_snapshot('lcsnap-1');
-- the newest is kept: an older one is refused with false, the same version replaces
SELECT es_save_snapshot('lcsnap-1', 2, '{"sum": 3}');
SELECT version, state FROM es_load_snapshot('lcsnap-1');
SELECT es_save_snapshot('lcsnap-1', 3, '{"sum": 6, "again": true}');
SELECT version, state FROM es_load_snapshot('lcsnap-1');
SELECT es_save_snapshot('lcsnap-1', 4, '{"total": 10}', 2);
SELECT version, state, schema_version FROM es_load_snapshot('lcsnap-1');
SELECT count(*) AS rows_kept FROM snapshots WHERE stream = 'lcsnap-1';
-- the aggregate: the snapshot as a $snapshot row, then the events after it
SELECT type, version, data, schema_version, position IS NULL AS no_position, metadata IS NULL AS no_metadata,
       event_id IS NULL AS no_id, created_at IS NOT NULL AS has_time, stream
  FROM es_load_aggregate('lcsnap-1');
SELECT string_agg(type || ':' || version, ' ') FROM es_load_aggregate('lcsnap-1', 2);
-- a snapshot of an older schema is ignored
SELECT count(*) FROM es_load_snapshot('lcsnap-1', 3);
SELECT string_agg(type || ':' || version, ' ') FROM es_load_aggregate('lcsnap-1', 3);
-- at the stream's version: nothing after it
SELECT es_save_snapshot('lcsnap-1', 5, '{"total": 15}', 2);
SELECT string_agg(type || ':' || version, ' ') FROM es_load_aggregate('lcsnap-1');
-- unknown streams have none
SELECT count(*) FROM es_load_snapshot('lc-nosuch');
SELECT count(*) FROM es_load_aggregate('lc-nosuch');
-- errors
SELECT regress.err($$SELECT es_save_snapshot(NULL, 1, '{}')$$);
SELECT regress.err($$SELECT es_save_snapshot('lcsnap-1', NULL, '{}')$$);
SELECT regress.err($$SELECT es_save_snapshot('lcsnap-1', 1, NULL)$$);
SELECT regress.err($$SELECT es_save_snapshot('lcsnap-1', 1, '{}', NULL)$$);
SELECT regress.err($$SELECT es_save_snapshot('lcsnap-1', 0, '{}')$$);
SELECT regress.err($$SELECT es_save_snapshot('lcsnap-1', -1, '{}')$$);
SELECT regress.err($$SELECT es_save_snapshot('lcsnap-1', 1, '{}', 0)$$);
SELECT regress.err($$SELECT es_save_snapshot('lcsnap-1', 1, '{}', -2)$$);
SELECT regress.err($$SELECT es_save_snapshot('lcsnap-1', 6, '{}')$$);
SELECT regress.err($$SELECT es_save_snapshot('lc-nosuch', 1, '{}')$$);
SELECT regress.err($$SELECT * FROM es_load_snapshot(NULL)$$);
SELECT regress.err($$SELECT * FROM es_load_snapshot('')$$);
SELECT regress.err($$SELECT * FROM es_load_snapshot('lcsnap-1', NULL)$$);
SELECT regress.err($$SELECT * FROM es_load_snapshot('lcsnap-1', 0)$$);
SELECT regress.err($$SELECT * FROM es_load_aggregate(NULL)$$);
SELECT regress.err($$SELECT * FROM es_load_aggregate('')$$);
SELECT regress.err($$SELECT * FROM es_load_aggregate('lcsnap-1', NULL)$$);
SELECT regress.err($$SELECT * FROM es_load_aggregate('lcsnap-1', 0)$$);
SELECT version, state FROM es_load_snapshot('lcsnap-1');
-- privileges: saving takes SELECT on streams, and on snapshots SELECT,
-- INSERT and UPDATE; loading SELECT on streams and snapshots (and events)
SET ROLE regress_lc_user;
SELECT regress.err($$SELECT event_store.es_save_snapshot('lcsnap-1', 5, '{}')$$);
SELECT regress.err($$SELECT * FROM event_store.es_load_snapshot('lcsnap-1')$$);
SELECT regress.err($$SELECT * FROM event_store.es_load_aggregate('lcsnap-1')$$);
RESET ROLE;
GRANT SELECT ON streams, snapshots TO regress_lc_user;
SET ROLE regress_lc_user;
SELECT regress.err($$SELECT event_store.es_save_snapshot('lcsnap-1', 5, '{}')$$);
SELECT version, state FROM event_store.es_load_snapshot('lcsnap-1');
SELECT regress.err($$SELECT * FROM event_store.es_load_aggregate('lcsnap-1')$$);
RESET ROLE;
GRANT INSERT ON snapshots TO regress_lc_user;
SET ROLE regress_lc_user;
SELECT regress.err($$SELECT event_store.es_save_snapshot('lcsnap-1', 5, '{}')$$);
RESET ROLE;
GRANT UPDATE ON snapshots TO regress_lc_user;
GRANT SELECT ON events TO regress_lc_user;
SET ROLE regress_lc_user;
SELECT event_store.es_save_snapshot('lcsnap-1', 5, '{"total": 15, "by": "user"}', 2);
SELECT string_agg(type || ':' || version || ' ' || data, ', ') FROM event_store.es_load_aggregate('lcsnap-1');
RESET ROLE;
REVOKE ALL ON streams, snapshots, events FROM regress_lc_user;

-- Retention makes a snapshot unusable when it would stand for events a
-- read no longer returns (the events after it must all be returned).
SELECT last_version FROM es_append('lcsnap-2', 0,
  (SELECT jsonb_agg(jsonb_build_object('type', 'LcTick', 'data', i)) FROM generate_series(1, 5) i));
SELECT es_save_snapshot('lcsnap-2', 2, '{"upto": 2}');
SELECT es_set_stream_metadata('lcsnap-2', '{"truncate_before": 3}');
SELECT count(*) AS usable FROM es_load_snapshot('lcsnap-2');
SELECT string_agg(type || ':' || version, ' ') FROM es_load_aggregate('lcsnap-2');
SELECT es_set_stream_metadata('lcsnap-2', '{"truncate_before": 4}');
SELECT count(*) AS usable FROM es_load_snapshot('lcsnap-2');
SELECT string_agg(type || ':' || version, ' ') FROM es_load_aggregate('lcsnap-2');
-- saving below the truncation point is refused, just above it accepted
SELECT regress.err($$SELECT es_save_snapshot('lcsnap-2', 2, '{}')$$);
SELECT es_save_snapshot('lcsnap-2', 3, '{"upto": 3}');
SELECT string_agg(type || ':' || version, ' ') FROM es_load_aggregate('lcsnap-2');
-- max_count: usable while the events after it are the newest N or fewer
SELECT es_set_stream_metadata('lcsnap-2', '{"max_count": 2}');
SELECT count(*) AS usable FROM es_load_snapshot('lcsnap-2');
SELECT string_agg(type || ':' || version, ' ') FROM es_load_aggregate('lcsnap-2');
SELECT es_set_stream_metadata('lcsnap-2', '{"max_count": 1}');
SELECT count(*) AS usable FROM es_load_snapshot('lcsnap-2');
SELECT string_agg(type || ':' || version, ' ') FROM es_load_aggregate('lcsnap-2');
SELECT es_set_stream_metadata('lcsnap-2', '{}');
SELECT string_agg(type || ':' || version, ' ') FROM es_load_aggregate('lcsnap-2');
-- max_age: usable while the event after it has not expired
INSERT INTO events (stream, type, data, created_at) VALUES
  ('lcsnap-3', 'LcTick', '1', now() - interval '2 hours'),
  ('lcsnap-3', 'LcTick', '2', now() - interval '2 hours');
SELECT last_version FROM es_append('lcsnap-3', 2, '[{"type": "LcTick", "data": 3}, {"type": "LcTick", "data": 4}]');
SELECT es_save_snapshot('lcsnap-3', 1, '{"upto": 1}');
SELECT es_set_stream_metadata('lcsnap-3', '{"max_age": 3600}');
SELECT count(*) AS usable FROM es_load_snapshot('lcsnap-3');
SELECT string_agg(type || ':' || version, ' ') FROM es_load_aggregate('lcsnap-3');
SELECT es_save_snapshot('lcsnap-3', 2, '{"upto": 2}');
SELECT count(*) AS usable FROM es_load_snapshot('lcsnap-3');
SELECT string_agg(type || ':' || version, ' ') FROM es_load_aggregate('lcsnap-3');
SELECT es_save_snapshot('lcsnap-3', 4, '{"upto": 4}');
SELECT string_agg(type || ':' || version, ' ') FROM es_load_aggregate('lcsnap-3');
SELECT es_set_stream_metadata('lcsnap-3', '{}');

---------------------------------------------------------------------------
-- Soft delete
---------------------------------------------------------------------------
SELECT es_head_position() AS pdel \gset
SELECT last_version FROM es_append('lcdel-1', 0,
  '[{"type": "LcTick", "data": 1}, {"type": "LcTick", "data": 2}, {"type": "LcTick", "data": 3}]');
SELECT es_set_stream_metadata('lcdel-1', '{"owner": "team-a"}');
SELECT es_save_snapshot('lcdel-1', 3, '{"upto": 3}');
SELECT regress.err($$SELECT es_delete_stream('lcdel-1', 2)$$);
SELECT regress.err($$SELECT es_delete_stream('lcdel-1', 4)$$);
SELECT regress.err($$SELECT es_delete_stream('lcdel-1', -1)$$);
SELECT regress.err($$SELECT es_delete_stream('lc-nosuch')$$);
SELECT regress.err($$SELECT es_delete_stream(NULL)$$);
SELECT regress.err($$SELECT es_delete_stream('')$$);
SET ROLE regress_lc_user;
SELECT regress.err($$SELECT event_store.es_delete_stream('lcdel-1')$$);
RESET ROLE;
SELECT regress.lc_visible('lcdel-1', :pdel);
BEGIN;
SELECT es_delete_stream('lcdel-1', 3);
-- the rules say so: truncate_before past the last event, deleted_at; own keys kept
SELECT metadata - 'deleted_at' AS metadata, (metadata ->> 'deleted_at')::timestamptz = now() AS deleted_now
  FROM streams WHERE name = 'lcdel-1';
COMMIT;
-- gone from every read path; its version stays; its snapshot is dropped
SELECT * FROM regress.lc_paths('lcdel-1', :pdel, ARRAY['LcTick']);
SELECT regress.lc_visible('lcdel-1', :pdel);
SELECT es_stream_version('lcdel-1');
SELECT count(*) AS snapshots FROM snapshots WHERE stream = 'lcdel-1';
SELECT count(*) FROM es_load_snapshot('lcdel-1');
SELECT count(*) AS stored FROM events WHERE stream = 'lcdel-1';
-- a snapshot of the deleted events is refused
SELECT regress.err($$SELECT es_save_snapshot('lcdel-1', 3, '{}')$$);
-- appending again: "new stream" is refused, the old version and "any"
-- continue the numbering
SELECT regress.err($$SELECT es_append('lcdel-1', 0, 'LcTick', '4')$$);
SELECT regress.err($$SELECT es_append('lcdel-1', 2, 'LcTick', '4')$$);
SELECT last_version FROM es_append('lcdel-1', 3, 'LcTick', '4');
SELECT last_version FROM es_append('lcdel-1', NULL, 'LcTick', '5');
SELECT * FROM regress.lc_paths('lcdel-1', :pdel, ARRAY['LcTick']);
SELECT es_stream_version('lcdel-1');
SELECT version, data FROM es_read_stream('lcdel-1');
-- a plain INSERT continues it too
INSERT INTO events (stream, type, data) VALUES ('lcdel-1', 'LcTick', '6') RETURNING version;
SELECT regress.lc_visible('lcdel-1', :pdel);
-- a snapshot of the new events is usable
SELECT es_save_snapshot('lcdel-1', 5, '{"upto": 5}');
SELECT string_agg(type || ':' || version, ' ') FROM es_load_aggregate('lcdel-1');
-- metadata set later keeps deleted_at (and replaces the rest)
SELECT m - 'deleted_at' AS stored, m ? 'deleted_at' AS keeps_deleted_at
  FROM es_set_stream_metadata('lcdel-1', '{"truncate_before": 4, "owner": "team-b"}') m;
SELECT regress.lc_visible('lcdel-1', :pdel);
-- deleting again, with "any"
SELECT es_delete_stream('lcdel-1');
SELECT regress.lc_visible('lcdel-1', :pdel);
SELECT metadata ->> 'truncate_before' AS truncate_before FROM streams WHERE name = 'lcdel-1';
SELECT last_version FROM es_append('lcdel-1', 6, 'LcTick', '7');
SELECT regress.lc_visible('lcdel-1', :pdel);
-- the events are all still stored
SELECT string_agg(version::text, ' ' ORDER BY version) FROM events WHERE stream = 'lcdel-1';

---------------------------------------------------------------------------
-- Nothing is left behind by an error
---------------------------------------------------------------------------
SELECT last_version FROM es_append('lcatom-1', 0,
  '[{"type": "LcTick", "data": 1}, {"type": "LcTick", "data": 2}, {"type": "LcTick", "data": 3}]');
SELECT es_set_stream_metadata('lcatom-1', '{"max_count": 2}');
SELECT es_save_snapshot('lcatom-1', 2, '{"upto": 2}');
SELECT regress.lc_visible('lcatom-1', :p0);
BEGIN;
SELECT regress.err($$SELECT es_set_stream_metadata('lcatom-1', '{"max_count": 0}')$$);
SELECT regress.err($$SELECT es_delete_stream('lcatom-1', 2)$$);
-- a change that took effect, then an error in the same subtransaction
SELECT regress.err($q$DO $d$ BEGIN
  PERFORM event_store.es_set_stream_metadata('lcatom-1', '{"max_count": 1}');
  RAISE EXCEPTION 'failed after the change: % visible',
    (SELECT string_agg(version::text, ' ') FROM event_store.es_read_stream('lcatom-1'));
END $d$$q$);
SELECT regress.err($q$DO $d$ BEGIN
  PERFORM event_store.es_delete_stream('lcatom-1');
  RAISE EXCEPTION 'failed after the change: % visible, % snapshots',
    (SELECT count(*) FROM event_store.es_read_stream('lcatom-1')),
    (SELECT count(*) FROM event_store.snapshots WHERE stream = 'lcatom-1');
END $d$$q$);
SELECT regress.err($q$DO $d$ BEGIN
  PERFORM event_store.es_erase_stream('lcatom-1');
  RAISE EXCEPTION 'failed after the change: % stored, % audit rows',
    (SELECT count(*) FROM event_store.events WHERE stream = 'lcatom-1'),
    (SELECT count(*) FROM event_store.erasures WHERE stream = 'lcatom-1');
END $d$$q$);
SELECT metadata FROM streams WHERE name = 'lcatom-1';
SELECT regress.lc_visible('lcatom-1', :p0);
SELECT version FROM es_load_snapshot('lcatom-1');
COMMIT;
SELECT metadata, erased_at IS NULL AS not_erased FROM streams WHERE name = 'lcatom-1';
SELECT regress.lc_visible('lcatom-1', :p0);
SELECT count(*) AS audit_rows FROM erasures WHERE stream = 'lcatom-1';
-- a rolled back transaction
BEGIN;
SELECT es_delete_stream('lcatom-1');
SELECT regress.lc_visible('lcatom-1', :p0);
ROLLBACK;
SELECT regress.lc_visible('lcatom-1', :p0);
SELECT version FROM es_load_snapshot('lcatom-1');
BEGIN;
SELECT es_erase_stream('lcatom-1', 'changed my mind');
SELECT count(*) FROM events WHERE stream = 'lcatom-1';
ROLLBACK;
SELECT metadata, erased_at IS NULL AS not_erased FROM streams WHERE name = 'lcatom-1';
SELECT count(*) AS stored, (SELECT count(*) FROM erasures WHERE stream = 'lcatom-1') AS audit_rows
  FROM events WHERE stream = 'lcatom-1';
SELECT last_version FROM es_append('lcatom-1', 3, 'LcTick', '4');
SELECT regress.lc_visible('lcatom-1', :p0);

---------------------------------------------------------------------------
-- Hard delete (erasure)
---------------------------------------------------------------------------
SELECT es_head_position() AS pgone \gset
SELECT last_version FROM es_append('lcgone-1', 0,
  '[{"type": "LcOpened", "data": {"name": "Zed"}}, {"type": "LcTick", "data": 2},
    {"type": "LcTick", "data": 3}]');
SELECT es_set_stream_metadata('lcgone-1', '{"owner": "team-a"}');
SELECT es_save_snapshot('lcgone-1', 2, '{"upto": 2}');
SELECT regress.lc_visible('lcgone-1', :pgone);
-- nobody may erase unless granted
SET ROLE regress_lc_user;
SELECT regress.err($$SELECT event_store.es_erase_stream('lcgone-1')$$);
RESET ROLE;
SELECT regress.err($$SELECT es_erase_stream('lc-nosuch')$$);
SELECT regress.err($$SELECT es_erase_stream(NULL)$$);
SELECT regress.err($$SELECT es_erase_stream('')$$);
SELECT es_erase_stream('lcgone-1', 'erasure request 42');
-- the audit row
SELECT stream, erased_by = current_user AS by_me, session_user_name = session_user AS session_me,
       events_erased, last_version, reason, erased_at IS NOT NULL AND erased_at <= now() AS erased_at_set
  FROM erasures WHERE stream = 'lcgone-1';
-- the tombstone
SELECT version, erased_at IS NOT NULL AS erased, erased_at = (SELECT erased_at FROM erasures WHERE stream = 'lcgone-1') AS same_time
  FROM streams WHERE name = 'lcgone-1';
-- the events are gone: from the table, from every read path; so is the snapshot
SELECT count(*) AS stored FROM events WHERE stream = 'lcgone-1';
SELECT count(*) AS snapshots FROM snapshots WHERE stream = 'lcgone-1';
SELECT * FROM regress.lc_paths('lcgone-1', :pgone, ARRAY['LcOpened', 'LcTick']);
SELECT regress.lc_visible('lcgone-1', :pgone);
SELECT count(*) FROM es_load_snapshot('lcgone-1');
SELECT es_stream_version('lcgone-1');
-- the name can never be used again
SELECT regress.err($$SELECT es_append('lcgone-1', NULL, 'LcTick', '4')$$);
SELECT regress.err($$SELECT es_append('lcgone-1', 3, 'LcTick', '4')$$);
SELECT regress.err($$SELECT es_append('lcgone-1', 0, 'LcTick', '4')$$);
SELECT regress.err($$SELECT es_append('lcgone-1', NULL, '[{"type": "LcTick", "data": 4}]')$$);
SELECT regress.err($$SELECT es_append('lcgone-1', 0, '[{"type": "LcTick", "data": 4}]')$$);
SELECT regress.err($$INSERT INTO events (stream, type, data) VALUES ('lcgone-1', 'LcTick', '4')$$);
SELECT regress.err($$INSERT INTO events (stream, version, type, data) VALUES ('lcgone-1', 1, 'LcTick', '4')$$);
SELECT regress.err($$SELECT es_set_stream_metadata('lcgone-1', '{}')$$);
SELECT regress.err($$SELECT es_delete_stream('lcgone-1')$$);
SELECT regress.err($$SELECT es_save_snapshot('lcgone-1', 1, '{}')$$);
SELECT regress.err($$SELECT es_erase_stream('lcgone-1')$$);
SELECT count(*) AS stored, (SELECT count(*) FROM erasures WHERE stream = 'lcgone-1') AS audit_rows
  FROM events WHERE stream = 'lcgone-1';
-- the audit trail is immutable, for the owner too
SELECT regress.err($$UPDATE erasures SET reason = 'other' WHERE stream = 'lcgone-1'$$);
SELECT regress.err($$DELETE FROM erasures WHERE stream = 'lcgone-1'$$);
SELECT regress.err($$TRUNCATE erasures$$);
SELECT reason FROM erasures WHERE stream = 'lcgone-1';

-- Granted, a role erases; the audit row names it and the session's login
-- role.  A soft-deleted stream's hidden events are erased too; no reason.
SELECT last_version FROM es_append('lcgone-2', 0, '[{"type": "LcTick", "data": 1}, {"type": "LcTick", "data": 2}]');
SELECT es_delete_stream('lcgone-2');
SELECT last_version FROM es_append('lcgone-2', NULL, 'LcTick', '3');
GRANT EXECUTE ON FUNCTION es_erase_stream(text, text) TO regress_lc_user;
SET ROLE regress_lc_user;
SELECT event_store.es_erase_stream('lcgone-2');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION es_erase_stream(text, text) FROM regress_lc_user;
SELECT stream, erased_by, session_user_name = session_user AS session_me, events_erased, last_version, reason
  FROM erasures WHERE stream = 'lcgone-2';
SELECT count(*) AS stored FROM events WHERE stream = 'lcgone-2';
SELECT regress.lc_visible('lcgone-2', :pgone);
SELECT regress.err($$SELECT es_append('lcgone-2', NULL, 'LcTick', '4')$$);
-- other streams are untouched
SELECT regress.lc_visible('lcacct-2', :p0);

---------------------------------------------------------------------------
-- Clean up what later files could trip over (the upcasters' functions
-- depend on event_store.es_upcast).
---------------------------------------------------------------------------
SELECT es_unregister_upcaster('LcOpened', 2);
SELECT es_unregister_upcaster('LcOpened', 1);
SELECT count(*) AS upcasters_left FROM upcasters WHERE type LIKE 'Lc%';
DROP FUNCTION regress.lc_opened_v2(jsonb), regress.lc_opened_v3(jsonb, jsonb),
  regress.lc_bad_ret(jsonb), regress.lc_bad_arg(text), regress.lc_bad_two(jsonb, jsonb),
  regress.lc_bad_one_upcast(jsonb), regress.lc_bad_set(jsonb), regress.lc_bad_three(jsonb, jsonb, jsonb),
  regress.lc_bad_none(), regress.lc_user_fn(jsonb), regress.lc_null_data(jsonb),
  regress.lc_strict(jsonb, jsonb), regress.lc_null_in_row(jsonb, jsonb), regress.lc_md_array(jsonb, jsonb),
  regress.lc_md_json_null(jsonb, jsonb), regress.lc_cached_v2(jsonb);
DROP PROCEDURE regress.lc_bad_proc(jsonb);
DROP FUNCTION regress.lc_visible(text, bigint), regress.lc_paths(text, bigint, text[]),
  regress.lc_read(text, bigint, text[]);
DROP ROLE regress_lc_user;
DROP EXTENSION dblink;
