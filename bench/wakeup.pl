#!/usr/bin/perl
# Wake-up latency: from sending the COMMIT of an append to a LISTENing
# client reading the notification that covers it (payload head >= the
# append's position).  Prints "p50_ms p99_ms max_ms samples missed".
#
#   perl bench/wakeup.pl DBNAME HOST PORT SAMPLES SPACING_MS
use strict;
use warnings;
use DBI;
use IO::Select;
use Time::HiRes qw(time usleep);

my ($db, $host, $port, $samples, $spacing) = @ARGV;
die "usage: wakeup.pl DB HOST PORT SAMPLES SPACING_MS\n" unless defined $spacing;
my $dsn = "dbi:Pg:dbname=$db;host=$host;port=$port";
my %attr = (RaiseError => 1, PrintError => 0, AutoCommit => 1);
my $listener = DBI->connect($dsn, 'postgres', '', \%attr);
my $writer = DBI->connect($dsn, 'postgres', '', \%attr);
$listener->do('LISTEN es_events');
my $sel = IO::Select->new($listener->{pg_socket});
my $append = $writer->prepare(
	q{SELECT last_position FROM event_store.es_append($1, NULL, 'Pinged', '{}')});

my (@lat, $missed);
$missed = 0;
for my $i (1 .. $samples)
{
	$writer->begin_work;
	$append->execute('wake-' . ($i % 100));
	my ($pos) = $append->fetchrow_array;
	my $t0 = time;
	$writer->commit;
	my $seen;
	while (!defined $seen)
	{
		my $left = $t0 + 5 - time;
		last if $left <= 0;
		$sel->can_read($left) or next;
		while (my $n = $listener->pg_notifies)
		{
			my ($head) = $n->[2] =~ /"head":\s*(\d+)/;
			$seen = time if defined $head && $head >= $pos && !defined $seen;
		}
	}
	if (defined $seen) { push @lat, ($seen - $t0) * 1000 }
	else { $missed++ }
	usleep($spacing * 1000);
	# drain what came meanwhile (others' appends under load)
	1 while $listener->pg_notifies;
}
@lat = sort { $a <=> $b } @lat;
my $pct = sub { @lat ? $lat[int($_[0] * $#lat + 0.5)] : 0 };
printf "%.3f %.3f %.3f %d %d\n", $pct->(0.5), $pct->(0.99), @lat ? $lat[-1] : 0,
  scalar @lat, $missed;
