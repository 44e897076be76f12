-- Install the extension; the server preloads the library.
CREATE EXTENSION event_store;
SELECT extname, extversion, extnamespace::regnamespace FROM pg_extension WHERE extname = 'event_store';

-- The helpers of the SQL suites (test/helpers.sql): err(), stored(),
-- remote(), in schema regress for every later test.
CREATE SCHEMA regress;
\getenv abs_srcdir PG_ABS_SRCDIR
\set helpers_file :abs_srcdir '/helpers.sql'
\set helpers regress
\i :helpers_file
GRANT USAGE ON SCHEMA regress TO PUBLIC;

-- The objects of the extension (regress.members(): without the row and
-- array types that PostgreSQL 17 and later also list).
SELECT object FROM regress.members() AS object;

-- The indexes: the read paths' and nothing more.
SELECT indexrelid::regclass AS index, pg_get_indexdef(indexrelid) AS definition
  FROM pg_index
 WHERE indrelid IN ('event_store.events'::regclass, 'event_store.streams'::regclass)
 ORDER BY 1;

