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

COMMENT ON COLUMN event_store.streams.updated_at IS 'created_at of the last append';
COMMENT ON COLUMN event_store.events.created_at IS 'Start of the appending transaction, or the created_at of the stream''s previous event if later: it never decreases within a stream';

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
  g text;
  initial pg_catalog.aclitem[];
BEGIN
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
  FOREACH g IN ARRAY coalesce(grants, '{}') LOOP
    EXECUTE g;
  END LOOP;
  UPDATE pg_catalog.pg_init_privs SET initprivs = initial
   WHERE objoid = 'event_store.es_consumers'::pg_catalog.regclass
     AND classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND objsubid = 0;
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
    IF schema_version < 1 THEN
        RAISE EXCEPTION 'schema_version must be between 1 and 2147483647' USING ERRCODE = '22003';
    END IF;
    SELECT t.version, t.erased_at,
           coalesce((t.metadata ->> 'truncate_before')::bigint, 0) AS truncate_before,
           t.metadata ? 'deleted_at' AS deleted
      INTO s FROM event_store.streams t WHERE t.name = es_save_snapshot.stream;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'stream "%" does not exist', stream USING ERRCODE = '42704';
    END IF;
    IF s.erased_at IS NOT NULL THEN
        RAISE EXCEPTION 'stream "%" was erased', stream USING ERRCODE = 'V0004',
            DETAIL = 'An erased stream''s name can never be used again.',
            HINT = 'See event_store.erasures for who erased it and when.';
    END IF;
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
    IF from_schema_version < 1 OR from_schema_version = 2147483647 THEN
        RAISE EXCEPTION 'from_schema_version must be between 1 and 2147483646'
            USING ERRCODE = '22003';
    END IF;
    -- the function exists (the regprocedure argument), is an upcaster
    -- (42P13), and the caller controls it (42501): an upcaster runs in every
    -- read of the type.  The row trigger checks the same for direct INSERTs.
    PERFORM event_store._es_check_upcaster(upcaster);
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

-- Triggers: a restore's INSERT into streams tells every session, and rows
-- of upcasters are checked however they are written.
CREATE TRIGGER streams_inserted
    AFTER INSERT ON event_store.streams
    FOR EACH STATEMENT EXECUTE FUNCTION event_store._es_registry_changed();
ALTER TABLE event_store.streams ENABLE ALWAYS TRIGGER streams_inserted;

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
