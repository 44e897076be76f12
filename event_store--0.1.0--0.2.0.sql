/* event_store--0.1.0--0.2.0.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION event_store UPDATE TO '0.2.0'" to load this file. \quit

-- 0.2.0: reads see rules and upcasters as of their own snapshot, upcasters
-- are checked whenever they are resolved and run as their owner, erasure
-- drops the stream's metadata, es_consumers is cheap and works on a standby.

-- The rules of names and types, and the snapshot floor, written once in C
-- for the SQL functions below.
CREATE FUNCTION event_store._es_check_stream_name(stream text) RETURNS void
    AS 'MODULE_PATHNAME', 'es_check_stream_name_sql' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION event_store._es_check_type(type text) RETURNS void
    AS 'MODULE_PATHNAME', 'es_check_type_sql' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION event_store._es_snapshot_floor(truncate_before bigint, deleted boolean)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'es_snapshot_floor_sql' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION event_store._es_check_upcaster(upcaster regprocedure) RETURNS void
    AS 'MODULE_PATHNAME', 'es_check_upcaster_sql' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION event_store._es_check_schema_version(value integer, what text) RETURNS void
    AS 'MODULE_PATHNAME', 'es_check_schema_version_sql' LANGUAGE C IMMUTABLE PARALLEL SAFE;
-- The rules whose SQLSTATEs are the extension's own (V0002, V0003, V0004).
CREATE FUNCTION event_store._es_check_checkpoint(
    consumer text, stored bigint, "position" bigint, expected_position bigint,
    raced boolean DEFAULT false) RETURNS void
    AS 'MODULE_PATHNAME', 'es_check_checkpoint_sql' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION event_store._es_check_not_erased(stream text, erased_at timestamptz) RETURNS void
    AS 'MODULE_PATHNAME', 'es_check_not_erased_sql' LANGUAGE C IMMUTABLE PARALLEL SAFE;
-- Changes of upcasters, one transaction at a time (a chain keeps no hole).
CREATE FUNCTION event_store._es_lock_upcasters() RETURNS void
    AS 'MODULE_PATHNAME', 'es_lock_upcasters_sql' LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON COLUMN event_store.streams.updated_at IS 'created_at of the last append';
COMMENT ON COLUMN event_store.events.created_at IS 'Start of the appending transaction, or the created_at of the stream''s previous event if later: it never decreases within a stream';

-- The rules of consumer names and positions, now in C (es_validate.c), and
-- the checkpoint's SQLSTATEs raised where they are defined.
CREATE OR REPLACE FUNCTION event_store._es_check_consumer(consumer text) RETURNS void
    AS 'MODULE_PATHNAME', 'es_check_consumer_sql' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE OR REPLACE FUNCTION event_store._es_check_position(value bigint) RETURNS void
    AS 'MODULE_PATHNAME', 'es_check_position_sql' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE OR REPLACE FUNCTION event_store.es_checkpoint_save(
    consumer text,
    "position" bigint,
    expected_position bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  stored bigint;
BEGIN
  PERFORM event_store._es_check_consumer(consumer);
  PERFORM event_store._es_check_position(position);
  IF expected_position IS NOT NULL THEN
    PERFORM event_store._es_check_position(expected_position);
  END IF;

  SELECT c.position INTO stored FROM event_store.checkpoints c
   WHERE c.consumer = es_checkpoint_save.consumer FOR UPDATE;
  PERFORM event_store._es_check_checkpoint(consumer, stored, position, expected_position);

  IF stored IS NULL THEN
    INSERT INTO event_store.checkpoints AS c (consumer, position)
    VALUES (consumer, position)
    ON CONFLICT ON CONSTRAINT checkpoints_pkey DO UPDATE
      SET position = excluded.position, updated_at = now()
      WHERE c.position <= excluded.position AND expected_position IS NULL
    RETURNING c.position INTO stored;
    IF stored IS NULL THEN
      -- created concurrently, and ahead of us or expected to be absent
      PERFORM event_store._es_check_checkpoint(consumer, NULL, position, expected_position, raced => true);
    END IF;
  ELSE
    UPDATE event_store.checkpoints c SET position = es_checkpoint_save.position, updated_at = now()
     WHERE c.consumer = es_checkpoint_save.consumer;
    stored := position;
  END IF;
  RETURN stored;
END $$;

-- The feed head, or NULL where it cannot be told (on a standby, on the
-- target of a logical replication subscription): for monitoring.
CREATE FUNCTION event_store._es_head_if_known()
RETURNS bigint
AS 'MODULE_PATHNAME', 'es_head_if_known'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Checkpoints: a view that neither counts the backlog nor fails on a
-- standby.  Its columns change (lag_events, a count, gives way to
-- lag_seconds), so it is made again, with the privileges granted on it.
DO $$
DECLARE
  grants text[];
  column_grants text[];
  g text;
  initial pg_catalog.aclitem[];
BEGIN
  -- grants on columns too, for the columns the view keeps (lag_events goes)
  SELECT pg_catalog.array_agg(pg_catalog.format(
           'GRANT %s (%I) ON TABLE event_store.es_consumers TO %s%s',
           a.privilege_type, att.attname,
           CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END,
           CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END))
    INTO column_grants
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_attribute att ON att.attrelid = c.oid
   CROSS JOIN LATERAL pg_catalog.aclexplode(att.attacl) a
   WHERE c.oid = 'event_store.es_consumers'::pg_catalog.regclass
     AND att.attnum > 0 AND NOT att.attisdropped
     AND att.attname IN ('consumer', 'position', 'head', 'lag_positions', 'updated_at')
     AND a.grantee <> c.relowner;
  SELECT pg_catalog.array_agg(pg_catalog.format(
           'GRANT %s ON TABLE event_store.es_consumers TO %s%s',
           a.privilege_type,
           CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END,
           CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END))
    INTO grants
    FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
   WHERE c.oid = 'event_store.es_consumers'::pg_catalog.regclass
     AND a.grantee <> c.relowner;
  DROP VIEW event_store.es_consumers;
  CREATE VIEW event_store.es_consumers AS
  SELECT c.consumer,
         c.position,
         h.head,
         greatest(h.head - c.position, 0) AS lag_positions,
         coalesce(extract(epoch FROM pg_catalog.clock_timestamp() - (
             SELECT e.created_at FROM event_store.events e
              WHERE e.position > c.position
                AND (h.head IS NULL OR e.position <= h.head)
              ORDER BY e.position LIMIT 1)), 0)::double precision AS lag_seconds,
         c.updated_at
    FROM event_store.checkpoints c
   CROSS JOIN (SELECT event_store._es_head_if_known() AS head) h;

  COMMENT ON VIEW event_store.es_consumers IS
      'Consumers with their checkpoint, the feed head, and their lag in positions and in seconds';
  REVOKE ALL ON TABLE event_store.es_consumers FROM PUBLIC;
  -- what a fresh install has: grants made in an extension script count as
  -- the extension's own (pg_init_privs), and pg_dump would leave them out
  SELECT c.relacl INTO initial FROM pg_catalog.pg_class c
   WHERE c.oid = 'event_store.es_consumers'::pg_catalog.regclass;
  FOREACH g IN ARRAY coalesce(grants, '{}') || coalesce(column_grants, '{}') LOOP
    EXECUTE g;
  END LOOP;
  UPDATE pg_catalog.pg_init_privs SET initprivs = initial
   WHERE objoid = 'event_store.es_consumers'::pg_catalog.regclass
     AND classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND objsubid = 0;
  -- a fresh install grants nothing on columns
  DELETE FROM pg_catalog.pg_init_privs
   WHERE objoid = 'event_store.es_consumers'::pg_catalog.regclass
     AND classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND objsubid <> 0;
END $$;

-- Snapshots and upcasters: the rules of names and types in one place,
-- the SQLSTATEs of bad arguments.
CREATE OR REPLACE FUNCTION event_store.es_save_snapshot(
    stream text,
    version bigint,
    state jsonb,
    schema_version integer DEFAULT 1)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s record;
    lowest bigint;
BEGIN
    IF stream IS NULL OR version IS NULL OR state IS NULL OR schema_version IS NULL THEN
        RAISE EXCEPTION 'stream, version, state and schema_version must not be null'
            USING ERRCODE = '22004';
    END IF;
    PERFORM event_store._es_check_stream_name(stream);
    -- an erasure holds this table against saves while it runs (see
    -- es_erase_stream): a save that waited for one then sees the tombstone
    LOCK TABLE event_store.snapshots IN ROW EXCLUSIVE MODE;
    IF version < 1 THEN
        RAISE EXCEPTION 'snapshot version must be at least 1' USING ERRCODE = '22023',
            HINT = 'A snapshot holds the state after the event at that version.';
    END IF;
    PERFORM event_store._es_check_schema_version(schema_version, 'schema_version');
    SELECT t.version, t.erased_at,
           coalesce((t.metadata ->> 'truncate_before')::bigint, 0) AS truncate_before,
           t.metadata ? 'deleted_at' AS deleted
      INTO s FROM event_store.streams t WHERE t.name = es_save_snapshot.stream;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'stream "%" does not exist', stream USING ERRCODE = '42704';
    END IF;
    PERFORM event_store._es_check_not_erased(stream, s.erased_at);
    IF version > s.version THEN
        RAISE EXCEPTION 'stream "%" has not reached version %', stream, version
            USING ERRCODE = '22023', DETAIL = format('Its version is %s.', s.version);
    END IF;
    -- below the visible part of the stream the state would include events a
    -- read no longer returns (a deleted stream starts again at truncate_before)
    lowest := event_store._es_snapshot_floor(s.truncate_before, s.deleted);
    IF version < lowest THEN
        RAISE EXCEPTION 'version % of stream "%" is below its truncation point', version, stream
            USING ERRCODE = '22023',
                  DETAIL = format('Its events start at version %s.', s.truncate_before);
    END IF;
    INSERT INTO event_store.snapshots AS t (stream, version, state, schema_version)
    VALUES (es_save_snapshot.stream, es_save_snapshot.version, es_save_snapshot.state,
            es_save_snapshot.schema_version)
    ON CONFLICT ON CONSTRAINT snapshots_pkey DO UPDATE
       SET version = excluded.version, state = excluded.state,
           schema_version = excluded.schema_version, created_at = excluded.created_at
     WHERE t.version <= excluded.version;
    RETURN FOUND;
END $$;

CREATE OR REPLACE FUNCTION event_store.es_register_upcaster(
    type text,
    from_schema_version integer,
    upcaster regprocedure)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lo integer;
    hi integer;
BEGIN
    IF type IS NULL OR from_schema_version IS NULL OR upcaster IS NULL THEN
        RAISE EXCEPTION 'type, from_schema_version and upcaster must not be null'
            USING ERRCODE = '22004';
    END IF;
    PERFORM event_store._es_check_type(type);
    PERFORM event_store._es_check_schema_version(from_schema_version, 'from_schema_version');
    -- the function exists (the regprocedure argument), is an upcaster
    -- (42P13), and the caller controls it (42501): an upcaster runs in every
    -- read of the type.  The row trigger checks the same for direct INSERTs.
    PERFORM event_store._es_check_upcaster(upcaster);
    -- one change of upcasters at a time: the checks below stay true until
    -- we commit
    PERFORM event_store._es_lock_upcasters();
    IF EXISTS (SELECT 1 FROM event_store.upcasters u
                WHERE u.type = es_register_upcaster.type
                  AND u.from_schema_version = es_register_upcaster.from_schema_version) THEN
        RAISE EXCEPTION 'an upcaster of type "%" from schema version % is registered already',
            type, from_schema_version USING ERRCODE = '23505';
    END IF;
    -- every upcaster raises the version by one, so a chain cannot cycle;
    -- it must not have holes either
    SELECT min(u.from_schema_version), max(u.from_schema_version) INTO lo, hi
      FROM event_store.upcasters u WHERE u.type = es_register_upcaster.type;
    IF lo IS NOT NULL AND from_schema_version <> lo - 1 AND from_schema_version <> hi + 1 THEN
        RAISE EXCEPTION 'an upcaster of type "%" from schema version % would leave a hole in its chain',
            type, from_schema_version
            USING ERRCODE = '22023',
                  DETAIL = format('The registered upcasters go from schema version %s to %s.', lo, hi + 1);
    END IF;
    INSERT INTO event_store.upcasters (type, from_schema_version, upcaster)
    VALUES (es_register_upcaster.type, es_register_upcaster.from_schema_version,
            upcaster::text);
END $$;

CREATE OR REPLACE FUNCTION event_store.es_unregister_upcaster(type text, from_schema_version integer)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lo integer;
    hi integer;
BEGIN
    IF type IS NULL OR from_schema_version IS NULL THEN
        RAISE EXCEPTION 'type and from_schema_version must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM event_store._es_lock_upcasters();
    SELECT min(u.from_schema_version), max(u.from_schema_version) INTO lo, hi
      FROM event_store.upcasters u WHERE u.type = es_unregister_upcaster.type;
    IF lo IS NULL OR from_schema_version NOT BETWEEN lo AND hi THEN
        RAISE EXCEPTION 'no upcaster of type "%" from schema version % is registered',
            type, from_schema_version USING ERRCODE = '42704';
    END IF;
    IF from_schema_version <> lo AND from_schema_version <> hi THEN
        RAISE EXCEPTION 'removing the upcaster of type "%" from schema version % would leave a hole in its chain',
            type, from_schema_version USING ERRCODE = '22023',
            HINT = 'Remove the upcasters at either end of the chain.';
    END IF;
    DELETE FROM event_store.upcasters u
     WHERE u.type = es_unregister_upcaster.type
       AND u.from_schema_version = es_unregister_upcaster.from_schema_version;
END $$;

-- Changes of upcasters happen one transaction at a time, and leave no
-- type's chain with a hole: the statements that change upcasters lock the
-- table against other writers (readers are not held up), and the types they
-- wrote are checked at their end.
CREATE FUNCTION event_store._es_upcasters_lock() RETURNS trigger
    AS 'MODULE_PATHNAME', 'es_upcasters_lock' LANGUAGE C;
REVOKE ALL ON FUNCTION event_store._es_upcasters_lock() FROM PUBLIC;
CREATE TRIGGER upcasters_lock
    BEFORE INSERT OR UPDATE OR DELETE ON event_store.upcasters
    FOR EACH STATEMENT EXECUTE FUNCTION event_store._es_upcasters_lock();
ALTER TABLE event_store.upcasters ENABLE ALWAYS TRIGGER upcasters_lock;

-- Every session keeps the set of types with upcasters and of streams with
-- metadata: a change tells them all, and the session that makes it at once.
-- (The functions that change stream metadata tell them directly; a plain
-- INSERT into streams is a restore.)  A logical replication apply worker
-- fires row triggers only: the ENABLE REPLICA ones tell the subscriber.
DROP TRIGGER upcasters_changed ON event_store.upcasters;
CREATE TRIGGER upcasters_inserted
    AFTER INSERT ON event_store.upcasters
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION event_store._es_registry_changed();
ALTER TABLE event_store.upcasters ENABLE ALWAYS TRIGGER upcasters_inserted;
CREATE TRIGGER upcasters_updated
    AFTER UPDATE ON event_store.upcasters
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION event_store._es_registry_changed();
ALTER TABLE event_store.upcasters ENABLE ALWAYS TRIGGER upcasters_updated;
CREATE TRIGGER upcasters_deleted
    AFTER DELETE ON event_store.upcasters
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION event_store._es_registry_changed();
ALTER TABLE event_store.upcasters ENABLE ALWAYS TRIGGER upcasters_deleted;
CREATE TRIGGER upcasters_truncated
    AFTER TRUNCATE ON event_store.upcasters
    FOR EACH STATEMENT EXECUTE FUNCTION event_store._es_registry_changed();
ALTER TABLE event_store.upcasters ENABLE ALWAYS TRIGGER upcasters_truncated;
CREATE TRIGGER upcasters_replicated
    AFTER INSERT OR UPDATE OR DELETE ON event_store.upcasters
    FOR EACH ROW EXECUTE FUNCTION event_store._es_registry_changed();
ALTER TABLE event_store.upcasters ENABLE REPLICA TRIGGER upcasters_replicated;
CREATE TRIGGER streams_inserted
    BEFORE INSERT ON event_store.streams
    FOR EACH ROW WHEN (NEW.metadata IS DISTINCT FROM '{}'::jsonb)
    EXECUTE FUNCTION event_store._es_registry_changed();
ALTER TABLE event_store.streams ENABLE ALWAYS TRIGGER streams_inserted;
CREATE TRIGGER streams_replicated
    BEFORE UPDATE ON event_store.streams
    FOR EACH ROW WHEN (OLD.metadata IS DISTINCT FROM NEW.metadata)
    EXECUTE FUNCTION event_store._es_registry_changed();
ALTER TABLE event_store.streams ENABLE REPLICA TRIGGER streams_replicated;

-- A row of upcasters, however written, names an upcaster the writer
-- controls, stored with its qualified signature.
CREATE FUNCTION event_store._es_upcasters_check() RETURNS trigger
    AS 'MODULE_PATHNAME', 'es_upcasters_check' LANGUAGE C;
REVOKE ALL ON FUNCTION event_store._es_upcasters_check() FROM PUBLIC;
CREATE TRIGGER upcasters_check
    BEFORE INSERT OR UPDATE ON event_store.upcasters
    FOR EACH ROW EXECUTE FUNCTION event_store._es_upcasters_check();
ALTER TABLE event_store.upcasters ENABLE ALWAYS TRIGGER upcasters_check;

-- Rows written by 0.1.0: upcasters get qualified signatures (a row whose
-- function no longer is an upcaster stays as it is: its reads fail, as
-- they must, until it is unregistered), erased streams lose the metadata
-- their tombstone still held.
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT type, from_schema_version FROM event_store.upcasters LOOP
    BEGIN
      UPDATE event_store.upcasters u SET upcaster = u.upcaster
       WHERE u.type = r.type AND u.from_schema_version = r.from_schema_version;
    EXCEPTION WHEN OTHERS THEN
      NULL;
    END;
  END LOOP;
END $$;

ALTER TABLE event_store.streams DISABLE TRIGGER streams_maintained;
UPDATE event_store.streams SET metadata = '{}'
 WHERE erased_at IS NOT NULL AND metadata <> '{}';
ALTER TABLE event_store.streams ENABLE ALWAYS TRIGGER streams_maintained;

-- 0.1.0 could leave a hole in a type's chain of upcasters (two sessions
-- changing it at once); 0.2.0 refuses every change of such a type that
-- keeps the hole.  Say which types have one.
DO $$
DECLARE
  t record;
BEGIN
  FOR t IN
    SELECT u.type, min(u.from_schema_version) AS lo, max(u.from_schema_version) AS hi,
           count(*) AS n
      FROM event_store.upcasters u
     GROUP BY u.type
    HAVING max(u.from_schema_version) - min(u.from_schema_version) + 1 <> count(*)
  LOOP
    RAISE WARNING 'the upcasters of type "%" have a hole in their chain', t.type
      USING DETAIL = pg_catalog.format('Schema versions %s to %s have %s upcasters.', t.lo, t.hi, t.n),
            HINT = 'Register the missing upcasters (as the owner of event_store.upcasters, with INSERT), or remove the ones past the hole; reads of the type upcast events from below the hole only up to it.';
  END LOOP;
END $$;
