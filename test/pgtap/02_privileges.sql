-- pgTAP: who may do what.  The C functions reach the tables directly, so
-- they check the caller's table privileges themselves: INSERT on events to
-- append, SELECT on events to read a stream or the head, SELECT on streams
-- for es_stream_version.  UPDATE, DELETE and TRUNCATE of the tables are
-- refused by ENABLE ALWAYS triggers for every role, superuser included.
-- The roles are created inside the test transaction and vanish with it.
BEGIN;
SELECT plan(89);
SET LOCAL client_min_messages = warning;  -- no NOTICE of TRUNCATE ... CASCADE

CREATE ROLE regress_es_nobody;          -- no privilege on the tables
CREATE ROLE regress_es_reader;          -- SELECT on events and streams
CREATE ROLE regress_es_events_reader;   -- SELECT on events only
CREATE ROLE regress_es_writer;          -- INSERT and SELECT on events, SELECT on streams
CREATE ROLE regress_es_all;             -- every privilege on both tables
CREATE ROLE regress_es_member IN ROLE regress_es_reader;  -- inherits the reader's
GRANT SELECT ON event_store.events, event_store.streams TO regress_es_reader;
GRANT SELECT ON event_store.events TO regress_es_events_reader;
GRANT INSERT, SELECT ON event_store.events TO regress_es_writer;
GRANT SELECT ON event_store.streams TO regress_es_writer;
GRANT ALL ON event_store.events, event_store.streams TO regress_es_all;

-- Counts of what is stored, to show that a refused call stores nothing.
CREATE FUNCTION pg_temp.stored() RETURNS text LANGUAGE sql AS $$
  SELECT format('events=%s streams=%s versions=%s',
                (SELECT count(*) FROM event_store.events),
                (SELECT count(*) FROM event_store.streams),
                (SELECT coalesce(sum(version), 0) FROM event_store.streams))
$$;

-- A role without privileges ----------------------------------------------------

SET ROLE regress_es_nobody;
SELECT is(current_user::text, 'regress_es_nobody', 'running as regress_es_nobody');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_append('order-1', NULL, '[{"type":"OrderPlaced","data":{}}]') $$,
    '42501', 'permission denied for table events',
    'nobody: es_append (JSON form) needs INSERT on events');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_append('order-1', NULL, 'OrderPlaced', '{}') $$,
    '42501', 'permission denied for table events',
    'nobody: es_append (single-event form) needs INSERT on events');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_read_stream('order-1') $$,
    '42501', 'permission denied for table events',
    'nobody: es_read_stream needs SELECT on events');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_read_stream('order-1', 1, 10, true) $$,
    '42501', 'permission denied for table events',
    'nobody: es_read_stream backwards needs SELECT on events');
SELECT throws_ok(
    $$ SELECT event_store.es_stream_version('order-1') $$,
    '42501', 'permission denied for table streams',
    'nobody: es_stream_version needs SELECT on streams');
SELECT throws_ok(
    $$ SELECT event_store.es_head_position() $$,
    '42501', 'permission denied for table events',
    'nobody: es_head_position needs SELECT on events');
SELECT throws_ok(
    $$ INSERT INTO event_store.events (stream, type, data) VALUES ('order-1', 'OrderPlaced', '{}') $$,
    '42501', 'permission denied for table events',
    'nobody: plain INSERT into events is denied');
SELECT throws_ok(
    $$ SELECT count(*) FROM event_store.events $$,
    '42501', 'permission denied for table events',
    'nobody: plain SELECT from events is denied');
-- functions that touch no table stay usable
SELECT is(event_store.es_category('order-1'), 'order', 'nobody: es_category works');
SELECT is(substr(event_store.es_uuid_v7()::text, 15, 1), '7', 'nobody: es_uuid_v7 works');
RESET ROLE;
SELECT is(current_user::text, 'postgres', 'back to the superuser after RESET ROLE');
SELECT is(pg_temp.stored(), 'events=0 streams=0 versions=0',
          'the refused appends stored nothing');

-- A reader ---------------------------------------------------------------------

SET ROLE regress_es_reader;
SELECT is(event_store.es_head_position(), 0::bigint,
          'reader: es_head_position is 0 in an empty store');
SELECT is(event_store.es_stream_version('order-1'), 0::bigint,
          'reader: es_stream_version of an unknown stream is 0');
SELECT is_empty($$ SELECT * FROM event_store.es_read_stream('order-1') $$,
                'reader: an unknown stream reads as no rows');
RESET ROLE;

-- the superuser appends two events, read below
SELECT results_eq(
    $$ SELECT stream, first_version, last_version
         FROM event_store.es_append('order-1', 0,
              '[{"type":"OrderPlaced","data":{"n":1}},{"type":"OrderPaid","data":{"n":2}}]') $$,
    $$ VALUES ('order-1'::text, 1::bigint, 2::bigint) $$,
    'superuser appends two events to order-1');

SET ROLE regress_es_reader;
SELECT results_eq(
    $$ SELECT version, type, data FROM event_store.es_read_stream('order-1') $$,
    $$ VALUES (1::bigint, 'OrderPlaced'::text, '{"n":1}'::jsonb),
              (2::bigint, 'OrderPaid'::text, '{"n":2}'::jsonb) $$,
    'reader: es_read_stream returns the events');
SELECT results_eq(
    $$ SELECT version FROM event_store.es_read_stream('order-1', NULL, NULL, true) $$,
    ARRAY[2::bigint, 1::bigint],
    'reader: es_read_stream backwards');
SELECT is(event_store.es_stream_version('order-1'), 2::bigint,
          'reader: es_stream_version is 2');
SELECT results_eq(
    $$ SELECT version, type COLLATE "default" FROM event_store.events ORDER BY position $$,
    $$ VALUES (1::bigint, 'OrderPlaced'::text), (2::bigint, 'OrderPaid'::text) $$,
    'reader: plain SELECT from events');
SELECT results_eq(
    $$ SELECT name COLLATE "default", category COLLATE "default", version FROM event_store.streams $$,
    $$ VALUES ('order-1'::text, 'order'::text, 2::bigint) $$,
    'reader: plain SELECT from streams');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_append('order-1', 2, '[{"type":"OrderShipped","data":{}}]') $$,
    '42501', 'permission denied for table events',
    'reader: es_append (JSON form) is denied');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_append('order-1', 2, 'OrderShipped', '{}') $$,
    '42501', 'permission denied for table events',
    'reader: es_append (single-event form) is denied');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_append('reader-new', 0, 'Created', '{}') $$,
    '42501', 'permission denied for table events',
    'reader: es_append to a new stream is denied');
SELECT throws_ok(
    $$ INSERT INTO event_store.events (stream, type, data) VALUES ('order-1', 'OrderShipped', '{}') $$,
    '42501', 'permission denied for table events',
    'reader: plain INSERT into events is denied');
SELECT throws_ok(
    $$ UPDATE event_store.events SET type = 'Changed' $$,
    '42501', 'permission denied for table events',
    'reader: UPDATE of events is denied');
SELECT throws_ok(
    $$ DELETE FROM event_store.streams $$,
    '42501', 'permission denied for table streams',
    'reader: DELETE from streams is denied');
RESET ROLE;
SELECT is(pg_temp.stored(), 'events=2 streams=1 versions=2',
          'the reader''s refused appends stored nothing');

-- SELECT on events only: streams are read, the version is not.
SET ROLE regress_es_events_reader;
SELECT results_eq(
    $$ SELECT version FROM event_store.es_read_stream('order-1') $$,
    ARRAY[1::bigint, 2::bigint],
    'events reader: es_read_stream needs only SELECT on events');
SELECT lives_ok($$ SELECT event_store.es_head_position() $$,
                'events reader: es_head_position needs only SELECT on events');
SELECT throws_ok(
    $$ SELECT event_store.es_stream_version('order-1') $$,
    '42501', 'permission denied for table streams',
    'events reader: es_stream_version needs SELECT on streams');
RESET ROLE;

-- Privileges inherited through role membership count.
SET ROLE regress_es_member;
SELECT is(event_store.es_stream_version('order-1'), 2::bigint,
          'member of reader: es_stream_version through the inherited grant');
SELECT results_eq(
    $$ SELECT version FROM event_store.es_read_stream('order-1', 2) $$,
    ARRAY[2::bigint],
    'member of reader: es_read_stream through the inherited grant');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_append('order-1', NULL, 'X', '{}') $$,
    '42501', 'permission denied for table events',
    'member of reader: es_append is denied');
RESET ROLE;

-- A writer ---------------------------------------------------------------------

SET ROLE regress_es_writer;
SELECT results_eq(
    $$ SELECT stream, first_version, last_version
         FROM event_store.es_append('order-1', 2, '[{"type":"OrderShipped","data":{"n":3}}]') $$,
    $$ VALUES ('order-1'::text, 3::bigint, 3::bigint) $$,
    'writer: es_append (JSON form)');
SELECT results_eq(
    $$ SELECT stream, first_version, last_version
         FROM event_store.es_append('order-1', 3, 'OrderDelivered', '{"n":4}') $$,
    $$ VALUES ('order-1'::text, 4::bigint, 4::bigint) $$,
    'writer: es_append (single-event form)');
SELECT results_eq(
    $$ SELECT stream, first_version, last_version
         FROM event_store.es_append('writer-1', 0, 'Created', '{}') $$,
    $$ VALUES ('writer-1'::text, 1::bigint, 1::bigint) $$,
    'writer: es_append creates a stream (needs no privilege on streams beyond SELECT)');
SELECT results_eq(
    $$ INSERT INTO event_store.events (stream, type, data)
       VALUES ('order-1', 'OrderArchived', '{"n":5}')
       RETURNING stream COLLATE "default", version, type COLLATE "default" $$,
    $$ VALUES ('order-1'::text, 5::bigint, 'OrderArchived'::text) $$,
    'writer: plain INSERT into events is numbered by the trigger');
SELECT is(event_store.es_stream_version('order-1'), 5::bigint,
          'writer: es_stream_version follows es_append and INSERT');
SELECT results_eq(
    $$ SELECT version, type FROM event_store.es_read_stream('order-1', 3) $$,
    $$ VALUES (3::bigint, 'OrderShipped'::text), (4::bigint, 'OrderDelivered'::text),
              (5::bigint, 'OrderArchived'::text) $$,
    'writer: reads what it appended');
SELECT throws_ok(
    $$ UPDATE event_store.events SET data = '{}' WHERE stream = 'order-1' $$,
    '42501', 'permission denied for table events',
    'writer: UPDATE of events is denied');
SELECT throws_ok(
    $$ DELETE FROM event_store.events WHERE stream = 'order-1' $$,
    '42501', 'permission denied for table events',
    'writer: DELETE from events is denied');
SELECT throws_ok(
    $$ TRUNCATE event_store.events $$,
    '42501', 'permission denied for table events',
    'writer: TRUNCATE of events is denied');
SELECT throws_ok(
    $$ UPDATE event_store.streams SET version = 0 WHERE name = 'order-1' $$,
    '42501', 'permission denied for table streams',
    'writer: UPDATE of streams is denied');
SELECT throws_ok(
    $$ DELETE FROM event_store.streams WHERE name = 'order-1' $$,
    '42501', 'permission denied for table streams',
    'writer: DELETE from streams is denied');
SELECT throws_ok(
    $$ INSERT INTO event_store.streams (name, category) VALUES ('fake-1', 'fake') $$,
    '42501', 'permission denied for table streams',
    'writer: INSERT into streams is denied');
RESET ROLE;
SELECT is(pg_temp.stored(), 'events=6 streams=2 versions=6',
          'the writer stored 4 events; its refused changes nothing');

-- Privileges are those of the current user: a SECURITY DEFINER function runs
-- with its owner's.
CREATE SCHEMA regress_es;
GRANT USAGE ON SCHEMA regress_es TO PUBLIC;
CREATE FUNCTION regress_es.append_as_writer(stream text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $$
  SELECT last_version FROM event_store.es_append(stream, NULL, 'ViaDefiner', '{}')
$$;
ALTER FUNCTION regress_es.append_as_writer(text) OWNER TO regress_es_writer;
CREATE FUNCTION regress_es.read_as_nobody(stream text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $$
  SELECT count(*) FROM event_store.es_read_stream(stream)
$$;
ALTER FUNCTION regress_es.read_as_nobody(text) OWNER TO regress_es_nobody;

SET ROLE regress_es_nobody;
SELECT is(regress_es.append_as_writer('writer-1'), 2::bigint,
          'nobody appends through a SECURITY DEFINER function owned by the writer');
RESET ROLE;
SELECT throws_ok(
    $$ SELECT regress_es.read_as_nobody('order-1') $$,
    '42501', 'permission denied for table events',
    'the superuser calling a SECURITY DEFINER function owned by nobody is denied');

-- Every privilege is not enough to change events --------------------------------

SET ROLE regress_es_all;
SELECT throws_ok(
    $$ UPDATE event_store.events SET data = '{}' WHERE stream = 'order-1' $$,
    '42501', 'events are immutable',
    'role with all privileges: UPDATE of events is refused');
SELECT throws_ok(
    $$ DELETE FROM event_store.events WHERE stream = 'order-1' $$,
    '42501', 'events are immutable',
    'role with all privileges: DELETE from events is refused');
SELECT throws_ok(
    $$ TRUNCATE event_store.events $$,
    '42501', 'events are immutable',
    'role with all privileges: TRUNCATE of events is refused');
SELECT throws_ok(
    $$ UPDATE event_store.streams SET version = 0 WHERE name = 'order-1' $$,
    '42501', 'UPDATE of "event_store.streams" is refused',
    'role with all privileges: UPDATE of streams is refused');
SELECT throws_ok(
    $$ DELETE FROM event_store.streams WHERE name = 'order-1' $$,
    '42501', 'DELETE of "event_store.streams" is refused',
    'role with all privileges: DELETE from streams is refused');
-- events references streams: a TRUNCATE of streams alone stops at the
-- foreign key, one that cascades to events reaches the triggers
SELECT throws_ok(
    $$ TRUNCATE event_store.streams $$,
    '0A000', 'cannot truncate a table referenced in a foreign key constraint',
    'role with all privileges: TRUNCATE of streams is refused');
SELECT throws_ok(
    $$ TRUNCATE event_store.streams CASCADE $$,
    '42501', 'TRUNCATE of "event_store.streams" is refused',
    'role with all privileges: TRUNCATE of streams CASCADE is refused');
RESET ROLE;

-- The table owner and superuser ----------------------------------------------------

SELECT is(
    (SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = 'event_store.events'::regclass),
    current_user::text,
    'the tests below run as the owner of events');
SELECT ok((SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
          'and as a superuser');
SELECT throws_ok(
    $$ UPDATE event_store.events SET data = '{}' WHERE stream = 'order-1' $$,
    '42501', 'events are immutable', 'owner: UPDATE of events is refused');
SELECT throws_ok(
    $$ UPDATE event_store.events SET data = '{}' WHERE false $$,
    '42501', 'events are immutable', 'owner: UPDATE of events is refused even if it matches no row');
SELECT throws_ok(
    $$ DELETE FROM event_store.events WHERE stream = 'order-1' $$,
    '42501', 'events are immutable', 'owner: DELETE from events is refused');
SELECT throws_ok(
    $$ DELETE FROM event_store.events WHERE false $$,
    '42501', 'events are immutable', 'owner: DELETE from events is refused even if it matches no row');
SELECT throws_ok(
    $$ TRUNCATE event_store.events $$,
    '42501', 'events are immutable', 'owner: TRUNCATE of events is refused');
SELECT throws_ok(
    $$ TRUNCATE event_store.events, event_store.streams $$,
    '42501', 'events are immutable', 'owner: TRUNCATE of both tables is refused');
SELECT throws_ok(
    $$ INSERT INTO event_store.events (stream, type, data) VALUES ('order-1', 'X', '{}')
       ON CONFLICT (stream, version) DO UPDATE SET data = '{}' $$,
    '42501', 'events are immutable', 'owner: INSERT ... ON CONFLICT DO UPDATE is refused');
SELECT throws_ok(
    $$ UPDATE event_store.streams SET version = 0 WHERE name = 'order-1' $$,
    '42501', 'UPDATE of "event_store.streams" is refused', 'owner: UPDATE of streams is refused');
SELECT throws_ok(
    $$ DELETE FROM event_store.streams WHERE name = 'order-1' $$,
    '42501', 'DELETE of "event_store.streams" is refused', 'owner: DELETE from streams is refused');
SELECT throws_ok(
    $$ TRUNCATE event_store.streams CASCADE $$,
    '42501', 'TRUNCATE of "event_store.streams" is refused', 'owner: TRUNCATE of streams is refused');

-- session_replication_role = replica disables ordinary triggers, not these.
SET LOCAL session_replication_role = replica;
SELECT is(current_setting('session_replication_role'), 'replica',
          'session_replication_role is replica');
SELECT throws_ok(
    $$ UPDATE event_store.events SET data = '{}' WHERE stream = 'order-1' $$,
    '42501', 'events are immutable', 'replica role: UPDATE of events is refused');
SELECT throws_ok(
    $$ DELETE FROM event_store.events WHERE stream = 'order-1' $$,
    '42501', 'events are immutable', 'replica role: DELETE from events is refused');
SELECT throws_ok(
    $$ TRUNCATE event_store.events $$,
    '42501', 'events are immutable', 'replica role: TRUNCATE of events is refused');
SELECT throws_ok(
    $$ UPDATE event_store.streams SET version = 0 WHERE name = 'order-1' $$,
    '42501', 'UPDATE of "event_store.streams" is refused', 'replica role: UPDATE of streams is refused');
SELECT throws_ok(
    $$ DELETE FROM event_store.streams WHERE name = 'order-1' $$,
    '42501', 'DELETE of "event_store.streams" is refused', 'replica role: DELETE from streams is refused');
SELECT throws_ok(
    $$ TRUNCATE event_store.streams CASCADE $$,
    '42501', 'TRUNCATE of "event_store.streams" is refused', 'replica role: TRUNCATE of streams is refused');
SET LOCAL session_replication_role = origin;

SELECT is(pg_temp.stored(), 'events=7 streams=2 versions=7',
          'every refused change left the tables as they were');
SELECT results_eq(
    $$ SELECT stream COLLATE "default", version, type COLLATE "default", data
         FROM event_store.events ORDER BY position $$,
    $$ VALUES ('order-1'::text, 1::bigint, 'OrderPlaced'::text, '{"n":1}'::jsonb),
              ('order-1', 2, 'OrderPaid', '{"n":2}'),
              ('order-1', 3, 'OrderShipped', '{"n":3}'),
              ('order-1', 4, 'OrderDelivered', '{"n":4}'),
              ('writer-1', 1, 'Created', '{}'),
              ('order-1', 5, 'OrderArchived', '{"n":5}'),
              ('writer-1', 2, 'ViaDefiner', '{}') $$,
    'the events are unchanged, in position order');

-- Row-level security is refused, not bypassed -----------------------------------

ALTER TABLE event_store.events ENABLE ROW LEVEL SECURITY;
CREATE POLICY regress_es_only_order ON event_store.events
    USING (stream = 'order-1') WITH CHECK (stream = 'order-1');
SET ROLE regress_es_reader;
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_read_stream('order-1') $$,
    '0A000', 'row-level security on table "events" is not supported by event_store',
    'reader: es_read_stream refuses events with RLS enabled');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_read_stream('writer-1') $$,
    '0A000', 'row-level security on table "events" is not supported by event_store',
    'reader: es_read_stream does not read past the policy');
SELECT throws_ok(
    $$ SELECT event_store.es_head_position() $$,
    '0A000', 'row-level security on table "events" is not supported by event_store',
    'reader: es_head_position refuses events with RLS enabled');
SELECT is(event_store.es_stream_version('order-1'), 5::bigint,
          'reader: es_stream_version reads streams, which has no RLS');
SELECT results_eq(
    $$ SELECT DISTINCT stream COLLATE "default" FROM event_store.events $$,
    ARRAY['order-1'::text],
    'reader: a plain SELECT sees only what the policy allows');
RESET ROLE;
SET ROLE regress_es_writer;
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_append('writer-1', NULL, 'X', '{}') $$,
    '0A000', 'row-level security on table "events" is not supported by event_store',
    'writer: es_append refuses events with RLS enabled');
RESET ROLE;
SELECT is(pg_temp.stored(), 'events=7 streams=2 versions=7',
          'the refused append stored nothing');
-- the owner is not subject to the policy (no FORCE), so it reads as usual
SELECT results_eq(
    $$ SELECT version FROM event_store.es_read_stream('writer-1') $$,
    ARRAY[1::bigint, 2::bigint],
    'owner: es_read_stream works, RLS does not apply to the owner');
ALTER TABLE event_store.events DISABLE ROW LEVEL SECURITY;

ALTER TABLE event_store.streams ENABLE ROW LEVEL SECURITY;
SET ROLE regress_es_reader;
SELECT throws_ok(
    $$ SELECT event_store.es_stream_version('order-1') $$,
    '0A000', 'row-level security on table "streams" is not supported by event_store',
    'reader: es_stream_version refuses streams with RLS enabled');
SELECT results_eq(
    $$ SELECT version FROM event_store.es_read_stream('order-1', 5) $$,
    ARRAY[5::bigint],
    'reader: es_read_stream works again once RLS is off on events');
RESET ROLE;
ALTER TABLE event_store.streams DISABLE ROW LEVEL SECURITY;

SET ROLE regress_es_reader;
SELECT is(event_store.es_stream_version('order-1'), 5::bigint,
          'reader: es_stream_version works again once RLS is off on streams');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
