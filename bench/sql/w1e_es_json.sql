-- W1 with the expected version (after w1e_header.sql): es_append, JSON form.
SELECT event_store.es_append('w1e' || :clients::text || '-' || :idx::text, :v, :event1::jsonb);
