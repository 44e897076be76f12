-- A PL/pgSQL implementation of event_store's append contract, kept as a
-- baseline for the benchmarks: the same tables (shape, indexes, foreign
-- key), the same checks (stream name, expected version, every key of every
-- event, sizes, idempotent retries by event id) and the same result, written
-- the way a careful team would write it in PL/pgSQL: one UPDATE claims the
-- stream and returns its version, one INSERT ... SELECT writes the events.
--
-- One thing it does not do: positions come from a sequence, so a reader of
-- the whole log can skip an event committed late (event_store's register in
-- shared memory is what prevents that, and it has no PL/pgSQL equivalent
-- short of a global lock).  Its figures are therefore an upper bound for a
-- PL/pgSQL store with our guarantees.
--
-- (The extension is installed only for es_uuid_v7() and es_category(), which
-- make the same ids and the same category index as event_store's table.)
CREATE EXTENSION event_store;

CREATE TABLE streams (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text COLLATE "C" NOT NULL UNIQUE,
    category    text COLLATE "C" NOT NULL,
    version     bigint NOT NULL DEFAULT 0 CHECK (version >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    metadata    jsonb NOT NULL DEFAULT '{}'
) WITH (fillfactor = 70);

CREATE SEQUENCE events_position_seq;

CREATE TABLE events (
    position        bigint NOT NULL DEFAULT nextval('events_position_seq'),
    stream          text COLLATE "C" NOT NULL REFERENCES streams (name),
    version         bigint NOT NULL,
    type            text COLLATE "C" NOT NULL,
    data            jsonb NOT NULL,
    metadata        jsonb,
    event_id        uuid NOT NULL DEFAULT event_store.es_uuid_v7(),
    schema_version  integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (position),
    UNIQUE (stream, version),
    UNIQUE (event_id),
    CHECK (version >= 1),
    CHECK (schema_version >= 1)
);
CREATE INDEX ON events (type, position);
CREATE INDEX ON events ((event_store.es_category(stream)) COLLATE "C", position);
CREATE INDEX ON events USING brin (created_at) WITH (pages_per_range = 32);

CREATE TYPE append_result AS (
    stream text, first_version bigint, last_version bigint,
    first_position bigint, last_position bigint);

CREATE FUNCTION check_stream(p_stream text, p_expected bigint) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_stream IS NULL THEN
        RAISE EXCEPTION 'stream name must not be null' USING ERRCODE = '22004';
    END IF;
    IF p_stream = '' OR left(p_stream, 1) = '-' THEN
        RAISE EXCEPTION 'invalid stream name "%"', p_stream USING ERRCODE = '22023';
    END IF;
    IF octet_length(p_stream) > 1000 THEN
        RAISE EXCEPTION 'stream name is too long' USING ERRCODE = '54000';
    END IF;
    IF p_expected < 0 THEN
        RAISE EXCEPTION 'expected version must not be negative' USING ERRCODE = '22023';
    END IF;
END $$;

-- Claim the stream for n events: returns its version before them.
CREATE FUNCTION claim_stream(p_stream text, p_expected bigint, n int) RETURNS bigint
LANGUAGE plpgsql SET search_path = public, pg_catalog, pg_temp AS $$
DECLARE
    current bigint;
BEGIN
    LOOP
        UPDATE streams SET version = version + n, updated_at = now()
         WHERE name = p_stream RETURNING version - n INTO current;
        EXIT WHEN FOUND;
        INSERT INTO streams (name, category, version)
        VALUES (p_stream, event_store.es_category(p_stream), n)
        ON CONFLICT (name) DO NOTHING;
        IF FOUND THEN
            current := 0;
            EXIT;
        END IF;
    END LOOP;
    IF p_expected IS NOT NULL AND p_expected <> current THEN
        RAISE EXCEPTION 'wrong expected version for stream "%"', p_stream
            USING ERRCODE = 'V0001',
                  DETAIL = format('Expected version %s, actual version %s.', p_expected, current);
    END IF;
    RETURN current;
END $$;

-- The JSON form: es_append(stream, expected_version, events jsonb)
CREATE FUNCTION es_append(p_stream text, p_expected bigint, p_events jsonb)
RETURNS append_result
LANGUAGE plpgsql SET search_path = public, pg_catalog, pg_temp AS $$
DECLARE
    n int;
    bad record;
    current bigint;
    r append_result;
BEGIN
    PERFORM check_stream(p_stream, p_expected);
    IF p_events IS NULL THEN
        RAISE EXCEPTION 'events must not be null' USING ERRCODE = '22004';
    END IF;
    IF jsonb_typeof(p_events) <> 'array' THEN
        RAISE EXCEPTION 'events must be a JSON array of event objects' USING ERRCODE = '22023';
    END IF;
    n := jsonb_array_length(p_events);
    IF n = 0 THEN
        RAISE EXCEPTION 'events must not be an empty array' USING ERRCODE = '22023';
    ELSIF n > 10000 THEN
        RAISE EXCEPTION 'too many events in one append' USING ERRCODE = '54000';
    END IF;
    SELECT i, e INTO bad
      FROM jsonb_array_elements(p_events) WITH ORDINALITY AS a(e, i)
     WHERE jsonb_typeof(e) <> 'object'
        OR jsonb_typeof(e -> 'type') IS DISTINCT FROM 'string'
        OR e ->> 'type' = '' OR octet_length(e ->> 'type') > 500
        OR NOT e ? 'data'
        OR coalesce(jsonb_typeof(e -> 'metadata'), 'null') NOT IN ('object', 'null')
        OR coalesce(jsonb_typeof(e -> 'id'), 'null') NOT IN ('string', 'null')
        OR coalesce(jsonb_typeof(e -> 'schema_version'), 'null') NOT IN ('number', 'null')
        OR (e -> 'schema_version' IS NOT NULL AND jsonb_typeof(e -> 'schema_version') = 'number'
            AND ((e ->> 'schema_version')::numeric NOT BETWEEN 1 AND 2147483647
                 OR (e ->> 'schema_version')::numeric % 1 <> 0))
        OR EXISTS (SELECT 1 FROM jsonb_object_keys(e) k
                    WHERE k NOT IN ('type', 'data', 'metadata', 'id', 'schema_version'))
        OR octet_length((e -> 'data')::text) + octet_length(e ->> 'type')
           + coalesce(octet_length((e -> 'metadata')::text), 0) > 1048576
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'invalid event % of the append', bad.i USING ERRCODE = '22023';
    END IF;

    -- an idempotent retry: all ids stored, in order, in this stream
    IF p_events @? '$[*].id ? (@ != null)' THEN
        SELECT p_stream, min(ev.version), max(ev.version), min(ev.position), max(ev.position)
          INTO r
          FROM jsonb_array_elements(p_events) WITH ORDINALITY AS a(e, i)
          JOIN events ev ON ev.event_id = (a.e ->> 'id')::uuid;
        IF r.first_version IS NOT NULL THEN
            IF (SELECT count(*) FROM jsonb_array_elements(p_events) AS a(e)
                  JOIN events ev ON ev.event_id = (a.e ->> 'id')::uuid AND ev.stream = p_stream) <> n
               OR r.last_version - r.first_version + 1 <> n THEN
                RAISE EXCEPTION 'some event ids of the append already exist' USING ERRCODE = '23505';
            END IF;
            IF p_expected IS NOT NULL AND r.first_version <> p_expected + 1 THEN
                RAISE EXCEPTION 'wrong expected version for stream "%"', p_stream USING ERRCODE = 'V0001';
            END IF;
            RETURN r;
        END IF;
    END IF;

    current := claim_stream(p_stream, p_expected, n);
    WITH ins AS (
        INSERT INTO events (stream, version, type, data, metadata, event_id, schema_version)
        SELECT p_stream, current + a.i, a.e ->> 'type', a.e -> 'data',
               nullif(a.e -> 'metadata', 'null'),
               coalesce((a.e ->> 'id')::uuid, event_store.es_uuid_v7()),
               coalesce((a.e ->> 'schema_version')::int, 1)
          FROM jsonb_array_elements(p_events) WITH ORDINALITY AS a(e, i)
         ORDER BY a.i
        RETURNING position)
    SELECT min(position), max(position) INTO r.first_position, r.last_position FROM ins;
    r.stream := p_stream;
    r.first_version := current + 1;
    r.last_version := current + n;
    RETURN r;
END $$;

-- The single-event form
CREATE FUNCTION es_append(p_stream text, p_expected bigint, p_type text, p_data jsonb,
                          p_metadata jsonb DEFAULT NULL, p_event_id uuid DEFAULT NULL,
                          p_schema_version int DEFAULT 1)
RETURNS append_result
LANGUAGE plpgsql SET search_path = public, pg_catalog, pg_temp AS $$
DECLARE
    current bigint;
    r append_result;
BEGIN
    PERFORM check_stream(p_stream, p_expected);
    IF p_type IS NULL OR p_data IS NULL THEN
        RAISE EXCEPTION 'event type and data must not be null' USING ERRCODE = '22004';
    END IF;
    IF p_type = '' THEN
        RAISE EXCEPTION 'event type must not be empty' USING ERRCODE = '22023';
    ELSIF octet_length(p_type) > 500 THEN
        RAISE EXCEPTION 'event type is too long' USING ERRCODE = '54000';
    END IF;
    IF p_metadata IS NOT NULL AND jsonb_typeof(p_metadata) NOT IN ('object', 'null') THEN
        RAISE EXCEPTION 'event metadata must be a JSON object' USING ERRCODE = '22023';
    END IF;
    IF p_schema_version IS NOT NULL AND p_schema_version < 1 THEN
        RAISE EXCEPTION 'schema_version must be between 1 and 2147483647' USING ERRCODE = '22003';
    END IF;
    IF octet_length(p_data::text) + octet_length(p_type)
       + coalesce(octet_length(p_metadata::text), 0) > 1048576 THEN
        RAISE EXCEPTION 'event 1 is too large' USING ERRCODE = '54000';
    END IF;
    IF p_event_id IS NOT NULL THEN
        SELECT p_stream, version, version, position, position INTO r
          FROM events WHERE event_id = p_event_id;
        IF FOUND THEN
            IF r.stream IS DISTINCT FROM p_stream THEN
                RAISE EXCEPTION 'event id % already exists', p_event_id USING ERRCODE = '23505';
            END IF;
            RETURN r;
        END IF;
    END IF;

    current := claim_stream(p_stream, p_expected, 1);
    INSERT INTO events (stream, version, type, data, metadata, event_id, schema_version)
    VALUES (p_stream, current + 1, p_type, p_data, nullif(p_metadata, 'null'),
            coalesce(p_event_id, event_store.es_uuid_v7()), coalesce(p_schema_version, 1))
    RETURNING position INTO r.first_position;
    r.stream := p_stream;
    r.first_version := current + 1;
    r.last_version := current + 1;
    r.last_position := r.first_position;
    RETURN r;
END $$;
