-- pgTAP: what es_append, es_read_stream, es_stream_version, es_head_position,
-- es_category, es_uuid_v7 and a plain INSERT do.
--
-- scripts/test.sh runs every file in a fresh database.  Positions only
-- increase within the life of the server (a new database may not start at
-- 1), so they are checked relative to the first one handed out here:
-- pg_temp.pos(n) is the n-th position of this file.  A few events are
-- committed by a second session (dblink) to watch the feed head; everything
-- else is rolled back at the end.
BEGIN;
SELECT plan(150);

-- The helpers of the SQL suites (test/helpers.sql): err(), stored(), remote().
\set helpers pg_temp
\ir ../helpers.sql

-- The 48-bit Unix millisecond timestamp at the start of a version 7 UUID.
CREATE FUNCTION pg_temp.uuid_ms(u uuid) RETURNS bigint LANGUAGE sql AS $$
  SELECT ('x' || substr(replace(u::text, '-', ''), 1, 12))::bit(48)::bigint
$$;
CREATE FUNCTION pg_temp.is_v7(u uuid) RETURNS boolean LANGUAGE sql AS $$
  SELECT u::text ~ '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
$$;
-- A second session, whose appends commit at once.
CREATE EXTENSION dblink;

-- The feed head ---------------------------------------------------------------

SELECT is(event_store.es_head_position(), 0::bigint, 'an empty store: the head is 0');
SELECT is(event_store.es_stream_version('feed-1'), 0::bigint,
          'es_stream_version of a stream that does not exist is 0');
SELECT is_empty($$ SELECT * FROM event_store.es_read_stream('feed-1') $$,
                'reading a stream that does not exist returns no rows');
CREATE TEMP TABLE feed_1 AS
  SELECT * FROM dblink(pg_temp.remote(),
         $r$ SELECT * FROM event_store.es_append('feed-1', 0,
               '[{"type":"A","data":{}},{"type":"B","data":{}}]') $r$)
         AS t(stream text, first_version bigint, last_version bigint,
              first_position bigint, last_position bigint);
CREATE FUNCTION pg_temp.pos(n int) RETURNS bigint LANGUAGE sql AS $$
  SELECT first_position + n - 1 FROM feed_1
$$;
SELECT results_eq(
    $$ SELECT stream, first_version, last_version, last_position - first_position FROM feed_1 $$,
    $$ VALUES ('feed-1'::text, 1::bigint, 2::bigint, 1::bigint) $$,
    'another session appends two events at consecutive positions (1, 2) and commits');
SELECT is(event_store.es_head_position(), pg_temp.pos(2), 'the head moves to position 2');
SELECT results_eq(
    $$ SELECT * FROM dblink(pg_temp.remote(),
         $r$ SELECT last_position FROM event_store.es_append('feed-2', 0, 'C', '{}') $r$)
         AS t(p bigint) $$,
    ARRAY[pg_temp.pos(3)],
    'another session appends one event at position 3');
SELECT is(event_store.es_head_position(), pg_temp.pos(3), 'the head moves to position 3');
SELECT results_eq(
    $$ SELECT first_position FROM event_store.es_append('mine-1', 0, 'Mine', '{}') $$,
    ARRAY[pg_temp.pos(4)],
    'this transaction appends at position 4 and does not commit');
SELECT results_eq(
    $$ SELECT * FROM dblink(pg_temp.remote(),
         $r$ SELECT last_position FROM event_store.es_append('feed-3', 0, 'D', '{}') $r$)
         AS t(p bigint) $$,
    ARRAY[pg_temp.pos(5)],
    'another session commits an event at position 5');
SELECT is(event_store.es_head_position(), pg_temp.pos(3),
          'the head stays at 3 while position 4 may still commit (gap-safe feed)');
SELECT results_eq(
    $$ SELECT position, version, type FROM event_store.es_read_stream('feed-3') $$,
    $$ VALUES (pg_temp.pos(5), 1::bigint, 'D'::text) $$,
    'a stream read sees the committed event at position 5');

-- es_append, JSON array form -----------------------------------------------------

SELECT results_eq(
    $$ SELECT * FROM event_store.es_append('order-1', 0,
         '[{"type":"OrderPlaced","data":{"total":99.98},"metadata":{"correlation_id":"c-1"}},
           {"type":"ItemAdded","data":{"sku":"A"},"schema_version":2}]') $$,
    $$ VALUES ('order-1'::text, 1::bigint, 2::bigint, pg_temp.pos(6), pg_temp.pos(7)) $$,
    'expected 0 creates the stream: versions 1-2 at positions 6-7');
SELECT results_eq(
    $$ SELECT position, stream, version, type, data, metadata, schema_version,
              created_at = now(), pg_temp.is_v7(event_id)
         FROM event_store.es_read_stream('order-1') $$,
    $$ VALUES (pg_temp.pos(6), 'order-1'::text, 1::bigint, 'OrderPlaced'::text,
               '{"total":99.98}'::jsonb, '{"correlation_id":"c-1"}'::jsonb, 1, true, true),
              (pg_temp.pos(7), 'order-1', 2, 'ItemAdded', '{"sku":"A"}', NULL, 2, true, true) $$,
    'the events are stored as given, metadata NULL when absent, schema_version default 1');
SELECT results_eq(
    $$ SELECT name COLLATE "default", category COLLATE "default", version,
              created_at = now(), updated_at = now(), metadata
         FROM event_store.streams WHERE name = 'order-1' $$,
    $$ VALUES ('order-1'::text, 'order'::text, 2::bigint, true, true, '{}'::jsonb) $$,
    'the stream row: category, version 2, created and updated now, empty metadata');
SELECT results_eq(
    $$ SELECT * FROM event_store.es_append('order-1', 2,
         '[{"type":"ItemAdded","data":{"sku":"B"},"id":"01900000-0000-7000-8000-0000000000b1"}]') $$,
    $$ VALUES ('order-1'::text, 3::bigint, 3::bigint, pg_temp.pos(8), pg_temp.pos(8)) $$,
    'expected 2 on a stream at 2 appends version 3');
SELECT is(
    (SELECT event_id FROM event_store.events WHERE stream = 'order-1' AND version = 3),
    '01900000-0000-7000-8000-0000000000b1'::uuid,
    'a client-supplied id is stored');
SELECT results_eq(
    $$ SELECT * FROM event_store.es_append('order-1', NULL, '[{"type":"OrderPaid","data":{}}]') $$,
    $$ VALUES ('order-1'::text, 4::bigint, 4::bigint, pg_temp.pos(9), pg_temp.pos(9)) $$,
    'expected NULL appends at the end of an existing stream');
SELECT results_eq(
    $$ SELECT * FROM event_store.es_append('order-2', NULL,
         '[{"type":"Note","data":"hello","metadata":null,"id":null,"schema_version":null}]') $$,
    $$ VALUES ('order-2'::text, 1::bigint, 1::bigint, pg_temp.pos(10), pg_temp.pos(10)) $$,
    'expected NULL creates a new stream');
SELECT results_eq(
    $$ SELECT data, metadata IS NULL, schema_version, pg_temp.is_v7(event_id)
         FROM event_store.events WHERE stream = 'order-2' $$,
    $$ VALUES ('"hello"'::jsonb, true, 1, true) $$,
    'JSON nulls for metadata, id and schema_version mean absent; data may be any JSON');

-- es_append, single-event form ---------------------------------------------------

SELECT results_eq(
    $$ SELECT * FROM event_store.es_append('order-3', 0, 'OrderPlaced', '{"total":1}') $$,
    $$ VALUES ('order-3'::text, 1::bigint, 1::bigint, pg_temp.pos(11), pg_temp.pos(11)) $$,
    'single-event form with defaults');
SELECT results_eq(
    $$ SELECT * FROM event_store.es_append(stream => 'order-3', expected_version => 1,
         type => 'Tagged', data => '{"tag":"x"}', metadata => '{"user_id":"u-1"}',
         event_id => '01900000-0000-7000-8000-0000000000c1', schema_version => 3) $$,
    $$ VALUES ('order-3'::text, 2::bigint, 2::bigint, pg_temp.pos(12), pg_temp.pos(12)) $$,
    'single-event form with named arguments');
SELECT results_eq(
    $$ SELECT version, type, data, metadata, event_id, schema_version, created_at = now()
         FROM event_store.es_read_stream('order-3') $$,
    $$ VALUES (1::bigint, 'OrderPlaced'::text, '{"total":1}'::jsonb, NULL::jsonb,
               (SELECT event_id FROM event_store.events WHERE stream = 'order-3' AND version = 1),
               1, true),
              (2, 'Tagged', '{"tag":"x"}', '{"user_id":"u-1"}',
               '01900000-0000-7000-8000-0000000000c1', 3, true) $$,
    'single-event form stores type, data, metadata, id and schema version');
SELECT results_eq(
    $$ SELECT r.last_version, r.last_position
         FROM generate_series(1, 3) AS i,
              LATERAL event_store.es_append('multi-1', NULL, 'M', jsonb_build_object('i', i)) AS r
        ORDER BY i $$,
    $$ VALUES (1::bigint, pg_temp.pos(13)), (2, pg_temp.pos(14)), (3, pg_temp.pos(15)) $$,
    'three appends to one stream in one statement: versions 1, 2, 3');

-- Wrong expected version: V0001, nothing stored -----------------------------------

SELECT is(pg_temp.stored(), 'events=15 streams=8 versions=15', 'stored before the conflicts');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_append('order-1', 0, '[{"type":"X","data":{}}]') $$,
    'V0001', 'wrong expected version for stream "order-1"',
    'expected 0 on an existing stream');
SELECT is(
    pg_temp.err($$ SELECT * FROM event_store.es_append('order-1', 0, '[{"type":"X","data":{}}]') $$),
    E'V0001: wrong expected version for stream "order-1"\n  DETAIL: Expected version 0, actual version 4.\n  HINT: Read the stream again and retry with its current version, or pass NULL to append at any version.',
    'DETAIL gives the expected and the actual version');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_append('order-1', 3, '[{"type":"X","data":{}}]') $$,
    'V0001', 'wrong expected version for stream "order-1"',
    'a stale expected version');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_append('order-1', 5, '[{"type":"X","data":{}}]') $$,
    'V0001', 'wrong expected version for stream "order-1"',
    'an expected version beyond the stream');
SELECT is(
    pg_temp.err($$ SELECT * FROM event_store.es_append('order-99', 1, 'X', '{}') $$),
    E'V0001: wrong expected version for stream "order-99"\n  DETAIL: Expected version 1, actual version 0.\n  HINT: Read the stream again and retry with its current version, or pass NULL to append at any version.',
    'expected 1 on a stream that does not exist (single-event form)');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_append('order-3', 1, 'X', '{}') $$,
    'V0001', 'wrong expected version for stream "order-3"',
    'single-event form: a stale expected version');
SELECT is(pg_temp.stored(), 'events=15 streams=8 versions=15', 'the conflicts stored nothing');

-- Idempotent retries ---------------------------------------------------------------

SELECT results_eq(
    $$ SELECT * FROM event_store.es_append('retry-1', 0,
         '[{"type":"A","data":{},"id":"01900000-0000-7000-8000-00000000000a"},
           {"type":"B","data":{},"id":"01900000-0000-7000-8000-00000000000b"}]') $$,
    $$ VALUES ('retry-1'::text, 1::bigint, 2::bigint, pg_temp.pos(16), pg_temp.pos(17)) $$,
    'an append with client ids');
SELECT results_eq(
    $$ SELECT * FROM event_store.es_append('retry-1', 0,
         '[{"type":"A","data":{},"id":"01900000-0000-7000-8000-00000000000a"},
           {"type":"B","data":{},"id":"01900000-0000-7000-8000-00000000000b"}]') $$,
    $$ VALUES ('retry-1'::text, 1::bigint, 2::bigint, pg_temp.pos(16), pg_temp.pos(17)) $$,
    'the same append again returns the original result, not a conflict');
SELECT results_eq(
    $$ SELECT * FROM event_store.es_append('retry-1', NULL,
         '[{"type":"A","data":{},"id":"01900000-0000-7000-8000-00000000000a"},
           {"type":"B","data":{},"id":"01900000-0000-7000-8000-00000000000b"}]') $$,
    $$ VALUES ('retry-1'::text, 1::bigint, 2::bigint, pg_temp.pos(16), pg_temp.pos(17)) $$,
    'the retry with expected NULL returns the original result');
SELECT is(pg_temp.stored(), 'events=17 streams=9 versions=17', 'the retries stored nothing');
SELECT results_eq(
    $$ SELECT * FROM event_store.es_append('retry-1', 2, 'Later', '{}') $$,
    $$ VALUES ('retry-1'::text, 3::bigint, 3::bigint, pg_temp.pos(18), pg_temp.pos(18)) $$,
    'the stream moves on to version 3');
SELECT results_eq(
    $$ SELECT * FROM event_store.es_append('retry-1', 0,
         '[{"type":"A","data":{},"id":"01900000-0000-7000-8000-00000000000a"},
           {"type":"B","data":{},"id":"01900000-0000-7000-8000-00000000000b"}]') $$,
    $$ VALUES ('retry-1'::text, 1::bigint, 2::bigint, pg_temp.pos(16), pg_temp.pos(17)) $$,
    'a late retry at the same place still returns the original result');
SELECT results_eq(
    $$ SELECT * FROM event_store.es_append('retry-1', NULL,
         '[{"type":"Changed","data":{"x":1},"id":"01900000-0000-7000-8000-00000000000a"},
           {"type":"B","data":{},"id":"01900000-0000-7000-8000-00000000000b"}]') $$,
    $$ VALUES ('retry-1'::text, 1::bigint, 2::bigint, pg_temp.pos(16), pg_temp.pos(17)) $$,
    'a retry with another payload returns the original result');
SELECT results_eq(
    $$ SELECT version, type, data FROM event_store.es_read_stream('retry-1') $$,
    $$ VALUES (1::bigint, 'A'::text, '{}'::jsonb), (2, 'B', '{}'), (3, 'Later', '{}') $$,
    'and changes nothing: stored events are immutable');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_append('retry-1', 2,
         '[{"type":"A","data":{},"id":"01900000-0000-7000-8000-00000000000a"},
           {"type":"B","data":{},"id":"01900000-0000-7000-8000-00000000000b"}]') $$,
    'V0001', 'wrong expected version for stream "retry-1"',
    'the same ids with an expected version they were not appended after: a conflict');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_append('retry-1', 0,
         '[{"type":"A","data":{},"id":"01900000-0000-7000-8000-00000000000a"},
           {"type":"D","data":{},"id":"01900000-0000-7000-8000-00000000000d"}]') $$,
    '23505', 'some event ids of the append already exist in stream "retry-1"',
    'some ids stored, some new: unique violation');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_append('retry-1', NULL,
         '[{"type":"B","data":{},"id":"01900000-0000-7000-8000-00000000000b"},
           {"type":"A","data":{},"id":"01900000-0000-7000-8000-00000000000a"}]') $$,
    '23505', 'some event ids of the append already exist in stream "retry-1"',
    'the same ids in another order: unique violation');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_append('retry-1', 0,
         '[{"type":"A","data":{},"id":"01900000-0000-7000-8000-00000000000a"},
           {"type":"B","data":{}}]') $$,
    '23505', 'some event ids of the append already exist in stream "retry-1"',
    'a stored id next to an event without id: unique violation');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_append('retry-2', 0,
         '[{"type":"A","data":{},"id":"01900000-0000-7000-8000-00000000000a"}]') $$,
    '23505', 'event id 01900000-0000-7000-8000-00000000000a already exists',
    'the same id in another stream: unique violation');
SELECT is(
    pg_temp.err($$ SELECT * FROM event_store.es_append('retry-2', NULL,
         '[{"type":"A","data":{},"id":"01900000-0000-7000-8000-00000000000a"}]') $$),
    E'23505: event id 01900000-0000-7000-8000-00000000000a already exists\n  DETAIL: It is stored in stream "retry-1" at version 1.',
    'the same id in another stream with expected NULL: DETAIL names the stream and version');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_append('retry-2', NULL, 'A', '{}', NULL,
                                           '01900000-0000-7000-8000-00000000000b') $$,
    '23505', 'event id 01900000-0000-7000-8000-00000000000b already exists',
    'single-event form: the same id in another stream');
SELECT results_eq(
    $$ SELECT * FROM event_store.es_append('retry-3', 0, 'Single', '{}', NULL,
                                           '01900000-0000-7000-8000-00000000000c') $$,
    $$ VALUES ('retry-3'::text, 1::bigint, 1::bigint, pg_temp.pos(19), pg_temp.pos(19)) $$,
    'single-event form with an id');
SELECT results_eq(
    $$ SELECT * FROM event_store.es_append('retry-3', 0, 'Single', '{}', NULL,
                                           '01900000-0000-7000-8000-00000000000c') $$,
    $$ VALUES ('retry-3'::text, 1::bigint, 1::bigint, pg_temp.pos(19), pg_temp.pos(19)) $$,
    'single-event form: the retry returns the original result');
SELECT is(pg_temp.stored(), 'events=19 streams=10 versions=19',
          'the retries and refused ids stored nothing');
SELECT is(event_store.es_stream_version('retry-2'), 0::bigint,
          'the refused appends did not create retry-2');

-- Reading ------------------------------------------------------------------------------

SELECT results_eq(
    $$ SELECT first_position, last_position FROM event_store.es_append('read-1', 0,
         '[{"type":"E1","data":{"i":1}},{"type":"E2","data":{"i":2}},{"type":"E3","data":{"i":3}},
           {"type":"E4","data":{"i":4}},{"type":"E5","data":{"i":5}}]') $$,
    $$ VALUES (pg_temp.pos(20), pg_temp.pos(24)) $$,
    'five events in read-1');
SELECT results_eq(
    $$ SELECT stream, last_version FROM event_store.es_append('read-10', 0, 'Other', '{}')
       UNION ALL
       SELECT stream, last_version FROM event_store.es_append('Read-1', 0, 'Other', '{}') $$,
    $$ VALUES ('read-10'::text, 1::bigint), ('Read-1', 1) $$,
    'streams with similar names');
SELECT results_eq(
    $$ SELECT * FROM event_store.es_read_stream('read-1') $$,
    $$ SELECT position, stream COLLATE "default", version, type COLLATE "default", data,
              metadata, event_id, schema_version, created_at
         FROM event_store.events WHERE stream = 'read-1' ORDER BY version $$,
    'es_read_stream returns the stored rows, in version order');
SELECT results_eq(
    $$ SELECT version, position, type, data FROM event_store.es_read_stream('read-1') $$,
    $$ VALUES (1::bigint, pg_temp.pos(20), 'E1'::text, '{"i":1}'::jsonb),
              (2, pg_temp.pos(21), 'E2', '{"i":2}'), (3, pg_temp.pos(22), 'E3', '{"i":3}'),
              (4, pg_temp.pos(23), 'E4', '{"i":4}'), (5, pg_temp.pos(24), 'E5', '{"i":5}') $$,
    'forwards from the start: versions 1-5, only this stream');
SELECT results_eq($$ SELECT version FROM event_store.es_read_stream('read-1', 3) $$,
                  ARRAY[3, 4, 5]::bigint[], 'forwards from version 3');
SELECT results_eq($$ SELECT version FROM event_store.es_read_stream('read-1', NULL, 2) $$,
                  ARRAY[1, 2]::bigint[], 'forwards, at most 2');
SELECT results_eq($$ SELECT version FROM event_store.es_read_stream('read-1', 2, 2) $$,
                  ARRAY[2, 3]::bigint[], 'forwards from version 2, at most 2');
SELECT is_empty($$ SELECT * FROM event_store.es_read_stream('read-1', 6) $$,
                'forwards from beyond the end: no rows');
SELECT results_eq($$ SELECT version FROM event_store.es_read_stream('read-1', NULL, NULL, true) $$,
                  ARRAY[5, 4, 3, 2, 1]::bigint[], 'backwards from the end');
SELECT results_eq($$ SELECT version FROM event_store.es_read_stream('read-1', 3, NULL, true) $$,
                  ARRAY[3, 2, 1]::bigint[], 'backwards from version 3');
SELECT results_eq($$ SELECT version FROM event_store.es_read_stream('read-1', NULL, 2, true) $$,
                  ARRAY[5, 4]::bigint[], 'backwards, at most 2');
SELECT results_eq($$ SELECT version FROM event_store.es_read_stream('read-1', 4, 2, true) $$,
                  ARRAY[4, 3]::bigint[], 'backwards from version 4, at most 2');
SELECT results_eq($$ SELECT version FROM event_store.es_read_stream('read-1', 99, NULL, true) $$,
                  ARRAY[5, 4, 3, 2, 1]::bigint[], 'backwards from beyond the end');
SELECT results_eq($$ SELECT version FROM event_store.es_read_stream('read-1') LIMIT 2 $$,
                  ARRAY[1, 2]::bigint[], 'a LIMIT stops the read');
SELECT results_eq($$ SELECT stream, type FROM event_store.es_read_stream('Read-1') $$,
                  $$ VALUES ('Read-1'::text, 'Other'::text) $$,
                  'stream names are compared exactly (case, prefix)');
SELECT is_empty($$ SELECT * FROM event_store.es_read_stream('read') $$,
                'a category is not a stream');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_stream('read-1', 0) $$,
                 '22023', 'from_version must be at least 1', 'from_version 0');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_stream('read-1', NULL, 0) $$,
                 '22023', 'max_count must be positive', 'max_count 0');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_stream(NULL) $$,
                 '22004', 'stream name must not be null', 'NULL stream');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_stream('read-1', NULL, NULL, NULL) $$,
                 '22004', 'backwards must not be null', 'NULL backwards');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_stream('') $$,
                 '22023', 'stream name must not be empty', 'empty stream name');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_stream(repeat('r', 1001)) $$,
                 '54000', 'stream name is too long', 'stream name over 1000 bytes');

-- Stream versions and categories ------------------------------------------------

SELECT results_eq(
    $$ SELECT event_store.es_stream_version(s)
         FROM unnest(ARRAY['order-1', 'order-2', 'order-3', 'read-1', 'retry-1',
                           'ORDER-1', 'order', 'nope-1']) WITH ORDINALITY AS t(s, n)
        ORDER BY n $$,
    ARRAY[4, 1, 2, 5, 3, 0, 0, 0]::bigint[],
    'es_stream_version: the number of events; 0 for unknown names');
SELECT results_eq(
    $$ SELECT r.stream, r.first_version
         FROM unnest(ARRAY['nodash', 'a-b-c', 'x-', 'größe-1']) WITH ORDINALITY AS t(s, n),
              LATERAL event_store.es_append(t.s, 0, 'Created', '{}') AS r
        ORDER BY t.n $$,
    $$ VALUES ('nodash'::text, 1::bigint), ('a-b-c', 1), ('x-', 1), ('größe-1', 1) $$,
    'streams with and without "-"');
SELECT results_eq(
    $$ SELECT name COLLATE "default", category COLLATE "default" FROM event_store.streams
        WHERE name IN ('nodash', 'a-b-c', 'x-', 'größe-1', 'order-1', 'Read-1')
        ORDER BY name $$,
    $$ VALUES ('Read-1'::text, 'Read'::text), ('a-b-c', 'a'), ('größe-1', 'größe'),
              ('nodash', 'nodash'), ('order-1', 'order'), ('x-', 'x') $$,
    'streams.category: the name up to the first "-", or the whole name');
SELECT is(
    (SELECT count(*)::int FROM event_store.streams
      WHERE category IS DISTINCT FROM event_store.es_category(name)),
    0,
    'every stream''s category is es_category(name)');
SELECT results_eq(
    $$ SELECT event_store.es_category(s)
         FROM unnest(ARRAY['order-42', 'nodash', 'a-b-c', 'x-', 'größe-1']) WITH ORDINALITY AS t(s, n)
        ORDER BY n $$,
    ARRAY['order', 'nodash', 'a', 'x', 'größe'],
    'es_category');

-- Plain INSERT is numbered like es_append ---------------------------------------

SELECT results_eq(
    $$ INSERT INTO event_store.events (stream, type, data)
       VALUES ('ins-1', 'I1', '{}'), ('ins-1', 'I2', '{}'), ('ins-2', 'J1', '{}'), ('ins-1', 'I3', '{}')
       RETURNING stream COLLATE "default", version, position $$,
    $$ VALUES ('ins-1'::text, 1::bigint, pg_temp.pos(31)), ('ins-1', 2, pg_temp.pos(32)),
              ('ins-2', 1, pg_temp.pos(33)), ('ins-1', 3, pg_temp.pos(34)) $$,
    'a multi-row INSERT: versions per stream, positions in row order');
SELECT results_eq(
    $$ SELECT name COLLATE "default", category COLLATE "default", version,
              created_at = now(), updated_at = now()
         FROM event_store.streams WHERE name LIKE 'ins-%' ORDER BY name $$,
    $$ VALUES ('ins-1'::text, 'ins'::text, 3::bigint, true, true), ('ins-2', 'ins', 1, true, true) $$,
    'the INSERT created and moved the stream rows');
SELECT results_eq(
    $$ SELECT metadata IS NULL, schema_version, created_at = now(), pg_temp.is_v7(event_id)
         FROM event_store.events WHERE stream = 'ins-1' ORDER BY version $$,
    $$ VALUES (true, 1, true, true), (true, 1, true, true), (true, 1, true, true) $$,
    'column defaults: no metadata, schema version 1, created now, a version 7 id');
SELECT results_eq(
    $$ SELECT * FROM event_store.es_append('ins-1', 3, 'I4', '{}') $$,
    $$ VALUES ('ins-1'::text, 4::bigint, 4::bigint, pg_temp.pos(35), pg_temp.pos(35)) $$,
    'es_append continues after the INSERT');
SELECT results_eq(
    $$ INSERT INTO event_store.events (stream, version, type, data, metadata, event_id, schema_version)
       VALUES ('ins-1', 5, 'I5', '{"k":5}', '{"source":"test"}', '01900000-0000-7000-8000-0000000000e5', 2)
       RETURNING version, position, metadata, event_id, schema_version $$,
    $$ VALUES (5::bigint, pg_temp.pos(36), '{"source":"test"}'::jsonb,
               '01900000-0000-7000-8000-0000000000e5'::uuid, 2) $$,
    'an INSERT that gives the next version, metadata, id and schema version');
SELECT results_eq(
    $$ INSERT INTO event_store.events (stream, type, data)
       SELECT 'ins-2', 'J', jsonb_build_object('i', i) FROM generate_series(2, 4) AS i
       RETURNING version, position $$,
    $$ VALUES (2::bigint, pg_temp.pos(37)), (3, pg_temp.pos(38)), (4, pg_temp.pos(39)) $$,
    'INSERT ... SELECT continues the stream');
SELECT is_empty(
    $$ INSERT INTO event_store.events (stream, type, data, event_id)
       VALUES ('ins-2', 'Dup', '{}', '01900000-0000-7000-8000-0000000000e5')
       ON CONFLICT (event_id) DO NOTHING RETURNING version $$,
    'INSERT ... ON CONFLICT (event_id) DO NOTHING with a stored id inserts nothing');
SELECT results_eq(
    $$ INSERT INTO event_store.events (stream, type, data) VALUES ('ins-2', 'J', '{"i":5}')
       RETURNING version $$,
    ARRAY[5::bigint],
    'the skipped row left no gap: the next INSERT gets version 5');
SELECT results_eq(
    $$ SELECT version FROM event_store.es_read_stream('ins-1') $$,
    ARRAY[1, 2, 3, 4, 5]::bigint[],
    'es_read_stream reads inserted and appended events alike');
SELECT is(pg_temp.stored(), 'events=40 streams=19 versions=40', 'stored before the refused INSERTs');
SELECT throws_ok(
    $$ INSERT INTO event_store.events (stream, version, type, data) VALUES ('ins-1', 7, 'X', '{}') $$,
    'V0001', 'wrong expected version for stream "ins-1"',
    'an INSERT that leaves a gap is refused');
SELECT is(
    pg_temp.err($$ INSERT INTO event_store.events (stream, version, type, data)
                   VALUES ('ins-1', 7, 'X', '{}') $$),
    E'V0001: wrong expected version for stream "ins-1"\n  DETAIL: Expected version 6, actual version 5.\n  HINT: Read the stream again and retry with its current version, or pass NULL to append at any version.',
    'the refused INSERT: DETAIL');
SELECT throws_ok(
    $$ INSERT INTO event_store.events (stream, version, type, data) VALUES ('ins-1', 3, 'X', '{}') $$,
    'V0001', 'wrong expected version for stream "ins-1"',
    'an INSERT of a version that exists is refused');
SELECT throws_ok(
    $$ INSERT INTO event_store.events (stream, version, type, data) VALUES ('ins-9', 2, 'X', '{}') $$,
    'V0001', 'wrong expected version for stream "ins-9"',
    'an INSERT of version 2 into a new stream is refused');
SELECT throws_ok(
    $$ INSERT INTO event_store.events (stream, position, type, data) VALUES ('ins-1', 1, 'X', '{}') $$,
    '22023', 'position 1 is already taken or passed',
    'an INSERT of a position that is taken is refused');
SELECT throws_ok(
    $$ INSERT INTO event_store.events (stream, type, data, metadata) VALUES ('ins-1', 'X', '{}', '[]') $$,
    '22023', 'event metadata must be a JSON object',
    'an INSERT with array metadata is refused');
SELECT throws_ok(
    $$ INSERT INTO event_store.events (stream, type, data) VALUES ('', 'X', '{}') $$,
    '22023', 'stream name must not be empty',
    'an INSERT with an empty stream name is refused');
SELECT throws_ok(
    $$ INSERT INTO event_store.events (stream, type, data) VALUES ('ins-1', NULL, '{}') $$,
    '23502', 'null value in column "type" of relation "events" violates not-null constraint',
    'an INSERT without type is refused');
SELECT throws_ok(
    $$ INSERT INTO event_store.events (stream, type, data) VALUES ('ins-1', 'X', '{}'), ('ins-1', 'Y', NULL) $$,
    '23502', 'null value in column "data" of relation "events" violates not-null constraint',
    'a multi-row INSERT with one bad row is refused as a whole');
SELECT is(pg_temp.stored(), 'events=40 streams=19 versions=40', 'the refused INSERTs stored nothing');
SELECT is(event_store.es_stream_version('ins-1'), 5::bigint, 'and did not move the stream');

-- Generated ids are version 7 UUIDs ------------------------------------------------

SELECT is(
    (SELECT count(*)::int FROM event_store.events WHERE NOT pg_temp.is_v7(event_id)),
    0,
    'every event id is shaped like a version 7 UUID (version nibble 7, variant 10xx)');
SELECT is(
    (SELECT count(*)::int FROM event_store.events
      WHERE created_at = now()
        AND event_id::text NOT LIKE '01900000-0000-7000-8000-%'
        AND pg_temp.uuid_ms(event_id) NOT BETWEEN floor(extract(epoch FROM now()) * 1000)::bigint
                                              AND ceil(extract(epoch FROM clock_timestamp()) * 1000)::bigint),
    0,
    'generated ids carry the Unix time in milliseconds of their creation');
SELECT is(
    (SELECT count(*)::int FROM event_store.events
      WHERE created_at = now() AND event_id::text NOT LIKE '01900000-0000-7000-8000-%'),
    30,
    'the 30 events appended without an id in this transaction got generated ids');
SELECT ok(pg_temp.is_v7(event_store.es_uuid_v7()), 'es_uuid_v7() is a version 7 UUID');
SELECT cmp_ok(
    pg_temp.uuid_ms(event_store.es_uuid_v7()), '>=',
    floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint - 1000,
    'es_uuid_v7() carries the current time');
SELECT results_eq(
    $$ SELECT count(DISTINCT u)::int, (count(*) FILTER (WHERE NOT pg_temp.is_v7(u)))::int
         FROM (SELECT event_store.es_uuid_v7() AS u FROM generate_series(1, 1000)) AS t $$,
    $$ VALUES (1000, 0) $$,
    'es_uuid_v7() gives 1000 distinct version 7 ids');

-- Limits that are accepted ----------------------------------------------------------

SELECT results_eq(
    $$ SELECT first_version, last_version, last_position - first_position
         FROM event_store.es_append('big-1', 0,
              (SELECT jsonb_agg(jsonb_build_object('type', 'Big', 'data', jsonb_build_object('i', i)) ORDER BY i)
                 FROM generate_series(1, 10000) AS i)) $$,
    $$ VALUES (1::bigint, 10000::bigint, 9999::bigint) $$,
    '10000 events in one append (the limit)');
SELECT results_eq(
    $$ SELECT count(*)::int, min(version), max(version),
              count(*) FILTER (WHERE data->>'i' <> version::text)::int,
              count(DISTINCT position - version)::int
         FROM event_store.events WHERE stream = 'big-1' $$,
    $$ VALUES (10000, 1::bigint, 10000::bigint, 0, 1) $$,
    'stored in order: version i holds event i, positions follow versions without gap');
SELECT results_eq(
    $$ SELECT octet_length(stream), last_version FROM event_store.es_append(repeat('n', 1000), 0, 'T', '{}')
       UNION ALL
       SELECT octet_length(stream), last_version FROM event_store.es_append(repeat('é', 500), 0, 'T', '{}') $$,
    $$ VALUES (1000, 1::bigint), (1000, 1::bigint) $$,
    'stream names of 1000 bytes are accepted');
SELECT results_eq(
    $$ SELECT last_version FROM event_store.es_append('long-type', 0, repeat('t', 500), '{}') $$,
    ARRAY[1::bigint],
    'event types of 500 bytes are accepted');

-- Bad input: a clear error and nothing stored ---------------------------------------

SELECT is(pg_temp.stored(), 'events=10043 streams=23 versions=10043', 'stored before the bad input');
SELECT throws_ok($$ SELECT * FROM event_store.es_append(NULL, 0, '[{"type":"T","data":{}}]') $$,
                 '22004', 'stream name must not be null', 'NULL stream');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('', 0, '[{"type":"T","data":{}}]') $$,
                 '22023', 'stream name must not be empty', 'empty stream name');
SELECT throws_ok($$ SELECT * FROM event_store.es_append(repeat('n', 1001), 0, 'T', '{}') $$,
                 '54000', 'stream name is too long', 'stream name over 1000 bytes');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('-bad', 0, 'T', '{}') $$,
                 '22023', 'stream name must not start with "-"', 'stream name starting with "-"');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', -1, '[{"type":"T","data":{}}]') $$,
                 '22023', 'expected version must not be negative', 'negative expected version');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', 0, NULL::jsonb) $$,
                 '22004', 'events must not be null', 'NULL events');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', 0, '{"type":"T","data":{}}'::jsonb) $$,
                 '22023', 'events must be a JSON array of event objects', 'events as an object');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', 0, '[]'::jsonb) $$,
                 '22023', 'events must not be an empty array', 'no events');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', 0, '[{"type":"T","data":{}}, 1]') $$,
                 '22023', 'event must be a JSON object', 'an event that is not an object');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', 0, '[{"data":{}}]') $$,
                 '22023', 'event has no type', 'an event without type');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', 0, '[{"type":"","data":{}}]') $$,
                 '22023', 'event type must not be empty', 'an empty type');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', 0, '[{"type":7,"data":{}}]') $$,
                 '22023', 'event type must be a string', 'a type that is not a string');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', 0, '[{"type":"T"}]') $$,
                 '22023', 'event has no data', 'an event without data');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', 0, '[{"type":"T","data":{},"metdata":{}}]') $$,
                 '22023', 'unknown key "metdata" in event', 'a misspelt key');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', 0, '[{"type":"T","data":{},"metadata":[1]}]') $$,
                 '22023', 'event metadata must be a JSON object', 'metadata that is not an object');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', 0, '[{"type":"T","data":{},"id":"nope"}]') $$,
                 '22P02', 'invalid input syntax for type uuid: "nope"', 'an id that is not a UUID');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', 0, '[{"type":"T","data":{},"id":42}]') $$,
                 '22023', 'event id must be a string holding a UUID', 'an id that is a number');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', 0, '[{"type":"T","data":{},"schema_version":0}]') $$,
                 '22003', 'schema_version must be between 1 and 2147483647', 'schema_version 0');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', 0, '[{"type":"T","data":{},"schema_version":1.5}]') $$,
                 '22023', 'schema_version must be an integer', 'a fractional schema_version');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', 0, jsonb_build_array(jsonb_build_object('type', repeat('t', 501), 'data', '{}'::jsonb))) $$,
                 '54000', 'event type is too long', 'a type over 500 bytes');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', 0,
                      (SELECT jsonb_agg(jsonb_build_object('type', 'T', 'data', '{}'::jsonb)) FROM generate_series(1, 10001))) $$,
                 '54000', 'too many events in one append', '10001 events');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', 0, '[{"type":"T","data":{}},{"type":"T"}]') $$,
                 '22023', 'event has no data', 'a bad second event refuses the whole append');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', 0, NULL::text, '{}'::jsonb) $$,
                 '22004', 'event type must not be null', 'single-event form: NULL type');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', 0, 'T', NULL::jsonb) $$,
                 '22004', 'event data must not be null', 'single-event form: NULL data');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', 0, 'T', '{}', '[1]') $$,
                 '22023', 'event metadata must be a JSON object', 'single-event form: array metadata');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', 0, 'T', '{}', NULL, NULL, 0) $$,
                 '22003', 'schema_version must be between 1 and 2147483647', 'single-event form: schema_version 0');
SET LOCAL event_store.max_event_size = 1024;
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', 0, 'T', jsonb_build_object('s', repeat('x', 2000))) $$,
                 '54000', 'event 1 is too large', 'single-event form: an event over event_store.max_event_size');
SELECT throws_ok($$ SELECT * FROM event_store.es_append('bad-1', 0,
                      jsonb_build_array(jsonb_build_object('type', 'T', 'data', '{}'::jsonb),
                                        jsonb_build_object('type', 'T', 'data', repeat('x', 2000)))) $$,
                 '54000', 'event 2 is too large', 'an oversized second event refuses the whole append');
RESET event_store.max_event_size;
SELECT is(pg_temp.stored(), 'events=10043 streams=23 versions=10043', 'the bad input stored nothing');
SELECT is(event_store.es_stream_version('bad-1'), 0::bigint, 'bad-1 was not created');

-- Failures after positions were taken leave nothing either.
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_append('bad-2', 0,
         '[{"type":"T","data":{},"id":"01900000-0000-7000-8000-0000000000ff"},
           {"type":"T","data":{},"id":"01900000-0000-7000-8000-0000000000ff"}]') $$,
    '23505', 'duplicate key value violates unique constraint "events_event_id_key"',
    'the same new id twice in one append');
SELECT throws_ok(
    $$ INSERT INTO event_store.events (stream, type, data, event_id)
       VALUES ('bad-2', 'T', '{}', '01900000-0000-7000-8000-00000000000a') $$,
    '23505', 'duplicate key value violates unique constraint "events_event_id_key"',
    'an INSERT of a stored id');
SELECT throws_ok(
    $$ DO $do$
       BEGIN
         PERFORM event_store.es_append('bad-2', 0, 'T', '{}');
         RAISE EXCEPTION 'later failure';
       END $do$ $$,
    'P0001', 'later failure',
    'an append followed by an error in the same statement');
SELECT is(pg_temp.stored(), 'events=10043 streams=23 versions=10043',
          'nothing stored: no event, no stream, no version bump');
SELECT is(event_store.es_stream_version('bad-2'), 0::bigint, 'bad-2 was not created');
SELECT results_eq(
    $$ SELECT r.first_version, r.first_position > (SELECT max(position) FROM event_store.events)
         FROM event_store.es_append('bad-2', 0, 'T', '{}') AS r $$,
    $$ VALUES (1::bigint, true) $$,
    'the stream starts at version 1 afterwards, at a position beyond every stored one');
SELECT is(event_store.es_head_position(), pg_temp.pos(3),
          'the head has not moved: this transaction still holds position 4');

-- Plain INSERTs that end without a row, and INSERT with es_append in one
-- statement (last: they must not disturb the counts above if they fail).
SELECT is_empty(
    $$ INSERT INTO event_store.events (stream, type, data, event_id)
       VALUES ('skip-1', 'Dup', '{}', '01900000-0000-7000-8000-00000000000a')
       ON CONFLICT (event_id) DO NOTHING RETURNING version $$,
    'INSERT ... ON CONFLICT DO NOTHING into a new stream with a stored id inserts nothing');
SELECT is(
    (SELECT version FROM event_store.streams WHERE name = 'skip-1'),
    0::bigint,
    'its stream stays at version 0 until the transaction commits (the empty row is dropped at pre-commit)');
SELECT lives_ok(
    $$ WITH i AS (INSERT INTO event_store.events (stream, type, data)
                  VALUES ('same-1', 'Inserted', '{}') RETURNING version)
       SELECT a.* FROM i, LATERAL event_store.es_append('same-1', NULL, 'Appended',
                                                        jsonb_build_object('after', i.version)) AS a $$,
    'es_append to a stream a plain INSERT of the same statement just wrote to');
SELECT results_eq(
    $$ SELECT version, type FROM event_store.es_read_stream('same-1') $$,
    $$ VALUES (1::bigint, 'Inserted'::text), (2, 'Appended') $$,
    'the INSERT got version 1, the append version 2');

SELECT * FROM finish();
ROLLBACK;
