-- W1 with the expected version (after w1e_header.sql): the PL/pgSQL baseline.
SELECT es_append('w1e' || :clients::text || '-' || :idx::text, :v,
       'Deposited', :data::jsonb, :meta::jsonb);
