-- W1 with the expected version (after w1e_header.sql): the ceiling.
INSERT INTO events (stream, version, type, data, metadata)
VALUES ('w1e' || :clients::text || '-' || :idx::text, :v + 1, 'Deposited', :data, :meta);
