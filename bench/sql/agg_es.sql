-- W6: load an aggregate (:stream) with es_load_aggregate: its usable
-- snapshot, then the events after it; every row goes to the client.
SELECT * FROM event_store.es_load_aggregate(:stream) \aset
