-- What differs between the versions of PostgreSQL under the suites'
-- fixtures, made the same on each (test/helpers.sql loads this into the
-- regression database; EsTest::es_new_node into template1 and postgres of
-- every TAP cluster it starts).
--
-- PostgreSQL 18 gave jsonb_strip_nulls a second argument (strip_in_arrays).
-- The suites register the one-argument built-in of 15 and 17 as an upcaster
-- that a superuser owns and no other role; 18 has no other built-in of that
-- shape.  On 18, a function of the same signature and behaviour in
-- pg_catalog, owned by the bootstrap superuser as the built-in is.
DO $$
BEGIN
  IF to_regprocedure('pg_catalog.jsonb_strip_nulls(jsonb)') IS NULL THEN
    SET LOCAL allow_system_table_mods = on;
    CREATE FUNCTION pg_catalog.jsonb_strip_nulls(jsonb) RETURNS jsonb
      LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
      AS 'SELECT pg_catalog.jsonb_strip_nulls($1, false)';
  END IF;
END $$;
