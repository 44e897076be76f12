-- event_store: the extension itself.
CREATE EXTENSION event_store;

CREATE FUNCTION bench_preload(prefix text, first int, last int) RETURNS bigint
LANGUAGE sql AS $$
  SELECT count(event_store.es_append(prefix || i, 0, 'Opened', bench_data(), bench_meta()))
    FROM generate_series(first, last) i
$$;

CREATE FUNCTION bench_refresh_state(c int) RETURNS void LANGUAGE sql AS $$
  DELETE FROM bench_state WHERE clients = c;
  INSERT INTO bench_state
  SELECT c, split_part(name, '-', 2)::int % c, sum(version - 1)
    FROM event_store.streams WHERE name LIKE 'w1e' || c || '-%' GROUP BY 2;
$$;

CREATE FUNCTION bench_size() RETURNS TABLE (events bigint, bytes bigint) LANGUAGE sql AS $$
  SELECT (SELECT count(*) FROM event_store.events),
         pg_total_relation_size('event_store.events') + pg_total_relation_size('event_store.streams')
$$;
