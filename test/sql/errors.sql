-- Every malformed call gets a clear error with its SQLSTATE, and stores nothing.
SET search_path = event_store, public;
SELECT regress.stored() AS before \gset

-- Stream names.
SELECT regress.err($$SELECT es_append(NULL, NULL, 'T', '{}')$$);
SELECT regress.err($$SELECT es_append('', NULL, 'T', '{}')$$);
SELECT regress.err($$SELECT es_append('-x', NULL, 'T', '{}')$$);
SELECT regress.err(format('SELECT es_append(%L, NULL, %L, %L)', repeat('s', 1001), 'T', '{}'));
-- the limit counts bytes: 501 two-byte characters are too many
SELECT regress.err(format('SELECT es_append(%L, NULL, %L, %L)', repeat(U&'\00E9', 501), 'T', '{}'));
-- Expected version.
SELECT regress.err($$SELECT es_append('e-1', -1, 'T', '{}')$$);
SELECT regress.err($$SELECT es_append('e-1', -1, '[{"type": "T", "data": {}}]')$$);

-- The events argument of the JSON form.
SELECT regress.err($$SELECT es_append('e-1', NULL, NULL::jsonb)$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, '{"type": "T", "data": {}}'::jsonb)$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, '"T"'::jsonb)$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, 'null'::jsonb)$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, '[]'::jsonb)$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, '[1]'::jsonb)$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, '[[{"type": "T", "data": {}}]]'::jsonb)$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, '[{"data": {}}]'::jsonb)$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, '[{"type": 1, "data": {}}]'::jsonb)$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, '[{"type": null, "data": {}}]'::jsonb)$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, '[{"type": "", "data": {}}]'::jsonb)$$);
SELECT regress.err(format('SELECT es_append(%L, NULL, %L::jsonb)', 'e-1',
       jsonb_build_array(jsonb_build_object('type', repeat('t', 501), 'data', '{}'::jsonb))));
SELECT regress.err($$SELECT es_append('e-1', NULL, '[{"type": "T"}]'::jsonb)$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, '[{"type": "T", "data": {}, "metadata": "x"}]'::jsonb)$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, '[{"type": "T", "data": {}, "metadata": []}]'::jsonb)$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, '[{"type": "T", "data": {}, "id": 5}]'::jsonb)$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, '[{"type": "T", "data": {}, "id": "not-a-uuid"}]'::jsonb)$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, '[{"type": "T", "data": {}, "schema_version": "2"}]'::jsonb)$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, '[{"type": "T", "data": {}, "schema_version": 2.5}]'::jsonb)$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, '[{"type": "T", "data": {}, "schema_version": 0}]'::jsonb)$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, '[{"type": "T", "data": {}, "schema_version": -3}]'::jsonb)$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, '[{"type": "T", "data": {}, "schema_version": 1e100}]'::jsonb)$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, '[{"type": "T", "data": {}, "stream": "x"}]'::jsonb)$$);
-- the second event is bad: the first is not stored either
SELECT regress.err($$SELECT es_append('e-1', NULL, '[{"type": "T", "data": {}}, {"type": "T"}]'::jsonb)$$);
-- more events than one append may carry
SELECT regress.err(format('SELECT es_append(%L, NULL, %L::jsonb)', 'e-1',
       (SELECT jsonb_agg(jsonb_build_object('type', 'T', 'data', 1)) FROM generate_series(1, 10001))));
-- an event larger than event_store.max_event_size
SET event_store.max_event_size = '2kB';
SELECT regress.err(format('SELECT es_append(%L, NULL, %L, %L::jsonb)', 'e-1', 'T',
       jsonb_build_object('blob', repeat('x', 3000))));
SELECT regress.err(format('SELECT es_append(%L, NULL, %L::jsonb)', 'e-1',
       jsonb_build_array(jsonb_build_object('type', 'T', 'data', '{}'::jsonb,
                                            'metadata', jsonb_build_object('blob', repeat('x', 3000))))));
RESET event_store.max_event_size;

-- The single-event form.
SELECT regress.err($$SELECT es_append('e-1', NULL, NULL::text, '{}'::jsonb)$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, '', '{}'::jsonb)$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, 'T', NULL::jsonb)$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, 'T', '{}', '[1]')$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, 'T', '{}', '"s"')$$);
SELECT regress.err($$SELECT es_append('e-1', NULL, 'T', '{}', NULL, NULL, 0)$$);

-- Reads.
SELECT regress.err($$SELECT * FROM es_read_stream(NULL)$$);
SELECT regress.err($$SELECT * FROM es_read_stream('')$$);
SELECT regress.err($$SELECT * FROM es_read_stream('e-1', 0)$$);
SELECT regress.err($$SELECT * FROM es_read_stream('e-1', -5)$$);
SELECT regress.err($$SELECT * FROM es_read_stream('e-1', 1, 0)$$);
SELECT regress.err($$SELECT * FROM es_read_stream('e-1', 1, -1)$$);
SELECT regress.err($$SELECT * FROM es_read_stream('e-1', 1, 10, NULL)$$);
SELECT regress.err($$SELECT es_stream_version(NULL)$$);
SELECT regress.err(format('SELECT es_stream_version(%L)', repeat('x', 1001)));
SELECT regress.err($$SELECT es_category('')$$);
SELECT es_category(NULL) IS NULL AS category_of_null;

-- Settings.
-- (PostgreSQL 16 and later print the bounds with their unit: 1024 B)
SELECT replace(replace(regress.err($$SET event_store.max_event_size = 100$$), ' B ..', ' ..'), ' B)', ')') AS err;
SELECT regress.err($$SET event_store.notify_min_interval = 5$$);
SELECT regress.err($$SET event_store.no_such_setting = 1$$);

SELECT regress.stored() = :'before' AS nothing_stored;

-- The limits themselves are accepted.
SELECT last_version FROM es_append(repeat('s', 1000), NULL, repeat('t', 500), '{}');
SELECT last_version FROM es_append('e-max', 0,
  (SELECT jsonb_agg(jsonb_build_object('type', 'T', 'data', 1)) FROM generate_series(1, 10000)));
SET event_store.max_event_size = '2kB';
SELECT last_version FROM es_append('e-size', 0, 'T', jsonb_build_object('blob', repeat('x', 1900)));
RESET event_store.max_event_size;
SELECT left(stream, 6) AS stream, length(stream) AS name_bytes, count(*), max(version) FROM events
 WHERE stream IN (repeat('s', 1000), 'e-max', 'e-size') GROUP BY stream ORDER BY stream;

-- Versions end at 2^63 - 1 (only a restore can put a stream that high).
BEGIN;
INSERT INTO streams (name, category, version) VALUES ('huge-1', 'huge', 9223372036854775806);
SELECT regress.err($$SELECT es_append('huge-1', NULL, '[{"type": "T", "data": 1}, {"type": "T", "data": 2}]')$$);
SELECT regress.err($$SELECT es_append('huge-1', 9223372036854775806, '[{"type": "T", "data": 1}, {"type": "T", "data": 2}]')$$);
SELECT last_version FROM es_append('huge-1', 9223372036854775806, 'T', '{}');
SELECT regress.err($$SELECT es_append('huge-1', NULL, 'T', '{}')$$);
SELECT version FROM streams WHERE name = 'huge-1';
ROLLBACK;
