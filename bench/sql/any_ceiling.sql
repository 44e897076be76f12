-- Expected version "any": a random stream among :nstreams named :prefix<i>.
\set idx random(0, :nstreams - 1)
INSERT INTO events (stream, version, type, data, metadata)
VALUES (:prefix || :idx::text, nextval('bench_version_seq'), 'Deposited', :data, :meta);
