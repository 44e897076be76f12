-- W1 with the expected version (after w1e_header.sql): naive SQL.
BEGIN;
SELECT coalesce((SELECT version FROM streams WHERE name = 'w1e' || :clients::text || '-' || :idx::text FOR UPDATE), -1) AS cur \gset
\if :cur < 0
INSERT INTO streams (name) VALUES ('w1e' || :clients::text || '-' || :idx::text);
\set cur 0
\endif
\if :cur = :v
INSERT INTO events (stream, version, type, data, metadata)
VALUES ('w1e' || :clients::text || '-' || :idx::text, :cur + 1, 'Deposited', :data, :meta);
UPDATE streams SET version = :cur + 1, updated_at = now() WHERE name = 'w1e' || :clients::text || '-' || :idx::text;
COMMIT;
\else
ROLLBACK;
\endif
