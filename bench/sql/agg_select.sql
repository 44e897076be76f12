-- W6, the ceiling without a snapshot: every event of the stream by a plain
-- SELECT on the (stream, version) index.
SELECT * FROM event_store.events WHERE stream = :stream ORDER BY version \aset
