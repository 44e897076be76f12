-- Expected version "any": a random stream among :nstreams named :prefix<i>.
\set idx random(0, :nstreams - 1)
BEGIN;
SELECT coalesce((SELECT version FROM streams WHERE name = :prefix || :idx::text FOR UPDATE), -1) AS cur \gset
\if :cur < 0
INSERT INTO streams (name) VALUES (:prefix || :idx::text);
\set cur 0
\endif
INSERT INTO events (stream, version, type, data, metadata)
VALUES (:prefix || :idx::text, :cur + 1, 'Deposited', :data, :meta);
UPDATE streams SET version = :cur + 1, updated_at = now() WHERE name = :prefix || :idx::text;
COMMIT;
