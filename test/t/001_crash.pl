# Durability (guarantee 5), per-stream order (guarantee 1) and the gap-safe
# feed with exactly-once checkpoints (guarantee 4) across crashes.
#
# In every cycle, several writer clients run a mixed load: appends through
# es_append (JSON batch and single-event forms) and plain INSERT, alone or two
# streams in one transaction; reads (es_read_stream, es_read_all) checked
# against what the client knows; and rollbacks, on purpose (append, then
# ROLLBACK) or forced by a wrong expected version after an earlier append in
# the same transaction.  Each writes every append the server acknowledged to
# its own file, flushed after each acknowledgement.  A feed reader client
# follows es_read_all from its checkpoint and, in one transaction per page,
# records what it read in its own table seen(position primary key) and saves
# its checkpoint (the exactly-once pattern of the README).
#
# The server is then crashed (immediate shutdown, kill -9 of the postmaster,
# kill -9 of the postmaster and all its children) in the middle of it and
# restarted, and: every acknowledged event is there, at its version and
# position, with its data; nothing of a rolled back append is; streams are
# numbered 1..N without gaps and the streams table agrees; positions continue
# above every stored one; the reader's table and checkpoint agree (seen holds
# exactly the events up to the checkpoint); and the reader resumes from the
# checkpoint.  In the end, once the reader has caught up to the head, seen
# holds exactly the positions of the events, recorded in increasing order,
# each page starting right after the previous one.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DBI;
use DBD::Pg;
use IO::Handle;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time usleep);

my $nclients = 4;
my @crash_modes = ('immediate', 'kill9', 'kill9-all', 'immediate', 'kill9-all');
my $reader_name = 'crash_reader';
my $started = time;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'event_store'
synchronous_commit = on
fsync = on
max_connections = 40
log_statement = none
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION event_store');
# the feed reader's read model: one row per event it processed, in the order
# it processed them (seq), with the checkpoint its page was read from
$node->safe_psql(
	'postgres', q{
CREATE TABLE seen (
  position bigint PRIMARY KEY,
  seq bigint NOT NULL UNIQUE,
  after_position bigint NOT NULL)});

my $ackdir = PostgreSQL::Test::Utils::tempdir();

sub connect_db
{
	my $dbh = DBI->connect(
		'dbi:Pg:dbname=postgres;host=' . $node->host . ';port=' . $node->port,
		'', '',
		{
			AutoCommit => 1,
			RaiseError => 0,
			PrintError => 0,
			AutoInactiveDestroy => 1
		});
	return $dbh;
}

# ---------------------------------------------------------------------------
# A writer client: runs in a forked process until its connection dies (the
# crash) or the safety deadline passes.  Lines of its file:
#   A stream first_version last_version first_position last_position xid tag form positions
#			an acknowledged append (written after the commit returned);
#			form: one (single-event es_append), many (JSON batch), insert;
#			positions: of its events, in version order, comma-separated
#   R positions tag why
#			an append that must not be stored: its transaction was rolled back
#			(why: rollback = on purpose, wrong = a later wrong expected
#			version, conflict = a later conflict, crash = the connection died
#			before COMMIT was sent)
#   W		a wrong expected version refused, as it must be
#   C stream	a wrong-expected-version conflict on a shared stream
#   Q kind	a read whose result was checked (kind: stream, all)
#   E sqlstate message	an unexpected error or a wrong read while the server was up
# ---------------------------------------------------------------------------
sub client_main
{
	my ($cycle, $id) = @_;
	my $deadline = time + 40;
	open my $fh, '>', "$ackdir/acks-$cycle-$id" or die "open: $!";
	$fh->autoflush(1);

	my $dbh = connect_db() or do { print $fh "E connect $DBI::errstr\n"; return };
	srand($$ ^ int(time * 1000));

	# own streams are appended to by this client only: an exact expected
	# version must always match, and a wrong one must always be refused.
	# Shared streams see conflicts.
	my @own    = map { "own$id-$_" } 0 .. 2;
	my @shared = map { "shared-$_" } 0 .. 3;
	my @all    = (@own, @shared);
	my %own    = map { $_ => 1 } @own;
	my %ver;
	for my $s (@all)
	{
		my ($v) = $dbh->selectrow_array(
			'SELECT event_store.es_stream_version(?)', undef, $s);
		return unless defined $v;
		$ver{$s} = $v;
	}
	my %sth = (
		one => $dbh->prepare(
			'SELECT *, txid_current() FROM event_store.es_append($1::text, $2::bigint, $3::text, $4::jsonb)'),
		many => $dbh->prepare(
			'SELECT *, txid_current() FROM event_store.es_append($1::text, $2::bigint, $3::jsonb)'),
		insert_at => $dbh->prepare(
			q{INSERT INTO event_store.events (stream, version, type, data)
			  SELECT $1::text, u.v, 'Tick', u.d
			  FROM unnest($2::bigint[], $3::jsonb[]) WITH ORDINALITY AS u(v, d, o)
			  ORDER BY u.o
			  RETURNING position, version, txid_current()}),
		insert_any => $dbh->prepare(
			q{INSERT INTO event_store.events (stream, type, data)
			  SELECT $1::text, 'Tick', u.d
			  FROM unnest($2::jsonb[]) WITH ORDINALITY AS u(d, o)
			  ORDER BY u.o
			  RETURNING position, version, txid_current()}),
		read_stream => $dbh->prepare(
			q{SELECT version FROM event_store.es_read_stream($1::text, $2::bigint, $3::bigint, $4::boolean)}),
		read_all => $dbh->prepare(
			q{SELECT position FROM event_store.es_read_all($1::bigint, $2::bigint)}));
	my $seq = 0;

	# Explicit BEGIN/COMMIT through do(): DBI's commit() of DBD::Pg 3.16 can
	# return true when the connection died before the COMMIT got through.
	# @pending: the appends of the open transaction; they must not be stored
	# unless COMMIT was sent (a COMMIT without an answer is in doubt).
	my ($in_xact, $commit_sent, @pending) = (0, 0);
	my $sql = sub {
		my ($cmd) = @_;
		$commit_sent = 1 if $cmd eq 'COMMIT';
		my $ok = defined $dbh->do($cmd) && !$dbh->err;
		$in_xact = $ok if $cmd eq 'BEGIN';
		$in_xact = 0 if $cmd ne 'BEGIN';
		return $ok;
	};
	my $forget = sub {
		my ($why) = @_;
		print $fh "R $_->[8] $_->[6] $why\n" for @pending;
		@pending = ();
	};

	# returns [stream, fv, lv, fp, lp, xid, tag, form, positions] or undef
	# (error left in $dbh); $wrong: with an expected version that cannot
	# match (own streams only)
	my $append = sub {
		my ($s, $wrong) = @_;
		my $tag = "c$cycle-$id-" . $seq++;
		my $r = rand();
		my $form = $r < 0.3 ? 'one' : $r < 0.65 ? 'many' : 'insert';
		my $n = $form eq 'one' ? 1 : 1 + int(rand(5));
		my $expected =
			$wrong ? $ver{$s} + 1 + int(rand(3))
		  : rand() < ($own{$s} ? 0.3 : 0.5) ? undef
		  :                                   $ver{$s};
		my @data = map { qq({"t":"$tag","i":$_}) } 0 .. $n - 1;
		my $row;
		if ($form eq 'one')
		{
			$sth{one}->execute($s, $expected, 'Tick', $data[0]) or return undef;
			$row = $sth{one}->fetchrow_arrayref or return undef;
			$row = [@$row];
			$sth{one}->finish;
		}
		elsif ($form eq 'many')
		{
			$sth{many}->execute($s, $expected, '[' . join(',',
				map { qq({"type":"Tick","data":$_}) } @data) . ']')
			  or return undef;
			$row = $sth{many}->fetchrow_arrayref or return undef;
			$row = [@$row];
			$sth{many}->finish;
		}
		else
		{
			# plain INSERT: a given version must be the next one; none: any
			my $sth = $sth{ defined $expected ? 'insert_at' : 'insert_any' };
			my $ok =
			  defined $expected
			  ? $sth->execute($s, [ map { $expected + $_ } 1 .. $n ], \@data)
			  : $sth->execute($s, \@data);
			return undef unless $ok;
			my $rows = $sth->fetchall_arrayref or return undef;
			return undef if $dbh->err || @$rows != $n;
			my @r = sort { $a->[1] <=> $b->[1] } @$rows;
			# each row takes its position when it is inserted: other
			# writers' positions may lie between them
			return [ $s, $r[0][1], $r[-1][1], $r[0][0], $r[-1][0], $r[0][2],
				$tag, $form, join(',', map { $_->[0] } @r) ];
		}
		# es_append takes one range of positions for the batch
		return [ @$row, $tag, $form, join(',', $row->[3] .. $row->[4]) ];
	};

	# a read, checked against what this client knows; 0 when it failed
	my $read = sub {
		if (rand() < 0.6)
		{
			# one stream: versions without gap, exactly those asked for on
			# an own stream (this client is its only writer)
			my $s = $all[ int(rand(@all)) ];
			my $v = $ver{$s};
			my $back = rand() < 0.5 ? 1 : 0;
			my $from = rand() < 0.3 || !$v ? undef : 1 + int(rand($v));
			my $max = rand() < 0.2 ? undef : 1 + int(rand(20));
			$sth{read_stream}->execute($s, $from, $max, $back) or return 0;
			my $rows = $sth{read_stream}->fetchall_arrayref or return 0;
			return 0 if $dbh->err;
			my @got = map { $_->[0] } @$rows;
			my $bad;
			for my $i (1 .. $#got)
			{
				$bad = 'not contiguous'
				  if $got[$i] != $got[ $i - 1 ] + ($back ? -1 : 1);
			}
			$bad = 'more than max_count' if defined $max && @got > $max;
			if ($own{$s})
			{
				my ($lo, $hi);
				if ($back)
				{
					$hi = $from // $v;
					$lo = defined $max ? $hi - $max + 1 : 1;
					$lo = 1 if $lo < 1;
				}
				else
				{
					$lo = $from // 1;
					$hi = defined $max ? $lo + $max - 1 : $v;
					$hi = $v if $hi > $v;
				}
				my @want = $lo <= $hi ? ($lo .. $hi) : ();
				@want = reverse @want if $back;
				$bad = 'versions ' . join(',', @got) . ', expected ' . join(',', @want)
				  if "@got" ne "@want";
			}
			if ($bad)
			{
				print $fh "E read es_read_stream($s, "
				  . ($from // 'NULL') . ', ' . ($max // 'NULL')
				  . ", $back) with stream version $v: $bad\n";
			}
			print $fh "Q stream\n";
			return 1;
		}
		# the feed: strictly increasing positions after the one asked for
		my ($head) =
		  $dbh->selectrow_array('SELECT event_store.es_head_position()');
		return 0 unless defined $head;
		my $after = int(rand($head + 1));
		my $max = 1 + int(rand(200));
		$sth{read_all}->execute($after, $max) or return 0;
		my $ps = $sth{read_all}->fetchall_arrayref or return 0;
		return 0 if $dbh->err;
		my @p = map { $_->[0] } @$ps;
		my $prev = $after;
		for my $p (@p)
		{
			if ($p <= $prev)
			{
				print $fh "E read es_read_all($after, $max): $p after $prev\n";
				last;
			}
			$prev = $p;
		}
		print $fh "E read es_read_all($after, $max): " . scalar(@p) . " rows\n"
		  if @p > $max;
		print $fh "Q all\n";
		return 1;
	};

	# after an error: 0 = connection gone (stop), 1 = handled.  $s: the stream
	# appended to; $expect: the error this was meant to raise ('wrong')
	my $on_error = sub {
		my ($s, $expect) = @_;
		my $state = $dbh->state // '';
		my $msg = $dbh->errstr // '';
		$msg =~ s/\s+/ /g;
		if ($dbh->pg_ping < 0)
		{
			# a transaction whose COMMIT was never sent cannot commit
			$forget->('crash') if $in_xact && !$commit_sent;
			return 0;
		}
		if ($in_xact)
		{
			$dbh->do('ROLLBACK');
			$in_xact = 0;
			$forget->(
				  $expect && $state eq 'V0001' ? 'wrong'
				: $state eq 'V0001' ? 'conflict'
				: 'error');
		}
		if ($expect && $state eq 'V0001')
		{
			print $fh "W\n";
		}
		elsif ($state eq 'V0001' && defined $s && !$own{$s})
		{
			print $fh "C $s\n";
		}
		else
		{
			print $fh "E $state $msg\n";
		}
		if (defined $s)
		{
			my ($v) = $dbh->selectrow_array(
				'SELECT event_store.es_stream_version(?)', undef, $s);
			return 0 unless defined $v;
			$ver{$s} = $v;
		}
		return 1;
	};

	while (time < $deadline)
	{
		# a stream version left unknown by a rollback: ask again
		for my $s (grep { !defined $ver{$_} } @all)
		{
			($ver{$s}) = $dbh->selectrow_array(
				'SELECT event_store.es_stream_version(?)', undef, $s);
			last unless defined $ver{$s};
		}
		last if grep { !defined $ver{$_} } @all;
		my $r = rand();
		($commit_sent, @pending) = (0);
		if ($r < 0.40)
		{
			# one autocommitted append: acknowledged when it returns
			my $s = $all[ int(rand(@all)) ];
			my $res = $append->($s);
			if (!$res) { $on_error->($s) or last; next; }
			$ver{$s} = $res->[2];
			print $fh join(' ', 'A', @$res), "\n";
		}
		elsif ($r < 0.55)
		{
			# two streams in one transaction, in name order (no deadlock)
			my ($s1, $s2) = sort { $a cmp $b }
			  ($own[ int(rand(@own)) ], $shared[ int(rand(@shared)) ]);
			$sql->('BEGIN') or do { $on_error->(undef) or last; next; };
			my $res1 = $append->($s1);
			if (!$res1) { $on_error->($s1) or last; next; }
			push @pending, $res1;
			my $res2 = $append->($s2);
			if (!$res2) { $on_error->($s2) or last; next; }
			push @pending, $res2;
			$sql->('COMMIT') or do { $on_error->(undef) or last; next; };
			$ver{$s1} = $res1->[2];
			$ver{$s2} = $res2->[2];
			print $fh join(' ', 'A', @$res1), "\n";
			print $fh join(' ', 'A', @$res2), "\n";
		}
		elsif ($r < 0.65)
		{
			# rolled back on purpose: must leave nothing behind
			my $s = $all[ int(rand(@all)) ];
			$sql->('BEGIN') or do { $on_error->(undef) or last; next; };
			my $res = $append->($s);
			if (!$res) { $on_error->($s) or last; next; }
			push @pending, $res;
			$sql->('ROLLBACK') or do { $on_error->(undef) or last; next; };
			$forget->('rollback');
		}
		elsif ($r < 0.75)
		{
			# an append, then a wrong expected version on an own stream: the
			# error rolls the whole transaction back, first append included
			my $s1 = $all[ int(rand(@all)) ];
			my $s2 = $own[ int(rand(@own)) ];
			$sql->('BEGIN') or do { $on_error->(undef) or last; next; };
			my $res1 = $append->($s1);
			if (!$res1) { $on_error->($s1) or last; next; }
			push @pending, $res1;
			$ver{$s1} = $res1->[2];    # within this transaction
			my $res2 = $append->($s2, 1);
			if (!$res2) { $on_error->($s2, 'wrong') or last; $ver{$s1} = undef; next; }
			print $fh "E wrong expected version accepted: @$res2\n";
			$sql->('ROLLBACK') or do { $on_error->(undef) or last; next; };
			push @pending, $res2;
			$forget->('rollback');
		}
		else
		{
			$read->() or do { $on_error->(undef) or last; next; };
		}
	}
	close $fh;
	return;
}

# ---------------------------------------------------------------------------
# The feed reader: follows es_read_all from its checkpoint, one page per
# transaction that records the page in seen and saves the checkpoint (with
# expected_position: nobody else moved it).  Lines of its file:
#   F after last n	a page acknowledged: events after..last, n of them
#   E sqlstate message	an unexpected error or inconsistency
# With $until_head, it stops once it has read up to es_head_position().
# ---------------------------------------------------------------------------
sub reader_main
{
	my ($file, $until_head) = @_;
	my $deadline = time + 40;
	open my $fh, '>', $file or die "open: $!";
	$fh->autoflush(1);
	my $dbh = connect_db() or do { print $fh "E connect $DBI::errstr\n"; return };
	srand($$ ^ int(time * 1000));
	my $in_xact = 0;
	my $fail = sub {
		return 0 if $dbh->pg_ping < 0;
		my $msg = ($dbh->state // '') . ' ' . ($dbh->errstr // '');
		$msg =~ s/\s+/ /g;
		print $fh "E $msg\n";
		$dbh->do('ROLLBACK') if $in_xact;
		$in_xact = 0;
		return 1;
	};
	while (time < $deadline)
	{
		my $max = 1 + int(rand(200));
		defined $dbh->do('BEGIN') or do { $fail->() or last; next };
		$in_xact = 1;
		my ($cp) = $dbh->selectrow_array(
			'SELECT event_store.es_checkpoint_get(?)', undef, $reader_name);
		defined $cp or do { $fail->() or last; next };
		my ($seen_max) =
		  $dbh->selectrow_array('SELECT coalesce(max(position), 0) FROM seen');
		defined $seen_max or do { $fail->() or last; next };
		print $fh "E checkpoint $cp but seen up to $seen_max\n"
		  if $seen_max != $cp;
		my $page = $dbh->selectcol_arrayref(
			'SELECT position FROM event_store.es_read_all(?::bigint, ?::bigint)',
			undef, $cp, $max);
		$page or do { $fail->() or last; next };
		if (!@$page)
		{
			defined $dbh->do('ROLLBACK') or last;
			$in_xact = 0;
			if ($until_head)
			{
				my ($head) = $dbh->selectrow_array(
					'SELECT event_store.es_head_position()');
				defined $head or last;
				last if $head == $cp;
			}
			# nothing readable yet: poll again
			usleep(10_000);
			next;
		}
		defined $dbh->do(
			q{INSERT INTO seen (position, seq, after_position)
			  SELECT u.p, coalesce((SELECT max(seq) FROM seen), 0) + u.o, ?::bigint
			  FROM unnest(?::bigint[]) WITH ORDINALITY AS u(p, o)},
			undef, $cp, $page) or do { $fail->() or last; next };
		defined $dbh->selectrow_array(
			'SELECT event_store.es_checkpoint_save(?, ?::bigint, ?::bigint)',
			undef, $reader_name, $page->[-1], $cp) or do { $fail->() or last; next };
		$in_xact = 0;
		# a COMMIT without an answer is in doubt: only a clean one is recorded
		last unless defined $dbh->do('COMMIT') && !$dbh->err;
		print $fh "F $cp $page->[-1] " . scalar(@$page) . "\n";
	}
	close $fh;
	return;
}

sub fork_client
{
	my ($main, @args) = @_;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		eval { $main->(@args); };
		warn "client: $@" if $@;
		# never run the END blocks of the test framework in a child
		POSIX::_exit(0);
	}
	return $pid;
}

sub count_lines
{
	my ($file, $re) = @_;
	open my $fh, '<', $file or return 0;
	my $n = grep { /$re/ } <$fh>;
	close $fh;
	return $n;
}

sub wait_clients
{
	my ($timeout, @pids) = @_;
	my %left = map { $_ => 1 } @pids;
	my $end = time + $timeout;
	while (%left && time < $end)
	{
		for my $pid (keys %left)
		{
			delete $left{$pid} if waitpid($pid, WNOHANG) != 0;
		}
		usleep(50_000) if %left;
	}
	for my $pid (keys %left)
	{
		kill 'KILL', $pid;
		waitpid($pid, 0);
	}
	return scalar(keys %left);
}

# children of a process, from /proc
sub children_of
{
	my ($ppid) = @_;
	my @kids;
	opendir my $dh, '/proc' or return;
	for my $p (grep { /^\d+$/ } readdir $dh)
	{
		open my $fh, '<', "/proc/$p/stat" or next;
		my $stat = <$fh>;
		close $fh;
		next unless defined $stat;
		# pid (comm) state ppid ...
		push @kids, $p if $stat =~ /\)\s+\S+\s+(\d+)/ && $1 == $ppid;
	}
	closedir $dh;
	return @kids;
}

sub crash
{
	my ($mode) = @_;
	if ($mode eq 'immediate')
	{
		$node->stop('immediate');
		return;
	}
	my $pm = $node->{_pid};
	# stopped first, so that it forks no child after the list is taken
	kill 'STOP', $pm if $mode eq 'kill9-all';
	my @kids = children_of($pm);
	if ($mode eq 'kill9-all')
	{
		# the whole server at once, as an OOM killer or a power cut would
		kill 'KILL', $pm, @kids;
		$node->{_pid} = undef;
	}
	else
	{
		# the postmaster alone: its children notice and exit
		$node->kill9;
	}
	# a new postmaster refuses to start while old processes are attached
	# to the shared memory: wait for them
	my $end = time + 30;
	while (time < $end && grep { kill(0, $_) } @kids)
	{
		usleep(50_000);
	}
	return;
}

sub restart_after_crash
{
	# a process forked by the old postmaster just before it died may still
	# hold its shared memory for a moment: retry the start, bounded
	for my $attempt (1 .. 10)
	{
		return if $node->start(fail_ok => 1);
		usleep(500_000);
	}
	BAIL_OUT('the node did not start again after the crash');
}

# ---------------------------------------------------------------------------
# The reader's table against the events and its checkpoint.  Returns the
# checkpoint.  seen must hold exactly the events up to the checkpoint, in
# increasing order of seq, each page starting right after the previous one.
# ---------------------------------------------------------------------------
sub check_reader_table
{
	my ($dbh, $label, $positions) = @_;
	my ($cp) = $dbh->selectrow_array(
		'SELECT event_store.es_checkpoint_get(?)', undef, $reader_name);
	my $rows = $dbh->selectall_arrayref(
		'SELECT seq, position, after_position FROM seen ORDER BY seq');
	my @bad;
	my ($prev, $prev_after) = (0, 0);
	for my $i (0 .. $#$rows)
	{
		my ($seq, $p, $after) = @{ $rows->[$i] };
		push @bad, "seq $seq at row " . ($i + 1) if $seq != $i + 1;
		push @bad, "position $p after $prev" if $p <= $prev;
		# a row continues its page, or starts one right after the last row
		push @bad, "position $p read after $after, previous row $prev (page after $prev_after)"
		  unless $after == $prev_after || $after == $prev;
		($prev, $prev_after) = ($p, $after);
		last if @bad >= 10;
	}
	is(join("\n", @bad), '',
		"$label: the reader recorded its events in strictly increasing order, page after page");
	is($prev, $cp, "$label: the reader's checkpoint is the last position it recorded");
	my @want = grep { $_ <= $cp } sort { $a <=> $b } keys %$positions;
	my %seen = map { $_->[1] => 1 } @$rows;
	my @skipped = grep { !$seen{$_} } @want;
	my @extra = grep { $_ > $cp || !$positions->{$_} } sort { $a <=> $b } keys %seen;
	is("@skipped[0 .. ($#skipped < 9 ? $#skipped : 9)]", '',
		"$label: the reader skipped no event up to its checkpoint");
	is("@extra[0 .. ($#extra < 9 ? $#extra : 9)]", '',
		"$label: the reader recorded no position that is not a stored event");
	return ($cp, scalar(@$rows));
}

# the reader's acknowledged pages: each starts where the previous ended
# (within a run) or at the checkpoint the run started from
sub check_reader_file
{
	my ($file, $label, $start_cp, $recovered_cp) = @_;
	open my $fh, '<', $file or die "open $file: $!";
	my ($pages, $events, $prev, @bad, @errors) = (0, 0, $start_cp);
	while (my $line = <$fh>)
	{
		chomp $line;
		my @f = split / /, $line;
		if ($f[0] eq 'F')
		{
			$pages++;
			$events += $f[3];
			push @bad, "page after $f[1] to $f[2], the previous ended at $prev"
			  if $f[1] != $prev || $f[2] <= $f[1];
			$prev = $f[2];
		}
		else
		{
			push @errors, $line;
		}
	}
	close $fh;
	is(join("\n", @errors), '', "$label: no error in the feed reader");
	is(join("\n", @bad[ 0 .. ($#bad < 9 ? $#bad : 9) ]), '',
		"$label: the reader resumed from its checkpoint, each page right after the previous one");
	cmp_ok($prev, '<=', $recovered_cp,
		"$label: every page the reader committed is still checkpointed");
	return ($pages, $events);
}

# ---------------------------------------------------------------------------
# Checks after a restart
# ---------------------------------------------------------------------------
my @ack_files;
my $max_acked_position = 0;
my $floor_position = 0;    # the highest position stored before this cycle
my $reader_cp = 0;         # the reader's checkpoint at the start of the cycle
my %total;

sub check_after_restart
{
	my ($cycle, $mode) = @_;
	my $dbh = connect_db() or BAIL_OUT("cannot connect: $DBI::errstr");

	my %events;    # stream -> version -> [position, tag, i]
	my %position;  # position -> 1
	my %tag;       # tag -> 1
	my $max_position = 0;
	my $rows = $dbh->selectall_arrayref(
		q{SELECT stream, version, position, data->>'t', (data->>'i')::int
		  FROM event_store.events});
	for my $r (@$rows)
	{
		$events{ $r->[0] }{ $r->[1] } = [ $r->[2], $r->[3], $r->[4] ];
		$position{ $r->[2] } = 1;
		$tag{ $r->[3] } = 1 if defined $r->[3];
		$max_position = $r->[2] if $r->[2] > $max_position;
	}

	# every acknowledged append is there, event by event
	my ($appends, $acked_events, $missing, $wrong, $below) = (0, 0, 0, 0, 0);
	my ($rollbacks, $rolled_back_found, $conflicts, $refused, $reads) = (0, 0, 0, 0, 0);
	my $total_conflicts = 0;
	my (%form, %why, %form_cycle, %why_cycle, @unexpected);
	for my $file (@ack_files)
	{
		my $this_cycle = $file =~ /acks-$cycle-\d+$/;
		open my $fh, '<', $file or die "open $file: $!";
		while (my $line = <$fh>)
		{
			chomp $line;
			my @f = split / /, $line;
			if ($f[0] eq 'A')
			{
				my ($s, $fv, $lv, $fp, $lp, $xid, $tag, $form, $ps) = @f[ 1 .. 9 ];
				my @ps = split /,/, $ps;
				$appends++;
				$form{$form}++;
				$form_cycle{$form}++ if $this_cycle;
				$max_acked_position = $lp if $lp > $max_acked_position;
				# positions continue above everything stored before the cycle
				$below++ if $this_cycle && $fp <= $floor_position;
				for my $v ($fv .. $lv)
				{
					$acked_events++;
					my $e = $events{$s}{$v};
					if (!$e)
					{
						if ($missing++ < 10)
						{
							my ($st) = $dbh->selectrow_array(
								'SELECT txid_status(?)', undef, $xid);
							diag "missing acknowledged event $s/$v ($tag, "
							  . "transaction $xid: " . ($st // 'unknown') . ')';
						}
						next;
					}
					my $ok = $e->[1] eq $tag && $e->[2] == $v - $fv
					  && @ps == $lv - $fv + 1
					  && $e->[0] == $ps[ $v - $fv ]
					  && $ps[0] == $fp && $ps[-1] == $lp;
					if (!$ok)
					{
						diag "acknowledged event $s/$v ($tag, positions $ps) "
						  . "found as position $e->[0] tag $e->[1] i $e->[2]"
						  if $wrong++ < 10;
					}
				}
			}
			elsif ($f[0] eq 'R')
			{
				my ($ps, $tag, $why) = @f[ 1 .. 3 ];
				$rollbacks++;
				$why{$why}++;
				$why_cycle{$why}++ if $this_cycle;
				# no event of it, in any cycle
				if ($tag{$tag})
				{
					diag "rolled back ($why) append $tag is stored"
					  if $rolled_back_found < 10;
					$rolled_back_found++;
				}
				# positions of a rollback may be reused after a restart, so
				# only this cycle's rollbacks are checked, before new appends
				if ($this_cycle)
				{
					for my $p (split /,/, $ps)
					{
						next unless $position{$p};
						diag "position $p of a rolled back ($why) append $tag is stored"
						  if $rolled_back_found < 10;
						$rolled_back_found++;
					}
				}
			}
			elsif ($f[0] eq 'W') { $refused++; }
			elsif ($f[0] eq 'Q') { $reads++; }
			elsif ($f[0] eq 'C')
			{
				$total_conflicts++;
				$conflicts++ if $this_cycle;
			}
			elsif ($f[0] eq 'E' && $this_cycle)
			{
				push @unexpected, $line;
			}
		}
		close $fh;
	}
	%total = (
		appends => $appends,
		events => $acked_events,
		form => \%form,
		rollbacks => $rollbacks,
		why => \%why,
		refused => $refused,
		conflicts => $total_conflicts,
		reads => $reads);
	note "acknowledged: cycle $cycle ($mode): $appends appends, "
	  . "$acked_events events so far; $rollbacks rollbacks, $refused wrong "
	  . "expected versions refused, $reads reads so far; $conflicts conflicts "
	  . 'in this cycle; ' . scalar(keys %position) . ' events stored';
	ok($appends > 0, "cycle $cycle: the clients had appends acknowledged");
	ok(($form_cycle{one} // 0) && ($form_cycle{many} // 0) && ($form_cycle{insert} // 0),
		"cycle $cycle: ... through both forms of es_append and plain INSERT");
	is($missing, 0, "cycle $cycle ($mode): every acknowledged event survived");
	is($wrong, 0,
		"cycle $cycle: every acknowledged event is at its version and position, with its data");
	is($below, 0,
		"cycle $cycle: every append of the cycle got positions above those stored before it");
	ok(($why_cycle{rollback} // 0) && ($why_cycle{wrong} // 0),
		"cycle $cycle: some transactions were rolled back, on purpose and by a wrong expected version");
	is($rolled_back_found, 0,
		"cycle $cycle: nothing of the rolled back appends is stored");
	ok($reads > 0, "cycle $cycle: the clients read");
	is(scalar(@unexpected), 0,
		"cycle $cycle: no unexpected error or wrong read while the server was up")
	  or diag(join("\n", @unexpected[ 0 .. ($#unexpected < 9 ? $#unexpected : 9) ]));

	# per stream: versions 1..N, no gap, no duplicate
	my @bad;
	for my $s (sort keys %events)
	{
		my @v = sort { $a <=> $b } keys %{ $events{$s} };
		push @bad, "$s: " . scalar(@v) . " events, versions $v[0]..$v[-1]"
		  unless $v[0] == 1 && $v[-1] == scalar(@v);
		# within a stream, positions follow versions
		for my $i (1 .. $#v)
		{
			if ($events{$s}{ $v[$i] }[0] <= $events{$s}{ $v[ $i - 1 ] }[0])
			{
				push @bad, "$s: position of version $v[$i] not above version $v[$i-1]";
				last;
			}
		}
	}
	is(join("\n", @bad), '', "cycle $cycle: every stream is numbered 1..N");

	# the streams table agrees with the events
	my $mismatch = $dbh->selectcol_arrayref(
		q{SELECT coalesce(s.name, e.stream) || ': streams.version ' ||
				 coalesce(s.version::text, 'absent') || ', max version ' ||
				 coalesce(e.max_version::text, 'none')
		  FROM event_store.streams s
		  FULL JOIN (SELECT stream, max(version) AS max_version
					 FROM event_store.events GROUP BY stream) e
			ON e.stream = s.name
		  WHERE s.version IS DISTINCT FROM coalesce(e.max_version, 0)});
	is(join("\n", @$mismatch), '',
		"cycle $cycle: streams.version equals the highest version of each stream");

	# the register starts again from the stored events
	my ($head) = $dbh->selectrow_array('SELECT event_store.es_head_position()');
	is($head, $max_position,
		"cycle $cycle: es_head_position() is the highest stored position after the restart");

	# the feed reader: its table and checkpoint survived together
	my ($cp) = check_reader_table($dbh, "cycle $cycle", \%position);
	my ($pages, $events) = check_reader_file("$ackdir/reader-$cycle",
		"cycle $cycle", $reader_cp, $cp);
	ok($pages > 0, "cycle $cycle: the feed reader committed pages ($events events)");
	$reader_cp = $cp;

	# new appends continue above every old position
	my $res = $dbh->selectrow_hashref(
		q{SELECT * FROM event_store.es_append('probe-' || ?::text, 0, 'Probe', '{}')},
		undef, $cycle);
	ok($res, "cycle $cycle: appending works after the restart")
	  or diag($dbh->errstr);
	$res //= { first_position => 0, last_position => 0, last_version => 0 };
	cmp_ok($res->{first_position}, '>', $max_position,
		"cycle $cycle: a new append gets a position above every stored one");
	cmp_ok($res->{first_position}, '>', $max_acked_position,
		"cycle $cycle: ... and above every acknowledged one");
	is($res->{last_version}, 1, "cycle $cycle: the new stream starts at version 1");
	$floor_position = $res->{last_position};
	my ($read) = $dbh->selectrow_array(
		q{SELECT string_agg(type || '@' || version, ',')
		  FROM event_store.es_read_stream('probe-' || ?::text)}, undef, $cycle);
	is($read, 'Probe@1', "cycle $cycle: es_read_stream reads it back");

	# the notifier is started again by that commit
	ok( $node->poll_query_until(
			'postgres',
			q{SELECT count(*) FROM pg_stat_activity
			  WHERE backend_type = 'event_store notifier' AND datname = 'postgres'},
			'1'),
		"cycle $cycle: the notifier runs again after the first append");

	$dbh->disconnect;
	return;
}

# ---------------------------------------------------------------------------
# The cycles
# ---------------------------------------------------------------------------
my $cycles = scalar(@crash_modes);
for my $cycle (1 .. $cycles)
{
	my $mode = $crash_modes[ $cycle - 1 ];
	my @pids = map { fork_client(\&client_main, $cycle, $_) } 1 .. $nclients;
	push @pids, fork_client(\&reader_main, "$ackdir/reader-$cycle", 0);
	push @ack_files, map { "$ackdir/acks-$cycle-$_" } 1 .. $nclients;

	# let the clients work until each writer has had some appends
	# acknowledged and the reader some pages (at least a second and a half,
	# at most 20 s), then crash in the middle of it
	my $t0 = time;
	my $end = $t0 + 20;
	while (time < $end)
	{
		my @n = map { count_lines("$ackdir/acks-$cycle-$_", qr/^A /) } 1 .. $nclients;
		my $pages = count_lines("$ackdir/reader-$cycle", qr/^F /);
		last if time - $t0 >= 1.5 && !grep { $_ < 20 } @n, $pages;
		usleep(100_000);
	}

	my $alive = grep { waitpid($_, WNOHANG) == 0 } @pids;
	is($alive, $nclients + 1,
		"cycle $cycle: all writers and the feed reader still running at the crash");

	crash($mode);
	my $killed = wait_clients(20, @pids);
	is($killed, 0, "cycle $cycle: the clients stopped when their connections died");

	restart_after_crash();
	check_after_restart($cycle, $mode);
}

# a clean shutdown and start keeps everything too
$node->restart;
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM event_store.events e
					  JOIN event_store.streams s ON s.name = e.stream
					  WHERE e.version > s.version}),
	'0',
	'after a clean restart, no event is above its stream version');

# the reader resumes once more and catches up to the head: then it has
# recorded every event exactly once
my $final = "$ackdir/reader-final";
is(wait_clients(60, fork_client(\&reader_main, $final, 1)), 0,
	'the feed reader catches up to the head');
my $dbh = connect_db() or BAIL_OUT("cannot connect: $DBI::errstr");
my %position = map { $_ => 1 }
  @{ $dbh->selectcol_arrayref('SELECT position FROM event_store.events') };
my ($head) = $dbh->selectrow_array('SELECT event_store.es_head_position()');
my ($cp, $followed) = check_reader_table($dbh, 'at the end', \%position);
is($cp, $head, 'at the end: the reader has read up to the head');
check_reader_file($final, 'at the end', $reader_cp, $cp);
is( $dbh->selectrow_array(
		q{SELECT count(*) FROM event_store.events e
		  FULL JOIN seen s USING (position)
		  WHERE e.position IS NULL OR s.position IS NULL}),
	0,
	'at the end: seen holds exactly the positions of the events');
$dbh->disconnect;

my %form = %{ $total{form} };
my %why = %{ $total{why} };
note sprintf(
	'summary: %d acknowledged appends (%d events; %d single-event es_append, '
	  . '%d JSON batch, %d plain INSERT), %d rollbacks (%d on purpose, '
	  . '%d by a wrong expected version, %d by a conflict, %d cut by the crash), '
	  . '%d conflicts, %d reads, %d events followed by the reader, %d cycles, %.1f s',
	$total{appends}, $total{events}, $form{one} // 0, $form{many} // 0,
	$form{insert} // 0, $total{rollbacks}, $why{rollback} // 0,
	$why{wrong} // 0, $why{conflict} // 0, $why{crash} // 0,
	$total{conflicts}, $total{reads},
	$followed, $cycles, time - $started);
note sprintf('took %.1f s', time - $started);
$node->stop;
done_testing();
