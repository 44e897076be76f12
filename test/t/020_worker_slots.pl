# Worker slots are shared with parallel query and logical replication
# (issue 16): 20 databases use the extension, each with a projection and a
# listener, with event_store.max_workers = 3 and PostgreSQL's default
# max_worker_processes = 8.
#
# - While all 20 append, the extension never runs more than 3 workers, plus
#   one leaving as the next starts (sampled from pg_stat_activity);
# - a parallel query meanwhile still gets its workers;
# - the databases take turns: every projection catches up, and every
#   database's listener is woken.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DBI;
use IO::Select;
use Time::HiRes qw(time usleep);
use EsTest;

my $started = time;
my $max = 3;
my $ndb = 20;
my $node = es_new_node('slots', conf => qq{
max_worker_processes = 8
max_parallel_workers = 8
max_parallel_workers_per_gather = 2
event_store.max_workers = $max
event_store.max_databases = 64
event_store.notifier_idle_timeout = '60s'
max_connections = 60
});

my @dbs = map { "slots$_" } 1 .. $ndb;
$node->safe_psql('postgres', q{
CREATE ROLE slot_app;
CREATE TABLE public.big AS SELECT g AS id, md5(g::text) AS pad FROM generate_series(1, 200000) g;
ANALYZE public.big;
});
for my $d (@dbs)
{
	$node->safe_psql('postgres', "CREATE DATABASE $d");
	$node->safe_psql($d, q{
CREATE EXTENSION event_store;
GRANT SELECT, INSERT ON event_store.events TO slot_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON event_store.projections, event_store.dead_letters TO slot_app;
GRANT SELECT ON event_store.es_projections TO slot_app;
CREATE SCHEMA rm AUTHORIZATION slot_app;
SET ROLE slot_app;
CREATE TABLE rm.seen (position bigint);
CREATE FUNCTION rm.page(e event_store.es_event[]) RETURNS void LANGUAGE sql
  AS $$ INSERT INTO rm.seen SELECT x.position FROM unnest(e) x $$;
SELECT event_store.es_register_projection('seen', 'rm.page(event_store.es_event[])', page_size => 10);
});
}

my $obs = es_connect($node, 'postgres');
my $count_sql = q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'event_store notifier'};
my %listeners = map { my $h = es_connect($node, $_); $h->do('LISTEN es_events'); ($_ => $h) } @dbs;
my %writers = map { ($_ => es_connect($node, $_)) } @dbs;

my $most = 0;
my $launched = 0;
for my $round (1 .. 5)
{
	for my $d (@dbs)
	{
		es_run($writers{$d}, qq{SELECT event_store.es_append('s-$round', NULL, '[{"type": "T", "data": {}}, {"type": "T", "data": {}}]')});
		my $n = es_col($obs, $count_sql);
		$most = $n if $n > $most;
	}
	# a parallel query while the databases take turns
	my $r = es_run($obs, q{EXPLAIN (ANALYZE, FORMAT JSON) SELECT count(*) FROM public.big WHERE pad <> 'x'});
	if ($r->{ok} && $r->{rows}[0][0] =~ /"Workers Launched":\s*(\d+)/)
	{
		$launched = $1 if $1 > $launched;
	}
}

# every database's projection catches up, taking turns
my $end = time + 120;
my %done;
while (time < $end && keys %done < $ndb)
{
	for my $d (@dbs)
	{
		next if $done{$d};
		my $r = es_run($writers{$d}, q{SELECT count(*) FROM event_store.projections WHERE position < event_store.es_head_position()});
		$done{$d} = 1 if $r->{ok} && $r->{rows}[0][0] == 0;
	}
	my $n = es_col($obs, $count_sql);
	$most = $n if $n > $most;
	usleep(200_000);
}
is(scalar(keys %done), $ndb, "every one of the $ndb databases' projections caught up, taking turns");
cmp_ok($most, '<=', $max + 1, "at most $max workers ran at once (+1 leaving as the next starts): saw $most");
cmp_ok($most, '>=', 1, 'the workers ran');
cmp_ok($launched, '>', 0, "a parallel query got workers meanwhile ($launched)");

# every database's rows: its 10 events, once
my $bad = 0;
for my $d (@dbs)
{
	my $r = es_run($writers{$d}, q{SELECT count(*), count(DISTINCT position) FROM rm.seen});
	$bad++ unless $r->{ok} && $r->{rows}[0][0] == 10 && $r->{rows}[0][1] == 10;
}
is($bad, 0, 'each database\'s read model holds its 10 events once');

# every listener was woken
my $woken = 0;
$end = time + 60;
my %heard;
while (time < $end && keys %heard < $ndb)
{
	for my $d (@dbs)
	{
		next if $heard{$d};
		$listeners{$d}->ping;
		$heard{$d} = 1 if $listeners{$d}->pg_notifies;
	}
	usleep(100_000);
}
is(scalar(keys %heard), $ndb, "every database's listener was woken");

$_->disconnect for values %listeners, values %writers;
$obs->disconnect;
es_check_log($node, '020');
$node->stop;
note sprintf('took %.1f s', time - $started);
done_testing();
