-- Catch-up: the next page of 1,000 after the last position read (wraps at the end).
SELECT * FROM event_store.es_read_all(CASE WHEN :position >= :head THEN 0 ELSE :position END, 1000) \aset
