-- pgTAP: who may do what.  The C functions reach the tables directly, so
-- they check the caller's table privileges themselves: INSERT on events to
-- append, SELECT on events to read a stream, the head or the feed
-- (es_read_all, es_read_category), SELECT on streams for es_stream_version.
-- The checkpoint functions are PL/pgSQL and SECURITY INVOKER: they need
-- SELECT on checkpoints to read one, and SELECT, INSERT, UPDATE to save or
-- reset one; the view es_consumers needs SELECT on the view and, since it
-- calls es_head_position(), SELECT on events like every reader.  UPDATE, DELETE
-- and TRUNCATE of events and streams are refused by ENABLE ALWAYS triggers
-- for every role, superuser included.
-- The lifecycle functions: es_read_stream_at needs SELECT on events like
-- es_read_stream; es_load_snapshot SELECT on streams and snapshots,
-- es_load_aggregate SELECT on events and snapshots; es_save_snapshot
-- INSERT, UPDATE, SELECT on snapshots; es_set_stream_metadata and
-- es_delete_stream INSERT on events; the upcaster registry privileges on
-- upcasters; es_erase_stream EXECUTE, which PUBLIC does not have.  The audit
-- trail (erasures) is immutable like events, and a change of upcasters
-- reaches every session's cache, in every session_replication_role.
-- test/pgtap/06_lifecycle.sql covers the lifecycle privileges in depth.
-- The roles are created inside the test transaction and vanish with it.
BEGIN;
SELECT plan(186);

-- The helpers of the SQL suites (test/helpers.sql): err(), stored(), remote().
\set helpers pg_temp
\ir ../helpers.sql
SET LOCAL client_min_messages = warning;  -- no NOTICE of TRUNCATE ... CASCADE

CREATE ROLE regress_es_nobody;          -- no privilege on the tables
CREATE ROLE regress_es_reader;          -- SELECT on events and streams
CREATE ROLE regress_es_events_reader;   -- SELECT on events only
CREATE ROLE regress_es_writer;          -- INSERT and SELECT on events, SELECT on streams
CREATE ROLE regress_es_all;             -- every privilege on every table of event_store
CREATE ROLE regress_es_member IN ROLE regress_es_reader;  -- inherits the reader's
CREATE ROLE regress_es_checkpointer;    -- SELECT, INSERT, UPDATE on checkpoints only
CREATE ROLE regress_es_cp_reader;       -- SELECT on checkpoints only
CREATE ROLE regress_es_projector;       -- SELECT on events; SELECT, INSERT, UPDATE on checkpoints
CREATE ROLE regress_es_monitor;         -- SELECT on the view es_consumers and on events
GRANT SELECT ON event_store.events, event_store.streams TO regress_es_reader;
GRANT SELECT ON event_store.events TO regress_es_events_reader;
GRANT INSERT, SELECT ON event_store.events TO regress_es_writer;
GRANT SELECT ON event_store.streams TO regress_es_writer;
GRANT ALL ON ALL TABLES IN SCHEMA event_store TO regress_es_all;
GRANT SELECT, INSERT, UPDATE ON event_store.checkpoints TO regress_es_checkpointer;
GRANT SELECT ON event_store.checkpoints TO regress_es_cp_reader;
GRANT SELECT ON event_store.events TO regress_es_projector;
GRANT SELECT, INSERT, UPDATE ON event_store.checkpoints TO regress_es_projector;
GRANT SELECT ON event_store.es_consumers TO regress_es_monitor;

-- Every checkpoint, as the superuser sees it.
CREATE FUNCTION pg_temp.checkpoints() RETURNS text LANGUAGE sql AS $$
  SELECT coalesce(string_agg(consumer || '=' || position, ' ' ORDER BY consumer), '')
    FROM event_store.checkpoints
$$;
-- A second session, whose appends commit at once (see "The feed" below).
CREATE EXTENSION dblink;

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
-- the lifecycle functions
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_read_stream_at('order-1', 1) $$,
    '42501', 'permission denied for table events',
    'nobody: es_read_stream_at needs SELECT on events');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_load_snapshot('order-1') $$,
    '42501', 'permission denied for table streams',
    'nobody: es_load_snapshot needs SELECT on streams');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_load_aggregate('order-1') $$,
    '42501', 'permission denied for table events',
    'nobody: es_load_aggregate needs SELECT on events');
SELECT throws_ok(
    $$ SELECT event_store.es_save_snapshot('order-1', 1, '{}') $$,
    '42501', 'permission denied for table snapshots',
    'nobody: es_save_snapshot needs privileges on snapshots');
SELECT throws_ok(
    $$ SELECT event_store.es_set_stream_metadata('order-1', '{"max_count":1}') $$,
    '42501', 'permission denied for table events',
    'nobody: es_set_stream_metadata needs INSERT on events');
SELECT throws_ok(
    $$ SELECT event_store.es_delete_stream('order-1') $$,
    '42501', 'permission denied for table events',
    'nobody: es_delete_stream needs INSERT on events');
SELECT throws_ok(
    $$ SELECT event_store.es_erase_stream('order-1') $$,
    '42501', 'permission denied for function es_erase_stream',
    'nobody: es_erase_stream needs EXECUTE, which PUBLIC does not have');
SELECT throws_ok(
    $$ SELECT event_store.es_unregister_upcaster('OrderPlaced', 1) $$,
    '42501', 'permission denied for table upcasters',
    'nobody: es_unregister_upcaster needs privileges on upcasters');
SELECT throws_ok(
    $$ SELECT * FROM event_store.snapshots $$,
    '42501', 'permission denied for table snapshots',
    'nobody: plain SELECT from snapshots is denied');
SELECT throws_ok(
    $$ SELECT * FROM event_store.upcasters $$,
    '42501', 'permission denied for table upcasters',
    'nobody: plain SELECT from upcasters is denied');
SELECT throws_ok(
    $$ INSERT INTO event_store.upcasters (type, from_schema_version, upcaster)
       VALUES ('OrderPlaced', 1, 'pg_catalog.jsonb_strip_nulls(jsonb)') $$,
    '42501', 'permission denied for table upcasters',
    'nobody: plain INSERT into upcasters is denied');
SELECT throws_ok(
    $$ SELECT * FROM event_store.erasures $$,
    '42501', 'permission denied for table erasures',
    'nobody: plain SELECT from erasures is denied');
-- the internal functions PUBLIC may not execute
SELECT throws_ok(
    $$ SELECT event_store._es_install() $$,
    '42501', 'permission denied for function _es_install',
    'nobody: _es_install may not be called');
SELECT throws_ok(
    $$ SELECT event_store._es_registry_changed() $$,
    '42501', 'permission denied for function _es_registry_changed',
    'nobody: _es_registry_changed may not be called');
SELECT throws_ok(
    $$ SELECT event_store._es_refuse_change() $$,
    '42501', 'permission denied for function _es_refuse_change',
    'nobody: _es_refuse_change may not be called');
SELECT throws_ok(
    $$ SELECT event_store._es_events_before_insert() $$,
    '42501', 'permission denied for function _es_events_before_insert',
    'nobody: _es_events_before_insert may not be called');
SELECT throws_ok(
    $$ SELECT event_store._es_events_after_statement() $$,
    '42501', 'permission denied for function _es_events_after_statement',
    'nobody: _es_events_after_statement may not be called');
RESET ROLE;
SELECT is(current_user::text, 'postgres', 'back to the superuser after RESET ROLE');
SELECT is(pg_temp.stored('feed-%'), 'events=0 streams=0 versions=0',
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

-- The feed ---------------------------------------------------------------------
-- An open transaction that appended holds the feed back for every reader,
-- itself included, until it ends: so this comes before the first append of
-- this transaction, and reads three events a second session commits.

SELECT results_eq(
    $$ SELECT * FROM dblink(pg_temp.remote(),
         $r$ SELECT stream, last_version FROM event_store.es_append('feed-1', 0,
               '[{"type":"FeedA","data":{"n":1}},{"type":"FeedB","data":{"n":2}},
                 {"type":"FeedA","data":{"n":3}}]') $r$) AS t(stream text, last_version bigint) $$,
    $$ VALUES ('feed-1'::text, 3::bigint) $$,
    'a second session commits three events to feed-1');

SET ROLE regress_es_nobody;
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_read_all() $$,
    '42501', 'permission denied for table events',
    'nobody: es_read_all needs SELECT on events');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_read_all(0, 10, ARRAY['FeedA']) $$,
    '42501', 'permission denied for table events',
    'nobody: es_read_all with a type filter needs SELECT on events');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_read_category('feed') $$,
    '42501', 'permission denied for table events',
    'nobody: es_read_category needs SELECT on events');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_read_category('feed', 0, 10, 1, 3) $$,
    '42501', 'permission denied for table events',
    'nobody: es_read_category as a consumer group member needs SELECT on events');
-- es_consumer_member touches no table
SELECT is(event_store.es_consumer_member('order-1', 4), 1, 'nobody: es_consumer_member works');
RESET ROLE;

SET ROLE regress_es_reader;
SELECT results_eq(
    $$ SELECT stream, version, type, data FROM event_store.es_read_all() $$,
    $$ VALUES ('feed-1'::text, 1::bigint, 'FeedA'::text, '{"n":1}'::jsonb),
              ('feed-1', 2, 'FeedB', '{"n":2}'), ('feed-1', 3, 'FeedA', '{"n":3}') $$,
    'reader: es_read_all returns the committed events, in position order');
SELECT results_eq(
    $$ SELECT version FROM event_store.es_read_all(0, 100, ARRAY['FeedA']) $$,
    ARRAY[1, 3]::bigint[],
    'reader: es_read_all with a type filter');
SELECT results_eq(
    $$ SELECT version FROM event_store.es_read_category('feed', 0, 100, 0, 1) $$,
    ARRAY[1, 2, 3]::bigint[],
    'reader: es_read_category returns the category''s events');
RESET ROLE;

SET ROLE regress_es_events_reader;
SELECT results_eq(
    $$ SELECT version FROM event_store.es_read_all(0, 2) $$,
    ARRAY[1, 2]::bigint[],
    'events reader: es_read_all needs only SELECT on events');
SELECT results_eq(
    $$ SELECT version FROM event_store.es_read_category('feed', 0, 100,
                                                        event_store.es_consumer_member('feed-1', 2), 2) $$,
    ARRAY[1, 2, 3]::bigint[],
    'events reader: es_read_category as a consumer group member needs only SELECT on events');
RESET ROLE;

-- privileges on checkpoints do not open the feed
SET ROLE regress_es_checkpointer;
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_read_all() $$,
    '42501', 'permission denied for table events',
    'checkpointer: es_read_all needs SELECT on events');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_read_category('feed') $$,
    '42501', 'permission denied for table events',
    'checkpointer: es_read_category needs SELECT on events');
RESET ROLE;

-- A projection: read a page from the checkpoint, save its last position.
SET ROLE regress_es_projector;
SELECT is(
    event_store.es_checkpoint_save('projector',
        (SELECT max(position) FROM event_store.es_read_all(event_store.es_checkpoint_get('projector'), 2)),
        0),
    (SELECT position FROM event_store.events WHERE stream = 'feed-1' AND version = 2),
    'projector: reads a page of 2 from checkpoint 0 and saves the position of the 2nd event');
SELECT results_eq(
    $$ SELECT stream, version FROM event_store.es_read_all(event_store.es_checkpoint_get('projector'), 100) $$,
    $$ VALUES ('feed-1'::text, 3::bigint) $$,
    'projector: the next page starts after the checkpoint');
RESET ROLE;
SELECT is(pg_temp.checkpoints(), 'projector=' || (SELECT position FROM event_store.events
                                                   WHERE stream = 'feed-1' AND version = 2),
          'the projector''s checkpoint is stored');
CREATE TEMP TABLE expected_projector AS
  SELECT position FROM event_store.events WHERE stream = 'feed-1' AND version = 2;
GRANT SELECT ON expected_projector TO PUBLIC;

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
    $$ SELECT version, type COLLATE "default" FROM event_store.events
        WHERE stream NOT LIKE 'feed-%' ORDER BY position $$,
    $$ VALUES (1::bigint, 'OrderPlaced'::text), (2::bigint, 'OrderPaid'::text) $$,
    'reader: plain SELECT from events');
SELECT results_eq(
    $$ SELECT name COLLATE "default", category COLLATE "default", version FROM event_store.streams
        WHERE name NOT LIKE 'feed-%' $$,
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
SELECT results_eq(
    $$ SELECT version, type FROM event_store.es_read_stream_at('order-1', 1) $$,
    $$ VALUES (1::bigint, 'OrderPlaced'::text) $$,
    'reader: es_read_stream_at at a version');
SELECT results_eq(
    $$ SELECT version FROM event_store.es_read_stream_at('order-1', NULL, now()) $$,
    ARRAY[1::bigint, 2::bigint],
    'reader: es_read_stream_at at a time');
SELECT throws_ok(
    $$ SELECT event_store.es_set_stream_metadata('order-1', '{"max_count":1}') $$,
    '42501', 'permission denied for table events',
    'reader: es_set_stream_metadata is denied (hiding events is a write)');
SELECT throws_ok(
    $$ SELECT event_store.es_delete_stream('order-1') $$,
    '42501', 'permission denied for table events',
    'reader: es_delete_stream is denied');
SELECT throws_ok(
    $$ SELECT event_store.es_save_snapshot('order-1', 2, '{}') $$,
    '42501', 'permission denied for table snapshots',
    'reader: es_save_snapshot needs privileges on snapshots');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_load_aggregate('order-1') $$,
    '42501', 'permission denied for table snapshots',
    'reader: es_load_aggregate also needs SELECT on snapshots');
SELECT throws_ok(
    $$ SELECT event_store.es_erase_stream('order-1') $$,
    '42501', 'permission denied for function es_erase_stream',
    'reader: es_erase_stream is denied');
RESET ROLE;
SELECT is(pg_temp.stored('feed-%'), 'events=2 streams=1 versions=2',
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
SELECT results_eq(
    $$ SELECT version FROM event_store.es_read_stream_at('order-1', 1) $$,
    ARRAY[1::bigint],
    'events reader: es_read_stream_at needs only SELECT on events');
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
SELECT is(event_store.es_set_stream_metadata('writer-1', '{"owner":"writer"}'),
          '{"owner":"writer"}'::jsonb,
          'writer: es_set_stream_metadata (INSERT on events)');
SELECT throws_ok(
    $$ SELECT event_store.es_erase_stream('writer-1') $$,
    '42501', 'permission denied for function es_erase_stream',
    'writer: es_erase_stream is denied');
SELECT throws_ok(
    $$ SELECT event_store.es_save_snapshot('writer-1', 1, '{}') $$,
    '42501', 'permission denied for table snapshots',
    'writer: es_save_snapshot needs privileges on snapshots');
SELECT throws_ok(
    $$ INSERT INTO event_store.erasures (stream, erased_at, erased_by, session_user_name,
                                        events_erased, last_version)
       VALUES ('writer-1', now(), 'x', 'x', 0, 0) $$,
    '42501', 'permission denied for table erasures',
    'writer: a forged audit row is denied');
RESET ROLE;
SELECT is(pg_temp.stored('feed-%'), 'events=6 streams=2 versions=6',
          'the writer stored 4 events; its refused changes nothing');
SELECT results_eq(
    $$ SELECT name COLLATE "default", metadata, erased_at FROM event_store.streams
        WHERE name NOT LIKE 'feed-%' ORDER BY name $$,
    $$ VALUES ('order-1'::text, '{}'::jsonb, NULL::timestamptz),
              ('writer-1', '{"owner":"writer"}', NULL) $$,
    'the writer set the metadata of writer-1; the refused calls changed no stream');
SELECT is((SELECT count(*)::int FROM event_store.snapshots) + (SELECT count(*)::int FROM event_store.erasures),
          0, 'no snapshot and no audit row was written');

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

-- Checkpoints ------------------------------------------------------------------

SET ROLE regress_es_nobody;
SELECT throws_ok(
    $$ SELECT event_store.es_checkpoint_save('nobody_view', 1) $$,
    '42501', 'permission denied for table checkpoints',
    'nobody: es_checkpoint_save needs privileges on checkpoints');
SELECT throws_ok(
    $$ SELECT event_store.es_checkpoint_get('nobody_view') $$,
    '42501', 'permission denied for table checkpoints',
    'nobody: es_checkpoint_get needs SELECT on checkpoints');
SELECT throws_ok(
    $$ SELECT event_store.es_checkpoint_reset('nobody_view', 0) $$,
    '42501', 'permission denied for table checkpoints',
    'nobody: es_checkpoint_reset needs privileges on checkpoints');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_consumers $$,
    '42501', 'permission denied for view es_consumers',
    'nobody: es_consumers needs SELECT on the view');
SELECT throws_ok(
    $$ SELECT * FROM event_store.checkpoints $$,
    '42501', 'permission denied for table checkpoints',
    'nobody: plain SELECT from checkpoints is denied');
SELECT throws_ok(
    $$ INSERT INTO event_store.checkpoints (consumer, position) VALUES ('nobody_view', 1) $$,
    '42501', 'permission denied for table checkpoints',
    'nobody: plain INSERT into checkpoints is denied');
-- the validation helpers the checkpoint functions call are executable by
-- everyone, and harmless: they check their argument and touch nothing
SELECT lives_ok($$ SELECT event_store._es_check_consumer('nobody_view') $$,
                'nobody: _es_check_consumer may be called');
SELECT throws_ok($$ SELECT event_store._es_check_position(-1) $$,
                 '22023', 'position must not be negative',
                 'nobody: _es_check_position may be called');
RESET ROLE;

-- SELECT on events and streams opens neither checkpoints nor es_consumers.
SET ROLE regress_es_reader;
SELECT throws_ok(
    $$ SELECT event_store.es_checkpoint_get('reader_view') $$,
    '42501', 'permission denied for table checkpoints',
    'reader: es_checkpoint_get needs SELECT on checkpoints');
SELECT throws_ok(
    $$ SELECT event_store.es_checkpoint_save('reader_view', 1) $$,
    '42501', 'permission denied for table checkpoints',
    'reader: es_checkpoint_save needs privileges on checkpoints');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_consumers $$,
    '42501', 'permission denied for view es_consumers',
    'reader: SELECT on events does not open es_consumers');
RESET ROLE;

-- SELECT, INSERT, UPDATE on checkpoints: the checkpoint functions work.
SET ROLE regress_es_checkpointer;
SELECT is(event_store.es_checkpoint_get('cp_view'), 0::bigint,
          'checkpointer: es_checkpoint_get of an unknown consumer is 0');
SELECT is(event_store.es_checkpoint_save('cp_view', 5), 5::bigint,
          'checkpointer: es_checkpoint_save creates a checkpoint');
SELECT is(event_store.es_checkpoint_save('cp_view', 9, 5), 9::bigint,
          'checkpointer: es_checkpoint_save with expected_position moves it');
SELECT is(event_store.es_checkpoint_get('cp_view'), 9::bigint,
          'checkpointer: es_checkpoint_get reads it');
SELECT is(event_store.es_checkpoint_reset('cp_view', 2), 2::bigint,
          'checkpointer: es_checkpoint_reset moves it back');
SELECT throws_ok(
    $$ SELECT event_store.es_checkpoint_save('cp_view', 1) $$,
    'V0002', 'checkpoint of consumer "cp_view" cannot move backwards',
    'checkpointer: and the checkpoint rules apply');
SELECT results_eq(
    $$ SELECT consumer COLLATE "default", position FROM event_store.checkpoints ORDER BY consumer $$,
    $$ VALUES ('cp_view'::text, 2::bigint), ('projector', (SELECT position FROM expected_projector)) $$,
    'checkpointer: plain SELECT from checkpoints');
RESET ROLE;
SET ROLE regress_es_checkpointer;
SELECT throws_ok(
    $$ DELETE FROM event_store.checkpoints $$,
    '42501', 'permission denied for table checkpoints',
    'checkpointer: DELETE from checkpoints was not granted');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_consumers $$,
    '42501', 'permission denied for view es_consumers',
    'checkpointer: privileges on checkpoints do not open es_consumers');
RESET ROLE;
SELECT is(pg_temp.checkpoints(), 'cp_view=2 projector=' || (SELECT position FROM expected_projector),
          'the checkpointer saved cp_view at 2');

-- SELECT alone reads checkpoints; saving takes a row lock and writes.
SET ROLE regress_es_cp_reader;
SELECT is(event_store.es_checkpoint_get('cp_view'), 2::bigint,
          'checkpoint reader: es_checkpoint_get needs only SELECT on checkpoints');
SELECT throws_ok(
    $$ SELECT event_store.es_checkpoint_save('cp_view', 3) $$,
    '42501', 'permission denied for table checkpoints',
    'checkpoint reader: es_checkpoint_save needs UPDATE on checkpoints');
SELECT throws_ok(
    $$ SELECT event_store.es_checkpoint_save('cp_new', 3) $$,
    '42501', 'permission denied for table checkpoints',
    'checkpoint reader: es_checkpoint_save of a new consumer is denied too');
SELECT throws_ok(
    $$ SELECT event_store.es_checkpoint_reset('cp_view', 0) $$,
    '42501', 'permission denied for table checkpoints',
    'checkpoint reader: es_checkpoint_reset needs UPDATE on checkpoints');
RESET ROLE;
SELECT is(pg_temp.checkpoints(), 'cp_view=2 projector=' || (SELECT position FROM expected_projector),
          'the refused saves changed nothing');

SET ROLE regress_es_projector;
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_consumers $$,
    '42501', 'permission denied for view es_consumers',
    'projector: es_consumers needs SELECT on the view');
RESET ROLE;

-- SELECT on the view alone: like any view, it reads its tables with the
-- privileges of its owner.  The view as text, or the error reading it:
CREATE FUNCTION pg_temp.consumers() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r text;
BEGIN
  SELECT string_agg(format('%s position=%s head=%s lag_positions=%s lag_seconds=%s',
                           consumer, position, head, lag_positions, lag_seconds >= 0),
                    '; ' ORDER BY consumer)
    INTO r FROM event_store.es_consumers;
  RETURN r;
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
CREATE TEMP TABLE consumers_seen_by_owner AS SELECT pg_temp.consumers() AS seen;
GRANT SELECT ON consumers_seen_by_owner TO regress_es_monitor;
SELECT matches(
    (SELECT seen FROM consumers_seen_by_owner),
    '^cp_view position=2 head=[0-9]+ lag_positions=[0-9]+ lag_seconds=t; '
    || 'projector position=' || (SELECT position FROM expected_projector)
    || ' head=[0-9]+ lag_positions=[0-9]+ lag_seconds=t$',
    'the owner reads both consumers from es_consumers');
SET ROLE regress_es_monitor;
SELECT is(
    pg_temp.consumers(),
    '42501: permission denied for table events',
    'monitor with SELECT on es_consumers only: the head inside needs SELECT on events');
RESET ROLE;
GRANT SELECT ON event_store.events TO regress_es_monitor;
SET ROLE regress_es_monitor;
SELECT is(
    pg_temp.consumers(),
    (SELECT seen FROM consumers_seen_by_owner),
    'monitor: SELECT on es_consumers and on events is enough to read every consumer and its lag');
SELECT throws_ok(
    $$ SELECT * FROM event_store.checkpoints $$,
    '42501', 'permission denied for table checkpoints',
    'monitor: the view opens no access to checkpoints');
SELECT throws_ok(
    $$ SELECT event_store.es_checkpoint_get('cp_view') $$,
    '42501', 'permission denied for table checkpoints',
    'monitor: nor to the checkpoint functions');
RESET ROLE;
SELECT is(pg_temp.stored('feed-%'), 'events=7 streams=2 versions=7',
          'the checkpoint calls stored no event');

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
    '42501', 'cannot update table "event_store.streams"',
    'role with all privileges: UPDATE of streams is refused');
SELECT throws_ok(
    $$ DELETE FROM event_store.streams WHERE name = 'order-1' $$,
    '42501', 'cannot delete from table "event_store.streams"',
    'role with all privileges: DELETE from streams is refused');
-- events and snapshots reference streams: a TRUNCATE of streams alone stops
-- at the foreign key, one that cascades to them reaches the triggers
SELECT throws_ok(
    $$ TRUNCATE event_store.streams $$,
    '0A000', 'cannot truncate a table referenced in a foreign key constraint',
    'role with all privileges: TRUNCATE of streams is refused');
SELECT throws_ok(
    $$ TRUNCATE event_store.streams CASCADE $$,
    '42501', 'cannot truncate table "event_store.streams"',
    'role with all privileges: TRUNCATE of streams CASCADE is refused');
SELECT throws_ok(
    $$ UPDATE event_store.erasures SET reason = 'forged' $$,
    '42501', 'cannot update table "event_store.erasures"',
    'role with all privileges: UPDATE of erasures is refused');
SELECT throws_ok(
    $$ DELETE FROM event_store.erasures $$,
    '42501', 'cannot delete from table "event_store.erasures"',
    'role with all privileges: DELETE from erasures is refused');
SELECT throws_ok(
    $$ TRUNCATE event_store.erasures $$,
    '42501', 'cannot truncate table "event_store.erasures"',
    'role with all privileges: TRUNCATE of erasures is refused');
SELECT throws_ok(
    $$ SELECT event_store.es_erase_stream('writer-1') $$,
    '42501', 'permission denied for function es_erase_stream',
    'role with all privileges: es_erase_stream still needs EXECUTE');
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
    $$ TRUNCATE event_store.events, event_store.streams, event_store.snapshots $$,
    '42501', 'events are immutable',
    'owner: TRUNCATE of both tables (and of snapshots, which references streams) is refused');
SELECT throws_ok(
    $$ TRUNCATE event_store.events, event_store.streams $$,
    '0A000', 'cannot truncate a table referenced in a foreign key constraint',
    'owner: TRUNCATE of both tables without snapshots stops at its foreign key');
SELECT throws_ok(
    $$ INSERT INTO event_store.events (stream, type, data) VALUES ('order-1', 'X', '{}')
       ON CONFLICT (stream, version) DO UPDATE SET data = '{}' $$,
    '42501', 'events are immutable', 'owner: INSERT ... ON CONFLICT DO UPDATE is refused');
SELECT throws_ok(
    $$ UPDATE event_store.streams SET version = 0 WHERE name = 'order-1' $$,
    '42501', 'cannot update table "event_store.streams"', 'owner: UPDATE of streams is refused');
SELECT throws_ok(
    $$ DELETE FROM event_store.streams WHERE name = 'order-1' $$,
    '42501', 'cannot delete from table "event_store.streams"', 'owner: DELETE from streams is refused');
SELECT throws_ok(
    $$ TRUNCATE event_store.streams CASCADE $$,
    '42501', 'cannot truncate table "event_store.streams"', 'owner: TRUNCATE of streams is refused');
SELECT throws_ok(
    $$ UPDATE event_store.erasures SET reason = 'forged' WHERE false $$,
    '42501', 'cannot update table "event_store.erasures"',
    'owner: UPDATE of erasures is refused even if it matches no row');
SELECT throws_ok(
    $$ DELETE FROM event_store.erasures WHERE false $$,
    '42501', 'cannot delete from table "event_store.erasures"',
    'owner: DELETE from erasures is refused even if it matches no row');
SELECT throws_ok(
    $$ TRUNCATE event_store.erasures $$,
    '42501', 'cannot truncate table "event_store.erasures"', 'owner: TRUNCATE of erasures is refused');

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
    '42501', 'cannot update table "event_store.streams"', 'replica role: UPDATE of streams is refused');
SELECT throws_ok(
    $$ DELETE FROM event_store.streams WHERE name = 'order-1' $$,
    '42501', 'cannot delete from table "event_store.streams"', 'replica role: DELETE from streams is refused');
SELECT throws_ok(
    $$ TRUNCATE event_store.streams CASCADE $$,
    '42501', 'cannot truncate table "event_store.streams"', 'replica role: TRUNCATE of streams is refused');
SELECT throws_ok(
    $$ UPDATE event_store.erasures SET reason = 'forged' $$,
    '42501', 'cannot update table "event_store.erasures"', 'replica role: UPDATE of erasures is refused');
SELECT throws_ok(
    $$ DELETE FROM event_store.erasures $$,
    '42501', 'cannot delete from table "event_store.erasures"', 'replica role: DELETE from erasures is refused');
SELECT throws_ok(
    $$ TRUNCATE event_store.erasures $$,
    '42501', 'cannot truncate table "event_store.erasures"', 'replica role: TRUNCATE of erasures is refused');
SET LOCAL session_replication_role = origin;

SELECT is(pg_temp.stored('feed-%'), 'events=7 streams=2 versions=7',
          'every refused change left the tables as they were');
SELECT results_eq(
    $$ SELECT stream COLLATE "default", version, type COLLATE "default", data
         FROM event_store.events WHERE stream NOT LIKE 'feed-%' ORDER BY position $$,
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
SELECT is(pg_temp.stored('feed-%'), 'events=7 streams=2 versions=7',
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

-- session_replication_role = replica does not silence upcasters_changed ----------
-- Every session caches the upcasters; the statement trigger on upcasters
-- tells them all of a change, this session included.  Were it an ordinary
-- trigger, a plain change of the registry in replica mode would leave the
-- cache stale: the reads below would not follow it.

CREATE FUNCTION regress_es.to_v2(data jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE
    AS $$ SELECT data || '{"v2":true}' $$;
CREATE FUNCTION regress_es.to_v3(data jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE
    AS $$ SELECT data || '{"v3":true}' $$;
CREATE FUNCTION regress_es.to_v3_again(data jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE
    AS $$ SELECT data || '{"v3":"again"}' $$;
SELECT lives_ok(
    $$ SELECT event_store.es_register_upcaster('Versioned', 1, 'regress_es.to_v2(jsonb)') $$,
    'the superuser registers an upcaster of Versioned from schema version 1');
SELECT results_eq(
    $$ SELECT stream, last_version FROM event_store.es_append('upcast-1', 0, 'Versioned', '{}') $$,
    $$ VALUES ('upcast-1'::text, 1::bigint) $$,
    'an event of schema version 1 is appended to upcast-1');
SELECT results_eq(
    $$ SELECT schema_version, data FROM event_store.es_read_stream('upcast-1') $$,
    $$ VALUES (2, '{"v2":true}'::jsonb) $$,
    'it reads as schema version 2 (and the session has cached the upcasters)');
SET LOCAL session_replication_role = replica;
INSERT INTO event_store.upcasters (type, from_schema_version, upcaster)
VALUES ('Versioned', 2, 'regress_es.to_v3(jsonb)');
SELECT results_eq(
    $$ SELECT schema_version, data FROM event_store.es_read_stream('upcast-1') $$,
    $$ VALUES (3, '{"v2":true,"v3":true}'::jsonb) $$,
    'replica role: a plain INSERT into upcasters reaches the cache');
UPDATE event_store.upcasters SET upcaster = 'regress_es.to_v3_again(jsonb)'
 WHERE type = 'Versioned' AND from_schema_version = 2;
SELECT results_eq(
    $$ SELECT schema_version, data FROM event_store.es_read_stream('upcast-1') $$,
    $$ VALUES (3, '{"v2":true,"v3":"again"}'::jsonb) $$,
    'replica role: a plain UPDATE of upcasters reaches the cache');
DELETE FROM event_store.upcasters WHERE type = 'Versioned' AND from_schema_version = 2;
SELECT results_eq(
    $$ SELECT schema_version, data FROM event_store.es_read_stream('upcast-1') $$,
    $$ VALUES (2, '{"v2":true}'::jsonb) $$,
    'replica role: a plain DELETE from upcasters reaches the cache');
SET LOCAL session_replication_role = origin;

SELECT * FROM finish();
ROLLBACK;
