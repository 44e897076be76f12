-- W6, the ceiling with a snapshot: the snapshot row and the events after it
-- by plain SELECTs on the primary keys, in one statement.
SELECT s.version, s.state FROM event_store.snapshots s WHERE s.stream = :stream
UNION ALL
SELECT e.version, e.data FROM event_store.events e
 WHERE e.stream = :stream
   AND e.version > (SELECT version FROM event_store.snapshots WHERE stream = :stream) \aset
