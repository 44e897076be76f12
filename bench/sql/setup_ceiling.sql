-- The ceiling: a table of the same shape, with the same indexes, written by
-- a raw INSERT whose client already knows the version.  No stream table, no
-- foreign key, no check of anything.  (The extension is installed only for
-- the same id default and category function as event_store's table.)
CREATE EXTENSION event_store;

\ir events_table.sql

CREATE FUNCTION bench_preload(prefix text, first int, last int) RETURNS bigint
LANGUAGE sql AS $$
  WITH ins AS (
    INSERT INTO events (stream, version, type, data, metadata)
    SELECT prefix || i, 1, 'Opened', bench_data(), bench_meta()
      FROM generate_series(first, last) i
    RETURNING 1)
  SELECT count(*) FROM ins
$$;

CREATE FUNCTION bench_refresh_state(c int) RETURNS void LANGUAGE sql AS $$
  DELETE FROM bench_state WHERE clients = c;
  INSERT INTO bench_state
  SELECT c, split_part(stream, '-', 2)::int % c, sum(v - 1)
    FROM (SELECT stream, max(version) AS v FROM events
           WHERE stream LIKE 'w1e' || c || '-%' GROUP BY stream) s
   GROUP BY 2;
$$;

CREATE FUNCTION bench_size() RETURNS TABLE (events bigint, bytes bigint) LANGUAGE sql AS $$
  SELECT (SELECT count(*) FROM events), pg_total_relation_size('events')
$$;
