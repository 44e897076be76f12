-- es_append: both forms, expected versions, conflicts, idempotent retries.
SET search_path = event_store, public;
-- positions are shown relative to the head before this file
SELECT es_head_position() AS p0 \gset

-- A new stream (expected version 0), two events.
SELECT stream, first_version, last_version,
       first_position - :p0 AS first_pos, last_position - :p0 AS last_pos
  FROM es_append('order-1', 0, '[
    {"type": "OrderPlaced", "data": {"total": 99.98}, "metadata": {"correlation_id": "c-1"}},
    {"type": "ItemAdded", "data": {"sku": "A-1"}}]');
-- At exactly version 2.
SELECT first_version, last_version, first_position - :p0 AS pos
  FROM es_append('order-1', 2, '[{"type": "OrderPaid", "data": {}}]');
-- At any version (NULL), single-event form.
SELECT first_version, last_version, first_position - :p0 AS pos
  FROM es_append('order-1', NULL, 'OrderShipped', '{"carrier": "post"}');
-- Single-event form with every argument, by name.
SELECT first_version, first_position - :p0 AS pos
  FROM es_append(stream => 'order-2', expected_version => 0, type => 'OrderPlaced',
                 data => '{}', metadata => '{"user_id": "u-7"}',
                 event_id => '5b1f3c2e-7a1d-4c3e-9a2b-0c1d2e3f4a5b', schema_version => 2);

-- Wrong expected versions: SQLSTATE V0001, versions in DETAIL, nothing stored.
SELECT regress.stored() AS before \gset
SELECT regress.err($$SELECT es_append('order-1', 0, 'X', '{}')$$);
SELECT regress.err($$SELECT es_append('order-1', 3, 'X', '{}')$$);
SELECT regress.err($$SELECT es_append('order-1', 9, '[{"type": "X", "data": {}}]')$$);
SELECT regress.err($$SELECT es_append('order-9', 1, 'X', '{}')$$);
SELECT regress.stored() = :'before' AS nothing_stored;

-- What is stored.
SELECT position - :p0 AS pos, stream, version, type, data, metadata, schema_version
  FROM events ORDER BY position;
SELECT id, name, category, version, created_at <= updated_at AS times_ordered, metadata
  FROM streams ORDER BY id;
-- Generated ids are version 7 UUIDs (RFC 9562 variant); a given id is kept.
SELECT count(*) AS generated,
       count(*) FILTER (WHERE substr(event_id::text, 15, 1) = '7'
                          AND substr(event_id::text, 20, 1) IN ('8', '9', 'a', 'b')) AS v7
  FROM events WHERE event_id <> '5b1f3c2e-7a1d-4c3e-9a2b-0c1d2e3f4a5b';
SELECT event_id FROM events WHERE stream = 'order-2';
-- created_at is the start of the appending transaction.
BEGIN;
SELECT last_version FROM es_append('order-3', 0, 'OrderPlaced', '{}');
SELECT created_at = now() AS transaction_time FROM events WHERE stream = 'order-3';
COMMIT;

-- Idempotent retries: the same event ids at the same place return the
-- original result and store nothing new.
SELECT first_version, last_version, first_position - :p0 AS first_pos, last_position - :p0 AS last_pos
  FROM es_append('acct-1', 0, '[
    {"type": "Opened", "data": {}, "id": "a0000000-0000-4000-8000-000000000001"},
    {"type": "Deposited", "data": {"amount": 10}, "id": "a0000000-0000-4000-8000-000000000002"}]');
SELECT regress.stored() AS before \gset
SELECT first_version, last_version, first_position - :p0 AS first_pos, last_position - :p0 AS last_pos
  FROM es_append('acct-1', 0, '[
    {"type": "Opened", "data": {}, "id": "a0000000-0000-4000-8000-000000000001"},
    {"type": "Deposited", "data": {"amount": 10}, "id": "a0000000-0000-4000-8000-000000000002"}]');
SELECT first_version, last_version
  FROM es_append('acct-1', NULL, '[
    {"type": "Opened", "data": {}, "id": "a0000000-0000-4000-8000-000000000001"},
    {"type": "Deposited", "data": {"amount": 10}, "id": "a0000000-0000-4000-8000-000000000002"}]');
SELECT first_version, last_version
  FROM es_append('acct-1', 0, 'Opened', '{}', NULL, 'a0000000-0000-4000-8000-000000000001');
SELECT regress.stored() = :'before' AS nothing_stored;
-- The same ids, but not where the client expects them: wrong version.
SELECT regress.err($$SELECT es_append('acct-1', 1, '[
    {"type": "Opened", "data": {}, "id": "a0000000-0000-4000-8000-000000000001"},
    {"type": "Deposited", "data": {"amount": 10}, "id": "a0000000-0000-4000-8000-000000000002"}]')$$);
-- Only part of the batch stored, or in another order: unique violation.
SELECT regress.err($$SELECT es_append('acct-1', NULL, '[
    {"type": "Deposited", "data": {"amount": 10}, "id": "a0000000-0000-4000-8000-000000000002"},
    {"type": "Withdrawn", "data": {"amount": 5}, "id": "a0000000-0000-4000-8000-000000000003"}]')$$);
SELECT regress.err($$SELECT es_append('acct-1', 0, '[
    {"type": "Deposited", "data": {"amount": 10}, "id": "a0000000-0000-4000-8000-000000000002"},
    {"type": "Opened", "data": {}, "id": "a0000000-0000-4000-8000-000000000001"}]')$$);
-- The same id in another stream.
SELECT regress.err($$SELECT es_append('acct-2', 0, 'Opened', '{}', NULL, 'a0000000-0000-4000-8000-000000000001')$$);
-- A duplicate id inside one batch.
SELECT regress.err($$SELECT es_append('acct-3', 0, '[
    {"type": "Opened", "data": {}, "id": "a0000000-0000-4000-8000-000000000009"},
    {"type": "Opened", "data": {}, "id": "a0000000-0000-4000-8000-000000000009"}]')$$);
SELECT regress.stored() = :'before' AS nothing_stored;

-- Several appends to one stream in one statement and in one transaction.
SELECT count(*) FROM (SELECT es_append('loop-1', NULL, 'Tick', jsonb_build_object('n', n))
                        FROM generate_series(1, 5) n) s;
BEGIN;
SELECT last_version FROM es_append('loop-1', 5, 'Tick', '{"n": 6}');
SELECT last_version FROM es_append('loop-1', 6, 'Tick', '{"n": 7}');
SELECT last_version FROM es_append('loop-1', NULL, 'Tick', '{"n": 8}');
COMMIT;
SELECT string_agg(version || ':' || (data->>'n'), ' ' ORDER BY version) FROM es_read_stream('loop-1');

-- One transaction may write to any number of streams: a stream is claimed
-- through its row, not through an entry of the shared lock table.
SELECT count(*) FROM (SELECT es_append('bulk-' || i, 0, 'Imported', '{}')
                        FROM generate_series(1, 20000) i) s;
INSERT INTO events (stream, type, data)
SELECT 'bulk-' || i, 'Inserted', '{}' FROM generate_series(1, 20000) i;
SELECT count(*) AS streams, min(version), max(version) FROM streams WHERE name LIKE 'bulk-%';

-- A batch of 1000 events: contiguous versions and positions.
SELECT first_version, last_version, last_position - first_position AS span
  FROM es_append('big-1', 0, (SELECT jsonb_agg(jsonb_build_object('type', 'T', 'data', jsonb_build_object('i', i)))
                                FROM generate_series(1, 1000) i));
SELECT count(*), min(version), max(version), max(position) - min(position) AS span,
       bool_and((data->>'i')::int = version) AS in_order
  FROM events WHERE stream = 'big-1';
-- A large payload goes through TOAST and comes back whole.
SELECT last_version FROM es_append('big-2', 0, 'Blob', jsonb_build_object('blob', repeat('x', 500000)));
SELECT length(data->>'blob') FROM es_read_stream('big-2');

-- Invariants over everything stored so far: versions 1..N, positions in
-- version order within a stream, streams.version = highest version.
SELECT stream FROM events GROUP BY stream HAVING count(*) <> max(version) OR min(version) <> 1;
SELECT stream FROM (SELECT stream, position,
                           lag(position) OVER (PARTITION BY stream ORDER BY version) AS prev
                      FROM events) s WHERE position <= prev;
SELECT s.name FROM streams s
  LEFT JOIN (SELECT stream, max(version) AS v FROM events GROUP BY stream) e ON e.stream = s.name
 WHERE s.version IS DISTINCT FROM e.v;
SELECT count(*) = count(DISTINCT position) AS positions_unique FROM events;

-- Categories.
SELECT es_category('order-42') AS a, es_category('order') AS b, es_category('a-b-c') AS c,
       es_category('$all-x') AS d;
