/* event_store--0.1.0.sql */

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

-- Storage -------------------------------------------------------------------

CREATE TABLE event_store.streams (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    name        text COLLATE "C" NOT NULL,
    category    text COLLATE "C" NOT NULL,
    version     bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    metadata    jsonb NOT NULL DEFAULT '{}',
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
COMMENT ON COLUMN event_store.streams.updated_at IS 'Start of the transaction that last appended';
COMMENT ON COLUMN event_store.streams.metadata IS 'Stream metadata (a JSON object)';

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

COMMENT ON TABLE event_store.events IS 'The log: immutable events, in position order';
COMMENT ON COLUMN event_store.events.position IS 'Place in the database-wide log; increases in the order events become readable';
COMMENT ON COLUMN event_store.events.stream IS 'Name of the stream the event belongs to';
COMMENT ON COLUMN event_store.events.version IS 'Place in its stream: 1, 2, 3 ... without gaps';
COMMENT ON COLUMN event_store.events.type IS 'Event type, e.g. OrderPlaced';
COMMENT ON COLUMN event_store.events.data IS 'Event payload';
COMMENT ON COLUMN event_store.events.metadata IS 'Event metadata (a JSON object), or NULL';
COMMENT ON COLUMN event_store.events.event_id IS 'Unique event id, from the client or generated (UUID version 7)';
COMMENT ON COLUMN event_store.events.schema_version IS 'Version of the event''s data schema';
COMMENT ON COLUMN event_store.events.created_at IS 'Start of the appending transaction';

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

-- pg_dump keeps the rows of these tables.  Events are dumped in position
-- order, so that a restore through the numbering trigger sees every stream's
-- versions in order.
SELECT pg_catalog.pg_extension_config_dump('event_store.streams', '');
SELECT pg_catalog.pg_extension_config_dump('event_store.streams_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('event_store.events', 'ORDER BY position');

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

CREATE FUNCTION event_store.es_read_stream(
    stream text,
    from_version bigint DEFAULT NULL,
    max_count bigint DEFAULT NULL,
    backwards boolean DEFAULT false)
RETURNS SETOF event_store.es_event
AS 'MODULE_PATHNAME', 'es_read_stream'
LANGUAGE C STABLE PARALLEL SAFE ROWS 100;

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
-- created for a row that ON CONFLICT DO NOTHING skipped is dropped again).
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

-- Privileges ----------------------------------------------------------------
-- The functions check table privileges themselves: INSERT on events to
-- append, SELECT on events (and streams) to read.  Grant them per role; see
-- the README.
REVOKE ALL ON TABLE event_store.events, event_store.streams FROM PUBLIC;
GRANT USAGE ON SCHEMA event_store TO PUBLIC;
