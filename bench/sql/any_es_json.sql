-- Expected version "any": a random stream among :nstreams named :prefix<i>.
\set idx random(0, :nstreams - 1)
SELECT event_store.es_append(:prefix || :idx::text, NULL, :event1::jsonb);
