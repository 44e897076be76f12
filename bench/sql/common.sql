-- Loaded into every contender's database: the payload every workload
-- appends (about 200 bytes of data, 100 of metadata), and the state that
-- lets each pgbench client know the versions of its own streams.
CREATE FUNCTION bench_data() RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT '{"amount": 1250.75, "currency": "EUR", "account": "ACC-0000042", "customer": "c-00042", "channel": "web", "note": "deposit made at the counter of the main branch by the account holder in person, receipt given"}'::jsonb
$$;
CREATE FUNCTION bench_meta() RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT '{"correlation_id": "0f8fad5b-d9cb-469f-a165-70867728950e", "user_id": "u-42", "source": "bench"}'::jsonb
$$;

-- W1 with expected versions: client c of C owns the streams w1e<C>-i with
-- i % C = c, each created at version 1 before the runs; bench_state holds
-- how many events each client has appended to its streams so far, which
-- the driver recomputes from the database after every run.
CREATE TABLE bench_state (
    clients int,
    client  int,
    n       bigint NOT NULL,
    PRIMARY KEY (clients, client)
);

-- versions for "any" in the ceiling, which checks nothing
CREATE SEQUENCE bench_version_seq START 1000000;
