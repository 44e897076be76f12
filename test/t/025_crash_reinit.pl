# After the postmaster reinitializes the server because a backend crashed
# (one backend killed with SIGKILL; restart_after_crash on: the postmaster
# survives), the launcher runs again and starts the worker of a database
# with a projection behind, which catches up with no new commit.  (The
# launcher leaves with exit code 1 to stay registered: the postmaster
# forgets a worker that never restarts or that left with code 0.  Found by
# helper-15's review; on a59928c..db722e5 no worker ran until the next
# append.)  Then the launcher, gone again, is not restarted in a loop.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DBI;
use Time::HiRes qw(time usleep);
use EsTest;

my $node = es_new_node('crash_reinit');
my $dbh = es_connect($node);
es_run($dbh, $_) for (
	'CREATE EXTENSION event_store',
	'CREATE ROLE h_proj LOGIN',
	'CREATE SCHEMA hrm AUTHORIZATION h_proj',
	'GRANT SELECT, INSERT ON event_store.events TO h_proj',
	'GRANT SELECT, INSERT, UPDATE, DELETE ON event_store.projections, event_store.dead_letters TO h_proj');
my $proj = es_connect($node, 'postgres', 'h_proj');
es_run($proj, $_) for (
	q{CREATE TABLE hrm.seen (position bigint)},
	q{CREATE FUNCTION hrm.ok(e event_store.es_event) RETURNS void LANGUAGE sql AS $$ INSERT INTO hrm.seen VALUES (e.position) $$},
	q{SELECT event_store.es_register_projection('h_ok', 'hrm.ok(event_store.es_event)')});
$proj->disconnect;

# A holds a position; B's commit after it is not readable until A ends
my $a = es_connect($node);
es_run($a, 'BEGIN');
es_run($a, q{SELECT event_store.es_append('a-1', NULL, 'E', '{}')});
my $apid = es_col($a, 'SELECT pg_backend_pid()');
es_run($dbh, q{SELECT event_store.es_append('b-1', NULL, 'E', '{}')});
$dbh->disconnect;
kill 'KILL', $apid;
# the postmaster restarts the cluster
my $end = time + 30;
my $c;
while (time < $end)
{
	usleep(500_000);
	$c = eval { es_connect($node) };
	last if $c && es_col($c, 'SELECT 1') eq '1';
}
ok($c, 'the server is back after the crash restart');
$end = time + 20;
my $seen = 0;
while (time < $end)
{
	$seen = es_col($c, 'SELECT count(*) FROM hrm.seen');
	last if $seen eq '1';
	usleep(200_000);
}
is($seen, '1', 'the event committed before the crash reaches the projection without a new commit');
isnt(es_col($c, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'event_store notifier'}), '0',
	'a worker runs for the database after the crash restart');
# the launcher has left again, and stays gone (restarted only after days)
$end = time + 20;
my $launchers;
while (time < $end)
{
	$launchers = es_col($c, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'event_store launcher'});
	last if $launchers eq '0';
	usleep(200_000);
}
is($launchers, '0', 'the launcher leaves after its pass');
like(slurp_file($node->logfile), qr/background worker "event_store launcher" \(PID \d+\) exited with exit code 1/,
	'it left with exit code 1 (so it stays registered)');
$node->stop;
done_testing();
