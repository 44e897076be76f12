-- Every documented limit, on both sides: the value at the limit is accepted,
-- one past it refused with its SQLSTATE.  Nothing here is kept.
SET search_path = event_store, public;
BEGIN;

-- Stream names: 1 to 1000 bytes (multibyte characters count their bytes).
SELECT last_version FROM es_append(repeat('a', 1000), NULL, 'T', '{}');
SELECT regress.err(format('SELECT es_append(%L, NULL, %L, %L)', repeat('a', 1001), 'T', '{}'));
SELECT last_version FROM es_append(repeat(U&'\00E9', 500), NULL, 'T', '{}');
SELECT regress.err(format('SELECT es_append(%L, NULL, %L, %L)', 'x' || repeat(U&'\00E9', 500), 'T', '{}'));
SELECT last_version FROM es_append('a', NULL, 'T', '{}');
SELECT regress.err($$SELECT es_append('', NULL, 'T', '{}')$$);

-- Event types: 1 to 500 bytes.
SELECT last_version FROM es_append('limit-1', NULL, repeat('t', 500), '{}');
SELECT regress.err(format('SELECT es_append(%L, NULL, %L, %L)', 'limit-1', repeat('t', 501), '{}'));
SELECT regress.err($$SELECT es_append('limit-1', NULL, '', '{}')$$);

-- Events per append: 1 to 10000.
SELECT last_version FROM es_append('limit-2', NULL,
  (SELECT jsonb_agg(jsonb_build_object('type', 'T', 'data', i)) FROM generate_series(1, 10000) i));
SELECT regress.err($$SELECT es_append('limit-2', NULL,
  (SELECT jsonb_agg(jsonb_build_object('type', 'T', 'data', i)) FROM generate_series(1, 10001) i))$$);

-- Event size: type + data + metadata as stored, up to event_store.max_event_size.
SET LOCAL event_store.max_event_size = '1kB';
SELECT pg_column_size('T'::text) + pg_column_size(to_jsonb(repeat('x', 1007))) AS at_limit;
SELECT last_version FROM es_append('limit-3', NULL, 'T', to_jsonb(repeat('x', 1007)));
SELECT regress.err($$SELECT es_append('limit-3', NULL, 'T', to_jsonb(repeat('x', 1008)))$$);
RESET event_store.max_event_size;

-- Stream versions end at 2^63 - 1 (see errors.sql); positions at 2^62 (the
-- accepted side is not tried: a given position moves the register for good).
SELECT regress.err($$INSERT INTO events (position, stream, type, data)
                     VALUES (4611686018427387904, 'limit-4', 'T', '{}')$$);
SELECT regress.err($$INSERT INTO events (position, stream, type, data)
                     VALUES (0, 'limit-4', 'T', '{}')$$);

-- max_count: es_read_stream >= 1 or NULL; the feed 1 to 10000.
SELECT count(*) FROM es_read_stream('limit-2', NULL, 1);
SELECT regress.err($$SELECT * FROM es_read_stream('limit-2', NULL, 0)$$);
SELECT count(*) FROM es_read_stream('limit-2', NULL, NULL);
SELECT count(*) <= 10000 AS accepted FROM es_read_all(0, 10000);
SELECT regress.err($$SELECT * FROM es_read_all(0, 10001)$$);
SELECT count(*) <= 10000 AS accepted FROM es_read_category('limit', 0, 10000);
SELECT regress.err($$SELECT * FROM es_read_category('limit', 0, 10001)$$);

-- types of es_read_all: 1 to 100.
SELECT count(*) FROM es_read_all(0, 10, (SELECT array_agg('T' || i) FROM generate_series(1, 100) i));
SELECT regress.err($$SELECT * FROM es_read_all(0, 10, (SELECT array_agg('T' || i) FROM generate_series(1, 101) i))$$);

-- consumer_size: 1 to 1024.
SELECT count(*) FROM es_read_category('limit', 0, 10, 1023, 1024);
SELECT regress.err($$SELECT * FROM es_read_category('limit', 0, 10, 0, 1025)$$);
SELECT es_consumer_member('limit-1', 1024) BETWEEN 0 AND 1023 AS member_in_range;
SELECT regress.err($$SELECT es_consumer_member('limit-1', 1025)$$);

-- consumer names: 1 to 200 bytes.
SELECT es_checkpoint_save(repeat('c', 200), 1);
SELECT regress.err(format('SELECT es_checkpoint_save(%L, 1)', repeat('c', 201)));
SELECT regress.err($$SELECT es_checkpoint_save('', 1)$$);

ROLLBACK;
