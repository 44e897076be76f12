-- W4, the ceiling: the same rows by a plain SELECT on the (stream, version)
-- index; every row goes to the client.
SELECT * FROM event_store.events WHERE stream = :stream ORDER BY version \aset
