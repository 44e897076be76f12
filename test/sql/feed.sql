-- The feed: es_read_all, es_read_category, consumer groups, checkpoints.
SET search_path = event_store, public;
SELECT es_head_position() AS p0 \gset
SELECT count(*) FROM (
  SELECT es_append(c || '-' || (i % 5), NULL, CASE WHEN i % 10 = 0 THEN 'Rare' ELSE 'Common' END,
                   jsonb_build_object('i', i))
    FROM generate_series(1, 100) i, unnest(ARRAY['cart', 'payment']) c) s;

-- In position order, in pages: after_position is the last position read.
SELECT string_agg((position - :p0)::text, ' ' ORDER BY position) FROM es_read_all(:p0, 5);
SELECT string_agg((position - :p0)::text, ' ' ORDER BY position) FROM es_read_all(:p0 + 5, 5);
SELECT count(*), min(position) - :p0 AS first, max(position) - :p0 AS last FROM es_read_all(:p0, 10000);
SELECT count(*) FROM es_read_all(es_head_position());
-- The default reads from the start, 1000 at a time.
SELECT count(*) = least(1000, (SELECT count(*) FROM events)) AS default_page FROM es_read_all();
-- Every column of es_event.
SELECT pg_typeof(e), e.stream, e.version, e.type, e.data FROM es_read_all(:p0, 1) e;

-- Only some types (an index per type, merged by position).
SELECT string_agg((position - :p0)::text || type, ' ' ORDER BY position)
  FROM es_read_all(:p0, 7, ARRAY['Rare']);
SELECT count(*), count(*) FILTER (WHERE type = 'Rare') AS rare
  FROM es_read_all(:p0, 10000, ARRAY['Rare', 'Common', 'Rare']);
SELECT count(*) FROM es_read_all(:p0, 10000, ARRAY['NoSuchType']);

-- A category, and a consumer group of 3 that shares out its streams.
SELECT count(*), count(DISTINCT stream) FROM es_read_category('payment', :p0, 10000);
SELECT member, count(*) AS events, string_agg(DISTINCT stream, ' ') AS streams
  FROM generate_series(0, 2) member, LATERAL es_read_category('cart', :p0, 10000, member, 3)
 GROUP BY member ORDER BY member;
-- The member of a stream: FNV-1a 64 of the name, modulo the group size.
SELECT s, es_consumer_member(s, 3) AS of_3, es_consumer_member(s, 4) AS of_4
  FROM unnest(ARRAY['order-1', 'order-2', 'account-42', U&'\00E9-1']) s;
SELECT bool_and(es_consumer_member(stream, 3) = m) AS each_stream_to_its_member
  FROM generate_series(0, 2) m, LATERAL es_read_category('cart', :p0, 10000, m, 3);

-- Bad input.
SELECT regress.err($$SELECT * FROM es_read_all(-1)$$);
SELECT regress.err($$SELECT * FROM es_read_all(NULL)$$);
SELECT regress.err($$SELECT * FROM es_read_all(0, 0)$$);
SELECT regress.err($$SELECT * FROM es_read_all(0, -5)$$);
SELECT regress.err($$SELECT * FROM es_read_all(0, 10001)$$);
SELECT count(*) <= 10000 AS cap_accepted FROM es_read_all(0, 10000);
SELECT regress.err($$SELECT * FROM es_read_all(0, NULL)$$);
SELECT regress.err($$SELECT * FROM es_read_all(0, 10, ARRAY[]::text[])$$);
SELECT regress.err($$SELECT * FROM es_read_all(0, 10, ARRAY['A', NULL])$$);
SELECT regress.err($$SELECT * FROM es_read_all(0, 10, ARRAY[['A'], ['B']])$$);
SELECT regress.err($$SELECT * FROM es_read_all(0, 10, ARRAY['A', ''])$$);
SELECT regress.err($$SELECT * FROM es_read_all(0, 10, (SELECT array_agg('T' || i) FROM generate_series(1, 101) i))$$);
SELECT regress.err($$SELECT * FROM es_read_category(NULL)$$);
SELECT regress.err($$SELECT * FROM es_read_category('')$$);
SELECT regress.err($$SELECT * FROM es_read_category('cart-1')$$);
SELECT regress.err($$SELECT * FROM es_read_category('cart', -1)$$);
SELECT regress.err($$SELECT * FROM es_read_category('cart', 0, 0)$$);
SELECT regress.err($$SELECT * FROM es_read_category('cart', 0, 10, 0, 0)$$);
SELECT regress.err($$SELECT * FROM es_read_category('cart', 0, 10, 3, 3)$$);
SELECT regress.err($$SELECT * FROM es_read_category('cart', 0, 10, -1, 3)$$);
SELECT regress.err($$SELECT * FROM es_read_category('cart', 0, 10, 0, 1025)$$);
SELECT regress.err($$SELECT * FROM es_read_category('cart', 0, 10, NULL, 3)$$);
SELECT regress.err($$SELECT es_consumer_member('cart-1', 0)$$);

-- Checkpoints.
SELECT es_checkpoint_get('orders_view') AS unknown_is_0;
SELECT es_checkpoint_save('orders_view', 10);
SELECT es_checkpoint_get('orders_view');
SELECT es_checkpoint_save('orders_view', 10) AS same_again;
SELECT es_checkpoint_save('orders_view', 25, 10) AS with_expected;
SELECT regress.err($$SELECT es_checkpoint_save('orders_view', 20)$$);
SELECT regress.err($$SELECT es_checkpoint_save('orders_view', 30, 10)$$);
SELECT regress.err($$SELECT es_checkpoint_save('new_view', 5, 3)$$);
SELECT es_checkpoint_save('new_view', 5, 0) AS expected_0_creates;
SELECT es_checkpoint_reset('orders_view', 3) AS replay_from;
SELECT es_checkpoint_get('orders_view');
SELECT regress.err($$SELECT es_checkpoint_reset('ghost_view', 0)$$);
SELECT regress.err($$SELECT es_checkpoint_save(NULL, 1)$$);
SELECT regress.err($$SELECT es_checkpoint_save('', 1)$$);
SELECT regress.err(format('SELECT es_checkpoint_save(%L, 1)', repeat('c', 201)));
SELECT regress.err($$SELECT es_checkpoint_save('orders_view', -1)$$);
SELECT regress.err($$SELECT es_checkpoint_save('orders_view', NULL)$$);
SELECT regress.err($$SELECT es_checkpoint_get(NULL)$$);
SELECT regress.err($$SELECT es_checkpoint_reset('orders_view', -1)$$);

-- An exactly-once projection inside the database: the read model and the
-- checkpoint change in one transaction, so a failure leaves neither changed
-- and a second run does not count anything twice.
CREATE TABLE regress.cart_totals (stream text PRIMARY KEY, total bigint NOT NULL);
CREATE FUNCTION regress.project_carts(page bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  from_position bigint := event_store.es_checkpoint_get('cart_totals');
  last bigint := from_position;
  e event_store.es_event;
BEGIN
  FOR e IN SELECT * FROM event_store.es_read_category('cart', from_position, page) LOOP
    INSERT INTO regress.cart_totals VALUES (e.stream, (e.data->>'i')::bigint)
    ON CONFLICT (stream) DO UPDATE SET total = cart_totals.total + excluded.total;
    last := e.position;
  END LOOP;
  PERFORM event_store.es_checkpoint_save('cart_totals', last, from_position);
  RETURN last;
END $$;
BEGIN;
SELECT regress.project_carts(30) > 0 AS projected;
SELECT 1 / 0;
ROLLBACK;
SELECT count(*) AS rows_after_rollback, es_checkpoint_get('cart_totals') AS checkpoint_after_rollback
  FROM regress.cart_totals;
SELECT regress.project_carts(30) > 0 AS page_1;
SELECT regress.project_carts(30) > 0 AS page_2;
SELECT regress.project_carts(30) > 0 AS page_3;
SELECT regress.project_carts(30) > 0 AS page_4;
SELECT es_checkpoint_get('cart_totals') AS done \gset
SELECT regress.project_carts(30) = :done AS nothing_left;
SELECT (SELECT sum(total) FROM regress.cart_totals) =
       (SELECT sum((data->>'i')::bigint) FROM es_read_category('cart', :p0, 10000)) AS every_event_once;

-- The consumers, with their lag behind the head: in positions, and in
-- seconds since the first unread event was created (0 when none is unread).
SELECT es_checkpoint_reset('orders_view', es_head_position() - 10) > 0 AS reset;
SELECT consumer, lag_positions = head - position AS lag_positions_ok,
       lag_seconds BETWEEN extract(epoch FROM now() - (
                   SELECT created_at FROM events e WHERE e.position > c.position ORDER BY e.position LIMIT 1))
                       AND extract(epoch FROM clock_timestamp() - (
                   SELECT created_at FROM events e WHERE e.position > c.position ORDER BY e.position LIMIT 1)) AS lag_seconds_ok,
       head = es_head_position() AS head_ok
  FROM es_consumers c WHERE consumer IN ('orders_view', 'cart_totals') ORDER BY consumer;
SELECT lag_positions FROM es_consumers WHERE consumer = 'orders_view';
-- One probe of the primary key, whatever the backlog: no count over events.
CREATE FUNCTION regress.explain_json(q text) RETURNS SETOF json
LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY EXECUTE 'EXPLAIN (FORMAT JSON) ' || q; END $$;
SELECT count(*) AS aggregates_over_events
  FROM (SELECT jsonb_path_query(plan, 'strict $.**."Node Type"') AS node
          FROM (SELECT (q::jsonb) -> 0 -> 'Plan' AS plan
                  FROM regress.explain_json('SELECT * FROM event_store.es_consumers') q) p) n
 WHERE node #>> '{}' = 'Aggregate';
