# Durability (guarantee 5) and per-stream order (guarantee 1) across crashes.
#
# Several client processes append concurrently, each writing every append the
# server acknowledged to its own file, flushed after each acknowledgement.
# The server is then crashed (immediate shutdown, kill -9 of the postmaster,
# kill -9 of the postmaster and all its children) and restarted, and every
# acknowledged event must be there, at its version and position; streams
# must be numbered 1..N without gaps; the streams table must agree with the
# events; positions must continue above every stored one; and the extension
# (notifier included) must work again.
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
my @crash_modes = ('immediate', 'kill9', 'kill9-all');
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
# The client: runs in a forked process, appends until its connection dies
# (the crash) or the safety deadline passes.  Lines of its file:
#   A stream first_version last_version first_position last_position xid tag
#			an acknowledged append (written after COMMIT returned)
#   R first_position last_position	positions of an append rolled back on purpose
#   C stream						a wrong-expected-version conflict (expected on
#									shared streams)
#   E sqlstate message				an error while the server was up
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
	# version must always match.  Shared streams see conflicts.
	my @own    = map { "own$id-$_" } 0 .. 2;
	my @shared = map { "shared-$_" } 0 .. 3;
	my %own    = map { $_ => 1 } @own;
	my %ver;
	for my $s (@own, @shared)
	{
		my ($v) = $dbh->selectrow_array(
			'SELECT event_store.es_stream_version(?)', undef, $s);
		return unless defined $v;
		$ver{$s} = $v;
	}
	my $one = $dbh->prepare(
		'SELECT *, txid_current() FROM event_store.es_append($1::text, $2::bigint, $3::text, $4::jsonb)');
	my $many = $dbh->prepare(
		'SELECT *, txid_current() FROM event_store.es_append($1::text, $2::bigint, $3::jsonb)');
	my $seq = 0;
	# explicit BEGIN/COMMIT through do(): DBI's commit() of DBD::Pg 3.16 can
	# return true when the connection died before the COMMIT got through
	my $in_xact = 0;
	my $xact = sub {
		my ($cmd) = @_;
		my $ok = defined $dbh->do($cmd) && !$dbh->err;
		$in_xact = $cmd eq 'BEGIN' ? $ok : 0;
		return $ok;
	};

	# returns [stream, fv, lv, fp, lp, xid, tag] or undef (error left in $dbh)
	my $append = sub {
		my ($s) = @_;
		my $n = 1 + int(rand(5));
		my $tag = "c$cycle-$id-" . $seq++;
		my $expected;
		if ($own{$s}) { $expected = rand() < 0.3 ? undef : $ver{$s} }
		else { $expected = rand() < 0.5 ? undef : $ver{$s} }
		my $sth;
		if ($n == 1 && rand() < 0.5)
		{
			$sth = $one;
			$sth->execute($s, $expected, 'Tick', qq({"t":"$tag","i":0}))
			  or return undef;
		}
		else
		{
			$sth = $many;
			my $events = '['
			  . join(',',
				map { qq({"type":"Tick","data":{"t":"$tag","i":$_}}) }
				  0 .. $n - 1) . ']';
			$sth->execute($s, $expected, $events) or return undef;
		}
		my $row = $sth->fetchrow_arrayref or return undef;
		$sth->finish;
		return [ @$row, $tag ];
	};

	# classify an error: 0 = connection gone (stop), 1 = handled
	my $on_error = sub {
		my ($s) = @_;
		my $state = $dbh->state // '';
		my $msg = $dbh->errstr // '';
		$msg =~ s/\s+/ /g;
		return 0 if $dbh->pg_ping < 0;
		if ($in_xact)
		{
			$dbh->do('ROLLBACK');
			$in_xact = 0;
		}
		if ($state eq 'V0001' && defined $s && !$own{$s})
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
		my $r = rand();
		my @all = (@own, @shared);
		if ($r < 0.65)
		{
			# one autocommitted append: acknowledged when it returns
			my $s = $all[ int(rand(@all)) ];
			my $res = $append->($s);
			if (!$res) { $on_error->($s) or last; next; }
			$ver{$s} = $res->[2];
			print $fh join(' ', 'A', @$res), "\n";
		}
		elsif ($r < 0.85)
		{
			# two streams in one transaction, in name order (no deadlock)
			my ($s1, $s2) = sort { $a cmp $b }
			  ($own[ int(rand(@own)) ], $shared[ int(rand(@shared)) ]);
			$xact->('BEGIN') or do { $on_error->(undef) or last; next; };
			my $res1 = $append->($s1);
			if (!$res1) { $on_error->($s1) or last; next; }
			my $res2 = $append->($s2);
			if (!$res2) { $on_error->($s2) or last; next; }
			$xact->('COMMIT') or do { $on_error->(undef) or last; next; };
			$ver{$s1} = $res1->[2];
			$ver{$s2} = $res2->[2];
			print $fh join(' ', 'A', @$res1), "\n";
			print $fh join(' ', 'A', @$res2), "\n";
		}
		else
		{
			# rolled back on purpose: must leave nothing behind
			my $s = $all[ int(rand(@all)) ];
			$xact->('BEGIN') or do { $on_error->(undef) or last; next; };
			my $res = $append->($s);
			if (!$res) { $on_error->($s) or last; next; }
			$xact->('ROLLBACK') or do { $on_error->(undef) or last; next; };
			print $fh "R $res->[3] $res->[4]\n";
		}
	}
	close $fh;
	return;
}

sub start_clients
{
	my ($cycle) = @_;
	my @pids;
	for my $id (1 .. $nclients)
	{
		my $pid = fork();
		die "fork: $!" unless defined $pid;
		if ($pid == 0)
		{
			eval { client_main($cycle, $id); };
			warn "client $id: $@" if $@;
			# never run the END blocks of the test framework in a child
			POSIX::_exit(0);
		}
		push @pids, $pid;
	}
	return @pids;
}

sub count_acks
{
	my ($file) = @_;
	open my $fh, '<', $file or return 0;
	my $n = grep { /^A / } <$fh>;
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
# Checks after a restart
# ---------------------------------------------------------------------------
my @ack_files;
my $max_acked_position = 0;

sub check_after_restart
{
	my ($cycle, $mode) = @_;
	my $dbh = connect_db() or BAIL_OUT("cannot connect: $DBI::errstr");

	my %events;    # stream -> version -> [position, tag, i]
	my %position;  # position -> 1
	my $max_position = 0;
	my $rows = $dbh->selectall_arrayref(
		q{SELECT stream, version, position, data->>'t', (data->>'i')::int
		  FROM event_store.events});
	for my $r (@$rows)
	{
		$events{ $r->[0] }{ $r->[1] } = [ $r->[2], $r->[3], $r->[4] ];
		$position{ $r->[2] } = 1;
		$max_position = $r->[2] if $r->[2] > $max_position;
	}

	# every acknowledged append is there, event by event
	my ($appends, $acked_events, $missing, $wrong) = (0, 0, 0, 0);
	my ($rollbacks, $rolled_back_found, $conflicts, @unexpected) = (0, 0, 0);
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
				my ($s, $fv, $lv, $fp, $lp, $xid, $tag) = @f[ 1 .. 7 ];
				$appends++;
				$max_acked_position = $lp if $lp > $max_acked_position;
				my $prev = 0;
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
					  && $e->[0] > $prev
					  && $e->[0] >= $fp && $e->[0] <= $lp;
					$ok &&= $e->[0] == $fp if $v == $fv;
					$ok &&= $e->[0] == $lp if $v == $lv;
					if (!$ok)
					{
						diag "acknowledged event $s/$v ($tag, positions $fp..$lp) "
						  . "found as position $e->[0] tag $e->[1] i $e->[2]"
						  if $wrong++ < 10;
					}
					$prev = $e->[0];
				}
			}
			elsif ($f[0] eq 'R' && $this_cycle)
			{
				# positions of a rollback may be reused after a restart, so
				# only this cycle's rollbacks are checked, before new appends
				$rollbacks++;
				for my $p ($f[1] .. $f[2])
				{
					$rolled_back_found++ if $position{$p};
				}
			}
			elsif ($f[0] eq 'C')
			{
				$conflicts++ if $this_cycle;
			}
			elsif ($f[0] eq 'E' && $this_cycle)
			{
				push @unexpected, $line;
			}
		}
		close $fh;
	}
	note "acknowledged: cycle $cycle ($mode): $appends appends, "
	  . "$acked_events events so far; $rollbacks rollbacks and "
	  . "$conflicts conflicts in this cycle; "
	  . scalar(keys %position) . ' events stored';
	ok($appends > 0, "cycle $cycle: the clients had appends acknowledged");
	is($missing, 0, "cycle $cycle ($mode): every acknowledged event survived");
	is($wrong, 0,
		"cycle $cycle: every acknowledged event is at its version and position, with its data");
	ok($rollbacks > 0, "cycle $cycle: some transactions were rolled back");
	is($rolled_back_found, 0,
		"cycle $cycle: nothing of the rolled back appends is stored");
	is(scalar(@unexpected), 0,
		"cycle $cycle: no unexpected error while the server was up")
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

	# new appends continue above every old position
	my $res = $dbh->selectrow_hashref(
		q{SELECT * FROM event_store.es_append('probe-' || ?::text, 0, 'Probe', '{}')},
		undef, $cycle);
	ok($res, "cycle $cycle: appending works after the restart")
	  or diag($dbh->errstr);
	$res //= { first_position => 0, last_version => 0 };
	cmp_ok($res->{first_position}, '>', $max_position,
		"cycle $cycle: a new append gets a position above every stored one");
	cmp_ok($res->{first_position}, '>', $max_acked_position,
		"cycle $cycle: ... and above every acknowledged one");
	is($res->{last_version}, 1, "cycle $cycle: the new stream starts at version 1");
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
# A feed reader that checkpoints as it goes: it reads before each crash and
# after each restart, from its checkpoint; in the end it must have read every
# stored event exactly once.
# ---------------------------------------------------------------------------
my %feed_seen;
my $feed_repeats = 0;
sub feed_catch_up
{
	my $dbh = connect_db();
	my ($cp) = $dbh->selectrow_array(q{SELECT event_store.es_checkpoint_get('crash_reader')});
	my $pages = 0;
	while (1)
	{
		my $rows = $dbh->selectcol_arrayref(
			q{SELECT position FROM event_store.es_read_all(?::bigint, 1000)}, undef, $cp);
		last unless @$rows;
		for my $p (@$rows)
		{
			$feed_repeats++ if $feed_seen{$p}++;
		}
		$cp = $rows->[-1];
		$dbh->do(q{SELECT event_store.es_checkpoint_save('crash_reader', ?::bigint)}, undef, $cp);
		$pages++;
	}
	$dbh->disconnect;
	return $pages;
}

# ---------------------------------------------------------------------------
# The cycles
# ---------------------------------------------------------------------------
for my $cycle (1 .. scalar(@crash_modes))
{
	my $mode = $crash_modes[ $cycle - 1 ];
	my @pids = start_clients($cycle);
	push @ack_files, map { "$ackdir/acks-$cycle-$_" } 1 .. $nclients;

	# let the clients work until each has had some appends acknowledged
	# (at least a second, at most 20 s), then crash in the middle of it
	my $t0 = time;
	my $end = $t0 + 20;
	while (time < $end)
	{
		my @n = map { count_acks("$ackdir/acks-$cycle-$_") } 1 .. $nclients;
		last if time - $t0 >= 1.5 && !grep { $_ < 20 } @n;
		usleep(100_000);
	}
	# the reader catches up while the clients append, and checkpoints
	ok(feed_catch_up() > 0, "cycle $cycle: the feed reader read before the crash");

	my $alive = grep { waitpid($_, WNOHANG) == 0 } @pids;
	is($alive, $nclients, "cycle $cycle: all clients still appending at the crash");

	crash($mode);
	my $killed = wait_clients(20, @pids);
	is($killed, 0, "cycle $cycle: the clients stopped when their connections died");

	restart_after_crash();
	check_after_restart($cycle, $mode);

	# after the restart the reader resumes from its checkpoint
	feed_catch_up();
	my $stored = $node->safe_psql('postgres',
		'SELECT string_agg(position::text, \',\' ORDER BY position) FROM event_store.events');
	is(join(',', sort { $a <=> $b } keys %feed_seen), $stored,
		"cycle $cycle: resuming from its checkpoint, the feed reader has read every stored event");
	is($feed_repeats, 0, "cycle $cycle: ... and none twice");
}

# a clean shutdown and start keeps everything too
$node->restart;
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM event_store.events e
					  JOIN event_store.streams s ON s.name = e.stream
					  WHERE e.version > s.version}),
	'0',
	'after a clean restart, no event is above its stream version');

note sprintf('took %.1f s', time - $started);
$node->stop;
done_testing();
