-- One category of three: pages of 1,000 of its events.
SELECT * FROM event_store.es_read_category('payment', CASE WHEN :position >= :head THEN 0 ELSE :position END,
                                           1000) \aset
