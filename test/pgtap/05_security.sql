-- pgTAP: the least-privilege model of README "Privileges", and hijack attempts.
--
-- 1. The roles reader, consumer and writer get exactly the GRANTs the README
--    gives, and are shown to be able to do what it says and nothing more: a
--    reader reads with every read function and cannot append or save a
--    checkpoint; a consumer also keeps checkpoints; a writer appends but cannot
--    change or remove what is stored, switch the triggers off, leave them out
--    with session_replication_role, or give positions.  A role without grants
--    gets 42501 from everything that touches a table.
--    (02_privileges.sql covers finer-grained grant combinations, RLS, SECURITY
--    DEFINER callers and the owner; this file sticks to the documented recipe.)
-- 2. The functions do not depend on the caller's search_path.  An unprivileged
--    role allowed to CREATE in schema public (PostgreSQL 15 no longer allows it
--    by default), and owning a schema of its own, plants functions, operators,
--    types, tables and views named like the ones the extension's code could
--    reach by name: its own function names (also with more specific argument
--    types), now(), format(), nextval(), =, <, || ... and events, streams,
--    checkpoints.  Every planted function records that it ran (a row in a log
--    table, and a sequence, which no rollback undoes) and returns a wrong
--    answer; the planted tables record any write.  Then the writer and the
--    consumer call every function of the extension (schema-qualified, as the
--    README recommends) with that schema and public on their search_path, in
--    several orders, pg_catalog included after them; the results must be those
--    of the same calls made before anything was planted, no planted object may
--    have run, and the planted tables stay empty.
--    Unqualified calls are resolved by PostgreSQL against the caller's
--    search_path before the extension is involved, so a planted es_* function
--    with a better-matching signature wins there; the self-test of the traps
--    shows it, and is the reason the README says to qualify or to keep CREATE
--    off every schema on the search_path.
-- 3. The catalog: every SECURITY DEFINER function of the extension (there is
--    none today) pins search_path with pg_temp last, and every function not
--    written in C pins it, to schemas nobody else can create in.
--
-- Events read through the feed are committed by a second session (dblink)
-- before this transaction appends anything; positions are relative to the
-- head at the start (pg_temp.h0()).  Roles are created inside the test
-- transaction and vanish with it.
BEGIN;
SELECT plan(146);

-- The helpers of the SQL suites (test/helpers.sql): err(), stored(), remote().
\set helpers pg_temp
\ir ../helpers.sql
SET LOCAL client_min_messages = warning;

-- Helpers -----------------------------------------------------------------------

CREATE EXTENSION dblink;

-- The helpers below run statements under hostile search_paths, so every name
-- they use is schema-qualified, and they use no operator.

-- Run q as role who (and with search_path path, unless NULL); its one value
-- as text, or "ERROR sqlstate: message / detail".  A failed statement rolls
-- back with its subtransaction, role and search_path included.
CREATE FUNCTION pg_temp.value_as(who text, path text, q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r text;
  st text;
  msg text;
  det text;
  saved text := pg_catalog.current_setting('search_path');
BEGIN
  BEGIN
    EXECUTE pg_catalog.concat('SET LOCAL ROLE ', who);
    IF path IS NOT NULL THEN
      PERFORM pg_catalog.set_config('search_path', path, true);
    END IF;
    EXECUTE q INTO r;
    PERFORM pg_catalog.set_config('search_path', saved, true);
    RESET ROLE;
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
    r := pg_catalog.concat('ERROR ', st, ': ', msg, ' / ', det);
  END;
  RETURN r;
END $$;
-- Run a statement of any kind as role who: "ok", or "sqlstate: message".
CREATE FUNCTION pg_temp.try_as(who text, q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  st text;
  msg text;
BEGIN
  BEGIN
    EXECUTE pg_catalog.concat('SET LOCAL ROLE ', who);
    EXECUTE q;
    RESET ROLE;
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    RETURN pg_catalog.concat(st, ': ', msg);
  END;
  RETURN 'ok';
END $$;

-- Positions: h0 is the head before the committed events below, the first of
-- which is h0 + 1; h1 the head after them.
CREATE TEMP TABLE marks (h0 bigint, h1 bigint);
INSERT INTO marks VALUES (event_store.es_head_position(), NULL);
CREATE FUNCTION pg_temp.h0() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT m.h0 FROM pg_temp.marks m $$;
CREATE FUNCTION pg_temp.h1() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT m.h1 FROM pg_temp.marks m $$;
-- A fixed event id per name.
CREATE FUNCTION pg_temp.id(t text) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$ SELECT pg_catalog.md5(t)::uuid $$;
-- The first position of a stream.
CREATE FUNCTION pg_temp.first(s text) RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT pg_catalog.min(e.position) FROM event_store.events e WHERE e.stream OPERATOR(pg_catalog.=) s
$$;
GRANT SELECT ON marks TO PUBLIC;

-- Four committed events: setup-1 (SetupA, SetupB), setup-2 (SetupA), other-1 (Other).
DO $$
BEGIN
  PERFORM * FROM dblink(pg_temp.remote(), $r$
    SELECT 1 FROM event_store.es_append('setup-1', 0,
      '[{"type":"SetupA","data":{"n":1}},{"type":"SetupB","data":{"n":2}}]') $r$) AS t(x int);
  PERFORM * FROM dblink(pg_temp.remote(), $r$
    SELECT 1 FROM event_store.es_append('setup-2', 0, 'SetupA', '{"n":3}') $r$) AS t(x int);
  PERFORM * FROM dblink(pg_temp.remote(), $r$
    SELECT 1 FROM event_store.es_append('other-1', 0, 'Other', '{"n":4}') $r$) AS t(x int);
END $$;
UPDATE marks SET h1 = event_store.es_head_position();
SELECT is(pg_temp.h1() - pg_temp.h0(), 4::bigint, 'a second session committed 4 events');

-- The roles, with exactly the GRANTs of README "Privileges" ---------------------

CREATE ROLE regress_es_sec_nobody;
CREATE ROLE regress_es_sec_reader;
CREATE ROLE regress_es_sec_consumer;
CREATE ROLE regress_es_sec_writer;
CREATE ROLE regress_es_sec_attacker;   -- no grant on the extension's objects
-- reader
GRANT SELECT ON event_store.events, event_store.streams TO regress_es_sec_reader;
-- consumer: reader's grants + ...
GRANT SELECT ON event_store.events, event_store.streams TO regress_es_sec_consumer;
GRANT SELECT, INSERT, UPDATE ON event_store.checkpoints TO regress_es_sec_consumer;
GRANT SELECT ON event_store.es_consumers TO regress_es_sec_consumer;
-- writer: reader's grants + ...
GRANT SELECT ON event_store.events, event_store.streams TO regress_es_sec_writer;
GRANT INSERT ON event_store.events TO regress_es_sec_writer;

-- The catalog --------------------------------------------------------------------

-- Every function that belongs to the extension (pg_depend), with the schemas
-- its pinned search_path lists, if it pins one.
CREATE TEMP VIEW ext_functions AS
SELECT p.oid::regprocedure::text AS sig, l.lanname::text AS lang, p.prosecdef,
       (SELECT array_agg(btrim(s, ' "') ORDER BY o)
          FROM unnest(p.proconfig) c,
               unnest(string_to_array(substr(c, length('search_path=') + 1), ','))
                 WITH ORDINALITY AS u(s, o)
         WHERE c LIKE 'search_path=%') AS path
  FROM pg_proc p
  JOIN pg_language l ON l.oid = p.prolang
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
                  AND d.refclassid = 'pg_extension'::regclass
  JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'event_store';

SELECT is(
    (SELECT count(*) FROM ext_functions),
    (SELECT count(*) FROM pg_proc WHERE pronamespace = 'event_store'::regnamespace),
    'the checks below see every function of schema event_store as a member of the extension');
SELECT is_empty(
    $$ SELECT sig FROM ext_functions WHERE prosecdef AND path IS NULL $$,
    'every SECURITY DEFINER function of the extension pins search_path');
SELECT is_empty(
    $$ SELECT sig, path FROM ext_functions
        WHERE prosecdef AND path[cardinality(path)] IS DISTINCT FROM 'pg_temp' $$,
    'every SECURITY DEFINER function of the extension lists pg_temp last (else it is searched first)');
SELECT is_empty(
    $$ SELECT sig, lang FROM ext_functions WHERE lang NOT IN ('c', 'internal') AND path IS NULL $$,
    'every PL/pgSQL or SQL function of the extension pins search_path');
SELECT is_empty(
    $$ SELECT sig, path FROM ext_functions
        WHERE path IS NOT NULL
          AND (path[1] <> 'pg_catalog'
               OR EXISTS (SELECT FROM unnest(path) WITH ORDINALITY AS u(s, o)
                           WHERE s NOT IN ('pg_catalog', 'pg_temp', 'event_store')
                              OR (s = 'pg_temp' AND o < cardinality(path)))) $$,
    'a pinned search_path starts with pg_catalog, names only pg_catalog, event_store and pg_temp, pg_temp last');
SELECT is_empty(
    $$ SELECT a.grantee::regrole::text
         FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
        WHERE n.nspname = 'event_store' AND a.privilege_type = 'CREATE'
          AND a.grantee <> n.nspowner $$,
    'no role but the owner may create objects in schema event_store');

-- A role without grants: 42501 from everything that touches a table ---------------

SELECT is(pg_temp.try_as('regress_es_sec_nobody', q), want, 'nobody: ' || label)
  FROM (VALUES
    ('es_append (JSON form)', $$ SELECT event_store.es_append('sec-n', NULL, '[{"type":"X","data":{}}]') $$,
     '42501: permission denied for table events'),
    ('es_append (single-event form)', $$ SELECT event_store.es_append('sec-n', NULL, 'X', '{}') $$,
     '42501: permission denied for table events'),
    ('plain INSERT', $$ INSERT INTO event_store.events (stream, type, data) VALUES ('sec-n', 'X', '{}') $$,
     '42501: permission denied for table events'),
    ('es_read_stream', $$ SELECT event_store.es_read_stream('setup-1') $$,
     '42501: permission denied for table events'),
    ('es_stream_version', $$ SELECT event_store.es_stream_version('setup-1') $$,
     '42501: permission denied for table streams'),
    ('es_head_position', $$ SELECT event_store.es_head_position() $$,
     '42501: permission denied for table events'),
    ('es_read_all', $$ SELECT event_store.es_read_all() $$,
     '42501: permission denied for table events'),
    ('es_read_category', $$ SELECT event_store.es_read_category('setup') $$,
     '42501: permission denied for table events'),
    ('es_checkpoint_save', $$ SELECT event_store.es_checkpoint_save('n', 1) $$,
     '42501: permission denied for table checkpoints'),
    ('es_checkpoint_get', $$ SELECT event_store.es_checkpoint_get('n') $$,
     '42501: permission denied for table checkpoints'),
    ('es_checkpoint_reset', $$ SELECT event_store.es_checkpoint_reset('n') $$,
     '42501: permission denied for table checkpoints'),
    ('es_consumers', $$ SELECT * FROM event_store.es_consumers $$,
     '42501: permission denied for view es_consumers'),
    ('SELECT streams', $$ SELECT * FROM event_store.streams $$,
     '42501: permission denied for table streams'),
    ('INSERT INTO checkpoints', $$ INSERT INTO event_store.checkpoints VALUES ('n', 1) $$,
     '42501: permission denied for table checkpoints'),
    ('nextval of streams_id_seq', $$ SELECT nextval('event_store.streams_id_seq') $$,
     '42501: permission denied for sequence streams_id_seq'),
    ('_es_install (it resets the position register)', $$ SELECT event_store._es_install() $$,
     '42501: permission denied for function _es_install')
  ) AS v(label, q, want);

-- A reader ------------------------------------------------------------------------

SELECT is(pg_temp.value_as('regress_es_sec_reader', NULL, q), want, 'reader: ' || label)
  FROM (VALUES
    ('es_read_stream', $$ SELECT string_agg(format('%s:%s:%s', version, type, data), ' ')
                            FROM event_store.es_read_stream('setup-1') $$,
     '1:SetupA:{"n": 1} 2:SetupB:{"n": 2}'),
    ('es_read_stream backwards', $$ SELECT string_agg(version::text, ' ')
                                      FROM event_store.es_read_stream('setup-1', NULL, NULL, true) $$,
     '2 1'),
    ('es_stream_version', $$ SELECT event_store.es_stream_version('setup-1') $$, '2'),
    ('es_head_position', $$ SELECT event_store.es_head_position() - pg_temp.h0() $$, '4'),
    ('es_read_all', $$ SELECT string_agg(format('%s:%s:%s', position - pg_temp.h0(), stream, version), ' ')
                         FROM event_store.es_read_all(pg_temp.h0()) $$,
     '1:setup-1:1 2:setup-1:2 3:setup-2:1 4:other-1:1'),
    ('es_read_all of one type', $$ SELECT string_agg(format('%s:%s', position - pg_temp.h0(), type), ' ')
                                     FROM event_store.es_read_all(pg_temp.h0(), 10, ARRAY['SetupA']) $$,
     '1:SetupA 3:SetupA'),
    ('es_read_category', $$ SELECT string_agg(format('%s:%s', position - pg_temp.h0(), stream), ' ')
                              FROM event_store.es_read_category('setup', pg_temp.h0()) $$,
     '1:setup-1 2:setup-1 3:setup-2'),
    ('es_read_category, both members of a group of 2',
     $$ SELECT format('%s | %s',
          (SELECT string_agg(stream || '/' || version, ' ')
             FROM event_store.es_read_category('setup', pg_temp.h0(), 10,
                                               event_store.es_consumer_member('setup-1', 2), 2)),
          (SELECT string_agg(stream || '/' || version, ' ')
             FROM event_store.es_read_category('setup', pg_temp.h0(), 10,
                                               1 - event_store.es_consumer_member('setup-1', 2), 2))) $$,
     'setup-1/1 setup-1/2 | setup-2/1'),
    ('SELECT from events and streams', $$ SELECT format('%s %s',
                                                (SELECT count(*) FROM event_store.events),
                                                (SELECT count(*) FROM event_store.streams)) $$,
     '4 3')
  ) AS v(label, q, want);

SELECT is(pg_temp.try_as('regress_es_sec_reader', q), want, 'reader: ' || label)
  FROM (VALUES
    ('es_append (JSON form) is denied',
     $$ SELECT event_store.es_append('sec-r', NULL, '[{"type":"X","data":{}}]') $$,
     '42501: permission denied for table events'),
    ('es_append (single-event form) is denied',
     $$ SELECT event_store.es_append('setup-1', 2, 'X', '{}') $$,
     '42501: permission denied for table events'),
    ('plain INSERT is denied',
     $$ INSERT INTO event_store.events (stream, type, data) VALUES ('setup-1', 'X', '{}') $$,
     '42501: permission denied for table events'),
    ('es_checkpoint_save is denied', $$ SELECT event_store.es_checkpoint_save('r', 1) $$,
     '42501: permission denied for table checkpoints'),
    ('es_checkpoint_reset is denied', $$ SELECT event_store.es_checkpoint_reset('r', 0) $$,
     '42501: permission denied for table checkpoints'),
    ('es_checkpoint_get is denied', $$ SELECT event_store.es_checkpoint_get('r') $$,
     '42501: permission denied for table checkpoints'),
    ('es_consumers is denied', $$ SELECT * FROM event_store.es_consumers $$,
     '42501: permission denied for view es_consumers'),
    ('cannot lock stream rows (that would hold writers up)',
     $$ SELECT * FROM event_store.streams FOR KEY SHARE $$,
     '42501: permission denied for table streams'),
    ('cannot lock the events table against writers',
     $$ LOCK TABLE event_store.events IN SHARE MODE $$,
     '42501: permission denied for table events')
  ) AS v(label, q, want);

-- A consumer ----------------------------------------------------------------------

SELECT is(pg_temp.value_as('regress_es_sec_consumer', NULL, q), want, 'consumer: ' || label)
  FROM (VALUES
    ('es_read_all', $$ SELECT string_agg((position - pg_temp.h0())::text, ' ')
                         FROM event_store.es_read_all(pg_temp.h0(), 3) $$, '1 2 3'),
    ('es_checkpoint_get of a new consumer', $$ SELECT event_store.es_checkpoint_get('sec-proj') $$, '0'),
    ('es_checkpoint_save', $$ SELECT event_store.es_checkpoint_save('sec-proj', pg_temp.h0() + 3, 0) - pg_temp.h0() $$,
     '3'),
    ('es_checkpoint_reset', $$ SELECT event_store.es_checkpoint_reset('sec-proj', pg_temp.h0() + 1) - pg_temp.h0() $$,
     '1'),
    ('es_checkpoint_get', $$ SELECT event_store.es_checkpoint_get('sec-proj') - pg_temp.h0() $$, '1'),
    ('es_consumers', $$ SELECT format('%s %s %s %s %s', consumer, position - pg_temp.h0(),
                                      head - pg_temp.h0(), lag_positions, lag_seconds > 0)
                          FROM event_store.es_consumers $$,
     'sec-proj 1 4 3 t')
  ) AS v(label, q, want);

SELECT is(pg_temp.try_as('regress_es_sec_consumer', q), want, 'consumer: ' || label)
  FROM (VALUES
    ('es_append is denied', $$ SELECT event_store.es_append('sec-c', NULL, 'X', '{}') $$,
     '42501: permission denied for table events'),
    ('plain INSERT is denied',
     $$ INSERT INTO event_store.events (stream, type, data) VALUES ('sec-c', 'X', '{}') $$,
     '42501: permission denied for table events'),
    ('DELETE FROM checkpoints is denied', $$ DELETE FROM event_store.checkpoints $$,
     '42501: permission denied for table checkpoints'),
    ('TRUNCATE checkpoints is denied', $$ TRUNCATE event_store.checkpoints $$,
     '42501: permission denied for table checkpoints')
  ) AS v(label, q, want);

-- A writer ------------------------------------------------------------------------

SELECT is(pg_temp.value_as('regress_es_sec_writer', NULL, q), want, 'writer: ' || label)
  FROM (VALUES
    ('es_append (JSON form)',
     $$ SELECT format('%s %s %s', stream, first_version, last_version)
          FROM event_store.es_append('sec-w', 0, '[{"type":"A","data":{}},{"type":"B","data":{}}]') $$,
     'sec-w 1 2'),
    ('es_append (single-event form)',
     $$ SELECT format('%s %s %s', stream, first_version, last_version)
          FROM event_store.es_append('sec-w', 2, 'C', '{}') $$,
     'sec-w 3 3'),
    ('plain INSERT',
     $$ WITH i AS (INSERT INTO event_store.events (stream, type, data) VALUES ('sec-w', 'D', '{}')
                   RETURNING version, position)
        SELECT format('%s %s', version, position > pg_temp.h1()) FROM i $$,
     '4 t'),
    ('the stream as stored',
     $$ SELECT format('%s | %s', (SELECT string_agg(format('%s:%s', version, type), ' ' ORDER BY position)
                                    FROM event_store.events WHERE stream = 'sec-w'),
                      (SELECT version FROM event_store.streams WHERE name = 'sec-w')) $$,
     '1:A 2:B 3:C 4:D | 4'),
    ('may not give a position',
     $$ INSERT INTO event_store.events (position, stream, type, data)
        VALUES (pg_temp.h1() + 1000000, 'sec-w', 'X', '{}') RETURNING 'stored' $$,
     'ERROR 42501: only the owner of "event_store.events" may give positions / ')
  ) AS v(label, q, want);

SELECT is(pg_temp.try_as('regress_es_sec_writer', q), want, 'writer: ' || label)
  FROM (VALUES
    ('UPDATE events is denied', $$ UPDATE event_store.events SET data = '{}' $$,
     '42501: permission denied for table events'),
    ('DELETE FROM events is denied', $$ DELETE FROM event_store.events $$,
     '42501: permission denied for table events'),
    ('TRUNCATE events is denied', $$ TRUNCATE event_store.events $$,
     '42501: permission denied for table events'),
    ('INSERT ... ON CONFLICT DO UPDATE is denied',
     $$ INSERT INTO event_store.events (stream, type, data) VALUES ('sec-w', 'X', '{}')
        ON CONFLICT (stream, version) DO UPDATE SET data = '{}' $$,
     '42501: permission denied for table events'),
    ('SELECT ... FOR UPDATE of events is denied', $$ SELECT * FROM event_store.events FOR UPDATE $$,
     '42501: permission denied for table events'),
    ('UPDATE streams is denied', $$ UPDATE event_store.streams SET version = 0 $$,
     '42501: permission denied for table streams'),
    ('DELETE FROM streams is denied', $$ DELETE FROM event_store.streams $$,
     '42501: permission denied for table streams'),
    ('TRUNCATE streams is denied', $$ TRUNCATE event_store.streams CASCADE $$,
     '42501: permission denied for table streams'),
    ('INSERT INTO streams is denied',
     $$ INSERT INTO event_store.streams (name, category, version) VALUES ('fake-1', 'fake', 9) $$,
     '42501: permission denied for table streams'),
    ('cannot disable the immutability trigger',
     $$ ALTER TABLE event_store.events DISABLE TRIGGER events_immutable $$,
     '42501: must be owner of table events'),
    ('cannot disable the numbering trigger',
     $$ ALTER TABLE event_store.events DISABLE TRIGGER events_number $$,
     '42501: must be owner of table events'),
    ('cannot disable all triggers of events', $$ ALTER TABLE event_store.events DISABLE TRIGGER ALL $$,
     '42501: must be owner of table events'),
    ('cannot turn the immutability trigger into a replica-only one',
     $$ ALTER TABLE event_store.events ENABLE REPLICA TRIGGER events_immutable $$,
     '42501: must be owner of table events'),
    ('cannot disable the trigger of streams',
     $$ ALTER TABLE event_store.streams DISABLE TRIGGER streams_maintained $$,
     '42501: must be owner of table streams'),
    ('cannot drop a trigger', $$ DROP TRIGGER events_immutable ON event_store.events $$,
     '42501: must be owner of relation events'),
    ('cannot add a trigger', $$ CREATE TRIGGER x BEFORE INSERT ON event_store.events
                                FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger() $$,
     '42501: permission denied for table events'),
    ('cannot add a rule', $$ CREATE RULE x AS ON INSERT TO event_store.events DO INSTEAD NOTHING $$,
     '42501: must be owner of table events'),
    ('cannot enable row-level security (which would stop every function)',
     $$ ALTER TABLE event_store.events ENABLE ROW LEVEL SECURITY $$,
     '42501: must be owner of table events'),
    ('cannot set session_replication_role = replica',
     $$ SET LOCAL session_replication_role = replica $$,
     '42501: permission denied to set parameter "session_replication_role"'),
    ('cannot set session_replication_role with set_config',
     $$ SELECT set_config('session_replication_role', 'replica', true) $$,
     '42501: permission denied to set parameter "session_replication_role"'),
    ('cannot raise event_store.max_event_size', $$ SET LOCAL event_store.max_event_size = '256MB' $$,
     '42501: permission denied to set parameter "event_store.max_event_size"'),
    ('cannot lock the events table against other writers',
     $$ LOCK TABLE event_store.events IN EXCLUSIVE MODE $$,
     '42501: permission denied for table events'),
    ('cannot take stream ids', $$ SELECT nextval('event_store.streams_id_seq') $$,
     '42501: permission denied for sequence streams_id_seq'),
    ('cannot create objects in schema event_store',
     $$ CREATE FUNCTION event_store.es_x() RETURNS int LANGUAGE sql AS 'SELECT 1' $$,
     '42501: permission denied for schema event_store'),
    ('cannot reinitialise the position register', $$ SELECT event_store._es_install() $$,
     '42501: permission denied for function _es_install'),
    ('cannot fire the numbering trigger function from a table of its own',
     $$ CREATE TEMP TABLE t (LIKE event_store.events);
        CREATE TRIGGER t BEFORE INSERT ON t FOR EACH ROW
          EXECUTE FUNCTION event_store._es_events_before_insert() $$,
     '42501: permission denied for function event_store._es_events_before_insert'),
    ('cannot drop the extension', $$ DROP EXTENSION event_store $$,
     '42501: must be owner of extension event_store'),
    ('es_checkpoint_save is denied', $$ SELECT event_store.es_checkpoint_save('w', 1) $$,
     '42501: permission denied for table checkpoints')
  ) AS v(label, q, want);
SELECT ok(NOT has_parameter_privilege('regress_es_sec_writer', 'session_replication_role', 'SET'),
          'writer: has no SET privilege on session_replication_role (superuser-only unless granted)');
SELECT results_eq(
    $$ SELECT stream COLLATE "default", version, type COLLATE "default" FROM event_store.events
        WHERE position > pg_temp.h0() ORDER BY position $$,
    $$ VALUES ('setup-1', 1::bigint, 'SetupA'), ('setup-1', 2, 'SetupB'), ('setup-2', 1, 'SetupA'),
              ('other-1', 1, 'Other'), ('sec-w', 1, 'A'), ('sec-w', 2, 'B'), ('sec-w', 3, 'C'),
              ('sec-w', 4, 'D') $$,
    'only the writer''s appends were stored, after the committed events, and nothing was changed');

-- Predefined roles: pg_read_all_data makes a reader, pg_write_all_data a writer
-- (whose UPDATE and DELETE privileges the triggers still refuse).
CREATE ROLE regress_es_sec_all_reader IN ROLE pg_read_all_data;
CREATE ROLE regress_es_sec_all_writer IN ROLE pg_write_all_data;
SELECT is(pg_temp.value_as('regress_es_sec_all_reader', NULL,
            $$ SELECT string_agg(version::text, ' ') FROM event_store.es_read_stream('setup-1') $$),
          '1 2', 'pg_read_all_data: es_read_stream');
SELECT is(pg_temp.try_as('regress_es_sec_all_reader', $$ SELECT event_store.es_append('sec-ar', 0, 'X', '{}') $$),
          '42501: permission denied for table events', 'pg_read_all_data: es_append is denied');
SELECT is(pg_temp.value_as('regress_es_sec_all_writer', NULL,
            $$ SELECT last_version FROM event_store.es_append('sec-aw', 0, 'X', '{}') $$),
          '1', 'pg_write_all_data: es_append');
SELECT is(pg_temp.try_as('regress_es_sec_all_writer', $$ DELETE FROM event_store.events $$),
          '42501: events are immutable', 'pg_write_all_data: DELETE FROM events is refused by the trigger');

-- Hijack attempts -----------------------------------------------------------------
--
-- The battery: every function of the extension, called schema-qualified by
-- the writer (W) and the consumer (C), with '@' standing for a tag of the
-- run, so that each run has streams and consumers of its own.  Each entry
-- yields one text (or the error); the tag is replaced by '@' again in it.
-- Positions are shown relative to h0 or to the stream's first position.
CREATE TEMP TABLE battery (n int PRIMARY KEY, who text NOT NULL, q text NOT NULL);
INSERT INTO battery VALUES
-- appends, both forms, an idempotent retry, plain INSERTs
(10, 'W', $q$ SELECT (r.stream, r.first_version, r.last_version,
                      r.last_position OPERATOR(pg_catalog.-) r.first_position,
                      r.first_position OPERATOR(pg_catalog.>) pg_temp.h1())::text
                FROM event_store.es_append('@-1', 0,
                  '[{"type":"A","data":{"n":1}},{"type":"B","data":{"n":2},"metadata":{"k":"v"}}]') r $q$),
(11, 'W', $q$ SELECT (r.stream, r.first_version, r.last_version,
                      r.last_position OPERATOR(pg_catalog.-) r.first_position)::text
                FROM event_store.es_append('@-1', 2, 'C', '{"n":3}', '{"k":"w"}', pg_temp.id('@'), 2) r $q$),
(12, 'W', $q$ SELECT (r.stream, r.first_version, r.last_version)::text
                FROM event_store.es_append(stream => '@-1', expected_version => 3,
                                           type => 'D', data => '{"n":4}') r $q$),
(13, 'W', $q$ SELECT (r.stream, r.first_version, r.last_version)::text
                FROM event_store.es_append('@-1', 2, 'C', '{"n":3}', '{"k":"w"}', pg_temp.id('@'), 2) r $q$),
(14, 'W', $q$ WITH i AS (INSERT INTO event_store.events (stream, type, data, metadata)
                        VALUES ('@-1', 'E', '{"n":5}', '{"k":"x"}') RETURNING version, position)
              SELECT (i.version, i.position OPERATOR(pg_catalog.>) pg_temp.h1())::text FROM i $q$),
(15, 'W', $q$ WITH i AS (INSERT INTO event_store.events (stream, type, data, event_id)
                        VALUES ('@-2', 'F', '{}', pg_temp.id('@'))
                        ON CONFLICT (event_id) DO NOTHING RETURNING version)
              SELECT pg_catalog.count(*)::text FROM i $q$),
(16, 'W', $q$ SELECT (r.stream, r.first_version, r.last_version)::text
                FROM event_store.es_append('@-3', NULL,
                  pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                    'type', 'G', 'data', '{}'::jsonb, 'id', pg_temp.id('@-3')))) r $q$),
-- refusals
(20, 'W', $q$ SELECT r.stream FROM event_store.es_append('@-1', 1, 'X', '{}') r $q$),
(21, 'W', $q$ SELECT r.stream FROM event_store.es_append('@-1', NULL,
                '[{"type":"X","data":{},"metdata":{}}]') r $q$),
(22, 'W', $q$ SELECT r.stream FROM event_store.es_append('-@', NULL, 'X', '{}') r $q$),
(23, 'W', $q$ INSERT INTO event_store.events (position, stream, type, data)
              VALUES (pg_temp.h1() OPERATOR(pg_catalog.+) 1000000, '@-1', 'X', '{}')
              RETURNING 'stored' $q$),
(24, 'W', $q$ INSERT INTO event_store.events (stream, version, type, data)
              VALUES ('@-1', 9, 'X', '{}') RETURNING 'stored' $q$),
-- what is stored
(30, 'W', $q$ SELECT pg_catalog.string_agg(
                (e.version, e.type, e.data, e.metadata, e.schema_version,
                 CASE WHEN e.event_id OPERATOR(pg_catalog.=) pg_temp.id('@') THEN 'given'
                      ELSE pg_catalog.substr(e.event_id::text, 15, 1) END,
                 e.created_at OPERATOR(pg_catalog.=) pg_catalog.now())::text, ' ' ORDER BY e.position)
                FROM event_store.events e WHERE e.stream OPERATOR(pg_catalog.=) '@-1' $q$),
(31, 'W', $q$ SELECT (e.version, e.event_id OPERATOR(pg_catalog.=) pg_temp.id('@-3'))::text
                FROM event_store.events e WHERE e.stream OPERATOR(pg_catalog.=) '@-3' $q$),
(32, 'W', $q$ SELECT (s.name, s.category, s.version, s.created_at OPERATOR(pg_catalog.=) pg_catalog.now(),
                      s.updated_at OPERATOR(pg_catalog.=) pg_catalog.now(), s.metadata)::text
                FROM event_store.streams s WHERE s.name OPERATOR(pg_catalog.=) '@-1' $q$),
-- reads
(40, 'W', $q$ SELECT pg_catalog.string_agg((r.position OPERATOR(pg_catalog.-) pg_temp.first('@-1'),
                      r.version, r.type, r.data, r.metadata, r.schema_version,
                      r.created_at OPERATOR(pg_catalog.=) pg_catalog.now())::text, ' ')
                FROM event_store.es_read_stream('@-1') r $q$),
(41, 'W', $q$ SELECT pg_catalog.string_agg(r.version::text, ' ')
                FROM event_store.es_read_stream('@-1', 4, 2, true) r $q$),
(42, 'W', $q$ SELECT pg_catalog.string_agg(r.version::text, ' ')
                FROM event_store.es_read_stream('@-1', 2, 2) r $q$),
(43, 'W', $q$ SELECT pg_catalog.count(*)::text FROM event_store.es_read_stream('@-none') r $q$),
(44, 'W', $q$ SELECT pg_catalog.concat(event_store.es_stream_version('@-1'), ' ',
                event_store.es_stream_version('@-2'), ' ', event_store.es_stream_version('@-none')) $q$),
(45, 'W', $q$ SELECT (event_store.es_head_position() OPERATOR(pg_catalog.-) pg_temp.h0())::text $q$),
(46, 'W', $q$ SELECT pg_catalog.string_agg((r.position OPERATOR(pg_catalog.-) pg_temp.h0(),
                      r.stream, r.version, r.type, r.data)::text, ' ')
                FROM event_store.es_read_all(pg_temp.h0(), 1000) r $q$),
(47, 'W', $q$ SELECT pg_catalog.string_agg((r.position OPERATOR(pg_catalog.-) pg_temp.h0())::text, ' ')
                FROM event_store.es_read_all(pg_temp.h0() OPERATOR(pg_catalog.+) 1, 2) r $q$),
(48, 'W', $q$ SELECT pg_catalog.string_agg((r.position OPERATOR(pg_catalog.-) pg_temp.h0())::text, ' ')
                FROM event_store.es_read_all(pg_temp.h0(), 10, ARRAY['SetupA', 'Other']) r $q$),
(49, 'W', $q$ SELECT pg_catalog.string_agg((r.position OPERATOR(pg_catalog.-) pg_temp.h0())::text, ' ')
                FROM event_store.es_read_category('setup', pg_temp.h0()) r $q$),
(50, 'W', $q$ SELECT pg_catalog.concat(
                (SELECT pg_catalog.string_agg(r.stream, ' ')
                   FROM event_store.es_read_category('setup', pg_temp.h0(), 10, 0, 2) r), ' | ',
                (SELECT pg_catalog.string_agg(r.stream, ' ')
                   FROM event_store.es_read_category('setup', pg_temp.h0(), 10, 1, 2) r)) $q$),
(51, 'W', $q$ SELECT pg_catalog.concat(event_store.es_consumer_member('order-1', 4), ' ',
                event_store.es_category('order-1'), ' ', event_store.es_category('@-1'), ' ',
                pg_catalog.substr(event_store.es_uuid_v7()::text, 15, 1)) $q$),
-- checkpoints and the view
(60, 'C', $q$ SELECT event_store.es_checkpoint_get('cp-@')::text $q$),
(61, 'C', $q$ SELECT event_store.es_checkpoint_save('cp-@', 5)::text $q$),
(62, 'C', $q$ SELECT event_store.es_checkpoint_save('cp-@', 9, 5)::text $q$),
(63, 'C', $q$ SELECT event_store.es_checkpoint_save('cp-@', 9)::text $q$),
(64, 'C', $q$ SELECT event_store.es_checkpoint_save('cp-@', 8)::text $q$),
(65, 'C', $q$ SELECT event_store.es_checkpoint_save('cp-@', 10, 5)::text $q$),
(66, 'C', $q$ SELECT event_store.es_checkpoint_save('cp-@-x', 3, 1)::text $q$),
(67, 'C', $q$ SELECT event_store.es_checkpoint_reset('cp-@', 2)::text $q$),
(68, 'C', $q$ SELECT event_store.es_checkpoint_reset('cp-@-none')::text $q$),
(69, 'C', $q$ SELECT event_store.es_checkpoint_save('', 1)::text $q$),
(70, 'C', $q$ SELECT event_store.es_checkpoint_save(pg_catalog.repeat('x', 201), 1)::text $q$),
(71, 'C', $q$ SELECT event_store.es_checkpoint_save('cp-@', -1)::text $q$),
(72, 'C', $q$ SELECT event_store.es_checkpoint_save(NULL, 1)::text $q$),
(73, 'C', $q$ SELECT event_store.es_checkpoint_get('cp-@')::text $q$),
(74, 'C', $q$ SELECT (c.consumer, c.position, c.updated_at OPERATOR(pg_catalog.=) pg_catalog.now())::text
                FROM event_store.checkpoints c WHERE c.consumer OPERATOR(pg_catalog.=) 'cp-@' $q$),
(75, 'C', $q$ SELECT (c.consumer, c.position, c.head OPERATOR(pg_catalog.-) pg_temp.h0(),
                      c.lag_positions OPERATOR(pg_catalog.=) (c.head OPERATOR(pg_catalog.-) c.position),
                      c.lag_seconds OPERATOR(pg_catalog.>=) 0::pg_catalog.float8,
                      c.updated_at OPERATOR(pg_catalog.=) pg_catalog.now())::text
                FROM event_store.es_consumers c WHERE c.consumer OPERATOR(pg_catalog.=) 'cp-@' $q$),
(76, 'C', $q$ SELECT pg_catalog.string_agg((r.position OPERATOR(pg_catalog.-) pg_temp.h0())::text, ' ')
                FROM event_store.es_read_all(pg_temp.h0(), 3) r $q$);

-- The results of the runs, by tag and entry.
CREATE TEMP TABLE got (tag text, n int, result text, PRIMARY KEY (tag, n));
CREATE FUNCTION pg_temp.run(tag text, path text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  e record;
BEGIN
  FOR e IN SELECT b.n, b.who, b.q FROM pg_temp.battery b ORDER BY b.n LOOP
    INSERT INTO pg_temp.got VALUES (tag, e.n, pg_catalog.replace(
      pg_temp.value_as(CASE WHEN e.who OPERATOR(pg_catalog.=) 'W' THEN 'regress_es_sec_writer'
                            ELSE 'regress_es_sec_consumer' END,
                       path, pg_catalog.replace(e.q, '@', tag)),
      tag, '@'));
  END LOOP;
END $$;

-- The run before anything is planted, with the search_path of README "Installing".
DO $$ BEGIN PERFORM pg_temp.run('p0', '"$user", public, event_store'); END $$;

-- The attacker plants ----------------------------------------------------------------

SELECT ok(NOT has_schema_privilege('regress_es_sec_attacker', 'public', 'CREATE'),
          'PostgreSQL 15: an ordinary role may not create in schema public by default');
GRANT CREATE ON SCHEMA public TO regress_es_sec_attacker;
CREATE SCHEMA regress_es_evil AUTHORIZATION regress_es_sec_attacker;
-- Same-session temporary tables named like ours: the pinned search_paths list
-- pg_temp, last.  (Only the session itself can create them.)
CREATE TEMP TABLE events (LIKE event_store.events);
CREATE TEMP TABLE streams (LIKE event_store.streams);
CREATE TEMP TABLE checkpoints (LIKE event_store.checkpoints);
GRANT ALL ON pg_temp.events, pg_temp.streams, pg_temp.checkpoints TO PUBLIC;

SET ROLE regress_es_sec_attacker;
GRANT USAGE ON SCHEMA regress_es_evil TO PUBLIC;
-- The record of every trap that ran: a table, and a sequence (not undone by rollback).
CREATE TABLE regress_es_evil.hits (who text, what text);
CREATE SEQUENCE regress_es_evil.hit_count;
GRANT INSERT ON regress_es_evil.hits TO PUBLIC;
GRANT USAGE ON SEQUENCE regress_es_evil.hit_count TO PUBLIC;
CREATE FUNCTION regress_es_evil.hit(what text) RETURNS boolean LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM pg_catalog.nextval('regress_es_evil.hit_count');
  INSERT INTO regress_es_evil.hits VALUES (current_user, what);
  RETURN true;
END $$;
CREATE FUNCTION regress_es_evil.hit_trigger() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM regress_es_evil.hit(TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME || ' ' || TG_OP);
  RETURN NULL;
END $$;

DO $plant$
DECLARE
  s text;
  f text[];
  o text[];
  i int := 0;
BEGIN
  FOREACH s IN ARRAY ARRAY['public', 'regress_es_evil'] LOOP
    -- functions: signature, result type, what they return
    FOREACH f SLICE 1 IN ARRAY ARRAY[
      ['es_append(text, bigint, jsonb)', 'event_store.es_append_result', 'RETURN ROW(''hijacked'', -1, -1, -1, -1)::event_store.es_append_result;'],
      ['es_append(varchar, integer, json)', 'event_store.es_append_result', 'RETURN ROW(''hijacked'', -1, -1, -1, -1)::event_store.es_append_result;'],
      ['es_append(text, bigint, text, jsonb, jsonb, uuid, integer)', 'event_store.es_append_result', 'RETURN ROW(''hijacked'', -1, -1, -1, -1)::event_store.es_append_result;'],
      ['es_append(varchar, integer, varchar, json)', 'event_store.es_append_result', 'RETURN ROW(''hijacked'', -1, -1, -1, -1)::event_store.es_append_result;'],
      ['es_read_stream(text, bigint, bigint, boolean)', 'SETOF event_store.es_event', 'RETURN;'],
      ['es_read_stream(varchar)', 'SETOF event_store.es_event', 'RETURN;'],
      ['es_stream_version(text)', 'bigint', 'RETURN -1;'],
      ['es_stream_version(varchar)', 'bigint', 'RETURN -1;'],
      ['es_head_position()', 'bigint', 'RETURN -1;'],
      ['es_read_all(bigint, bigint, text[])', 'SETOF event_store.es_event', 'RETURN;'],
      ['es_read_all(integer, integer)', 'SETOF event_store.es_event', 'RETURN;'],
      ['es_read_category(text, bigint, bigint, integer, integer)', 'SETOF event_store.es_event', 'RETURN;'],
      ['es_read_category(varchar, integer)', 'SETOF event_store.es_event', 'RETURN;'],
      ['es_consumer_member(text, integer)', 'integer', 'RETURN -1;'],
      ['es_category(text)', 'text', 'RETURN ''HIJACKED'';'],
      ['es_category(varchar)', 'text', 'RETURN ''HIJACKED'';'],
      ['es_uuid_v7()', 'uuid', 'RETURN ''00000000-0000-0000-0000-000000000000'';'],
      ['es_checkpoint_save(text, bigint, bigint)', 'bigint', 'RETURN -1;'],
      ['es_checkpoint_save(varchar, integer)', 'bigint', 'RETURN -1;'],
      ['es_checkpoint_get(text)', 'bigint', 'RETURN -1;'],
      ['es_checkpoint_get(varchar)', 'bigint', 'RETURN -1;'],
      ['es_checkpoint_reset(text, bigint)', 'bigint', 'RETURN -1;'],
      ['_es_check_consumer(text)', 'void', 'RETURN;'],
      ['_es_check_position(bigint)', 'void', 'RETURN;'],
      ['_es_install()', 'void', 'RETURN;'],
      ['now()', 'timestamptz', 'RETURN ''1999-12-31 00:00:00+00'';'],
      ['transaction_timestamp()', 'timestamptz', 'RETURN ''1999-12-31 00:00:00+00'';'],
      ['statement_timestamp()', 'timestamptz', 'RETURN ''1999-12-31 00:00:00+00'';'],
      ['clock_timestamp()', 'timestamptz', 'RETURN ''1999-12-31 00:00:00+00'';'],
      ['gen_random_uuid()', 'uuid', 'RETURN ''00000000-0000-0000-0000-000000000000'';'],
      ['lower(text)', 'text', 'RETURN ''HIJACKED'';'],
      ['upper(text)', 'text', 'RETURN ''HIJACKED'';'],
      ['btrim(text)', 'text', 'RETURN ''HIJACKED'';'],
      ['split_part(text, text, integer)', 'text', 'RETURN ''HIJACKED'';'],
      ['strpos(text, text)', 'integer', 'RETURN 0;'],
      ['substr(text, integer)', 'text', 'RETURN ''HIJACKED'';'],
      ['substr(text, integer, integer)', 'text', 'RETURN ''HIJACKED'';'],
      ['length(text)', 'integer', 'RETURN 0;'],
      ['octet_length(text)', 'integer', 'RETURN 0;'],
      ['format(text)', 'text', 'RETURN ''HIJACKED'';'],
      ['format(text, text)', 'text', 'RETURN ''HIJACKED'';'],
      ['format(text, integer)', 'text', 'RETURN ''HIJACKED'';'],
      ['format(text, bigint)', 'text', 'RETURN ''HIJACKED'';'],
      ['format(text, bigint, bigint)', 'text', 'RETURN ''HIJACKED'';'],
      ['nextval(regclass)', 'bigint', 'RETURN -1;'],
      ['nextval(text)', 'bigint', 'RETURN -1;'],
      ['currval(regclass)', 'bigint', 'RETURN -1;'],
      ['jsonb_build_object(text, text)', 'jsonb', 'RETURN ''{"hijacked": true}'';'],
      ['jsonb_build_object(text, jsonb)', 'jsonb', 'RETURN ''{"hijacked": true}'';'],
      ['jsonb_typeof(jsonb)', 'text', 'RETURN ''HIJACKED'';'],
      ['jsonb_array_length(jsonb)', 'integer', 'RETURN 0;'],
      ['jsonb_array_elements(jsonb)', 'SETOF jsonb', 'RETURN;'],
      ['jsonb_object_keys(jsonb)', 'SETOF text', 'RETURN;'],
      ['to_jsonb(text)', 'jsonb', 'RETURN ''{"hijacked": true}'';'],
      ['pg_notify(text, text)', 'void', 'RETURN;'],
      ['pg_advisory_xact_lock(bigint)', 'void', 'RETURN;'],
      ['hashtext(text)', 'integer', 'RETURN 0;'],
      ['current_setting(text)', 'text', 'RETURN ''HIJACKED'';'],
      ['set_config(text, text, boolean)', 'text', 'RETURN ''HIJACKED'';'],
      ['uuid_send(uuid)', 'bytea', 'RETURN ''\x00'';'],
      ['md5(text)', 'text', 'RETURN ''00000000000000000000000000000000'';']
    ] LOOP
      EXECUTE pg_catalog.format(
        'CREATE FUNCTION %s.%s RETURNS %s LANGUAGE plpgsql AS %L',
        pg_catalog.quote_ident(s), f[1], f[2],
        pg_catalog.format('BEGIN PERFORM regress_es_evil.hit(%L); %s END',
                          pg_catalog.concat(s, '.', f[1]), f[3]));
    END LOOP;
    -- operators: name, argument type
    FOREACH o SLICE 1 IN ARRAY ARRAY[
      ['=', 'text'], ['<>', 'text'], ['<', 'text'], ['>', 'text'], ['||', 'text'],
      ['=', 'bigint'], ['<>', 'bigint'], ['<', 'bigint'], ['<=', 'bigint'], ['>', 'bigint'],
      ['>=', 'bigint'], ['-', 'bigint'], ['+', 'bigint'],
      ['=', 'integer'], ['<', 'integer'], ['>', 'integer'],
      ['=', 'uuid'], ['=', 'jsonb'], ['->', 'jsonb'], ['->>', 'jsonb'], ['?', 'jsonb'],
      ['=', 'timestamptz']
    ] LOOP
      i := i + 1;
      EXECUTE pg_catalog.format(
        'CREATE FUNCTION %1$s.trap_op_%2$s(a %3$s, b %4$s) RETURNS %5$s LANGUAGE plpgsql AS %6$L',
        pg_catalog.quote_ident(s), i, o[2],
        CASE WHEN o[1] IN ('->', '->>', '?') THEN 'text' ELSE o[2] END,
        CASE WHEN o[1] IN ('||', '-', '+') THEN o[2] WHEN o[1] = '->' THEN 'jsonb'
             WHEN o[1] = '->>' THEN 'text' ELSE 'boolean' END,
        pg_catalog.format('BEGIN PERFORM regress_es_evil.hit(%L); RETURN a OPERATOR(pg_catalog.%s) b; END',
                          pg_catalog.concat(s, '.', o[1], ' (', o[2], ')'), o[1]));
      EXECUTE pg_catalog.format(
        'CREATE OPERATOR %1$s.%2$s (LEFTARG = %3$s, RIGHTARG = %4$s, FUNCTION = %1$s.trap_op_%5$s)',
        pg_catalog.quote_ident(s), o[1], o[2],
        CASE WHEN o[1] IN ('->', '->>', '?') THEN 'text' ELSE o[2] END, i);
    END LOOP;
    -- types named like ours
    EXECUTE pg_catalog.format('CREATE TYPE %s.es_event AS (hijacked text)', pg_catalog.quote_ident(s));
    EXECUTE pg_catalog.format('CREATE TYPE %s.es_append_result AS (hijacked text)', pg_catalog.quote_ident(s));
  END LOOP;
END $plant$;

-- In public: tables named like ours, with the same columns and index names,
-- writable by everyone, recording any write.
CREATE TABLE public.streams (
    id bigint GENERATED ALWAYS AS IDENTITY, name text COLLATE "C" NOT NULL,
    category text COLLATE "C" NOT NULL, version bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(), metadata jsonb NOT NULL DEFAULT '{}',
    CONSTRAINT streams_pkey PRIMARY KEY (id), CONSTRAINT streams_name_key UNIQUE (name));
CREATE TABLE public.events (
    position bigint NOT NULL, stream text COLLATE "C" NOT NULL, version bigint NOT NULL,
    type text COLLATE "C" NOT NULL, data jsonb NOT NULL, metadata jsonb,
    event_id uuid NOT NULL, schema_version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT events_pkey PRIMARY KEY (position),
    CONSTRAINT events_stream_version_key UNIQUE (stream, version),
    CONSTRAINT events_event_id_key UNIQUE (event_id));
CREATE INDEX events_type_position ON public.events (type, position);
CREATE INDEX events_category_position ON public.events (stream, position);
CREATE TABLE public.checkpoints (
    consumer text COLLATE "C" NOT NULL, position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT checkpoints_pkey PRIMARY KEY (consumer));
CREATE TABLE public.es_consumers (consumer text, position bigint, head bigint,
    lag_positions bigint, lag_seconds float8, updated_at timestamptz);
GRANT ALL ON public.streams, public.events, public.checkpoints, public.es_consumers,
    public.streams_id_seq TO PUBLIC;
CREATE TRIGGER trap AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.streams
    FOR EACH STATEMENT EXECUTE FUNCTION regress_es_evil.hit_trigger();
CREATE TRIGGER trap AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.events
    FOR EACH STATEMENT EXECUTE FUNCTION regress_es_evil.hit_trigger();
CREATE TRIGGER trap AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION regress_es_evil.hit_trigger();
CREATE TRIGGER trap AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.es_consumers
    FOR EACH STATEMENT EXECUTE FUNCTION regress_es_evil.hit_trigger();
-- In the attacker's schema: views named like ours that record any read.
CREATE FUNCTION regress_es_evil.trap_rows(what text) RETURNS SETOF public.events LANGUAGE plpgsql AS $$
BEGIN
  PERFORM regress_es_evil.hit(what);
  RETURN;
END $$;
CREATE VIEW regress_es_evil.events AS SELECT * FROM regress_es_evil.trap_rows('regress_es_evil.events');
CREATE VIEW regress_es_evil.streams AS
  SELECT NULL::bigint AS id, NULL::text AS name FROM regress_es_evil.trap_rows('regress_es_evil.streams');
CREATE VIEW regress_es_evil.checkpoints AS
  SELECT NULL::text AS consumer, NULL::bigint AS position
    FROM regress_es_evil.trap_rows('regress_es_evil.checkpoints');
CREATE VIEW regress_es_evil.es_consumers AS
  SELECT NULL::text AS consumer FROM regress_es_evil.trap_rows('regress_es_evil.es_consumers');
GRANT SELECT ON regress_es_evil.events, regress_es_evil.streams, regress_es_evil.checkpoints,
    regress_es_evil.es_consumers TO PUBLIC;
CREATE SEQUENCE regress_es_evil.streams_id_seq;
GRANT ALL ON SEQUENCE regress_es_evil.streams_id_seq TO PUBLIC;
RESET ROLE;

-- The traps work: each of these reaches one, so the paths below are really
-- hostile.  Unqualified calls are resolved against the caller's search_path:
-- a better match (varchar for text) wins even behind event_store.
CREATE TEMP TABLE selftest AS
SELECT v.n, pg_temp.value_as(v.who, v.path, v.q) AS result
  FROM (VALUES
    (1, 'regress_es_sec_writer', 'regress_es_evil, public, pg_catalog, event_store',
     $$ SELECT (now() OPERATOR(pg_catalog.<) '2000-01-01'::timestamptz)::text $$),
    (2, 'regress_es_sec_writer', 'public, regress_es_evil, event_store',
     $$ SELECT es_category('x-1') $$),
    (3, 'regress_es_sec_writer', 'event_store, pg_catalog, public, regress_es_evil',
     $$ SELECT es_stream_version('x-1'::varchar)::text $$),
    (4, 'regress_es_sec_consumer', 'regress_es_evil, public, pg_catalog, event_store',
     $$ SELECT pg_catalog.count(*)::text FROM es_consumers $$),
    (5, 'regress_es_sec_consumer', '"$user", public, event_store',
     $$ SELECT es_checkpoint_get('x')::text $$)
  ) AS v(n, who, path, q);

-- The runs on hostile search_paths.
DO $$
BEGIN
  PERFORM pg_temp.run('p1', 'public, regress_es_evil, event_store');
  PERFORM pg_temp.run('p2', 'regress_es_evil, public, pg_catalog, event_store');
  PERFORM pg_temp.run('p3', 'event_store, pg_catalog, public, regress_es_evil');
  PERFORM pg_temp.run('p4', '"$user", public, event_store');
END $$;

-- What the traps recorded, then the plants go (DROP OWNED), before any pgTAP
-- call: pgTAP itself is installed in public and does not qualify its names.
CREATE TEMP TABLE trap_log AS SELECT h.who, h.what FROM regress_es_evil.hits h;
CREATE TEMP TABLE trap_count AS SELECT s.last_value, s.is_called FROM regress_es_evil.hit_count s;
CREATE TEMP TABLE planted_rows AS
SELECT 'public.events' AS t, (SELECT pg_catalog.count(*) FROM public.events) AS n
UNION ALL SELECT 'public.streams', (SELECT pg_catalog.count(*) FROM public.streams)
UNION ALL SELECT 'public.checkpoints', (SELECT pg_catalog.count(*) FROM public.checkpoints)
UNION ALL SELECT 'public.es_consumers', (SELECT pg_catalog.count(*) FROM public.es_consumers)
UNION ALL SELECT 'pg_temp.events', (SELECT pg_catalog.count(*) FROM pg_temp.events)
UNION ALL SELECT 'pg_temp.streams', (SELECT pg_catalog.count(*) FROM pg_temp.streams)
UNION ALL SELECT 'pg_temp.checkpoints', (SELECT pg_catalog.count(*) FROM pg_temp.checkpoints)
UNION ALL SELECT 'public.streams_id_seq', (SELECT s.last_value FROM public.streams_id_seq s
                                           WHERE s.is_called)
UNION ALL SELECT 'regress_es_evil.streams_id_seq', (SELECT s.last_value FROM regress_es_evil.streams_id_seq s
                                                    WHERE s.is_called);
CREATE TEMP TABLE planted_count AS
SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.pg_proc p
         WHERE p.proowner OPERATOR(pg_catalog.=) 'regress_es_sec_attacker'::regrole) AS functions,
       (SELECT pg_catalog.count(*) FROM pg_catalog.pg_operator o
         WHERE o.oprowner OPERATOR(pg_catalog.=) 'regress_es_sec_attacker'::regrole) AS operators;
DROP OWNED BY regress_es_sec_attacker;
DROP TABLE pg_temp.events, pg_temp.streams, pg_temp.checkpoints;

SELECT results_eq(
    $$ SELECT functions, operators FROM planted_count $$,
    $$ VALUES (2 * 61 + 2 * 22 + 3::bigint, 2 * 22::bigint) $$,
    'the attacker planted 61 functions and 22 operators in each of public and its schema');
SELECT results_eq(
    $$ SELECT n, result FROM selftest ORDER BY n $$,
    $$ VALUES (1, 'true'), (2, 'HIJACKED'), (3, '-1'), (4, '0'), (5, '-1') $$,
    'self-test: unqualified names on those search_paths reach the planted objects');

-- The run before the plants, checked entry by entry.
SELECT is((SELECT result FROM got WHERE tag = 'p0' AND got.n = v.n), want,
          format('clean run, entry %s: %s', v.n, label))
  FROM (VALUES
    (10, 'es_append (JSON form)', '(@-1,1,2,1,t)'),
    (11, 'es_append (single-event form) with metadata, id, schema_version', '(@-1,3,3,0)'),
    (12, 'es_append with named arguments', '(@-1,4,4)'),
    (13, 'idempotent retry returns the original result', '(@-1,3,3)'),
    (14, 'plain INSERT', '(5,t)'),
    (15, 'plain INSERT ... ON CONFLICT DO NOTHING of a stored id', '0'),
    (16, 'es_append with an id in the JSON', '(@-3,1,1)'),
    (20, 'wrong expected version', 'ERROR V0001: wrong expected version for stream "@-1" / Expected version 1, actual version 5.'),
    (21, 'unknown key', 'ERROR 22023: unknown key "metdata" in event / '),
    (22, 'bad stream name', 'ERROR 22023: stream name must not start with "-" / The category of a stream is the part of its name before the first "-".'),
    (23, 'a position given by the writer', 'ERROR 42501: only the owner of "event_store.events" may give positions / '),
    (24, 'a wrong version in a plain INSERT', 'ERROR V0001: wrong expected version for stream "@-1" / Expected version 8, actual version 5.'),
    (30, 'the stored events',
     '(1,A,"{""n"": 1}",,1,7,t) (2,B,"{""n"": 2}","{""k"": ""v""}",1,7,t) (3,C,"{""n"": 3}","{""k"": ""w""}",2,given,t) (4,D,"{""n"": 4}",,1,7,t) (5,E,"{""n"": 5}","{""k"": ""x""}",1,7,t)'),
    (31, 'the id given in the JSON is stored', '(1,t)'),
    (32, 'the stream row', '(@-1,@,5,t,t,{})'),
    (40, 'es_read_stream',
     '(0,1,A,"{""n"": 1}",,1,t) (1,2,B,"{""n"": 2}","{""k"": ""v""}",1,t) (2,3,C,"{""n"": 3}","{""k"": ""w""}",2,t) (3,4,D,"{""n"": 4}",,1,t) (4,5,E,"{""n"": 5}","{""k"": ""x""}",1,t)'),
    (41, 'es_read_stream backwards from 4, 2 events', '4 3'),
    (42, 'es_read_stream from 2, 2 events', '2 3'),
    (43, 'es_read_stream of an unknown stream', '0'),
    (44, 'es_stream_version', '5 0 0'),
    (45, 'es_head_position', '4'),
    (46, 'es_read_all',
     '(1,setup-1,1,SetupA,"{""n"": 1}") (2,setup-1,2,SetupB,"{""n"": 2}") (3,setup-2,1,SetupA,"{""n"": 3}") (4,other-1,1,Other,"{""n"": 4}")'),
    (47, 'es_read_all after h0 + 1, 2 events', '2 3'),
    (48, 'es_read_all of two types', '1 3 4'),
    (49, 'es_read_category', '1 2 3'),
    (50, 'es_read_category, members 0 and 1 of 2', 'setup-1 setup-1 | setup-2'),
    (51, 'es_consumer_member, es_category, es_uuid_v7', '1 order @ 7'),
    (60, 'es_checkpoint_get of a new consumer', '0'),
    (61, 'es_checkpoint_save', '5'),
    (62, 'es_checkpoint_save with expected_position', '9'),
    (63, 'es_checkpoint_save of the same position', '9'),
    (64, 'es_checkpoint_save backwards', 'ERROR V0002: checkpoint of consumer "cp-@" cannot move backwards / It is at position 9; 8 is below.'),
    (65, 'es_checkpoint_save with a stale expected_position', 'ERROR V0003: checkpoint of consumer "cp-@" has moved / Expected position 5, found 9.'),
    (66, 'es_checkpoint_save of a new consumer expected elsewhere', 'ERROR V0003: checkpoint of consumer "cp-@-x" has moved / Expected position 1, found 0.'),
    (67, 'es_checkpoint_reset', '2'),
    (68, 'es_checkpoint_reset of an unknown consumer', 'ERROR 42704: consumer "cp-@-none" has no checkpoint / '),
    (69, 'an empty consumer name', 'ERROR 22023: consumer must not be empty / '),
    (70, 'a consumer name of 201 bytes', 'ERROR 54000: consumer name is too long / The name has 201 bytes; the limit is 200 bytes.'),
    (71, 'a negative position', 'ERROR 22023: position must not be negative / '),
    (72, 'a NULL consumer', 'ERROR 22004: consumer must not be null / '),
    (73, 'es_checkpoint_get', '2'),
    (74, 'the checkpoint row', '(cp-@,2,t)'),
    (75, 'es_consumers', '(cp-@,2,4,t,t,t)'),
    (76, 'es_read_all by the consumer', '1 2 3')
  ) AS v(n, label, want);
SELECT is((SELECT count(*) FROM got WHERE tag = 'p0'), (SELECT count(*) FROM battery),
          'the clean run ran every entry, and every one is checked above');

-- The hostile runs: the same results as the clean one, no trap ran, nothing
-- was written to a planted table.
SELECT results_eq(
    format($$ SELECT n, result FROM got WHERE tag = %L ORDER BY n $$, v.tag),
    $$ SELECT n, result FROM got WHERE tag = 'p0' ORDER BY n $$,
    format('search_path = %s: every function returns what it returns on a clean search_path', v.path))
  FROM (VALUES ('p1', 'public, regress_es_evil, event_store'),
               ('p2', 'regress_es_evil, public, pg_catalog, event_store'),
               ('p3', 'event_store, pg_catalog, public, regress_es_evil'),
               ('p4', '"$user", public, event_store')) AS v(tag, path);
SELECT results_eq(
    $$ SELECT who, what FROM trap_log ORDER BY what $$,
    $$ VALUES ('regress_es_sec_writer'::text, 'public.es_category(text)'::text),
              ('regress_es_sec_consumer', 'public.es_checkpoint_get(text)'),
              ('regress_es_sec_writer', 'public.es_stream_version(varchar)'),
              ('regress_es_sec_consumer', 'regress_es_evil.es_consumers'),
              ('regress_es_sec_writer', 'regress_es_evil.now()') $$,
    'no planted function, operator or view ran but in the self-test');
SELECT results_eq(
    $$ SELECT last_value, is_called FROM trap_count $$,
    $$ VALUES (5::bigint, true) $$,
    'and none ran in a statement that failed (the sequence counts those too)');
SELECT is_empty(
    $$ SELECT t, n FROM planted_rows WHERE n IS DISTINCT FROM 0 AND n IS NOT NULL $$,
    'the planted tables stayed empty and the planted sequences unused');
SELECT results_eq(
    $$ SELECT e.stream COLLATE "default", count(*), max(e.version), min(s.version)
         FROM event_store.events e JOIN event_store.streams s ON s.name = e.stream
        WHERE e.stream ~ '^p[0-4]-'
        GROUP BY e.stream ORDER BY e.stream $$,
    $$ SELECT format('p%s-%s', t, s), n::bigint, n::bigint, n::bigint
         FROM generate_series(0, 4) t, (VALUES (1, 5), (3, 1)) AS x(s, n) ORDER BY 1 $$,
    'every run stored its events in event_store.events and counted them in event_store.streams');

SELECT * FROM finish();
ROLLBACK;
