# The gap-safe feed (guarantee 4) under real concurrency: a reader that
# checkpoints the last position it read never skips an event and never sees
# one twice, whatever the commit order of concurrent writers.
#
# (a) es_read_all in a REPEATABLE READ transaction sees what was committed
#     after the transaction's snapshot: the feed takes its own snapshot.
# (b) Four forked writers append batches (1-5 events, both forms, one or two
#     streams per transaction, a random delay before COMMIT, about 20% rolled
#     back on purpose) while a reader pages through es_read_all from its
#     checkpoint, at times inside a REPEATABLE READ transaction.  It must see
#     every committed position exactly once, in increasing order, and no
#     rolled-back one.
# (c) A consumer group of three forked members reads the "order" category
#     with es_read_category, each with its own checkpoint, under the same
#     load: together they see every committed "order" event exactly once, a
#     stream goes to one member only, es_consumer_member(stream, 3).
# (d) An appender terminated while idle in a transaction that holds a
#     position holds readers back until it is gone, and its event never
#     appears.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DBI;
use DBD::Pg;
use IO::Handle;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time usleep);

my $started = time;
my $json = JSON::PP->new->canonical;
my $nwriters = 4;
my $load_seconds = 8;    # per phase: (b) and (c)
my @categories = ('order', 'payment', 'ship');
my $streams_per_category = 12;
my $page_size = 100;

my $node = PostgreSQL::Test::Cluster->new('feed');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'event_store'
max_connections = 40
log_statement = none
log_min_messages = warning
deadlock_timeout = 100ms
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION event_store');

my $dir = PostgreSQL::Test::Utils::tempdir();

sub connect_db
{
	return DBI->connect(
		'dbi:Pg:dbname=postgres;host=' . $node->host . ';port=' . $node->port,
		'', '',
		{
			AutoCommit => 1,
			RaiseError => 1,
			PrintError => 0,
			AutoInactiveDestroy => 1
		});
}

my $admin = connect_db();
my $total_reads = 0;

# ---------------------------------------------------------------------------
# helpers: forked children, their files
# ---------------------------------------------------------------------------

# Run $code in a forked child; its exit status is 0 when $code returned.
sub spawn
{
	my ($name, $code) = @_;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		my $ok = eval { $code->(); 1 };
		warn "$name: $@" unless $ok;
		POSIX::_exit($ok ? 0 : 1);
	}
	return $pid;
}

# Wait for the children in %$running (pid => name) to exit, without
# blocking; returns the names of those that failed.
sub reap
{
	my ($running, $failed) = @_;
	for my $pid (keys %$running)
	{
		my $r = waitpid($pid, WNOHANG);
		next if $r == 0;
		push @$failed, "$running->{$pid} (exit " . ($? >> 8) . ")" if $r < 0 || $? != 0;
		delete $running->{$pid};
	}
}

# Wait up to $timeout seconds for the children; kill those left (they are
# ours, by pid) and count them as failed.
sub wait_children
{
	my ($running, $failed, $timeout) = @_;
	my $end = time + $timeout;
	while (%$running && time < $end)
	{
		reap($running, $failed);
		usleep(20_000) if %$running;
	}
	for my $pid (keys %$running)
	{
		kill 'KILL', $pid;
		waitpid($pid, 0);
		push @$failed, "$running->{$pid} (timed out)";
		delete $running->{$pid};
	}
}

sub read_lines
{
	my ($file) = @_;
	open my $fh, '<', $file or return ();
	my @lines = <$fh>;
	close $fh;
	chomp @lines;
	return @lines;
}

sub first_few
{
	my @v = sort { $a <=> $b } @_;
	splice(@v, 10) if @v > 10;
	return join(',', @v);
}

# ---------------------------------------------------------------------------
# The writer: appends until its time is up.  Files (each line flushed):
#   <tag>.commit    "position stream" of every committed event
#   <tag>.rollback  "position stream" of every event rolled back, on purpose
#                   or after an error before COMMIT
#   <tag>.err       "E sqlstate message" of errors (none expected), and
#                   "U position stream" for an event whose COMMIT failed
#   <tag>.stats     "xacts N two N rollbacks N single N array N"
# ---------------------------------------------------------------------------
sub writer_main
{
	my ($tag, $seconds) = @_;
	srand($$ ^ int(time * 1000));
	my %fh;
	for my $kind (qw(commit rollback err stats))
	{
		open $fh{$kind}, '>', "$dir/$tag.$kind" or die "open: $!";
		$fh{$kind}->autoflush(1);
	}
	my $dbh = connect_db();
	$dbh->{RaiseError} = 0;
	my $one = $dbh->prepare(
		q{SELECT first_position, last_position
		  FROM event_store.es_append($1::text, NULL, $2::text, $3::jsonb, $4::jsonb)});
	my $many = $dbh->prepare(
		q{SELECT first_position, last_position
		  FROM event_store.es_append($1::text, NULL, $2::jsonb)});
	my %stats = (xacts => 0, two => 0, rollbacks => 0, single => 0, array => 0);
	my $seq = 0;
	my $end = time + $seconds;

	while (time < $end)
	{
		my %pick;
		$pick{ $categories[ int(rand(@categories)) ] . '-' . int(rand($streams_per_category)) } = 1;
		if (rand() < 0.3)
		{
			$pick{ $categories[ int(rand(@categories)) ] . '-' . int(rand($streams_per_category)) } = 1;
		}
		# in name order: two writers never lock two streams in opposite order
		my @streams = sort keys %pick;
		my $rollback = rand() < 0.2;
		my @got;
		my $stage = 'begin';
		my $ok = eval {
			$dbh->do('BEGIN') or die "BEGIN\n";
			$stage = 'append';
			for my $s (@streams)
			{
				my ($type) = $s =~ /^(\w+)-/;
				my $meta = $json->encode({ writer => $tag, seq => $seq });
				my $n;
				my $sth;
				if (rand() < 0.3)
				{
					$n = 1;
					$sth = $one;
					$sth->execute($s, "${type}Happened",
						$json->encode({ seq => $seq++ }), $meta)
					  or die "append\n";
					$stats{single}++;
				}
				else
				{
					$n = 1 + int(rand(5));
					my @events = map {
						{
							type => "${type}Happened",
							data => { seq => $seq++, i => $_ },
							metadata => { writer => $tag }
						}
					} 1 .. $n;
					$sth = $many;
					$sth->execute($s, $json->encode(\@events)) or die "append\n";
					$stats{array}++;
				}
				my ($first, $last) = $sth->fetchrow_array;
				$sth->finish;
				die "append returned no row\n" unless defined $last;
				die "positions $first..$last for $n events\n"
				  unless $last - $first + 1 == $n;
				push @got, map { "$_ $s" } $first .. $last;
			}
			# the transaction holds its positions a little while
			usleep(int(rand(30_001)));
			$stage = 'end';
			$dbh->do($rollback ? 'ROLLBACK' : 'COMMIT') or die "end\n";
			1;
		};
		$stats{xacts}++;
		$stats{two}++ if @streams == 2;
		if ($ok)
		{
			my $out = $rollback ? $fh{rollback} : $fh{commit};
			print $out "$_\n" for @got;
			$stats{rollbacks}++ if $rollback;
			next;
		}
		my $state = $dbh->state // '';
		my $msg = $dbh->errstr // $@;
		$msg =~ s/\s+/ /g;
		print { $fh{err} } "E $state $stage $msg\n";
		last if $dbh->pg_ping < 0;
		$dbh->do('ROLLBACK');
		if ($stage eq 'end' && !$rollback)
		{
			# the outcome of a failed COMMIT is unknown
			print { $fh{err} } "U $_\n" for @got;
		}
		else
		{
			print { $fh{rollback} } "$_\n" for @got;
		}
	}
	print { $fh{stats} } join(' ', map { "$_ $stats{$_}" } sort keys %stats), "\n";
	$dbh->disconnect;
	close $_ for values %fh;
}

sub start_writers
{
	my ($phase, $running) = @_;
	for my $w (1 .. $nwriters)
	{
		my $tag = "$phase-w$w";
		my $pid = spawn("writer $tag", sub { writer_main($tag, $load_seconds) });
		$running->{$pid} = "writer $tag";
	}
}

# What the writers of some phases wrote: committed {position => stream},
# rolled back {position => stream}, errors, summed stats.
sub writer_results
{
	my (@phases) = @_;
	my (%committed, %rolled, @errors, %stats);
	for my $phase (@phases)
	{
		for my $w (1 .. $nwriters)
		{
			my $tag = "$phase-w$w";
			for (read_lines("$dir/$tag.commit"))
			{
				my ($p, $s) = split / /;
				push @errors, "$tag: position $p committed twice" if exists $committed{$p};
				$committed{$p} = $s;
			}
			for (read_lines("$dir/$tag.rollback"))
			{
				my ($p, $s) = split / /;
				$rolled{$p} = $s;
			}
			push @errors, map { "$tag: $_" } read_lines("$dir/$tag.err");
			my @st = read_lines("$dir/$tag.stats");
			push @errors, "$tag: no stats (did not finish)" unless @st;
			my %s = split / /, ($st[0] // '');
			$stats{$_} += $s{$_} for keys %s;
		}
	}
	return (\%committed, \%rolled, \@errors, \%stats);
}

# ---------------------------------------------------------------------------
# The es_read_all reader (in this process): pages from its checkpoint.
# ---------------------------------------------------------------------------
my $reader = connect_db();
my $page = $reader->prepare(
	"SELECT position, stream FROM event_store.es_read_all(\$1::bigint, $page_size)");
my $checkpoint = 0;
my @read;          # [position, stream] in the order read
my $rr_reads = 0;
my $a_position;    # the event appended in (a)

# The control: a naive reader of the table itself, paging by position with
# the same checkpoint rule.  Under this load it skips events (positions are
# taken in one order and committed in another), which shows that the load
# exercises what the feed must get right.
my $naive = $reader->prepare(
	"SELECT position FROM event_store.events WHERE position > \$1::bigint ORDER BY position LIMIT $page_size");
my $naive_checkpoint = 0;
my %naive_seen;

sub naive_page
{
	$naive->execute($naive_checkpoint);
	my $rows = $naive->fetchall_arrayref;
	$naive_seen{ $_->[0] }++ for @$rows;
	$naive_checkpoint = $rows->[-1][0] if @$rows;
	return scalar @$rows;
}

# One page; advances the checkpoint to the last position read.
sub read_page
{
	$page->execute($checkpoint);
	my $rows = $page->fetchall_arrayref;
	$total_reads++;
	push @read, @$rows;
	$checkpoint = $rows->[-1][0] if @$rows;
	return scalar @$rows;
}

# A few pages in one REPEATABLE READ transaction whose snapshot is taken
# first and then ages: the feed must not read with it.
sub read_pages_repeatable_read
{
	$reader->do('BEGIN ISOLATION LEVEL REPEATABLE READ');
	$reader->selectrow_array('SELECT count(*) FROM event_store.events');
	my $n = 0;
	for (1 .. 3)
	{
		usleep(int(rand(15_000)));
		$n += read_page();
		$rr_reads++;
	}
	$reader->do('COMMIT');
	return $n;
}

# Page to the end: every writer is done, so nothing holds the feed back.
sub drain_reader
{
	my ($timeout) = @_;
	my ($max) = $admin->selectrow_array(
		'SELECT coalesce(max(position), 0) FROM event_store.events');
	my $end = time + $timeout;
	while (time < $end)
	{
		my $n = read_page();
		return 1 if $n == 0 && $checkpoint >= $max;
		usleep(10_000) if $n == 0;
	}
	return 0;
}

# ---------------------------------------------------------------------------
# (a) the feed does not read with the caller's REPEATABLE READ snapshot
# ---------------------------------------------------------------------------
{
	my $other = connect_db();
	$reader->do('BEGIN ISOLATION LEVEL REPEATABLE READ');
	my ($before) = $reader->selectrow_array('SELECT count(*) FROM event_store.events');
	my ($p) = $other->selectrow_array(
		q{SELECT last_position FROM event_store.es_append('rr-1', 0, 'Seen', '{}')});
	my ($snap) = $reader->selectrow_array('SELECT count(*) FROM event_store.events');
	my $rows = $reader->selectall_arrayref(
		'SELECT position FROM event_store.es_read_all(0, 100)');
	$reader->do('COMMIT');
	is($snap, $before, '(a) the REPEATABLE READ snapshot does not see the new event');
	is_deeply([ map { $_->[0] } @$rows ], [$p],
		'(a) ... but es_read_all in that transaction returns it');
	$other->disconnect;
	$a_position = $p;
	$checkpoint = 0;    # the reader of (b) starts from the beginning
}

# ---------------------------------------------------------------------------
# (b) es_read_all under concurrent writers that commit out of order
# ---------------------------------------------------------------------------
my $b_start = time;
my %writers;
my @failed;
start_writers('b', \%writers);
my $deadline = time + $load_seconds + 30;
while (%writers && time < $deadline)
{
	reap(\%writers, \@failed);
	my $n = rand() < 0.15 ? read_pages_repeatable_read() : read_page();
	naive_page();
	usleep(2_000) if $n == 0;
}
wait_children(\%writers, \@failed, 5);
is(join('; ', @failed), '', '(b) the writers finished');
ok(drain_reader(15), '(b) the reader drained the feed to the last event');
1 while naive_page();
my $b_time = time - $b_start;

{
	my ($committed, $rolled, $errors, $stats) = writer_results('b');
	$committed->{$a_position} = 'rr-1';
	is(join("\n", @$errors), '', '(b) the writers met no error');
	note sprintf(
		'(b) %d transactions (%d on two streams, %d rolled back, %d single-event and %d array appends), %d events committed, %d rolled back; %d reads (%d in REPEATABLE READ) in %.1f s',
		$stats->{xacts} // 0, $stats->{two} // 0, $stats->{rollbacks} // 0,
		$stats->{single} // 0, $stats->{array} // 0,
		scalar(keys %$committed), scalar(keys %$rolled),
		$total_reads, $rr_reads, $b_time);
	ok($stats->{rollbacks} && $stats->{two} && $stats->{single} && $stats->{array},
		'(b) the load had rollbacks, two-stream transactions and both append forms');
	ok($rr_reads > 0, '(b) the reader read in REPEATABLE READ transactions');

	my @positions = map { $_->[0] } @read;
	my @backwards = grep { $positions[$_] <= $positions[ $_ - 1 ] } 1 .. $#positions;
	is(scalar(@backwards), 0, '(b) the reader read positions in strictly increasing order')
	  or diag('first: ' . join(', ',
		  map { "$positions[$_ - 1] then $positions[$_]" } @backwards[ 0 .. ($#backwards < 4 ? $#backwards : 4) ]));
	my %seen;
	$seen{$_}++ for @positions;
	my @twice = grep { $seen{$_} > 1 } keys %seen;
	my @missed = grep { !$seen{$_} } keys %$committed;
	my @extra = grep { !exists $committed->{$_} } keys %seen;
	my @ghosts = grep { $seen{$_} } keys %$rolled;
	my @wrong_stream = grep { exists $committed->{ $_->[0] } && $committed->{ $_->[0] } ne $_->[1] } @read;
	is(scalar(@twice), 0, '(b) no position was read twice') or diag('twice: ' . first_few(@twice));
	is(scalar(@missed), 0, '(b) every committed position was read')
	  or diag(scalar(@missed) . ' missed: ' . first_few(@missed));
	is(scalar(@extra), 0, '(b) nothing but committed positions was read')
	  or diag('extra: ' . first_few(@extra));
	is(scalar(@ghosts), 0, '(b) no rolled-back position was read')
	  or diag('rolled back but read: ' . first_few(@ghosts));
	is(scalar(@wrong_stream), 0, '(b) each position was read with the stream it was appended to');
	my @naive_missed = grep { !$naive_seen{$_} } keys %$committed;
	note sprintf('(b) control: the naive reader of the table skipped %d of %d committed events',
		scalar(@naive_missed), scalar(keys %$committed));
	ok(@naive_missed > 0,
		'(b) control: under the same load, a naive reader of the table skipped events');
	my ($count) = $admin->selectrow_array('SELECT count(*) FROM event_store.events');
	is(scalar(@read), $count, '(b) the reader read as many events as the events table holds');
	is($count, scalar(keys %$committed),
		'(b) ... which are the committed ones (and the one of (a))');
}

# ---------------------------------------------------------------------------
# (c) a consumer group of three reads the "order" category
# ---------------------------------------------------------------------------
my $group_size = 3;
my $stopfile = "$dir/c.stop";
my $c_reads = 0;

# A member: each page and its checkpoint in one transaction (sometimes
# REPEATABLE READ), then the page to its file.  After the stop file appears
# (every writer is done), it reads until a page is empty.
sub member_main
{
	my ($m) = @_;
	srand($$ ^ int(time * 1000));
	open my $fh, '>', "$dir/c-m$m.read" or die "open: $!";
	$fh->autoflush(1);
	my $dbh = connect_db();
	my $consumer = "order-group-$m";
	my $get = $dbh->prepare('SELECT event_store.es_checkpoint_get($1::text)');
	my $sth = $dbh->prepare(
		q{SELECT position, stream
		  FROM event_store.es_read_category('order', $1::bigint, $2::bigint, $3::int, $4::int)});
	my $save = $dbh->prepare('SELECT event_store.es_checkpoint_save($1::text, $2::bigint)');
	my $reads = 0;
	my $end = time + $load_seconds + 40;
	while (time < $end)
	{
		my $stop = -e $stopfile;
		$dbh->do(rand() < 0.2 ? 'BEGIN ISOLATION LEVEL REPEATABLE READ' : 'BEGIN');
		$get->execute($consumer);
		my ($cp) = $get->fetchrow_array;
		$sth->execute($cp, $page_size, $m, $group_size);
		my $rows = $sth->fetchall_arrayref;
		$reads++;
		if (@$rows)
		{
			$save->execute($consumer, $rows->[-1][0]);
			$save->finish;
		}
		$dbh->do('COMMIT');
		print $fh "$_->[0] $_->[1]\n" for @$rows;
		if (!@$rows)
		{
			last if $stop;
			usleep(3_000);
		}
	}
	die "member $m: no end within its time\n" unless time < $end;
	print $fh "reads $reads\n";
	$dbh->disconnect;
	close $fh;
}

my $c_start = time;
my %members;
@failed = ();
for my $m (0 .. $group_size - 1)
{
	my $pid = spawn("member $m", sub { member_main($m) });
	$members{$pid} = "member $m";
}
start_writers('c', \%writers);
wait_children(\%writers, \@failed, $load_seconds + 30);
is(join('; ', @failed), '', '(c) the writers finished');
open my $stop_fh, '>', $stopfile or die "open: $!";
close $stop_fh;
@failed = ();
wait_children(\%members, \@failed, 20);
is(join('; ', @failed), '', '(c) the three members read to the end');
my $c_time = time - $c_start;

{
	my ($committed, $rolled, $errors, $stats) = writer_results('b', 'c');
	my ($c_committed, undef, $c_errors, $c_stats) = writer_results('c');
	is(join("\n", @$c_errors), '', '(c) the writers met no error');
	my %order = map { $_ => $committed->{$_} } grep { $committed->{$_} =~ /^order-/ } keys %$committed;
	my %order_rolled = map { $_ => 1 } grep { $rolled->{$_} =~ /^order-/ } keys %$rolled;

	my (%seen, %member_of_stream, @backwards, @foreign);
	for my $m (0 .. $group_size - 1)
	{
		my $last = 0;
		for (read_lines("$dir/c-m$m.read"))
		{
			if (/^reads (\d+)$/) { $c_reads += $1; next }
			my ($p, $s) = split / /;
			$seen{$p}++;
			$member_of_stream{$s}{$m}++;
			push @backwards, "member $m: $last then $p" if $p <= $last;
			push @foreign, "$p $s" unless $s =~ /^order-/;
			$last = $p;
		}
	}
	$total_reads += $c_reads;
	note sprintf(
		'(c) %d transactions (%d rolled back) during the group read; %d committed "order" events in all, %d reads by the members in %.1f s',
		$c_stats->{xacts} // 0, $c_stats->{rollbacks} // 0, scalar(keys %order), $c_reads, $c_time);

	is(scalar(@backwards), 0, '(c) each member read positions in strictly increasing order')
	  or diag(join('; ', @backwards[ 0 .. ($#backwards < 4 ? $#backwards : 4) ]));
	is(scalar(@foreign), 0, '(c) the members read "order" events only')
	  or diag(join('; ', @foreign[ 0 .. ($#foreign < 4 ? $#foreign : 4) ]));
	my @twice = grep { $seen{$_} > 1 } keys %seen;
	my @missed = grep { !$seen{$_} } keys %order;
	my @extra = grep { !exists $order{$_} } keys %seen;
	my @ghosts = grep { $seen{$_} } keys %order_rolled;
	is(scalar(@twice), 0, '(c) no "order" event went to two members or twice to one')
	  or diag('twice: ' . first_few(@twice));
	is(scalar(@missed), 0, '(c) together the members read every committed "order" event')
	  or diag(scalar(@missed) . ' missed: ' . first_few(@missed));
	is(scalar(@extra), 0, '(c) ... and nothing else') or diag('extra: ' . first_few(@extra));
	is(scalar(@ghosts), 0, '(c) no rolled-back "order" event was read')
	  or diag('rolled back but read: ' . first_few(@ghosts));
	my ($count) = $admin->selectrow_array(
		q{SELECT count(*) FROM event_store.events WHERE event_store.es_category(stream) = 'order'});
	is(scalar(keys %seen), $count, '(c) as many as the events table holds in the category');

	my @streams = sort keys %member_of_stream;
	my @split = grep { keys %{ $member_of_stream{$_} } != 1 } @streams;
	is(scalar(@split), 0, '(c) every stream was read by exactly one member')
	  or diag('split: ' . join(', ', @split));
	my %expected_member = map { @$_ } @{
		$admin->selectall_arrayref(
			'SELECT s, event_store.es_consumer_member(s, ?) FROM unnest(?::text[]) s',
			undef, $group_size, \@streams) };
	my @misplaced = grep {
		my ($m) = keys %{ $member_of_stream{$_} };
		@{ [ keys %{ $member_of_stream{$_} } ] } == 1
		  && $m != $expected_member{$_}
	} @streams;
	is(scalar(@misplaced), 0, '(c) ... the member es_consumer_member(stream, 3) names')
	  or diag(join(', ', map { "$_ read by " . join('/', keys %{ $member_of_stream{$_} })
		  . ", expected $expected_member{$_}" } @misplaced));
	my %used = map { (keys %{ $member_of_stream{$_} })[0] => 1 } @streams;
	is(scalar(keys %used), $group_size, '(c) every member had streams to read');
}

# ---------------------------------------------------------------------------
# (d) an appender terminated while idle in a transaction holding a position
# ---------------------------------------------------------------------------
ok(drain_reader(15), '(d) the reader caught up before the held append');
{
	my $held = connect_db();
	$held->{RaiseError} = 0;
	my $held_pid = $held->{pg_pid};
	$held->do('BEGIN');
	my ($held_pos) = $held->selectrow_array(
		q{SELECT last_position FROM event_store.es_append('term-held', 0, 'NeverCommitted', '{}')});
	ok(defined $held_pos && $held_pos > $checkpoint,
		'(d) an open transaction holds a position above the reader');
	my $other = connect_db();
	my ($after_pos) = $other->selectrow_array(
		q{SELECT last_position FROM event_store.es_append('term-after', 0, 'Committed', '{}')});
	ok($after_pos > $held_pos, '(d) a later append commits above it');

	# held back: a few reads, none returns anything at or above the held position
	my $before = @read;
	read_page() for 1 .. 5;
	my @early = grep { $_->[0] >= $held_pos } @read[ $before .. $#read ];
	is(scalar(@early), 0, '(d) while the appender is idle in transaction, the reader is held back');
	my ($head) = $admin->selectrow_array('SELECT event_store.es_head_position()');
	cmp_ok($head, '<', $held_pos, '(d) ... and es_head_position() stays below the held position');
	my ($state) = $admin->selectrow_array(
		'SELECT state FROM pg_stat_activity WHERE pid = ?', undef, $held_pid);
	is($state, 'idle in transaction', '(d) the appender is idle in transaction');

	my ($terminated) = $admin->selectrow_array('SELECT pg_terminate_backend(?)', undef, $held_pid);
	ok($terminated, '(d) pg_terminate_backend of the appender');

	# poll: the reader advances past the committed later append
	my $end = time + 15;
	my $advanced = 0;
	while (time < $end)
	{
		read_page();
		if (grep { $_->[0] == $after_pos } @read[ $before .. $#read ]) { $advanced = 1; last }
		usleep(20_000);
	}
	ok($advanced, '(d) after the termination, the reader advances to the later append');
	my @ghost = grep { $_->[0] == $held_pos || $_->[1] eq 'term-held' } @read;
	is(scalar(@ghost), 0, "(d) ... and never sees the terminated appender's event");
	ok(drain_reader(10), '(d) the reader drains to the end');
	@ghost = grep { $_->[0] == $held_pos || $_->[1] eq 'term-held' } @read;
	is(scalar(@ghost), 0, "(d) ... still without the terminated appender's event");
	is( $admin->selectrow_array(
			q{SELECT count(*) FROM event_store.events WHERE position = ? OR stream = 'term-held'},
			undef, $held_pos),
		0,
		"(d) the terminated appender's event is not stored");
	ok(!$held->ping, '(d) the terminated connection is gone');
	$other->disconnect;
}

# the whole feed once more: strictly increasing, exactly the table
{
	my @positions = map { $_->[0] } @read;
	my @backwards = grep { $positions[$_] <= $positions[ $_ - 1 ] } 1 .. $#positions;
	is(scalar(@backwards), 0, 'everything the es_read_all reader read is strictly increasing');
	my ($count, $sum) = $admin->selectrow_array(
		'SELECT count(*), coalesce(sum(position), 0) FROM event_store.events');
	my $mysum = 0;
	$mysum += $_ for @positions;
	is(scalar(@positions) . " $mysum", "$count $sum",
		'... and is exactly the events table (count and sum of positions)');
}

my ($events) = $admin->selectrow_array('SELECT count(*) FROM event_store.events');
my (undef, $rolled_all, undef, $stats_all) = writer_results('b', 'c');
note sprintf('feed: events %d, reads %d, rollbacks %d (%d events), elapsed %.1f s',
	$events, $total_reads, $stats_all->{rollbacks} // 0, scalar(keys %$rolled_all),
	time - $started);

$reader->disconnect;
$admin->disconnect;
$node->stop;
done_testing();
