-- pgTAP: the feed (es_read_all, es_read_category, consumer groups), the
-- consumer group hash (es_consumer_member), checkpoints (es_checkpoint_save,
-- es_checkpoint_get, es_checkpoint_reset) and the view es_consumers.
--
-- The feed never returns a position while a transaction that may still
-- commit a lower one is open, and this test transaction is such a
-- transaction as soon as it appends: from then on the feed is held back
-- for every reader, itself included, until it ends.  So the events read
-- here are committed by other sessions (dblink), and this transaction
-- appends only in the last section.  scripts/test.sh runs every file in a
-- fresh database; positions are checked relative to the head at the start
-- (pg_temp.p0()).  The committed events vanish with the database.
BEGIN;
SELECT plan(201);

-- The helpers of the SQL suites (test/helpers.sql): err(), stored(), remote().
\set helpers pg_temp
\ir ../helpers.sql

-- Helpers -----------------------------------------------------------------------

CREATE EXTENSION dblink;
-- Run a query returning one bigint in a session of its own (committed at once).
CREATE FUNCTION pg_temp.remote_value(sql text) RETURNS bigint LANGUAGE sql AS $$
  SELECT v FROM dblink(pg_temp.remote(), sql) AS t(v bigint)
$$;
-- Run a query returning one bigint on a named, open connection.
CREATE FUNCTION pg_temp.on_conn(conn text, sql text) RETURNS bigint LANGUAGE sql AS $$
  SELECT v FROM dblink(conn, sql) AS t(v bigint)
$$;
-- Append one event in a session of its own, committed; its position.
CREATE FUNCTION pg_temp.remote_append(stream text, type text) RETURNS bigint LANGUAGE sql AS $$
  SELECT pg_temp.remote_value(format(
    $f$SELECT last_position FROM event_store.es_append(%L, NULL, %L, '{}')$f$, stream, type))
$$;
-- The positions es_read_all returns in a fresh session, in the order returned.
CREATE FUNCTION pg_temp.remote_read(after bigint) RETURNS bigint[] LANGUAGE sql AS $$
  SELECT a FROM dblink(pg_temp.remote(), format(
    $f$SELECT coalesce(array_agg(e.position ORDER BY e.ordinality), '{}')
         FROM event_store.es_read_all(%s, 10000) WITH ORDINALITY AS e$f$, after)) AS t(a bigint[])
$$;
-- Positions handed out during the test, by name.
CREATE TEMP TABLE pos (name text PRIMARY KEY, position bigint NOT NULL);
CREATE FUNCTION pg_temp.remember(name text, p bigint) RETURNS bigint LANGUAGE sql AS $$
  INSERT INTO pos VALUES (name, p) RETURNING position
$$;
CREATE FUNCTION pg_temp.at(name text) RETURNS bigint LANGUAGE sql AS $$
  SELECT position FROM pos WHERE pos.name = at.name
$$;
CREATE FUNCTION pg_temp.p0() RETURNS bigint LANGUAGE sql AS $$ SELECT pg_temp.at('p0') $$;

-- The positions the feed returns, in the order it returns them.
CREATE FUNCTION pg_temp.read(after bigint, n bigint DEFAULT 10000, types text[] DEFAULT NULL)
RETURNS bigint[] LANGUAGE sql AS $$
  SELECT coalesce(array_agg(e.position ORDER BY e.ordinality), '{}')
    FROM event_store.es_read_all(after, n, types) WITH ORDINALITY AS e
$$;
CREATE FUNCTION pg_temp.read_category(category text, after bigint, n bigint DEFAULT 10000,
                                      member int DEFAULT 0, size int DEFAULT 1)
RETURNS bigint[] LANGUAGE sql AS $$
  SELECT coalesce(array_agg(e.position ORDER BY e.ordinality), '{}')
    FROM event_store.es_read_category(category, after, n, member, size) WITH ORDINALITY AS e
$$;

-- FNV-1a 64 of the name's bytes modulo the group size, written again in SQL
-- from the documented constants, to check es_consumer_member independently.
CREATE FUNCTION pg_temp.fnv_member(stream text, size int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  h numeric := 14695981039346656037;
  b bytea := convert_to(stream, getdatabaseencoding());
  low int;
BEGIN
  FOR i IN 0 .. length(b) - 1 LOOP
    low := (h % 256)::int;
    h := h - low + (low # get_byte(b, i));
    h := (h * 1099511628211) % 18446744073709551616;
  END LOOP;
  RETURN (h % size)::int;
END $$;

-- The reference: the committed events after a position, in position order,
-- read with a plain SELECT (equal to the feed when no append is in flight).
CREATE FUNCTION pg_temp.log(after bigint, n bigint, types text[] DEFAULT NULL)
RETURNS SETOF event_store.es_event LANGUAGE sql AS $$
  SELECT position, stream, version, type, data, metadata, event_id, schema_version, created_at
    FROM event_store.events
   WHERE position > after AND (types IS NULL OR type = ANY (types))
   ORDER BY position LIMIT n
$$;
CREATE FUNCTION pg_temp.log_category(category text, after bigint, n bigint,
                                     member int DEFAULT 0, size int DEFAULT 1)
RETURNS SETOF event_store.es_event LANGUAGE sql AS $$
  SELECT position, stream, version, type, data, metadata, event_id, schema_version, created_at
    FROM event_store.events
   WHERE position > after
     AND (stream = category OR stream LIKE category || '-%')
     AND pg_temp.fnv_member(stream, size) = member
   ORDER BY position LIMIT n
$$;
CREATE FUNCTION pg_temp.positions(after bigint, n bigint DEFAULT 10000, types text[] DEFAULT NULL)
RETURNS bigint[] LANGUAGE sql AS $$
  SELECT coalesce(array_agg(position ORDER BY position), '{}') FROM pg_temp.log(after, n, types)
$$;
CREATE FUNCTION pg_temp.positions_category(category text, after bigint, n bigint DEFAULT 10000,
                                           member int DEFAULT 0, size int DEFAULT 1)
RETURNS bigint[] LANGUAGE sql AS $$
  SELECT coalesce(array_agg(position ORDER BY position), '{}')
    FROM pg_temp.log_category(category, after, n, member, size)
$$;

-- Read the whole feed in pages, each after the last position of the one
-- before, as a consumer does; every position read, in order.
CREATE FUNCTION pg_temp.page_all(page bigint, types text[] DEFAULT NULL)
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
  after bigint := pg_temp.p0();
  got bigint[];
  result bigint[] := '{}';
BEGIN
  LOOP
    got := pg_temp.read(after, page, types);
    EXIT WHEN cardinality(got) = 0;
    IF cardinality(got) > page THEN
      RAISE EXCEPTION 'a page of % rows for max_count %', cardinality(got), page;
    END IF;
    result := result || got;
    after := got[cardinality(got)];
  END LOOP;
  RETURN result;
END $$;
CREATE FUNCTION pg_temp.page_category(category text, page bigint, member int, size int)
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
  after bigint := pg_temp.p0();
  got bigint[];
  result bigint[] := '{}';
BEGIN
  LOOP
    got := pg_temp.read_category(category, after, page, member, size);
    EXIT WHEN cardinality(got) = 0;
    IF cardinality(got) > page THEN
      RAISE EXCEPTION 'a page of % rows for max_count %', cardinality(got), page;
    END IF;
    result := result || got;
    after := got[cardinality(got)];
  END LOOP;
  RETURN result;
END $$;

-- Wait until a backend waits for a lock (at most 30 s); true if it does.
CREATE FUNCTION pg_temp.wait_until_blocked(pid int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1 .. 3000 LOOP
    IF cardinality(pg_blocking_pids(pid)) > 0 THEN
      RETURN true;
    END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
  RETURN false;
END $$;

-- The events, committed by other sessions --------------------------------------

INSERT INTO pos VALUES ('p0', event_store.es_head_position());

-- 63 events over nine streams of five categories: cart (cart-1, cart-2, the
-- stream "cart" itself, cart-a-b), cartx, Cart, car and pay; types Common,
-- Rare (i = 10, 20 ... 60), Other (i = 7, 14 ... 63 but not 70), and "rare"
-- (i = 33) and "Rarer" (i = 44) to show types are matched exactly.
SELECT lives_ok(
    $$ SELECT dblink_exec(pg_temp.remote(), $r$
         DO $do$
         DECLARE
           streams text[] := ARRAY['cart-1', 'cart-2', 'cart', 'cart-a-b', 'cartx-1', 'Cart-1',
                                   'car-1', 'pay-1', 'pay-2'];
         BEGIN
           FOR i IN 1 .. 63 LOOP
             PERFORM event_store.es_append(streams[1 + (i - 1) % 9], NULL,
               CASE WHEN i = 33 THEN 'rare' WHEN i = 44 THEN 'Rarer'
                    WHEN i % 10 = 0 THEN 'Rare' WHEN i % 7 = 0 THEN 'Other' ELSE 'Common' END,
               jsonb_build_object('i', i));
           END LOOP;
         END $do$ $r$) $$,
    'a second session commits 63 events over nine streams');
-- 80 events of 40 streams grp-1 ... grp-40, interleaved: stream s gets
-- s % 3 + 1 events.
SELECT lives_ok(
    $$ SELECT dblink_exec(pg_temp.remote(), $r$
         DO $do$
         BEGIN
           FOR k IN 1 .. 3 LOOP
             FOR s IN 1 .. 40 LOOP
               IF s % 3 + 1 >= k THEN
                 PERFORM event_store.es_append('grp-' || s, NULL, 'G', jsonb_build_object('s', s, 'k', k));
               END IF;
             END LOOP;
           END LOOP;
         END $do$ $r$) $$,
    'a second session commits 80 events to 40 streams of category grp');
-- 10500 more, beyond the 10000 a feed read returns at most.
SELECT is(
    pg_temp.remote_value($r$
      SELECT (event_store.es_append('bulk-1', 0,
                (SELECT jsonb_agg(jsonb_build_object('type', 'Bulk', 'data', jsonb_build_object('i', i)) ORDER BY i)
                   FROM generate_series(1, 10000) i))).last_version
           + (event_store.es_append('bulk-2', 0,
                (SELECT jsonb_agg(jsonb_build_object('type', 'Bulk', 'data', jsonb_build_object('i', i)) ORDER BY i)
                   FROM generate_series(1, 500) i))).last_version $r$),
    10500::bigint,
    'a second session commits 10500 events to bulk-1 and bulk-2');

SELECT results_eq(
    $$ SELECT count(*)::int, min(position) - pg_temp.p0(), max(position) - pg_temp.p0(),
              count(DISTINCT stream)::int
         FROM event_store.events WHERE position > pg_temp.p0() $$,
    $$ VALUES (10643, 1::bigint, 10643::bigint, 51) $$,
    '10643 events at positions p0+1 ... p0+10643, in 51 streams');
SELECT is(event_store.es_head_position(), pg_temp.p0() + 10643, 'the head is the last position');
SELECT results_eq(
    $$ SELECT stream, type, data FROM pg_temp.log(pg_temp.p0(), 4) $$,
    $$ VALUES ('cart-1'::text, 'Common'::text, '{"i":1}'::jsonb), ('cart-2', 'Common', '{"i":2}'),
              ('cart', 'Common', '{"i":3}'), ('cart-a-b', 'Common', '{"i":4}') $$,
    'the log starts with the events appended first');

-- es_read_all: order, pages, max_count ---------------------------------------------

SELECT results_eq(
    $$ SELECT * FROM event_store.es_read_all(pg_temp.p0(), 10000) $$,
    $$ SELECT * FROM pg_temp.log(pg_temp.p0(), 10000) $$,
    'es_read_all(p0, 10000): the first 10000 events after p0, every column, in position order');
SELECT is(cardinality(pg_temp.read(pg_temp.p0(), 10000)), 10000,
          'max_count 10000 (the cap) returns exactly 10000 of the 10643 events');
SELECT results_eq(
    $$ SELECT * FROM event_store.es_read_all(pg_temp.p0() + 10000, 10000) $$,
    $$ SELECT * FROM pg_temp.log(pg_temp.p0() + 10000, 10000) $$,
    'the next page, after the last position read: the remaining 643 events');
SELECT is(cardinality(pg_temp.read(pg_temp.p0() + 10000, 10000)), 643, 'the second page has 643 events');
SELECT results_eq(
    $$ SELECT position - pg_temp.p0(), stream, type FROM event_store.es_read_all(pg_temp.p0(), 5) $$,
    $$ VALUES (1::bigint, 'cart-1'::text, 'Common'::text), (2, 'cart-2', 'Common'),
              (3, 'cart', 'Common'), (4, 'cart-a-b', 'Common'), (5, 'cartx-1', 'Common') $$,
    'max_count 5: positions p0+1 ... p0+5');
SELECT results_eq(
    $$ SELECT position - pg_temp.p0(), stream, type FROM event_store.es_read_all(pg_temp.p0() + 5, 5) $$,
    $$ VALUES (6::bigint, 'Cart-1'::text, 'Common'::text), (7, 'car-1', 'Other'),
              (8, 'pay-1', 'Common'), (9, 'pay-2', 'Common'), (10, 'cart-1', 'Rare') $$,
    'the page after p0+5: positions p0+6 ... p0+10');
SELECT results_eq(
    $$ SELECT position - pg_temp.p0() FROM event_store.es_read_all(pg_temp.p0() + 62, 1) $$,
    ARRAY[63::bigint],
    'max_count 1: the one event after the position');
SELECT results_eq(
    $$ SELECT unnest(pg_temp.page_all(7)) $$,
    $$ SELECT unnest(pg_temp.positions(pg_temp.p0(), 100000)) $$,
    'pages of 7, each after the last position read: every event exactly once, in order');
SELECT results_eq(
    $$ SELECT unnest(pg_temp.page_all(1000)) $$,
    $$ SELECT unnest(pg_temp.positions(pg_temp.p0(), 100000)) $$,
    'pages of 1000: every event exactly once, in order');
SELECT results_eq(
    $$ SELECT unnest(pg_temp.page_all(10000)) $$,
    $$ SELECT unnest(pg_temp.positions(pg_temp.p0(), 100000)) $$,
    'pages of 10000: every event exactly once, in order');
SELECT results_eq(
    $$ SELECT * FROM event_store.es_read_all() $$,
    $$ SELECT * FROM pg_temp.log(0, 1000) $$,
    'es_read_all() reads from position 0, at most 1000 events');
SELECT is(cardinality(pg_temp.read(0, 1000)), 1000, 'the default page is 1000 events');
SELECT results_eq(
    $$ SELECT position - pg_temp.p0() FROM event_store.es_read_all(max_count => 2, after_position => pg_temp.p0() + 3) $$,
    ARRAY[4, 5]::bigint[],
    'named arguments');
SELECT is(pg_temp.read(event_store.es_head_position() - 1), ARRAY[event_store.es_head_position()],
          'after the position before the head: the last event');
SELECT is(pg_temp.read(event_store.es_head_position()), '{}'::bigint[],
          'after the head: nothing');
SELECT is(pg_temp.read(event_store.es_head_position() + 1000000), '{}'::bigint[],
          'after a position beyond the head: nothing');

SELECT throws_ok($$ SELECT * FROM event_store.es_read_all(0, 10001) $$,
                 '22023', 'max_count must be between 1 and 10000', 'max_count 10001 is refused');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_all(0, 0) $$,
                 '22023', 'max_count must be between 1 and 10000', 'max_count 0 is refused');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_all(0, -1) $$,
                 '22023', 'max_count must be between 1 and 10000', 'a negative max_count is refused');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_all(0, NULL) $$,
                 '22004', 'max_count must not be null', 'max_count NULL is refused');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_all(-1) $$,
                 '22023', 'after_position must not be negative', 'a negative after_position is refused');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_all(NULL) $$,
                 '22004', 'after_position must not be null', 'after_position NULL is refused');

-- es_read_all: the types filter ----------------------------------------------------

SELECT results_eq(
    $$ SELECT * FROM event_store.es_read_all(pg_temp.p0(), 100, ARRAY['Rare']) $$,
    $$ SELECT * FROM pg_temp.log(pg_temp.p0(), 100, ARRAY['Rare']) $$,
    'types {Rare}: only Rare events, every column, in position order');
SELECT results_eq(
    $$ SELECT position - pg_temp.p0() FROM event_store.es_read_all(pg_temp.p0(), 10000, ARRAY['Rare']) $$,
    ARRAY[10, 20, 30, 40, 50, 60]::bigint[],
    'types {Rare}: the six Rare events, and no other');
SELECT results_eq(
    $$ SELECT position - pg_temp.p0(), type FROM event_store.es_read_all(pg_temp.p0(), 100, ARRAY['Rare', 'Other']) $$,
    $$ VALUES (7::bigint, 'Other'::text), (10, 'Rare'), (14, 'Other'), (20, 'Rare'), (21, 'Other'),
              (28, 'Other'), (30, 'Rare'), (35, 'Other'), (40, 'Rare'), (42, 'Other'), (49, 'Other'),
              (50, 'Rare'), (56, 'Other'), (60, 'Rare'), (63, 'Other') $$,
    'types {Rare, Other}: both types merged in position order');
SELECT is(pg_temp.read(pg_temp.p0(), 100, ARRAY['Other', 'Rare']),
          pg_temp.read(pg_temp.p0(), 100, ARRAY['Rare', 'Other']),
          'the order of the types does not matter');
SELECT results_eq(
    $$ SELECT unnest(pg_temp.read(pg_temp.p0(), 100, ARRAY['Rare', 'Rare', 'Other', 'Rare', 'Other'])) $$,
    $$ SELECT unnest(pg_temp.positions(pg_temp.p0(), 100, ARRAY['Rare', 'Other'])) $$,
    'a type given twice returns each event once');
SELECT is(pg_temp.read(pg_temp.p0(), 10000, ARRAY['NoSuchType']), '{}'::bigint[],
          'an unknown type: nothing');
SELECT results_eq(
    $$ SELECT unnest(pg_temp.read(pg_temp.p0(), 100, ARRAY['NoSuchType', 'Rare', 'Zzz'])) $$,
    $$ SELECT unnest(pg_temp.positions(pg_temp.p0(), 100, ARRAY['Rare'])) $$,
    'unknown types next to a known one are ignored');
SELECT results_eq(
    $$ SELECT position - pg_temp.p0(), type FROM event_store.es_read_all(pg_temp.p0(), 100, ARRAY['rare']) $$,
    $$ VALUES (33::bigint, 'rare'::text) $$,
    'types are compared exactly: rare is not Rare');
SELECT is(pg_temp.read(pg_temp.p0(), 100, ARRAY['Rar', 'RARE', 'Rare ']), '{}'::bigint[],
          'no prefix, case or trailing-space match');
SELECT results_eq(
    $$ SELECT position - pg_temp.p0() FROM event_store.es_read_all(pg_temp.p0(), 3, ARRAY['Rare', 'Other']) $$,
    ARRAY[7, 10, 14]::bigint[],
    'types with max_count 3: the first three of the merged types');
SELECT results_eq(
    $$ SELECT position - pg_temp.p0() FROM event_store.es_read_all(pg_temp.p0() + 20, 3, ARRAY['Rare', 'Other']) $$,
    ARRAY[21, 28, 30]::bigint[],
    'types after a position: strictly after it');
SELECT results_eq(
    $$ SELECT unnest(pg_temp.page_all(2, ARRAY['Rare', 'Other', 'rare'])) $$,
    $$ SELECT unnest(pg_temp.positions(pg_temp.p0(), 10000, ARRAY['Rare', 'Other', 'rare'])) $$,
    'types in pages of 2: every matching event exactly once, in order');
SELECT results_eq(
    $$ SELECT * FROM event_store.es_read_all(pg_temp.p0(), 10000,
                    ARRAY['Common', 'Rare', 'Other', 'rare', 'Rarer', 'G', 'Bulk']) $$,
    $$ SELECT * FROM pg_temp.log(pg_temp.p0(), 10000) $$,
    'every type listed: the same 10000 events as without a filter');
SELECT results_eq(
    $$ SELECT unnest(pg_temp.read(pg_temp.p0(), 10000, ARRAY['Bulk'])) $$,
    $$ SELECT unnest(pg_temp.positions(pg_temp.p0(), 10000, ARRAY['Bulk'])) $$,
    'a type filter stops at max_count 10000 too');
SELECT is(cardinality(pg_temp.read(pg_temp.p0(), 10000, ARRAY['Bulk'])), 10000,
          'a type filter returns at most 10000');
SELECT lives_ok(
    $$ SELECT * FROM event_store.es_read_all(0, 1, (SELECT array_agg('T' || i) FROM generate_series(1, 100) i)) $$,
    '100 types are accepted');
SELECT throws_ok(
    $$ SELECT * FROM event_store.es_read_all(0, 1, (SELECT array_agg('T' || i) FROM generate_series(1, 101) i)) $$,
    '54000', 'too many types', '101 types are refused');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_all(0, 10, ARRAY[]::text[]) $$,
                 '22023', 'types must not be empty', 'an empty types array is refused');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_all(0, 10, ARRAY['Rare', NULL]) $$,
                 '22004', 'types must not contain nulls', 'a NULL type is refused');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_all(0, 10, ARRAY['Rare', '']) $$,
                 '22023', 'event type must not be empty', 'an empty type is refused');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_all(0, 10, ARRAY[['Rare'], ['Other']]) $$,
                 '22023', 'types must be a one-dimensional array', 'a two-dimensional types array is refused');

-- es_read_category ---------------------------------------------------------------

SELECT results_eq(
    $$ SELECT * FROM event_store.es_read_category('cart', pg_temp.p0(), 1000) $$,
    $$ SELECT * FROM pg_temp.log_category('cart', pg_temp.p0(), 1000) $$,
    'category cart: its events, every column, in position order');
SELECT results_eq(
    $$ SELECT stream, count(*)::int FROM event_store.es_read_category('cart', pg_temp.p0(), 1000)
        GROUP BY stream ORDER BY stream $$,
    $$ VALUES ('cart'::text, 7), ('cart-1', 7), ('cart-2', 7), ('cart-a-b', 7) $$,
    'category cart: cart-1, cart-2, cart-a-b and the stream "cart" itself; not cartx-1, Cart-1, car-1');
SELECT results_eq(
    $$ SELECT DISTINCT stream FROM event_store.es_read_category('cartx', pg_temp.p0(), 1000) $$,
    ARRAY['cartx-1'::text],
    'category cartx: only cartx-1');
SELECT results_eq(
    $$ SELECT DISTINCT stream FROM event_store.es_read_category('Cart', pg_temp.p0(), 1000) $$,
    ARRAY['Cart-1'::text],
    'category Cart: only Cart-1 (categories are compared exactly)');
SELECT results_eq(
    $$ SELECT DISTINCT stream FROM event_store.es_read_category('car', pg_temp.p0(), 1000) $$,
    ARRAY['car-1'::text],
    'category car: only car-1, not the cart streams');
SELECT is(pg_temp.read_category('ca', pg_temp.p0()), '{}'::bigint[], 'a category prefix reads nothing');
SELECT is(pg_temp.read_category('nosuch', 0), '{}'::bigint[], 'an unknown category reads nothing');
SELECT results_eq(
    $$ SELECT position - pg_temp.p0(), stream FROM event_store.es_read_category('pay', pg_temp.p0() + 20, 3) $$,
    $$ VALUES (26::bigint, 'pay-1'::text), (27, 'pay-2'), (35, 'pay-1') $$,
    'a category after a position, at most 3');
SELECT results_eq(
    $$ SELECT * FROM event_store.es_read_category('cart') $$,
    $$ SELECT * FROM pg_temp.log_category('cart', 0, 1000) $$,
    'es_read_category(category) reads from 0, at most 1000, the whole group');
SELECT results_eq(
    $$ SELECT unnest(pg_temp.read_category('bulk', pg_temp.p0())) $$,
    $$ SELECT unnest(pg_temp.positions_category('bulk', pg_temp.p0(), 10000)) $$,
    'category bulk with max_count 10000: the first 10000 of its 10500 events');
SELECT is(cardinality(pg_temp.read_category('bulk', pg_temp.p0())), 10000,
          'a category read returns at most 10000');
SELECT results_eq(
    $$ SELECT unnest(pg_temp.page_category('cart', 5, 0, 1)) $$,
    $$ SELECT unnest(pg_temp.positions_category('cart', pg_temp.p0())) $$,
    'category cart in pages of 5: every event exactly once, in order');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_category(NULL) $$,
                 '22004', 'category must not be null', 'category NULL is refused');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_category('') $$,
                 '22023', 'stream name must not be empty', 'an empty category is refused');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_category('cart-1') $$,
                 '22023', 'category must not contain "-"', 'a stream name is not a category');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_category('cart', 0, 10001) $$,
                 '22023', 'max_count must be between 1 and 10000', 'category: max_count 10001 is refused');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_category('cart', -1) $$,
                 '22023', 'after_position must not be negative', 'category: a negative after_position is refused');

-- Consumer groups ----------------------------------------------------------------
-- The members of a group of N together read every event of the category
-- exactly once; each stream goes to exactly one member, the one
-- es_consumer_member names; each member reads in position order.

SELECT results_eq(
    $$ SELECT m, e.position
         FROM generate_series(0, 0) m,
              LATERAL event_store.es_read_category('grp', pg_temp.p0(), 10000, m, 1) WITH ORDINALITY AS e
        ORDER BY m, e.ordinality $$,
    $$ SELECT pg_temp.fnv_member(stream, 1), position FROM pg_temp.log_category('grp', pg_temp.p0(), 10000)
        ORDER BY 1, 2 $$,
    'a group of 1: its member reads the whole category');
SELECT results_eq(
    $$ SELECT m, e.position
         FROM generate_series(0, 1) m,
              LATERAL event_store.es_read_category('grp', pg_temp.p0(), 10000, m, 2) WITH ORDINALITY AS e
        ORDER BY m, e.ordinality $$,
    $$ SELECT pg_temp.fnv_member(stream, 2), position FROM pg_temp.log_category('grp', pg_temp.p0(), 10000)
        ORDER BY 1, 2 $$,
    'a group of 2: each member reads the events of its streams, in position order');
SELECT results_eq(
    $$ SELECT m, e.position
         FROM generate_series(0, 2) m,
              LATERAL event_store.es_read_category('grp', pg_temp.p0(), 10000, m, 3) WITH ORDINALITY AS e
        ORDER BY m, e.ordinality $$,
    $$ SELECT pg_temp.fnv_member(stream, 3), position FROM pg_temp.log_category('grp', pg_temp.p0(), 10000)
        ORDER BY 1, 2 $$,
    'a group of 3: each member reads the events of its streams, in position order');
SELECT results_eq(
    $$ SELECT m, e.position
         FROM generate_series(0, 6) m,
              LATERAL event_store.es_read_category('grp', pg_temp.p0(), 10000, m, 7) WITH ORDINALITY AS e
        ORDER BY m, e.ordinality $$,
    $$ SELECT pg_temp.fnv_member(stream, 7), position FROM pg_temp.log_category('grp', pg_temp.p0(), 10000)
        ORDER BY 1, 2 $$,
    'a group of 7: each member reads the events of its streams, in position order');
-- events, distinct events, streams, (stream, member) pairs, members that got some
SELECT results_eq(
    $$ SELECT n, count(*)::int, count(DISTINCT e.position)::int, count(DISTINCT e.stream)::int,
              count(DISTINCT (e.stream, m))::int, count(DISTINCT m)::int
         FROM unnest(ARRAY[1, 2, 3, 7]) n, generate_series(0, n - 1) m,
              LATERAL event_store.es_read_category('grp', pg_temp.p0(), 10000, m, n) e
        GROUP BY n ORDER BY n $$,
    $$ VALUES (1, 80, 80, 40, 40, 1), (2, 80, 80, 40, 40, 2), (3, 80, 80, 40, 40, 3),
              (7, 80, 80, 40, 40, 7) $$,
    'groups of 1, 2, 3, 7: 80 events each read once, 40 streams each read by one member, no member idle');
SELECT results_eq(
    $$ SELECT unnest(pg_temp.read_category('grp', pg_temp.p0(), 4, 1, 3)) $$,
    $$ SELECT unnest(pg_temp.positions_category('grp', pg_temp.p0(), 4, 1, 3)) $$,
    'max_count counts the member''s own events: member 1 of 3 reads its first 4');
SELECT results_eq(
    $$ SELECT unnest(pg_temp.page_category('grp', 4, 1, 3)) $$,
    $$ SELECT unnest(pg_temp.positions_category('grp', pg_temp.p0(), 10000, 1, 3)) $$,
    'member 1 of 3 in pages of 4: each of its events exactly once, in order');
SELECT results_eq(
    $$ SELECT unnest(pg_temp.page_category('grp', 3, 6, 7)) $$,
    $$ SELECT unnest(pg_temp.positions_category('grp', pg_temp.p0(), 10000, 6, 7)) $$,
    'member 6 of 7 in pages of 3: each of its events exactly once, in order');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_category('grp', 0, 10, 0, 0) $$,
                 '22023', 'consumer_size must be between 1 and 1024', 'a group of 0 is refused');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_category('grp', 0, 10, 0, 1025) $$,
                 '22023', 'consumer_size must be between 1 and 1024', 'a group of 1025 is refused');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_category('grp', 0, 10, 3, 3) $$,
                 '22023', 'consumer_member must be between 0 and 2', 'member 3 of a group of 3 is refused');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_category('grp', 0, 10, -1, 3) $$,
                 '22023', 'consumer_member must be between 0 and 2', 'member -1 is refused');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_category('grp', 0, 10, NULL, 3) $$,
                 '22004', 'consumer_member and consumer_size must not be null', 'member NULL is refused');
SELECT throws_ok($$ SELECT * FROM event_store.es_read_category('grp', 0, 10, 0, NULL) $$,
                 '22004', 'consumer_member and consumer_size must not be null', 'size NULL is refused');
SELECT lives_ok($$ SELECT * FROM event_store.es_read_category('grp', 0, 10, 1023, 1024) $$,
                'member 1023 of a group of 1024 is accepted');
SELECT results_eq(
    $$ SELECT e.stream, e.version
         FROM event_store.es_read_category('grp', pg_temp.p0(), 10000,
                                           pg_temp.fnv_member('grp-1', 1024), 1024) AS e $$,
    $$ SELECT stream, version FROM pg_temp.log_category('grp', pg_temp.p0(), 10000,
                                                        pg_temp.fnv_member('grp-1', 1024), 1024) $$,
    'a group of 1024: the member of grp-1 reads the events of its streams');

-- es_consumer_member ---------------------------------------------------------------

SELECT results_eq(
    $$ SELECT event_store.es_consumer_member('order-1', 3), event_store.es_consumer_member('order-1', 4),
              event_store.es_consumer_member('account-42', 3), event_store.es_consumer_member(U&'\00E9-1', 4) $$,
    $$ VALUES (0, 1, 1, 3) $$,
    'test vectors: order-1 of 3 = 0, of 4 = 1; account-42 of 3 = 1; é-1 of 4 = 3');
SELECT is(octet_length(U&'\00E9-1'), 4, 'é-1 is hashed as its 4 UTF-8 bytes');
SELECT is_empty(
    $$ SELECT s, n FROM (SELECT DISTINCT stream FROM event_store.events) AS t(s),
                        unnest(ARRAY[1, 2, 3, 4, 7, 16, 1000, 1024]) n
        WHERE event_store.es_consumer_member(s, n) <> pg_temp.fnv_member(s, n) $$,
    'every stream, groups of 1 to 1024: FNV-1a 64 of the name modulo the size');
SELECT is(
    (SELECT count(DISTINCT event_store.es_consumer_member('s-' || i, 1024))::int
       FROM generate_series(1, 100000) i),
    1024,
    '100000 names reach all 1024 members');
SELECT is(event_store.es_consumer_member('grp-1', 1), 0, 'a group of 1: member 0');
SELECT is(event_store.es_consumer_member(NULL, 3), NULL::int, 'NULL stream: NULL (strict)');
SELECT is(event_store.es_consumer_member('order-1', NULL), NULL::int, 'NULL size: NULL (strict)');
SELECT throws_ok($$ SELECT event_store.es_consumer_member('order-1', 0) $$,
                 '22023', 'consumer_size must be between 1 and 1024', 'a size of 0 is refused');
SELECT throws_ok($$ SELECT event_store.es_consumer_member('order-1', 1025) $$,
                 '22023', 'consumer_size must be between 1 and 1024', 'a size of 1025 is refused');
SELECT throws_ok($$ SELECT event_store.es_consumer_member('', 3) $$,
                 '22023', 'stream name must not be empty', 'an empty stream name is refused');

-- The gap-safe feed ------------------------------------------------------------------
-- Session "holder" appends and stays open; other sessions commit later
-- positions.  Nothing at or past the holder's position is readable until it
-- ends.

INSERT INTO pos VALUES ('h0', event_store.es_head_position());
SELECT is(dblink_connect('holder', pg_temp.remote()), 'OK', 'a second session, "holder", connects');
SELECT is(dblink_exec('holder', 'BEGIN'), 'BEGIN', 'holder begins a transaction');
SELECT is(
    pg_temp.remember('q1', pg_temp.on_conn('holder',
        $r$ SELECT last_position FROM event_store.es_append('gap-1', 0, 'GapA', '{}') $r$)),
    pg_temp.at('h0') + 1,
    'holder appends gap-1 at position h0+1 and does not commit');
SELECT is(pg_temp.remember('q2', pg_temp.remote_append('gap-2', 'GapB')), pg_temp.at('h0') + 2,
          'a third session commits gap-2 at position h0+2');
SELECT is(
    (SELECT count(*)::int FROM event_store.events WHERE position = pg_temp.at('q2')),
    1,
    'the event at h0+2 is committed: a plain SELECT sees it');
SELECT is(pg_temp.read(pg_temp.at('h0')), '{}'::bigint[],
          'es_read_all does not return h0+2 while h0+1 may still commit');
SELECT is(pg_temp.read(pg_temp.at('h0'), 10000, ARRAY['GapB']), '{}'::bigint[],
          'nor with a type filter');
SELECT is(pg_temp.read_category('gap', pg_temp.at('h0')), '{}'::bigint[],
          'nor es_read_category');
SELECT is(pg_temp.read_category('gap', pg_temp.at('h0'), 10000, event_store.es_consumer_member('gap-2', 2), 2),
          '{}'::bigint[],
          'nor the consumer group member of gap-2');
SELECT is(event_store.es_head_position(), pg_temp.at('h0'), 'the head stays at h0');
SELECT is(pg_temp.remote_read(pg_temp.at('h0')), '{}'::bigint[],
          'a reader in another session does not get h0+2 either');
SELECT is(pg_temp.read(pg_temp.at('h0') - 1), ARRAY[pg_temp.at('h0')],
          'what is below the held position is still readable');
SELECT is(dblink_exec('holder', 'COMMIT'), 'COMMIT', 'holder commits');
SELECT is(pg_temp.read(pg_temp.at('h0')), ARRAY[pg_temp.at('q1'), pg_temp.at('q2')],
          'then both events are readable, in position order');
SELECT is(event_store.es_head_position(), pg_temp.at('q2'), 'and the head moves to h0+2');

-- The holder rolls back: the later event becomes readable, its own never.
SELECT is(dblink_exec('holder', 'BEGIN'), 'BEGIN', 'holder begins again');
INSERT INTO pos SELECT 'q3', pg_temp.on_conn('holder',
    $r$ SELECT last_position FROM event_store.es_append('gap-3', 0, 'GapA', '{}') $r$);
SELECT is(pg_temp.remember('q4', pg_temp.remote_append('gap-4', 'GapB')), pg_temp.at('q3') + 1,
          'holder holds h0+3 uncommitted, a third session commits h0+4');
SELECT is(pg_temp.read(pg_temp.at('q2')), '{}'::bigint[], 'h0+4 is held back');
SELECT is(dblink_exec('holder', 'ROLLBACK'), 'ROLLBACK', 'holder rolls back');
SELECT is(pg_temp.read(pg_temp.at('q2')), ARRAY[pg_temp.at('q4')],
          'then only h0+4 is readable; h0+3 never will be');
SELECT is(event_store.es_head_position(), pg_temp.at('q4'), 'the head moves to h0+4');

-- A plain INSERT holds the feed back like es_append.
SELECT is(dblink_exec('holder', 'BEGIN'), 'BEGIN', 'holder begins again');
INSERT INTO pos SELECT 'q5', pg_temp.on_conn('holder',
    $r$ INSERT INTO event_store.events (stream, type, data) VALUES ('gap-5', 'GapA', '{}') RETURNING position $r$);
SELECT is(pg_temp.remember('q6', pg_temp.remote_append('gap-6', 'GapB')), pg_temp.at('q5') + 1,
          'holder inserts h0+5 with a plain INSERT, a third session commits h0+6');
SELECT is(pg_temp.read(pg_temp.at('q4')), '{}'::bigint[], 'h0+6 is held back by the INSERT');
SELECT is(dblink_exec('holder', 'COMMIT'), 'COMMIT', 'holder commits');
SELECT is(pg_temp.read(pg_temp.at('q4')), ARRAY[pg_temp.at('q5'), pg_temp.at('q6')],
          'then both are readable, in position order');

-- A transaction that appended nothing holds nobody back.
SELECT is(dblink_exec('holder', 'BEGIN'), 'BEGIN', 'holder begins again');
SELECT is(pg_temp.on_conn('holder', $r$ SELECT event_store.es_checkpoint_save('holder_view', 1) $r$), 1::bigint,
          'holder writes (a checkpoint) but appends nothing');
SELECT is(pg_temp.remember('q7', pg_temp.remote_append('gap-7', 'GapB')), pg_temp.at('q6') + 1,
          'a third session commits h0+7');
SELECT is(pg_temp.read(pg_temp.at('q6')), ARRAY[pg_temp.at('q7')],
          'h0+7 is readable at once: an open transaction that appended nothing holds nothing back');
SELECT is(dblink_exec('holder', 'ROLLBACK'), 'ROLLBACK', 'holder rolls back');

-- A REPEATABLE READ reader still gets events committed after its snapshot.
SELECT is(dblink_exec('holder', 'BEGIN ISOLATION LEVEL REPEATABLE READ'), 'BEGIN',
          'holder begins a REPEATABLE READ transaction');
SELECT is(pg_temp.on_conn('holder', $r$ SELECT count(*) FROM event_store.events $r$),
          (SELECT count(*) FROM event_store.events),
          'holder takes its snapshot');
SELECT is(pg_temp.remember('q8', pg_temp.remote_append('gap-8', 'GapB')), pg_temp.at('q7') + 1,
          'a third session commits h0+8');
SELECT is(pg_temp.on_conn('holder',
            format($r$ SELECT count(*) FROM event_store.events WHERE position = %s $r$, pg_temp.at('q8'))),
          0::bigint,
          'h0+8 is not in the holder''s snapshot');
SELECT is(pg_temp.on_conn('holder',
            format($r$ SELECT max(position) FROM event_store.es_read_all(%s, 10) $r$, pg_temp.at('q7'))),
          pg_temp.at('q8'),
          'but the holder''s es_read_all returns it: the feed reads with a fresh snapshot');
SELECT is(dblink_exec('holder', 'COMMIT'), 'COMMIT', 'holder commits');

-- Checkpoints ------------------------------------------------------------------------

SELECT is(event_store.es_checkpoint_get('orders_view'), 0::bigint, 'an unknown consumer is at 0');
SELECT is(event_store.es_checkpoint_save('orders_view', 10), 10::bigint, 'save creates a checkpoint');
SELECT results_eq(
    $$ SELECT consumer COLLATE "default", position, updated_at = now() FROM event_store.checkpoints
        WHERE consumer = 'orders_view' $$,
    $$ VALUES ('orders_view'::text, 10::bigint, true) $$,
    'stored: consumer, position, updated_at = now()');
SELECT is(event_store.es_checkpoint_get('orders_view'), 10::bigint, 'get reads it');
SELECT is(event_store.es_checkpoint_save('orders_view', 10), 10::bigint, 'the same position again is accepted');
SELECT is(event_store.es_checkpoint_save('orders_view', 25), 25::bigint, 'save moves it forward');
SELECT throws_ok($$ SELECT event_store.es_checkpoint_save('orders_view', 24) $$,
                 'V0002', 'checkpoint of consumer "orders_view" cannot move backwards',
                 'save refuses to move it backwards (V0002)');
SELECT throws_ok($$ SELECT event_store.es_checkpoint_save('orders_view', 0) $$,
                 'V0002', 'checkpoint of consumer "orders_view" cannot move backwards',
                 'save refuses to move it back to 0');
SELECT is(event_store.es_checkpoint_get('orders_view'), 25::bigint, 'the refused saves changed nothing');
SELECT is(event_store.es_checkpoint_save('orders_view', 40, 25), 40::bigint,
          'save with expected_position = the stored position moves it');
SELECT throws_ok($$ SELECT event_store.es_checkpoint_save('orders_view', 50, 25) $$,
                 'V0003', 'checkpoint of consumer "orders_view" has moved',
                 'save with a stale expected_position is refused (V0003)');
SELECT throws_ok($$ SELECT event_store.es_checkpoint_save('orders_view', 50, 45) $$,
                 'V0003', 'checkpoint of consumer "orders_view" has moved',
                 'save with an expected_position ahead of the stored one is refused (V0003)');
SELECT throws_ok($$ SELECT event_store.es_checkpoint_save('orders_view', 30, 40) $$,
                 'V0002', 'checkpoint of consumer "orders_view" cannot move backwards',
                 'the right expected_position does not allow moving backwards (V0002)');
SELECT is(event_store.es_checkpoint_save('orders_view', 40, 40), 40::bigint,
          'save of the same position with expected_position is accepted');
SELECT is(event_store.es_checkpoint_get('orders_view'), 40::bigint, 'the checkpoint is at 40');
SELECT throws_ok($$ SELECT event_store.es_checkpoint_save('new_view', 5, 3) $$,
                 'V0003', 'checkpoint of consumer "new_view" has moved',
                 'expected_position 3 for an unknown consumer (at 0) is refused');
SELECT is((SELECT count(*)::int FROM event_store.checkpoints WHERE consumer = 'new_view'), 0,
          'and stores nothing');
SELECT is(event_store.es_checkpoint_save('new_view', 5, 0), 5::bigint,
          'expected_position 0 creates a new consumer');
SELECT throws_ok($$ SELECT event_store.es_checkpoint_save('new_view', 6, 0) $$,
                 'V0003', 'checkpoint of consumer "new_view" has moved',
                 'expected_position 0 once it exists is refused');
SELECT is(event_store.es_checkpoint_reset('orders_view', 3), 3::bigint, 'reset moves it backwards');
SELECT is(event_store.es_checkpoint_get('orders_view'), 3::bigint, 'get reads the reset position');
SELECT is(event_store.es_checkpoint_save('orders_view', 4, 3), 4::bigint, 'and save goes on from there');
SELECT is(event_store.es_checkpoint_reset('orders_view', 1000), 1000::bigint, 'reset may also move it forward');
SELECT is(event_store.es_checkpoint_reset('orders_view'), 0::bigint, 'reset defaults to position 0');
SELECT is(event_store.es_checkpoint_get('orders_view'), 0::bigint, 'it is at 0');
SELECT throws_ok($$ SELECT event_store.es_checkpoint_reset('ghost_view', 0) $$,
                 '42704', 'consumer "ghost_view" has no checkpoint',
                 'reset of an unknown consumer is refused (42704)');
SELECT is((SELECT count(*)::int FROM event_store.checkpoints WHERE consumer = 'ghost_view'), 0,
          'and creates nothing');
SELECT results_eq(
    $$ SELECT event_store.es_checkpoint_save('Orders_view', 7), event_store.es_checkpoint_save('orders_view ', 8),
              event_store.es_checkpoint_get('orders_view') $$,
    $$ VALUES (7::bigint, 8::bigint, 0::bigint) $$,
    'consumer names are compared exactly (case, trailing space)');
SAVEPOINT before_save;
SELECT is(event_store.es_checkpoint_save('orders_view', 77), 77::bigint, 'a save in a savepoint');
ROLLBACK TO SAVEPOINT before_save;
SELECT is(event_store.es_checkpoint_get('orders_view'), 0::bigint,
          'is undone by ROLLBACK TO SAVEPOINT: checkpoints are transactional');

SELECT is(event_store.es_checkpoint_save(repeat('c', 200), 1), 1::bigint, 'a consumer name of 200 bytes is accepted');
SELECT is(event_store.es_checkpoint_save(repeat(U&'\00E9', 100), 1), 1::bigint,
          'a consumer name of 100 two-byte characters (200 bytes) is accepted');
SELECT throws_ok(format('SELECT event_store.es_checkpoint_save(%L, 1)', repeat('c', 201)),
                 '54000', 'consumer name is too long', 'a consumer name of 201 bytes is refused');
SELECT throws_ok(format('SELECT event_store.es_checkpoint_save(%L, 1)', repeat(U&'\00E9', 101)),
                 '54000', 'consumer name is too long', 'a consumer name of 202 bytes (101 characters) is refused');
SELECT throws_ok($$ SELECT event_store.es_checkpoint_save(NULL, 1) $$,
                 '22004', 'consumer must not be null', 'save: consumer NULL is refused');
SELECT throws_ok($$ SELECT event_store.es_checkpoint_save('', 1) $$,
                 '22023', 'consumer must not be empty', 'save: an empty consumer is refused');
SELECT throws_ok($$ SELECT event_store.es_checkpoint_save('orders_view', NULL) $$,
                 '22004', 'position must not be null', 'save: position NULL is refused');
SELECT throws_ok($$ SELECT event_store.es_checkpoint_save('orders_view', -1) $$,
                 '22023', 'position must not be negative', 'save: a negative position is refused');
SELECT throws_ok($$ SELECT event_store.es_checkpoint_save('orders_view', 1, -1) $$,
                 '22023', 'position must not be negative', 'save: a negative expected_position is refused');
SELECT throws_ok($$ SELECT event_store.es_checkpoint_get(NULL) $$,
                 '22004', 'consumer must not be null', 'get: consumer NULL is refused');
SELECT throws_ok($$ SELECT event_store.es_checkpoint_get('') $$,
                 '22023', 'consumer must not be empty', 'get: an empty consumer is refused');
SELECT throws_ok($$ SELECT event_store.es_checkpoint_reset('orders_view', NULL) $$,
                 '22004', 'position must not be null', 'reset: position NULL is refused');
SELECT throws_ok($$ SELECT event_store.es_checkpoint_reset('orders_view', -1) $$,
                 '22023', 'position must not be negative', 'reset: a negative position is refused');
SELECT throws_ok($$ SELECT event_store.es_checkpoint_reset(NULL) $$,
                 '22004', 'consumer must not be null', 'reset: consumer NULL is refused');

-- Two sessions create the same consumer at once: the second one waits for
-- the first and, expecting it absent, is refused.
SELECT is(dblink_connect('racer', pg_temp.remote()), 'OK', 'a third session, "racer", connects');
SELECT is(dblink_exec('holder', 'BEGIN'), 'BEGIN', 'holder begins again');
SELECT is(pg_temp.on_conn('holder', $r$ SELECT event_store.es_checkpoint_save('race_view', 5) $r$), 5::bigint,
          'holder creates race_view at 5 and does not commit');
INSERT INTO pos SELECT 'racer_pid', pg_temp.on_conn('racer', 'SELECT pg_backend_pid()');
SELECT is(dblink_send_query('racer', $r$ SELECT event_store.es_checkpoint_save('race_view', 7, 0) $r$), 1,
          'racer saves race_view at 7, expecting it absent');
SELECT ok(pg_temp.wait_until_blocked(pg_temp.at('racer_pid')::int), 'racer waits for holder');
SELECT is(dblink_exec('holder', 'COMMIT'), 'COMMIT', 'holder commits');
SELECT throws_ok($$ SELECT * FROM dblink_get_result('racer') AS t(v bigint) $$,
                 'V0003', 'checkpoint of consumer "race_view" has moved',
                 'racer is refused: the checkpoint was created meanwhile (V0003)');
SELECT is(dblink_disconnect('racer'), 'OK', 'racer disconnects');
SELECT is(event_store.es_checkpoint_get('race_view'), 5::bigint, 'race_view stays at 5');

-- es_consumers -------------------------------------------------------------------------
-- The head, every consumer's lag in positions (head - position, 0 when
-- ahead) and in seconds (since the first event after its position, up to
-- the head, was created; 0 when there is none).  A rolled-back append
-- leaves a hole in the positions: lag_positions counts it.

SELECT is(dblink_exec('holder', 'BEGIN'), 'BEGIN', 'holder begins again');
SELECT is(pg_temp.on_conn('holder', $r$ SELECT last_position - first_position FROM event_store.es_append('hole-1', 0,
            '[{"type":"H","data":{}},{"type":"H","data":{}},{"type":"H","data":{}}]') $r$), 2::bigint,
          'holder appends three events');
SELECT is(dblink_exec('holder', 'ROLLBACK'), 'ROLLBACK', 'and rolls back: three positions are never used');
SELECT is(pg_temp.remember('h1', pg_temp.remote_append('lag-1', 'L')), pg_temp.at('q8') + 4,
          'a third session commits h0+12 after the hole h0+9 ... h0+11');
SELECT is(event_store.es_head_position(), pg_temp.at('h1'), 'the head is h0+12');
SELECT lives_ok(
    $$ SELECT event_store.es_checkpoint_reset('orders_view', 0),
              event_store.es_checkpoint_save('at_q8', pg_temp.at('q8')),
              event_store.es_checkpoint_save('at_head', pg_temp.at('h1')),
              event_store.es_checkpoint_save('ahead', pg_temp.at('h1') + 100) $$,
    'consumers at 0, at h0+8 (before the hole), at the head and ahead of it');
SELECT results_eq(
    $$ SELECT consumer COLLATE "default", position, head, lag_positions,
              lag_seconds >= extract(epoch FROM now() - (
                  SELECT e.created_at FROM event_store.events e
                   WHERE e.position > c.position AND e.position <= c.head
                   ORDER BY e.position LIMIT 1)) AS lag_from_first_unread,
              lag_seconds = 0 AS no_lag_seconds, updated_at = now()
         FROM event_store.es_consumers c
        WHERE consumer IN ('orders_view', 'at_q8', 'at_head', 'ahead', 'race_view')
        ORDER BY consumer $$,
    $$ VALUES ('ahead'::text, pg_temp.at('h1') + 100, pg_temp.at('h1'), 0::bigint, NULL::boolean, true, true),
              ('at_head', pg_temp.at('h1'), pg_temp.at('h1'), 0, NULL, true, true),
              ('at_q8', pg_temp.at('q8'), pg_temp.at('h1'), 4, true, false, true),
              ('orders_view', 0, pg_temp.at('h1'), pg_temp.at('h1'), true, false, true),
              ('race_view', 5, pg_temp.at('h1'), pg_temp.at('h1') - 5, true, false, false) $$,
    'es_consumers: position, head, lag in positions (with the hole) and in seconds (from the first unread event)');
SELECT results_eq(
    $$ SELECT consumer COLLATE "default" FROM event_store.es_consumers ORDER BY 1 $$,
    $$ SELECT consumer COLLATE "default" FROM event_store.checkpoints ORDER BY 1 $$,
    'es_consumers has one row per checkpoint');
SELECT is(
    (SELECT count(*)::int FROM event_store.es_consumers WHERE head <> event_store.es_head_position()),
    0,
    'every row carries the feed head');

-- This transaction appends --------------------------------------------------------------
-- From here on this transaction holds the feed back for everybody,
-- itself included, until it ends.

SAVEPOINT before_append;
SELECT is(
    pg_temp.remember('mine', (SELECT last_position FROM event_store.es_append('mine-1', 0, 'Mine', '{}'))),
    pg_temp.at('h1') + 1,
    'this transaction appends mine-1 at h0+13 and does not commit');
SELECT is(pg_temp.remember('later', pg_temp.remote_append('gap-9', 'GapB')), pg_temp.at('mine') + 1,
          'another session commits h0+14');
SELECT is(pg_temp.read(pg_temp.at('h1')), '{}'::bigint[],
          'this transaction''s own feed read returns neither its uncommitted event nor h0+14');
SELECT is(pg_temp.read_category('mine', pg_temp.at('h1')), '{}'::bigint[],
          'nor does its category read');
SELECT is(pg_temp.remote_read(pg_temp.at('h1')), '{}'::bigint[],
          'another session''s feed read does not return h0+14 either');
SELECT is(event_store.es_head_position(), pg_temp.at('h1'), 'the head stays at h0+12');
SELECT results_eq(
    $$ SELECT DISTINCT head, lag_positions FROM event_store.es_consumers WHERE consumer = 'at_head' $$,
    $$ VALUES (pg_temp.at('h1'), 0::bigint) $$,
    'es_consumers uses the same held-back head');
ROLLBACK TO SAVEPOINT before_append;
SELECT is((SELECT count(*)::int FROM event_store.events WHERE stream = 'mine-1'), 0,
          'ROLLBACK TO SAVEPOINT removes the event of mine-1');
SELECT is(pg_temp.remote_read(pg_temp.at('h1')), '{}'::bigint[],
          'the feed stays held back until this transaction ends (the position register is cleared at its end)');
SELECT is(dblink_disconnect('holder'), 'OK', 'holder disconnects');

SELECT * FROM finish();
ROLLBACK;
