SELECT * FROM event_store.events
 WHERE type = 'Rare' AND position > CASE WHEN :position >= :head THEN 0 ELSE :position END
 ORDER BY position LIMIT 1000 \aset
