# Memory of a long-lived appending session: it may plateau, it must not grow
# with every event.
#
# One connection (one backend) appends 60,000 events, each statement its own
# (autocommit) transaction, in the mix of bench/memory.pl at a smaller scale
# (2,000 streams, reads and errors more often):
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

my $started = time;
my $events_total = 60_000;
my $baseline_at = 10_000;
my $nstreams = 2_000;
my $slack = 256 * 1024;            # bytes of memory contexts, not per event
my $rss_slack = 2 * 1024 * 1024;   # bytes of RssAnon

my $node = PostgreSQL::Test::Cluster->new('memory');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'event_store'
log_statement = none
log_min_messages = warning
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION event_store');
$node->safe_psql('postgres',
	'CREATE TABLE control (id int PRIMARY KEY, v bigint); INSERT INTO control VALUES (1, 0)');

my $dbh = DBI->connect(
	'dbi:Pg:dbname=postgres;host=' . $node->host . ';port=' . $node->port,
	'', '', { AutoCommit => 1, RaiseError => 1, PrintError => 0 });
$dbh->do('SET synchronous_commit = off');
$dbh->do('SET client_min_messages = warning');
my ($pid) = $dbh->selectrow_array('SELECT pg_backend_pid()');

my %sth = (
	one => $dbh->prepare(
		'SELECT last_version FROM event_store.es_append($1, $2::bigint, $3::text, '
		  . '$4::jsonb, $5::jsonb, $6::uuid)'),
	batch => $dbh->prepare(
		'SELECT last_version FROM event_store.es_append($1, $2::bigint, $3::jsonb)'),
	insert => $dbh->prepare(
		'INSERT INTO event_store.events (stream, type, data, metadata) '
		  . 'VALUES ($1, $2, $3::jsonb, $4::jsonb) RETURNING version'),
	read_stream => $dbh->prepare(
		'SELECT * FROM event_store.es_read_stream($1, $2::bigint, $3::bigint, $4::boolean)'),
	read_all => $dbh->prepare(
		'SELECT * FROM event_store.es_read_all($1::bigint, $2::bigint)'),
	read_types => $dbh->prepare(
		'SELECT * FROM event_store.es_read_all($1::bigint, $2::bigint, $3::text[])'),
	read_category => $dbh->prepare(
		'SELECT * FROM event_store.es_read_category($1, $2::bigint, $3::bigint, $4::int, $5::int)'),
	version => $dbh->prepare('SELECT event_store.es_stream_version($1)'),
	control => $dbh->prepare('UPDATE control SET v = v + 1 WHERE id = $1 RETURNING v'),
	head => $dbh->prepare('SELECT event_store.es_head_position()'),
	checkpoint_save =>
	  $dbh->prepare('SELECT event_store.es_checkpoint_save($1, $2::bigint)'),
	checkpoint_reset =>
	  $dbh->prepare('SELECT event_store.es_checkpoint_reset($1, $2::bigint)'),
	mem => $dbh->prepare(
		'SELECT count(*), sum(total_bytes), sum(total_bytes - free_bytes) '
		  . 'FROM pg_backend_memory_contexts'),
	mem_top => $dbh->prepare(
		'SELECT name, total_bytes FROM pg_backend_memory_contexts '
		  . 'ORDER BY total_bytes DESC, name LIMIT 5'),
);

my @categories = ('order', 'payment', 'shipment');
my (%version, %calls);
my ($events, $ops, $errors) = (0, 0, 0);
my $id_count = 0;
srand(7);

sub stream_name
{
	my $k = int(rand($nstreams));
	return $categories[$k % 3] . "-$k";
}

sub data_json
{
	return sprintf('{"amount": %.2f, "currency": "EUR", "customer": "c-%d", "note": "%s"}',
		$_[0] * 1.5, $_[0] % 977, 'x' x 120);
}

sub metadata_json
{
	return sprintf('{"correlation_id": "%032x", "user_id": "u-%d"}',
		$_[0] * 2654435761 % 2**32, $_[0] % 50);
}

sub client_id
{
	my $h = sprintf('%032x', ++$id_count);
	return join('-', substr($h, 0, 8), substr($h, 8, 4), '4' . substr($h, 13, 3),
		'8' . substr($h, 17, 3), substr($h, 20, 12));
}

sub run
{
	my ($name, @args) = @_;
	$calls{$name}++;
	$sth{$name}->execute(@args);
	return $sth{$name}->fetchall_arrayref;
}

sub expect_error
{
	my ($state, $name, @args) = @_;
	$calls{"$name error"}++;
	my $ok = eval { $sth{$name}->execute(@args); 1 };
	die "$name succeeded, expected SQLSTATE $state\n" if $ok;
	die "$name: expected SQLSTATE $state, got " . $dbh->state . ": $@"
	  unless $dbh->state eq $state;
	$errors++;
}

sub append_one
{
	my ($stream) = @_;
	my $expected = $ops % 20 == 0 ? ($version{$stream} // 0) : undef;
	my $id = $ops % 10 == 0 ? client_id() : undef;
	my $rows = run('one', $stream, $expected, $events % 100 ? 'Happened' : 'Rare',
		data_json($events), metadata_json($events), $id);
	$version{$stream} = $rows->[0][0];
	$events++;
}

# one operation of the session
sub step
{
	$ops++;
	my $stream = stream_name();
	if ($ops % 50 == 0)
	{
		my $n = 2 + int(rand(9));
		my $batch = '[' . join(', ',
			map {
				sprintf('{"type": "Batched", "data": %s, "metadata": %s}',
					data_json($events + $_), metadata_json($events + $_))
			} 1 .. $n) . ']';
		$version{$stream} = run('batch', $stream, undef, $batch)->[0][0];
		$events += $n;
	}
	elsif ($ops % 200 == 1)
	{
		$version{$stream} = run('insert', $stream, 'Inserted', data_json($events),
			metadata_json($events))->[0][0];
		$events++;
	}
	else
	{
		append_one($stream);
	}

	$stream = stream_name();
	if ($ops % 50 == 0)
	{
		run('read_stream', $stream, undef, 50, 0);
		run('read_stream', $stream, undef, 10, 1);
	}
	if ($ops % 250 == 0)
	{
		expect_error('V0001', 'one', $stream, ($version{$stream} // 0) + 5,
			'Stale', '{}', undef, undef);
	}
	if ($ops % 250 == 0)
	{
		my $head = run('head')->[0][0];
		my $after = $head > 1000 ? int(rand($head - 1000)) : 0;
		run('read_all', $after, 1000);
		run('read_types', $after, 1000, [ 'Rare', 'Inserted' ]);
		run('read_category', $categories[$ops / 250 % 3], $after, 1000,
			$ops / 250 % 3, 3);
		run('version', $stream);
		run('checkpoint_save', 'memory-test', $head);
		run('checkpoint_reset', 'memory-test', $after);
	}
	if ($ops % 500 == 0)
	{
		expect_error('22023', 'batch', $stream, undef,
			'[{"type": "T", "data": {}, "metdata": {}}]');
	}
}

sub rss_anon
{
	open(my $fh, '<', "/proc/$pid/status") or return undef;
	while (<$fh>) { return $1 * 1024 if /^RssAnon:\s+(\d+) kB/ }
	return undef;
}

sub measure
{
	$sth{mem}->execute;
	my ($n, $total, $used) = $sth{mem}->fetchrow_array;
	$sth{mem}->finish;
	$sth{mem_top}->execute;
	my $top = join(', ', map { "$_->[0] $_->[1]" } @{ $sth{mem_top}->fetchall_arrayref });
	return { events => $events, contexts => $n, total => $total, used => $used,
		rss => rss_anon(), top => $top };
}

sub show
{
	my ($label, $m) = @_;
	note sprintf('%s: %d events, %d contexts, total %d, used %d, RssAnon %s; largest: %s',
		$label, $m->{events}, $m->{contexts}, $m->{total}, $m->{used},
		$m->{rss} // 'n/a', $m->{top});
}

# ---------------------------------------------------------------------------
# the session
# ---------------------------------------------------------------------------
my $start = measure();
show('start', $start);
step() while $events < $baseline_at;
my $base = measure();
show('baseline', $base);
my %calls_at_base = %calls;
step() while $events < $events_total;
my $end = measure();
show('end', $end);
my $n = $end->{events} - $base->{events};

is($dbh->selectrow_array('SELECT count(*) FROM event_store.events'),
	$events, "the session stored $events events");
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
	  unless defined $base->{rss} && defined $end->{rss};
	cmp_ok($end->{rss}, '<=', $base->{rss} + $rss_slack,
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
		if ($what eq 'control') { run('control', 1) }
		else
		{
			run('one', 'big-one', $i == 1 ? 0 : $i - 1, 'Happened', data_json($i),
				metadata_json($i), undef);
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
	$events, $ops, $errors, $base->{events}, $base->{total} / 1024, $base->{used} / 1024,
	$base->{contexts}, $end->{events}, $end->{total} / 1024, $end->{used} / 1024,
	$end->{contexts}, ($end->{total} - $base->{total}) / $n,
	($end->{used} - $base->{used}) / $n,
	defined $end->{rss} && defined $base->{rss} ? ($end->{rss} - $base->{rss}) / $n : 0,
	$big, $delta[1] / 1024, $big, $delta[0] / 1024,
	($after->{total} - $before->{total}) / 1024, time - $started);

$_->finish for values %sth;
$dbh->disconnect;
$node->stop;
done_testing();
