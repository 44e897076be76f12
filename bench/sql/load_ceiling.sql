-- The same :events rows as load.sql, written by one plain INSERT into the
-- ceiling's table: the size baseline.
INSERT INTO events (stream, version, type, data, metadata)
SELECT (ARRAY['order', 'payment', 'shipment'])[1 + b % 3] || '-' || (b % 10000),
       (b / 10000) * 100 + i,
       CASE WHEN (b * 100 + i) % 100 = 0 THEN 'Rare' ELSE 'Happened' END,
       jsonb_build_object('amount', i * 1.5, 'currency', 'EUR', 'customer', 'c-' || b,
                          'note', repeat('x', 120)),
       jsonb_build_object('correlation_id', md5(b::text || i), 'user_id', 'u-42')
  FROM generate_series(1, :events / 100) b, generate_series(1, 100) i
 ORDER BY b, i;
