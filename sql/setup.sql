-- Install the extension; the server preloads the library.
CREATE EXTENSION event_store;
SELECT extname, extversion, extnamespace::regnamespace FROM pg_extension WHERE extname = 'event_store';

-- The objects of the extension.
SELECT pg_describe_object(classid, objid, 0) AS object
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'event_store')
   AND deptype = 'e'
 ORDER BY 1;

-- The indexes: the read paths' and nothing more.
SELECT indexrelid::regclass AS index, pg_get_indexdef(indexrelid) AS definition
  FROM pg_index
 WHERE indrelid IN ('event_store.events'::regclass, 'event_store.streams'::regclass)
 ORDER BY 1;

-- Tests show errors as SQLSTATE, message, detail and hint: stable output,
-- unlike psql's LOCATION lines.
CREATE SCHEMA regress;
CREATE FUNCTION regress.err(sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  state text; msg text; detail text; hint text; context text;
BEGIN
  EXECUTE sql;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                          detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT,
                          context = PG_EXCEPTION_CONTEXT;
  -- keep the extension's own context line, not PL/pgSQL's
  context := (regexp_match(context, 'event \d+ of the append'))[1];
  RETURN state || ': ' || msg
      || CASE WHEN detail <> '' THEN E'\n  DETAIL: ' || detail ELSE '' END
      || CASE WHEN hint <> '' THEN E'\n  HINT: ' || hint ELSE '' END
      || CASE WHEN context IS NOT NULL THEN E'\n  CONTEXT: ' || context ELSE '' END;
END $$;

-- Counts of what is stored, to show that a failing call stores nothing.
CREATE FUNCTION regress.stored() RETURNS text
LANGUAGE sql AS $$
  SELECT format('events=%s streams=%s versions=%s',
                (SELECT count(*) FROM event_store.events),
                (SELECT count(*) FROM event_store.streams),
                (SELECT coalesce(sum(version), 0) FROM event_store.streams))
$$;
GRANT USAGE ON SCHEMA regress TO PUBLIC;
