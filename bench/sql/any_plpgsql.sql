-- Expected version "any": a random stream among :nstreams named :prefix<i>.
\set idx random(0, :nstreams - 1)
SELECT es_append(:prefix || :idx::text, NULL, 'Deposited', :data::jsonb, :meta::jsonb);
