#!/usr/bin/env perl
# Memory of one backend that appends many events: does it plateau, or grow
# with every event?
#
# In ONE connection (one backend), appends --events events (default
# 1,000,000) with event_store.es_append, each statement its own (autocommit)
# transaction, synchronous_commit off:
#   - mostly the single-event form es_append(stream, NULL, type, data, metadata)
#     to a random stream among --streams (default 10,000) in 3 categories,
#     about 200 bytes of data and 100 of metadata; 1 in 10 with a client
#     event id, 1 in 20 with the exact expected version;
#   - 1 op in 50: a JSON batch of 2 to 10 events (the jsonb form);
#   - 1 op in 200: a plain INSERT INTO event_store.events (the trigger path);
#   - reads: every 100 ops es_read_stream (forwards, 50 rows) and backwards
#     (10 rows); every 1,000 ops es_read_all (a page of 1,000 from a random
#     position), es_read_all with types, es_read_category, es_stream_version,
#     es_head_position, es_checkpoint_save;
#   - errors: every 500 ops an append with a wrong expected version (V0001),
#     every 1,000 ops a batch with an unknown key (22023), both caught.
# Then (--tx-events, default 100,000; 0 to skip) appends that many events in
# ONE transaction, measuring inside it, then after its commit.
#
# At 0, 1k, 10k, 100k ... events and at the end it reads, in the same
# backend, pg_backend_memory_contexts (sum of total_bytes, used = total -
# free, number of contexts, the largest contexts) and the backend's
# /proc/<pid>/status (VmRSS, RssAnon; needs the same machine and the right
# to read it: run as root or as the server's user) and prints markdown
# tables, and the growth per event from 10k events to the end.
#
#   perl bench/memory.pl                      # connection from PG* variables
#   perl bench/memory.pl --host /tmp/sock --port 54349 --dbname bench
#   perl bench/memory.pl --events 100000 --tx-events 0
#
# The database needs the extension (created when missing, which needs the
# right to).  The streams are named <category>-mem<k> and may already exist.
use strict;
use warnings;
use DBI;
use DBD::Pg;
use Getopt::Long;
use Time::HiRes qw(time);

my %opt = (
	events => 1_000_000,
	streams => 10_000,
	'tx-events' => 100_000,
	top => 5,
	seed => 42,
);
GetOptions(\%opt, 'host=s', 'port=i', 'dbname=s', 'user=s', 'events=i',
	'streams=i', 'tx-events=i', 'top=i', 'seed=i', 'help')
  or usage();
usage() if $opt{help};
sub usage
{
	print STDERR
	  "usage: bench/memory.pl [--host H] [--port P] [--dbname D] [--user U]\n"
	  . "         [--events N] [--streams N] [--tx-events N] [--top N] [--seed N]\n";
	exit 2;
}
srand($opt{seed});

my @dsn;
push @dsn, "host=$opt{host}" if defined $opt{host};
push @dsn, "port=$opt{port}" if defined $opt{port};
push @dsn, "dbname=$opt{dbname}" if defined $opt{dbname};
my $dbh = DBI->connect('dbi:Pg:' . join(';', @dsn), $opt{user} // '', '',
	{ AutoCommit => 1, RaiseError => 1, PrintError => 0 })
  or die $DBI::errstr;
$dbh->do('SET client_min_messages = warning');
$dbh->do('CREATE EXTENSION IF NOT EXISTS event_store');
$dbh->do('SET synchronous_commit = off');
my ($pid) = $dbh->selectrow_array('SELECT pg_backend_pid()');
my ($server_version) = $dbh->selectrow_array('SHOW server_version');

# ---------------------------------------------------------------------------
# statements: prepared once, with bind parameters
# ---------------------------------------------------------------------------
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
	head => $dbh->prepare('SELECT event_store.es_head_position()'),
	checkpoint => $dbh->prepare('SELECT event_store.es_checkpoint_reset($1, $2::bigint)'),
	checkpoint_save =>
	  $dbh->prepare('SELECT event_store.es_checkpoint_save($1, $2::bigint)'),
	mem_sum => $dbh->prepare(
		'SELECT count(*), sum(total_bytes), sum(total_bytes - free_bytes) '
		  . 'FROM pg_backend_memory_contexts'),
	mem_top => $dbh->prepare(
		'SELECT name, coalesce(ident, \'\'), total_bytes FROM pg_backend_memory_contexts '
		  . 'ORDER BY total_bytes DESC, name LIMIT $1'),
);

# ---------------------------------------------------------------------------
# the workload
# ---------------------------------------------------------------------------
my @categories = ('order', 'payment', 'shipment');
my %version;    # stream -> version, as far as this backend knows
my $events = 0;
my $ops = 0;
my $errors_caught = 0;
my %calls;

sub stream_name
{
	my $k = int(rand($opt{streams}));
	return $categories[$k % 3] . "-mem$k";
}

# A client event id, unique across runs (the run's start time in
# microseconds, the backend pid, a counter), shaped as a version 4 UUID.
my $id_base = int(time * 1e6);
my $id_count = 0;
sub client_id
{
	my $h = sprintf('%016x%08x%08x', $id_base, $pid, $id_count++);
	substr($h, 12, 1) = '4';
	substr($h, 16, 1) = '8';
	return join('-', substr($h, 0, 8), substr($h, 8, 4), substr($h, 12, 4),
		substr($h, 16, 4), substr($h, 20, 12));
}

sub data_json
{
	my ($i) = @_;
	return sprintf(
		'{"amount": %.2f, "currency": "EUR", "customer": "c-%d", "note": "%s"}',
		$i * 1.5, $i % 977, 'x' x 120);
}

sub metadata_json
{
	my ($i) = @_;
	return sprintf('{"correlation_id": "%032x", "user_id": "u-%d"}',
		$i * 2654435761 % 2**32, $i % 50);
}

sub event_type { return $_[0] % 100 == 0 ? 'Rare' : 'Happened' }

sub run
{
	my ($name, @args) = @_;
	$calls{$name}++;
	$sth{$name}->execute(@args);
	return $sth{$name}->fetchall_arrayref;
}

# An error raised on purpose: the statement must fail with this SQLSTATE.
sub expect_error
{
	my ($state, $name, @args) = @_;
	$calls{"$name (error)"}++;
	my $ok = eval { $sth{$name}->execute(@args); 1 };
	die "expected SQLSTATE $state from $name, but it succeeded\n" if $ok;
	die "expected SQLSTATE $state from $name, got " . $dbh->state . ": $@"
	  unless $dbh->state eq $state;
	$errors_caught++;
}

sub append_one
{
	my ($stream, $expected) = ($_[0], undef);
	if ($ops % 20 == 0)
	{
		# the stream may hold events from an earlier run
		$version{$stream} //= run('version', $stream)->[0][0];
		$expected = $version{$stream};
	}
	my $id = $ops % 10 == 0 ? client_id() : undef;
	my $rows = run('one', $stream, $expected, event_type($events),
		data_json($events), metadata_json($events), $id);
	$version{$stream} = $rows->[0][0];
	$events++;
}

sub append_batch
{
	my ($stream) = @_;
	my $n = 2 + int(rand(9));
	my @ev = map {
		my $i = $events + $_;
		sprintf('{"type": "%s", "data": %s, "metadata": %s}',
			event_type($i), data_json($i), metadata_json($i))
	} 0 .. $n - 1;
	my $rows = run('batch', $stream, undef, '[' . join(', ', @ev) . ']');
	$version{$stream} = $rows->[0][0];
	$events += $n;
}

sub plain_insert
{
	my ($stream) = @_;
	my $rows = run('insert', $stream, 'Inserted', data_json($events),
		metadata_json($events));
	$version{$stream} = $rows->[0][0];
	$events++;
}

sub reads
{
	my $stream = stream_name();
	if ($ops % 100 == 0)
	{
		run('read_stream', $stream, undef, 50, 0);
		run('read_stream', $stream, undef, 10, 1);
	}
	if ($ops % 500 == 0)
	{
		# a stale writer: V0001, caught; the session goes on
		$version{$stream} //= run('version', $stream)->[0][0];
		expect_error('V0001', 'one', $stream, $version{$stream} + 5,
			'Stale', '{}', undef, undef);
	}
	if ($ops % 1000 == 0)
	{
		my ($head) = @{ run('head')->[0] };
		my $after = $head > 1000 ? int(rand($head - 1000)) : 0;
		run('read_all', $after, 1000);
		run('read_types', $after, 1000, ['Rare', 'Inserted']);
		run('read_category', $categories[$ops / 1000 % 3], $after, 1000,
			$ops / 1000 % 3, 3);
		run('version', $stream);
		run('checkpoint_save', 'memory-bench', $head);
		run('checkpoint', 'memory-bench', $after);
		expect_error('22023', 'batch', $stream, undef,
			'[{"type": "T", "data": {}, "metdata": {}}]');
	}
}

# One operation of the session workload.
sub step
{
	$ops++;
	my $stream = stream_name();
	if ($ops % 50 == 0) { append_batch($stream) }
	elsif ($ops % 200 == 1) { plain_insert($stream) }
	else { append_one($stream) }
	reads();
}

# ---------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------
sub rss
{
	my %r = (VmRSS => 'n/a', RssAnon => 'n/a', RssShmem => 'n/a');
	if (open(my $fh, '<', "/proc/$pid/status"))
	{
		while (<$fh>) { $r{$1} = $2 if /^(VmRSS|RssAnon|RssShmem):\s+(\d+) kB/ }
		close $fh;
	}
	return \%r;
}

sub measure
{
	my ($label) = @_;
	$sth{mem_sum}->execute;
	my ($n, $total, $used) = $sth{mem_sum}->fetchrow_array;
	$sth{mem_sum}->finish;
	my $top = run('mem_top', $opt{top});
	return {
		label => $label,
		events => $events,
		contexts => $n,
		total => $total,
		used => $used,
		rss => rss(),
		top => [ map { { name => $_->[0], ident => $_->[1], bytes => $_->[2] } } @$top ],
		at => time,
	};
}

sub kb { my $v = shift; return $v =~ /^\d+$/ ? sprintf('%.0f', $v / 1024) : $v }

sub group
{
	my $s = reverse shift;
	$s =~ s/(\d{3})(?=\d)/$1,/g;
	return scalar reverse $s;
}

sub print_table
{
	my ($title, @m) = @_;
	print "\n### $title\n\n";
	print "| events | contexts | total (kB) | used (kB) | VmRSS (kB) | RssAnon (kB) | RssShmem (kB) | largest contexts (kB) |\n";
	print "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n";
	for my $m (@m)
	{
		my $top = join(', ',
			map {
				my $ident = length($_->{ident}) > 24
				  ? substr($_->{ident}, 0, 21) . '...' : $_->{ident};
				$ident =~ s/\|/\\|/g;
				$ident =~ s/\s+/ /g;
				sprintf('%s%s %s', $_->{name}, ($ident ne '' ? " ($ident)" : ''),
					kb($_->{bytes}))
			} @{ $m->{top} });
		printf "| %s | %d | %s | %s | %s | %s | %s | %s |\n",
		  ($m->{label} // group($m->{events})), $m->{contexts}, group(kb($m->{total})),
		  group(kb($m->{used})), group($m->{rss}{VmRSS}),
		  group($m->{rss}{RssAnon}), group($m->{rss}{RssShmem}), $top;
	}
}

sub growth
{
	my ($what, $from, $to) = @_;
	my $n = $to->{events} - $from->{events};
	return sprintf('%s: %+.3f bytes/event', $what, $n ? ($to->{total} - $from->{total}) / $n : 0)
	  . sprintf(' (total, %s -> %s events), %+.3f bytes/event (used)',
		group($from->{events}), group($to->{events}),
		$n ? ($to->{used} - $from->{used}) / $n : 0)
	  . (($from->{rss}{VmRSS} =~ /^\d+$/ && $to->{rss}{VmRSS} =~ /^\d+$/)
		? sprintf(', %+.3f bytes/event (VmRSS), %+.3f bytes/event (RssAnon)',
			($to->{rss}{VmRSS} - $from->{rss}{VmRSS}) * 1024 / $n,
			($to->{rss}{RssAnon} - $from->{rss}{RssAnon}) * 1024 / $n)
		: '');
}

# ---------------------------------------------------------------------------
# the session: many autocommit transactions
# ---------------------------------------------------------------------------
my @marks;
for (my $m = 1000; $m < $opt{events}; $m *= 10) { push @marks, $m }
push @marks, $opt{events};

print "## event_store memory: one backend, $opt{events} events in autocommit transactions\n\n";
printf "PostgreSQL %s, backend pid %d, %d streams, synchronous_commit off\n\n",
  $server_version, $pid, $opt{streams};

my $t0 = time;
my @session = (measure());
for my $mark (@marks)
{
	step() while $events < $mark;
	push @session, measure();
	printf STDERR "memory.pl: %d events, %.0f s\n", $events, time - $t0;
}
my $elapsed = time - $t0;

print_table('Session: after N events, each in its own transaction', @session);
print "\n";
printf "- %s events in %s statements (%s errors raised on purpose and caught) in %.0f s (%.0f events/s, measuring included)\n",
  group($events), group($ops), group($errors_caught), $elapsed, $events / $elapsed;
print '- calls: ', join(', ', map { "$_ $calls{$_}" } sort keys %calls), "\n";
my ($at10k) = grep { $_->{events} >= 10_000 } @session;
if ($at10k && $at10k != $session[-1])
{
	print '- growth per event from 10k to the end: ', growth('session', $at10k, $session[-1]), "\n";
}

# ---------------------------------------------------------------------------
# one big transaction
# ---------------------------------------------------------------------------
if ($opt{'tx-events'} > 0)
{
	my @tx_marks;
	for (my $m = 1000; $m < $opt{'tx-events'}; $m *= 10) { push @tx_marks, $m }
	push @tx_marks, $opt{'tx-events'};
	my $before = measure('before BEGIN');
	$before->{events} = 0;
	my $base = $events;
	my @tx = ($before);
	$t0 = time;
	$dbh->begin_work;
	for my $mark (@tx_marks)
	{
		$ops++, append_one(stream_name()) while $events - $base < $mark;
		my $m = measure();
		$m->{events} -= $base;
		$m->{label} = group($m->{events}) . ' (open)';
		push @tx, $m;
	}
	$dbh->commit;
	my $after = measure('after COMMIT');
	$after->{events} -= $base;
	push @tx, $after;
	$elapsed = time - $t0;
	print_table("One transaction: after N of its events ($opt{'tx-events'} in all)", @tx);
	print "\n";
	printf "- %s events in one transaction in %.0f s\n", group($opt{'tx-events'}), $elapsed;
	my ($tx10k) = grep { $_->{events} >= 10_000 } @tx[1 .. $#tx - 1];
	print '- growth per event inside the transaction from 10k: ',
	  growth('transaction', $tx10k, $tx[-2]), "\n"
	  if $tx10k && $tx10k != $tx[-2];
	printf "- after COMMIT: total %s kB (%+.0f kB against before BEGIN)\n\n",
	  group(kb($after->{total})), ($after->{total} - $before->{total}) / 1024;
}

$_->finish for values %sth;
$dbh->disconnect;
