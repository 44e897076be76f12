# Every function of the extension, per class of defect of issue 13 ("Go
# beyond these thirteen").
#
# The functions are enumerated from pg_proc at run time (schema event_store,
# all but the trigger functions and _es_install), and each must have an entry
# in %calls below: a valid call and a failing one with the SQLSTATE the README
# gives.  A function without an entry fails the file, so that a new function
# cannot be forgotten.  Each call runs on a small fixture (streams with
# events, stream metadata, a soft-deleted and an erased stream, snapshots, a
# chain of two upcasters, checkpoints), copied for each class from a
# template database.
#
# (a) Subtransactions and memory: in one transaction, 1,000 rounds of
#     SAVEPOINT / call / ROLLBACK TO / RELEASE, and 1,000 caught failures in
#     PL/pgSQL exception blocks, with the valid call (rolled back on purpose)
#     and with the failing one (and, for the set-returning reads, a statement
#     that fails after the read built its rows): the backend's memory
#     contexts stay within 1 MB (plus, for the functions that queue a cache
#     invalidation, what PostgreSQL itself keeps for as many: see the
#     controls), every round ends as expected, and once the transaction
#     commits every table is as it was.
# (b) Parallel plans: each function in a query with a Gather node (in the
#     workers for the PARALLEL SAFE ones; in the leader, as an InitPlan and
#     joined to the Gather's rows, for all but the PARALLEL UNSAFE ones,
#     whose plans must be serial), right after other sessions invalidated
#     the caches: no error, the result of the serial plan, and the failing
#     call keeps its SQLSTATE.
# (c) DROP EXTENSION races: each function called by a warm connection while
#     another holds an uncommitted DROP EXTENSION (then also CREATE
#     EXTENSION): it waits for the lock (except those that read no table of
#     the extension), and ends with 55000, 42P01, 42883 or 42704 (or, where
#     natural, success), never XX000, never a crash.
# (d) Hostile rows: the roles of the README's Privileges table write every
#     kind of row their grants allow (checkpoints, snapshots, upcasters,
#     events by plain INSERT and COPY, erasures), then every read function
#     and es_consumers run as each role: no crash, no XX000, every error a
#     proper SQLSTATE; the reads ignore the snapshots they cannot stand on.
# At the end, the server log has no crash, no PANIC, no XX000.
#
# About 30 s on 2 cores.
use strict;
use warnings;
use utf8;    # the names of symbols below are sent as UTF-8
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DBI;
use DBD::Pg qw(:async);
use JSON::PP;
use Time::HiRes qw(time usleep);
use EsTest;

my $started = time;
my $json = JSON::PP->new->canonical;
my $MB = 1024 * 1024;

# Idle notifiers leave after 2 s, so that the parallel plans of (b) get
# their workers; no statement log (the rounds of (a) are 130,000
# statements): errors are still logged, with their SQLSTATE.
my $node = es_new_node('every_function', conf => q{
max_worker_processes = 16
max_parallel_workers = 8
max_parallel_workers_per_gather = 2
event_store.notifier_idle_timeout = '2s'
log_statement = 'none'
});

# An outcome is proper when it is a success or an error with a real
# SQLSTATE: never an internal error (XX), a system error (58), a lost
# connection.
sub proper
{
	my ($state) = @_;
	return defined $state && $state =~ /^[0-9A-Z]{5}$/ && $state !~ /^(XX|58)/;
}

# Test names and notes in ASCII (the hostile names are not).
sub ascii
{
	my ($s) = @_;
	$s //= '';
	$s =~ s/([^\x20-\x7e])/sprintf('\\x{%x}', ord $1)/ge;
	return $s;
}

sub must
{
	my ($dbh, $sql, $label) = @_;
	my $r = es_run($dbh, $sql);
	ok($r->{ok}, $label) or diag("$r->{state}: " . ($r->{err} // ''));
	return $r;
}

sub timing
{
	my ($label, $t0) = @_;
	note(sprintf('%s: %.1f s', $label, time - $t0));
}

# ---------------------------------------------------------------------------
# The fixture, and the roles of the README's Privileges table
# ---------------------------------------------------------------------------
my $fixture = q{
CREATE OR REPLACE FUNCTION public.dep_v1(data jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE
  AS $$ SELECT data || '{"v": 2}' $$;
CREATE OR REPLACE FUNCTION public.dep_v2(data jsonb, metadata jsonb) RETURNS event_store.es_upcast
  LANGUAGE sql IMMUTABLE
  AS $$ SELECT ROW(data || '{"v": 3}', coalesce(metadata, '{}') || '{"up": 3}')::event_store.es_upcast $$;
CREATE OR REPLACE FUNCTION public.dep_v3(data jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE
  AS $$ SELECT data || '{"v": 4}' $$;
SELECT event_store.es_append('acc-1', 0, (SELECT jsonb_agg(jsonb_build_object('type', 'Deposited',
    'data', jsonb_build_object('amount', i), 'metadata', jsonb_build_object('user_id', 'u' || i)) ORDER BY i)
  FROM generate_series(1, 5) i));
SELECT event_store.es_append('acc-2', 0, (SELECT jsonb_agg(jsonb_build_object('type', 'Withdrawn',
    'data', jsonb_build_object('amount', i)) ORDER BY i) FROM generate_series(1, 3) i));
SELECT event_store.es_append('acc-3', 0, 'Opened', '{"owner": "x"}');
SELECT event_store.es_append('ord-1', 0, (SELECT jsonb_agg(jsonb_build_object('type', 'OrderPlaced',
    'data', jsonb_build_object('n', i)) ORDER BY i) FROM generate_series(1, 4) i));
SELECT event_store.es_append('ord-2', 0, 'OrderPlaced', '[1, "two", null]');
SELECT event_store.es_append('del-1', 0, 'OrderPlaced', '"text"');
SELECT event_store.es_append('gone-1', 0, 'OrderPlaced', '{}');
SELECT event_store.es_set_stream_metadata('acc-2', '{"max_count": 2, "owner": "someone"}');
SELECT event_store.es_set_stream_metadata('ord-1', '{"truncate_before": 2}');
SELECT event_store.es_save_snapshot('ord-1', 3, '{"total": 3}');
SELECT event_store.es_save_snapshot('acc-1', 2, '{"balance": 3}');
SELECT event_store.es_delete_stream('del-1');
SELECT event_store.es_erase_stream('gone-1', 'fixture');
SELECT event_store.es_register_upcaster('Deposited', 1, 'public.dep_v1(jsonb)');
SELECT event_store.es_register_upcaster('Deposited', 2, 'public.dep_v2(jsonb,jsonb)');
SELECT event_store.es_checkpoint_save('proj-1', 3);
SELECT event_store.es_checkpoint_save('proj-2', 1);
GRANT SELECT ON event_store.events, event_store.es_projections, event_store.es_dead_letters TO es_projector;
GRANT SELECT, INSERT, UPDATE, DELETE ON event_store.projections, event_store.dead_letters TO es_projector;
CREATE TABLE IF NOT EXISTS public.pj_seen (position bigint);
GRANT INSERT, DELETE ON public.pj_seen TO es_projector;
CREATE OR REPLACE FUNCTION public.pj_page(e event_store.es_event[]) RETURNS void LANGUAGE sql
  AS $$ INSERT INTO public.pj_seen SELECT x.position FROM unnest(e) x $$;
CREATE OR REPLACE FUNCTION public.pj_reset() RETURNS void LANGUAGE sql AS $$ DELETE FROM public.pj_seen $$;
-- two projections, paused in the transaction that registers them: the
-- database's worker never runs them, the calls below do
BEGIN;
SET LOCAL ROLE es_projector;
SELECT event_store.es_register_projection('pj-1', 'public.pj_page(event_store.es_event[])',
                                          reset_handler => 'public.pj_reset()');
SELECT event_store.es_register_projection('pj-2', 'public.pj_page(event_store.es_event[])', category => 'acc');
SELECT event_store.es_pause_projection('pj-1');
SELECT event_store.es_pause_projection('pj-2');
COMMIT;
};

my @roles = qw(es_reader es_consumer es_writer es_keeper es_eraser);
$node->safe_psql('postgres', join(";\n", map { "CREATE ROLE $_ LOGIN" } @roles, 'es_nobody', 'es_projector'));
# every class starts from a copy of this database
$node->safe_psql('postgres', 'CREATE DATABASE es_tmpl');
$node->safe_psql('es_tmpl', "CREATE EXTENSION event_store;\n$fixture");

# Each class in its own copy of the fixture (the template's notifier is
# stopped by CREATE DATABASE itself).
sub new_db
{
	my ($name) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $name TEMPLATE es_tmpl");
	return $name;
}

# ---------------------------------------------------------------------------
# The table of calls.  For each function (its signature as regprocedure
# prints it, without the schema):
#   valid    a query returning one row of one text column (a digest of what
#            the call returned), valid on the fixture every time it runs
#            (rolled back or in a fresh copy); the arguments of IMMUTABLE
#            functions come from a subquery with OFFSET 0, so that the
#            planner cannot fold the call into a constant: every call runs
#            in the executor;
#   invalid  a query whose call fails, with state, the SQLSTATE of the
#            README; role: run it as that role (SET LOCAL ROLE);
#            valid_role: run the valid call as that role;
#   why      for the few functions no call of which can fail: the failing
#            "call" is then the statement failing right after the call;
#   late     (set-returning reads) the read in a statement that fails after
#            the read built its rows (22012): the rows must not stay behind;
#   worker   (PARALLEL SAFE) an expression over b.id (public.big b) calling
#            the function, evaluated by parallel workers; worker_join: a
#            LATERAL join for a set-returning one; worker_bad: the same
#            failing, worker_state its SQLSTATE;
#   pure     the function reads no table at all, and no_wait (why): it
#            reads no table of the extension once its backend knows the
#            extension's catalog; behind an uncommitted DROP EXTENSION such
#            a call neither waits nor fails;
#   recreated  SQLSTATEs that are natural after DROP and CREATE EXTENSION
#            (the fixture the call expects is gone from the new extension);
#   invalidates  the call changes stream metadata or upcasters, and so
#            queues a relcache invalidation (see the controls of (a)).
# ---------------------------------------------------------------------------

# a digest of the events a read returns, in its order
sub events_of
{
	my ($call) = @_;
	return qq{SELECT coalesce(string_agg(concat_ws(':', e.position, e.stream, e.version, e.type,
	            e.data::text, e.metadata::text, e.schema_version), ',' ORDER BY e.n), '')
	     FROM $call WITH ORDINALITY
	       AS e(position, stream, version, type, data, metadata, event_id, schema_version, created_at, n)};
}

sub late_of
{
	my ($call) = @_;
	return qq{SELECT (1 / (count(*) - count(*)))::text FROM $call};
}

# a page of one event, made without reading a table
my $pj_page = q{ARRAY[ROW(1, 's-1', 1, 'T', '{}', NULL, '00000000-0000-0000-0000-000000000001', 1,
  now())::event_store.es_event]};

my %calls = (
	'_es_call_handler(text,text,text,name,event_store.es_event[])' => {
		valid => qq{SELECT event_store._es_call_handler('pj-1', 'public.pj_page(event_store.es_event[])', 'page', 'es_projector', $pj_page)::text},
		invalid => qq{SELECT event_store._es_call_handler('pj-1', 'public.pj_page(event_store.es_event[])', 'page', 'es_no_such_role', $pj_page)::text},
		state => '42704',
		# it locks the handler: behind a DROP EXTENSION CASCADE that drops it, it waits
	},
	'_es_check_filter(text,text[])' => {
		valid => q{SELECT event_store._es_check_filter(a, '{A,B}')::text FROM (SELECT 'acc'::text OFFSET 0) x(a)},
		invalid => q{SELECT event_store._es_check_filter(a, NULL)::text FROM (SELECT 'acc-x'::text OFFSET 0) x(a)},
		state => '22023',
		worker => q{event_store._es_check_filter('c' || b.id, NULL)},
		worker_bad => q{event_store._es_check_filter('c-' || b.id, NULL)},
		worker_state => '22023',
		pure => 1,
	},
	'_es_check_handler(regprocedure,boolean)' => {
		valid => q{SELECT event_store._es_check_handler('public.pj_page(event_store.es_event[])')},
		invalid => q{SELECT event_store._es_check_handler('public.dep_v1(jsonb)')},
		state => '42P13',
		pure => 1,
	},
	'_es_check_projection_row(text,text,text,name,boolean)' => {
		valid => q{SELECT event_store._es_check_projection_row('public.pj_page(event_store.es_event[])', 'page', 'public.pj_reset()', 'es_projector')::text},
		invalid => q{SELECT event_store._es_check_projection_row('public.pj_page(event_store.es_event[])', 'event', NULL, 'es_projector', false)::text},
		state => '42P13',
	},
	'_es_check_not_in_handler()' => {
		valid => q{SELECT event_store._es_check_not_in_handler()::text},
		invalid => q{SELECT (1 / (length(event_store._es_check_not_in_handler()::text)))::text},
		state => '22012',
		why => 'it fails only inside a handler (projections.sql shows it)',
		pure => 1,
	},
	'_es_acts_for(name)' => {
		valid => q{SELECT event_store._es_acts_for(a)::text FROM (SELECT 'es_projector'::name OFFSET 0) x(a)},
		invalid => q{SELECT (1 / event_store._es_acts_for(a)::int)::text FROM (SELECT 'no_such_role'::name OFFSET 0) x(a)},
		state => '22012',
		why => 'a role that does not exist is no error: false',
		worker => q{event_store._es_acts_for(('es_projector' || (b.id % 2))::name)},
		worker_bad => q{1 / event_store._es_acts_for(('no_such_role' || b.id)::name)::int},
		worker_state => '22012',
		pure => 1,
	},
	'_es_project_failed(text,text,text)' => {
		valid => q{SELECT event_store._es_project_failed('pj-1', '57014', 'cancelled')::text},
		invalid => q{SELECT event_store._es_project_failed('pj-1', '57014', 'cancelled')::text},
		role => 'es_nobody',
		state => '42501',
	},
	'_es_project_page(text,bigint)' => {
		valid => q{SELECT coalesce(event_store._es_project_page('pj-1')::text, 'busy')},
		invalid => q{SELECT event_store._es_project_page('pj-1')::text},
		role => 'es_nobody',
		state => '42501',
	},
	'_es_projection_for_update(text)' => {
		valid => q{SELECT (event_store._es_projection_for_update('pj-1')).name},
		invalid => q{SELECT (event_store._es_projection_for_update('no-such-projection')).name},
		state => '42704',
	},
	'_es_wake_runner()' => {
		valid => q{SELECT event_store._es_wake_runner()::text},
		invalid => q{SELECT (1 / (length(event_store._es_wake_runner()::text)))::text},
		state => '22012',
		why => 'it takes no argument and reads no table',
		pure => 1,
	},
	'es_caused_by(event_store.es_event,jsonb)' => {
		valid => qq{SELECT event_store.es_caused_by(e[1], '{"k": 1}')::text FROM (SELECT $pj_page OFFSET 0) x(e)},
		invalid => q{SELECT event_store.es_caused_by(NULL)::text},
		state => '22004',
		worker => qq{event_store.es_caused_by(($pj_page)[1], jsonb_build_object('n', b.id))},
		worker_bad => q{event_store.es_caused_by(CASE WHEN b.id > 0 THEN NULL::event_store.es_event END)},
		worker_state => '22004',
		pure => 1,
	},
	'es_feed_reached()' => {
		valid => q{SELECT coalesce(event_store.es_feed_reached()::text, 'none')},
		invalid => q{SELECT (1 / (coalesce(event_store.es_feed_reached(), 0) * 0))::text},
		state => '22012',
		why => 'it takes no argument and reads no table',
		pure => 1,
	},
	'es_position_before_time(timestamp with time zone)' => {
		valid => q{SELECT event_store.es_position_before_time(now() - interval '1 day')::text},
		invalid => q{SELECT event_store.es_position_before_time(NULL)::text},
		state => '22004',
	},
	'es_register_projection(text,regprocedure,text,text[],integer,text,integer,interval,regprocedure,bigint)' => {
		valid => q{SELECT event_store.es_register_projection('pj-3', 'public.pj_page(event_store.es_event[])', types => '{Deposited}')::text},
		invalid => q{SELECT event_store.es_register_projection('pj-1', 'public.pj_page(event_store.es_event[])')::text},
		role => 'es_projector',
		state => '42710',
		valid_role => 'es_projector',
		# the extension created again has not granted es_projector anything
		recreated => ['42501'],
	},
	'es_unregister_projection(text)' => {
		valid => q{SELECT event_store.es_unregister_projection('pj-2')::text},
		invalid => q{SELECT event_store.es_unregister_projection('no-such-projection')::text},
		state => '42704',
	},
	'es_pause_projection(text)' => {
		valid => q{SELECT event_store.es_pause_projection('pj-2')::text},
		invalid => q{SELECT event_store.es_pause_projection('')::text},
		state => '42704',
	},
	'es_resume_projection(text)' => {
		valid => q{SELECT event_store.es_resume_projection('pj-2')::text},
		invalid => q{SELECT event_store.es_resume_projection(NULL)::text},
		state => '22004',
	},
	'es_retry_projection(text)' => {
		valid => q{SELECT (event_store.es_resume_projection('pj-2')::text || event_store.es_retry_projection('pj-2')::text)},
		invalid => q{SELECT event_store.es_retry_projection('pj-2')::text},
		state => '55000',
	},
	'es_run_projection(text,integer,bigint)' => {
		valid => q{SELECT event_store.es_run_projection('pj-1', 5)::text},
		invalid => q{SELECT event_store.es_run_projection('pj-1', 0)::text},
		state => '22023',
	},
	'es_rebuild_projection(text,bigint)' => {
		valid => q{SELECT event_store.es_rebuild_projection('pj-1', 2)::text},
		invalid => q{SELECT event_store.es_rebuild_projection('pj-1', -1)::text},
		state => '22023',
	},
	'es_rebuild_projection(text,timestamp with time zone)' => {
		valid => q{SELECT (event_store.es_rebuild_projection('pj-1', now() - interval '1 day') >= 0)::text},
		invalid => q{SELECT event_store.es_rebuild_projection('pj-1', NULL::timestamptz)::text},
		state => '22004',
	},
	'es_uuid_v7()' => {
		valid => q{SELECT substr(event_store.es_uuid_v7()::text, 15, 1)},
		invalid => q{SELECT (1 / (length(u::text) - 36))::text FROM (SELECT event_store.es_uuid_v7() AS u) x},
		state => '22012',
		why => 'it takes no argument and reads no table',
		worker => q{substr(event_store.es_uuid_v7()::text || b.id, 15, 1)},
		worker_bad => q{1 / (length(event_store.es_uuid_v7()::text) - 36 + b.id * 0)},
		worker_state => '22012',
		pure => 1,
	},
	'es_category(text)' => {
		valid => q{SELECT event_store.es_category(a) FROM (SELECT 'acc-1'::text OFFSET 0) x(a)},
		invalid => q{SELECT event_store.es_category(a) FROM (SELECT ''::text OFFSET 0) x(a)},
		state => '22023',
		worker => q{event_store.es_category('acc-' || b.id)},
		worker_bad => q{event_store.es_category(repeat('-', (b.id % 2)::int + 1))},
		worker_state => '22023',
		pure => 1,
	},
	'_es_check_stream_name(text)' => {
		valid => q{SELECT event_store._es_check_stream_name(a)::text FROM (SELECT 'acc-1'::text OFFSET 0) x(a)},
		invalid => q{SELECT event_store._es_check_stream_name(a)::text FROM (SELECT '-x'::text OFFSET 0) x(a)},
		state => '22023',
		worker => q{event_store._es_check_stream_name('s-' || b.id)},
		worker_bad => q{event_store._es_check_stream_name('-' || b.id)},
		worker_state => '22023',
		pure => 1,
	},
	'_es_check_type(text)' => {
		valid => q{SELECT event_store._es_check_type(a)::text FROM (SELECT 'Deposited'::text OFFSET 0) x(a)},
		invalid => q{SELECT event_store._es_check_type(a)::text FROM (SELECT repeat('t', 501) OFFSET 0) x(a)},
		state => '54000',
		worker => q{event_store._es_check_type('T' || b.id)},
		worker_bad => q{event_store._es_check_type(repeat('t', 501 + (b.id % 2)::int))},
		worker_state => '54000',
		pure => 1,
	},
	'_es_snapshot_floor(bigint,boolean)' => {
		valid => q{SELECT event_store._es_snapshot_floor(a, false)::text FROM (SELECT 5::bigint OFFSET 0) x(a)},
		invalid => q{SELECT (1 / (event_store._es_snapshot_floor(a, false) - 4))::text FROM (SELECT 5::bigint OFFSET 0) x(a)},
		state => '22012',
		why => 'it is STRICT arithmetic',
		worker => q{event_store._es_snapshot_floor(b.id, b.id % 2 = 0)},
		worker_bad => q{1 / (event_store._es_snapshot_floor(b.id, true) - b.id)},
		worker_state => '22012',
		pure => 1,
	},
	'_es_check_upcaster(regprocedure)' => {
		valid => q{SELECT event_store._es_check_upcaster('public.dep_v3(jsonb)')::text},
		invalid => q{SELECT event_store._es_check_upcaster('pg_catalog.jsonb_array_length(jsonb)')::text},
		state => '42P13',
		worker => q{event_store._es_check_upcaster(CASE WHEN b.id > 0 THEN 'public.dep_v3(jsonb)'::regprocedure END)},
		worker_bad => q{event_store._es_check_upcaster(CASE WHEN b.id > 0 THEN 'pg_catalog.jsonb_array_length(jsonb)'::regprocedure END)},
		worker_state => '42P13',
		no_wait => 'it reads the catalogs only (the signature of the function)',
	},
	'es_append(text,bigint,jsonb)' => {
		valid => q{SELECT r.first_version || '/' || r.last_version FROM event_store.es_append('acc-1', 5,
		             '[{"type": "Deposited", "data": {"amount": 6}}, {"type": "Noted", "data": null}]') r},
		invalid => q{SELECT r.first_version::text FROM event_store.es_append('acc-1', 5, '[]') r},
		state => '22023',
		recreated => ['V0001'],
	},
	'es_append(text,bigint,text,jsonb,jsonb,uuid,integer)' => {
		valid => q{SELECT r.first_version || '/' || r.last_version FROM event_store.es_append('acc-1', 5,
		             'Deposited', '{"amount": 6}', '{"user_id": "u6"}') r},
		invalid => q{SELECT r.first_version::text FROM event_store.es_append('acc-1', 4, 'Deposited', '{}') r},
		state => 'V0001',
		recreated => ['V0001'],
	},
	'es_read_stream(text,bigint,bigint,boolean)' => {
		valid => events_of(q{event_store.es_read_stream('acc-1')}),
		invalid => events_of(q{event_store.es_read_stream('acc-1', 0)}),
		state => '22023',
		late => late_of(q{event_store.es_read_stream('acc-1')}),
	},
	'es_stream_version(text)' => {
		valid => q{SELECT event_store.es_stream_version('acc-1')::text},
		invalid => q{SELECT event_store.es_stream_version(NULL)::text},
		state => '22004',
		worker => q{event_store.es_stream_version('acc-' || (b.id / 10000 % 3 + 1))},
		worker_bad => q{event_store.es_stream_version('-' || b.id)},
		worker_state => '22023',
	},
	'es_stats()' => {
		valid => q{SELECT (event_store.es_stats()).database::text},
		invalid => q{SELECT (event_store.es_stats()).database::text},
		role => 'es_nobody',
		state => '42501',
	},
	'es_stats_reset()' => {
		valid => q{SELECT event_store.es_stats_reset()::text},
		invalid => q{SELECT event_store.es_stats_reset()::text},
		role => 'es_nobody',
		state => '42501',
		no_wait => 'it resets counters in shared memory and reads no table',
	},
	'es_head_position()' => {
		valid => q{SELECT event_store.es_head_position()::text},
		invalid => q{SELECT event_store.es_head_position()::text},
		role => 'es_nobody',
		state => '42501',
	},
	'es_read_all(bigint,bigint,text[])' => {
		valid => events_of(q{event_store.es_read_all(0, 1000)}),
		invalid => events_of(q{event_store.es_read_all(0, 0)}),
		state => '22023',
		late => late_of(q{event_store.es_read_all(0, 1000)}),
	},
	'es_read_category(text,bigint,bigint,integer,integer)' => {
		valid => events_of(q{event_store.es_read_category('acc', 0, 1000)}),
		invalid => events_of(q{event_store.es_read_category('acc', 0, 1000, 0, 0)}),
		state => '22023',
		late => late_of(q{event_store.es_read_category('acc', 0, 1000)}),
	},
	'es_consumer_member(text,integer)' => {
		valid => q{SELECT event_store.es_consumer_member(a, 3)::text FROM (SELECT 'acc-1'::text OFFSET 0) x(a)},
		invalid => q{SELECT event_store.es_consumer_member(a, 0)::text FROM (SELECT 'acc-1'::text OFFSET 0) x(a)},
		state => '22023',
		worker => q{event_store.es_consumer_member('acc-' || b.id, 3)},
		worker_bad => q{event_store.es_consumer_member('acc-' || b.id, (b.id % 1)::int * 5)},
		worker_state => '22023',
		pure => 1,
	},
	'_es_check_consumer(text)' => {
		valid => q{SELECT event_store._es_check_consumer(a)::text FROM (SELECT 'proj-1'::text OFFSET 0) x(a)},
		invalid => q{SELECT event_store._es_check_consumer(a)::text FROM (SELECT repeat('c', 201) OFFSET 0) x(a)},
		state => '54000',
		worker => q{event_store._es_check_consumer('c-' || b.id)},
		worker_bad => q{event_store._es_check_consumer(repeat('c', 201 + (b.id % 2)::int))},
		worker_state => '54000',
		pure => 1,
	},
	'_es_check_position(bigint)' => {
		valid => q{SELECT event_store._es_check_position(a)::text FROM (SELECT 5::bigint OFFSET 0) x(a)},
		invalid => q{SELECT event_store._es_check_position(a)::text FROM (SELECT -1::bigint OFFSET 0) x(a)},
		state => '22023',
		worker => q{event_store._es_check_position(b.id)},
		worker_bad => q{event_store._es_check_position(-b.id - 1)},
		worker_state => '22023',
		pure => 1,
	},
	'_es_check_schema_version(integer,text)' => {
		valid => q{SELECT event_store._es_check_schema_version(a, 'schema_version')::text FROM (SELECT 2 OFFSET 0) x(a)},
		invalid => q{SELECT event_store._es_check_schema_version(a, 'from_schema_version')::text FROM (SELECT 2147483647 OFFSET 0) x(a)},
		state => '22003',
		worker => q{event_store._es_check_schema_version((b.id % 1000 + 1)::int, 'schema_version')},
		worker_bad => q{event_store._es_check_schema_version((b.id % 2)::int - 1, 'schema_version')},
		worker_state => '22003',
		pure => 1,
	},
	'_es_check_checkpoint(text,bigint,bigint,bigint,boolean)' => {
		valid => q{SELECT event_store._es_check_checkpoint(a, 5, 10, NULL)::text FROM (SELECT 'proj-1'::text OFFSET 0) x(a)},
		invalid => q{SELECT event_store._es_check_checkpoint(a, 10, 5, NULL)::text FROM (SELECT 'proj-1'::text OFFSET 0) x(a)},
		state => 'V0002',
		worker => q{event_store._es_check_checkpoint('c-' || b.id, b.id, b.id + 1, b.id)},
		worker_bad => q{event_store._es_check_checkpoint('c-' || b.id, b.id, b.id + 1, b.id + 1)},
		worker_state => 'V0003',
		pure => 1,
	},
	'_es_check_not_erased(text,timestamp with time zone)' => {
		valid => q{SELECT event_store._es_check_not_erased(a, NULL)::text FROM (SELECT 'acc-1'::text OFFSET 0) x(a)},
		invalid => q{SELECT event_store._es_check_not_erased(a, now())::text FROM (SELECT 'gone-1'::text OFFSET 0) x(a)},
		state => 'V0004',
		worker => q{event_store._es_check_not_erased('s-' || b.id, NULL)},
		worker_bad => q{event_store._es_check_not_erased('s-' || b.id, CASE WHEN b.id > 0 THEN now() END)},
		worker_state => 'V0004',
		pure => 1,
	},
	'_es_lock_upcasters()' => {
		valid => q{SELECT event_store._es_lock_upcasters()::text},
		invalid => q{SELECT event_store._es_lock_upcasters()::text},
		role => 'es_nobody',
		state => '42501',
	},
	'es_checkpoint_save(text,bigint,bigint)' => {
		valid => q{SELECT event_store.es_checkpoint_save('proj-1', 10)::text},
		invalid => q{SELECT event_store.es_checkpoint_save('proj-1', 1)::text},
		state => 'V0002',
	},
	'es_checkpoint_get(text)' => {
		valid => q{SELECT event_store.es_checkpoint_get('proj-1')::text},
		invalid => q{SELECT event_store.es_checkpoint_get('')::text},
		state => '22023',
	},
	'es_checkpoint_reset(text,bigint)' => {
		valid => q{SELECT event_store.es_checkpoint_reset('proj-1', 0)::text},
		invalid => q{SELECT event_store.es_checkpoint_reset('no-such-consumer')::text},
		state => '42704',
	},
	'_es_lag_seconds(bigint,bigint)' => {
		valid => q{SELECT (event_store._es_lag_seconds(0, event_store._es_head_if_known()) >= 0)::text},
		invalid => q{SELECT event_store._es_lag_seconds(0, NULL)::text},
		role => 'es_nobody',
		state => '42501',
	},
	'_es_head_if_known()' => {
		valid => q{SELECT event_store._es_head_if_known()::text},
		invalid => q{SELECT event_store._es_head_if_known()::text},
		role => 'es_nobody',
		state => '42501',
	},
	'es_save_snapshot(text,bigint,jsonb,integer)' => {
		valid => q{SELECT event_store.es_save_snapshot('acc-1', 4, '{"balance": 10}')::text},
		invalid => q{SELECT event_store.es_save_snapshot('acc-1', 99, '{}')::text},
		state => '22023',
	},
	'es_load_snapshot(text,integer)' => {
		valid => q{SELECT coalesce(string_agg(concat_ws(':', s.version, s.state::text, s.schema_version), ','), '')
		             FROM event_store.es_load_snapshot('ord-1') s},
		invalid => q{SELECT count(*)::text FROM event_store.es_load_snapshot(NULL)},
		state => '22004',
		late => late_of(q{event_store.es_load_snapshot('ord-1')}),
		worker => q{s.version || '/' || s.state::text},
		worker_join => q{LEFT JOIN LATERAL event_store.es_load_snapshot(CASE WHEN b.id % 20000 = 0 THEN 'ord-1' ELSE 'acc-1' END) s ON true},
		worker_bad => q{s.version},
		worker_bad_join => q{LEFT JOIN LATERAL event_store.es_load_snapshot('-' || b.id) s ON true},
		worker_state => '22023',
	},
	'es_load_aggregate(text,integer)' => {
		valid => events_of(q{event_store.es_load_aggregate('ord-1')}),
		invalid => events_of(q{event_store.es_load_aggregate('')}),
		state => '22023',
		late => late_of(q{event_store.es_load_aggregate('acc-1')}),
	},
	'es_read_stream_at(text,bigint,timestamp with time zone)' => {
		valid => events_of(q{event_store.es_read_stream_at('acc-1', at_version => 3)}),
		invalid => events_of(q{event_store.es_read_stream_at('acc-1', 3, now())}),
		state => '22023',
		late => late_of(q{event_store.es_read_stream_at('acc-1', at_version => 3)}),
	},
	'es_register_upcaster(text,integer,regprocedure)' => {
		invalidates => 1,
		valid => q{SELECT event_store.es_register_upcaster('Deposited', 3, 'public.dep_v3(jsonb)')::text},
		invalid => q{SELECT event_store.es_register_upcaster('Deposited', 7, 'public.dep_v3(jsonb)')::text},
		state => '22023',
	},
	'es_unregister_upcaster(text,integer)' => {
		invalidates => 1,
		valid => q{SELECT event_store.es_unregister_upcaster('Deposited', 2)::text},
		invalid => q{SELECT event_store.es_unregister_upcaster('Deposited', 9)::text},
		state => '42704',
	},
	'es_set_stream_metadata(text,jsonb)' => {
		invalidates => 1,
		valid => q{SELECT event_store.es_set_stream_metadata('acc-2', '{"max_count": 3, "owner": "other"}')::text},
		invalid => q{SELECT event_store.es_set_stream_metadata('acc-2', '[]')::text},
		state => '22023',
	},
	'es_delete_stream(text,bigint)' => {
		invalidates => 1,
		valid => q{SELECT event_store.es_delete_stream('ord-2')::text},
		invalid => q{SELECT event_store.es_delete_stream('no-such-1')::text},
		state => '42704',
	},
	'es_erase_stream(text,text)' => {
		invalidates => 1,
		valid => q{SELECT event_store.es_erase_stream('acc-3', 'test')::text},
		invalid => q{SELECT event_store.es_erase_stream('gone-1')::text},
		state => 'V0004',
	},
);

# The functions a user may call, from the catalog: name, parallel safety,
# and whether it returns a set.
my %fn;
{
	my $d = es_connect($node, 'es_tmpl');
	my $r = es_run($d, q{
		SELECT substr(p.oid::regprocedure::text, length('event_store.') + 1), p.proparallel, p.proretset::int
		  FROM pg_catalog.pg_proc p
		 WHERE p.pronamespace = 'event_store'::regnamespace
		   AND p.prorettype <> 'pg_catalog.trigger'::regtype
		   AND p.proname <> '_es_install'
		 ORDER BY 1});
	die "cannot list the functions: $r->{err}" unless $r->{ok};
	$fn{ $_->[0] } = { parallel => $_->[1], setof => $_->[2] } for @{ $r->{rows} };
	$d->disconnect;
}
my @fns = sort keys %fn;
my @missing = grep { !$calls{$_} } @fns;
my @stale = grep { !$fn{$_} } sort keys %calls;
note(scalar(@fns) . ' functions: ' . join(', ', @fns));
is(scalar(@missing), 0, 'every function of the extension has an entry in the table of calls')
  or diag('no entry for: ' . join(', ', @missing));
is(scalar(@stale), 0, 'every entry of the table of calls names a function of the extension')
  or diag('no such function: ' . join(', ', @stale));
cmp_ok(scalar(@fns), '>=', 29, 'the extension has at least the 29 functions of 0.2.0');
@fns = grep { $calls{$_} } @fns;


# Each call once on the fixture: the valid one works and returns something,
# the failing one fails with its SQLSTATE.
{
	my $db = new_db('es_calls');
	my $d = es_connect($node, $db);
	for my $f (@fns)
	{
		my $c = $calls{$f};
		es_run($d, 'BEGIN');
		es_run($d, "SET LOCAL ROLE $c->{valid_role}") if $c->{valid_role};
		my $r = es_run($d, $c->{valid});
		es_run($d, 'ROLLBACK');
		ok($r->{ok} && @{ $r->{rows} } == 1, "calls: $f: the valid call works")
		  or diag("$r->{state}: " . ($r->{err} // '') . " -- $c->{valid}");
		note("calls: $f returns " . substr($r->{rows}[0][0] // 'NULL', 0, 200)) if $r->{ok};
		es_run($d, 'BEGIN');
		es_run($d, "SET LOCAL ROLE $c->{role}") if $c->{role};
		$r = es_run($d, $c->{invalid});
		es_run($d, 'ROLLBACK');
		is($r->{state}, $c->{state},
			"calls: $f: the failing call fails with $c->{state}" . ($c->{why} ? " (no call can fail: $c->{why})" : ''))
		  or diag($r->{err} // '');
		if ($c->{late})
		{
			$r = es_run($d, $c->{late});
			is($r->{state}, '22012', "calls: $f: the statement failing after the read fails with 22012");
		}
	}
	$d->disconnect;
}

# A fingerprint of every table of the extension (row counts and contents)
# and of the feed head.
my $fingerprint_sql = q{
SELECT string_agg(t || '=' || n || ':' || h, ' ' ORDER BY t) FROM (
  SELECT 'events' t, count(*) n, md5(coalesce(string_agg(x::text, '|' ORDER BY x.position), '')) h
    FROM event_store.events x
  UNION ALL SELECT 'streams', count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x.id), ''))
    FROM event_store.streams x
  UNION ALL SELECT 'snapshots', count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x.stream), ''))
    FROM event_store.snapshots x
  UNION ALL SELECT 'upcasters', count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x.type, x.from_schema_version), ''))
    FROM event_store.upcasters x
  UNION ALL SELECT 'checkpoints', count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x.consumer), ''))
    FROM event_store.checkpoints x
  UNION ALL SELECT 'erasures', count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x.stream), ''))
    FROM event_store.erasures x
  UNION ALL SELECT 'projections', count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x.name), ''))
    FROM event_store.projections x
  UNION ALL SELECT 'dead_letters', count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x.consumer, x.position), ''))
    FROM event_store.dead_letters x
  UNION ALL SELECT 'head', event_store.es_head_position(), '') f};

# ---------------------------------------------------------------------------
# (a) Subtransactions and memory
# ---------------------------------------------------------------------------
# 1,000 rounds for every function, kind and mode (all of (a) takes about
# 15 s).
{
	my $t0 = time;
	my $db = new_db('es_a');
	my $m = es_connect($node, $db);
	my $mem = sub {
		my $r = es_run($m, 'SELECT sum(total_bytes)::bigint FROM pg_catalog.pg_backend_memory_contexts');
		die "cannot measure memory: $r->{state} $r->{err}" unless $r->{ok};
		return $r->{rows}[0][0];
	};
	my $print = es_col($m, $fingerprint_sql);
	note("(a) tables before: $print");

	# One kind of call in one mode, $rounds times in one transaction, which
	# then commits.  Returns (rounds done, memory growth, bad rounds, what a
	# bad round said).
	my $run = sub {
		my ($mode, $sql, $role, $want, $rounds, $stmt, $control) = @_;
		my ($done, $bad, $said) = (0, 0, '');
		es_run($m, 'BEGIN');
		my $set_role = $role ? "SET LOCAL ROLE $role; " : '';
		my ($round, $block);
		if ($mode eq 'savepoint')
		{
			# a call that succeeds is rolled back in the same message
			$round = sub {
				my $r = es_run($m, "SAVEPOINT s; ${set_role}$sql"
					  . ($want eq '00000' ? '; ROLLBACK TO SAVEPOINT s; RELEASE SAVEPOINT s' : ''));
				if ($r->{state} ne $want)
				{
					$bad++;
					$said = "$r->{state} " . ($r->{err} // '');
				}
				es_run($m, 'ROLLBACK TO SAVEPOINT s; RELEASE SAVEPOINT s')
				  if !$r->{ok} || $want ne '00000';
			};
		}
		else
		{
			# a DO block of $n caught failures; a valid call is followed by
			# an error of its own (P0099), so that its work is rolled back
			my $expect = $want eq '00000' ? 'P0099' : $want;
			my $pre = $role ? "PERFORM pg_catalog.set_config('role', '$role', true);" : '';
			my $raise = $want eq '00000'
			  ? q{RAISE EXCEPTION 'rolled back on purpose' USING ERRCODE = 'P0099';} : '';
			$block = sub {
				my ($n) = @_;
				my $r = es_run($m, qq{DO \$do\$
				  DECLARE bad int := 0; said text := ''; v text;
				  BEGIN
				    FOR i IN 1 .. $n LOOP
				      BEGIN
				        $pre
				        @{[ $stmt ? "EXECUTE \$q\$$sql\$q\$;" : "v := ($sql);" ]}
				        $raise
				      EXCEPTION WHEN OTHERS THEN
				        IF SQLSTATE <> '$expect' THEN bad := bad + 1; said := SQLSTATE || ' ' || SQLERRM; END IF;
				      END;
				    END LOOP;
				    PERFORM pg_catalog.set_config('es_test.bad', bad::text, false);
				    PERFORM pg_catalog.set_config('es_test.said', said, false);
				  END \$do\$});
				if (!$r->{ok})
				{
					$bad += $n;
					$said = "the DO block failed: $r->{state} " . ($r->{err} // '');
					return;
				}
				my $b = es_col($m, q{SELECT current_setting('es_test.bad') || ' ' || current_setting('es_test.said')});
				my ($count, $text) = split / /, $b, 2;
				if ($count)
				{
					$bad += $count;
					$said = $text;
				}
			};
		}
		# warm-up: caches, free lists
		if ($round) { $round->() for 1 .. 3 } else { $block->(3) }
		my $before = $mem->();
		my $growth = 0;
		# measured after 25 rounds, then every 100 (savepoints) or after
		# each DO block (325 rounds): a leak stops the loop early
		my $step = 25;
		while ($done < $rounds)
		{
			my $n = $rounds - $done < $step ? $rounds - $done : $step;
			if ($round) { $round->() for 1 .. $n } else { $block->($n) }
			$done += $n;
			$growth = $mem->() - $before;
			last if $growth > $MB && !$control;
			$step = $round ? 100 : 325;
		}
		$growth = $mem->() - $before;
		my $c = es_run($m, 'COMMIT');
		$bad++, $said = "COMMIT: $c->{state}" unless $c->{ok};
		return ($done, $growth, $bad, $said);
	};

	# Controls, PostgreSQL alone: an UPDATE of a plain table keeps nothing
	# once rolled back (the measure works).  A subtransaction that queued a
	# cache invalidation keeps some of TopTransactionContext until the
	# transaction ends, even rolled back and released (PostgreSQL 15 itself,
	# with or without event_store loaded: 528 bytes for CREATE POLICY, which
	# queues one relcache invalidation; 1,057 bytes for a GRANT, CREATE
	# FUNCTION or ALTER TABLE).  The functions that change stream metadata or
	# upcasters queue exactly one relcache invalidation (of streams or
	# upcasters, es_registry_touch in src/es_lifecycle.c): they are allowed
	# what PostgreSQL keeps for as many rolled-back CREATE POLICY, on top of
	# the 1 MB.
	es_run($m, 'CREATE TABLE public.es_ctl (x int); INSERT INTO public.es_ctl VALUES (1)');
	my %allowance;
	for my $mode ('savepoint', 'exception block')
	{
		my $do = $mode eq 'savepoint' ? 'savepoint' : 'do';
		my ($done, $growth, $bad, $said) = $run->($do, 'UPDATE public.es_ctl SET x = x + 1', undef, '00000', 1000, 1, 1);
		is($bad, 0, "(a) control, UPDATE of a plain table, $mode: every round rolled back") or diag($said);
		ok($done == 1000 && $growth <= $MB, "(a) control, UPDATE of a plain table, $mode: 1000 rounds within 1 MB (the measure works)")
		  or diag(sprintf('after %d rounds: %+.0f kB', $done, $growth / 1024));
		note(sprintf('(a) control, UPDATE of a plain table, %s: %+.1f kB', $mode, $growth / 1024));
		($done, $growth, $bad, $said) = $run->($do, 'CREATE POLICY es_ctl_p ON public.es_ctl USING (true)', undef, '00000', 1000, 1, 1);
		is($bad, 0, "(a) control, CREATE POLICY, $mode: every round rolled back") or diag($said);
		ok($done == 1000 && $growth <= 2 * $MB,
			"(a) control, CREATE POLICY (one relcache invalidation), $mode: PostgreSQL keeps at most 2 MB for 1000 rounds")
		  or diag(sprintf('after %d rounds: %+.0f kB', $done, $growth / 1024));
		$allowance{$mode} = $growth;
		note(sprintf('(a) control, CREATE POLICY (one relcache invalidation), %s: %+.1f kB', $mode, $growth / 1024));
	}

	for my $f (@fns)
	{
		my $c = $calls{$f};
		my $rounds = 1000;
		my @kinds = ([ 'valid call', $c->{valid}, $c->{valid_role}, '00000' ],
			[ 'failing call', $c->{invalid}, $c->{role}, $c->{state} ]);
		push @kinds, [ 'read failing after its rows', $c->{late}, undef, '22012' ] if $c->{late};
		my $tf = time;
		for my $mode ('savepoint', 'exception block')
		{
			for my $k (@kinds)
			{
				my ($kind, $sql, $role, $want) = @$k;
				my ($done, $growth, $bad, $said) = $run->($mode eq 'savepoint' ? 'savepoint' : 'do', $sql, $role, $want, $rounds);
				my $label = "(a) $f, $kind, $mode";
				is($bad, 0, "$label: every round ended as expected (" . ($want eq '00000' ? 'success, rolled back' : $want) . ')')
				  or diag("$bad bad rounds; the last said: $said");
				# the control's growth for as many rounds (only where the
				# call succeeded: a failing one queues nothing)
				my $extra = $c->{invalidates} && $want eq '00000' ? $allowance{$mode} * $rounds / 1000 : 0;
				ok($done >= $rounds && $growth <= $MB + $extra,
					"$label: $rounds rounds in one transaction, memory contexts within 1 MB"
					  . ($extra ? sprintf(' (+ %.0f kB, what PostgreSQL keeps for as many relcache invalidations)', $extra / 1024) : ''))
				  or diag(sprintf('after %d rounds: %+.0f kB', $done, $growth / 1024));
				note(sprintf('%s: %d rounds, %+.1f kB', $label, $done, $growth / 1024));
			}
		}
		is(es_col($m, $fingerprint_sql), $print,
			"(a) $f: after the committed transactions nothing the rolled-back calls did is left (every table, the head)");
		timing("(a) $f", $tf);
	}
	$m->disconnect;
	timing('(a) subtransactions and memory', $t0);
}

# ---------------------------------------------------------------------------
# (b) Parallel plans
# ---------------------------------------------------------------------------
# The text of the plan nodes under a Gather, and of the others (VERBOSE
# plans name every function they call).
sub plan_text
{
	my ($plan_json) = @_;
	my ($under, $over, $gathers, $launched) = ('', '', 0, 0);
	for my $n (es_plan_nodes($plan_json))
	{
		my %own = %{ $n->{node} };
		delete $own{Plans};
		my $text = $json->encode(\%own);
		if (($n->{type} // '') =~ /^Gather/)
		{
			$gathers++;
			$launched += $n->{workers_launched} // 0;
		}
		if (grep { /^Gather/ } @{ $n->{parents} }) { $under .= $text } else { $over .= $text }
	}
	return { under => $under, over => $over, gathers => $gathers, launched => $launched };
}

{
	my $t0 = time;
	my $db = new_db('es_b');
	my $admin = es_connect($node, $db);
	must($admin,
		q{CREATE TABLE public.big AS SELECT g AS id, md5(g::text) AS pad FROM generate_series(1, 100000) g;
		  ANALYZE public.big; GRANT SELECT ON public.big TO es_nobody, es_projector},
		'(b) setup: a 100,000-row table');
	must($admin, q{CREATE FUNCTION public.par_up(data jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$ SELECT data $$},
		'(b) setup: a function to register as an upcaster');
	must($admin, q{SELECT event_store.es_append('parmeta-1', 0, 'Par', '{}')}, '(b) setup: a stream for metadata changes');

	my $q = es_connect($node, $db);
	must($q, $_, "(b) $_")
	  for ('SET parallel_setup_cost = 0', 'SET parallel_tuple_cost = 0',
		'SET min_parallel_table_scan_size = 0', 'SET max_parallel_workers_per_gather = 2',
		# the part under the Gather runs in the workers only
		'SET parallel_leader_participation = off');

	# Other sessions' commits invalidate both caches of $q: a stream's
	# metadata, and a new upcaster.
	my $n = 0;
	my $invalidate = sub {
		$n++;
		my $r1 = es_run($admin, qq{SELECT event_store.es_set_stream_metadata('parmeta-1', '{"max_count": $n}')});
		my $r2 = es_run($admin, qq{SELECT event_store.es_register_upcaster('ParUp$n', 1, 'public.par_up(jsonb)')});
		return $r1->{ok} && $r2->{ok};
	};
	# One run of $sql, with parallel plans or without, in a transaction
	# rolled back (the writing functions change nothing for the next).
	my $query = sub {
		my ($sql, $parallel, $role) = @_;
		es_run($q, 'SET max_parallel_workers_per_gather = ' . ($parallel ? 2 : 0));
		es_run($q, 'BEGIN');
		es_run($q, "SET LOCAL ROLE $role") if $role;
		my $r = es_run($q, $sql);
		es_run($q, 'ROLLBACK');
		es_run($q, 'SET max_parallel_workers_per_gather = 2');
		return $r;
	};
	my $value = sub { my ($r) = @_; return $r->{ok} ? ($r->{rows}[0][0] // 'NULL') : "ERROR $r->{state} $r->{err}" };

	for my $f (@fns)
	{
		my $c = $calls{$f};
		my $par = $fn{$f}{parallel};
		my ($name) = $f =~ /^([a-z_0-9]+)\(/;
		my $called = "event_store.$name(";
		my $kind = { s => 'PARALLEL SAFE', r => 'PARALLEL RESTRICTED', u => 'PARALLEL UNSAFE' }->{$par};

		# in the leader: the call is an InitPlan next to a parallel count
		my $leader = qq{SELECT (SELECT count(*) FROM public.big WHERE pad <> 'x')::text || '|' || coalesce(($c->{valid}), 'NULL')};
		my $leader_bad = qq{SELECT (SELECT count(*) FROM public.big WHERE pad <> 'x')::text || '|' || coalesce(($c->{invalid}), 'NULL')};
		my $p = es_run($q, "EXPLAIN (VERBOSE, FORMAT JSON) $leader");
		my $shape = $p->{ok} ? plan_text($p->{rows}[0][0]) : { under => '', over => '', gathers => 0 };
		if ($par eq 'u')
		{
			is($shape->{gathers}, 0, "(b) $f ($kind): the plan of a query calling it is serial (no Gather)")
			  or diag($p->{ok} ? $p->{rows}[0][0] : $p->{err});
		}
		else
		{
			ok($shape->{gathers} > 0, "(b) $f ($kind), in the leader: the plan has a Gather")
			  or diag($p->{ok} ? $p->{rows}[0][0] : $p->{err});
			ok(index($shape->{under}, $called) < 0 && index($shape->{over}, $called) >= 0,
				"(b) $f ($kind), in the leader: the call is in the plan, not under the Gather");
		}
		my $where = $par eq 'u' ? 'in a serial plan' : 'in the leader of a parallel plan';
		ok($invalidate->(), "(b) $f: other sessions change a stream's metadata and register an upcaster");
		my $r = $query->($leader, 1, $c->{valid_role});
		ok($r->{ok}, "(b) $f $where, caches just invalidated: no error")
		  or diag("$r->{state}: " . ($r->{err} // ''));
		my $serial = $query->($leader, 0, $c->{valid_role});
		is($value->($r), $value->($serial), "(b) $f $where: the result of the serial plan");
		$invalidate->();
		$r = $query->($leader_bad, 1, $c->{role});
		is($r->{state}, $c->{state}, "(b) $f $where: the failing call fails with $c->{state}")
		  or diag($r->{err} // '');

		next if $par eq 'u';
		# joined to the Gather's rows (a LATERAL subquery whose OFFSET
		# depends on the row, so that it is not hoisted): the call runs
		# after the Gather returned its first row, while its workers run
		my $joined = qq{SELECT count(*)::text || '|' || string_agg(r.v, ',' ORDER BY b.id)
		  FROM (SELECT id FROM public.big WHERE pad <> 'x' AND id % 25000 = 0) b,
		       LATERAL (SELECT v FROM ($c->{valid}) x(v) OFFSET b.id * 0) r};
		$p = es_run($q, "EXPLAIN (VERBOSE, FORMAT JSON) $joined");
		$shape = $p->{ok} ? plan_text($p->{rows}[0][0]) : { gathers => 0, under => '' };
		ok($shape->{gathers} > 0, "(b) $f ($kind), joined to a parallel scan: the plan has a Gather")
		  or diag($p->{ok} ? $p->{rows}[0][0] : $p->{err});
		ok(index($shape->{under}, $called) < 0, "(b) $f ($kind), joined to a parallel scan: the call is in the leader")
		  or diag($p->{rows}[0][0])
		  if $par eq 'r';
		$invalidate->();
		$r = $query->($joined, 1);
		ok($r->{ok}, "(b) $f joined to a parallel scan, caches just invalidated: no error")
		  or diag("$r->{state}: " . ($r->{err} // ''));
		$serial = $query->($joined, 0);
		is($value->($r), $value->($serial), "(b) $f joined to a parallel scan: the result of the serial plan");

		next unless $par eq 's';
		# in the workers: the call is evaluated by the partial aggregate
		if (!$c->{worker})
		{
			fail("(b) $f is PARALLEL SAFE: the table of calls needs a call for the workers");
			next;
		}
		my $worker = sprintf(q{SELECT count(*)::text || '|' || coalesce(sum(hashtext(b.id || ':' || coalesce((%s)::text, 'NULL')))::text, 'NULL')
		                         FROM public.big b %s WHERE b.id %% 10000 = 0}, $c->{worker}, $c->{worker_join} // '');
		my $worker_bad = sprintf(q{SELECT count(*)::text || '|' || coalesce(sum(hashtext(b.id || ':' || coalesce((%s)::text, 'NULL')))::text, 'NULL')
		                         FROM public.big b %s WHERE b.id %% 10000 = 0}, $c->{worker_bad}, $c->{worker_bad_join} // $c->{worker_join} // '');
		$p = es_run($q, "EXPLAIN (VERBOSE, FORMAT JSON) $worker");
		$shape = $p->{ok} ? plan_text($p->{rows}[0][0]) : { under => '', gathers => 0 };
		ok($shape->{gathers} > 0 && index($shape->{under}, $called) >= 0,
			"(b) $f ($kind), in the workers: the call is under the Gather")
		  or diag($p->{ok} ? $p->{rows}[0][0] : $p->{err});
		$invalidate->();
		$p = $query->("EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) $worker", 1);
		$shape = $p->{ok} ? plan_text($p->{rows}[0][0]) : { launched => 0 };
		ok($p->{ok} && $shape->{launched} > 0,
			"(b) $f in the workers, caches just invalidated: workers launched, no error")
		  or diag($p->{ok} ? 'no worker launched' : "$p->{state}: $p->{err}");
		$invalidate->();
		$r = $query->($worker, 1);
		ok($r->{ok}, "(b) $f in the workers of a parallel plan: no error")
		  or diag("$r->{state}: " . ($r->{err} // ''));
		$serial = $query->($worker, 0);
		is($value->($r), $value->($serial), "(b) $f in the workers: the result of the serial plan");
		$invalidate->();
		$r = $query->($worker_bad, 1);
		is($r->{state}, $c->{worker_state}, "(b) $f in the workers: the failing call fails with $c->{worker_state}")
		  or diag($r->{err} // '');
	}
	$q->disconnect;
	$admin->disconnect;
	timing('(b) parallel plans', $t0);
}

# ---------------------------------------------------------------------------
# (c) DROP EXTENSION races
# ---------------------------------------------------------------------------
{
	my $t0 = time;
	my $db = new_db('es_c');
	my $observer = es_connect($node);
	my $reset = "DROP EXTENSION IF EXISTS event_store CASCADE; CREATE EXTENSION event_store; $fixture";
	my $fresh = 1;    # the copy of the template is fresh for the first round
	for my $f (@fns)
	{
		my $c = $calls{$f};
		for my $recreate (0, 1)
		{
			my $what = $recreate ? 'DROP and CREATE EXTENSION' : 'DROP EXTENSION';
			my $label = "(c) $f, $what";
			my $a = es_connect($node, $db);
			if (!$fresh)
			{
				my $r = es_run($a, $reset);
				if (!$r->{ok})
				{
					fail("$label: the fixture is created again");
					diag("$r->{state}: $r->{err}");
					next;
				}
			}
			$fresh = 0;
			my $b = es_connect($node, $db);
			es_run($b, "SET ROLE $c->{valid_role}") if $c->{valid_role};
			# the caller has used the extension before: its caches are loaded
			es_run($b, 'BEGIN');
			my $warm = es_run($b, $c->{valid});
			es_run($b, 'ROLLBACK');
			ok($warm->{ok}, "$label: the call works before (the caller is warm)")
			  or diag("$warm->{state}: $warm->{err}");
			my ($bpid) = $b->selectrow_array('SELECT pg_backend_pid()');

			es_run($a, 'BEGIN');
			must($a, 'DROP EXTENSION event_store CASCADE', "$label: DROP EXTENSION, not committed");
			must($a, 'CREATE EXTENSION event_store', "$label: CREATE EXTENSION, not committed") if $recreate;
			es_async($b, $c->{valid});
			# bounded poll: the call waits for a lock, or ends
			my ($blocked, $ended) = (0, 0);
			my $end = time + 30;
			while (time < $end)
			{
				if ($b->pg_ready)
				{
					$ended = 1;
					last;
				}
				my ($w) = $observer->selectrow_array(
					q{SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'},
					undef, $bpid);
				my ($l) = $observer->selectrow_array(
					q{SELECT count(*) FROM pg_catalog.pg_locks WHERE pid = $1 AND NOT granted}, undef, $bpid);
				if ($w || $l)
				{
					$blocked = 1;
					last;
				}
				usleep(5_000);
			}
			my $no_wait = $c->{pure} || $c->{no_wait};
			if ($no_wait)
			{
				ok($ended && !$blocked, "$label: the call reads no table of the extension: it ends without waiting");
			}
			else
			{
				ok($blocked, "$label: the call waits for the uncommitted DROP (wait_event_type Lock)")
				  or diag($ended ? 'it ended without waiting' : 'it neither waited nor ended in 30 s');
			}
			my $commit = es_run($a, 'COMMIT');
			ok($commit->{ok}, "$label: the DROP commits") or diag("$commit->{state}: $commit->{err}");
			my $r = es_async_result($b);
			my $state = $r->{state};
			my @want = $no_wait ? ('00000') : ('55000', '42P01', '42883', '42704');
			push @want, '00000', @{ $c->{recreated} // [] } if $recreate && !$no_wait;
			ok((grep { $_ eq $state } @want),
				"$label: the call ends with " . join(' or ', map { $_ eq '00000' ? 'success' : $_ } @want) . ' (never XX000)')
			  or diag("got $state: " . ($r->{err} // ''));
			note("$label: $state" . ($r->{ok} ? '' : " $r->{err}"));
			if ($state eq 'CRASH')
			{
				es_wait_ready($node);
				$observer = es_connect($node);
			}
			is(es_col($observer, 'SELECT 1'), '1', "$label: the server is up");
			for my $h ($a, $b) { $h->disconnect if $h->ping }
		}
	}
	$observer->disconnect;
	timing('(c) DROP EXTENSION races', $t0);
}

# ---------------------------------------------------------------------------
# (d) Hostile rows
# ---------------------------------------------------------------------------
{
	my $t0 = time;
	my $db = new_db('es_d');
	my $admin = es_connect($node, $db);
	must($admin, q{
		GRANT SELECT ON event_store.events, event_store.streams, event_store.snapshots
		   TO es_reader, es_consumer, es_writer;
		GRANT SELECT, INSERT, UPDATE ON event_store.checkpoints TO es_consumer;
		GRANT SELECT ON event_store.es_consumers TO es_consumer;
		GRANT INSERT ON event_store.events TO es_writer;
		GRANT INSERT, UPDATE ON event_store.snapshots TO es_writer;
		GRANT SELECT, INSERT, DELETE ON event_store.upcasters TO es_keeper;
		GRANT EXECUTE ON FUNCTION event_store.es_erase_stream(text, text) TO es_eraser;
		CREATE SCHEMA keeper_fns AUTHORIZATION es_keeper;
		-- an upcaster of the admin's that reads the store: a nested read, as its owner
		CREATE FUNCTION public.nested_up(data jsonb) RETURNS jsonb LANGUAGE sql STABLE
		  AS $$ SELECT data || jsonb_build_object('acc1', (SELECT count(*) FROM event_store.es_read_stream('acc-1'))) $$;
		SELECT event_store.es_register_upcaster('Nested', 1, 'public.nested_up(jsonb)');
		SELECT event_store.es_register_upcaster('AdminUp', 1, 'public.dep_v3(jsonb)');
		SELECT event_store.es_register_upcaster('AdminUp', 2, 'public.dep_v3(jsonb)');
		SELECT event_store.es_register_upcaster('AdminUp', 3, 'public.dep_v3(jsonb)');},
		'(d) setup: the grants of the Privileges table, a schema of the keeper, an upcaster that reads the store');

	my %conn = map { $_ => es_connect($node, $db, $_) } @roles, 'es_nobody';
	my %short = (es_reader => 'reader', es_consumer => 'consumer', es_writer => 'writer',
		es_keeper => 'schema keeper', es_eraser => 'eraser', es_nobody => 'no grant');

	# Each write: [role, what, SQL, expected]; expected is a SQLSTATE,
	# 'refused' (any proper error) or 'any' (success or a proper error).
	my $deep_arr = '[' x 400 . ']' x 400;
	my $deep_obj = '{"a": ' x 300 . '1' . '}' x 300;
	my @writes;
	my $w = sub { push @writes, [@_] };
	my $ins = sub {    # a plain INSERT into events of the writer
		my ($what, $cols, $vals, $want) = @_;
		$w->('es_writer', "plain INSERT: $what", "INSERT INTO event_store.events ($cols) VALUES ($vals)", $want);
	};

	# events, by plain INSERT: every column variant the trigger allows
	$ins->('a new stream', 'stream, type, data', q{'w-1', 'T', '{}'}, '00000');
	$ins->('the next event', 'stream, type, data', q{'w-1', 'T', '{}'}, '00000');
	$ins->('version given, the next one', 'stream, version, type, data', q{'w-1', 3, 'T', '{}'}, '00000');
	$ins->('version given, a wrong one', 'stream, version, type, data', q{'w-1', 7, 'T', '{}'}, 'V0001');
	$ins->('version 0', 'stream, version, type, data', q{'w-1', 0, 'T', '{}'}, 'refused');
	$ins->('version -1', 'stream, version, type, data', q{'w-1', -1, 'T', '{}'}, 'refused');
	$ins->('version 2^63 - 1', 'stream, version, type, data', q{'w-1', 9223372036854775807, 'T', '{}'}, 'refused');
	$ins->('version NULL', 'stream, version, type, data', q{'w-1', NULL, 'T', '{}'}, 'any');
	$ins->('position given (not the owner)', 'position, stream, type, data', q{999999, 'w-1', 'T', '{}'}, '42501');
	$ins->('position NULL', 'position, stream, type, data', q{NULL, 'w-1', 'T', '{}'}, 'any');
	$ins->('created_at now()', 'stream, type, data, created_at', q{'w-1', 'T', '{}', now()}, '00000');
	$ins->('created_at in the past', 'stream, type, data, created_at', q{'w-1', 'T', '{}', '2000-01-01'}, '42501');
	$ins->('created_at infinity', 'stream, type, data, created_at', q{'w-1', 'T', '{}', 'infinity'}, '42501');
	$ins->('event_id given', 'stream, type, data, event_id', q{'w-1', 'T', '{}', '0190a7a8-0000-7000-8000-00000000d001'}, '00000');
	$ins->('event_id again', 'stream, type, data, event_id', q{'w-2', 'T', '{}', '0190a7a8-0000-7000-8000-00000000d001'}, '23505');
	$ins->('event_id NULL', 'stream, type, data, event_id', q{'w-1', 'T', '{}', NULL}, '23502');
	$ins->('event_id not v7', 'stream, type, data, event_id', q{'w-1', 'T', '{}', '00000000-0000-0000-0000-000000000000'}, 'any');
	$ins->('schema_version 2^31 - 1', 'stream, type, data, schema_version', q{'w-1', 'T', '{}', 2147483647}, '00000');
	$ins->('schema_version 0', 'stream, type, data, schema_version', q{'w-1', 'T', '{}', 0}, '22003');
	$ins->('schema_version -5', 'stream, type, data, schema_version', q{'w-1', 'T', '{}', -5}, '22003');
	$ins->('schema_version NULL', 'stream, type, data, schema_version', q{'w-1', 'T', '{}', NULL}, 'refused');
	$ins->('metadata NULL', 'stream, type, data, metadata', q{'w-1', 'T', '{}', NULL}, '00000');
	$ins->('metadata JSON null', 'stream, type, data, metadata', q{'w-1', 'T', '{}', 'null'}, 'any');
	$ins->('metadata an array', 'stream, type, data, metadata', q{'w-1', 'T', '{}', '[]'}, '22023');
	$ins->('metadata a string', 'stream, type, data, metadata', q{'w-1', 'T', '{}', '"s"'}, '22023');
	$ins->('metadata deeply nested', 'stream, type, data, metadata', qq{'w-1', 'T', '{}', '$deep_obj'}, '00000');
	my %data = (null => 'null', true => 'true', number => '1.5e300', string => '"s"', array => '[1, "2", null]',
		object => '{"a": {"b": []}}', 'empty array' => '[]', 'nested 400 deep' => $deep_arr);
	$ins->("data $_", 'stream, type, data', qq{'w-data', 'T', '$data{$_}'}, '00000') for sort keys %data;
	$w->('es_writer', 'plain INSERT: data of 500 kB', q{INSERT INTO event_store.events (stream, type, data)
		SELECT 'w-data', 'T', jsonb_build_object('pad', string_agg(md5(i::text), '')) FROM generate_series(1, 16000) i}, '00000');
	$w->('es_writer', 'plain INSERT: data over max_event_size', q{INSERT INTO event_store.events (stream, type, data)
		SELECT 'w-data', 'T', jsonb_build_object('pad', string_agg(md5(i::text), '')) FROM generate_series(1, 40000) i}, '54000');
	$ins->('type empty', 'stream, type, data', q{'w-1', '', '{}'}, '22023');
	$ins->('type of 500 bytes', 'stream, type, data', q{'w-1', repeat('t', 500), '{}'}, '00000');
	$ins->('type of 501 bytes', 'stream, type, data', q{'w-1', repeat('t', 501), '{}'}, '54000');
	$ins->('type of symbols', 'stream, type, data', q{'w-1', 'ü€😀 %s%n', '{}'}, '00000');
	$ins->('type NULL', 'stream, type, data', q{'w-1', NULL, '{}'}, '23502');
	$ins->('stream empty', 'stream, type, data', q{'', 'T', '{}'}, '22023');
	$ins->('stream "-x"', 'stream, type, data', q{'-x', 'T', '{}'}, '22023');
	$ins->('stream of 1000 bytes', 'stream, type, data', q{repeat('s', 1000), 'T', '{}'}, '00000');
	$ins->('stream of 1001 bytes', 'stream, type, data', q{repeat('s', 1001), 'T', '{}'}, '54000');
	$ins->("stream $_", 'stream, type, data', "$_, 'T', '{}'", '00000')
	  for (q{'ü-ß'}, q{'a b-c'}, q{'o''rly-1'}, q{E'new\nline-1'}, q{'nodash'}, q{'%s%n-1'}, q{'x--'}, q{'é-' || repeat('é', 400)});
	$ins->('stream NULL', 'stream, type, data', q{NULL, 'T', '{}'}, '23502');
	$ins->('an erased stream', 'stream, type, data', q{'gone-1', 'T', '{}'}, 'V0004');
	$ins->('a soft-deleted stream', 'stream, type, data', q{'del-1', 'T', '{}'}, '00000');
	$w->('es_writer', 'plain INSERT: several rows, several streams',
		q{INSERT INTO event_store.events (stream, type, data) VALUES ('w-m', 'T', '1'), ('w-n', 'T', '2'), ('w-m', 'T', '3')}, '00000');
	$w->('es_writer', 'plain INSERT: an existing id, ON CONFLICT DO NOTHING',
		q{INSERT INTO event_store.events (stream, type, data, event_id) VALUES ('w-skip', 'T', '{}', '0190a7a8-0000-7000-8000-00000000d001')
		  ON CONFLICT (event_id) DO NOTHING}, '00000');
	$w->('es_writer', 'plain INSERT: ON CONFLICT DO UPDATE',
		q{INSERT INTO event_store.events (stream, type, data, event_id) VALUES ('w-1', 'T', '{}', '0190a7a8-0000-7000-8000-00000000d001')
		  ON CONFLICT (event_id) DO UPDATE SET data = '{"changed": true}'}, 'refused');
	$w->('es_writer', 'plain INSERT: a copy of the events of acc-1 (schema version 1, upcast on read)',
		q{INSERT INTO event_store.events (stream, type, data, metadata, schema_version)
		  SELECT stream, type, data, metadata, schema_version FROM event_store.events WHERE stream = 'acc-1' ORDER BY version}, '00000');
	$w->('es_writer', 'plain INSERT: RETURNING *',
		q{INSERT INTO event_store.events (stream, type, data) VALUES ('w-ret', 'T', '{}') RETURNING *}, '00000');
	$w->('es_writer', 'plain INSERT: every column', q{INSERT INTO event_store.events
		  (position, stream, version, type, data, metadata, event_id, schema_version, created_at)
		  VALUES (DEFAULT, 'w-all', DEFAULT, 'T', '{}', '{"a": 1}', DEFAULT, DEFAULT, DEFAULT)}, '00000');
	$w->('es_writer', 'COPY FROM STDIN', "COPY\tw-copy\tT\t{\"c\": 1}\nw-copy\tT\tnull\n", '00000');
	$w->('es_writer', 'COPY FROM STDIN of a bad row', "COPY\tw-copy\t\t{}\n", '22023');
	# events of the types of the keeper's upcasters, and of the nested one
	for my $t (qw(KOk KMeta KNull KRaise KNested KSwap KGone KStrict KSelf Nested AdminUp))
	{
		$w->('es_writer', "plain INSERT: events of type $t",
			qq{INSERT INTO event_store.events (stream, type, data, metadata, schema_version)
			   VALUES ('k-$t', '$t', '{"n": 1}', NULL, 1), ('k-$t', '$t', '{"n": 2}', '{"m": 2}', 1),
			          ('k-$t', '$t', '{"n": 3}', NULL, 2)}, '00000');
	}
	$w->('es_writer', 'plain INSERT: an event at the last schema version but one, with an upcaster',
		q{INSERT INTO event_store.events (stream, type, data, schema_version) VALUES ('k-KOk', 'KOk', '{}', 2147483646)}, '00000');
	# the writer's functions with odd arguments
	$w->('es_writer', 'es_append of JSON null', q{SELECT event_store.es_append('w-2', NULL, 'T', 'null')}, '00000');
	$w->('es_writer', 'es_append of a misspelt key', q{SELECT event_store.es_append('w-2', NULL, '[{"type": "T", "data": {}, "metdata": {}}]')}, '22023');
	$w->('es_writer', 'es_set_stream_metadata, every rule and keys of its own',
		q{SELECT event_store.es_set_stream_metadata('w-1', '{"max_age": 100000, "truncate_before": 2, "max_count": 50, "mine": [1, {"a": null}]}')}, '00000');
	$w->('es_writer', 'es_set_stream_metadata, max_count 0', q{SELECT event_store.es_set_stream_metadata('w-1', '{"max_count": 0}')}, '22023');
	$w->('es_writer', 'es_set_stream_metadata, max_count 1.5', q{SELECT event_store.es_set_stream_metadata('w-1', '{"max_count": 1.5}')}, '22023');
	$w->('es_writer', 'es_set_stream_metadata, deleted_at', q{SELECT event_store.es_set_stream_metadata('w-1', '{"deleted_at": "x"}')}, '22023');
	$w->('es_writer', 'es_set_stream_metadata, max_count 2^63 - 1',
		q{SELECT event_store.es_set_stream_metadata('w-m', '{"max_count": 9223372036854775807, "truncate_before": 9223372036854775807}')}, 'any');
	$w->('es_writer', 'es_set_stream_metadata, max_age 1 on a stream', q{SELECT event_store.es_set_stream_metadata('w-n', '{"max_age": 1}')}, '00000');
	$w->('es_writer', 'es_set_stream_metadata of an erased stream', q{SELECT event_store.es_set_stream_metadata('gone-1', '{}')}, 'V0004');
	$ins->('a stream to delete', 'stream, type, data', q{'w-del', 'T', '{}'}, '00000');
	$w->('es_writer', 'es_delete_stream', q{SELECT event_store.es_delete_stream('w-del')}, '00000');

	# snapshots: INSERT and UPDATE of the writer
	my %state = (null => 'null', true => 'true', num => '1e300', str => '"s"', arr => '[1, [2]]',
		obj => '{"a": {}}', deep => $deep_arr);
	for my $k (sort keys %state)
	{
		$ins->("the stream snap-$k", 'stream, type, data', qq{'snap-$k', 'T', '{}'}, '00000');
		$w->('es_writer', "snapshot: state $k",
			qq{INSERT INTO event_store.snapshots (stream, version, state) VALUES ('snap-$k', 1, '$state{$k}')}, '00000');
	}
	$w->('es_writer', 'plain INSERT: three events of w-beyond',
		q{INSERT INTO event_store.events (stream, type, data) VALUES ('w-beyond', 'T', '1'), ('w-beyond', 'T', '2'), ('w-beyond', 'T', '3')}, '00000');
	$w->('es_writer', 'snapshot: version beyond the stream',
		q{INSERT INTO event_store.snapshots (stream, version, state) VALUES ('w-beyond', 1000, '{"beyond": true}')}, 'any');
	$w->('es_writer', 'snapshot: version 0', q{INSERT INTO event_store.snapshots (stream, version, state) VALUES ('w-1', 0, '{}')}, '23514');
	$w->('es_writer', 'snapshot: version -1', q{INSERT INTO event_store.snapshots (stream, version, state) VALUES ('w-1', -1, '{}')}, '23514');
	$w->('es_writer', 'snapshot: state NULL', q{INSERT INTO event_store.snapshots (stream, version, state) VALUES ('w-1', 1, NULL)}, '23502');
	$w->('es_writer', 'snapshot: version and schema_version at their maximum',
		q{INSERT INTO event_store.snapshots (stream, version, state, schema_version) VALUES ('w-1', 9223372036854775807, '{}', 2147483647)}, 'any');
	$w->('es_writer', 'snapshot: schema_version 0', q{INSERT INTO event_store.snapshots (stream, version, state, schema_version) VALUES ('w-2', 1, '{}', 0)}, '23514');
	$w->('es_writer', 'snapshot: an erased stream', q{INSERT INTO event_store.snapshots (stream, version, state) VALUES ('gone-1', 1, '{"after": "erasure"}')}, 'any');
	$w->('es_writer', 'snapshot: a soft-deleted stream', q{INSERT INTO event_store.snapshots (stream, version, state) VALUES ('del-1', 1, '{"deleted": true}')}, 'any');
	$w->('es_writer', 'snapshot: a stream that does not exist', q{INSERT INTO event_store.snapshots (stream, version, state) VALUES ('no-such-stream', 1, '{}')}, '23503');
	$w->('es_writer', 'snapshot: created_at infinity', q{INSERT INTO event_store.snapshots (stream, version, state, created_at) VALUES ('ü-ß', 1, '{}', 'infinity')}, 'any');
	$w->('es_writer', 'snapshot: UPDATE to version 2^63 - 1', q{UPDATE event_store.snapshots SET version = 9223372036854775807 WHERE stream = 'snap-num'}, '00000');
	$w->('es_writer', 'snapshot: UPDATE to another stream', q{UPDATE event_store.snapshots SET stream = 'acc-2' WHERE stream = 'snap-str'}, 'any');
	$w->('es_writer', 'snapshot: UPDATE of the state of acc-1 to JSON null', q{UPDATE event_store.snapshots SET state = 'null' WHERE stream = 'acc-1'}, '00000');
	$w->('es_writer', 'snapshot: ON CONFLICT DO UPDATE to version 0',
		q{INSERT INTO event_store.snapshots (stream, version, state) VALUES ('ord-1', 1, '{}') ON CONFLICT (stream) DO UPDATE SET version = 0}, '23514');
	$w->('es_writer', 'es_save_snapshot of JSON null below a stored one', q{SELECT event_store.es_save_snapshot('w-1', 2, 'null')}, 'any');
	$w->('es_writer', 'snapshot: DELETE (no privilege)', q{DELETE FROM event_store.snapshots WHERE stream = 'acc-1'}, '42501');

	# checkpoints: INSERT and UPDATE of the consumer
	my $ck = sub {
		my ($what, $vals, $want) = @_;
		$w->('es_consumer', "checkpoint: $what", "INSERT INTO event_store.checkpoints (consumer, position) VALUES ($vals)", $want);
	};
	$ck->('position 2^63 - 1', q{'c-huge', 9223372036854775807}, '00000');
	$ck->('a negative position', q{'c-neg', -1}, '23514');
	$ck->('position 0', q{'c-zero', 0}, '00000');
	$ck->('position NULL', q{'c-null', NULL}, '23502');
	$ck->('an empty name', q{'', 5}, 'any');
	$ck->('a name of 200 bytes', q{repeat('n', 200), 1}, '00000');
	$ck->('a name of 201 bytes', q{repeat('n', 201), 1}, 'any');
	$ck->('a name of 300 bytes in 150 characters', q{repeat('é', 150), 1}, 'any');
	$ck->('a name of 100,000 bytes', q{repeat('x', 100000), 2}, 'any');
	$ck->('a name of 3,200 bytes that does not compress', q{(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 100) i), 1}, 'any');
	$ck->("a name of symbols", q{E'o''rly\n%s%n\\\\ ü😀', 1}, '00000');
	$ck->('a name of a space', q{' ', 1}, 'any');
	$ck->('a NULL name', q{NULL, 1}, '23502');
	$w->('es_consumer', 'checkpoint: updated_at infinity',
		q{INSERT INTO event_store.checkpoints (consumer, position, updated_at) VALUES ('c-time', 5, 'infinity')}, '00000');
	$w->('es_consumer', 'checkpoint: updated_at -infinity',
		q{INSERT INTO event_store.checkpoints (consumer, position, updated_at) VALUES ('c-past', 5, '-infinity')}, '00000');
	$w->('es_consumer', 'checkpoint: UPDATE to 2^63 - 1', q{UPDATE event_store.checkpoints SET position = 9223372036854775807 WHERE consumer = 'c-zero'}, '00000');
	$w->('es_consumer', 'checkpoint: UPDATE past 2^63 - 1', q{UPDATE event_store.checkpoints SET position = position + 1 WHERE consumer = 'c-huge'}, '22003');
	$w->('es_consumer', 'checkpoint: ON CONFLICT DO UPDATE to a negative position',
		q{INSERT INTO event_store.checkpoints (consumer, position) VALUES ('proj-1', 1) ON CONFLICT (consumer) DO UPDATE SET position = -5}, '23514');
	$w->('es_consumer', 'es_checkpoint_save behind a huge one', q{SELECT event_store.es_checkpoint_save('c-huge', 1)}, 'V0002');
	$w->('es_consumer', 'es_checkpoint_save of a name of 201 bytes', q{SELECT event_store.es_checkpoint_save(repeat('n', 201), 1)}, '54000');
	$w->('es_consumer', 'es_checkpoint_reset of the empty name', q{SELECT event_store.es_checkpoint_reset('', 0)}, '22023');
	$w->('es_consumer', 'checkpoint: DELETE (no privilege)', q{DELETE FROM event_store.checkpoints}, '42501');

	# upcasters: the schema keeper's own functions of every kind, and rows
	# naming wrong functions, malformed text, functions of other owners
	$w->('es_keeper', 'its functions', q{
		SET search_path = keeper_fns, pg_catalog;
		CREATE FUNCTION keeper_fns.k_ok(data jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$ SELECT data || '{"k": 1}' $$;
		CREATE FUNCTION keeper_fns.k_meta(data jsonb, metadata jsonb) RETURNS event_store.es_upcast LANGUAGE sql IMMUTABLE
		  AS $$ SELECT ROW(data, metadata)::event_store.es_upcast $$;
		CREATE FUNCTION keeper_fns.k_null(data jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT NULL::jsonb $$;
		CREATE FUNCTION keeper_fns.k_raise(data jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'boom'; END $$;
		CREATE FUNCTION keeper_fns.k_nested(data jsonb) RETURNS jsonb LANGUAGE sql
		  AS $$ SELECT data || jsonb_build_object('n', (SELECT count(*) FROM event_store.es_read_stream('acc-1'))) $$;
		CREATE FUNCTION keeper_fns.k_swap(data jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT data $$;
		CREATE FUNCTION keeper_fns.k_gone(data jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT data $$;
		CREATE FUNCTION keeper_fns.k_strict(data jsonb, metadata jsonb) RETURNS event_store.es_upcast LANGUAGE sql STRICT
		  AS $$ SELECT ROW(data, metadata)::event_store.es_upcast $$;
		CREATE FUNCTION keeper_fns.k_self(data jsonb) RETURNS jsonb LANGUAGE plpgsql
		  AS $$ BEGIN DELETE FROM event_store.upcasters WHERE type = 'KSelf'; RETURN data; END $$;
		CREATE FUNCTION keeper_fns.k_srf(data jsonb) RETURNS SETOF jsonb LANGUAGE sql AS $$ SELECT data $$;
		CREATE FUNCTION keeper_fns.k_text(data text) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
		CREATE FUNCTION keeper_fns.k_int(data jsonb) RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$;
		CREATE FUNCTION keeper_fns.k_three(data jsonb, metadata jsonb, x jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT data $$;
		CREATE PROCEDURE keeper_fns.k_proc(data jsonb) LANGUAGE sql AS $$ SELECT 1 $$;
		CREATE AGGREGATE keeper_fns.k_agg(jsonb) (SFUNC = pg_catalog.jsonb_concat, STYPE = jsonb);
		RESET search_path}, '00000');
	my $up = sub {
		my ($what, $type, $from, $sig, $want) = @_;
		$w->('es_keeper', "upcaster row: $what",
			"INSERT INTO event_store.upcasters (type, from_schema_version, upcaster) VALUES ($type, $from, $sig)", $want);
	};
	$up->('its own function', q{'KOk'}, 1, q{'keeper_fns.k_ok(jsonb)'}, '00000');
	$up->('the next of the chain, qualified', q{'KOk'}, 2, q{'keeper_fns.k_ok(pg_catalog.jsonb)'}, '00000');
	$up->('the chain up to the last version', q{'KOk'}, 2147483646, q{'keeper_fns.k_ok(jsonb)'}, 'refused');
	$up->('data and metadata', q{'KMeta'}, 1, q{'keeper_fns.k_meta(jsonb,jsonb)'}, '00000');
	$up->('one that returns NULL', q{'KNull'}, 1, q{'keeper_fns.k_null(jsonb)'}, '00000');
	$up->('one that raises', q{'KRaise'}, 1, q{'keeper_fns.k_raise(jsonb)'}, '00000');
	$up->('one that reads the store', q{'KNested'}, 1, q{'keeper_fns.k_nested(jsonb)'}, '00000');
	$up->('one to be replaced', q{'KSwap'}, 1, q{'keeper_fns.k_swap(jsonb)'}, '00000');
	$up->('one to be dropped', q{'KGone'}, 1, q{'keeper_fns.k_gone(jsonb)'}, '00000');
	$up->('a STRICT one of data and metadata', q{'KStrict'}, 1, q{'keeper_fns.k_strict(jsonb,jsonb)'}, 'any');
	$up->('one that deletes its own row', q{'KSelf'}, 1, q{'keeper_fns.k_self(jsonb)'}, '00000');
	$up->('quoted names', q{'KQuoted'}, 1, q{'"keeper_fns"."k_ok"("jsonb")'}, 'any');
	$up->('jsonb_array_length (returns integer)', q{'KBad'}, 1, q{'pg_catalog.jsonb_array_length(jsonb)'}, 'refused');
	$up->('jsonb_typeof (returns text)', q{'KBad'}, 1, q{'pg_catalog.jsonb_typeof(jsonb)'}, 'refused');
	$up->('jsonb_strip_nulls (of another owner)', q{'KBad'}, 1, q{'pg_catalog.jsonb_strip_nulls(jsonb)'}, '42501');
	$up->('public.dep_v1 (of another owner)', q{'KBad'}, 1, q{'public.dep_v1(jsonb)'}, '42501');
	$up->('a set-returning function', q{'KBad'}, 1, q{'keeper_fns.k_srf(jsonb)'}, '42P13');
	$up->('a function of text', q{'KBad'}, 1, q{'keeper_fns.k_text(text)'}, '42P13');
	$up->('a function returning integer', q{'KBad'}, 1, q{'keeper_fns.k_int(jsonb)'}, '42P13');
	$up->('a function of three arguments', q{'KBad'}, 1, q{'keeper_fns.k_three(jsonb,jsonb,jsonb)'}, '42P13');
	$up->('a procedure', q{'KBad'}, 1, q{'keeper_fns.k_proc(jsonb)'}, 'refused');
	$up->('an aggregate', q{'KBad'}, 1, q{'keeper_fns.k_agg(jsonb)'}, 'refused');
	$up->('a function that does not exist', q{'KBad'}, 1, q{'keeper_fns.nosuch(jsonb)'}, '42883');
	$up->('a schema that does not exist', q{'KBad'}, 1, q{'nosuch.f(jsonb)'}, 'refused');
	$up->("malformed text: $_->[0]", q{'KBad'}, 1, $_->[1], 'refused')
	  for (['empty', q{''}], ['a space', q{' '}], ['no arguments', q{'keeper_fns.k_ok'}],
		['unbalanced', q{'keeper_fns.k_ok(jsonb'}], ['trailing text', q{'keeper_fns.k_ok(jsonb) extra'}],
		['two statements', q{'keeper_fns.k_ok(jsonb); DROP TABLE x'}], ['an unknown type', q{'keeper_fns.k_ok(nosuchtype)'}],
		['10,000 bytes', q{repeat('x', 10000) || '(jsonb)'}], ['a number', q{'12345'}],
		['an OID', q{(SELECT oid::text FROM pg_proc WHERE proname = 'k_ok')}], ['NULL', 'NULL']);
	$up->('an empty type', q{''}, 1, q{'keeper_fns.k_ok(jsonb)'}, 'refused');
	$up->('a type of 501 bytes', q{repeat('t', 501)}, 1, q{'keeper_fns.k_ok(jsonb)'}, 'refused');
	$up->('from schema version 0', q{'KZero'}, 0, q{'keeper_fns.k_ok(jsonb)'}, 'refused');
	$up->('from schema version 2^31 - 1', q{'KMax'}, 2147483647, q{'keeper_fns.k_ok(jsonb)'}, 'refused');
	$up->('a hole in the chain', q{'KOk'}, 5, q{'keeper_fns.k_ok(jsonb)'}, '22023');
	$w->('es_keeper', 'upcaster row: UPDATE (no privilege)', q{UPDATE event_store.upcasters SET upcaster = 'pg_catalog.jsonb_array_length(jsonb)'}, '42501');
	$w->('es_keeper', 'upcaster row: DELETE of none', q{DELETE FROM event_store.upcasters WHERE type = 'NoSuchType'}, '00000');
	# the README gives the keeper es_unregister_upcaster "of functions it
	# owns", and DELETE on the whole table
	$w->('es_keeper', 'es_unregister_upcaster of an upcaster of the owner\'s function',
		q{SELECT event_store.es_unregister_upcaster('AdminUp', 3)}, 'any');
	$w->('es_keeper', 'upcaster row: DELETE of the middle of a chain',
		q{DELETE FROM event_store.upcasters WHERE type = 'AdminUp' AND from_schema_version = 2}, 'any');
	$w->('es_keeper', 'es_register_upcaster of its own function', q{SELECT event_store.es_register_upcaster('KReg', 1, 'keeper_fns.k_ok(jsonb)')}, '00000');
	$w->('es_keeper', 'es_register_upcaster of another owner\'s', q{SELECT event_store.es_register_upcaster('KReg', 2, 'public.dep_v1(jsonb)')}, '42501');
	$w->('es_keeper', 'its upcaster replaced by one returning bigint',
		q{DROP FUNCTION keeper_fns.k_swap(jsonb); CREATE FUNCTION keeper_fns.k_swap(data jsonb) RETURNS bigint LANGUAGE sql AS $$ SELECT 1::bigint $$}, '00000');
	$w->('es_keeper', 'its upcaster dropped', q{DROP FUNCTION keeper_fns.k_gone(jsonb)}, '00000');

	# the eraser: erasures with odd reasons, of streams with snapshots
	$w->('es_eraser', 'es_erase_stream with a reason of 100,000 bytes', q{SELECT event_store.es_erase_stream('w-ret', repeat('r', 100000))}, '00000');
	$w->('es_eraser', 'es_erase_stream of an odd name, an odd reason', q{SELECT event_store.es_erase_stream('o''rly-1', E'why\n%s ü')}, '00000');
	$w->('es_eraser', 'es_erase_stream of a stream with a snapshot', q{SELECT event_store.es_erase_stream('snap-obj')}, '00000');
	$w->('es_eraser', 'es_erase_stream of a stream with rules, a NULL reason', q{SELECT event_store.es_erase_stream('w-n', NULL)}, '00000');
	$w->('es_eraser', 'es_erase_stream of an erased stream', q{SELECT event_store.es_erase_stream('gone-1')}, 'V0004');
	$w->('es_eraser', 'es_erase_stream of no stream', q{SELECT event_store.es_erase_stream('no-such-1')}, '42704');
	$w->('es_eraser', 'es_erase_stream of NULL', q{SELECT event_store.es_erase_stream(NULL)}, '22004');
	$w->('es_eraser', 'es_erase_stream of a deleted stream', q{SELECT event_store.es_erase_stream('w-del')}, '00000');
	$w->('es_writer', 'snapshot: an erased stream again (erased by the eraser)',
		q{INSERT INTO event_store.snapshots (stream, version, state) VALUES ('snap-obj', 1, '{"after": "erasure"}')}, 'any');
	# the reader and nobody write nothing
	$w->('es_reader', 'plain INSERT (no privilege)', q{INSERT INTO event_store.events (stream, type, data) VALUES ('r-1', 'T', '{}')}, '42501');
	$w->('es_nobody', 'es_append (no privilege)', q{SELECT event_store.es_append('r-1', NULL, 'T', '{}')}, '42501');

	for my $x (@writes)
	{
		my ($role, $what, $sql, $want) = @$x;
		my $dbh = $conn{$role};
		my $r;
		if ($sql =~ /^COPY\t/)
		{
			my $data = substr($sql, 5);
			if ($dbh->do('COPY event_store.events (stream, type, data) FROM STDIN'))
			{
				$dbh->pg_putcopydata($data);
				$r = $dbh->pg_putcopyend ? { ok => 1, state => '00000' } : es_last_error($dbh);
			}
			else { $r = es_last_error($dbh) }
		}
		else { $r = es_run($dbh, $sql) }
		my $state = $r->{state};
		my $label = ascii("(d) $short{$role}: $what");
		if ($want eq 'any') { ok(proper($state), "$label: succeeds or fails with a proper SQLSTATE") }
		elsif ($want eq 'refused') { ok(proper($state) && $state ne '00000', "$label: refused with a proper SQLSTATE") }
		else { is($state, $want, "$label: " . ($want eq '00000' ? 'succeeds' : "fails with $want")) }
		note("$label: $state" . ($r->{ok} ? '' : ' ' . ascii(substr($r->{err} // '', 0, 200))));
		if ($state eq 'CRASH')
		{
			es_wait_ready($node);
			%conn = map { $_ => es_connect($node, $db, $_) } @roles, 'es_nobody';
			$admin = es_connect($node, $db);
		}
	}

	# Every read function and es_consumers, as each role (and the owner),
	# over every stream, category, type and consumer there is now.
	my $list = sub { my $r = es_run($admin, $_[0]); die "$r->{err}" unless $r->{ok}; return map { $_->[0] } @{ $r->{rows} } };
	my @streams = $list->('SELECT name FROM event_store.streams ORDER BY id');
	my @categories = $list->('SELECT DISTINCT category FROM event_store.streams ORDER BY 1');
	my @types = $list->('SELECT DISTINCT type FROM event_store.events ORDER BY 1');
	my @consumers = $list->('SELECT consumer FROM event_store.checkpoints ORDER BY 1');
	note(sprintf('(d) reads over %d streams, %d categories, %d types, %d consumers',
		scalar(@streams), scalar(@categories), scalar(@types), scalar(@consumers)));
	my $rows = sub { "SELECT count(*)::text || ':' || md5(coalesce(string_agg(e::text, '|'), '')) FROM $_[0] e" };
	my @reads = (
		[ 'es_read_stream', \@streams, $rows->('event_store.es_read_stream($1)') ],
		[ 'es_read_stream backwards', \@streams, $rows->('event_store.es_read_stream($1, NULL, 2, true)') ],
		[ 'es_read_stream_at a version', \@streams, $rows->('event_store.es_read_stream_at($1, at_version => 2)') ],
		[ 'es_read_stream_at a time', \@streams, $rows->('event_store.es_read_stream_at($1, at_time => now())') ],
		[ 'es_stream_version', \@streams, 'SELECT event_store.es_stream_version($1)::text' ],
		[ 'es_load_snapshot', \@streams, $rows->('event_store.es_load_snapshot($1)') ],
		[ 'es_load_aggregate', \@streams, $rows->('event_store.es_load_aggregate($1)') ],
		[ 'es_load_aggregate of the newest schema', \@streams, $rows->('event_store.es_load_aggregate($1, 2147483647)') ],
		[ 'es_category', \@streams, 'SELECT event_store.es_category($1)' ],
		[ 'es_consumer_member', \@streams, 'SELECT event_store.es_consumer_member($1, 3)::text' ],
		[ 'es_read_category', \@categories, $rows->('event_store.es_read_category($1, 0, 10000)') ],
		[ 'es_read_category, a member of three', \@categories, $rows->('event_store.es_read_category($1, 0, 10000, 1, 3)') ],
		[ 'es_read_all of a type', \@types, $rows->('event_store.es_read_all(0, 10000, ARRAY[$1::text])') ],
		[ 'es_read_all', [undef], $rows->('event_store.es_read_all(0, 10000)') ],
		[ 'es_head_position', [undef], 'SELECT event_store.es_head_position()::text' ],
		[ '_es_head_if_known', [undef], 'SELECT event_store._es_head_if_known()::text' ],
		[ 'es_checkpoint_get', \@consumers, 'SELECT event_store.es_checkpoint_get($1)::text' ],
		[ 'es_consumers', [undef], $rows->('event_store.es_consumers') ],
	);
	# The reads ignore the snapshots they cannot stand on: beyond the
	# stream, of an erased stream (written again after the erasure), below
	# a soft delete.
	for my $role ('es_reader', 'es_writer', undef)
	{
		my $who = defined $role ? $short{$role} : 'owner';
		my $dbh = defined $role ? es_connect($node, $db, $role) : es_connect($node, $db);
		my @checks = (
			[ 'es_load_snapshot of w-beyond (a snapshot at 1000, the stream at 3)',
				q{SELECT count(*) FROM event_store.es_load_snapshot('w-beyond')}, '0' ],
			[ 'es_load_aggregate of w-beyond: its three events, no snapshot',
				q{SELECT string_agg(version || ':' || type, ',' ORDER BY version) FROM event_store.es_load_aggregate('w-beyond')},
				'1:T,2:T,3:T' ],
			[ 'es_load_snapshot of gone-1 (erased, a snapshot written after)',
				q{SELECT count(*) FROM event_store.es_load_snapshot('gone-1')}, '0' ],
			[ 'es_load_aggregate of snap-obj (erased, a snapshot written after)',
				q{SELECT count(*) FROM event_store.es_load_aggregate('snap-obj')}, '0' ],
			[ 'es_read_stream of snap-obj (erased)', q{SELECT count(*) FROM event_store.es_read_stream('snap-obj')}, '0' ],
			[ 'es_load_aggregate of del-1 (soft-deleted at 1, a snapshot at 1 written after, appended to)',
				q{SELECT string_agg(version || ':' || type, ',' ORDER BY version) FROM event_store.es_load_aggregate('del-1')},
				'2:T' ],
		);
		for my $check (@checks)
		{
			my ($what, $sql, $want) = @$check;
			is(es_col($dbh, $sql), $want, "(d) $who: $what");
		}
		$dbh->disconnect;
	}

	for my $role (@roles, 'es_nobody', undef)
	{
		my $who = defined $role ? $short{$role} : 'owner';
		my $dbh = defined $role ? es_connect($node, $db, $role) : es_connect($node, $db);
		for my $read (@reads)
		{
			my ($name, $args, $sql) = @$read;
			my (%states, @bad);
			for my $arg (@$args)
			{
				my $r = es_run($dbh, $sql, defined $arg ? ($arg) : ());
				$states{ $r->{state} }++;
				push @bad, ascii((defined $arg ? substr($arg, 0, 40) : '') . ": $r->{state} " . ($r->{err} // ''))
				  unless proper($r->{state});
				if ($r->{state} eq 'CRASH')
				{
					es_wait_ready($node);
					$dbh = defined $role ? es_connect($node, $db, $role) : es_connect($node, $db);
				}
			}
			my $summary = join(', ', map { "$_ x$states{$_}" } sort keys %states);
			is(scalar(@bad), 0, "(d) $who: $name (" . scalar(@$args) . ' calls): no crash, no XX000, every error a proper SQLSTATE')
			  or diag(join("\n", @bad[ 0 .. ($#bad < 4 ? $#bad : 4) ]));
			note("(d) $who: $name: $summary");
		}
		$dbh->disconnect;
	}
	$_->disconnect for values %conn;
	$admin->disconnect;
	timing('(d) hostile rows', $t0);
}

es_check_log($node, '015');
$node->stop;
note sprintf('took %.1f s', time - $started);
done_testing();
