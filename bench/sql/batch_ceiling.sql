-- W2, the ceiling: the rows of the batch (:batch, a JSON array of events)
-- inserted by one raw INSERT, versions unchecked.  (pgbench binds at most
-- 255 parameters, so the rows come as the same JSON array es_append gets:
-- both sides parse the same text.)
\set idx random(0, :nstreams - 1)
INSERT INTO events (stream, version, type, data, metadata)
SELECT :prefix || :idx::text, nextval('bench_version_seq'), e ->> 'type', e -> 'data', e -> 'metadata'
  FROM jsonb_array_elements(:batch::jsonb) e;
