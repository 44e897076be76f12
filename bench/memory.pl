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
# The workload is test/t/EsTest.pm's EsTest::Workload, which the memory test
# (test/t/009_memory.pl) runs at a smaller scale.
use strict;
use warnings;
use DBI;
use DBD::Pg;
use FindBin;
use Getopt::Long;
use Time::HiRes qw(time);
use lib "$FindBin::Bin/../test/t";
use EsTest;

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

my $w = EsTest::Workload->new($dbh, streams => $opt{streams}, prefix => 'mem',
	consumer => 'memory-bench');

sub measure
{
	my ($label) = @_;
	my $m = $w->measure($opt{top});
	$m->{label} = $label;
	return $m;
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
	$w->step while $w->{events} < $mark;
	push @session, measure();
	printf STDERR "memory.pl: %d events, %.0f s\n", $w->{events}, time - $t0;
}
my $elapsed = time - $t0;

print_table('Session: after N events, each in its own transaction', @session);
print "\n";
printf "- %s events in %s statements (%s errors raised on purpose and caught) in %.0f s (%.0f events/s, measuring included)\n",
  group($w->{events}), group($w->{ops}), group($w->{errors}), $elapsed, $w->{events} / $elapsed;
print '- calls: ', join(', ', map { "$_ $w->{calls}{$_}" } sort keys %{ $w->{calls} }), "\n";
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
	my $base = $w->{events};
	my @tx = ($before);
	$t0 = time;
	$dbh->begin_work;
	for my $mark (@tx_marks)
	{
		$w->{ops}++, $w->append_one($w->stream_name) while $w->{events} - $base < $mark;
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

$w->finish;
$dbh->disconnect;
