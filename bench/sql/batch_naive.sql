-- W2, naive SQL: lock the stream (insert it when absent), insert the batch
-- (:batch, a JSON array of events) after its version, move the version.
\set idx random(0, :nstreams - 1)
BEGIN;
SELECT coalesce((SELECT version FROM streams WHERE name = :prefix || :idx::text FOR UPDATE), -1) AS cur \gset
\if :cur < 0
INSERT INTO streams (name) VALUES (:prefix || :idx::text);
\set cur 0
\endif
INSERT INTO events (stream, version, type, data, metadata)
SELECT :prefix || :idx::text, :cur + i, e ->> 'type', e -> 'data', e -> 'metadata'
  FROM jsonb_array_elements(:batch::jsonb) WITH ORDINALITY AS a(e, i);
UPDATE streams SET version = :cur + jsonb_array_length(:batch::jsonb), updated_at = now() WHERE name = :prefix || :idx::text;
COMMIT;
