/* event_store--0.2.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION event_store" to load this file. \quit

-- Refuse to install without shared_preload_libraries (the function errors
-- with a hint), and reset the position register of this database.
CREATE FUNCTION event_store._es_install() RETURNS void
    AS 'MODULE_PATHNAME', 'es_install' LANGUAGE C VOLATILE;
SELECT event_store._es_install();
REVOKE ALL ON FUNCTION event_store._es_install() FROM PUBLIC;

-- Helpers used by column defaults ------------------------------------------

CREATE FUNCTION event_store.es_uuid_v7() RETURNS uuid
    AS 'MODULE_PATHNAME', 'es_uuid_v7' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION event_store.es_uuid_v7() IS
    'A time-ordered (version 7) UUID, the default event id';

CREATE FUNCTION event_store.es_category(stream text) RETURNS text
    AS 'MODULE_PATHNAME', 'es_category' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION event_store.es_category(text) IS
    'The category of a stream: its name up to the first "-"';

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

-- Storage -------------------------------------------------------------------

CREATE TABLE event_store.streams (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    name        text COLLATE "C" NOT NULL,
    category    text COLLATE "C" NOT NULL,
    version     bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    metadata    jsonb NOT NULL DEFAULT '{}',
    erased_at   timestamptz,
    CONSTRAINT streams_pkey PRIMARY KEY (id),
    CONSTRAINT streams_name_key UNIQUE (name),
    CONSTRAINT streams_version_check CHECK (version >= 0)
) WITH (fillfactor = 70);

COMMENT ON TABLE event_store.streams IS 'One row per stream; maintained by event_store';
COMMENT ON COLUMN event_store.streams.id IS 'Surrogate key, assigned when the stream is created';
COMMENT ON COLUMN event_store.streams.name IS 'The stream name, unique';
COMMENT ON COLUMN event_store.streams.category IS 'The name up to the first "-"';
COMMENT ON COLUMN event_store.streams.version IS 'Number of events ever appended; 0 for none';
COMMENT ON COLUMN event_store.streams.created_at IS 'Start of the transaction that created the stream';
COMMENT ON COLUMN event_store.streams.updated_at IS 'created_at of the last append';
COMMENT ON COLUMN event_store.streams.metadata IS 'Stream metadata (a JSON object): max_count, max_age, truncate_before, deleted_at, and your own keys';
COMMENT ON COLUMN event_store.streams.erased_at IS 'When the stream was erased (hard deleted); its name can never be used again';

-- The streams whose metadata says something: read paths load their rules
-- from this index alone.
CREATE INDEX streams_with_metadata ON event_store.streams (name)
    WHERE metadata <> '{}'::jsonb OR erased_at IS NOT NULL;

CREATE TABLE event_store.events (
    position        bigint NOT NULL,
    stream          text COLLATE "C" NOT NULL,
    version         bigint NOT NULL,
    type            text COLLATE "C" NOT NULL,
    data            jsonb NOT NULL,
    metadata        jsonb,
    event_id        uuid NOT NULL DEFAULT event_store.es_uuid_v7(),
    schema_version  integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_pkey PRIMARY KEY (position),
    CONSTRAINT events_stream_version_key UNIQUE (stream, version),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    -- also makes pg_dump write the streams before the events
    CONSTRAINT events_stream_fkey FOREIGN KEY (stream) REFERENCES event_store.streams (name),
    CONSTRAINT events_version_check CHECK (version >= 1),
    CONSTRAINT events_schema_version_check CHECK (schema_version >= 1)
);

-- The feed's filters: by type, and by category (the stream name up to the
-- first "-"), each in position order.
CREATE INDEX events_type_position ON event_store.events (type, position);
CREATE INDEX events_category_position
    ON event_store.events ((event_store.es_category(stream)) COLLATE "C", position);

COMMENT ON TABLE event_store.events IS 'The log: immutable events, in position order';
COMMENT ON COLUMN event_store.events.position IS 'Place in the database-wide log; increases in the order events become readable';
COMMENT ON COLUMN event_store.events.stream IS 'Name of the stream the event belongs to';
COMMENT ON COLUMN event_store.events.version IS 'Place in its stream: 1, 2, 3 ... without gaps';
COMMENT ON COLUMN event_store.events.type IS 'Event type, e.g. OrderPlaced';
COMMENT ON COLUMN event_store.events.data IS 'Event payload';
COMMENT ON COLUMN event_store.events.metadata IS 'Event metadata (a JSON object), or NULL';
COMMENT ON COLUMN event_store.events.event_id IS 'Unique event id, from the client or generated (UUID version 7)';
COMMENT ON COLUMN event_store.events.schema_version IS 'Version of the event''s data schema';
COMMENT ON COLUMN event_store.events.created_at IS 'Start of the appending transaction, or the created_at of the stream''s previous event if later: it never decreases within a stream';

-- The composite type every read returns: the columns of events, in order.
CREATE TYPE event_store.es_event AS (
    position        bigint,
    stream          text,
    version         bigint,
    type            text,
    data            jsonb,
    metadata        jsonb,
    event_id        uuid,
    schema_version  integer,
    created_at      timestamptz
);

CREATE TYPE event_store.es_append_result AS (
    stream          text,
    first_version   bigint,
    last_version    bigint,
    first_position  bigint,
    last_position   bigint
);

CREATE TABLE event_store.checkpoints (
    consumer    text COLLATE "C" NOT NULL,
    position    bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT checkpoints_pkey PRIMARY KEY (consumer),
    CONSTRAINT checkpoints_position_check CHECK (position >= 0)
);
COMMENT ON TABLE event_store.checkpoints IS 'The last position each feed consumer has processed';
COMMENT ON COLUMN event_store.checkpoints.consumer IS 'Name of the consumer (a projection, a subscriber)';
COMMENT ON COLUMN event_store.checkpoints.position IS 'Position of the last event the consumer processed; 0 for none';
COMMENT ON COLUMN event_store.checkpoints.updated_at IS 'Start of the transaction that last saved it';

-- Snapshots: the newest saved state of an aggregate, one per stream.
CREATE TABLE event_store.snapshots (
    stream          text COLLATE "C" NOT NULL,
    version         bigint NOT NULL,
    state           jsonb NOT NULL,
    schema_version  integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT snapshots_pkey PRIMARY KEY (stream),
    CONSTRAINT snapshots_stream_fkey FOREIGN KEY (stream) REFERENCES event_store.streams (name),
    CONSTRAINT snapshots_version_check CHECK (version >= 1),
    CONSTRAINT snapshots_schema_version_check CHECK (schema_version >= 1)
);
COMMENT ON TABLE event_store.snapshots IS 'The newest snapshot of each stream (es_save_snapshot)';
COMMENT ON COLUMN event_store.snapshots.version IS 'The version of the stream the state includes';
COMMENT ON COLUMN event_store.snapshots.state IS 'The aggregate''s state at that version';
COMMENT ON COLUMN event_store.snapshots.schema_version IS 'Version of the state''s schema (of the aggregate''s code)';
COMMENT ON COLUMN event_store.snapshots.created_at IS 'Start of the transaction that saved it';

-- Upcasters: a function per (event type, schema version) that turns an
-- event's data (and metadata) into the next schema version.
CREATE TABLE event_store.upcasters (
    type                text COLLATE "C" NOT NULL,
    from_schema_version integer NOT NULL,
    -- the qualified signature, as text: a reg* column would stop pg_upgrade
    -- (the row trigger upcasters_check qualifies what is written)
    upcaster            text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT upcasters_pkey PRIMARY KEY (type, from_schema_version),
    CONSTRAINT upcasters_from_schema_version_check
        CHECK (from_schema_version >= 1 AND from_schema_version < 2147483647)
);
COMMENT ON TABLE event_store.upcasters IS 'Registered upcasters: every read returns events upcast to the newest schema version';

-- What an upcaster of data and metadata returns.
CREATE TYPE event_store.es_upcast AS (
    data            jsonb,
    metadata        jsonb
);

-- Erasures: who erased which stream, when, and how many events.
CREATE TABLE event_store.erasures (
    stream          text COLLATE "C" NOT NULL,
    erased_at       timestamptz NOT NULL,
    erased_by       name NOT NULL,
    session_user_name name NOT NULL,
    events_erased   bigint NOT NULL,
    last_version    bigint NOT NULL,
    reason          text,
    last_position   bigint NOT NULL DEFAULT 0,
    CONSTRAINT erasures_pkey PRIMARY KEY (stream)
);
COMMENT ON TABLE event_store.erasures IS 'The audit trail of es_erase_stream: one row per erased stream';
COMMENT ON COLUMN event_store.erasures.erased_by IS 'The role that erased it (current_user)';
COMMENT ON COLUMN event_store.erasures.session_user_name IS 'The session''s login role';
COMMENT ON COLUMN event_store.erasures.events_erased IS 'How many events were removed';
COMMENT ON COLUMN event_store.erasures.last_version IS 'The stream''s version when it was erased';
COMMENT ON COLUMN event_store.erasures.last_position IS 'The highest position erased: positions never go below it again, even after a restore';

-- pg_dump keeps the rows of these tables.  Events are dumped in position
-- order, so that a restore through the numbering trigger sees every stream's
-- versions in order.
SELECT pg_catalog.pg_extension_config_dump('event_store.streams', '');
SELECT pg_catalog.pg_extension_config_dump('event_store.streams_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('event_store.events', 'ORDER BY position');
SELECT pg_catalog.pg_extension_config_dump('event_store.checkpoints', '');
SELECT pg_catalog.pg_extension_config_dump('event_store.snapshots', '');
SELECT pg_catalog.pg_extension_config_dump('event_store.upcasters', '');
SELECT pg_catalog.pg_extension_config_dump('event_store.erasures', '');

-- Appending -----------------------------------------------------------------

CREATE FUNCTION event_store.es_append(
    stream text,
    expected_version bigint,
    events jsonb)
RETURNS event_store.es_append_result
AS 'MODULE_PATHNAME', 'es_append_json'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION event_store.es_append(
    stream text,
    expected_version bigint,
    type text,
    data jsonb,
    metadata jsonb DEFAULT NULL,
    event_id uuid DEFAULT NULL,
    schema_version integer DEFAULT 1)
RETURNS event_store.es_append_result
AS 'MODULE_PATHNAME', 'es_append_one'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION event_store.es_append(text, bigint, jsonb) IS
    'Append a JSON array of events to a stream; expected_version NULL = any, 0 = new stream, N = at version N';
COMMENT ON FUNCTION event_store.es_append(text, bigint, text, jsonb, jsonb, uuid, integer) IS
    'Append one event to a stream; expected_version NULL = any, 0 = new stream, N = at version N';

-- Reading -------------------------------------------------------------------

-- The reads that return events are PARALLEL RESTRICTED: they run upcasters,
-- user functions that may not be safe in a parallel worker.
CREATE FUNCTION event_store.es_read_stream(
    stream text,
    from_version bigint DEFAULT NULL,
    max_count bigint DEFAULT NULL,
    backwards boolean DEFAULT false)
RETURNS SETOF event_store.es_event
AS 'MODULE_PATHNAME', 'es_read_stream'
LANGUAGE C STABLE PARALLEL RESTRICTED ROWS 100;

COMMENT ON FUNCTION event_store.es_read_stream(text, bigint, bigint, boolean) IS
    'Events of a stream in version order (or backwards), from a version, at most max_count';

CREATE FUNCTION event_store.es_stream_version(stream text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'es_stream_version'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION event_store.es_stream_version(text) IS
    'Number of events appended to the stream; 0 if it does not exist';

-- PARALLEL UNSAFE: it takes a fresh snapshot, which parallel mode forbids.
CREATE FUNCTION event_store.es_head_position()
RETURNS bigint
AS 'MODULE_PATHNAME', 'es_head_position'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION event_store.es_head_position() IS
    'Position of the newest event a feed reader may see now; 0 if none';

-- The feed ------------------------------------------------------------------
-- Gap-safe: never returns a position while a transaction that may still
-- commit a lower one is open.  PARALLEL UNSAFE: a fresh snapshot each.

CREATE FUNCTION event_store.es_read_all(
    after_position bigint DEFAULT 0,
    max_count bigint DEFAULT 1000,
    types text[] DEFAULT NULL)
RETURNS SETOF event_store.es_event
AS 'MODULE_PATHNAME', 'es_read_all'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1000;

COMMENT ON FUNCTION event_store.es_read_all(bigint, bigint, text[]) IS
    'Events after a position, in position order, gap-safe; optionally only some types';

CREATE FUNCTION event_store.es_read_category(
    category text,
    after_position bigint DEFAULT 0,
    max_count bigint DEFAULT 1000,
    consumer_member integer DEFAULT 0,
    consumer_size integer DEFAULT 1)
RETURNS SETOF event_store.es_event
AS 'MODULE_PATHNAME', 'es_read_category'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1000;

COMMENT ON FUNCTION event_store.es_read_category(text, bigint, bigint, integer, integer) IS
    'Events of a category after a position, gap-safe; a consumer group member gets its share of the streams';

CREATE FUNCTION event_store.es_consumer_member(stream text, consumer_size integer)
RETURNS integer
AS 'MODULE_PATHNAME', 'es_consumer_member'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION event_store.es_consumer_member(text, integer) IS
    'The member of a consumer group of consumer_size that reads the stream: FNV-1a 64 of the name, modulo the size';

-- Checkpoints ---------------------------------------------------------------

-- The rules of consumer names and positions (C, es_validate.c).
CREATE FUNCTION event_store._es_check_consumer(consumer text) RETURNS void
    AS 'MODULE_PATHNAME', 'es_check_consumer_sql' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION event_store._es_check_position(value bigint) RETURNS void
    AS 'MODULE_PATHNAME', 'es_check_position_sql' LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- Save a consumer's checkpoint; it never moves backwards (V0002).  With
-- expected_position, only if the stored checkpoint is still there (V0003
-- otherwise): two instances of one projection cannot both apply a page.
CREATE FUNCTION event_store.es_checkpoint_save(
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

COMMENT ON FUNCTION event_store.es_checkpoint_save(text, bigint, bigint) IS
    'Save the last position a consumer processed; never backwards; optionally only if still at expected_position';

CREATE FUNCTION event_store.es_checkpoint_get(consumer text)
RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  stored bigint;
BEGIN
  PERFORM event_store._es_check_consumer(consumer);
  SELECT c.position INTO stored FROM event_store.checkpoints c
   WHERE c.consumer = es_checkpoint_get.consumer;
  RETURN coalesce(stored, 0);
END $$;

COMMENT ON FUNCTION event_store.es_checkpoint_get(text) IS
    'The checkpoint of a consumer; 0 when it has none';

CREATE FUNCTION event_store.es_checkpoint_reset(consumer text, "position" bigint DEFAULT 0)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM event_store._es_check_consumer(consumer);
  PERFORM event_store._es_check_position(position);
  UPDATE event_store.checkpoints c SET position = es_checkpoint_reset.position, updated_at = now()
   WHERE c.consumer = es_checkpoint_reset.consumer;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704',
      MESSAGE = format('consumer "%s" has no checkpoint', consumer),
      HINT = 'es_checkpoint_save creates it.';
  END IF;
  RETURN position;
END $$;

COMMENT ON FUNCTION event_store.es_checkpoint_reset(text, bigint) IS
    'Move a consumer''s checkpoint to any position (backwards for a replay)';

-- The feed head, or NULL where it cannot be told (on a standby, on the
-- target of a logical replication subscription): for monitoring.
CREATE FUNCTION event_store._es_head_if_known()
RETURNS bigint
AS 'MODULE_PATHNAME', 'es_head_if_known'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Every consumer with its checkpoint, the feed head and how far behind it
-- is: in positions, and in seconds since the first event it has not read
-- was created (one probe of the primary key, whatever the backlog).  Safe
-- on a standby: what cannot be told there is NULL.
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

-- Snapshots -----------------------------------------------------------------

CREATE FUNCTION event_store.es_save_snapshot(
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

COMMENT ON FUNCTION event_store.es_save_snapshot(text, bigint, jsonb, integer) IS
    'Save the state of a stream''s aggregate at a version; the newest snapshot is kept (false if a newer one is)';

CREATE FUNCTION event_store.es_load_snapshot(stream text, min_schema_version integer DEFAULT 1)
RETURNS TABLE (version bigint, state jsonb, schema_version integer, created_at timestamptz)
AS 'MODULE_PATHNAME', 'es_load_snapshot'
LANGUAGE C STABLE PARALLEL SAFE ROWS 1;

COMMENT ON FUNCTION event_store.es_load_snapshot(text, integer) IS
    'The stream''s snapshot if it is usable (schema_version at least min_schema_version, within the visible events); no row otherwise';

CREATE FUNCTION event_store.es_load_aggregate(stream text, min_schema_version integer DEFAULT 1)
RETURNS SETOF event_store.es_event
AS 'MODULE_PATHNAME', 'es_load_aggregate'
LANGUAGE C STABLE PARALLEL RESTRICTED ROWS 100;

COMMENT ON FUNCTION event_store.es_load_aggregate(text, integer) IS
    'In one call: the usable snapshot (a row of type $snapshot, its state as data) and the events after it';

-- Time travel ---------------------------------------------------------------

CREATE FUNCTION event_store.es_read_stream_at(
    stream text,
    at_version bigint DEFAULT NULL,
    at_time timestamptz DEFAULT NULL)
RETURNS SETOF event_store.es_event
AS 'MODULE_PATHNAME', 'es_read_stream_at'
LANGUAGE C STABLE PARALLEL RESTRICTED ROWS 100;

COMMENT ON FUNCTION event_store.es_read_stream_at(text, bigint, timestamptz) IS
    'The stream as it was at a version, or at a time (events created at or before it)';

-- Upcasting -----------------------------------------------------------------

CREATE FUNCTION event_store.es_register_upcaster(
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

COMMENT ON FUNCTION event_store.es_register_upcaster(text, integer, regprocedure) IS
    'Register the function that turns events of a type from a schema version into the next';

CREATE FUNCTION event_store.es_unregister_upcaster(type text, from_schema_version integer)
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

COMMENT ON FUNCTION event_store.es_unregister_upcaster(text, integer) IS
    'Remove an upcaster at either end of a type''s chain';

-- Stream metadata and the stream lifecycle ------------------------------------

CREATE FUNCTION event_store.es_set_stream_metadata(stream text, metadata jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'es_set_stream_metadata'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION event_store.es_set_stream_metadata(text, jsonb) IS
    'Replace a stream''s metadata: max_count, max_age (seconds), truncate_before, and keys of your own';

CREATE FUNCTION event_store.es_delete_stream(stream text, expected_version bigint DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'es_delete_stream'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION event_store.es_delete_stream(text, bigint) IS
    'Soft delete: the stream disappears from reads; appending again continues its numbering';

CREATE FUNCTION event_store.es_erase_stream(stream text, reason text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'es_erase_stream'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION event_store.es_erase_stream(text, text) IS
    'Hard delete (erasure): remove the stream''s events for good, keep an audit row; the name can never be used again';

-- Only a role granted EXECUTE may erase.
REVOKE ALL ON FUNCTION event_store.es_erase_stream(text, text) FROM PUBLIC;

-- Triggers ------------------------------------------------------------------

CREATE FUNCTION event_store._es_events_before_insert() RETURNS trigger
    AS 'MODULE_PATHNAME', 'es_events_before_insert' LANGUAGE C;
CREATE FUNCTION event_store._es_events_after_statement() RETURNS trigger
    AS 'MODULE_PATHNAME', 'es_events_after_statement' LANGUAGE C;
CREATE FUNCTION event_store._es_refuse_change() RETURNS trigger
    AS 'MODULE_PATHNAME', 'es_refuse_change' LANGUAGE C;
REVOKE ALL ON FUNCTION event_store._es_events_before_insert() FROM PUBLIC;
REVOKE ALL ON FUNCTION event_store._es_events_after_statement() FROM PUBLIC;
REVOKE ALL ON FUNCTION event_store._es_refuse_change() FROM PUBLIC;

-- A plain INSERT is numbered and checked like es_append; at the end of the
-- statement the streams rows follow the rows really inserted (a stream
-- created for a row that ON CONFLICT DO NOTHING skipped is dropped again
-- before commit).
CREATE TRIGGER events_number
    BEFORE INSERT ON event_store.events
    FOR EACH ROW EXECUTE FUNCTION event_store._es_events_before_insert();
CREATE TRIGGER events_count
    AFTER INSERT ON event_store.events
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION event_store._es_events_after_statement();

-- Events are immutable; streams are maintained by the functions.  These
-- fire in every session_replication_role.
CREATE TRIGGER events_immutable
    BEFORE UPDATE OR DELETE OR TRUNCATE ON event_store.events
    FOR EACH STATEMENT EXECUTE FUNCTION event_store._es_refuse_change();
ALTER TABLE event_store.events ENABLE ALWAYS TRIGGER events_immutable;

CREATE TRIGGER streams_maintained
    BEFORE UPDATE OR DELETE OR TRUNCATE ON event_store.streams
    FOR EACH STATEMENT EXECUTE FUNCTION event_store._es_refuse_change();
ALTER TABLE event_store.streams ENABLE ALWAYS TRIGGER streams_maintained;

CREATE TRIGGER erasures_immutable
    BEFORE UPDATE OR DELETE OR TRUNCATE ON event_store.erasures
    FOR EACH STATEMENT EXECUTE FUNCTION event_store._es_refuse_change();
ALTER TABLE event_store.erasures ENABLE ALWAYS TRIGGER erasures_immutable;

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
CREATE FUNCTION event_store._es_registry_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'es_registry_changed' LANGUAGE C;
REVOKE ALL ON FUNCTION event_store._es_registry_changed() FROM PUBLIC;
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

-- Privileges ----------------------------------------------------------------
-- The functions check table privileges themselves: INSERT on events to
-- append, SELECT on events (and streams) to read.  Grant them per role; see
-- the README.
REVOKE ALL ON TABLE event_store.events, event_store.streams, event_store.checkpoints,
    event_store.es_consumers, event_store.snapshots, event_store.upcasters,
    event_store.erasures FROM PUBLIC;
GRANT USAGE ON SCHEMA event_store TO PUBLIC;
