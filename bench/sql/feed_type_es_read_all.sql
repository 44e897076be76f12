-- A rare type (1 event in 100): pages of 1,000 Rare events.
SELECT * FROM event_store.es_read_all(CASE WHEN :position >= :head THEN 0 ELSE :position END, 1000,
                                      ARRAY['Rare']) \aset
