-- Helpers of the SQL suites, defined once (err, stored, remote, members).  Loaded by pg_regress's first
-- test (test/sql/setup.sql, into schema "regress", where every later test
-- finds them) and by each pgTAP file (into pg_temp), with the psql variable
-- "helpers" naming the schema:
--
--   \set helpers pg_temp
--   \ir ../helpers.sql

-- err(sql): run sql and say how it failed: SQLSTATE, message, and the
-- detail, hint and the extension's own context line when there are any
-- ("no error" if it did not fail).  Stable text, unlike psql's LOCATION.
CREATE FUNCTION :helpers.err(sql text) RETURNS text
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

-- stored(): what is stored, to show that a failing call stores nothing;
-- streams whose name is LIKE exclude (if given) are left out.
CREATE FUNCTION :helpers.stored(exclude text DEFAULT NULL) RETURNS text
LANGUAGE sql AS $$
  SELECT format('events=%s streams=%s versions=%s',
                (SELECT count(*) FROM event_store.events
                  WHERE exclude IS NULL OR stream NOT LIKE exclude),
                (SELECT count(*) FROM event_store.streams
                  WHERE exclude IS NULL OR name NOT LIKE exclude),
                (SELECT coalesce(sum(version), 0) FROM event_store.streams
                  WHERE exclude IS NULL OR name NOT LIKE exclude))
$$;

-- remote(): a dblink connection string to this database as this role, for
-- a second session.
CREATE FUNCTION :helpers.remote() RETURNS text
LANGUAGE sql AS $$
  SELECT format('dbname=%s host=%s port=%s user=%s', current_database(),
                split_part(current_setting('unix_socket_directories'), ',', 1),
                current_setting('port'), current_user)
$$;

-- members(): the objects of extension event_store, described, in order.
-- PostgreSQL 17 and later also record the row type of every table and view
-- and every array type as members: they come and go with what they belong
-- to, and are left out.
CREATE FUNCTION :helpers.members() RETURNS SETOF text
LANGUAGE sql STABLE AS $$
  SELECT pg_describe_object(d.classid, d.objid, 0)
    FROM pg_depend d
   WHERE d.refclassid = 'pg_extension'::regclass
     AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'event_store')
     AND d.deptype = 'e'
     AND NOT EXISTS (SELECT FROM pg_type t
                      WHERE d.classid = 'pg_type'::regclass AND t.oid = d.objid
                        AND (EXISTS (SELECT FROM pg_type e WHERE e.typarray = t.oid)
                             OR EXISTS (SELECT FROM pg_class c
                                         WHERE c.oid = t.typrelid AND c.relkind <> 'c')))
   ORDER BY 1
$$;

-- the differences between versions of PostgreSQL that the fixtures meet
\ir compat.sql
