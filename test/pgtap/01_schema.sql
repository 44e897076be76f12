-- pgTAP: the objects of event_store, as the install script creates them.
-- The C code reaches the tables by attribute number and the indexes by name
-- (src/event_store.h, src/es_catalog.c), so their exact shape is part of the
-- contract and any drift must fail here first.
BEGIN;
SELECT plan(339);

-- The helpers of the SQL suites (test/helpers.sql): members().
\set helpers pg_temp
\ir ../helpers.sql

-- Extension and schema -------------------------------------------------------

SELECT has_schema('event_store');
SELECT results_eq(
    $$ SELECT extversion COLLATE "default", extnamespace::regnamespace::text, extrelocatable
         FROM pg_extension WHERE extname = 'event_store' $$,
    $$ VALUES ('0.2.0', 'event_store', false) $$,
    'event_store 0.2.0 is installed in schema event_store and is not relocatable');
SELECT results_eq(
    $$ SELECT * FROM pg_temp.members() $$,
    $$ VALUES ('function event_store._es_acts_for(name)'),
              ('function event_store._es_call_handler(text,text,text,name,event_store.es_event[])'),
              ('function event_store._es_check_checkpoint(text,bigint,bigint,bigint,boolean)'),
              ('function event_store._es_check_consumer(text)'),
              ('function event_store._es_check_filter(text,text[])'),
              ('function event_store._es_check_handler(regprocedure,boolean)'),
              ('function event_store._es_check_not_erased(text,timestamp with time zone)'),
              ('function event_store._es_check_not_in_handler()'),
              ('function event_store._es_check_position(bigint)'),
              ('function event_store._es_check_projection_row(text,text,text,name,boolean)'),
              ('function event_store._es_check_schema_version(integer,text)'),
              ('function event_store._es_check_stream_name(text)'),
              ('function event_store._es_check_type(text)'),
              ('function event_store._es_check_upcaster(regprocedure)'),
              ('function event_store._es_events_after_statement()'),
              ('function event_store._es_events_before_insert()'),
              ('function event_store._es_head_if_known()'),
              ('function event_store._es_install()'),
              ('function event_store._es_lag_seconds(bigint,bigint)'),
              ('function event_store._es_lock_upcasters()'),
              ('function event_store._es_project_failed(text,text,text)'),
              ('function event_store._es_project_page(text,bigint)'),
              ('function event_store._es_projection_for_update(text)'),
              ('function event_store._es_projections_check()'),
              ('function event_store._es_projections_deleted()'),
              ('function event_store._es_refuse_change()'),
              ('function event_store._es_registry_changed()'),
              ('function event_store._es_snapshot_floor(bigint,boolean)'),
              ('function event_store._es_upcasters_check()'),
              ('function event_store._es_upcasters_lock()'),
              ('function event_store._es_wake_runner()'),
              ('function event_store.es_append(text,bigint,jsonb)'),
              ('function event_store.es_append(text,bigint,text,jsonb,jsonb,uuid,integer)'),
              ('function event_store.es_category(text)'),
              ('function event_store.es_caused_by(event_store.es_event,jsonb)'),
              ('function event_store.es_checkpoint_get(text)'),
              ('function event_store.es_checkpoint_reset(text,bigint)'),
              ('function event_store.es_checkpoint_save(text,bigint,bigint)'),
              ('function event_store.es_consumer_member(text,integer)'),
              ('function event_store.es_delete_stream(text,bigint)'),
              ('function event_store.es_erase_stream(text,text)'),
              ('function event_store.es_feed_reached()'),
              ('function event_store.es_head_position()'),
              ('function event_store.es_load_aggregate(text,integer)'),
              ('function event_store.es_load_snapshot(text,integer)'),
              ('function event_store.es_pause_projection(text)'),
              ('function event_store.es_position_before_time(timestamp with time zone)'),
              ('function event_store.es_read_all(bigint,bigint,text[])'),
              ('function event_store.es_read_category(text,bigint,bigint,integer,integer)'),
              ('function event_store.es_read_stream(text,bigint,bigint,boolean)'),
              ('function event_store.es_read_stream_at(text,bigint,timestamp with time zone)'),
              ('function event_store.es_rebuild_projection(text,bigint)'),
              ('function event_store.es_rebuild_projection(text,timestamp with time zone)'),
              ('function event_store.es_register_projection(text,regprocedure,text,text[],integer,text,integer,interval,regprocedure,bigint)'),
              ('function event_store.es_register_upcaster(text,integer,regprocedure)'),
              ('function event_store.es_resume_projection(text)'),
              ('function event_store.es_retry_projection(text)'),
              ('function event_store.es_run_projection(text,integer,bigint)'),
              ('function event_store.es_save_snapshot(text,bigint,jsonb,integer)'),
              ('function event_store.es_set_stream_metadata(text,jsonb)'),
              ('function event_store.es_stats()'),
              ('function event_store.es_stats_reset()'),
              ('function event_store.es_stream_version(text)'),
              ('function event_store.es_unregister_projection(text)'),
              ('function event_store.es_unregister_upcaster(text,integer)'),
              ('function event_store.es_uuid_v7()'),
              ('sequence event_store.streams_id_seq'),
              ('table event_store.checkpoints'),
              ('table event_store.dead_letters'),
              ('table event_store.erasures'),
              ('table event_store.events'),
              ('table event_store.projections'),
              ('table event_store.snapshots'),
              ('table event_store.streams'),
              ('table event_store.upcasters'),
              ('type event_store.es_append_result'),
              ('type event_store.es_event'),
              ('type event_store.es_upcast'),
              ('view event_store.es_consumer_metrics'),
              ('view event_store.es_consumers'),
              ('view event_store.es_dead_letters'),
              ('view event_store.es_projections') $$,
    'the extension owns exactly its tables, view, sequence, types and functions');

-- Tables and columns ----------------------------------------------------------

SELECT tables_are('event_store', ARRAY['checkpoints', 'dead_letters', 'erasures', 'events',
                                      'projections', 'snapshots', 'streams', 'upcasters']);
SELECT sequences_are('event_store', ARRAY['streams_id_seq']);
SELECT views_are('event_store', ARRAY['es_consumer_metrics', 'es_consumers', 'es_dead_letters', 'es_projections']);
SELECT materialized_views_are('event_store', ARRAY[]::name[]);

SELECT columns_are('event_store', 'events', ARRAY[
    'position', 'stream', 'version', 'type', 'data', 'metadata', 'event_id',
    'schema_version', 'created_at']);
SELECT columns_are('event_store', 'streams', ARRAY[
    'id', 'name', 'category', 'version', 'created_at', 'updated_at', 'metadata', 'erased_at']);
SELECT columns_are('event_store', 'checkpoints', ARRAY['consumer', 'position', 'updated_at']);
SELECT columns_are('event_store', 'snapshots', ARRAY[
    'stream', 'version', 'state', 'schema_version', 'created_at']);
SELECT columns_are('event_store', 'upcasters', ARRAY[
    'type', 'from_schema_version', 'upcaster', 'created_at']);
SELECT columns_are('event_store', 'erasures', ARRAY[
    'stream', 'erased_at', 'erased_by', 'session_user_name', 'events_erased', 'last_version',
    'reason', 'last_position']);
SELECT columns_are('event_store', 'es_consumers', ARRAY[
    'consumer', 'position', 'head', 'lag_positions', 'lag_seconds', 'updated_at']);

-- The column order is what the C code reads (Anum_es_events_*, Anum_es_streams_*,
-- Anum_es_snapshots_*, Anum_es_upcasters_*, Anum_es_erasures_*).
SELECT results_eq(
    $$ SELECT a.attnum::int, a.attname::text COLLATE "default", format_type(a.atttypid, a.atttypmod),
              a.attnotnull, coalesce(c.collname::text, '') COLLATE "default"
         FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation
        WHERE a.attrelid = 'event_store.events'::regclass AND a.attnum > 0
          AND NOT a.attisdropped
        ORDER BY a.attnum $$,
    $$ VALUES (1, 'position', 'bigint', true, ''),
              (2, 'stream', 'text', true, 'C'),
              (3, 'version', 'bigint', true, ''),
              (4, 'type', 'text', true, 'C'),
              (5, 'data', 'jsonb', true, ''),
              (6, 'metadata', 'jsonb', false, ''),
              (7, 'event_id', 'uuid', true, ''),
              (8, 'schema_version', 'integer', true, ''),
              (9, 'created_at', 'timestamp with time zone', true, '') $$,
    'events: columns in order, with types, NOT NULL and collation "C" for names');
SELECT results_eq(
    $$ SELECT a.attnum::int, a.attname::text COLLATE "default", format_type(a.atttypid, a.atttypmod),
              a.attnotnull, coalesce(c.collname::text, '') COLLATE "default"
         FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation
        WHERE a.attrelid = 'event_store.streams'::regclass AND a.attnum > 0
          AND NOT a.attisdropped
        ORDER BY a.attnum $$,
    $$ VALUES (1, 'id', 'bigint', true, ''),
              (2, 'name', 'text', true, 'C'),
              (3, 'category', 'text', true, 'C'),
              (4, 'version', 'bigint', true, ''),
              (5, 'created_at', 'timestamp with time zone', true, ''),
              (6, 'updated_at', 'timestamp with time zone', true, ''),
              (7, 'metadata', 'jsonb', true, ''),
              (8, 'erased_at', 'timestamp with time zone', false, '') $$,
    'streams: columns in order, with types, NOT NULL and collation "C" for names');
SELECT results_eq(
    $$ SELECT a.attnum::int, a.attname::text COLLATE "default", format_type(a.atttypid, a.atttypmod),
              a.attnotnull, coalesce(c.collname::text, '') COLLATE "default"
         FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation
        WHERE a.attrelid = 'event_store.checkpoints'::regclass AND a.attnum > 0
          AND NOT a.attisdropped
        ORDER BY a.attnum $$,
    $$ VALUES (1, 'consumer', 'text', true, 'C'),
              (2, 'position', 'bigint', true, ''),
              (3, 'updated_at', 'timestamp with time zone', true, '') $$,
    'checkpoints: columns in order, with types, NOT NULL and collation "C" for the name');
SELECT results_eq(
    $$ SELECT a.attnum::int, a.attname::text COLLATE "default", format_type(a.atttypid, a.atttypmod),
              a.attnotnull, coalesce(c.collname::text, '') COLLATE "default"
         FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation
        WHERE a.attrelid = 'event_store.snapshots'::regclass AND a.attnum > 0
          AND NOT a.attisdropped
        ORDER BY a.attnum $$,
    $$ VALUES (1, 'stream', 'text', true, 'C'),
              (2, 'version', 'bigint', true, ''),
              (3, 'state', 'jsonb', true, ''),
              (4, 'schema_version', 'integer', true, ''),
              (5, 'created_at', 'timestamp with time zone', true, '') $$,
    'snapshots: columns in order, with types, NOT NULL and collation "C" for the stream');
SELECT results_eq(
    $$ SELECT a.attnum::int, a.attname::text COLLATE "default", format_type(a.atttypid, a.atttypmod),
              a.attnotnull, coalesce(c.collname::text, '') COLLATE "default"
         FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation
        WHERE a.attrelid = 'event_store.upcasters'::regclass AND a.attnum > 0
          AND NOT a.attisdropped
        ORDER BY a.attnum $$,
    $$ VALUES (1, 'type', 'text', true, 'C'),
              (2, 'from_schema_version', 'integer', true, ''),
              (3, 'upcaster', 'text', true, 'default'),
              (4, 'created_at', 'timestamp with time zone', true, '') $$,
    'upcasters: columns in order, with types, NOT NULL and collation "C" for the type (the upcaster''s signature as text: a reg* column would stop pg_upgrade)');
SELECT results_eq(
    $$ SELECT a.attnum::int, a.attname::text COLLATE "default", format_type(a.atttypid, a.atttypmod),
              a.attnotnull, coalesce(c.collname::text, '') COLLATE "default"
         FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation
        WHERE a.attrelid = 'event_store.erasures'::regclass AND a.attnum > 0
          AND NOT a.attisdropped
        ORDER BY a.attnum $$,
    $$ VALUES (1, 'stream', 'text', true, 'C'),
              (2, 'erased_at', 'timestamp with time zone', true, ''),
              (3, 'erased_by', 'name', true, 'C'),
              (4, 'session_user_name', 'name', true, 'C'),
              (5, 'events_erased', 'bigint', true, ''),
              (6, 'last_version', 'bigint', true, ''),
              (7, 'reason', 'text', false, 'default'),
              (8, 'last_position', 'bigint', true, '') $$,
    'erasures: columns in order, with types, NOT NULL and collation "C" for the stream');
SELECT results_eq(
    $$ SELECT a.attnum::int, a.attname::text COLLATE "default", format_type(a.atttypid, a.atttypmod),
              coalesce(c.collname::text, '') COLLATE "default"
         FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation
        WHERE a.attrelid = 'event_store.es_consumers'::regclass AND a.attnum > 0
          AND NOT a.attisdropped
        ORDER BY a.attnum $$,
    $$ VALUES (1, 'consumer', 'text', 'C'),
              (2, 'position', 'bigint', ''),
              (3, 'head', 'bigint', ''),
              (4, 'lag_positions', 'bigint', ''),
              (5, 'lag_seconds', 'double precision', ''),
              (6, 'updated_at', 'timestamp with time zone', '') $$,
    'es_consumers: columns in order, with types');

SELECT col_type_is('event_store', 'events', 'position', 'bigint', 'events.position is bigint');
SELECT col_type_is('event_store', 'events', 'stream', 'text', 'events.stream is text');
SELECT col_type_is('event_store', 'events', 'version', 'bigint', 'events.version is bigint');
SELECT col_type_is('event_store', 'events', 'type', 'text', 'events.type is text');
SELECT col_type_is('event_store', 'events', 'data', 'jsonb', 'events.data is jsonb');
SELECT col_type_is('event_store', 'events', 'metadata', 'jsonb', 'events.metadata is jsonb');
SELECT col_type_is('event_store', 'events', 'event_id', 'uuid', 'events.event_id is uuid');
SELECT col_type_is('event_store', 'events', 'schema_version', 'integer', 'events.schema_version is integer');
SELECT col_type_is('event_store', 'events', 'created_at', 'timestamp with time zone', 'events.created_at is timestamp with time zone');
SELECT col_type_is('event_store', 'streams', 'id', 'bigint', 'streams.id is bigint');
SELECT col_type_is('event_store', 'streams', 'name', 'text', 'streams.name is text');
SELECT col_type_is('event_store', 'streams', 'category', 'text', 'streams.category is text');
SELECT col_type_is('event_store', 'streams', 'version', 'bigint', 'streams.version is bigint');
SELECT col_type_is('event_store', 'streams', 'created_at', 'timestamp with time zone', 'streams.created_at is timestamp with time zone');
SELECT col_type_is('event_store', 'streams', 'updated_at', 'timestamp with time zone', 'streams.updated_at is timestamp with time zone');
SELECT col_type_is('event_store', 'streams', 'metadata', 'jsonb', 'streams.metadata is jsonb');
SELECT col_type_is('event_store', 'streams', 'erased_at', 'timestamp with time zone', 'streams.erased_at is timestamp with time zone');
SELECT col_type_is('event_store', 'checkpoints', 'consumer', 'text', 'checkpoints.consumer is text');
SELECT col_type_is('event_store', 'checkpoints', 'position', 'bigint', 'checkpoints.position is bigint');
SELECT col_type_is('event_store', 'checkpoints', 'updated_at', 'timestamp with time zone', 'checkpoints.updated_at is timestamp with time zone');
SELECT col_type_is('event_store', 'snapshots', 'stream', 'text', 'snapshots.stream is text');
SELECT col_type_is('event_store', 'snapshots', 'version', 'bigint', 'snapshots.version is bigint');
SELECT col_type_is('event_store', 'snapshots', 'state', 'jsonb', 'snapshots.state is jsonb');
SELECT col_type_is('event_store', 'snapshots', 'schema_version', 'integer', 'snapshots.schema_version is integer');
SELECT col_type_is('event_store', 'snapshots', 'created_at', 'timestamp with time zone', 'snapshots.created_at is timestamp with time zone');
SELECT col_type_is('event_store', 'upcasters', 'type', 'text', 'upcasters.type is text');
SELECT col_type_is('event_store', 'upcasters', 'from_schema_version', 'integer', 'upcasters.from_schema_version is integer');
SELECT col_type_is('event_store', 'upcasters', 'upcaster', 'text', 'upcasters.upcaster is text');
SELECT col_type_is('event_store', 'upcasters', 'created_at', 'timestamp with time zone', 'upcasters.created_at is timestamp with time zone');
SELECT col_type_is('event_store', 'erasures', 'stream', 'text', 'erasures.stream is text');
SELECT col_type_is('event_store', 'erasures', 'erased_at', 'timestamp with time zone', 'erasures.erased_at is timestamp with time zone');
SELECT col_type_is('event_store', 'erasures', 'erased_by', 'name', 'erasures.erased_by is name');
SELECT col_type_is('event_store', 'erasures', 'session_user_name', 'name', 'erasures.session_user_name is name');
SELECT col_type_is('event_store', 'erasures', 'events_erased', 'bigint', 'erasures.events_erased is bigint');
SELECT col_type_is('event_store', 'erasures', 'last_version', 'bigint', 'erasures.last_version is bigint');
SELECT col_type_is('event_store', 'erasures', 'reason', 'text', 'erasures.reason is text');
SELECT col_type_is('event_store', 'erasures', 'last_position', 'bigint', 'erasures.last_position is bigint');
SELECT col_type_is('event_store', 'es_consumers', 'consumer', 'text', 'es_consumers.consumer is text');
SELECT col_type_is('event_store', 'es_consumers', 'position', 'bigint', 'es_consumers.position is bigint');
SELECT col_type_is('event_store', 'es_consumers', 'head', 'bigint', 'es_consumers.head is bigint');
SELECT col_type_is('event_store', 'es_consumers', 'lag_positions', 'bigint', 'es_consumers.lag_positions is bigint');
SELECT col_type_is('event_store', 'es_consumers', 'lag_seconds', 'double precision', 'es_consumers.lag_seconds is double precision');
SELECT col_type_is('event_store', 'es_consumers', 'updated_at', 'timestamp with time zone', 'es_consumers.updated_at is timestamp with time zone');

SELECT col_is_null('event_store', 'events', 'metadata', 'events.metadata is nullable');
SELECT col_not_null('event_store', 'events', 'data', 'events.data is NOT NULL');
SELECT col_not_null('event_store', 'streams', 'metadata', 'streams.metadata is NOT NULL');
SELECT col_is_null('event_store', 'streams', 'erased_at', 'streams.erased_at is nullable (NULL until the stream is erased)');
SELECT col_not_null('event_store', 'snapshots', 'state', 'snapshots.state is NOT NULL');
SELECT col_not_null('event_store', 'upcasters', 'upcaster', 'upcasters.upcaster is NOT NULL');
SELECT col_is_null('event_store', 'erasures', 'reason', 'erasures.reason is nullable');

-- Defaults: position and version come from the numbering trigger, not defaults.
SELECT col_hasnt_default('event_store', 'events', 'position', 'events.position has no default');
SELECT col_hasnt_default('event_store', 'events', 'version', 'events.version has no default');
SELECT col_hasnt_default('event_store', 'events', 'stream', 'events.stream has no default');
SELECT col_hasnt_default('event_store', 'events', 'type', 'events.type has no default');
SELECT col_hasnt_default('event_store', 'events', 'data', 'events.data has no default');
SELECT col_hasnt_default('event_store', 'events', 'metadata', 'events.metadata has no default');
SELECT col_default_is('event_store', 'events', 'event_id', 'event_store.es_uuid_v7()', 'events.event_id defaults to event_store.es_uuid_v7()');
SELECT col_default_is('event_store', 'events', 'schema_version', 1, 'events.schema_version defaults to 1');
SELECT col_default_is('event_store', 'events', 'created_at', 'now()', 'events.created_at defaults to now()');
SELECT col_default_is('event_store', 'streams', 'version', 0::bigint, 'streams.version defaults to 0::bigint');
SELECT col_default_is('event_store', 'streams', 'created_at', 'now()', 'streams.created_at defaults to now()');
SELECT col_default_is('event_store', 'streams', 'updated_at', 'now()', 'streams.updated_at defaults to now()');
SELECT col_default_is('event_store', 'streams', 'metadata', '{}'::jsonb, 'streams.metadata defaults to {}::jsonb');
SELECT col_hasnt_default('event_store', 'checkpoints', 'consumer', 'checkpoints.consumer has no default');
SELECT col_hasnt_default('event_store', 'checkpoints', 'position', 'checkpoints.position has no default');
SELECT col_default_is('event_store', 'checkpoints', 'updated_at', 'now()', 'checkpoints.updated_at defaults to now()');
SELECT col_hasnt_default('event_store', 'streams', 'erased_at', 'streams.erased_at has no default');
SELECT col_hasnt_default('event_store', 'snapshots', 'stream', 'snapshots.stream has no default');
SELECT col_hasnt_default('event_store', 'snapshots', 'version', 'snapshots.version has no default');
SELECT col_hasnt_default('event_store', 'snapshots', 'state', 'snapshots.state has no default');
SELECT col_default_is('event_store', 'snapshots', 'schema_version', 1, 'snapshots.schema_version defaults to 1');
SELECT col_default_is('event_store', 'snapshots', 'created_at', 'now()', 'snapshots.created_at defaults to now()');
SELECT col_hasnt_default('event_store', 'upcasters', 'type', 'upcasters.type has no default');
SELECT col_hasnt_default('event_store', 'upcasters', 'from_schema_version', 'upcasters.from_schema_version has no default');
SELECT col_hasnt_default('event_store', 'upcasters', 'upcaster', 'upcasters.upcaster has no default');
SELECT col_default_is('event_store', 'upcasters', 'created_at', 'now()', 'upcasters.created_at defaults to now()');
-- es_erase_stream fills every column of its audit row; last_position
-- defaults to 0 (no event erased).
SELECT col_hasnt_default('event_store', 'erasures', 'stream', 'erasures.stream has no default');
SELECT col_hasnt_default('event_store', 'erasures', 'erased_at', 'erasures.erased_at has no default');
SELECT col_hasnt_default('event_store', 'erasures', 'erased_by', 'erasures.erased_by has no default');
SELECT col_hasnt_default('event_store', 'erasures', 'session_user_name', 'erasures.session_user_name has no default');
SELECT col_hasnt_default('event_store', 'erasures', 'events_erased', 'erasures.events_erased has no default');
SELECT col_hasnt_default('event_store', 'erasures', 'last_version', 'erasures.last_version has no default');
SELECT col_hasnt_default('event_store', 'erasures', 'reason', 'erasures.reason has no default');
SELECT col_default_is('event_store', 'erasures', 'last_position', 0::bigint, 'erasures.last_position defaults to 0::bigint');
-- Every default of every table, and no generated column but the identity.
SELECT results_eq(
    $$ SELECT d.adrelid::regclass::text, a.attname::text COLLATE "default",
              pg_get_expr(d.adbin, d.adrelid) COLLATE "default"
         FROM pg_attrdef d
         JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
         JOIN pg_class c ON c.oid = d.adrelid
        WHERE c.relnamespace = 'event_store'::regnamespace
        ORDER BY 1, a.attnum $$,
    $$ VALUES ('event_store.checkpoints', 'updated_at', 'now()'),
              ('event_store.dead_letters', 'failed_at', 'now()'),
              ('event_store.erasures', 'last_position', '0'),
              ('event_store.events', 'event_id', 'event_store.es_uuid_v7()'),
              ('event_store.events', 'schema_version', '1'),
              ('event_store.events', 'created_at', 'now()'),
              ('event_store.projections', 'state', '''running''::text'),
              ('event_store.projections', 'position', '0'),
              ('event_store.projections', 'attempts', '0'),
              ('event_store.projections', 'processed', '0'),
              ('event_store.projections', 'dead_lettered', '0'),
              ('event_store.projections', 'registered_at', 'now()'),
              ('event_store.projections', 'saved_at', 'now()'),
              ('event_store.snapshots', 'schema_version', '1'),
              ('event_store.snapshots', 'created_at', 'now()'),
              ('event_store.streams', 'version', '0'),
              ('event_store.streams', 'created_at', 'now()'),
              ('event_store.streams', 'updated_at', 'now()'),
              ('event_store.streams', 'metadata', '''{}''::jsonb'),
              ('event_store.upcasters', 'created_at', 'now()') $$,
    'exactly these column defaults in event_store');
SELECT results_eq(
    $$ SELECT a.attrelid::regclass::text, a.attname::text COLLATE "default",
              a.attidentity::text, a.attgenerated::text
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        WHERE c.relnamespace = 'event_store'::regnamespace AND a.attnum > 0
          AND (a.attidentity <> '' OR a.attgenerated <> '')
        ORDER BY 1, 2 $$,
    $$ VALUES ('event_store.streams', 'id', 'a', '') $$,
    'streams.id is the only identity column, and no column is generated');
SELECT is(
    (SELECT attidentity FROM pg_attribute
      WHERE attrelid = 'event_store.streams'::regclass AND attname = 'id'),
    'a'::"char",
    'streams.id is GENERATED ALWAYS AS IDENTITY');
SELECT is(
    pg_get_serial_sequence('event_store.streams', 'id'),
    'event_store.streams_id_seq',
    'streams.id draws from event_store.streams_id_seq');
SELECT is(
    (SELECT reloptions FROM pg_class WHERE oid = 'event_store.streams'::regclass),
    ARRAY['fillfactor=70'],
    'streams has fillfactor 70 (HOT updates of the version)');
SELECT is(
    (SELECT reloptions FROM pg_class WHERE oid = 'event_store.events'::regclass),
    NULL::text[],
    'events has no storage options');
SELECT is(
    (SELECT reloptions FROM pg_class WHERE oid = 'event_store.checkpoints'::regclass),
    NULL::text[],
    'checkpoints has no storage options');
SELECT is(
    (SELECT reloptions FROM pg_class WHERE oid = 'event_store.es_projections'::regclass),
    ARRAY['security_barrier=true'],
    'es_projections is a security barrier (a caller''s function cannot see others'' rows)');
SELECT is(
    (SELECT reloptions FROM pg_class WHERE oid = 'event_store.es_dead_letters'::regclass),
    ARRAY['security_barrier=true'],
    'es_dead_letters is a security barrier');
SELECT is(
    (SELECT reloptions FROM pg_class WHERE oid = 'event_store.snapshots'::regclass),
    NULL::text[],
    'snapshots has no storage options');
SELECT is(
    (SELECT reloptions FROM pg_class WHERE oid = 'event_store.upcasters'::regclass),
    NULL::text[],
    'upcasters has no storage options');
SELECT is(
    (SELECT reloptions FROM pg_class WHERE oid = 'event_store.erasures'::regclass),
    NULL::text[],
    'erasures has no storage options');
SELECT is_empty(
    $$ SELECT oid::regclass::text FROM pg_class
        WHERE relnamespace = 'event_store'::regnamespace AND relkind IN ('r', 'S', 'i')
          AND relpersistence <> 'p' $$,
    'every table, index and sequence is permanent (WAL-logged, survives a crash)');

-- Keys, constraints, indexes --------------------------------------------------

SELECT has_pk('event_store', 'events', 'events has a primary key');
SELECT has_pk('event_store', 'streams', 'streams has a primary key');
SELECT has_pk('event_store', 'checkpoints', 'checkpoints has a primary key');
SELECT has_pk('event_store', 'snapshots', 'snapshots has a primary key');
SELECT has_pk('event_store', 'upcasters', 'upcasters has a primary key');
SELECT has_pk('event_store', 'erasures', 'erasures has a primary key');
SELECT col_is_pk('event_store', 'events', ARRAY['position'], 'events: primary key (position)');
SELECT col_is_pk('event_store', 'streams', ARRAY['id'], 'streams: primary key (id)');
SELECT col_is_pk('event_store', 'checkpoints', ARRAY['consumer'], 'checkpoints: primary key (consumer)');
SELECT col_is_pk('event_store', 'snapshots', ARRAY['stream'], 'snapshots: primary key (stream), one per stream');
SELECT col_is_pk('event_store', 'upcasters', ARRAY['type', 'from_schema_version'],
                 'upcasters: primary key (type, from_schema_version)');
SELECT col_is_pk('event_store', 'erasures', ARRAY['stream'], 'erasures: primary key (stream), one per erased stream');
SELECT col_is_unique('event_store', 'events', ARRAY['stream', 'version'],
                     'events: unique (stream, version)');
SELECT col_is_unique('event_store', 'events', ARRAY['event_id'], 'events: unique (event_id)');
SELECT col_is_unique('event_store', 'streams', ARRAY['name'], 'streams: unique (name)');
SELECT col_has_check('event_store', 'events', ARRAY['version'], 'events.version has a check');
SELECT col_has_check('event_store', 'events', ARRAY['schema_version'],
                     'events.schema_version has a check');
SELECT col_has_check('event_store', 'streams', ARRAY['version'], 'streams.version has a check');
SELECT col_has_check('event_store', 'checkpoints', ARRAY['position'], 'checkpoints.position has a check');
SELECT col_has_check('event_store', 'snapshots', ARRAY['version'], 'snapshots.version has a check');
SELECT col_has_check('event_store', 'snapshots', ARRAY['schema_version'],
                     'snapshots.schema_version has a check');
SELECT col_has_check('event_store', 'upcasters', ARRAY['from_schema_version'],
                     'upcasters.from_schema_version has a check');
SELECT hasnt_fk('event_store', 'checkpoints', 'checkpoints has no foreign key');
SELECT has_fk('event_store', 'snapshots', 'snapshots has a foreign key');
SELECT hasnt_fk('event_store', 'upcasters', 'upcasters has no foreign key');
SELECT hasnt_fk('event_store', 'erasures', 'erasures has no foreign key');

SELECT results_eq(
    $$ SELECT conrelid::regclass::text, conname::text COLLATE "default", pg_get_constraintdef(oid)
         FROM pg_constraint
        WHERE connamespace = 'event_store'::regnamespace
          AND contype <> 'n'  -- 18 records NOT NULL as constraints too (attnotnull, above)
        ORDER BY 1, 2 $$,
    $$ VALUES ('event_store.checkpoints', 'checkpoints_pkey', 'PRIMARY KEY (consumer)'),
              ('event_store.checkpoints', 'checkpoints_position_check', 'CHECK (("position" >= 0))'),
              ('event_store.dead_letters', 'dead_letters_pkey', 'PRIMARY KEY (consumer, "position")'),
              ('event_store.erasures', 'erasures_pkey', 'PRIMARY KEY (stream)'),
              ('event_store.events', 'events_event_id_key', 'UNIQUE (event_id)'),
              ('event_store.events', 'events_pkey', 'PRIMARY KEY ("position")'),
              ('event_store.events', 'events_schema_version_check', 'CHECK ((schema_version >= 1))'),
              ('event_store.events', 'events_stream_fkey', 'FOREIGN KEY (stream) REFERENCES event_store.streams(name)'),
              ('event_store.events', 'events_stream_version_key', 'UNIQUE (stream, version)'),
              ('event_store.events', 'events_version_check', 'CHECK ((version >= 1))'),
              ('event_store.projections', 'projections_backoff_check', 'CHECK (((backoff >= ''00:00:00''::interval) AND (backoff <= ''1 day''::interval)))'),
              ('event_store.projections', 'projections_filter_check', 'CHECK (((category IS NULL) OR (types IS NULL)))'),
              ('event_store.projections', 'projections_max_attempts_check', 'CHECK (((max_attempts >= 1) AND (max_attempts <= 100)))'),
              ('event_store.projections', 'projections_on_error_check', 'CHECK ((on_error = ANY (ARRAY[''pause''::text, ''skip''::text])))'),
              ('event_store.projections', 'projections_page_size_check', 'CHECK (((page_size >= 1) AND (page_size <= 10000)))'),
              ('event_store.projections', 'projections_pkey', 'PRIMARY KEY (name)'),
              ('event_store.projections', 'projections_position_check', 'CHECK ((("position" >= 0) AND ((attempts >= 0) AND (attempts <= 1000))))'),
              ('event_store.projections', 'projections_retry_at_check', 'CHECK (((retry_at IS NULL) OR isfinite(retry_at)))'),
              ('event_store.projections', 'projections_saved_at_check', 'CHECK (isfinite(saved_at))'),
              ('event_store.projections', 'projections_shape_check', 'CHECK ((shape = ANY (ARRAY[''page''::text, ''event''::text])))'),
              ('event_store.projections', 'projections_state_check', 'CHECK ((state = ANY (ARRAY[''running''::text, ''paused''::text, ''faulted''::text])))'),
              ('event_store.snapshots', 'snapshots_pkey', 'PRIMARY KEY (stream)'),
              ('event_store.snapshots', 'snapshots_schema_version_check', 'CHECK ((schema_version >= 1))'),
              ('event_store.snapshots', 'snapshots_stream_fkey', 'FOREIGN KEY (stream) REFERENCES event_store.streams(name)'),
              ('event_store.snapshots', 'snapshots_version_check', 'CHECK ((version >= 1))'),
              ('event_store.streams', 'streams_name_key', 'UNIQUE (name)'),
              ('event_store.streams', 'streams_pkey', 'PRIMARY KEY (id)'),
              ('event_store.streams', 'streams_version_check', 'CHECK ((version >= 0))'),
              ('event_store.upcasters', 'upcasters_from_schema_version_check', 'CHECK (((from_schema_version >= 1) AND (from_schema_version < 2147483647)))'),
              ('event_store.upcasters', 'upcasters_pkey', 'PRIMARY KEY (type, from_schema_version)') $$,
    'exactly these constraints (the foreign keys are NO ACTION: nothing cascades from streams)');
SELECT fk_ok('event_store', 'events', 'stream', 'event_store', 'streams', 'name');
SELECT fk_ok('event_store', 'snapshots', 'stream', 'event_store', 'streams', 'name');
SELECT is(
    (SELECT count(*)::int FROM pg_constraint
      WHERE connamespace = 'event_store'::regnamespace
        AND (condeferrable OR condeferred)),
    0,
    'no constraint is deferrable (es_append refuses deferrable unique constraints)');

SELECT indexes_are('event_store', 'events',
    ARRAY['events_pkey', 'events_stream_version_key', 'events_event_id_key',
          'events_type_position', 'events_category_position', 'events_created_at']);
SELECT indexes_are('event_store', 'streams',
    ARRAY['streams_pkey', 'streams_name_key', 'streams_with_metadata']);
SELECT indexes_are('event_store', 'checkpoints', ARRAY['checkpoints_pkey']);
SELECT indexes_are('event_store', 'snapshots', ARRAY['snapshots_pkey']);
SELECT indexes_are('event_store', 'upcasters', ARRAY['upcasters_pkey']);
SELECT indexes_are('event_store', 'erasures', ARRAY['erasures_pkey']);
SELECT has_index('event_store', 'events', 'events_pkey', ARRAY['"position"']);
SELECT has_index('event_store', 'events', 'events_stream_version_key', ARRAY['stream', 'version']);
SELECT has_index('event_store', 'events', 'events_event_id_key', ARRAY['event_id']);
SELECT has_index('event_store', 'streams', 'streams_pkey', ARRAY['id']);
SELECT has_index('event_store', 'streams', 'streams_name_key', ARRAY['name']);
SELECT has_index('event_store', 'events', 'events_type_position', ARRAY['type', '"position"']);
SELECT has_index('event_store', 'checkpoints', 'checkpoints_pkey', ARRAY['consumer']);
SELECT has_index('event_store', 'streams', 'streams_with_metadata', ARRAY['name']);
SELECT has_index('event_store', 'snapshots', 'snapshots_pkey', ARRAY['stream']);
SELECT has_index('event_store', 'upcasters', 'upcasters_pkey', ARRAY['type', 'from_schema_version']);
SELECT has_index('event_store', 'erasures', 'erasures_pkey', ARRAY['stream']);
SELECT index_is_primary('event_store', 'events', 'events_pkey');
SELECT index_is_primary('event_store', 'streams', 'streams_pkey');
SELECT index_is_unique('event_store', 'events', 'events_stream_version_key');
SELECT index_is_unique('event_store', 'events', 'events_event_id_key');
SELECT index_is_unique('event_store', 'streams', 'streams_name_key');
SELECT index_is_type('event_store', 'events', 'events_stream_version_key', 'btree');
SELECT index_is_primary('event_store', 'checkpoints', 'checkpoints_pkey');
SELECT index_is_primary('event_store', 'snapshots', 'snapshots_pkey');
SELECT index_is_primary('event_store', 'upcasters', 'upcasters_pkey');
SELECT index_is_primary('event_store', 'erasures', 'erasures_pkey');
SELECT isnt_empty(
    $$ SELECT 1 FROM pg_index WHERE indexrelid = 'event_store.events_type_position'::regclass
                                 AND NOT indisunique $$,
    'events_type_position is not unique');
SELECT isnt_empty(
    $$ SELECT 1 FROM pg_index WHERE indexrelid = 'event_store.events_category_position'::regclass
                                 AND NOT indisunique $$,
    'events_category_position is not unique');
-- es_lifecycle.c loads every stream's rules from streams_with_metadata
-- alone: a partial index of the streams whose metadata is not empty or that
-- were erased.
SELECT isnt_empty(
    $$ SELECT 1 FROM pg_index WHERE indexrelid = 'event_store.streams_with_metadata'::regclass
                                 AND NOT indisunique AND indpred IS NOT NULL AND indisvalid $$,
    'streams_with_metadata is a valid partial index, not unique');
-- es_feed.c scans these by name: btree, the exact keys, the filter column
-- first with collation "C" (the scan key uses the index's collation).
SELECT results_eq(
    $$ SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid),
              (SELECT array_agg(coalesce(c.collname::text, '-') COLLATE "default" ORDER BY u.n)
                 FROM unnest(i.indcollation::oid[]) WITH ORDINALITY AS u(coll, n)
                 LEFT JOIN pg_collation c ON c.oid = u.coll)
         FROM pg_index i
        WHERE i.indexrelid IN (SELECT oid FROM pg_class
                                WHERE relnamespace = 'event_store'::regnamespace)
        ORDER BY 1 $$,
    $$ VALUES ('event_store.checkpoints_pkey', 'CREATE UNIQUE INDEX checkpoints_pkey ON event_store.checkpoints USING btree (consumer)', ARRAY['C']),
              ('event_store.dead_letters_pkey', 'CREATE UNIQUE INDEX dead_letters_pkey ON event_store.dead_letters USING btree (consumer, "position")', ARRAY['C', '-']),
              ('event_store.erasures_pkey', 'CREATE UNIQUE INDEX erasures_pkey ON event_store.erasures USING btree (stream)', ARRAY['C']),
              ('event_store.events_category_position', 'CREATE INDEX events_category_position ON event_store.events USING btree (event_store.es_category(stream), "position")', ARRAY['C', '-']),
              ('event_store.events_created_at', 'CREATE INDEX events_created_at ON event_store.events USING brin (created_at) WITH (pages_per_range=''32'')', ARRAY['-']),
              ('event_store.events_event_id_key', 'CREATE UNIQUE INDEX events_event_id_key ON event_store.events USING btree (event_id)', ARRAY['-']),
              ('event_store.events_pkey', 'CREATE UNIQUE INDEX events_pkey ON event_store.events USING btree ("position")', ARRAY['-']),
              ('event_store.events_stream_version_key', 'CREATE UNIQUE INDEX events_stream_version_key ON event_store.events USING btree (stream, version)', ARRAY['C', '-']),
              ('event_store.events_type_position', 'CREATE INDEX events_type_position ON event_store.events USING btree (type, "position")', ARRAY['C', '-']),
              ('event_store.projections_pkey', 'CREATE UNIQUE INDEX projections_pkey ON event_store.projections USING btree (name)', ARRAY['C']),
              ('event_store.snapshots_pkey', 'CREATE UNIQUE INDEX snapshots_pkey ON event_store.snapshots USING btree (stream)', ARRAY['C']),
              ('event_store.streams_name_key', 'CREATE UNIQUE INDEX streams_name_key ON event_store.streams USING btree (name)', ARRAY['C']),
              ('event_store.streams_pkey', 'CREATE UNIQUE INDEX streams_pkey ON event_store.streams USING btree (id)', ARRAY['-']),
              ('event_store.streams_with_metadata', 'CREATE INDEX streams_with_metadata ON event_store.streams USING btree (name) WHERE ((metadata <> ''{}''::jsonb) OR (erased_at IS NOT NULL))', ARRAY['C']),
              ('event_store.upcasters_pkey', 'CREATE UNIQUE INDEX upcasters_pkey ON event_store.upcasters USING btree (type, from_schema_version)', ARRAY['C', '-']) $$,
    'every index: its definition and key collations');

-- Triggers --------------------------------------------------------------------

SELECT triggers_are('event_store', 'events',
                    ARRAY['events_number', 'events_count', 'events_immutable']);
SELECT triggers_are('event_store', 'streams', ARRAY['streams_maintained', 'streams_inserted', 'streams_replicated']);
SELECT triggers_are('event_store', 'checkpoints', ARRAY[]::name[]);
SELECT triggers_are('event_store', 'snapshots', ARRAY[]::name[]);
SELECT triggers_are('event_store', 'upcasters', ARRAY['upcasters_lock', 'upcasters_check', 'upcasters_inserted',
    'upcasters_updated', 'upcasters_deleted', 'upcasters_truncated', 'upcasters_replicated']);
SELECT triggers_are('event_store', 'erasures', ARRAY['erasures_immutable']);
SELECT trigger_is('event_store', 'events', 'events_number',
                  'event_store', '_es_events_before_insert');
SELECT trigger_is('event_store', 'events', 'events_count',
                  'event_store', '_es_events_after_statement');
SELECT trigger_is('event_store', 'events', 'events_immutable',
                  'event_store', '_es_refuse_change');
SELECT trigger_is('event_store', 'streams', 'streams_maintained',
                  'event_store', '_es_refuse_change');
SELECT trigger_is('event_store', 'erasures', 'erasures_immutable',
                  'event_store', '_es_refuse_change');
SELECT trigger_is('event_store', 'upcasters', 'upcasters_inserted',
                  'event_store', '_es_registry_changed');
SELECT trigger_is('event_store', 'upcasters', 'upcasters_lock',
                  'event_store', '_es_upcasters_lock');
SELECT results_eq(
    $$ SELECT tgname::text COLLATE "default", pg_get_triggerdef(oid)
         FROM pg_trigger
        WHERE tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'event_store'::regnamespace)
          AND NOT tgisinternal
        ORDER BY 1 $$,
    $$ VALUES ('erasures_immutable', 'CREATE TRIGGER erasures_immutable BEFORE DELETE OR UPDATE OR TRUNCATE ON event_store.erasures FOR EACH STATEMENT EXECUTE FUNCTION event_store._es_refuse_change()'),
              ('events_count', 'CREATE TRIGGER events_count AFTER INSERT ON event_store.events REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION event_store._es_events_after_statement()'),
              ('events_immutable', 'CREATE TRIGGER events_immutable BEFORE DELETE OR UPDATE OR TRUNCATE ON event_store.events FOR EACH STATEMENT EXECUTE FUNCTION event_store._es_refuse_change()'),
              ('events_number', 'CREATE TRIGGER events_number BEFORE INSERT ON event_store.events FOR EACH ROW EXECUTE FUNCTION event_store._es_events_before_insert()'),
              ('projections_check', 'CREATE TRIGGER projections_check BEFORE INSERT OR UPDATE ON event_store.projections FOR EACH ROW EXECUTE FUNCTION event_store._es_projections_check()'),
              ('projections_deleted', 'CREATE TRIGGER projections_deleted AFTER DELETE ON event_store.projections FOR EACH ROW EXECUTE FUNCTION event_store._es_projections_deleted()'),
              ('streams_inserted', 'CREATE TRIGGER streams_inserted BEFORE INSERT ON event_store.streams FOR EACH ROW WHEN ((new.metadata IS DISTINCT FROM ''{}''::jsonb)) EXECUTE FUNCTION event_store._es_registry_changed()'),
              ('streams_maintained', 'CREATE TRIGGER streams_maintained BEFORE DELETE OR UPDATE OR TRUNCATE ON event_store.streams FOR EACH STATEMENT EXECUTE FUNCTION event_store._es_refuse_change()'),
              ('streams_replicated', 'CREATE TRIGGER streams_replicated BEFORE UPDATE ON event_store.streams FOR EACH ROW WHEN ((old.metadata IS DISTINCT FROM new.metadata)) EXECUTE FUNCTION event_store._es_registry_changed()'),
              ('upcasters_check', 'CREATE TRIGGER upcasters_check BEFORE INSERT OR UPDATE ON event_store.upcasters FOR EACH ROW EXECUTE FUNCTION event_store._es_upcasters_check()'),
              ('upcasters_deleted', 'CREATE TRIGGER upcasters_deleted AFTER DELETE ON event_store.upcasters REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION event_store._es_registry_changed()'),
              ('upcasters_inserted', 'CREATE TRIGGER upcasters_inserted AFTER INSERT ON event_store.upcasters REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION event_store._es_registry_changed()'),
              ('upcasters_lock', 'CREATE TRIGGER upcasters_lock BEFORE INSERT OR DELETE OR UPDATE ON event_store.upcasters FOR EACH STATEMENT EXECUTE FUNCTION event_store._es_upcasters_lock()'),
              ('upcasters_replicated', 'CREATE TRIGGER upcasters_replicated AFTER INSERT OR DELETE OR UPDATE ON event_store.upcasters FOR EACH ROW EXECUTE FUNCTION event_store._es_registry_changed()'),
              ('upcasters_truncated', 'CREATE TRIGGER upcasters_truncated AFTER TRUNCATE ON event_store.upcasters FOR EACH STATEMENT EXECUTE FUNCTION event_store._es_registry_changed()'),
              ('upcasters_updated', 'CREATE TRIGGER upcasters_updated AFTER UPDATE ON event_store.upcasters REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION event_store._es_registry_changed()') $$,
    'trigger timing, events and level (every trigger of the schema)');
SELECT results_eq(
    $$ SELECT tgname::text COLLATE "default", tgenabled::text
         FROM pg_trigger
        WHERE tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'event_store'::regnamespace)
          AND NOT tgisinternal
        ORDER BY 1 $$,
    $$ VALUES ('erasures_immutable', 'A'),
              ('events_count', 'O'),
              ('events_immutable', 'A'),
              ('events_number', 'O'),
              ('projections_check', 'A'),
              ('projections_deleted', 'A'),
              ('streams_inserted', 'A'),
              ('streams_maintained', 'A'),
              ('streams_replicated', 'R'),
              ('upcasters_check', 'A'),
              ('upcasters_deleted', 'A'),
              ('upcasters_inserted', 'A'),
              ('upcasters_lock', 'A'),
              ('upcasters_replicated', 'R'),
              ('upcasters_truncated', 'A'),
              ('upcasters_updated', 'A') $$,
    'the immutability triggers, the registry invalidations and the upcaster check are ENABLE ALWAYS (fire under session_replication_role = replica)');

-- Composite types -------------------------------------------------------------

SELECT types_are('event_store', ARRAY['es_event', 'es_append_result', 'es_upcast']);
SELECT has_composite('event_store', 'es_event', 'es_event is a composite type');
SELECT has_composite('event_store', 'es_append_result', 'es_append_result is a composite type');
SELECT has_composite('event_store', 'es_upcast', 'es_upcast is a composite type');
SELECT results_eq(
    $$ SELECT a.attname::text COLLATE "default", format_type(a.atttypid, a.atttypmod)
         FROM pg_attribute a
        WHERE a.attrelid = (SELECT typrelid FROM pg_type
                             WHERE oid = 'event_store.es_event'::regtype)
          AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum $$,
    $$ SELECT a.attname::text COLLATE "default", format_type(a.atttypid, a.atttypmod)
         FROM pg_attribute a
        WHERE a.attrelid = 'event_store.events'::regclass
          AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum $$,
    'es_event has the columns of events, in the same order (es_read_stream returns rows as stored)');
SELECT is(
    (SELECT count(*)::int FROM pg_attribute
      WHERE attrelid = (SELECT typrelid FROM pg_type WHERE oid = 'event_store.es_event'::regtype)
        AND attnum > 0),
    9,
    'es_event has 9 attributes');
SELECT results_eq(
    $$ SELECT a.attname::text COLLATE "default", format_type(a.atttypid, a.atttypmod)
         FROM pg_attribute a
        WHERE a.attrelid = (SELECT typrelid FROM pg_type
                             WHERE oid = 'event_store.es_append_result'::regtype)
          AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum $$,
    $$ VALUES ('stream', 'text'), ('first_version', 'bigint'), ('last_version', 'bigint'),
              ('first_position', 'bigint'), ('last_position', 'bigint') $$,
    'es_append_result: stream, first/last version, first/last position');
SELECT results_eq(
    $$ SELECT a.attname::text COLLATE "default", format_type(a.atttypid, a.atttypmod)
         FROM pg_attribute a
        WHERE a.attrelid = (SELECT typrelid FROM pg_type
                             WHERE oid = 'event_store.es_upcast'::regtype)
          AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum $$,
    $$ VALUES ('data', 'jsonb'), ('metadata', 'jsonb') $$,
    'es_upcast (what a two-argument upcaster returns): data, metadata');

-- Functions -------------------------------------------------------------------

SELECT functions_are('event_store', ARRAY[
    '_es_install', '_es_events_before_insert', '_es_events_after_statement',
    '_es_refuse_change', '_es_check_consumer', '_es_check_position',
    'es_uuid_v7', 'es_category', 'es_append', 'es_read_stream',
    'es_stream_version', 'es_head_position',
    'es_read_all', 'es_read_category', 'es_consumer_member',
    'es_checkpoint_save', 'es_checkpoint_get', 'es_checkpoint_reset',
    'es_save_snapshot', 'es_load_snapshot', 'es_load_aggregate', 'es_read_stream_at',
    'es_register_upcaster', 'es_unregister_upcaster', 'es_set_stream_metadata',
    'es_delete_stream', 'es_erase_stream', '_es_registry_changed',
    '_es_check_stream_name', '_es_check_type', '_es_check_upcaster', '_es_snapshot_floor',
    '_es_upcasters_check', '_es_head_if_known', '_es_check_schema_version',
    '_es_check_checkpoint', '_es_check_not_erased', '_es_lock_upcasters', '_es_upcasters_lock',
    '_es_call_handler', '_es_check_filter', '_es_check_handler', '_es_check_projection_row',
    '_es_project_page', '_es_projection_for_update', '_es_projections_check', '_es_wake_runner',
    'es_caused_by', 'es_feed_reached', 'es_pause_projection', 'es_position_before_time',
    'es_rebuild_projection', 'es_register_projection', 'es_resume_projection',
    'es_retry_projection', 'es_run_projection', 'es_unregister_projection',
    '_es_check_not_in_handler', '_es_acts_for', '_es_project_failed', '_es_projections_deleted',
    'es_stats', 'es_stats_reset', '_es_lag_seconds']);
SELECT is(
    (SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'event_store'::regnamespace),
    66,
    'exactly 66 functions (two forms of es_append and of es_rebuild_projection)');
SELECT is(
    (SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'event_store'::regnamespace
                                       AND prokind <> 'f'),
    0,
    'no procedures, aggregates or window functions');

SELECT has_function('event_store', '_es_install', ARRAY[]::name[]);
SELECT has_function('event_store', 'es_uuid_v7', ARRAY[]::name[]);
SELECT has_function('event_store', 'es_category', ARRAY['text']);
SELECT has_function('event_store', 'es_append', ARRAY['text', 'bigint', 'jsonb']);
SELECT has_function('event_store', 'es_append',
                    ARRAY['text', 'bigint', 'text', 'jsonb', 'jsonb', 'uuid', 'integer']);
SELECT has_function('event_store', 'es_read_stream', ARRAY['text', 'bigint', 'bigint', 'boolean']);
SELECT has_function('event_store', 'es_stream_version', ARRAY['text']);
SELECT has_function('event_store', 'es_head_position', ARRAY[]::name[]);
SELECT has_function('event_store', '_es_events_before_insert', ARRAY[]::name[]);
SELECT has_function('event_store', '_es_events_after_statement', ARRAY[]::name[]);
SELECT has_function('event_store', '_es_refuse_change', ARRAY[]::name[]);
SELECT has_function('event_store', 'es_read_all', ARRAY['bigint', 'bigint', 'text[]']);
SELECT has_function('event_store', 'es_read_category',
                    ARRAY['text', 'bigint', 'bigint', 'integer', 'integer']);
SELECT has_function('event_store', 'es_consumer_member', ARRAY['text', 'integer']);
SELECT has_function('event_store', 'es_checkpoint_save', ARRAY['text', 'bigint', 'bigint']);
SELECT has_function('event_store', 'es_checkpoint_get', ARRAY['text']);
SELECT has_function('event_store', 'es_checkpoint_reset', ARRAY['text', 'bigint']);
SELECT has_function('event_store', '_es_check_consumer', ARRAY['text']);
SELECT has_function('event_store', '_es_check_position', ARRAY['bigint']);
SELECT has_function('event_store', 'es_save_snapshot', ARRAY['text', 'bigint', 'jsonb', 'integer']);
SELECT has_function('event_store', 'es_load_snapshot', ARRAY['text', 'integer']);
SELECT has_function('event_store', 'es_load_aggregate', ARRAY['text', 'integer']);
SELECT has_function('event_store', 'es_read_stream_at',
                    ARRAY['text', 'bigint', 'timestamp with time zone']);
SELECT has_function('event_store', 'es_register_upcaster', ARRAY['text', 'integer', 'regprocedure']);
SELECT has_function('event_store', 'es_unregister_upcaster', ARRAY['text', 'integer']);
SELECT has_function('event_store', 'es_set_stream_metadata', ARRAY['text', 'jsonb']);
SELECT has_function('event_store', 'es_delete_stream', ARRAY['text', 'bigint']);
SELECT has_function('event_store', 'es_erase_stream', ARRAY['text', 'text']);
SELECT has_function('event_store', '_es_registry_changed', ARRAY[]::name[]);

SELECT function_returns('event_store', '_es_install', ARRAY[]::name[], 'void');
SELECT function_returns('event_store', 'es_uuid_v7', ARRAY[]::name[], 'uuid');
SELECT function_returns('event_store', 'es_category', ARRAY['text'], 'text');
SELECT function_returns('event_store', 'es_append', ARRAY['text', 'bigint', 'jsonb'],
                        'event_store.es_append_result');
SELECT function_returns('event_store', 'es_append',
                        ARRAY['text', 'bigint', 'text', 'jsonb', 'jsonb', 'uuid', 'integer'],
                        'event_store.es_append_result');
SELECT function_returns('event_store', 'es_read_stream', ARRAY['text', 'bigint', 'bigint', 'boolean'],
                        'setof event_store.es_event');
SELECT function_returns('event_store', 'es_stream_version', ARRAY['text'], 'bigint');
SELECT function_returns('event_store', 'es_head_position', ARRAY[]::name[], 'bigint');
SELECT function_returns('event_store', '_es_events_before_insert', ARRAY[]::name[], 'trigger');
SELECT function_returns('event_store', '_es_events_after_statement', ARRAY[]::name[], 'trigger');
SELECT function_returns('event_store', '_es_refuse_change', ARRAY[]::name[], 'trigger');
SELECT function_returns('event_store', 'es_read_all', ARRAY['bigint', 'bigint', 'text[]'],
                        'setof event_store.es_event');
SELECT function_returns('event_store', 'es_read_category',
                        ARRAY['text', 'bigint', 'bigint', 'integer', 'integer'],
                        'setof event_store.es_event');
SELECT function_returns('event_store', 'es_consumer_member', ARRAY['text', 'integer'], 'integer');
SELECT function_returns('event_store', 'es_checkpoint_save', ARRAY['text', 'bigint', 'bigint'], 'bigint');
SELECT function_returns('event_store', 'es_checkpoint_get', ARRAY['text'], 'bigint');
SELECT function_returns('event_store', 'es_checkpoint_reset', ARRAY['text', 'bigint'], 'bigint');
SELECT function_returns('event_store', '_es_check_consumer', ARRAY['text'], 'void');
SELECT function_returns('event_store', '_es_check_position', ARRAY['bigint'], 'void');
SELECT function_returns('event_store', 'es_save_snapshot', ARRAY['text', 'bigint', 'jsonb', 'integer'],
                        'boolean');
SELECT function_returns('event_store', 'es_load_snapshot', ARRAY['text', 'integer'], 'setof record');
SELECT function_returns('event_store', 'es_load_aggregate', ARRAY['text', 'integer'],
                        'setof event_store.es_event');
SELECT function_returns('event_store', 'es_read_stream_at',
                        ARRAY['text', 'bigint', 'timestamp with time zone'],
                        'setof event_store.es_event');
SELECT function_returns('event_store', 'es_register_upcaster', ARRAY['text', 'integer', 'regprocedure'],
                        'void');
SELECT function_returns('event_store', 'es_unregister_upcaster', ARRAY['text', 'integer'], 'void');
SELECT function_returns('event_store', 'es_set_stream_metadata', ARRAY['text', 'jsonb'], 'jsonb');
SELECT function_returns('event_store', 'es_delete_stream', ARRAY['text', 'bigint'], 'bigint');
SELECT function_returns('event_store', 'es_erase_stream', ARRAY['text', 'text'], 'bigint');
SELECT function_returns('event_store', '_es_registry_changed', ARRAY[]::name[], 'trigger');

SELECT volatility_is('event_store', '_es_install', ARRAY[]::name[], 'volatile');
SELECT volatility_is('event_store', 'es_uuid_v7', ARRAY[]::name[], 'volatile');
SELECT volatility_is('event_store', 'es_category', ARRAY['text'], 'immutable');
SELECT volatility_is('event_store', 'es_append', ARRAY['text', 'bigint', 'jsonb'], 'volatile');
SELECT volatility_is('event_store', 'es_append',
                     ARRAY['text', 'bigint', 'text', 'jsonb', 'jsonb', 'uuid', 'integer'], 'volatile');
SELECT volatility_is('event_store', 'es_read_stream', ARRAY['text', 'bigint', 'bigint', 'boolean'],
                     'stable');
SELECT volatility_is('event_store', 'es_stream_version', ARRAY['text'], 'stable');
SELECT volatility_is('event_store', 'es_head_position', ARRAY[]::name[], 'volatile');
-- The feed takes a fresh snapshot per call: two calls in one statement may
-- differ, so it must not be STABLE.
SELECT volatility_is('event_store', 'es_read_all', ARRAY['bigint', 'bigint', 'text[]'], 'volatile');
SELECT volatility_is('event_store', 'es_read_category',
                     ARRAY['text', 'bigint', 'bigint', 'integer', 'integer'], 'volatile');
SELECT volatility_is('event_store', 'es_consumer_member', ARRAY['text', 'integer'], 'immutable');
SELECT volatility_is('event_store', 'es_checkpoint_save', ARRAY['text', 'bigint', 'bigint'], 'volatile');
SELECT volatility_is('event_store', 'es_checkpoint_get', ARRAY['text'], 'stable');
SELECT volatility_is('event_store', 'es_checkpoint_reset', ARRAY['text', 'bigint'], 'volatile');
SELECT volatility_is('event_store', '_es_check_consumer', ARRAY['text'], 'immutable');
SELECT volatility_is('event_store', '_es_check_checkpoint', ARRAY['text', 'bigint', 'bigint', 'bigint', 'boolean'], 'immutable');
SELECT volatility_is('event_store', '_es_check_position', ARRAY['bigint'], 'immutable');
SELECT volatility_is('event_store', 'es_save_snapshot', ARRAY['text', 'bigint', 'jsonb', 'integer'],
                     'volatile');
SELECT volatility_is('event_store', 'es_load_snapshot', ARRAY['text', 'integer'], 'stable');
SELECT volatility_is('event_store', 'es_load_aggregate', ARRAY['text', 'integer'], 'stable');
SELECT volatility_is('event_store', 'es_read_stream_at',
                     ARRAY['text', 'bigint', 'timestamp with time zone'], 'stable');
SELECT volatility_is('event_store', 'es_register_upcaster', ARRAY['text', 'integer', 'regprocedure'],
                     'volatile');
SELECT volatility_is('event_store', 'es_unregister_upcaster', ARRAY['text', 'integer'], 'volatile');
SELECT volatility_is('event_store', 'es_set_stream_metadata', ARRAY['text', 'jsonb'], 'volatile');
SELECT volatility_is('event_store', 'es_delete_stream', ARRAY['text', 'bigint'], 'volatile');
SELECT volatility_is('event_store', 'es_erase_stream', ARRAY['text', 'text'], 'volatile');
SELECT volatility_is('event_store', '_es_registry_changed', ARRAY[]::name[], 'volatile');

-- Not strict: the functions report NULL arguments themselves (22004) or give
-- NULL a meaning (expected_version NULL = any, types NULL = every type,
-- at_version / at_time NULL = not given, reason NULL = none).
SELECT isnt_strict('event_store', 'es_append', ARRAY['text', 'bigint', 'jsonb']);
SELECT isnt_strict('event_store', 'es_append',
                   ARRAY['text', 'bigint', 'text', 'jsonb', 'jsonb', 'uuid', 'integer']);
SELECT isnt_strict('event_store', 'es_read_stream', ARRAY['text', 'bigint', 'bigint', 'boolean']);
SELECT isnt_strict('event_store', 'es_stream_version', ARRAY['text']);
SELECT is_strict('event_store', 'es_category', ARRAY['text']);
SELECT isnt_strict('event_store', 'es_read_all', ARRAY['bigint', 'bigint', 'text[]']);
SELECT isnt_strict('event_store', 'es_read_category',
                   ARRAY['text', 'bigint', 'bigint', 'integer', 'integer']);
SELECT is_strict('event_store', 'es_consumer_member', ARRAY['text', 'integer']);
SELECT isnt_strict('event_store', 'es_checkpoint_save', ARRAY['text', 'bigint', 'bigint']);
SELECT isnt_strict('event_store', 'es_checkpoint_get', ARRAY['text']);
SELECT isnt_strict('event_store', 'es_checkpoint_reset', ARRAY['text', 'bigint']);
SELECT isnt_strict('event_store', '_es_check_consumer', ARRAY['text']);
SELECT isnt_strict('event_store', '_es_check_position', ARRAY['bigint']);
SELECT isnt_strict('event_store', 'es_save_snapshot', ARRAY['text', 'bigint', 'jsonb', 'integer']);
SELECT isnt_strict('event_store', 'es_load_snapshot', ARRAY['text', 'integer']);
SELECT isnt_strict('event_store', 'es_load_aggregate', ARRAY['text', 'integer']);
SELECT isnt_strict('event_store', 'es_read_stream_at', ARRAY['text', 'bigint', 'timestamp with time zone']);
SELECT isnt_strict('event_store', 'es_register_upcaster', ARRAY['text', 'integer', 'regprocedure']);
SELECT isnt_strict('event_store', 'es_unregister_upcaster', ARRAY['text', 'integer']);
SELECT isnt_strict('event_store', 'es_set_stream_metadata', ARRAY['text', 'jsonb']);
SELECT isnt_strict('event_store', 'es_delete_stream', ARRAY['text', 'bigint']);
SELECT isnt_strict('event_store', 'es_erase_stream', ARRAY['text', 'text']);

-- One row per function: language, parallel safety, SECURITY DEFINER, set
-- returning, volatility, strictness, estimated rows.
SELECT results_eq(
    $$ SELECT p.oid::regprocedure::text, l.lanname::text COLLATE "default", p.proparallel::text,
              p.prosecdef, p.proretset, p.provolatile::text, p.proisstrict, p.prorows::int
         FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
        WHERE p.pronamespace = 'event_store'::regnamespace
        ORDER BY 1 $$,
    $$ VALUES ('event_store._es_acts_for(name)', 'sql', 's', false, false, 's', false, 0),
              ('event_store._es_call_handler(text,text,text,name,event_store.es_event[])', 'c', 'u', false, false, 'v', false, 0),
              ('event_store._es_check_checkpoint(text,bigint,bigint,bigint,boolean)', 'c', 's', false, false, 'i', false, 0),
              ('event_store._es_check_consumer(text)', 'c', 's', false, false, 'i', false, 0),
              ('event_store._es_check_filter(text,text[])', 'c', 's', false, false, 'i', false, 0),
              ('event_store._es_check_handler(regprocedure,boolean)', 'c', 'u', false, false, 's', false, 0),
              ('event_store._es_check_not_erased(text,timestamp with time zone)', 'c', 's', false, false, 'i', false, 0),
              ('event_store._es_check_not_in_handler()', 'c', 'u', false, false, 'v', false, 0),
              ('event_store._es_check_position(bigint)', 'c', 's', false, false, 'i', false, 0),
              ('event_store._es_check_projection_row(text,text,text,name,boolean)', 'c', 'u', false, false, 's', false, 0),
              ('event_store._es_check_schema_version(integer,text)', 'c', 's', false, false, 'i', false, 0),
              ('event_store._es_check_stream_name(text)', 'c', 's', false, false, 'i', false, 0),
              ('event_store._es_check_type(text)', 'c', 's', false, false, 'i', false, 0),
              ('event_store._es_check_upcaster(regprocedure)', 'c', 's', false, false, 's', false, 0),
              ('event_store._es_events_after_statement()', 'c', 'u', false, false, 'v', false, 0),
              ('event_store._es_events_before_insert()', 'c', 'u', false, false, 'v', false, 0),
              ('event_store._es_head_if_known()', 'c', 'u', false, false, 'v', false, 0),
              ('event_store._es_install()', 'c', 'u', false, false, 'v', false, 0),
              ('event_store._es_lag_seconds(bigint,bigint)', 'c', 'u', false, false, 'v', false, 0),
              ('event_store._es_lock_upcasters()', 'c', 'u', false, false, 'v', false, 0),
              ('event_store._es_project_failed(text,text,text)', 'plpgsql', 'u', false, false, 'v', false, 0),
              ('event_store._es_project_page(text,bigint)', 'plpgsql', 'u', false, false, 'v', false, 0),
              ('event_store._es_projection_for_update(text)', 'plpgsql', 'u', false, false, 'v', false, 0),
              ('event_store._es_projections_check()', 'plpgsql', 'u', false, false, 'v', false, 0),
              ('event_store._es_projections_deleted()', 'plpgsql', 'u', false, false, 'v', false, 0),
              ('event_store._es_refuse_change()', 'c', 'u', false, false, 'v', false, 0),
              ('event_store._es_registry_changed()', 'c', 'u', false, false, 'v', false, 0),
              ('event_store._es_snapshot_floor(bigint,boolean)', 'c', 's', false, false, 'i', true, 0),
              ('event_store._es_upcasters_check()', 'c', 'u', false, false, 'v', false, 0),
              ('event_store._es_upcasters_lock()', 'c', 'u', false, false, 'v', false, 0),
              ('event_store._es_wake_runner()', 'c', 'u', false, false, 'v', false, 0),
              ('event_store.es_append(text,bigint,jsonb)', 'c', 'u', false, false, 'v', false, 0),
              ('event_store.es_append(text,bigint,text,jsonb,jsonb,uuid,integer)', 'c', 'u', false, false, 'v', false, 0),
              ('event_store.es_category(text)', 'c', 's', false, false, 'i', true, 0),
              ('event_store.es_caused_by(event_store.es_event,jsonb)', 'plpgsql', 's', false, false, 'i', false, 0),
              ('event_store.es_checkpoint_get(text)', 'plpgsql', 'u', false, false, 's', false, 0),
              ('event_store.es_checkpoint_reset(text,bigint)', 'plpgsql', 'u', false, false, 'v', false, 0),
              ('event_store.es_checkpoint_save(text,bigint,bigint)', 'plpgsql', 'u', false, false, 'v', false, 0),
              ('event_store.es_consumer_member(text,integer)', 'c', 's', false, false, 'i', true, 0),
              ('event_store.es_delete_stream(text,bigint)', 'c', 'u', false, false, 'v', false, 0),
              ('event_store.es_erase_stream(text,text)', 'c', 'u', false, false, 'v', false, 0),
              ('event_store.es_feed_reached()', 'c', 'u', false, false, 'v', false, 0),
              ('event_store.es_head_position()', 'c', 'u', false, false, 'v', false, 0),
              ('event_store.es_load_aggregate(text,integer)', 'c', 'r', false, true, 's', false, 100),
              ('event_store.es_load_snapshot(text,integer)', 'c', 's', false, true, 's', false, 1),
              ('event_store.es_pause_projection(text)', 'plpgsql', 'u', false, false, 'v', false, 0),
              ('event_store.es_position_before_time(timestamp with time zone)', 'plpgsql', 'u', false, false, 's', false, 0),
              ('event_store.es_read_all(bigint,bigint,text[])', 'c', 'u', false, true, 'v', false, 1000),
              ('event_store.es_read_category(text,bigint,bigint,integer,integer)', 'c', 'u', false, true, 'v', false, 1000),
              ('event_store.es_read_stream(text,bigint,bigint,boolean)', 'c', 'r', false, true, 's', false, 100),
              ('event_store.es_read_stream_at(text,bigint,timestamp with time zone)', 'c', 'r', false, true, 's', false, 100),
              ('event_store.es_rebuild_projection(text,bigint)', 'plpgsql', 'u', false, false, 'v', false, 0),
              ('event_store.es_rebuild_projection(text,timestamp with time zone)', 'plpgsql', 'u', false, false, 'v', false, 0),
              ('event_store.es_register_projection(text,regprocedure,text,text[],integer,text,integer,interval,regprocedure,bigint)', 'plpgsql', 'u', false, false, 'v', false, 0),
              ('event_store.es_register_upcaster(text,integer,regprocedure)', 'plpgsql', 'u', false, false, 'v', false, 0),
              ('event_store.es_resume_projection(text)', 'plpgsql', 'u', false, false, 'v', false, 0),
              ('event_store.es_retry_projection(text)', 'plpgsql', 'u', false, false, 'v', false, 0),
              ('event_store.es_run_projection(text,integer,bigint)', 'plpgsql', 'u', false, false, 'v', false, 0),
              ('event_store.es_save_snapshot(text,bigint,jsonb,integer)', 'plpgsql', 'u', false, false, 'v', false, 0),
              ('event_store.es_set_stream_metadata(text,jsonb)', 'c', 'u', false, false, 'v', false, 0),
              ('event_store.es_stats()', 'c', 'u', false, false, 'v', false, 0),
              ('event_store.es_stats_reset()', 'c', 'u', false, false, 'v', false, 0),
              ('event_store.es_stream_version(text)', 'c', 's', false, false, 's', false, 0),
              ('event_store.es_unregister_projection(text)', 'plpgsql', 'u', false, false, 'v', false, 0),
              ('event_store.es_unregister_upcaster(text,integer)', 'plpgsql', 'u', false, false, 'v', false, 0),
              ('event_store.es_uuid_v7()', 'c', 's', false, false, 'v', false, 0) $$,
    'every function: language, parallel safety (appends, the feed and every change of a stream, snapshot or upcaster are PARALLEL UNSAFE; the reads that may run upcasters RESTRICTED), none is SECURITY DEFINER');

-- The PL/pgSQL functions pin their search_path; the C ones need none (they
-- reach their objects by OID).
SELECT results_eq(
    $$ SELECT p.oid::regprocedure::text, coalesce(p.proconfig, '{}') COLLATE "default"
         FROM pg_proc p
        WHERE p.pronamespace = 'event_store'::regnamespace
          AND (p.proconfig IS NOT NULL
               OR p.prolang <> (SELECT oid FROM pg_language WHERE lanname = 'c'))
        ORDER BY 1 $$,
    $$ VALUES ('event_store._es_acts_for(name)', ARRAY['search_path=pg_catalog, pg_temp']),
              ('event_store._es_project_failed(text,text,text)', ARRAY['search_path=pg_catalog, pg_temp']),
              ('event_store._es_project_page(text,bigint)', ARRAY['search_path=pg_catalog, pg_temp']),
              ('event_store._es_projection_for_update(text)', ARRAY['search_path=pg_catalog, pg_temp']),
              ('event_store._es_projections_check()', ARRAY['search_path=pg_catalog, pg_temp']),
              ('event_store._es_projections_deleted()', ARRAY['search_path=pg_catalog, pg_temp']),
              ('event_store.es_caused_by(event_store.es_event,jsonb)', ARRAY['search_path=pg_catalog, pg_temp']),
              ('event_store.es_checkpoint_get(text)', ARRAY['search_path=pg_catalog, pg_temp']),
              ('event_store.es_checkpoint_reset(text,bigint)', ARRAY['search_path=pg_catalog, pg_temp']),
              ('event_store.es_checkpoint_save(text,bigint,bigint)', ARRAY['search_path=pg_catalog, pg_temp']),
              ('event_store.es_pause_projection(text)', ARRAY['search_path=pg_catalog, pg_temp']),
              ('event_store.es_position_before_time(timestamp with time zone)', ARRAY['search_path=pg_catalog, pg_temp']),
              ('event_store.es_rebuild_projection(text,bigint)', ARRAY['search_path=pg_catalog, pg_temp']),
              ('event_store.es_rebuild_projection(text,timestamp with time zone)', ARRAY['search_path=pg_catalog, pg_temp']),
              ('event_store.es_register_projection(text,regprocedure,text,text[],integer,text,integer,interval,regprocedure,bigint)', ARRAY['search_path=pg_catalog, pg_temp']),
              ('event_store.es_register_upcaster(text,integer,regprocedure)', ARRAY['search_path=pg_catalog, pg_temp']),
              ('event_store.es_resume_projection(text)', ARRAY['search_path=pg_catalog, pg_temp']),
              ('event_store.es_retry_projection(text)', ARRAY['search_path=pg_catalog, pg_temp']),
              ('event_store.es_run_projection(text,integer,bigint)', ARRAY['search_path=pg_catalog, pg_temp']),
              ('event_store.es_save_snapshot(text,bigint,jsonb,integer)', ARRAY['search_path=pg_catalog, pg_temp']),
              ('event_store.es_unregister_projection(text)', ARRAY['search_path=pg_catalog, pg_temp']),
              ('event_store.es_unregister_upcaster(text,integer)', ARRAY['search_path=pg_catalog, pg_temp']) $$,
    'only the PL/pgSQL functions set anything: search_path = pg_catalog, pg_temp');
SELECT is_empty(
    $$ SELECT p.oid::regprocedure::text FROM pg_proc p
        WHERE p.pronamespace = 'event_store'::regnamespace
          AND p.prolang <> (SELECT oid FROM pg_language WHERE lanname = 'c')
          AND (p.proconfig IS NULL
               OR NOT 'search_path=pg_catalog, pg_temp' = ANY (p.proconfig)) $$,
    'every function not written in C pins search_path = pg_catalog, pg_temp');

SELECT results_eq(
    $$ SELECT p.oid::regprocedure::text, pg_get_function_arguments(p.oid),
              pg_get_function_result(p.oid)
         FROM pg_proc p
        WHERE p.pronamespace = 'event_store'::regnamespace
        ORDER BY 1 $$,
    $$ VALUES ('event_store._es_acts_for(name)', 'owner name', 'boolean'),
              ('event_store._es_call_handler(text,text,text,name,event_store.es_event[])', 'projection text, handler text, shape text, owner name, events event_store.es_event[]', 'void'),
              ('event_store._es_check_checkpoint(text,bigint,bigint,bigint,boolean)', 'consumer text, stored bigint, "position" bigint, expected_position bigint, raced boolean DEFAULT false', 'void'),
              ('event_store._es_check_consumer(text)', 'consumer text', 'void'),
              ('event_store._es_check_filter(text,text[])', 'category text, types text[]', 'void'),
              ('event_store._es_check_handler(regprocedure,boolean)', 'handler regprocedure, reset boolean DEFAULT false', 'text'),
              ('event_store._es_check_not_erased(text,timestamp with time zone)', 'stream text, erased_at timestamp with time zone', 'void'),
              ('event_store._es_check_not_in_handler()', '', 'void'),
              ('event_store._es_check_position(bigint)', 'value bigint', 'void'),
              ('event_store._es_check_projection_row(text,text,text,name,boolean)', 'handler text, shape text, reset_handler text, owner name, privileges boolean DEFAULT true', 'void'),
              ('event_store._es_check_schema_version(integer,text)', 'value integer, what text', 'void'),
              ('event_store._es_check_stream_name(text)', 'stream text', 'void'),
              ('event_store._es_check_type(text)', 'type text', 'void'),
              ('event_store._es_check_upcaster(regprocedure)', 'upcaster regprocedure', 'void'),
              ('event_store._es_events_after_statement()', '', 'trigger'),
              ('event_store._es_events_before_insert()', '', 'trigger'),
              ('event_store._es_head_if_known()', '', 'bigint'),
              ('event_store._es_install()', '', 'void'),
              ('event_store._es_lag_seconds(bigint,bigint)', 'after bigint, head bigint', 'double precision'),
              ('event_store._es_lock_upcasters()', '', 'void'),
              ('event_store._es_project_failed(text,text,text)', 'projection text, sqlstate text, message text', 'void'),
              ('event_store._es_project_page(text,bigint)', 'projection text, upto bigint DEFAULT NULL::bigint', 'integer'),
              ('event_store._es_projection_for_update(text)', 'projection text', 'event_store.projections'),
              ('event_store._es_projections_check()', '', 'trigger'),
              ('event_store._es_projections_deleted()', '', 'trigger'),
              ('event_store._es_refuse_change()', '', 'trigger'),
              ('event_store._es_registry_changed()', '', 'trigger'),
              ('event_store._es_snapshot_floor(bigint,boolean)', 'truncate_before bigint, deleted boolean', 'bigint'),
              ('event_store._es_upcasters_check()', '', 'trigger'),
              ('event_store._es_upcasters_lock()', '', 'trigger'),
              ('event_store._es_wake_runner()', '', 'void'),
              ('event_store.es_append(text,bigint,jsonb)', 'stream text, expected_version bigint, events jsonb', 'event_store.es_append_result'),
              ('event_store.es_append(text,bigint,text,jsonb,jsonb,uuid,integer)', 'stream text, expected_version bigint, type text, data jsonb, metadata jsonb DEFAULT NULL::jsonb, event_id uuid DEFAULT NULL::uuid, schema_version integer DEFAULT 1', 'event_store.es_append_result'),
              ('event_store.es_category(text)', 'stream text', 'text'),
              ('event_store.es_caused_by(event_store.es_event,jsonb)', 'event event_store.es_event, metadata jsonb DEFAULT NULL::jsonb', 'jsonb'),
              ('event_store.es_checkpoint_get(text)', 'consumer text', 'bigint'),
              ('event_store.es_checkpoint_reset(text,bigint)', 'consumer text, "position" bigint DEFAULT 0', 'bigint'),
              ('event_store.es_checkpoint_save(text,bigint,bigint)', 'consumer text, "position" bigint, expected_position bigint DEFAULT NULL::bigint', 'bigint'),
              ('event_store.es_consumer_member(text,integer)', 'stream text, consumer_size integer', 'integer'),
              ('event_store.es_delete_stream(text,bigint)', 'stream text, expected_version bigint DEFAULT NULL::bigint', 'bigint'),
              ('event_store.es_erase_stream(text,text)', 'stream text, reason text DEFAULT NULL::text', 'bigint'),
              ('event_store.es_feed_reached()', '', 'bigint'),
              ('event_store.es_head_position()', '', 'bigint'),
              ('event_store.es_load_aggregate(text,integer)', 'stream text, min_schema_version integer DEFAULT 1', 'SETOF event_store.es_event'),
              ('event_store.es_load_snapshot(text,integer)', 'stream text, min_schema_version integer DEFAULT 1', 'TABLE(version bigint, state jsonb, schema_version integer, created_at timestamp with time zone)'),
              ('event_store.es_pause_projection(text)', 'name text', 'void'),
              ('event_store.es_position_before_time(timestamp with time zone)', 'from_time timestamp with time zone', 'bigint'),
              ('event_store.es_read_all(bigint,bigint,text[])', 'after_position bigint DEFAULT 0, max_count bigint DEFAULT 1000, types text[] DEFAULT NULL::text[]', 'SETOF event_store.es_event'),
              ('event_store.es_read_category(text,bigint,bigint,integer,integer)', 'category text, after_position bigint DEFAULT 0, max_count bigint DEFAULT 1000, consumer_member integer DEFAULT 0, consumer_size integer DEFAULT 1', 'SETOF event_store.es_event'),
              ('event_store.es_read_stream(text,bigint,bigint,boolean)', 'stream text, from_version bigint DEFAULT NULL::bigint, max_count bigint DEFAULT NULL::bigint, backwards boolean DEFAULT false', 'SETOF event_store.es_event'),
              ('event_store.es_read_stream_at(text,bigint,timestamp with time zone)', 'stream text, at_version bigint DEFAULT NULL::bigint, at_time timestamp with time zone DEFAULT NULL::timestamp with time zone', 'SETOF event_store.es_event'),
              ('event_store.es_rebuild_projection(text,bigint)', 'name text, from_position bigint DEFAULT 0', 'bigint'),
              ('event_store.es_rebuild_projection(text,timestamp with time zone)', 'name text, from_time timestamp with time zone', 'bigint'),
              ('event_store.es_register_projection(text,regprocedure,text,text[],integer,text,integer,interval,regprocedure,bigint)', 'name text, handler regprocedure, category text DEFAULT NULL::text, types text[] DEFAULT NULL::text[], page_size integer DEFAULT 100, on_error text DEFAULT ''pause''::text, max_attempts integer DEFAULT 3, backoff interval DEFAULT ''00:00:01''::interval, reset_handler regprocedure DEFAULT NULL::regprocedure, start_position bigint DEFAULT 0', 'void'),
              ('event_store.es_register_upcaster(text,integer,regprocedure)', 'type text, from_schema_version integer, upcaster regprocedure', 'void'),
              ('event_store.es_resume_projection(text)', 'name text', 'void'),
              ('event_store.es_retry_projection(text)', 'name text', 'void'),
              ('event_store.es_run_projection(text,integer,bigint)', 'name text, max_pages integer DEFAULT 1, upto bigint DEFAULT NULL::bigint', 'bigint'),
              ('event_store.es_save_snapshot(text,bigint,jsonb,integer)', 'stream text, version bigint, state jsonb, schema_version integer DEFAULT 1', 'boolean'),
              ('event_store.es_set_stream_metadata(text,jsonb)', 'stream text, metadata jsonb', 'jsonb'),
              ('event_store.es_stats()', 'OUT database name, OUT transactions bigint, OUT events bigint, OUT bytes bigint, OUT rolled_back bigint, OUT conflicts bigint, OUT idempotent_retries bigint, OUT notifications bigint, OUT notifier_start_failures bigint, OUT erasures bigint, OUT notifier_running boolean, OUT head bigint, OUT oldest_xact_pid integer, OUT oldest_xact_seconds double precision, OUT stats_reset timestamp with time zone', 'record'),
              ('event_store.es_stats_reset()', '', 'void'),
              ('event_store.es_stream_version(text)', 'stream text', 'bigint'),
              ('event_store.es_unregister_projection(text)', 'name text', 'void'),
              ('event_store.es_unregister_upcaster(text,integer)', 'type text, from_schema_version integer', 'void'),
              ('event_store.es_uuid_v7()', '', 'uuid') $$,
    'argument names, defaults and results of every function (callable with named arguments)');

-- Every function and relation of the extension is documented.
SELECT is_empty(
    $$ SELECT p.oid::regprocedure::text FROM pg_proc p
        WHERE p.pronamespace = 'event_store'::regnamespace AND p.proname LIKE 'es\_%'
          AND obj_description(p.oid, 'pg_proc') IS NULL $$,
    'every es_ function has a comment');
SELECT is_empty(
    $$ SELECT c.oid::regclass::text FROM pg_class c
        WHERE c.relnamespace = 'event_store'::regnamespace AND c.relkind IN ('r', 'v')
          AND obj_description(c.oid, 'pg_class') IS NULL $$,
    'every table and view has a comment');

-- pg_dump keeps the data ------------------------------------------------------

SELECT results_eq(
    $$ SELECT c.relid::regclass::text, c.cond COLLATE "default"
         FROM pg_extension e,
              unnest(e.extconfig, e.extcondition) AS c(relid, cond)
        WHERE e.extname = 'event_store'
        ORDER BY 1 $$,
    $$ VALUES ('event_store.checkpoints', ''),
              ('event_store.dead_letters', ''),
              ('event_store.erasures', ''),
              ('event_store.events', 'ORDER BY position'),
              ('event_store.projections', ''),
              ('event_store.snapshots', ''),
              ('event_store.streams', ''),
              ('event_store.streams_id_seq', ''),
              ('event_store.upcasters', '') $$,
    'every table of the extension and streams_id_seq are configuration tables dumped by pg_dump');
SELECT is_empty(
    $$ SELECT c.oid::regclass::text FROM pg_class c
        WHERE c.relnamespace = 'event_store'::regnamespace AND c.relkind IN ('r', 'p', 'S')
          AND c.oid <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'event_store')::oid[]) $$,
    'every table and sequence of event_store is dumped with its rows');
SELECT is(
    (SELECT c.cond FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS c(relid, cond)
      WHERE e.extname = 'event_store' AND c.relid = 'event_store.events'::regclass),
    'ORDER BY position',
    'events are dumped in position order');

-- Privileges ------------------------------------------------------------------

SELECT is(
    (SELECT count(*)::int
       FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
      WHERE c.relnamespace = 'event_store'::regnamespace
        AND c.relkind IN ('r', 'S', 'v', 'm', 'p', 'f')
        AND a.grantee = 0),
    0,
    'PUBLIC has no privilege on any table, view or sequence of event_store');
SELECT ok(
    NOT has_table_privilege('public', 'event_store.events',
                            'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'),
    'PUBLIC has no privilege on events');
SELECT ok(
    NOT has_table_privilege('public', 'event_store.streams',
                            'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'),
    'PUBLIC has no privilege on streams');
SELECT ok(
    NOT has_table_privilege('public', 'event_store.checkpoints',
                            'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'),
    'PUBLIC has no privilege on checkpoints');
SELECT ok(
    NOT has_table_privilege('public', 'event_store.es_consumers',
                            'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'),
    'PUBLIC has no privilege on the view es_consumers');
SELECT ok(
    NOT has_table_privilege('public', 'event_store.snapshots',
                            'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'),
    'PUBLIC has no privilege on snapshots');
SELECT ok(
    NOT has_table_privilege('public', 'event_store.upcasters',
                            'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'),
    'PUBLIC has no privilege on upcasters');
SELECT ok(
    NOT has_table_privilege('public', 'event_store.erasures',
                            'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'),
    'PUBLIC has no privilege on erasures');
SELECT ok(
    NOT has_any_column_privilege('public', 'event_store.checkpoints', 'SELECT, INSERT, UPDATE, REFERENCES')
    AND NOT has_any_column_privilege('public', 'event_store.es_consumers', 'SELECT, INSERT, UPDATE, REFERENCES'),
    'PUBLIC has no column privilege on checkpoints or es_consumers');
SELECT ok(
    NOT has_any_column_privilege('public', 'event_store.snapshots', 'SELECT, INSERT, UPDATE, REFERENCES')
    AND NOT has_any_column_privilege('public', 'event_store.upcasters', 'SELECT, INSERT, UPDATE, REFERENCES')
    AND NOT has_any_column_privilege('public', 'event_store.erasures', 'SELECT, INSERT, UPDATE, REFERENCES'),
    'PUBLIC has no column privilege on snapshots, upcasters or erasures');
SELECT is_empty(
    $$ SELECT c.oid::regclass::text, a.attname
         FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
        WHERE c.relnamespace = 'event_store'::regnamespace AND a.attacl IS NOT NULL $$,
    'no column of event_store carries a column privilege');
SELECT is_empty(
    $$ SELECT c.oid::regclass::text, a.grantee, a.privilege_type
         FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
        WHERE c.relnamespace = 'event_store'::regnamespace
          AND c.relkind IN ('r', 'S', 'v', 'm', 'p', 'f')
          AND a.grantee <> c.relowner
          AND NOT (c.oid = 'event_store.es_consumer_metrics'::regclass
                   AND a.grantee = 'pg_monitor'::regrole AND a.privilege_type = 'SELECT') $$,
    'at install only the owner holds a privilege on the tables, views and sequence of event_store (and pg_monitor SELECT on es_consumer_metrics)');
SELECT ok(
    NOT has_sequence_privilege('public', 'event_store.streams_id_seq', 'USAGE, SELECT, UPDATE'),
    'PUBLIC has no privilege on streams_id_seq');
SELECT ok(
    has_schema_privilege('public', 'event_store', 'USAGE'),
    'PUBLIC has USAGE on schema event_store');
SELECT ok(
    NOT has_schema_privilege('public', 'event_store', 'CREATE'),
    'PUBLIC cannot create objects in schema event_store');
SELECT results_eq(
    $$ SELECT p.oid::regprocedure::text,
              has_function_privilege('public', p.oid, 'EXECUTE')
         FROM pg_proc p
        WHERE p.pronamespace = 'event_store'::regnamespace
        ORDER BY 1 $$,
    $$ VALUES ('event_store._es_acts_for(name)', true),
              ('event_store._es_call_handler(text,text,text,name,event_store.es_event[])', true),
              ('event_store._es_check_checkpoint(text,bigint,bigint,bigint,boolean)', true),
              ('event_store._es_check_consumer(text)', true),
              ('event_store._es_check_filter(text,text[])', true),
              ('event_store._es_check_handler(regprocedure,boolean)', true),
              ('event_store._es_check_not_erased(text,timestamp with time zone)', true),
              ('event_store._es_check_not_in_handler()', true),
              ('event_store._es_check_position(bigint)', true),
              ('event_store._es_check_projection_row(text,text,text,name,boolean)', true),
              ('event_store._es_check_schema_version(integer,text)', true),
              ('event_store._es_check_stream_name(text)', true),
              ('event_store._es_check_type(text)', true),
              ('event_store._es_check_upcaster(regprocedure)', true),
              ('event_store._es_events_after_statement()', false),
              ('event_store._es_events_before_insert()', false),
              ('event_store._es_head_if_known()', true),
              ('event_store._es_install()', false),
              ('event_store._es_lag_seconds(bigint,bigint)', true),
              ('event_store._es_lock_upcasters()', true),
              ('event_store._es_project_failed(text,text,text)', true),
              ('event_store._es_project_page(text,bigint)', true),
              ('event_store._es_projection_for_update(text)', true),
              ('event_store._es_projections_check()', false),
              ('event_store._es_projections_deleted()', false),
              ('event_store._es_refuse_change()', false),
              ('event_store._es_registry_changed()', false),
              ('event_store._es_snapshot_floor(bigint,boolean)', true),
              ('event_store._es_upcasters_check()', false),
              ('event_store._es_upcasters_lock()', false),
              ('event_store._es_wake_runner()', true),
              ('event_store.es_append(text,bigint,jsonb)', true),
              ('event_store.es_append(text,bigint,text,jsonb,jsonb,uuid,integer)', true),
              ('event_store.es_category(text)', true),
              ('event_store.es_caused_by(event_store.es_event,jsonb)', true),
              ('event_store.es_checkpoint_get(text)', true),
              ('event_store.es_checkpoint_reset(text,bigint)', true),
              ('event_store.es_checkpoint_save(text,bigint,bigint)', true),
              ('event_store.es_consumer_member(text,integer)', true),
              ('event_store.es_delete_stream(text,bigint)', true),
              ('event_store.es_erase_stream(text,text)', false),
              ('event_store.es_feed_reached()', true),
              ('event_store.es_head_position()', true),
              ('event_store.es_load_aggregate(text,integer)', true),
              ('event_store.es_load_snapshot(text,integer)', true),
              ('event_store.es_pause_projection(text)', true),
              ('event_store.es_position_before_time(timestamp with time zone)', true),
              ('event_store.es_read_all(bigint,bigint,text[])', true),
              ('event_store.es_read_category(text,bigint,bigint,integer,integer)', true),
              ('event_store.es_read_stream(text,bigint,bigint,boolean)', true),
              ('event_store.es_read_stream_at(text,bigint,timestamp with time zone)', true),
              ('event_store.es_rebuild_projection(text,bigint)', true),
              ('event_store.es_rebuild_projection(text,timestamp with time zone)', true),
              ('event_store.es_register_projection(text,regprocedure,text,text[],integer,text,integer,interval,regprocedure,bigint)', true),
              ('event_store.es_register_upcaster(text,integer,regprocedure)', true),
              ('event_store.es_resume_projection(text)', true),
              ('event_store.es_retry_projection(text)', true),
              ('event_store.es_run_projection(text,integer,bigint)', true),
              ('event_store.es_save_snapshot(text,bigint,jsonb,integer)', true),
              ('event_store.es_set_stream_metadata(text,jsonb)', true),
              ('event_store.es_stats()', false),
              ('event_store.es_stats_reset()', false),
              ('event_store.es_stream_version(text)', true),
              ('event_store.es_unregister_projection(text)', true),
              ('event_store.es_unregister_upcaster(text,integer)', true),
              ('event_store.es_uuid_v7()', true) $$,
    'PUBLIC may execute the es_ functions (they check table privileges) but es_erase_stream, and the helpers the SECURITY INVOKER functions and the view call, not the trigger functions and _es_install');
-- EXECUTE on es_erase_stream is the only way past the immutability of
-- events: at install nobody but its owner holds it (nor EXECUTE on the
-- trigger functions and _es_install).
SELECT results_eq(
    $$ SELECT p.oid::regprocedure::text, a.grantee = p.proowner, a.privilege_type::text, a.is_grantable
         FROM pg_proc p, aclexplode(p.proacl) a
        WHERE p.pronamespace = 'event_store'::regnamespace
        ORDER BY 1 $$,
    $$ VALUES ('event_store._es_events_after_statement()', true, 'EXECUTE', false),
              ('event_store._es_events_before_insert()', true, 'EXECUTE', false),
              ('event_store._es_install()', true, 'EXECUTE', false),
              ('event_store._es_projections_check()', true, 'EXECUTE', false),
              ('event_store._es_projections_deleted()', true, 'EXECUTE', false),
              ('event_store._es_refuse_change()', true, 'EXECUTE', false),
              ('event_store._es_registry_changed()', true, 'EXECUTE', false),
              ('event_store._es_upcasters_check()', true, 'EXECUTE', false),
              ('event_store._es_upcasters_lock()', true, 'EXECUTE', false),
              ('event_store.es_erase_stream(text,text)', true, 'EXECUTE', false),
              ('event_store.es_stats()', true, 'EXECUTE', false),
              ('event_store.es_stats()', false, 'EXECUTE', false),
              ('event_store.es_stats_reset()', true, 'EXECUTE', false) $$,
    'the revoked functions: only their owner may execute them (and pg_monitor es_stats)');
SELECT results_eq(
    $$ SELECT relname::text COLLATE "default", relrowsecurity, relforcerowsecurity
         FROM pg_class
        WHERE relnamespace = 'event_store'::regnamespace AND relkind IN ('r', 'p')
        ORDER BY 1 $$,
    $$ VALUES ('checkpoints', false, false),
              ('dead_letters', true, false),
              ('erasures', false, false),
              ('events', false, false),
              ('projections', true, false),
              ('snapshots', false, false),
              ('streams', false, false),
              ('upcasters', false, false) $$,
    'row-level security is off on every table the C functions read (they refuse tables with RLS), on on projections and dead_letters (each role sees the projections of the roles it is a member of)');

SELECT * FROM finish();
ROLLBACK;
