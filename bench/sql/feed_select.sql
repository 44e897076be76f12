-- The ceiling: the same page by a plain SELECT on the primary key.
SELECT * FROM event_store.events
 WHERE position > CASE WHEN :position >= :head THEN 0 ELSE :position END
 ORDER BY position LIMIT 1000 \aset
