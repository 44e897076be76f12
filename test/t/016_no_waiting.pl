# Found by the review of the issue 13 fixes, kept as tests:
#
# (a) A change of stream metadata whose commit waits (here for a synchronous
#     standby that never comes) holds no reader back: stream reads and the
#     feed go on, and answer as of their snapshot (the change is not visible
#     yet); once it commits, reads see it.
# (b) No role can hold the reads up: there is no lock a reader takes that
#     another role could hold.
# (c) The notifier does not leave while an open transaction holds positions:
#     its rollback makes others' commits readable, and they are announced
#     (a rollback starts no notifier).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DBI;
use DBD::Pg qw(:async);
use Time::HiRes qw(time usleep);
use EsTest;

my $node = es_new_node('nowait', init => { allows_streaming => 1 },
	conf => "event_store.notifier_idle_timeout = '1s'\n");
$node->safe_psql('postgres', q{
  CREATE EXTENSION event_store;
  CREATE ROLE nobody LOGIN;
  GRANT SELECT ON event_store.events, event_store.streams TO nobody;
  SELECT event_store.es_append('sr-1', 0, '[{"type": "T", "data": {"n": 1}}, {"type": "T", "data": {"n": 2}}, {"type": "T", "data": {"n": 3}}]');
});
my $reader = es_connect($node);

# ---------------------------------------------------------------------------
# (a) a metadata change stuck in its commit
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', q{ALTER SYSTEM SET synchronous_standby_names = 'nosuchstandby'; SELECT pg_reload_conf();});
my $writer = es_connect($node);
es_run($writer, q{SET synchronous_commit = on});
ok(es_async($writer, q{SELECT event_store.es_set_stream_metadata('sr-1', '{"max_count": 1}')}),
	'(a) a writer sets max_count = 1 on sr-1, its commit waiting for a synchronous standby');
my ($waiting, $end) = ('', time + 20);
while (time < $end)
{
	$waiting = es_col($reader,
		q{SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'});
	last if $waiting eq '1';
	usleep(50_000);
}
is($waiting, '1', '(a) the writer waits in SyncRep');
es_run($reader, q{SET statement_timeout = '10s'});
is(es_col($reader, q{SELECT string_agg(version::text, ',' ORDER BY version) FROM event_store.es_read_stream('sr-1')}),
	'1,2,3', '(a) a stream read does not wait for it, and does not see the change yet');
is(es_col($reader, q{SELECT string_agg(version::text, ',' ORDER BY position) FROM event_store.es_read_all(0, 100) WHERE stream = 'sr-1'}),
	'1,2,3', '(a) nor does a feed read');
is(es_col($reader, q{SELECT count(*) FROM event_store.es_load_aggregate('sr-1')}),
	'3', '(a) nor es_load_aggregate');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET synchronous_standby_names; SELECT pg_reload_conf();});
my $r = es_async_result($writer);
ok($r->{ok}, '(a) the writer commits once the standby is no longer required');
is(es_col($reader, q{SELECT string_agg(version::text, ',' ORDER BY version) FROM event_store.es_read_stream('sr-1')}),
	'3', '(a) then reads see max_count = 1');

# ---------------------------------------------------------------------------
# (b) another role holds what it can: reads and changes go on
# ---------------------------------------------------------------------------
my $nobody = es_connect($node, 'postgres', 'nobody');
es_run($nobody, 'BEGIN');
es_run($nobody, q{SELECT count(*) FROM event_store.es_read_stream('sr-1')});
es_run($nobody, q{SELECT pg_relation_size(oid) FROM pg_class WHERE relnamespace = 'event_store'::regnamespace});
my $s = es_run($writer, q{SELECT event_store.es_set_stream_metadata('sr-1', '{"max_count": 2}')});
ok($s->{ok}, '(b) a metadata change commits while another role holds locks of every relation of the schema');
is(es_col($reader, q{SELECT string_agg(version::text, ',' ORDER BY version) FROM event_store.es_read_stream('sr-1')}),
	'2,3', '(b) and reads go on, with it');
es_run($nobody, 'ROLLBACK');

# ---------------------------------------------------------------------------
# (c) a rollback that makes others' commits readable is announced
# ---------------------------------------------------------------------------
my $admin = es_connect($node);
es_run($admin, q{SELECT event_store.es_append('w-0', NULL, 'A', '{}')});
my $x = es_connect($node);
es_run($x, 'BEGIN');
ok(es_run($x, q{SELECT event_store.es_append('wx-1', NULL, 'A', '{}')})->{ok},
	'(c) X appends and stays open: it holds the lowest position');
my $y_pos = es_col($admin, q{SELECT last_position FROM event_store.es_append('wy-1', NULL, 'A', '{}')});
ok($y_pos =~ /^\d+$/, "(c) Y appends and commits at $y_pos, above X's position");
my $listener = es_connect($node);
es_run($listener, 'LISTEN es_events');
# the notifier stays past its idle timeout while X holds its position
my $min_notifiers = 9;
$end = time + 3;
while (time < $end)
{
	my $n = es_col($admin, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'event_store notifier'});
	$min_notifiers = $n if $n < $min_notifiers;
	usleep(100_000);
}
is($min_notifiers, 1, '(c) the notifier stays for 3 s (idle timeout 1 s) while X holds a position');
es_run($x, 'ROLLBACK');
my $head;
$end = time + 10;
while (time < $end && !defined $head)
{
	$listener->ping;
	while (my $n = $listener->pg_notifies)
	{
		my ($channel, $pid, $payload) = @$n;
		$head = $1 if $payload =~ /"head":\s*(\d+)/ && $1 >= $y_pos;
	}
	usleep(50_000) unless defined $head;
}
ok(defined $head, "(c) X's rollback makes Y's event readable, and a listener is told (head $y_pos or more)");

es_check_log($node, "no waiting");
done_testing();
