-- Naive SQL, as the usual guidelines write it: a streams table holding each
-- stream's version, an events table of the same shape as event_store's (same
-- indexes, a foreign key to the stream), and a client that, in one
-- transaction, locks the stream row (inserting it when absent), compares
-- versions, inserts the events and updates the stream (see naive_*.sql).
-- (The extension is installed only for the same id default and category
-- function.)
CREATE EXTENSION event_store;

CREATE TABLE streams (
    name        text COLLATE "C" PRIMARY KEY,
    version     bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

\ir events_table.sql
ALTER TABLE events ADD FOREIGN KEY (stream) REFERENCES streams (name);

CREATE FUNCTION bench_preload(prefix text, first int, last int) RETURNS bigint
LANGUAGE sql AS $$
  INSERT INTO streams (name, version)
  SELECT prefix || i, 1 FROM generate_series(first, last) i;
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
  SELECT c, split_part(name, '-', 2)::int % c, sum(version - 1)
    FROM streams WHERE name LIKE 'w1e' || c || '-%' GROUP BY 2;
$$;
