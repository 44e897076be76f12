-- Install the extension; the server preloads the library.
CREATE EXTENSION event_store;
SELECT extname, extversion, extnamespace::regnamespace FROM pg_extension WHERE extname = 'event_store';

-- The objects of the extension.  PostgreSQL 17 and later also record the
-- row type of every table and view and every array type as members: they
-- come and go with what they belong to, and are left out.
SELECT pg_describe_object(d.classid, d.objid, 0) AS object
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'event_store')
   AND d.deptype = 'e'
   AND NOT EXISTS (SELECT FROM pg_type t
                    WHERE d.classid = 'pg_type'::regclass AND t.oid = d.objid
                      AND (EXISTS (SELECT FROM pg_type e WHERE e.typarray = t.oid)
                           OR EXISTS (SELECT FROM pg_class c
                                       WHERE c.oid = t.typrelid AND c.relkind <> 'c')))
 ORDER BY 1;

-- The indexes: the read paths' and nothing more.
SELECT indexrelid::regclass AS index, pg_get_indexdef(indexrelid) AS definition
  FROM pg_index
 WHERE indrelid IN ('event_store.events'::regclass, 'event_store.streams'::regclass)
 ORDER BY 1;

-- The helpers of the SQL suites (test/helpers.sql): err(), stored(),
-- remote(), in schema regress for every later test.
CREATE SCHEMA regress;
\getenv abs_srcdir PG_ABS_SRCDIR
\set helpers_file :abs_srcdir '/helpers.sql'
\set helpers regress
\i :helpers_file
GRANT USAGE ON SCHEMA regress TO PUBLIC;
