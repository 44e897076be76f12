-- W1 with the expected version: client c appends to its own streams w1e<C>-i
-- (i % C = c) in a scrambled round robin, so it knows each one's version.
\if :started = 0
SELECT n FROM bench_state WHERE clients = :clients AND client = :client_id \gset
\set started 1
\endif
\set per :nstreams / :clients
\set j ((:n % :per) * 7919) % :per
\set idx :client_id + :clients * :j
\set v 1 + :n / :per
\set n :n + 1
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
