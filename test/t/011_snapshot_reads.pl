# Defects 3 and 6 of issue 13: every read sees rules, versions and events as
# of one snapshot, and no acknowledged event is hidden when it commits.
#
# (3a) In a REPEATABLE READ transaction, a read of a stream with max_count
#      (or truncate_before) returns the same rows twice while another
#      session appends (or changes the rules) and commits in between: for
#      es_read_stream, es_read_stream_at and es_load_aggregate.
# (3b) es_load_aggregate in REPEATABLE READ, snapshot at version 1,
#      max_count = 1, a concurrent append: the snapshot row is followed by
#      every event after it, up to the transaction's version, as
#      es_read_stream returns them in the same transaction.
# (3c) The feed: a stream with max_count = 1 has its committed event at
#      position P; an uncommitted append to it is open; es_read_all and
#      es_read_category after P - 1 must return P (the old code counted
#      max_count from the uncommitted row and hid it), and a checkpointing
#      consumer must have seen P after the append rolls back.
# (6a) es_read_stream_at(at_time => t) returns a prefix of the stream, also
#      when a transaction begun at t1 appended version 2 after a later
#      transaction appended version 1.
# (6b) max_age = 2 s: an event appended by a transaction that began 3 s
#      before it committed is returned by es_read_stream and es_read_all
#      right after the commit.
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
my $node = es_new_node('snapshot_reads');
$node->safe_psql('postgres', 'CREATE EXTENSION event_store; CREATE TABLE public.probe (x int)');

my $a = es_connect($node);    # the reader
my $b = es_connect($node);    # the other session
my $admin = es_connect($node);

sub ok_run
{
	my ($dbh, $sql, $label) = @_;
	my $r = es_run($dbh, $sql);
	ok($r->{ok}, $label) or diag("$r->{state}: $r->{err}");
	return $r;
}

sub append_n
{
	my ($stream, $n, $type) = @_;
	$type //= 'E';
	my $events = join(',', map { qq({"type": "$type", "data": {"n": $_}}) } 1 .. $n);
	ok_run($admin, "SELECT event_store.es_append('$stream', NULL, '[$events]')",
		"setup: $n events appended to $stream");
}

# ---------------------------------------------------------------------------
# (3a) REPEATABLE READ: the same rows twice, whatever commits in between
# ---------------------------------------------------------------------------
my %reads = (
	es_read_stream => sub { "SELECT string_agg(version::text, ',' ORDER BY version) FROM event_store.es_read_stream('$_[0]')" },
	es_read_stream_at => sub { "SELECT string_agg(version::text, ',' ORDER BY version) FROM event_store.es_read_stream_at('$_[0]', at_version => 1000)" },
	es_load_aggregate => sub { "SELECT string_agg(version::text, ',' ORDER BY version) FROM event_store.es_load_aggregate('$_[0]')" },
);

for my $fn (sort keys %reads)
{
	# max_count = 2, 3 events: 2,3; another session appends a fourth
	my $s = "mc_$fn-1";
	append_n($s, 3);
	ok_run($admin, qq{SELECT event_store.es_set_stream_metadata('$s', '{"max_count": 2}')},
		"setup: max_count = 2 on $s");
	es_run($a, 'BEGIN ISOLATION LEVEL REPEATABLE READ');
	my $first = es_col($a, $reads{$fn}->($s));
	ok_run($b, "SELECT event_store.es_append('$s', NULL, 'E', '{}')",
		"(3a) $fn max_count: the other session appends and commits");
	es_run($a, 'SELECT count(*) FROM public.probe');
	my $second = es_col($a, $reads{$fn}->($s));
	es_run($a, 'COMMIT');
	is($first, '2,3', "(3a) $fn max_count: the first read in REPEATABLE READ returns 2,3");
	is($second, $first,
		"(3a) defect 3: $fn max_count: the second read in the same REPEATABLE READ transaction returns the same rows");

	# truncate_before = 2, 3 events: 2,3; another session moves it to 3
	$s = "tb_$fn-1";
	append_n($s, 3);
	ok_run($admin, qq{SELECT event_store.es_set_stream_metadata('$s', '{"truncate_before": 2}')},
		"setup: truncate_before = 2 on $s");
	es_run($a, 'BEGIN ISOLATION LEVEL REPEATABLE READ');
	$first = es_col($a, $reads{$fn}->($s));
	ok_run($b, qq{SELECT event_store.es_set_stream_metadata('$s', '{"truncate_before": 3}')},
		"(3a) $fn truncate_before: the other session moves truncate_before and commits");
	# the transaction does something else meanwhile: its first lock on a
	# table makes it take in the invalidation of the committed change
	es_run($a, 'SELECT count(*) FROM public.probe');
	$second = es_col($a, $reads{$fn}->($s));
	es_run($a, 'COMMIT');
	is($first, '2,3', "(3a) $fn truncate_before: the first read in REPEATABLE READ returns 2,3");
	is($second, $first,
		"(3a) defect 3: $fn truncate_before: the second read in the same REPEATABLE READ transaction returns the same rows");
	# outside the transaction, the new rule applies
	is(es_col($a, $reads{$fn}->($s)), '3', "(3a) $fn: a new transaction sees the new truncate_before");
}

# ---------------------------------------------------------------------------
# (3b) es_load_aggregate: the snapshot row and every event after it
# ---------------------------------------------------------------------------
{
	my $s = 'agg-1';
	append_n($s, 2);
	ok_run($admin, q{SELECT event_store.es_save_snapshot('agg-1', 1, '{"state": 1}')},
		'setup: a snapshot at version 1');
	ok_run($admin, q{SELECT event_store.es_set_stream_metadata('agg-1', '{"max_count": 1}')},
		'setup: max_count = 1');
	es_run($a, 'BEGIN ISOLATION LEVEL REPEATABLE READ');
	my $version = es_col($a, q{SELECT event_store.es_stream_version('agg-1')});
	ok_run($b, q{SELECT event_store.es_append('agg-1', 2, 'E', '{"n": 3}')},
		'(3b) the other session appends version 3 and commits');
	my $agg = es_col($a,
		q{SELECT string_agg(version || ':' || type, ',' ORDER BY version) FROM event_store.es_load_aggregate('agg-1')});
	my $stream = es_col($a,
		q{SELECT string_agg(version::text, ',' ORDER BY version) FROM event_store.es_read_stream('agg-1')});
	es_run($a, 'COMMIT');
	is($version, '2', '(3b) the transaction sees version 2');
	is($agg, '1:$snapshot,2:E',
		'(3b) defect 3: es_load_aggregate in REPEATABLE READ returns the snapshot at 1 and then event 2 (no version missing from the fold)');
	my @agg_versions = map { (split /:/)[0] } split /,/, $agg;
	my @after = grep { $_ > 1 } split /,/, ($stream =~ /^\d/ ? $stream : '');
	is_deeply([ @agg_versions[ 1 .. $#agg_versions ] ], \@after,
		'(3b) defect 3: the events after the snapshot are those es_read_stream returns in the same transaction');
	is($agg_versions[-1], $version,
		'(3b) defect 3: the fold reaches the version the transaction sees');
}

# ---------------------------------------------------------------------------
# (3c) the feed does not hide a committed event behind an uncommitted append
#
# Each case in a new database, so that the layout of the streams table is
# known.  (i) as the issue tells it: the open transaction appends.  (ii) it
# appends and changes the stream's metadata (a user key): that update is not
# HOT (metadata is in the predicate of streams_with_metadata) and, after a
# VACUUM left free line pointers low on the page, its row version lies
# before the committed one in the name index, which is the version the old
# code's dirty read of the stream row returns first: max_count then counts
# from the uncommitted version 2 and hides version 1.  (Under load a full
# page does the same to a plain append.)
# ---------------------------------------------------------------------------
sub feed_case
{
	my ($dbname, $label, $with_metadata) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $dbname");
	$node->safe_psql($dbname, 'CREATE EXTENSION event_store');
	my $adm = es_connect($node, $dbname);
	my $rd = es_connect($node, $dbname);
	my $wr = es_connect($node, $dbname);
	# a stream updated a few times (HOT): VACUUM frees its old line pointers
	ok_run($adm, "SELECT event_store.es_append('fa-1', NULL, 'E', '{}')", "$label setup: fa-1")
	  for 1 .. 4;
	my $r = ok_run($adm,
		q{SELECT last_position FROM event_store.es_append('fm-1', 0, 'E', '{"n": 1}')},
		"$label setup: fm-1 version 1");
	my $p = $r->{rows}[0][0];
	ok_run($adm, q{SELECT event_store.es_set_stream_metadata('fm-1', '{"max_count": 1}')},
		"$label setup: max_count = 1 on fm-1");
	$r = ok_run($adm,
		q{SELECT last_position FROM event_store.es_append('fmother-1', 0, 'E', '{}')},
		"$label setup: an event of another stream after it");
	my $p_other = $r->{rows}[0][0];
	ok_run($adm, 'VACUUM event_store.streams', "$label setup: VACUUM of streams");

	es_run($wr, 'BEGIN');
	ok_run($wr, q{SELECT event_store.es_append('fm-1', 1, 'E', '{"n": 2}')},
		"$label the other session appends version 2 of fm-1 and stays open");
	if ($with_metadata)
	{
		ok_run($wr, q{SELECT event_store.es_set_stream_metadata('fm-1', '{"max_count": 1, "note": "b"}')},
			"$label ... and sets a key of its own in the stream's metadata");
	}
	note("$label row versions of fm-1: committed "
		  . es_col($rd, q{SELECT ctid FROM event_store.streams WHERE name = 'fm-1'})
		  . ', uncommitted '
		  . es_col($wr, q{SELECT ctid FROM event_store.streams WHERE name = 'fm-1'}));

	my $checkpoint = $p - 1;
	my %seen;
	my $page = es_run($rd, "SELECT position FROM event_store.es_read_all($checkpoint, 100)");
	my @positions = $page->{ok} ? map { $_->[0] } @{ $page->{rows} } : ();
	ok((grep { $_ == $p } @positions),
		"$label defect 3: es_read_all returns the committed event of the max_count = 1 stream while an append to it is open")
	  or diag('page: ' . join(',', @positions) . " (expected $p and $p_other)");
	my $cat = es_col($rd,
		"SELECT string_agg(position::text, ',' ORDER BY position) FROM event_store.es_read_category('fm', $checkpoint, 100)");
	is($cat, "$p", "$label defect 3: es_read_category returns it too");
	$seen{$_}++ for @positions;
	$checkpoint = $positions[-1] if @positions;

	es_run($wr, 'ROLLBACK');
	for (1 .. 3)
	{
		my $next = es_run($rd, "SELECT position FROM event_store.es_read_all($checkpoint, 100)");
		last unless $next->{ok} && @{ $next->{rows} };
		$seen{ $_->[0] }++ for @{ $next->{rows} };
		$checkpoint = $next->{rows}[-1][0];
	}
	ok($seen{$p},
		"$label defect 3: a consumer that checkpoints what it reads has read the event at P once the append rolled back");
	ok($seen{$p_other}, "$label ... and the event after it");
	is(es_col($rd, q{SELECT string_agg(version::text, ',') FROM event_store.es_read_stream('fm-1')}),
		'1', "$label the stream itself returns version 1");
	$_->disconnect for $adm, $rd, $wr;
}

feed_case('feed_append', '(3c-i)', 0);
feed_case('feed_layout', '(3c-ii)', 1);

# ---------------------------------------------------------------------------
# (6a) time travel returns a prefix of the stream
# ---------------------------------------------------------------------------
{
	my $x = es_connect($node);
	my $y = es_connect($node);
	es_run($x, 'BEGIN');
	my $t1 = es_col($x, q{SELECT now()::text});
	ok_run($y, q{SELECT event_store.es_append('tt-1', 0, 'First', '{}')},
		'(6a) a transaction begun later appends version 1 and commits');
	ok_run($x, q{SELECT event_store.es_append('tt-1', NULL, 'Second', '{}')},
		'(6a) the transaction begun at t1 appends version 2');
	es_run($x, 'COMMIT');
	my $at = es_col($a,
		"SELECT coalesce(string_agg(version::text, ',' ORDER BY version), '') FROM event_store.es_read_stream_at('tt-1', at_time => '$t1'::timestamptz)");
	my @v = split /,/, $at;
	my $prefix = $at !~ /ERROR/ && join(',', @v) eq join(',', 1 .. scalar(@v));
	ok($prefix,
		'(6a) defect 6: es_read_stream_at(at_time => t1) returns a prefix of the stream (no version 2 without version 1)')
	  or diag("returned versions: '$at'");
	my $all = es_col($a,
		"SELECT coalesce(string_agg(version::text, ',' ORDER BY version), '') FROM event_store.es_read_stream_at('tt-1', at_time => now())");
	is($all, '1,2', '(6a) es_read_stream_at(at_time => now()) returns both');
	$x->disconnect;
	$y->disconnect;
}

# ---------------------------------------------------------------------------
# (6b) max_age does not hide an event at its commit
# ---------------------------------------------------------------------------
{
	ok_run($admin, q{SELECT event_store.es_append('ma-1', 0, 'Old', '{}')}, 'setup: ma-1 version 1');
	ok_run($admin, q{SELECT event_store.es_set_stream_metadata('ma-1', '{"max_age": 2}')},
		'setup: max_age = 2 on ma-1');
	my $x = es_connect($node);
	es_run($x, 'BEGIN');
	# a slow transaction, not a race: it began 3 s before it appends
	es_run($x, 'SELECT pg_sleep(3)');
	my $r = ok_run($x, q{SELECT last_position FROM event_store.es_append('ma-1', NULL, 'Late', '{}')},
		'(6b) a transaction begun 3 s ago appends to the max_age = 2 stream');
	my $p = $r->{rows}[0][0] // 0;
	my $c = es_run($x, 'COMMIT');
	ok($c->{ok}, '(6b) ... and commits: the append is acknowledged');
	my $stream = es_col($a, q{SELECT coalesce(string_agg(type, ',' ORDER BY version), '') FROM event_store.es_read_stream('ma-1')});
	my $feed = es_col($a, 'SELECT coalesce(string_agg(position::text, \',\'), \'\') FROM event_store.es_read_all(' . ($p - 1) . ', 10)');
	like($stream, qr/\bLate\b/,
		'(6b) defect 6: right after the commit, es_read_stream returns the acknowledged event');
	like($feed, qr/\b$p\b/,
		'(6b) defect 6: right after the commit, es_read_all from before its position returns it');
	$x->disconnect;
}

$a->disconnect;
$b->disconnect;
$admin->disconnect;
es_check_log($node, '011');
$node->stop;
note sprintf('took %.1f s', time - $started);
done_testing();
