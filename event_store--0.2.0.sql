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

-- Seconds since the first event after a position (up to the head) was
-- created, 0 when none: one probe of the primary key (lag_seconds of the
-- views below).
CREATE FUNCTION event_store._es_lag_seconds(after bigint, head bigint)
RETURNS double precision
AS 'MODULE_PATHNAME', 'es_lag_seconds'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Every consumer with its checkpoint, the feed head and how far behind it
-- is: in positions, and in seconds since the first event it has not read
-- was created (one probe of the primary key, whatever the backlog).  Safe
-- on a standby: what cannot be told there is NULL.
CREATE VIEW event_store.es_consumers AS
SELECT c.consumer,
       c.position,
       h.head,
       h.head - least(c.position, h.head) AS lag_positions,
       event_store._es_lag_seconds(c.position, h.head) AS lag_seconds,
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

-- Projections ---------------------------------------------------------------
-- A projection is a handler function the server runs on the feed, page by
-- page: each page, the handler's effects and the new checkpoint in one
-- transaction, as the role that registered it (docs/projections.md).

-- The rules of handlers (C, es_project.c): the kind and signature of the
-- function, and the caller's right to execute it.  Returns the shape:
-- 'page' for (es_event[]), 'event' for (es_event), 'reset' for ().
CREATE FUNCTION event_store._es_check_handler(handler regprocedure, reset boolean DEFAULT false)
RETURNS text
AS 'MODULE_PATHNAME', 'es_check_handler_sql' LANGUAGE C STABLE PARALLEL UNSAFE;
-- Call a registered handler as the role that registered it, under a fixed
-- search_path, as a security-restricted operation.
CREATE FUNCTION event_store._es_call_handler(
    projection text, handler text, shape text, owner name, events event_store.es_event[])
RETURNS void
AS 'MODULE_PATHNAME', 'es_call_handler' LANGUAGE C VOLATILE PARALLEL UNSAFE;
-- A row of projections: the handler's signature resolves to a handler of
-- that shape, the reset handler to one of no argument, the owner exists, is
-- not a superuser and may execute both.
CREATE FUNCTION event_store._es_check_projection_row(
    handler text, shape text, reset_handler text, owner name, privileges boolean DEFAULT true)
RETURNS void
AS 'MODULE_PATHNAME', 'es_check_projection_row_sql' LANGUAGE C STABLE PARALLEL UNSAFE;
-- Refuse to run or change a projection from inside a handler (its page
-- holds the projection's row: it would apply events twice, or lose them).
CREATE FUNCTION event_store._es_check_not_in_handler() RETURNS void
AS 'MODULE_PATHNAME', 'es_check_not_in_handler_sql' LANGUAGE C VOLATILE PARALLEL UNSAFE;
-- Does the current role act for owner (a member of it, with its
-- privileges)?  False for a role that no longer exists.
CREATE FUNCTION event_store._es_acts_for(owner name) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce((SELECT pg_catalog.pg_has_role(current_user, r.oid, 'USAGE')
                       FROM pg_catalog.pg_roles r WHERE r.rolname = owner), false)
$$;
-- The filter of a projection, by the rules of the feed's arguments.
CREATE FUNCTION event_store._es_check_filter(category text, types text[]) RETURNS void
AS 'MODULE_PATHNAME', 'es_check_filter_sql' LANGUAGE C IMMUTABLE PARALLEL SAFE;
-- Wake this database's worker when the transaction commits.
CREATE FUNCTION event_store._es_wake_runner() RETURNS void
AS 'MODULE_PATHNAME', 'es_wake_runner_sql' LANGUAGE C VOLATILE PARALLEL UNSAFE;
-- The position the session's last feed read got to (NULL before one).
CREATE FUNCTION event_store.es_feed_reached()
RETURNS bigint
AS 'MODULE_PATHNAME', 'es_feed_reached' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION event_store.es_feed_reached() IS
    'The position the session''s last es_read_all or es_read_category got to: save it as the checkpoint, even when the read returned nothing';

CREATE TABLE event_store.projections (
    name                text COLLATE "C" NOT NULL,
    handler             text NOT NULL,
    shape               text NOT NULL,
    reset_handler       text,
    category            text COLLATE "C",
    types               text[] COLLATE "C",
    page_size           integer NOT NULL,
    on_error            text NOT NULL,
    max_attempts        integer NOT NULL,
    backoff             interval NOT NULL,
    owner               name NOT NULL,
    state               text NOT NULL DEFAULT 'running',
    position            bigint NOT NULL DEFAULT 0,
    attempts            integer NOT NULL DEFAULT 0,
    retry_at            timestamptz,
    error_position      bigint,
    error_sqlstate      text,
    error_message       text,
    error_context       text,
    error_at            timestamptz,
    processed           bigint NOT NULL DEFAULT 0,
    dead_lettered       bigint NOT NULL DEFAULT 0,
    last_processed_at   timestamptz,
    rebuild_to          bigint,
    rebuild_started_at  timestamptz,
    registered_at       timestamptz NOT NULL DEFAULT now(),
    saved_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projections_pkey PRIMARY KEY (name),
    CONSTRAINT projections_shape_check CHECK (shape IN ('page', 'event')),
    CONSTRAINT projections_filter_check CHECK (category IS NULL OR types IS NULL),
    CONSTRAINT projections_page_size_check CHECK (page_size BETWEEN 1 AND 10000),
    CONSTRAINT projections_on_error_check CHECK (on_error IN ('pause', 'skip')),
    CONSTRAINT projections_max_attempts_check CHECK (max_attempts BETWEEN 1 AND 100),
    CONSTRAINT projections_backoff_check CHECK (backoff >= '0' AND backoff <= '1 day'),
    CONSTRAINT projections_state_check CHECK (state IN ('running', 'paused', 'faulted')),
    CONSTRAINT projections_position_check CHECK (position >= 0 AND attempts BETWEEN 0 AND 1000),
    CONSTRAINT projections_retry_at_check CHECK (retry_at IS NULL OR isfinite(retry_at)),
    CONSTRAINT projections_saved_at_check CHECK (isfinite(saved_at))
);
COMMENT ON TABLE event_store.projections IS 'Projections the server runs: handler, filter, policy, checkpoint and state';
COMMENT ON COLUMN event_store.projections.handler IS 'The handler''s signature: (es_event[]) for a page, (es_event) for one event at a time';
COMMENT ON COLUMN event_store.projections.owner IS 'The role that registered it: the handler runs as this role';
COMMENT ON COLUMN event_store.projections.state IS 'running, paused (by a user) or faulted (an event failed max_attempts times under on_error = pause)';
COMMENT ON COLUMN event_store.projections.position IS 'The checkpoint: every event up to it is applied';
COMMENT ON COLUMN event_store.projections.retry_at IS 'After a failure: the page is not tried again before this time';
COMMENT ON COLUMN event_store.projections.rebuild_to IS 'During a rebuild: the head when it started';

-- Events a projection skipped (on_error = skip), one row each.  Keyed by
-- consumer, so that other consumers of the feed can park events here too.
CREATE TABLE event_store.dead_letters (
    consumer        text COLLATE "C" NOT NULL,
    owner           name NOT NULL,
    position        bigint NOT NULL,
    stream          text NOT NULL,
    version         bigint NOT NULL,
    type            text NOT NULL,
    event_id        uuid NOT NULL,
    attempts        integer NOT NULL,
    sqlstate        text NOT NULL,
    message         text NOT NULL,
    context         text,
    failed_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT dead_letters_pkey PRIMARY KEY (consumer, position)
);
COMMENT ON TABLE event_store.dead_letters IS 'Events a consumer skipped after its handler failed on them, with the last error';

SELECT pg_catalog.pg_extension_config_dump('event_store.projections', '');
SELECT pg_catalog.pg_extension_config_dump('event_store.dead_letters', '');

-- The projection's row for a control function: it exists (42704), and the
-- caller acts for the role that registered it (42501).
CREATE FUNCTION event_store._es_projection_for_update(projection text)
RETURNS event_store.projections
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p event_store.projections;
BEGIN
    IF projection IS NULL THEN
        RAISE EXCEPTION 'projection must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM event_store._es_check_not_in_handler();
    SELECT * INTO p FROM event_store.projections j WHERE j.name = projection FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'projection "%" does not exist', projection USING ERRCODE = '42704';
    END IF;
    IF NOT event_store._es_acts_for(p.owner) THEN
        RAISE EXCEPTION 'must be a member of role "%" to control projection "%"', p.owner, projection
            USING ERRCODE = '42501',
                  DETAIL = 'A projection is controlled by the role that registered it.';
    END IF;
    RETURN p;
END $$;

CREATE FUNCTION event_store.es_register_projection(
    name text,
    handler regprocedure,
    category text DEFAULT NULL,
    types text[] DEFAULT NULL,
    page_size integer DEFAULT 100,
    on_error text DEFAULT 'pause',
    max_attempts integer DEFAULT 3,
    backoff interval DEFAULT '1 second',
    reset_handler regprocedure DEFAULT NULL,
    start_position bigint DEFAULT 0)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    shape text;
BEGIN
    IF name IS NULL OR handler IS NULL OR page_size IS NULL OR on_error IS NULL
       OR max_attempts IS NULL OR backoff IS NULL OR start_position IS NULL THEN
        RAISE EXCEPTION 'name, handler, page_size, on_error, max_attempts, backoff and start_position must not be null'
            USING ERRCODE = '22004';
    END IF;
    PERFORM event_store._es_check_consumer(name);
    IF category IS NOT NULL AND types IS NOT NULL THEN
        RAISE EXCEPTION 'a projection follows a category or a set of types, not both'
            USING ERRCODE = '22023',
                  HINT = 'Register one projection per category, or filter in the handler.';
    END IF;
    IF page_size NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'page_size must be between 1 and 10000' USING ERRCODE = '22023';
    END IF;
    IF on_error NOT IN ('pause', 'skip') THEN
        RAISE EXCEPTION 'on_error must be ''pause'' or ''skip''' USING ERRCODE = '22023',
            DETAIL = format('The value was %L.', on_error);
    END IF;
    IF max_attempts NOT BETWEEN 1 AND 100 THEN
        RAISE EXCEPTION 'max_attempts must be between 1 and 100' USING ERRCODE = '22023';
    END IF;
    IF backoff < '0' OR backoff > '1 day' THEN
        RAISE EXCEPTION 'backoff must be between 0 and 1 day' USING ERRCODE = '22023';
    END IF;
    PERFORM event_store._es_check_position(start_position);
    IF start_position > event_store.es_head_position() THEN
        RAISE EXCEPTION 'start_position % is beyond the head of the feed', start_position
            USING ERRCODE = '22023',
                  DETAIL = format('The head is at position %s.', event_store.es_head_position());
    END IF;
    -- the filter, as the feed reads it
    PERFORM event_store._es_check_filter(category, types);
    -- the handler: kind, signature, EXECUTE for the caller (C)
    shape := event_store._es_check_handler(handler);
    IF reset_handler IS NOT NULL THEN
        PERFORM event_store._es_check_handler(reset_handler, reset => true);
    END IF;
    -- the caller may execute them and read the events (the trigger does not
    -- check privileges: a restore loads the rows before the grants)
    PERFORM event_store._es_check_projection_row(handler::text, shape, reset_handler::text,
                                                 current_user, privileges => true);
    IF EXISTS (SELECT 1 FROM event_store.projections j WHERE j.name = es_register_projection.name) THEN
        RAISE EXCEPTION 'projection "%" already exists', name USING ERRCODE = '42710',
            HINT = 'Unregister it first, or register the new version under another name.';
    END IF;
    INSERT INTO event_store.projections (name, handler, shape, reset_handler, category, types,
                                         page_size, on_error, max_attempts, backoff, owner, position)
    VALUES (es_register_projection.name, handler::text, shape, reset_handler::text,
            category, types, page_size, on_error, max_attempts, backoff, current_user,
            start_position);
    PERFORM event_store._es_wake_runner();
END $$;

COMMENT ON FUNCTION event_store.es_register_projection(text, regprocedure, text, text[], integer, text, integer, interval, regprocedure, bigint) IS
    'Register a projection: the server runs its handler on every page of the feed after its checkpoint';

CREATE FUNCTION event_store.es_unregister_projection(name text)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM event_store._es_projection_for_update(name);
    DELETE FROM event_store.dead_letters d WHERE d.consumer = es_unregister_projection.name;
    DELETE FROM event_store.projections j WHERE j.name = es_unregister_projection.name;
END $$;

COMMENT ON FUNCTION event_store.es_unregister_projection(text) IS
    'Remove a projection and its dead letters (its read model is the user''s)';

CREATE FUNCTION event_store.es_pause_projection(name text)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM event_store._es_projection_for_update(name);
    UPDATE event_store.projections j SET state = 'paused'
     WHERE j.name = es_pause_projection.name AND j.state = 'running';
END $$;

COMMENT ON FUNCTION event_store.es_pause_projection(text) IS
    'Stop running a projection until es_resume_projection';

-- Resume a paused or faulted projection: the failed event is tried again
-- at once, with a fresh count of attempts.
CREATE FUNCTION event_store.es_resume_projection(name text)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM event_store._es_projection_for_update(name);
    UPDATE event_store.projections j SET state = 'running', attempts = 0, retry_at = NULL
     WHERE j.name = es_resume_projection.name;
    PERFORM event_store._es_wake_runner();
END $$;

COMMENT ON FUNCTION event_store.es_resume_projection(text) IS
    'Run a paused or faulted projection again, from its checkpoint, with a fresh count of attempts';

-- Retry now: a running projection waiting for its backoff tries again at
-- once (its count of attempts goes on).
CREATE FUNCTION event_store.es_retry_projection(name text)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p event_store.projections;
BEGIN
    p := event_store._es_projection_for_update(name);
    IF p.state <> 'running' THEN
        RAISE EXCEPTION 'projection "%" is %', name, p.state USING ERRCODE = '55000',
            HINT = 'es_resume_projection runs it again.';
    END IF;
    UPDATE event_store.projections j SET retry_at = NULL WHERE j.name = es_retry_projection.name;
    PERFORM event_store._es_wake_runner();
END $$;

COMMENT ON FUNCTION event_store.es_retry_projection(text) IS
    'Try a running projection''s failed page again now rather than after its backoff';

-- The position a replay from a time starts after: every event created at
-- or after from_time is after it (events are created at the start of their
-- transaction, so positions are not in the order of created_at; the replay
-- also includes the events after it that were created before from_time).
--
-- The lookup reads the block ranges of events whose created_at may be at or
-- after from_time, found by a BRIN index (a few bytes per thousand events;
-- ranges appended since the last VACUUM are read whole): the events a
-- replay from that time reads anyway.  min(position + 0): not the ordered
-- walk of the primary key from the first event, which reads every event
-- created before from_time.
CREATE INDEX events_created_at ON event_store.events
    USING brin (created_at) WITH (pages_per_range = 32);

CREATE FUNCTION event_store.es_position_before_time(from_time timestamptz)
RETURNS bigint
LANGUAGE plpgsql STABLE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    head bigint := event_store.es_head_position();
BEGIN
    IF from_time IS NULL THEN
        RAISE EXCEPTION 'from_time must not be null' USING ERRCODE = '22004';
    END IF;
    -- never above the feed's head: positions above it may not be settled
    RETURN least(coalesce((SELECT min(e.position + 0) - 1 FROM event_store.events e
                            WHERE e.created_at >= from_time),
                          head),
                 head);
END $$;

COMMENT ON FUNCTION event_store.es_position_before_time(timestamptz) IS
    'The position after which every event created at or after a time lies: where a replay from that time starts';

-- Rebuild: the reset handler (if any) and the rewind in one transaction;
-- the runner then replays up to the head and on.
CREATE FUNCTION event_store.es_rebuild_projection(name text, from_position bigint DEFAULT 0)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p event_store.projections;
    head bigint;
BEGIN
    p := event_store._es_projection_for_update(name);
    PERFORM event_store._es_check_position(from_position);
    head := event_store.es_head_position();
    IF from_position > head THEN
        RAISE EXCEPTION 'position % is beyond the head of the feed', from_position
            USING ERRCODE = '22023', DETAIL = format('The head is at position %s.', head);
    END IF;
    -- a paused or faulted rebuild does not run: it may start over
    IF p.state = 'running' AND p.rebuild_to IS NOT NULL AND p.position < p.rebuild_to THEN
        RAISE EXCEPTION 'projection "%" is being rebuilt', name USING ERRCODE = '55006',
            DETAIL = format('It is at position %s of %s.', p.position, p.rebuild_to),
            HINT = 'Wait for the rebuild to reach its target, or pause the projection and rebuild it again.';
    END IF;
    IF p.reset_handler IS NOT NULL THEN
        PERFORM event_store._es_call_handler(p.name, p.reset_handler, 'reset', p.owner, NULL);
    END IF;
    UPDATE event_store.projections j
       SET position = from_position, saved_at = now(), state = 'running', attempts = 0, retry_at = NULL,
           rebuild_to = head, rebuild_started_at = now()
     WHERE j.name = es_rebuild_projection.name;
    PERFORM event_store._es_wake_runner();
    RETURN from_position;
END $$;

CREATE FUNCTION event_store.es_rebuild_projection(name text, from_time timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    from_position bigint;
BEGIN
    -- two statements: the first may wait (for a DROP EXTENSION, say), and the
    -- second is then planned again rather than call a function dropped meanwhile
    from_position := event_store.es_position_before_time(from_time);
    RETURN event_store.es_rebuild_projection(name, from_position);
END $$;

COMMENT ON FUNCTION event_store.es_rebuild_projection(text, bigint) IS
    'Reset a projection''s read model (its reset handler) and replay it from a position';
COMMENT ON FUNCTION event_store.es_rebuild_projection(text, timestamptz) IS
    'Reset a projection''s read model and replay it from a time: every event created at or after it';

-- Correlation for process managers: the metadata of an event appended in
-- reaction to another carries its correlation and causation ids.
CREATE FUNCTION event_store.es_caused_by(event event_store.es_event, metadata jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF event IS NULL OR event.event_id IS NULL THEN
        RAISE EXCEPTION 'event must not be null' USING ERRCODE = '22004';
    END IF;
    RETURN coalesce(metadata, '{}'::jsonb)
        || jsonb_build_object(
             'correlation_id', coalesce(event.metadata ->> 'correlation_id', event.event_id::text),
             'causation_id', event.event_id::text);
END $$;

COMMENT ON FUNCTION event_store.es_caused_by(event_store.es_event, jsonb) IS
    'Metadata for an event appended in reaction to another: its correlation id (inherited) and causation id';

-- One page of a projection, in the caller's transaction: read the page
-- after the checkpoint, call the handler, save the checkpoint.  On an
-- error the page is applied event by event up to the failing one, which
-- is retried after the backoff, then parked (on_error = skip) or faults
-- the projection (on_error = pause).  Returns the events consumed (applied
-- or parked), -1 if none was and the first failed, NULL if another session
-- holds the projection.
CREATE FUNCTION event_store._es_project_page(projection text, upto bigint DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p event_store.projections;
    page event_store.es_event[];
    reached bigint;
    n integer;
    i integer;
    failed event_store.es_event;
    st text;
    msg text;
    ctx text;
    tries integer;
    applied boolean;
BEGIN
    PERFORM event_store._es_check_not_in_handler();
    SELECT * INTO p FROM event_store.projections j WHERE j.name = projection
       FOR NO KEY UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF p.state <> 'running' OR p.retry_at > clock_timestamp() OR p.position >= upto THEN
        RETURN 0;
    END IF;
    -- (upto: no event above it, for es_run_projection's caller)
    IF p.category IS NOT NULL THEN
        SELECT array_agg(e ORDER BY e.position) INTO page
          FROM event_store.es_read_category(p.category, p.position, p.page_size) e
         WHERE upto IS NULL OR e.position <= upto;
    ELSE
        SELECT array_agg(e ORDER BY e.position) INTO page
          FROM event_store.es_read_all(p.position, p.page_size, p.types) e
         WHERE upto IS NULL OR e.position <= upto;
    END IF;
    reached := least(greatest(event_store.es_feed_reached(), p.position), upto);
    n := coalesce(cardinality(page), 0);
    IF n = 0 THEN
        IF reached > p.position THEN
            UPDATE event_store.projections j SET position = reached, saved_at = now()
             WHERE j.name = p.name;
        END IF;
        RETURN 0;
    END IF;

    BEGIN
        PERFORM event_store._es_call_handler(p.name, p.handler, p.shape, p.owner, page);
        applied := true;
    EXCEPTION WHEN OTHERS THEN
        applied := false;   -- find the failing event below
    END;

    FOR i IN 1 .. n LOOP
        EXIT WHEN applied;
        BEGIN
            PERFORM event_store._es_call_handler(p.name, p.handler, p.shape, p.owner, page[i:i]);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                                    ctx = PG_EXCEPTION_CONTEXT;
            failed := page[i];
            -- a count of attempts is the failing event's
            tries := CASE WHEN p.error_position = failed.position THEN least(p.attempts, 999) + 1 ELSE 1 END;
            UPDATE event_store.projections j
               SET position = CASE WHEN i > 1 THEN page[i - 1].position ELSE j.position END,
                   saved_at = CASE WHEN i > 1 THEN now() ELSE j.saved_at END,
                   processed = j.processed + (i - 1),
                   last_processed_at = CASE WHEN i > 1 THEN now() ELSE j.last_processed_at END,
                   attempts = tries,
                   retry_at = clock_timestamp()
                              + least(j.backoff * least(power(2, tries - 1), 1024)::integer, interval '1 day'),
                   error_position = failed.position, error_sqlstate = st,
                   error_message = msg, error_context = ctx, error_at = clock_timestamp()
             WHERE j.name = p.name;
            IF tries >= p.max_attempts THEN
                -- skip parks an event whose data the handler refuses; an error
                -- that is not the event's (a missing function or privilege, a
                -- lock, a timeout, a resource, a serialization failure) would
                -- refuse every event: the projection faults instead
                IF p.on_error = 'skip' AND substr(st, 1, 2) NOT IN ('08', '40', '42', '53', '54', '55', '57', '58', 'XX') THEN
                    INSERT INTO event_store.dead_letters
                        (consumer, owner, position, stream, version, type, event_id, attempts,
                         sqlstate, message, context)
                    VALUES (p.name, p.owner, failed.position, failed.stream, failed.version, failed.type,
                            failed.event_id, tries, st, msg, ctx)
                    ON CONFLICT ON CONSTRAINT dead_letters_pkey DO UPDATE
                       SET attempts = excluded.attempts, sqlstate = excluded.sqlstate,
                           message = excluded.message, context = excluded.context,
                           failed_at = excluded.failed_at
                     WHERE dead_letters.owner = excluded.owner;
                    UPDATE event_store.projections j
                       SET position = failed.position, saved_at = now(), attempts = 0, retry_at = NULL,
                           dead_lettered = j.dead_lettered + 1
                     WHERE j.name = p.name;
                    RETURN i;
                END IF;
                UPDATE event_store.projections j SET state = 'faulted', retry_at = NULL
                 WHERE j.name = p.name;
            END IF;
            RETURN CASE WHEN i > 1 THEN i - 1 ELSE -1 END;
        END;
    END LOOP;
    -- the page applied (or every event passed on its own: the failure did
    -- not come back)
    UPDATE event_store.projections j
       SET position = reached, saved_at = now(), attempts = 0, retry_at = NULL,
           processed = j.processed + n, last_processed_at = now()
     WHERE j.name = p.name;
    RETURN n;
END $$;

-- A page that failed outside its handler's exception block (a timeout, a
-- cancel, an assertion, an error of the page itself): counted as an attempt
-- of the projection, retried after its backoff, then faulted (never
-- skipped: it may not be the event's fault).  The runner calls it in a
-- transaction of its own.
CREATE FUNCTION event_store._es_project_failed(projection text, sqlstate text, message text)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p event_store.projections;
    tries integer;
BEGIN
    SELECT * INTO p FROM event_store.projections j WHERE j.name = projection
       FOR NO KEY UPDATE SKIP LOCKED;
    IF NOT FOUND OR p.state <> 'running' THEN
        RETURN;
    END IF;
    tries := least(p.attempts, 999) + 1;
    UPDATE event_store.projections j
       SET attempts = tries,
           retry_at = clock_timestamp()
                      + least(j.backoff * least(power(2, tries - 1), 1024)::integer, interval '1 day'),
           error_position = NULL, error_sqlstate = _es_project_failed.sqlstate,
           error_message = _es_project_failed.message, error_context = 'the page, outside the handler',
           error_at = clock_timestamp(),
           state = CASE WHEN tries >= j.max_attempts THEN 'faulted' ELSE j.state END
     WHERE j.name = p.name;
END $$;

-- Run up to max_pages pages of a projection now, in this transaction, as
-- the role that registered it (a client's own loop, a test, a catch-up
-- from psql).  Returns the events applied.
CREATE FUNCTION event_store.es_run_projection(name text, max_pages integer DEFAULT 1,
                                              upto bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p event_store.projections;
    total bigint := 0;
    got integer;
BEGIN
    IF max_pages IS NULL OR max_pages < 1 THEN
        RAISE EXCEPTION 'max_pages must be at least 1' USING ERRCODE = '22023';
    END IF;
    p := event_store._es_projection_for_update(name);
    FOR i IN 1 .. max_pages LOOP
        got := event_store._es_project_page(name, upto);
        EXIT WHEN got IS NULL OR got <= 0;
        total := total + got;
    END LOOP;
    RETURN total;
END $$;

COMMENT ON FUNCTION event_store.es_run_projection(text, integer, bigint) IS
    'Run pages of a projection now, in the calling transaction';

-- The status of every projection the caller may control, with its lag.
-- Safe on a standby: what cannot be told there is NULL.
CREATE VIEW event_store.es_projections WITH (security_barrier) AS
SELECT j.name, j.state, j.handler, j.category, j.types, j.owner,
       j.position, h.head,
       h.head - least(j.position, h.head) AS lag_positions,
       event_store._es_lag_seconds(j.position, h.head) AS lag_seconds,
       j.processed, j.dead_lettered, j.last_processed_at,
       j.attempts, j.retry_at,
       j.error_position, j.error_sqlstate, j.error_message, j.error_context, j.error_at,
       j.rebuild_to,
       CASE WHEN j.rebuild_to IS NULL THEN NULL
            WHEN j.rebuild_to = 0 OR j.position >= j.rebuild_to THEN 1.0::double precision
            ELSE (j.position::double precision / j.rebuild_to) END AS rebuild_progress,
       j.rebuild_started_at
  FROM event_store.projections j
 CROSS JOIN (SELECT event_store._es_head_if_known() AS head) h
 WHERE event_store._es_acts_for(j.owner);

COMMENT ON VIEW event_store.es_projections IS
    'Projections the caller controls: state, checkpoint, lag, last error, rebuild progress';

CREATE VIEW event_store.es_dead_letters WITH (security_barrier) AS
SELECT d.* FROM event_store.dead_letters d
 WHERE event_store._es_acts_for(d.owner);

COMMENT ON VIEW event_store.es_dead_letters IS
    'Events the caller''s projections skipped, with their last error';

-- Who may register projections is the administrator's choice, as for
-- checkpoints: GRANT SELECT, INSERT, UPDATE, DELETE ON event_store.projections,
-- event_store.dead_letters TO a role, and SELECT on events (a handler reads
-- the feed) and on the views es_projections and es_dead_letters.  Row-level security keeps each role to the projections of the
-- roles it is a member of; the trigger below keeps every row runnable and
-- never run as a superuser.
REVOKE ALL ON TABLE event_store.projections, event_store.dead_letters,
    event_store.es_projections, event_store.es_dead_letters FROM PUBLIC;
ALTER TABLE event_store.projections ENABLE ROW LEVEL SECURITY;
ALTER TABLE event_store.dead_letters ENABLE ROW LEVEL SECURITY;
CREATE POLICY projections_of_member ON event_store.projections
    USING (event_store._es_acts_for(owner))
    WITH CHECK (event_store._es_acts_for(owner));
-- a dead letter belongs to a projection of the same owner
CREATE POLICY dead_letters_of_member ON event_store.dead_letters
    USING (event_store._es_acts_for(owner))
    WITH CHECK (event_store._es_acts_for(owner)
                AND EXISTS (SELECT 1 FROM event_store.projections j
                             WHERE j.name = consumer AND j.owner = dead_letters.owner));

-- Every row of projections, however written: a valid name, a handler of
-- the right shape, an owner that exists and is not a superuser, a valid
-- filter (checked when those columns change).  Not the privileges: a
-- restore loads the rows before the grants; every page checks them.
CREATE FUNCTION event_store._es_projections_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM event_store._es_check_consumer(NEW.name);
    IF TG_OP = 'UPDATE' AND NEW.handler IS NOT DISTINCT FROM OLD.handler
       AND NEW.shape IS NOT DISTINCT FROM OLD.shape
       AND NEW.reset_handler IS NOT DISTINCT FROM OLD.reset_handler
       AND NEW.owner IS NOT DISTINCT FROM OLD.owner
       AND NEW.category IS NOT DISTINCT FROM OLD.category
       AND NEW.types IS NOT DISTINCT FROM OLD.types THEN
        RETURN NEW;
    END IF;
    PERFORM event_store._es_check_filter(NEW.category, NEW.types);
    PERFORM event_store._es_check_projection_row(NEW.handler, NEW.shape, NEW.reset_handler, NEW.owner,
                                                 privileges => false);
    RETURN NEW;
END $$;
REVOKE ALL ON FUNCTION event_store._es_projections_check() FROM PUBLIC;
CREATE TRIGGER projections_check
    BEFORE INSERT OR UPDATE ON event_store.projections
    FOR EACH ROW EXECUTE FUNCTION event_store._es_projections_check();
ALTER TABLE event_store.projections ENABLE ALWAYS TRIGGER projections_check;

-- A projection's dead letters go with it, however its row is deleted (a
-- name registered again later starts with none).
CREATE FUNCTION event_store._es_projections_deleted() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM event_store.dead_letters d WHERE d.consumer = OLD.name AND d.owner = OLD.owner;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION event_store._es_projections_deleted() FROM PUBLIC;
CREATE TRIGGER projections_deleted
    AFTER DELETE ON event_store.projections
    FOR EACH ROW EXECUTE FUNCTION event_store._es_projections_deleted();
ALTER TABLE event_store.projections ENABLE ALWAYS TRIGGER projections_deleted;

-- Operations ----------------------------------------------------------------
-- What a monitoring system reads: the counters of the database's work, and
-- every consumer's and projection's position and lag.  pg_monitor may read
-- both, and nothing else of the extension (docs/operations.md).

CREATE FUNCTION event_store.es_stats(
    OUT database name,
    OUT transactions bigint,
    OUT events bigint,
    OUT bytes bigint,
    OUT rolled_back bigint,
    OUT conflicts bigint,
    OUT idempotent_retries bigint,
    OUT notifications bigint,
    OUT notifier_start_failures bigint,
    OUT erasures bigint,
    OUT notifier_running boolean,
    OUT head bigint,
    OUT oldest_xact_pid integer,
    OUT oldest_xact_seconds double precision,
    OUT stats_reset timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'es_stats'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION event_store.es_stats() IS
    'Counters of the database''s appends, conflicts, retries, notifications and erasures since the server started, with the feed head and the oldest appending transaction';

CREATE FUNCTION event_store.es_stats_reset()
RETURNS void
AS 'MODULE_PATHNAME', 'es_stats_reset_sql'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION event_store.es_stats_reset() IS
    'Start the database''s counters of es_stats() from zero';

-- One row per checkpoint consumer and per projection: where it is, how far
-- behind (in positions, and in seconds since the first event it has not
-- read was created: one probe of the primary key, whatever the backlog),
-- and how long since it saved its checkpoint.  Safe on a standby: what
-- cannot be told there is NULL.  Error messages are not shown: they may
-- quote events.
CREATE VIEW event_store.es_consumer_metrics AS
SELECT 'consumer'::text AS kind, c.consumer AS name, NULL::text AS state, 0 AS faulted,
       c.position, h.head,
       h.head - least(c.position, h.head) AS lag_positions,
       event_store._es_lag_seconds(c.position, h.head) AS lag_seconds,
       -- (a role that may write checkpoints may write any time there)
       CASE WHEN isfinite(c.updated_at)
            THEN extract(epoch FROM pg_catalog.clock_timestamp() - c.updated_at)::double precision
       END AS seconds_since_save,
       NULL::bigint AS processed, NULL::bigint AS dead_lettered, NULL::integer AS attempts,
       0 AS rebuilding, NULL::double precision AS rebuild_progress
  FROM event_store.checkpoints c
 CROSS JOIN (SELECT event_store._es_head_if_known() AS head) h
UNION ALL
SELECT 'projection', j.name, j.state, (j.state = 'faulted')::integer,
       j.position, h.head,
       h.head - least(j.position, h.head),
       event_store._es_lag_seconds(j.position, h.head),
       extract(epoch FROM pg_catalog.clock_timestamp() - j.saved_at)::double precision,
       j.processed, j.dead_lettered, j.attempts,
       (j.rebuild_to IS NOT NULL AND j.position < j.rebuild_to)::integer,
       CASE WHEN j.rebuild_to IS NULL THEN NULL
            WHEN j.rebuild_to = 0 OR j.position >= j.rebuild_to THEN 1.0::double precision
            ELSE (j.position::double precision / j.rebuild_to) END
  FROM event_store.projections j
 CROSS JOIN (SELECT event_store._es_head_if_known() AS head) h;

COMMENT ON VIEW event_store.es_consumer_metrics IS
    'Every checkpoint consumer and projection: position, lag in positions and seconds, time since the last save (for monitoring)';

REVOKE ALL ON FUNCTION event_store.es_stats(), event_store.es_stats_reset() FROM PUBLIC;
REVOKE ALL ON TABLE event_store.es_consumer_metrics FROM PUBLIC;
GRANT EXECUTE ON FUNCTION event_store.es_stats() TO pg_monitor;
GRANT SELECT ON TABLE event_store.es_consumer_metrics TO pg_monitor;
