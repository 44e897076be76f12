# A streaming hot standby: stream reads there return what the primary
# committed; appends are refused (25006); the feed head is refused (55000),
# because a standby cannot tell whether the primary still holds a lower
# position.  After promotion, appends continue above every old position.
# Projections (issue 16): the status view works on the standby (NULL where
# the head cannot be told), no worker runs there, and after the promotion
# the launcher starts the database's worker, which catches up with no
# append.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'event_store'\n");
$primary->start;
$primary->safe_psql('postgres', q{
  CREATE EXTENSION event_store;
  SELECT event_store.es_append('order-1', 0, '[{"type": "Placed", "data": {"n": 1}},
                                               {"type": "Paid", "data": {"n": 2}}]');});
$primary->backup('base');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

$primary->safe_psql('postgres', q{
  CREATE ROLE projector;
  GRANT SELECT ON event_store.events, event_store.es_projections TO projector;
  GRANT SELECT, INSERT, UPDATE, DELETE ON event_store.projections, event_store.dead_letters TO projector;
  CREATE SCHEMA rm AUTHORIZATION projector;
  SET ROLE projector;
  CREATE TABLE rm.seen (position bigint);
  CREATE FUNCTION rm.page(e event_store.es_event[]) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO rm.seen SELECT x.position FROM unnest(e) x $$;
  BEGIN;
  SELECT event_store.es_register_projection('seen', 'rm.page(event_store.es_event[])');
  SELECT event_store.es_pause_projection('seen');
  COMMIT;});
$primary->safe_psql('postgres',
	q{SELECT event_store.es_append('order-1', 2, 'Shipped', '{"n": 3}')});
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres',
		q{SELECT name || ':' || state || ':' || position || ':' || coalesce(head::text, 'NULL') FROM event_store.es_projections}),
	'seen:paused:0:NULL', 'es_projections on the standby: a row, the head NULL, no error');
# the monitoring of issue 17, as pg_monitor: rows, NULL where unknown
$primary->safe_psql('postgres', q{
  CREATE ROLE watcher IN ROLE pg_monitor;
  SELECT event_store.es_checkpoint_save('reader', 1);});
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', q{
		SET ROLE watcher;
		SELECT string_agg(kind || ':' || name || ':' || position || ':' || coalesce(head::text, 'NULL')
		                  || ':' || coalesce(lag_positions::text, 'NULL') || ':' || (lag_seconds >= 0)
		                  || ':' || (seconds_since_save >= 0), ' ' ORDER BY kind)
		  FROM event_store.es_consumer_metrics}),
	'consumer:reader:1:NULL:NULL:true:true projection:seen:0:NULL:NULL:true:true',
	'es_consumer_metrics on the standby: its rows, the head and lag in positions NULL, no error');
is($standby->safe_psql('postgres', q{
		SET ROLE watcher;
		SELECT database || ':' || transactions || ':' || coalesce(head::text, 'NULL') || ':'
		       || notifier_running || ':' || coalesce(oldest_xact_pid::text, 'NULL')
		  FROM event_store.es_stats()}),
	'postgres:0:NULL:false:NULL',
	'es_stats on the standby: zero counters, the head NULL, no error');
# a projection running on the standby's copy would write: no worker runs
$standby->safe_psql('postgres', q{SELECT pg_sleep(1)});
is($standby->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'event_store%'}),
	'0', 'no event_store worker runs on the standby');

is( $standby->safe_psql('postgres',
		q{SELECT string_agg(version || type, ' ' ORDER BY version) FROM event_store.es_read_stream('order-1')}),
	'1Placed 2Paid 3Shipped',
	'es_read_stream on the standby returns what the primary committed');
is($standby->safe_psql('postgres', q{SELECT event_store.es_stream_version('order-1')}),
	'3', 'es_stream_version on the standby');

my ($rc, $out, $err) = $standby->psql('postgres',
	q{\set VERBOSITY verbose
	  SELECT event_store.es_append('order-1', 3, 'Refused', '{}')});
like($err, qr/25006/, 'es_append on the standby is refused with 25006');
($rc, $out, $err) = $standby->psql('postgres',
	q{\set VERBOSITY verbose
	  SELECT event_store.es_head_position()});
like($err, qr/55000: the event feed cannot be read during recovery/,
	'es_head_position on the standby is refused with 55000');

# promotion: the register starts from the highest replicated position
my $max = $primary->safe_psql('postgres', 'SELECT max(position) FROM event_store.events');
# no worker on the primary (terminated; a plain UPDATE wakes none): only
# the promoted server can run the projection
$primary->safe_psql('postgres',
	q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'event_store notifier'});
$primary->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'event_store notifier'})
  or die 'the primary\'s worker did not leave';
$primary->safe_psql('postgres', q{UPDATE event_store.projections SET state = 'running'});
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', q{SELECT count(*) FROM rm.seen}), '0', 'nothing applied before the promotion');
$primary->stop;
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'standby did not promote';
# the launcher starts the worker after the promotion: the projection catches
# up with the replicated events, before any append
ok($standby->poll_query_until('postgres',
		q{SELECT position = event_store.es_head_position() FROM event_store.projections WHERE name = 'seen'}),
	'after promotion, the launcher starts the worker and the projection catches up with no append');
is($standby->safe_psql('postgres', q{SELECT count(*) FROM rm.seen}), '3', '... each replicated event applied once');
my $pos = $standby->safe_psql('postgres',
	q{SELECT last_position FROM event_store.es_append('order-1', 3, 'Delivered', '{}')});
cmp_ok($pos, '>', $max, 'after promotion, appends get positions above the replicated ones');
is($standby->safe_psql('postgres', 'SELECT event_store.es_head_position()'),
	$pos, 'and the feed head is readable again');

$standby->stop;
done_testing();
