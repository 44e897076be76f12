-- The PL/pgSQL baseline (bench/plpgsql_event_store.sql is loaded first).
CREATE FUNCTION bench_preload(prefix text, first int, last int) RETURNS bigint
LANGUAGE sql AS $$
  INSERT INTO streams (name, category, version)
  SELECT prefix || i, event_store.es_category(prefix || i), 1 FROM generate_series(first, last) i;
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
