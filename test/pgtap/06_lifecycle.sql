-- pgTAP: the stream lifecycle and who may end a stream.
--
-- Hard delete (es_erase_stream) is the one way events leave the table.
-- EXECUTE on it is revoked from PUBLIC: a role must be granted it.  Every
-- other route to UPDATE or DELETE events is closed, for a role holding every
-- table privilege too: the immutability trigger (ENABLE ALWAYS) refuses
-- UPDATE, DELETE and TRUNCATE of events for every role, and only the owner
-- can disable, drop or demote it.  es_erase_stream removes rows with the
-- table AM, so the trigger has nothing to let through, and no setting or
-- session variable opens it: this file sets every event_store.% setting (and
-- invented ones) to a range of values and tries again after each.
--
-- Also: the table privileges of snapshots (es_load_snapshot and
-- es_load_aggregate read them, es_save_snapshot upserts them) and of the
-- upcaster registry, and the rule that a role registers only functions
-- of a role it is a member of.
--
-- An attacker's own login is played with SET SESSION AUTHORIZATION:
-- PostgreSQL judges SET ROLE by the session user, which would otherwise be
-- the superuser running this file (which is also why the file can go back).
-- The roles are created inside the test transaction and vanish with it.
BEGIN;
SELECT plan(137);

-- The helpers of the SQL suites (test/helpers.sql): err(), stored(), remote().
\set helpers pg_temp
\ir ../helpers.sql
SET LOCAL client_min_messages = warning;  -- no NOTICE of TRUNCATE ... CASCADE

CREATE ROLE regress_lc_writer;        -- the README's writer: SELECT, INSERT on events, SELECT on streams
CREATE ROLE regress_lc_all;           -- every table privilege on every table of event_store, no EXECUTE on erase
CREATE ROLE regress_lc_eraser;        -- EXECUTE on es_erase_stream, nothing else
CREATE ROLE regress_lc_eraser_member IN ROLE regress_lc_eraser;  -- inherits the eraser's grant
CREATE ROLE regress_lc_snap_noread;   -- SELECT on events and streams, nothing on snapshots
CREATE ROLE regress_lc_snap_reader;   -- SELECT on events, streams and snapshots
CREATE ROLE regress_lc_snap_only;     -- SELECT on snapshots only
CREATE ROLE regress_lc_snap_writer;   -- SELECT on streams; SELECT, INSERT, UPDATE on snapshots
CREATE ROLE regress_lc_snap_noupdate; -- SELECT on streams; SELECT, INSERT on snapshots
CREATE ROLE regress_lc_snap_noselect; -- SELECT on streams; INSERT, UPDATE on snapshots
CREATE ROLE regress_lc_snap_nostreams;-- SELECT, INSERT, UPDATE on snapshots only
CREATE ROLE regress_lc_up_none;       -- owns an upcaster function, no privilege on upcasters
CREATE ROLE regress_lc_up_insert;     -- INSERT on upcasters only
CREATE ROLE regress_lc_registrar;     -- SELECT, INSERT on upcasters
GRANT SELECT, INSERT ON event_store.events TO regress_lc_writer;
GRANT SELECT ON event_store.streams TO regress_lc_writer;
GRANT ALL ON ALL TABLES IN SCHEMA event_store TO regress_lc_all;
GRANT pg_write_server_files TO regress_lc_all;  -- so that COPY (DELETE ...) TO a file gets as far as it can
GRANT EXECUTE ON FUNCTION event_store.es_erase_stream(text, text) TO regress_lc_eraser;
GRANT SELECT ON event_store.events, event_store.streams TO regress_lc_snap_noread, regress_lc_snap_reader;
GRANT SELECT ON event_store.snapshots TO regress_lc_snap_reader, regress_lc_snap_only;
GRANT SELECT ON event_store.streams
   TO regress_lc_snap_writer, regress_lc_snap_noupdate, regress_lc_snap_noselect;
GRANT SELECT, INSERT, UPDATE ON event_store.snapshots TO regress_lc_snap_writer, regress_lc_snap_nostreams;
GRANT SELECT, INSERT ON event_store.snapshots TO regress_lc_snap_noupdate;
GRANT INSERT, UPDATE ON event_store.snapshots TO regress_lc_snap_noselect;
GRANT INSERT ON event_store.upcasters TO regress_lc_up_insert;
GRANT SELECT, INSERT ON event_store.upcasters TO regress_lc_registrar;
-- schemas of their own, for the views and functions they create
CREATE SCHEMA regress_lc_writer AUTHORIZATION regress_lc_writer;
CREATE SCHEMA regress_lc_all AUTHORIZATION regress_lc_all;
CREATE SCHEMA regress_lc_up_none AUTHORIZATION regress_lc_up_none;
CREATE SCHEMA regress_lc_up_insert AUTHORIZATION regress_lc_up_insert;
CREATE SCHEMA regress_lc_registrar AUTHORIZATION regress_lc_registrar;
CREATE SCHEMA regress_lc_admin;  -- the superuser's
GRANT USAGE ON SCHEMA regress_lc_admin, regress_lc_up_none TO PUBLIC;  -- their functions can be named

-- What is stored, as the superuser sees it.
CREATE FUNCTION pg_temp.digest() RETURNS text LANGUAGE sql AS $$
  SELECT format('events=%s rows=%s streams=%s erasures=%s',
                (SELECT count(*) FROM event_store.events),
                (SELECT md5(coalesce(string_agg(e::text, ',' ORDER BY e.position), ''))
                   FROM event_store.events e),
                (SELECT count(*) FROM event_store.streams),
                (SELECT count(*) FROM event_store.erasures))
$$;
-- Run a statement as the current role: 'ok', or 'SQLSTATE: message'.
CREATE FUNCTION pg_temp.attempt(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE q;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- Set each setting to each value (for the session, so what was set stays
-- set), then try to change events: every attempt, with its outcome.
CREATE FUNCTION pg_temp.try_settings(names text[], vals text[])
RETURNS TABLE (name text, value text, set_result text, delete_result text,
               update_result text, truncate_result text)
LANGUAGE plpgsql AS $$
BEGIN
  FOREACH name IN ARRAY names LOOP
    FOREACH value IN ARRAY vals LOOP
      set_result := pg_temp.attempt(format('SELECT pg_catalog.set_config(%L, %L, false)', name, value));
      delete_result := pg_temp.attempt('DELETE FROM event_store.events');
      update_result := pg_temp.attempt($q$UPDATE event_store.events SET data = '{"forged":true}'$q$);
      truncate_result := pg_temp.attempt('TRUNCATE event_store.events');
      RETURN NEXT;
    END LOOP;
  END LOOP;
END $$;

SELECT results_eq(
    $$ SELECT (event_store.es_append(s, 0, '[{"type":"A","data":{"n":1}},{"type":"B","data":{"n":2}}]')).last_version
         FROM unnest(ARRAY['keep-1', 'gone-1', 'gone-2', 'gone-3', 'soft-1', 'snap-1', 'snap-2']) s $$,
    $$ SELECT 2::bigint FROM generate_series(1, 7) $$,
    'the superuser appends two events to each of seven streams');
SELECT is(event_store.es_save_snapshot('snap-1', 1, '{"seen":1}'), true,
          'the superuser saves a snapshot of snap-1 at version 1');
CREATE TEMP TABLE before AS SELECT pg_temp.digest() AS stored;
GRANT SELECT ON before TO PUBLIC;

-- Hard delete needs the grant ---------------------------------------------------

SELECT is(
    (SELECT array_agg(r.rolname ORDER BY r.rolname)
       FROM pg_proc p, aclexplode(p.proacl) a JOIN pg_roles r ON r.oid = a.grantee
      WHERE p.oid = 'event_store.es_erase_stream(text, text)'::regprocedure
        AND a.privilege_type = 'EXECUTE'),
    ARRAY['postgres', 'regress_lc_eraser']::name[],
    'EXECUTE on es_erase_stream: its owner and the role granted it, not PUBLIC');

SET ROLE regress_lc_writer;
SELECT throws_ok(
    $$ SELECT event_store.es_erase_stream('keep-1') $$,
    '42501', 'permission denied for function es_erase_stream',
    'writer: es_erase_stream needs the grant');
SELECT throws_ok(
    $$ SELECT event_store.es_erase_stream('keep-1', 'a reason') $$,
    '42501', 'permission denied for function es_erase_stream',
    'writer: es_erase_stream with a reason needs the grant');
RESET ROLE;

SET ROLE regress_lc_all;
SELECT throws_ok(
    $$ SELECT event_store.es_erase_stream('keep-1') $$,
    '42501', 'permission denied for function es_erase_stream',
    'all table privileges: es_erase_stream still needs the grant');
SELECT throws_ok(
    $$ GRANT EXECUTE ON FUNCTION event_store.es_erase_stream(text, text) TO regress_lc_all $$,
    '42501', 'permission denied for function es_erase_stream',
    'all table privileges: cannot grant itself EXECUTE on es_erase_stream');
SELECT throws_ok(
    $$ ALTER FUNCTION event_store.es_erase_stream(text, text) SECURITY DEFINER $$,
    '42501', 'must be owner of function event_store.es_erase_stream',
    'all table privileges: cannot make es_erase_stream SECURITY DEFINER');
SELECT throws_ok(
    $$ CREATE FUNCTION regress_lc_all.erase(text, text) RETURNS bigint
         AS '$libdir/event_store', 'es_erase_stream' LANGUAGE c $$,
    '42501', 'permission denied for language c',
    'all table privileges: cannot declare a function of its own on the C code of es_erase_stream');
SELECT lives_ok(
    $$ CREATE FUNCTION regress_lc_all.erase_definer(s text) RETURNS bigint
         LANGUAGE sql SECURITY DEFINER AS 'SELECT event_store.es_erase_stream(s)' $$,
    'all table privileges: creates a SECURITY DEFINER function calling es_erase_stream');
SELECT throws_ok(
    $$ SELECT regress_lc_all.erase_definer('keep-1') $$,
    '42501', 'permission denied for function es_erase_stream',
    'all table privileges: its SECURITY DEFINER function runs as itself, without the grant');
RESET ROLE;
SELECT is(pg_temp.digest(), (SELECT stored FROM before), 'the refused erasures removed nothing');

-- No other route changes events: the README's writer -------------------------

SET ROLE regress_lc_writer;
SELECT lives_ok(
    $$ CREATE VIEW regress_lc_writer.events_v AS SELECT * FROM event_store.events;
       CREATE FUNCTION regress_lc_writer.delete_definer() RETURNS void
         LANGUAGE sql SECURITY DEFINER AS 'DELETE FROM event_store.events' $$,
    'writer: creates a view on events and a SECURITY DEFINER function that deletes');
SELECT is(pg_temp.attempt(v.q), v.want, 'writer: ' || v.label)
  FROM (VALUES
    ($$ UPDATE event_store.events SET data = '{}' $$,
     '42501: permission denied for table events', 'UPDATE of events'),
    ($$ DELETE FROM event_store.events $$,
     '42501: permission denied for table events', 'DELETE of events'),
    ($$ TRUNCATE event_store.events $$,
     '42501: permission denied for table events', 'TRUNCATE of events'),
    ($$ MERGE INTO event_store.events e USING (SELECT 1) s(x) ON true WHEN MATCHED THEN DELETE $$,
     '42501: permission denied for table events', 'MERGE ... DELETE of events'),
    ($$ MERGE INTO event_store.events e USING (SELECT 1) s(x) ON true
         WHEN MATCHED THEN UPDATE SET data = '{}' $$,
     '42501: permission denied for table events', 'MERGE ... UPDATE of events'),
    ($$ INSERT INTO event_store.events (stream, type, data, event_id)
         SELECT stream, type, '{"forged":true}', event_id FROM event_store.events
         ON CONFLICT (event_id) DO UPDATE SET data = excluded.data $$,
     '42501: permission denied for table events', 'INSERT ... ON CONFLICT DO UPDATE of stored events'),
    ($$ WITH d AS (DELETE FROM event_store.events RETURNING 1) SELECT count(*) FROM d $$,
     '42501: permission denied for table events', 'DELETE in a writable CTE'),
    ($$ DELETE FROM regress_lc_writer.events_v $$,
     '42501: permission denied for table events', 'DELETE through its view'),
    ($$ UPDATE regress_lc_writer.events_v SET data = '{}' $$,
     '42501: permission denied for table events', 'UPDATE through its view'),
    ($$ SELECT regress_lc_writer.delete_definer() $$,
     '42501: permission denied for table events', 'DELETE in its SECURITY DEFINER function'),
    ($$ DELETE FROM event_store.streams WHERE name = 'keep-1' $$,
     '42501: permission denied for table streams', 'DELETE of the stream the events reference'),
    ($$ TRUNCATE event_store.streams CASCADE $$,
     '42501: permission denied for table streams', 'TRUNCATE of streams CASCADE'),
    ($$ CREATE RULE forge AS ON INSERT TO event_store.events DO ALSO DELETE FROM event_store.events $$,
     '42501: must be owner of table events', 'CREATE RULE on events'),
    ($$ CREATE TRIGGER forge BEFORE DELETE ON event_store.events
         FOR EACH STATEMENT EXECUTE FUNCTION event_store._es_refuse_change() $$,
     '42501: permission denied for table events', 'CREATE TRIGGER on events'),
    ($$ ALTER TABLE event_store.events DISABLE TRIGGER events_immutable $$,
     '42501: must be owner of table events', 'ALTER TABLE ... DISABLE TRIGGER events_immutable'),
    ($$ ALTER TABLE event_store.events DISABLE TRIGGER ALL $$,
     '42501: must be owner of table events', 'ALTER TABLE ... DISABLE TRIGGER ALL'),
    ($$ ALTER TABLE event_store.events ENABLE REPLICA TRIGGER events_immutable $$,
     '42501: must be owner of table events', 'ALTER TABLE ... ENABLE REPLICA TRIGGER events_immutable'),
    ($$ DROP TRIGGER events_immutable ON event_store.events $$,
     '42501: must be owner of relation events', 'DROP TRIGGER events_immutable'),
    ($$ COPY (DELETE FROM event_store.events RETURNING position) TO '/dev/null' $$,
     CASE WHEN current_setting('server_version_num')::int >= 160000  -- the message of 16 and later
          THEN '42501: permission denied to COPY to a file'
          ELSE '42501: must be superuser or have privileges of the pg_write_server_files role to COPY to a file' END,
     'COPY (DELETE ... RETURNING) to a file'),
    ($$ DROP TABLE event_store.events CASCADE $$,
     '42501: must be owner of table events', 'DROP TABLE events'),
    ($$ DROP EXTENSION event_store CASCADE $$,
     '42501: must be owner of extension event_store', 'DROP EXTENSION event_store')
  ) AS v(q, want, label);
RESET ROLE;
SELECT is(pg_temp.digest(), (SELECT stored FROM before), 'the writer''s attempts changed nothing');

-- ... nor a role holding every table privilege -------------------------------
-- UPDATE, DELETE and TRUNCATE of events are granted to it: the trigger refuses
-- them, however they are reached.

SET ROLE regress_lc_all;
SELECT lives_ok(
    $$ CREATE VIEW regress_lc_all.events_v AS SELECT * FROM event_store.events;
       CREATE FUNCTION regress_lc_all.delete_definer() RETURNS void
         LANGUAGE sql SECURITY DEFINER AS 'DELETE FROM event_store.events' $$,
    'all table privileges: creates a view on events and a SECURITY DEFINER function that deletes');
-- it holds TRIGGER: a trigger of its own does not stop the immutability trigger
SELECT lives_ok(
    $$ CREATE FUNCTION regress_lc_all.let_through() RETURNS trigger LANGUAGE plpgsql
         AS 'BEGIN IF TG_LEVEL = ''ROW'' THEN RETURN OLD; END IF; RETURN NULL; END';
       CREATE TRIGGER a_let_through BEFORE UPDATE OR DELETE ON event_store.events
         FOR EACH ROW EXECUTE FUNCTION regress_lc_all.let_through();
       CREATE TRIGGER a_let_through_statement BEFORE UPDATE OR DELETE OR TRUNCATE ON event_store.events
         FOR EACH STATEMENT EXECUTE FUNCTION regress_lc_all.let_through() $$,
    'all table privileges: holds TRIGGER, so creates triggers of its own on events (firing first)');
SELECT is(pg_temp.attempt(v.q), v.want, 'all table privileges: ' || v.label)
  FROM (VALUES
    ($$ UPDATE event_store.events SET data = '{}' $$,
     '42501: events are immutable', 'UPDATE of events'),
    ($$ DELETE FROM event_store.events $$,
     '42501: events are immutable', 'DELETE of events'),
    ($$ DELETE FROM event_store.events WHERE stream = 'keep-1' AND version = 1 $$,
     '42501: events are immutable', 'DELETE of one event'),
    ($$ TRUNCATE event_store.events $$,
     '42501: events are immutable', 'TRUNCATE of events'),
    ($$ MERGE INTO event_store.events e USING (SELECT 1) s(x) ON true WHEN MATCHED THEN DELETE $$,
     '42501: events are immutable', 'MERGE ... DELETE of events'),
    ($$ MERGE INTO event_store.events e USING (SELECT 1) s(x) ON true
         WHEN MATCHED THEN UPDATE SET data = '{}' $$,
     '42501: events are immutable', 'MERGE ... UPDATE of events'),
    ($$ INSERT INTO event_store.events (stream, type, data, event_id)
         SELECT stream, type, '{"forged":true}', event_id FROM event_store.events
         ON CONFLICT (event_id) DO UPDATE SET data = excluded.data $$,
     '42501: events are immutable', 'INSERT ... ON CONFLICT DO UPDATE of stored events'),
    ($$ WITH d AS (DELETE FROM event_store.events RETURNING 1) SELECT count(*) FROM d $$,
     '42501: events are immutable', 'DELETE in a writable CTE'),
    ($$ DELETE FROM regress_lc_all.events_v $$,
     '42501: events are immutable', 'DELETE through its view'),
    ($$ UPDATE regress_lc_all.events_v SET data = '{}' $$,
     '42501: events are immutable', 'UPDATE through its view'),
    ($$ SELECT regress_lc_all.delete_definer() $$,
     '42501: events are immutable', 'DELETE in its SECURITY DEFINER function'),
    ($$ COPY (DELETE FROM event_store.events RETURNING position) TO '/dev/null' $$,
     '42501: events are immutable', 'COPY (DELETE ... RETURNING) to a file'),
    ($$ DELETE FROM event_store.streams WHERE name = 'keep-1' $$,
     '42501: cannot delete from table "event_store.streams"', 'DELETE of the stream the events reference'),
    ($$ TRUNCATE event_store.streams CASCADE $$,
     '42501: cannot truncate table "event_store.streams"', 'TRUNCATE of streams CASCADE'),
    ($$ CREATE RULE forge AS ON INSERT TO event_store.events DO ALSO DELETE FROM event_store.events $$,
     '42501: must be owner of table events', 'CREATE RULE on events'),
    ($$ ALTER TABLE event_store.events DISABLE TRIGGER events_immutable $$,
     '42501: must be owner of table events', 'ALTER TABLE ... DISABLE TRIGGER events_immutable'),
    ($$ ALTER TABLE event_store.events DISABLE TRIGGER ALL $$,
     '42501: must be owner of table events', 'ALTER TABLE ... DISABLE TRIGGER ALL'),
    ($$ ALTER TABLE event_store.events ENABLE REPLICA TRIGGER events_immutable $$,
     '42501: must be owner of table events', 'ALTER TABLE ... ENABLE REPLICA TRIGGER events_immutable'),
    ($$ DROP TRIGGER events_immutable ON event_store.events $$,
     '42501: must be owner of relation events', 'DROP TRIGGER events_immutable'),
    ($$ ALTER TABLE event_store.events OWNER TO regress_lc_all $$,
     '42501: must be owner of table events', 'ALTER TABLE events OWNER TO itself'),
    ($$ ALTER TABLE event_store.events DROP CONSTRAINT events_stream_fkey $$,
     '42501: must be owner of table events', 'ALTER TABLE events DROP CONSTRAINT'),
    ($$ DROP TABLE event_store.events CASCADE $$,
     '42501: must be owner of table events', 'DROP TABLE events'),
    ($$ DROP SCHEMA event_store CASCADE $$,
     '42501: must be owner of schema event_store', 'DROP SCHEMA event_store'),
    ($$ DROP EXTENSION event_store CASCADE $$,
     '42501: must be owner of extension event_store', 'DROP EXTENSION event_store'),
    ($$ REASSIGN OWNED BY postgres TO regress_lc_all $$,
     '42501: permission denied to reassign objects', 'REASSIGN OWNED BY the owner'),
    ($$ DROP OWNED BY postgres $$,
     '42501: permission denied to drop objects', 'DROP OWNED BY the owner'),
    ($$ LOAD 'event_store' $$,
     '42501: access to library "event_store" is not allowed', 'LOAD of the library'),
    ($$ DELETE FROM event_store.erasures $$,
     '42501: cannot delete from table "event_store.erasures"', 'DELETE of the audit trail')
  ) AS v(q, want, label);
RESET ROLE;
SELECT is(pg_temp.digest(), (SELECT stored FROM before),
          'the attempts of the role with every table privilege changed nothing');

-- The lifecycle functions a writer may call remove no row.
SET ROLE regress_lc_writer;
SELECT is(event_store.es_delete_stream('soft-1'), 2::bigint, 'writer: soft deletes soft-1');
SELECT is(event_store.es_set_stream_metadata('keep-1', '{"truncate_before":3,"max_count":1}') ->> 'max_count',
          '1', 'writer: sets retention rules that hide every event of keep-1');
SELECT is_empty($$ SELECT * FROM event_store.es_read_stream('soft-1') $$,
                'writer: soft-1 reads as empty');
SELECT is_empty($$ SELECT * FROM event_store.es_read_stream('keep-1') $$,
                'writer: keep-1 reads as empty');
RESET ROLE;
SELECT results_eq(
    $$ SELECT pg_temp.digest(), (SELECT count(*) FROM event_store.events WHERE stream IN ('soft-1', 'keep-1')) $$,
    $$ SELECT (SELECT stored FROM before), 4::bigint $$,
    'soft delete and retention hide events but remove none: the four rows are stored');

-- No bypass to open -----------------------------------------------------------
-- As a login of the role with every table privilege: nothing it can set
-- opens the trigger.

SET SESSION AUTHORIZATION regress_lc_all;
SELECT results_eq(
    $$ SELECT session_user::text COLLATE "default", current_user::text COLLATE "default", current_setting('is_superuser') $$,
    $$ VALUES ('regress_lc_all', 'regress_lc_all', 'off') $$,
    'running as a session of regress_lc_all');
SELECT throws_ok(
    $$ SET ROLE postgres $$,
    '42501', 'permission denied to set role "postgres"',
    'all table privileges: cannot SET ROLE to the owner');
SELECT throws_ok(
    $$ SELECT set_config('role', 'postgres', false) $$,
    '42501', 'permission denied to set role "postgres"',
    'all table privileges: cannot set_config(''role'') to the owner');
SELECT throws_ok(
    $$ SET ROLE regress_lc_eraser $$,
    '42501', 'permission denied to set role "regress_lc_eraser"',
    'all table privileges: cannot SET ROLE to the role granted es_erase_stream');
SELECT throws_ok(
    $$ SET session_replication_role = replica $$,
    '42501', 'permission denied to set parameter "session_replication_role"',
    'all table privileges: cannot SET session_replication_role = replica');
SELECT throws_ok(
    $$ SELECT set_config('session_replication_role', 'replica', false) $$,
    '42501', 'permission denied to set parameter "session_replication_role"',
    'all table privileges: cannot set_config(''session_replication_role'')');
SELECT throws_ok(
    $$ ALTER ROLE regress_lc_all SET session_replication_role = replica $$,
    '42501', 'permission denied to set parameter "session_replication_role"',
    'all table privileges: cannot make session_replication_role its default');
SELECT throws_ok(
    $$ ALTER ROLE regress_lc_all SET event_store.allow_delete = on $$,
    '42602', 'invalid configuration parameter name "event_store.allow_delete"',
    'all table privileges: cannot give itself an invented event_store setting as default');

-- every setting of the extension, each value
CREATE TEMP TABLE guc_real AS
SELECT * FROM pg_temp.try_settings(
    ARRAY(SELECT name FROM pg_settings WHERE name LIKE 'event_store.%' ORDER BY name),
    ARRAY['on', 'off', 'true', 'false', '1', '0', '-1', '2147483647', 'replica', 'erase']);
-- invented names in the extension's prefix, which it reserves
CREATE TEMP TABLE guc_invented AS
SELECT * FROM pg_temp.try_settings(
    ARRAY['event_store.allow_delete', 'event_store.allow_erase', 'event_store.bypass',
          'event_store.immutable', 'event_store.immutability', 'event_store.erase',
          'event_store.disable_triggers', 'event_store.maintenance', 'event_store.superuser',
          'event_store.owner', 'event_store.mode', 'event_store.trigger'],
    ARRAY['on', 'off', 'true', '1', '0', 'replica', 'erase', 'bypass']);
-- and outside it: placeholders anybody may set
CREATE TEMP TABLE guc_placeholder AS
SELECT * FROM pg_temp.try_settings(
    ARRAY['es.allow_delete', 'eventstore.allow_delete', 'event_store_erase.enabled',
          'events.immutable', 'app.allow_delete'],
    ARRAY['on', 'off', 'true', '1', '0', 'replica']);

SELECT cmp_ok((SELECT count(DISTINCT name) FROM guc_real), '>=', 3::bigint,
              'the settings of the extension were all tried (three when this was written)');
SELECT is_empty(
    $$ SELECT name, value, set_result FROM guc_real WHERE set_result = 'ok' $$,
    'all table privileges: can change none of the extension''s settings');
SELECT is_empty(
    $$ SELECT name, value, set_result FROM guc_invented
        WHERE set_result NOT LIKE '42602: invalid configuration parameter name "event_store.%' $$,
    'all table privileges: every invented event_store.% setting is refused (the prefix is reserved)');
SELECT results_eq(
    $$ SELECT count(*), count(*) FILTER (WHERE set_result = 'ok') FROM guc_placeholder $$,
    $$ VALUES (30::bigint, 30::bigint) $$,
    'all table privileges: sets 30 placeholders outside the prefix');
SELECT is_empty(
    $$ SELECT name, value, delete_result, update_result, truncate_result
         FROM (SELECT * FROM guc_real UNION ALL SELECT * FROM guc_invented
               UNION ALL SELECT * FROM guc_placeholder) a
        WHERE delete_result <> '42501: events are immutable'
           OR update_result <> '42501: events are immutable'
           OR truncate_result <> '42501: events are immutable' $$,
    'all table privileges: after each of those, DELETE, UPDATE and TRUNCATE of events are still refused');
SELECT is((SELECT count(*) FROM guc_invented) + (SELECT count(*) FROM guc_placeholder), 126::bigint,
          'that is 126 attempts, besides 10 values of each setting of the extension');

-- and after all of that, with every placeholder still set
SELECT is(current_setting('es.allow_delete'), 'replica', 'the last placeholder values are still set');
SELECT throws_ok(
    $$ DELETE FROM event_store.events WHERE stream = 'keep-1' $$,
    '42501', 'events are immutable',
    'all table privileges: DELETE of events is still refused');
SELECT throws_ok(
    $$ UPDATE event_store.events SET data = '{}' WHERE stream = 'keep-1' $$,
    '42501', 'events are immutable',
    'all table privileges: UPDATE of events is still refused');
SELECT throws_ok(
    $$ TRUNCATE event_store.events $$,
    '42501', 'events are immutable',
    'all table privileges: TRUNCATE of events is still refused');
SELECT throws_ok(
    $$ SELECT event_store.es_erase_stream('keep-1') $$,
    '42501', 'permission denied for function es_erase_stream',
    'all table privileges: es_erase_stream is still refused');
RESET SESSION AUTHORIZATION;
SELECT is(session_user::text, 'postgres', 'back to the superuser''s session');

-- Even the superuser, whatever it sets, cannot DELETE while the trigger is on
-- (the owner can disable it: immutability does not guard against the owner).
CREATE TEMP TABLE guc_superuser AS
SELECT * FROM pg_temp.try_settings(
    ARRAY(SELECT name FROM pg_settings WHERE name LIKE 'event_store.%' ORDER BY name)
      || ARRAY['session_replication_role'],
    ARRAY['replica', 'local', 'origin', '1', '2147483647', 'on']);
SELECT is_empty(
    $$ SELECT name, value, delete_result, update_result, truncate_result FROM guc_superuser
        WHERE delete_result <> '42501: events are immutable'
           OR update_result <> '42501: events are immutable'
           OR truncate_result <> '42501: events are immutable' $$,
    'the superuser: after each value of each event_store.% setting and of session_replication_role, DELETE, UPDATE and TRUNCATE are refused');
SET LOCAL session_replication_role = replica;
SELECT throws_ok(
    $$ DELETE FROM event_store.events WHERE stream = 'keep-1' $$,
    '42501', 'events are immutable',
    'the superuser in session_replication_role = replica: DELETE of events is refused');
RESET session_replication_role;
RESET event_store.max_event_size;
SELECT is(pg_temp.digest(), (SELECT stored FROM before), 'nothing was changed by any of it');

-- The role granted EXECUTE erases ------------------------------------------------

SET SESSION AUTHORIZATION regress_lc_eraser;
SELECT is(event_store.es_erase_stream('gone-1', 'erasure request 1'), 2::bigint,
          'eraser: es_erase_stream removes the two events of gone-1');
SELECT throws_ok(
    $$ DELETE FROM event_store.events WHERE stream = 'keep-1' $$,
    '42501', 'permission denied for table events',
    'eraser: still cannot DELETE events');
SELECT throws_ok(
    $$ UPDATE event_store.events SET data = '{}' $$,
    '42501', 'permission denied for table events',
    'eraser: still cannot UPDATE events');
SELECT throws_ok(
    $$ DELETE FROM event_store.erasures $$,
    '42501', 'permission denied for table erasures',
    'eraser: cannot DELETE the audit trail');
SELECT throws_ok(
    $$ SELECT event_store.es_erase_stream('gone-1') $$,
    'V0004', 'stream "gone-1" was erased',
    'eraser: erasing gone-1 again is refused');
RESET SESSION AUTHORIZATION;

SET ROLE regress_lc_eraser_member;
SELECT is(event_store.es_erase_stream('gone-2'), 2::bigint,
          'member of the eraser: erases gone-2 through the inherited grant');
SELECT throws_ok(
    $$ DELETE FROM event_store.events WHERE stream = 'keep-1' $$,
    '42501', 'permission denied for table events',
    'member of the eraser: still cannot DELETE events');
RESET ROLE;

-- The role with every table privilege, granted EXECUTE now: erases, and in the
-- same transaction still cannot DELETE.
GRANT EXECUTE ON FUNCTION event_store.es_erase_stream(text, text) TO regress_lc_all;
SET ROLE regress_lc_all;
SELECT is(event_store.es_erase_stream('gone-3', 'erasure request 3'), 2::bigint,
          'all table privileges, granted EXECUTE: erases gone-3');
SELECT throws_ok(
    $$ DELETE FROM event_store.events WHERE stream = 'keep-1' $$,
    '42501', 'events are immutable',
    'all table privileges, granted EXECUTE: DELETE of events is still refused, after an erasure');
SELECT throws_ok(
    $$ UPDATE event_store.erasures SET reason = 'forged' $$,
    '42501', 'cannot update table "event_store.erasures"',
    'all table privileges: cannot UPDATE the audit trail');
SELECT throws_ok(
    $$ TRUNCATE event_store.erasures $$,
    '42501', 'cannot truncate table "event_store.erasures"',
    'all table privileges: cannot TRUNCATE the audit trail');
RESET ROLE;
SELECT throws_ok(
    $$ DELETE FROM event_store.erasures $$,
    '42501', 'cannot delete from table "event_store.erasures"',
    'the superuser cannot DELETE the audit trail');

SELECT results_eq(
    $$ SELECT stream COLLATE "default", erased_by::text COLLATE "default", session_user_name::text COLLATE "default", events_erased, last_version, reason,
              erased_at = now()
         FROM event_store.erasures ORDER BY stream $$,
    $$ VALUES ('gone-1', 'regress_lc_eraser', 'regress_lc_eraser', 2::bigint, 2::bigint,
               'erasure request 1', true),
              ('gone-2', 'regress_lc_eraser_member', 'postgres', 2, 2, NULL, true),
              ('gone-3', 'regress_lc_all', 'postgres', 2, 2, 'erasure request 3', true) $$,
    'the audit rows: the erasing role, the session''s login role, how many events, the reason');
SELECT results_eq(
    $$ SELECT stream COLLATE "default", count(*) FROM event_store.events GROUP BY stream ORDER BY stream $$,
    $$ VALUES ('keep-1', 2::bigint), ('snap-1', 2), ('snap-2', 2), ('soft-1', 2) $$,
    'only the erased streams lost their events');
SELECT results_eq(
    $$ SELECT name COLLATE "default", version, erased_at IS NOT NULL FROM event_store.streams
        WHERE name LIKE 'gone-%' ORDER BY name $$,
    $$ VALUES ('gone-1', 2::bigint, true), ('gone-2', 2, true), ('gone-3', 2, true) $$,
    'the erased streams stay as tombstones');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_append('gone-1', NULL, 'Again', '{}') $$,
    'V0004', 'stream "gone-1" was erased',
    'the name of an erased stream cannot be used again');

-- Snapshots: the grants ------------------------------------------------------------

SET ROLE regress_lc_snap_noread;
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_load_snapshot('snap-1') $$,
    '42501', 'permission denied for table snapshots',
    'no SELECT on snapshots: es_load_snapshot is denied');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_load_aggregate('snap-1') $$,
    '42501', 'permission denied for table snapshots',
    'no SELECT on snapshots: es_load_aggregate is denied');
SELECT results_eq(
    $$ SELECT version FROM event_store.es_read_stream('snap-1') $$,
    ARRAY[1, 2]::bigint[],
    'no SELECT on snapshots: es_read_stream still reads the stream');
RESET ROLE;

SET ROLE regress_lc_snap_only;
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_load_snapshot('snap-1') $$,
    '42501', 'permission denied for table streams',
    'SELECT on snapshots only: es_load_snapshot also needs SELECT on streams');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_load_aggregate('snap-1') $$,
    '42501', 'permission denied for table events',
    'SELECT on snapshots only: es_load_aggregate also needs SELECT on events');
RESET ROLE;

SET ROLE regress_lc_snap_reader;
SELECT results_eq(
    $$ SELECT version, state FROM event_store.es_load_snapshot('snap-1') $$,
    $$ VALUES (1::bigint, '{"seen":1}'::jsonb) $$,
    'snapshot reader: es_load_snapshot');
SELECT results_eq(
    $$ SELECT version, type::text, data FROM event_store.es_load_aggregate('snap-1') $$,
    $$ VALUES (1::bigint, '$snapshot', '{"seen":1}'::jsonb), (2, 'B', '{"n":2}') $$,
    'snapshot reader: es_load_aggregate, the snapshot and the event after it');
SELECT throws_ok(
    $$ SELECT event_store.es_save_snapshot('snap-1', 2, '{"seen":2}') $$,
    '42501', 'permission denied for table snapshots',
    'snapshot reader: es_save_snapshot is denied');
RESET ROLE;

SET ROLE regress_lc_snap_writer;
SELECT is(event_store.es_save_snapshot('snap-1', 2, '{"seen":2}'), true,
          'snapshot writer: es_save_snapshot replaces the snapshot at version 1');
SELECT is(event_store.es_save_snapshot('snap-1', 1, '{"seen":1}'), false,
          'snapshot writer: an older snapshot is not kept');
SELECT is(event_store.es_save_snapshot('snap-2', 2, '{"seen":2}', 3), true,
          'snapshot writer: es_save_snapshot of a stream without one');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_load_aggregate('snap-1') $$,
    '42501', 'permission denied for table events',
    'snapshot writer: es_load_aggregate needs SELECT on events');
RESET ROLE;
SELECT results_eq(
    $$ SELECT stream COLLATE "default", version, state, schema_version FROM event_store.snapshots ORDER BY stream $$,
    $$ VALUES ('snap-1', 2::bigint, '{"seen":2}'::jsonb, 1), ('snap-2', 2, '{"seen":2}', 3) $$,
    'the snapshots the writer saved are stored');

SET ROLE regress_lc_snap_noupdate;
SELECT throws_ok(
    $$ SELECT event_store.es_save_snapshot('snap-1', 2, '{"seen":2}') $$,
    '42501', 'permission denied for table snapshots',
    'no UPDATE on snapshots: es_save_snapshot is denied');
SELECT throws_ok(
    $$ SELECT event_store.es_save_snapshot('keep-1', 2, '{"seen":2}') $$,
    '42501', 'permission denied for table snapshots',
    'no UPDATE on snapshots: es_save_snapshot is denied for a stream without a snapshot too');
RESET ROLE;
SET ROLE regress_lc_snap_noselect;
SELECT throws_ok(
    $$ SELECT event_store.es_save_snapshot('snap-1', 2, '{"seen":2}') $$,
    '42501', 'permission denied for table snapshots',
    'no SELECT on snapshots: es_save_snapshot is denied');
RESET ROLE;
SET ROLE regress_lc_snap_nostreams;
SELECT throws_ok(
    $$ SELECT event_store.es_save_snapshot('snap-1', 2, '{"seen":2}') $$,
    '42501', 'permission denied for table streams',
    'no SELECT on streams: es_save_snapshot is denied');
RESET ROLE;
SELECT results_eq(
    $$ SELECT stream COLLATE "default", version, state FROM event_store.snapshots ORDER BY stream $$,
    $$ VALUES ('snap-1', 2::bigint, '{"seen":2}'::jsonb), ('snap-2', 2, '{"seen":2}') $$,
    'the denied saves stored nothing');

-- Upcasters: the grants, and only functions of one's own ---------------------

CREATE FUNCTION regress_lc_admin.up(data jsonb) RETURNS jsonb LANGUAGE sql
    AS $$ SELECT data || '{"by":"admin"}' $$;
SET ROLE regress_lc_up_none;
CREATE FUNCTION regress_lc_up_none.up(data jsonb) RETURNS jsonb LANGUAGE sql
    AS $$ SELECT data || '{"by":"up_none"}' $$;
SELECT throws_ok(
    $$ SELECT event_store.es_register_upcaster('A', 1, 'regress_lc_up_none.up(jsonb)') $$,
    '42501', 'permission denied for table upcasters',
    'no privilege on upcasters: registering its own function is denied');
RESET ROLE;
SET ROLE regress_lc_up_insert;
CREATE FUNCTION regress_lc_up_insert.up(data jsonb) RETURNS jsonb LANGUAGE sql
    AS $$ SELECT data || '{"by":"up_insert"}' $$;
SELECT throws_ok(
    $$ SELECT event_store.es_register_upcaster('A', 1, 'regress_lc_up_insert.up(jsonb)') $$,
    '42501', 'permission denied for table upcasters',
    'INSERT on upcasters without SELECT: registering is denied (the checks read the registry)');
RESET ROLE;
SET ROLE regress_lc_registrar;
CREATE FUNCTION regress_lc_registrar.up(data jsonb) RETURNS jsonb LANGUAGE sql
    AS $$ SELECT data || '{"by":"registrar"}' $$;
SELECT throws_ok(
    $$ SELECT event_store.es_register_upcaster('A', 1, 'regress_lc_admin.up(jsonb)') $$,
    '42501', 'must be a member of the owner of function regress_lc_admin.up(jsonb) to register it',
    'registrar: cannot register a function of the superuser');
SELECT throws_ok(
    $$ SELECT event_store.es_register_upcaster('A', 1, 'regress_lc_up_none.up(jsonb)') $$,
    '42501', 'must be a member of the owner of function regress_lc_up_none.up(jsonb) to register it',
    'registrar: cannot register a function of another role');
SELECT lives_ok(
    $$ SELECT event_store.es_register_upcaster('A', 1, 'regress_lc_registrar.up(jsonb)') $$,
    'registrar: registers a function it owns');
SELECT throws_ok(
    $$ SELECT event_store.es_unregister_upcaster('A', 1) $$,
    '42501', 'permission denied for table upcasters',
    'registrar: unregistering needs DELETE on upcasters');
RESET ROLE;
GRANT regress_lc_up_none TO regress_lc_registrar;
SET ROLE regress_lc_registrar;
SELECT lives_ok(
    $$ SELECT event_store.es_register_upcaster('A', 2, 'regress_lc_up_none.up(jsonb)') $$,
    'registrar, made a member of its owner: registers the other role''s function');
RESET ROLE;
SELECT results_eq(
    $$ SELECT type COLLATE "default", from_schema_version, upcaster::text FROM event_store.upcasters
        ORDER BY from_schema_version $$,
    $$ VALUES ('A', 1, 'regress_lc_registrar.up(pg_catalog.jsonb)'), ('A', 2, 'regress_lc_up_none.up(pg_catalog.jsonb)') $$,
    'the registry holds the two registered upcasters, by their qualified signatures');
SET ROLE regress_lc_snap_reader;
SELECT results_eq(
    $$ SELECT version, data, schema_version FROM event_store.es_read_stream('snap-2') WHERE type = 'A' $$,
    $$ VALUES (1::bigint, '{"n":1,"by":"up_none"}'::jsonb, 3) $$,
    'a reader reads events of type A upcast through both');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
