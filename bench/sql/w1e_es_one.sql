-- W1 with the expected version (after w1e_header.sql): es_append, single-event form.
SELECT event_store.es_append('w1e' || :clients::text || '-' || :idx::text, :v,
       'Deposited', :data::jsonb, :meta::jsonb);
