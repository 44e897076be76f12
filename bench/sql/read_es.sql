-- W4: read a whole stream (:stream) to rebuild an aggregate; every row goes
-- to the client.
SELECT * FROM event_store.es_read_stream(:stream) \aset
