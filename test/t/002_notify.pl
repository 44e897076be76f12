# Fan-out: the notifier background worker wakes listeners of "es_events"
# after commits that append, never for a rollback alone, coalesces bursts,
# is started on demand after a restart, and does not stand in the way of
# DROP DATABASE.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DBI;
use DBD::Pg;
use IO::Handle;
use IO::Select;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time usleep);

my $started = time;
my $json = JSON::PP->new;

my $node = PostgreSQL::Test::Cluster->new('notify');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'event_store'
max_connections = 40
log_statement = ddl
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION event_store');

sub connect_db
{
	my ($dbname) = @_;
	return DBI->connect(
		"dbi:Pg:dbname=$dbname;host=" . $node->host . ';port=' . $node->port,
		'', '',
		{
			AutoCommit => 1,
			RaiseError => 1,
			PrintError => 0,
			AutoInactiveDestroy => 1
		});
}

# Wait up to $timeout seconds for a notification on $dbh, on its socket.
# Returns { channel, pid, payload, head, categories, at } or undef.
sub wait_notification
{
	my ($dbh, $timeout) = @_;
	my $end = time + $timeout;
	my $sel = IO::Select->new($dbh->{pg_socket});
	while (1)
	{
		if (my $n = $dbh->pg_notifies)
		{
			my $at = time;
			my $p = eval { $json->decode($n->[2]) } // {};
			return {
				channel => $n->[0],
				pid => $n->[1],
				payload => $n->[2],
				head => $p->{head},
				categories => $p->{categories},
				at => $at
			};
		}
		my $left = $end - time;
		return undef if $left <= 0;
		$sel->can_read($left);
	}
}

# Every notification already delivered, without waiting.
sub drain
{
	my ($dbh) = @_;
	my @got;
	$dbh->ping;		# a round trip reads what the server has sent
	while (my $n = wait_notification($dbh, 0)) { push @got, $n }
	return @got;
}

sub append_one
{
	my ($dbh, $stream, $expected) = @_;
	return $dbh->selectrow_hashref(
		q{SELECT * FROM event_store.es_append(?::text, ?::bigint, 'Woken', '{"x":1}')},
		undef, $stream, $expected);
}

sub notifier_pids
{
	my ($dbname) = @_;
	return $node->safe_psql(
		'postgres', qq{SELECT string_agg(pid::text, ',') FROM pg_stat_activity
		  WHERE backend_type = 'event_store notifier' AND datname = '$dbname'});
}

sub ms { return sprintf('%.2f', $_[0] * 1000) }

sub has_category
{
	my ($n, $cat) = @_;
	return ref($n->{categories}) eq 'ARRAY'
	  && grep { $_ eq $cat } @{ $n->{categories} };
}

my $listener = connect_db('postgres');
my $appender = connect_db('postgres');
$listener->do('LISTEN es_events');

# ---------------------------------------------------------------------------
# (a) a commit wakes the listener; latency from COMMIT returning
# ---------------------------------------------------------------------------
is(notifier_pids('postgres'), '', 'no notifier before the first append');

my $res = append_one($appender, 'wake-0', 0);
my $t_commit = time;
my $n = wait_notification($listener, 5);
ok($n, '(a) the first commit that appends wakes the listener (worker started on demand)');
if ($n)
{
	note 'wake (cold, includes starting the worker): ' . ms($n->{at} - $t_commit) . ' ms';
	is($n->{channel}, 'es_events', '(a) on channel es_events');
	is($n->{head}, $res->{last_position}, '(a) head is the appended position');
	ok(has_category($n, 'wake'), '(a) categories name the category')
	  or diag("payload: $n->{payload}");
}

my $notifier = notifier_pids('postgres');
like($notifier, qr/^\d+$/, '(a) one notifier runs for the database');

# Two series: back to back (each commit right after the previous
# notification, so the notifier first waits out notify_min_interval), and
# spaced (each commit 20 ms after the previous notification, longer than the
# default interval of 10 ms: the latency of the wake-up itself).  The 20 ms
# are spent waiting on the listener's socket, where nothing must arrive.
my @bad;
my %lat = (back_to_back => [], spaced => []);
my $rounds = 25;
my $round = 0;
for my $series ('back_to_back', 'spaced')
{
	for my $i (1 .. $rounds)
	{
		$round++;
		my @stale = drain($listener);
		if ($series eq 'spaced')
		{
			my $early = wait_notification($listener, 0.02);
			push @stale, $early if $early;
		}
		push @bad, "round $round: unexpected notification(s) "
		  . join(' ', map { $_->{payload} } @stale)
		  if @stale;
		$appender->begin_work;
		my $r = append_one($appender, "wake-$round", 0);
		$appender->commit;
		my $tc = time;
		my $w = wait_notification($listener, 5);
		if (!$w)
		{
			push @bad, "round $round: no notification within 5 s";
			next;
		}
		push @{ $lat{$series} }, $w->{at} - $tc;
		push @bad, "round $round: head $w->{head}, expected $r->{last_position}"
		  unless defined $w->{head} && $w->{head} == $r->{last_position};
		push @bad, "round $round: categories $w->{payload}"
		  unless has_category($w, 'wake') && @{ $w->{categories} } == 1;
		push @bad, "round $round: sent by pid $w->{pid}, not the notifier $notifier"
		  unless $w->{pid} == $notifier;
	}
}
is(join("\n", @bad), '',
	'(a) each of ' . (2 * $rounds) . ' commits woke the listener within 5 s, once, '
	  . 'from the notifier, with the committed head and category');
isnt($notifier, $appender->{pg_pid}, '(a) the appending session does not notify itself');
for my $series ('back_to_back', 'spaced')
{
	my @s = sort { $a <=> $b } @{ $lat{$series} };
	next unless @s;
	note sprintf('wake (%s): %d commits, from COMMIT returning to the notification: '
		  . 'min %s ms, median %s ms, p90 %s ms, max %s ms',
		$series eq 'spaced' ? 'spaced 20 ms' : 'back to back',
		scalar(@s), ms($s[0]), ms($s[ int($#s / 2) ]), ms($s[ int($#s * 0.9) ]),
		ms($s[-1]));
}

# several categories in one transaction
drain($listener);
$appender->begin_work;
append_one($appender, 'order-1', 0);
my $last = append_one($appender, 'payment-1', 0);
$appender->commit;
$n = wait_notification($listener, 5);
ok($n, '(a) a transaction appending to two categories wakes the listener');
if ($n)
{
	is($n->{head}, $last->{last_position}, '(a) ... with the newest position as head');
	is(join(',', sort @{ $n->{categories} // [] }), 'order,payment',
		'(a) ... and both categories');
}

# ---------------------------------------------------------------------------
# (b) a rollback alone sends nothing
# ---------------------------------------------------------------------------
drain($listener);
$appender->begin_work;
my $rolled = append_one($appender, 'rollback-1', 0);
$appender->rollback;
$n = wait_notification($listener, 0.5);
ok(!$n, '(b) a rollback alone sends no notification')
  or diag("got: $n->{payload}");

$res = append_one($appender, 'rollback-1', 0);
cmp_ok($res->{last_position}, '>', $rolled->{last_position},
	'(b) the next append takes a new position');
$n = wait_notification($listener, 5);
ok($n, '(b) the commit after it wakes the listener');
is($n && $n->{head}, $res->{last_position}, '(b) ... with the committed head');

# A commit hidden behind an open appending transaction is not readable yet
# (the feed is gap-safe), so it is announced only when that one ends.
drain($listener);
my $holder = connect_db('postgres');
$holder->begin_work;
my $held = append_one($holder, 'held-1', 0);
$res = append_one($appender, 'behind-1', 0);
cmp_ok($res->{first_position}, '>', $held->{last_position},
	'(b) a later commit gets a position above the open transaction\'s');
$n = wait_notification($listener, 0.5);
ok(!$n,
	'(b) no notification announces a head above a position still in flight')
  or diag("got: $n->{payload}");
$holder->rollback;
$n = wait_notification($listener, 5);
ok($n, '(b) the end of the open transaction (a rollback) announces the commit behind it');
is($n && $n->{head}, $res->{last_position}, '(b) ... with that commit as head');
ok($n && has_category($n, 'behind') && !has_category($n, 'held'),
	'(b) ... and only its category')
  or diag('payload: ' . ($n ? $n->{payload} : 'none'));
$holder->disconnect;

# ---------------------------------------------------------------------------
# (c) a burst is coalesced, and reading up to each notified head sees every
# event exactly once
# ---------------------------------------------------------------------------
drain($listener);
my ($checkpoint) = $listener->selectrow_array('SELECT event_store.es_head_position()');
my $nsessions = 4;
my $per_session = 250;
my $commits = $nsessions * $per_session;
my $ackdir = PostgreSQL::Test::Utils::tempdir();

my @pids;
for my $s (1 .. $nsessions)
{
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		eval {
			open my $fh, '>', "$ackdir/burst-$s" or die "open: $!";
			$fh->autoflush(1);
			my $dbh = connect_db('postgres');
			my $sth = $dbh->prepare(
				q{SELECT last_position FROM
				  event_store.es_append($1::text, NULL, 'Burst', '{}')});
			for my $i (1 .. $per_session)
			{
				$sth->execute("burst-$s-" . ($i % 5));
				my ($p) = $sth->fetchrow_array;
				print $fh "$p\n";
			}
			$dbh->disconnect;
			close $fh;
		};
		warn "burst session $s: $@" if $@;
		POSIX::_exit($@ ? 1 : 0);
	}
	push @pids, $pid;
}

my $reader = $listener->prepare(
	q{SELECT position FROM event_store.events
	  WHERE position > $1 AND position <= $2 ORDER BY position});
my (@seen, @heads, @notes);
my %running = map { $_ => 1 } @pids;
my $burst_ok = 1;
my $final;
my $burst_start = time;
my $deadline = $burst_start + 60;
while (time < $deadline)
{
	for my $pid (keys %running)
	{
		my $r = waitpid($pid, WNOHANG);
		next if $r == 0;
		$burst_ok = 0 if $? != 0;
		delete $running{$pid};
	}
	if (!%running && !defined $final)
	{
		($final) = $listener->selectrow_array('SELECT max(position) FROM event_store.events');
	}
	last if defined $final && $checkpoint >= $final;
	my $w = wait_notification($listener, defined $final ? 5 : 0.05);
	if (!$w)
	{
		last if defined $final;    # the newest event was never announced
		next;
	}
	my $head = $w->{head} // 0;
	push @notes, $w;
	push @heads, $head;
	# the notification is a wake-up, the feed is the truth
	$reader->execute($checkpoint, $head);
	while (my ($p) = $reader->fetchrow_array) { push @seen, $p }
	$checkpoint = $head if $head > $checkpoint;
}
my $burst_time = time - $burst_start;
ok($burst_ok && !%running, '(c) the burst sessions completed');

my %acked;
for my $s (1 .. $nsessions)
{
	open my $fh, '<', "$ackdir/burst-$s" or next;
	while (my $p = <$fh>) { chomp $p; $acked{$p}++ }
	close $fh;
}
is(scalar(keys %acked), $commits, "(c) $commits single-event appends were acknowledged");
note sprintf('notifications: %d for %d commits (%.2f s)', scalar(@notes), $commits, $burst_time);
cmp_ok(scalar(@notes), '<', $commits / 5, '(c) the burst was coalesced');
ok(defined $final && @heads && $heads[-1] == $final,
	'(c) the last notification announces the newest event')
  or diag('final ' . ($final // 'undef') . ', last head ' . ($heads[-1] // 'none'));
my @nonincreasing = grep { $heads[$_] <= $heads[ $_ - 1 ] } 1 .. $#heads;
is(scalar(@nonincreasing), 0, '(c) notified heads strictly increase');
my @odd = grep { !has_category($_, 'burst') || @{ $_->{categories} } != 1 } @notes;
is(scalar(@odd), 0, '(c) every burst notification names the category "burst" only')
  or diag($odd[0]{payload});
my %seen;
$seen{$_}++ for @seen;
my @dups = grep { $seen{$_} > 1 } keys %seen;
my @missed = grep { !$seen{$_} } keys %acked;
my @extra = grep { !$acked{$_} } keys %seen;
is(scalar(@seen), $commits, '(c) the listener read as many events as were appended');
is(scalar(@dups), 0, '(c) ... none twice');
is(scalar(@missed), 0, '(c) ... none missed')
  or diag('missed: ' . join(',', (sort { $a <=> $b } @missed)[ 0 .. ($#missed < 9 ? $#missed : 9) ]));
is(scalar(@extra), 0, '(c) ... and nothing else');

# ---------------------------------------------------------------------------
# (c') the bound is on distinct categories, not events: a transaction of
#      1,000 events in one category names it; 64 categories are named, 65
#      are too many (null: read the feed)
# ---------------------------------------------------------------------------
sub drain_until_head
{
	my ($want) = @_;
	my $deadline = time + 30;
	while (time < $deadline)
	{
		my $w = wait_notification($listener, 1);
		return $w if $w && ($w->{head} // 0) >= $want;
	}
	return undef;
}
my ($big) = $appender->selectrow_array(q{
  SELECT last_position FROM event_store.es_append('many-1', NULL,
    (SELECT jsonb_agg(jsonb_build_object('type', 'E', 'data', jsonb_build_object('i', i))) FROM generate_series(1, 1000) i))});
my $n = drain_until_head($big);
ok($n && has_category($n, 'many') && @{ $n->{categories} } == 1,
	"(c') 1,000 events in one category: the notification names it")
  or diag($n ? $n->{payload} : 'no notification');
for my $k (64, 65)
{
	$appender->begin_work;
	my $last;
	for my $c (1 .. $k)
	{
		($last) = $appender->selectrow_array(
			q{SELECT last_position FROM event_store.es_append($1, NULL, 'E', '{}')}, undef, "k${k}c$c-1");
	}
	$appender->commit;
	$n = drain_until_head($last);
	if ($k == 64)
	{
		ok($n && ref($n->{categories}) eq 'ARRAY' && @{ $n->{categories} } == 64,
			"(c') 64 categories in one transaction: all named")
		  or diag($n ? $n->{payload} : 'no notification');
	}
	else
	{
		ok($n && exists $n->{categories} && !defined $n->{categories},
			"(c') 65 categories: null, read the feed")
		  or diag($n ? $n->{payload} : 'no notification');
	}
}

# ---------------------------------------------------------------------------
# (d) after a restart, the worker is started again by the next append (the
#     launcher's look at the database, with no projection, leaves at once)
# ---------------------------------------------------------------------------
$listener->disconnect;
$appender->disconnect;
$node->restart;
$listener = connect_db('postgres');
$appender = connect_db('postgres');
$listener->do('LISTEN es_events');
# the launcher looks at every database after a start: a database without
# a projection behind does not keep its worker
{
	my $end = time + 20;
	usleep(100_000) while time < $end && notifier_pids('postgres') ne '';
}
is(notifier_pids('postgres'), '', '(d) after the restart, the launcher\'s look ends: no notifier stays in a database without projections');
$res = append_one($appender, 'restart-1', 0);
$t_commit = time;
$n = wait_notification($listener, 5);
ok($n, '(d) after a restart, an append wakes the listener again');
note 'wake (after restart, includes starting the worker): ' . ms($n->{at} - $t_commit) . ' ms'
  if $n;
is($n && $n->{head}, $res->{last_position}, '(d) ... with the appended head');
like(notifier_pids('postgres'), qr/^\d+$/, '(d) the notifier runs again');

# ---------------------------------------------------------------------------
# (e) DROP DATABASE of a database whose notifier runs
# ---------------------------------------------------------------------------
sub use_database
{
	my ($dbname) = @_;
	my $dbh = connect_db($dbname);
	$dbh->do('CREATE EXTENSION IF NOT EXISTS event_store');
	$dbh->do('LISTEN es_events');
	my $r = append_one($dbh, 'other-1', undef);
	my $w = wait_notification($dbh, 5);
	my $ok = $w && $w->{head} == $r->{last_position};
	$dbh->disconnect;
	return ($ok, $r);
}

$node->safe_psql('postgres', 'CREATE DATABASE es_drop');
my ($ok) = use_database('es_drop');
ok($ok, '(e) a second database gets its own notifications');
like(notifier_pids('es_drop'), qr/^\d+$/, '(e) its notifier runs');
my $t_drop = time;
my ($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE es_drop');
is($rc, 0, '(e) DROP DATABASE of a database whose notifier runs succeeds')
  or diag($err);
note sprintf('took %.2f s for DROP DATABASE', time - $t_drop);
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM pg_stat_activity
		  WHERE backend_type = 'event_store notifier'
		    AND (datname IS NULL OR datname = 'es_drop')}),
	'0',
	'(e) its notifier is gone');
like(notifier_pids('postgres'), qr/^\d+$/, '(e) the notifier of the other database still runs');

# the name can be used again
$node->safe_psql('postgres', 'CREATE DATABASE es_drop');
($ok) = use_database('es_drop');
ok($ok, '(e) a database created again under that name gets notifications');

# CREATE DATABASE ... TEMPLATE also needs the template without connections:
# the notifier leaves, and the next commit there must start it again
like(notifier_pids('es_drop'), qr/^\d+$/, '(e) its notifier runs');
($rc, $out, $err) = $node->psql('postgres', 'CREATE DATABASE es_copy TEMPLATE es_drop');
is($rc, 0, '(e) CREATE DATABASE from a database whose notifier runs succeeds')
  or diag($err);
($ok) = use_database('es_drop');
ok($ok, '(e) the next commit in the template database wakes its listener again');
($ok) = use_database('es_copy');
ok($ok, '(e) so does a commit in the copy');
($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE es_copy');
is($rc, 0, '(e) and the copy can be dropped') or diag($err);

# A role that may not copy or drop a database cannot stop its notifier by
# trying: the utility hook checks the role's rights before it stops anything.
$node->safe_psql('postgres', 'CREATE ROLE es_nobody LOGIN');
my $pids_before = notifier_pids('es_drop');
like($pids_before, qr/^\d+$/, '(e) the template database has a notifier');
($rc, $out, $err) = $node->psql('postgres', 'CREATE DATABASE es_evil TEMPLATE es_drop',
	extra_params => [ '-U', 'es_nobody' ]);
isnt($rc, 0, '(e) CREATE DATABASE by a role without CREATEDB fails');
($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE es_drop',
	extra_params => [ '-U', 'es_nobody' ]);
isnt($rc, 0, '(e) DROP DATABASE by a role that does not own the database fails');
is(notifier_pids('es_drop'), $pids_before, '(e) ... and neither stopped its notifier');

# DROP DATABASE right after the first commit, while the notifier it started
# may still be starting, must give the database's register entry back:
# more such databases than event_store.max_databases, one after the other.
my $small = PostgreSQL::Test::Cluster->new('small');
$small->init;
$small->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'event_store'
event_store.max_databases = 2
log_statement = ddl
});
$small->start;
my $admin = DBI->connect(
	'dbi:Pg:dbname=postgres;host=' . $small->host . ';port=' . $small->port,
	'', '', { AutoCommit => 1, RaiseError => 0, PrintError => 0 });
my @drop_errors;
for my $i (1 .. 4)
{
	$admin->do("CREATE DATABASE es_quick$i") or push @drop_errors, $admin->errstr;
	my ($rc1, $o1, $e1) = $small->psql("es_quick$i",
		q{CREATE EXTENSION event_store;
		  SELECT * FROM event_store.es_append('quick-1', 0, 'Quick', '{}')});
	push @drop_errors, "es_quick$i: $e1" if $rc1 != 0;
	$admin->do("DROP DATABASE es_quick$i") or push @drop_errors, $admin->errstr;
}
is(join("\n", @drop_errors), '',
	'(e) four databases appended to and dropped at once (max_databases = 2)');
($rc, $out, $err) = $small->psql('postgres',
	q{CREATE EXTENSION event_store;
	  SELECT last_version FROM event_store.es_append('after-1', 0, 'After', '{}')});
is($rc, 0, '(e) ... gave their register entries back: another database can use the extension')
  or diag($err);
$admin->disconnect;
$small->stop;

note sprintf('took %.1f s', time - $started);
$listener->disconnect;
$appender->disconnect;
$node->stop;
done_testing();
