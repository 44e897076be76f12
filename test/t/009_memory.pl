# Memory of a long-lived appending session: it may plateau, it must not grow
# with every event.
#
# One connection (one backend) appends 60,000 events, each statement its own
# (autocommit) transaction, in the mix of bench/memory.pl at a smaller scale
# (EsTest::Workload, shared with it: 2,000 streams, reads and errors more
# often):
# mostly the single-event es_append (some with a client event id, some with
# the exact expected version), JSON batches, plain INSERTs, reads of every
# kind (es_read_stream both ways, es_read_all with and without types,
# es_read_category of a consumer group member, es_stream_version,
# es_head_position, checkpoints), and errors raised on purpose (a wrong
# expected version, an unknown key in a batch) and caught.
#
# The backend's own pg_backend_memory_contexts is summed after 10,000 and
# after 60,000 events: the total must not exceed the first figure by more
# than a fixed slack of 256 kB.  50,000 events lie between the two, so a leak
# of 6 bytes per event or more fails the test (as would one of a few bytes per
# statement); what every path allocates once (caches, the feed's result
# context) is in place after 10,000 events, which run every path ten times
# or more (checked).  The same for used bytes (total - free), and for the process's
# private resident memory (RssAnon from /proc, which also sees malloc() outside
# memory contexts) with a slack of 2 MB.
#
# One big transaction: 10,000 appends to one stream in one transaction take
# no more memory than 10,000 updates of one row of a plain table in one
# transaction (plus the slack).  Both cost PostgreSQL memory per statement
# (the combo command ids of a row the transaction updates again and again,
# about 50 bytes each: so the instrument is live, it sees the growth); the
# extension must add nothing per event to that.  After the COMMIT, the total
# is back within the slack of where it was before BEGIN.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DBI;
use DBD::Pg;
use Time::HiRes qw(time);
use EsTest;

my $started = time;
my $events_total = 60_000;
my $baseline_at = 10_000;
my $slack = 256 * 1024;            # bytes of memory contexts, not per event
my $rss_slack = 2 * 1024 * 1024;   # bytes of RssAnon

my $node = es_new_node('memory', conf => q{
log_statement = none
log_min_messages = warning
});
$node->safe_psql('postgres', 'CREATE EXTENSION event_store');
$node->safe_psql('postgres',
	'CREATE TABLE control (id int PRIMARY KEY, v bigint); INSERT INTO control VALUES (1, 0)');

my $dbh = DBI->connect(
	'dbi:Pg:dbname=postgres;host=' . $node->host . ';port=' . $node->port,
	'', '', { AutoCommit => 1, RaiseError => 1, PrintError => 0 });
$dbh->do('SET synchronous_commit = off');
$dbh->do('SET client_min_messages = warning');
srand(7);
my $w = EsTest::Workload->new($dbh, streams => 2_000, consumer => 'memory-test',
	every => { read => 50, stale => 250, feed => 250, bad_key => 500 });
my $control = $dbh->prepare('UPDATE control SET v = v + 1 WHERE id = $1 RETURNING v');

sub measure
{
	my $m = $w->measure(5);
	$m->{rss_bytes} = $m->{rss}{RssAnon} =~ /^\d+$/ ? $m->{rss}{RssAnon} * 1024 : undef;
	return $m;
}

sub show
{
	my ($label, $m) = @_;
	note sprintf('%s: %d events, %d contexts, total %d, used %d, RssAnon %s; largest: %s',
		$label, $m->{events}, $m->{contexts}, $m->{total}, $m->{used},
		$m->{rss_bytes} // 'n/a', join(', ', map { "$_->{name} $_->{bytes}" } @{ $m->{top} }));
}

# ---------------------------------------------------------------------------
# the session
# ---------------------------------------------------------------------------
my $start = measure();
show('start', $start);
$w->step while $w->{events} < $baseline_at;
my $base = measure();
show('baseline', $base);
my %calls_at_base = %{ $w->{calls} };
$w->step while $w->{events} < $events_total;
my $end = measure();
show('end', $end);
my $n = $end->{events} - $base->{events};

is($dbh->selectrow_array('SELECT count(*) FROM event_store.events'),
	$w->{events}, "the session stored $w->{events} events");
cmp_ok($calls_at_base{$_} // 0, '>=', 10, "before the baseline, the session ran $_ ten times or more")
  for ('batch', 'insert', 'read_stream', 'read_all', 'read_types', 'read_category',
	'version', 'checkpoint_reset', 'one error', 'batch error');

cmp_ok($end->{total}, '<=', $base->{total} + $slack,
	"memory contexts, total: after $end->{events} events within 256 kB of the "
	  . "figure after $base->{events}");
cmp_ok($end->{used}, '<=', $base->{used} + $slack,
	'memory contexts, used: the same');
cmp_ok($end->{contexts}, '<=', $base->{contexts} + 10,
	'the number of memory contexts does not grow with the events');
SKIP:
{
	skip 'RssAnon is not readable (/proc)', 1
	  unless defined $base->{rss_bytes} && defined $end->{rss_bytes};
	cmp_ok($end->{rss_bytes}, '<=', $base->{rss_bytes} + $rss_slack,
		'private resident memory (RssAnon): within 2 MB');
}

# ---------------------------------------------------------------------------
# one big transaction against PostgreSQL's own cost of updating a row
# ---------------------------------------------------------------------------
my $big = 10_000;
my (@delta, $before, $after);
for my $what ('control', 'one')
{
	my $m0 = $before = measure();
	$dbh->begin_work;
	for my $i (1 .. $big)
	{
		if ($what eq 'control') { $control->execute(1); $control->fetchall_arrayref }
		else
		{
			$w->run('one', 'big-one', $i == 1 ? 0 : $i - 1, 'Happened',
				EsTest::Workload::data_json($i), EsTest::Workload::metadata_json($i), undef);
		}
	}
	my $m1 = measure();
	$dbh->commit;
	$after = measure();
	show("$big x $what, open", $m1);
	push @delta, $m1->{total} - $m0->{total};
}
cmp_ok($delta[0], '>', $slack,
	"one transaction of $big updates of one row of a plain table grows by more "
	  . 'than 256 kB (the measurement sees this backend)');
cmp_ok($delta[1], '<=', $delta[0] + $slack,
	"one transaction of $big appends to one stream: within 256 kB of that");
show('after COMMIT', $after);
cmp_ok($after->{total}, '<=', $before->{total} + $slack,
	'after its COMMIT, the total is back within 256 kB of the figure before BEGIN');

note sprintf(
	'summary: %d events in %d statements (%d errors on purpose) in one session; '
	  . 'memory contexts after %d events: %.0f kB total, %.0f kB used, %d contexts; '
	  . 'after %d: %.0f kB total, %.0f kB used, %d contexts: %+.3f bytes/event (total), '
	  . '%+.3f (used), RssAnon %+.1f bytes/event; %d appends to one stream in one '
	  . 'transaction: %+.0f kB while open (%d updates of one row of a plain table: '
	  . '%+.0f kB), %+.0f kB after commit; %.1f s',
	$w->{events}, $w->{ops}, $w->{errors}, $base->{events}, $base->{total} / 1024, $base->{used} / 1024,
	$base->{contexts}, $end->{events}, $end->{total} / 1024, $end->{used} / 1024,
	$end->{contexts}, ($end->{total} - $base->{total}) / $n,
	($end->{used} - $base->{used}) / $n,
	defined $end->{rss_bytes} && defined $base->{rss_bytes}
	  ? ($end->{rss_bytes} - $base->{rss_bytes}) / $n : 0,
	$big, $delta[1] / 1024, $big, $delta[0] / 1024,
	($after->{total} - $before->{total}) / 1024, time - $started);

$w->finish;
$control->finish;
$dbh->disconnect;
$node->stop;
done_testing();
