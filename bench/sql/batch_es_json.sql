-- W2: a batch of events (:batch, a JSON array) to a random stream among
-- :nstreams named :prefix<i>, expected version "any".
\set idx random(0, :nstreams - 1)
SELECT event_store.es_append(:prefix || :idx::text, NULL, :batch::jsonb);
