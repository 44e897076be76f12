-- (bench/run puts this before every w1e_*.sql script)
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
