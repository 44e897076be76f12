-- Load :events events in batches of 100, into 10,000 streams of 3 categories,
-- about 200 bytes of data and 100 of metadata each; 1 event in 100 of the
-- type Rare.
SELECT count(*) FROM (
  SELECT event_store.es_append(
           (ARRAY['order', 'payment', 'shipment'])[1 + b % 3] || '-' || (b % 10000), NULL,
           (SELECT jsonb_agg(jsonb_build_object(
                     'type', CASE WHEN (b * 100 + i) % 100 = 0 THEN 'Rare' ELSE 'Happened' END,
                     'data', jsonb_build_object('amount', i * 1.5, 'currency', 'EUR',
                                                'customer', 'c-' || b,
                                                'note', repeat('x', 120)),
                     'metadata', jsonb_build_object('correlation_id', md5(b::text || i),
                                                    'user_id', 'u-42')))
              FROM generate_series(1, 100) i))
    FROM generate_series(1, :events / 100) b) s;
