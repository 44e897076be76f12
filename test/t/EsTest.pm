# The Perl helpers of the TAP tests (test/t) and of bench/memory.pl, defined
# once (test/README.md).
#
# Every helper is about observing behaviour without relying on timing:
# statements run with their SQLSTATE captured (a lost connection counts as
# "CRASH" and the helper waits for the server to come back), blocking
# statements run asynchronously and are seen waiting in pg_locks by a
# bounded poll, and the server log is checked at the end for crashes.
package EsTest;

use strict;
use warnings;
use Exporter 'import';
use DBI;
use DBD::Pg qw(:async);
use JSON::PP;
use Time::HiRes qw(time usleep);
use File::Basename qw(dirname);
use File::Spec;

# PostgreSQL::Test::Cluster and Test::More are loaded by the TAP tests, not
# by bench/memory.pl, which uses EsTest::Workload only.
BEGIN
{
	if (eval { require PostgreSQL::Test::Cluster; 1 })
	{
		require PostgreSQL::Test::Utils;
		PostgreSQL::Test::Utils->import;
		require Test::More;
		Test::More->import;
	}
}

our @EXPORT = qw(es_new_node es_connect es_run es_state es_col es_wait_ready
  es_wait_blocked es_async es_async_result es_last_error es_check_log es_sqlstate_of
  es_plan_nodes es_children_of es_crash_and_restart PG_ASYNC);

# A cluster with the extension preloaded, on a port PostgreSQL::Test::Cluster
# picks, never one of 54329..54340 (used by the developers' own clusters).
# It restarts after a crash (PostgreSQL::Test::Cluster turns that off), so
# that one crash of the old code does not end the whole file, and logs the
# SQLSTATE of every message (%e), so that the log can be checked for XX000.
#   es_new_node($name, conf => "...", init => { allows_streaming => 1 }, start => 0)
my $es_compat_sql = do
{
	my $file = File::Spec->catfile(dirname(__FILE__), '..', 'compat.sql');
	open my $fh, '<', $file or die "$file: $!";
	local $/;
	<$fh>;
};

sub es_new_node
{
	my ($name, %opts) = @_;
	my $port;
	do { $port = PostgreSQL::Test::Cluster::get_free_port(); }
	  while ($port >= 54329 && $port <= 54340);
	my $node = PostgreSQL::Test::Cluster->new($name, port => $port);
	$node->init(%{ $opts{init} // {} });
	$node->append_conf(
		'postgresql.conf', qq{
shared_preload_libraries = 'event_store'
restart_after_crash = on
max_connections = 40
shared_buffers = 32MB
log_line_prefix = '%m [%p] %e %q%a '
deadlock_timeout = 100ms
} . ($opts{conf} // ''));
	return $node if defined $opts{start} && !$opts{start};
	$node->start;
	# what differs between versions under the fixtures (test/compat.sql)
	$node->safe_psql($_, $es_compat_sql) for qw(template1 postgres);
	return $node;
}

# A DBI connection; errors are returned, not raised (see es_run).
sub es_connect
{
	my ($node, $dbname, $user) = @_;
	$dbname //= 'postgres';
	my $dbh = DBI->connect(
		"dbi:Pg:dbname=$dbname;host=" . $node->host . ';port=' . $node->port,
		$user // '', '',
		{
			AutoCommit => 1,
			RaiseError => 0,
			PrintError => 0,
			PrintWarn => 0,
			AutoInactiveDestroy => 1,
			pg_server_prepare => 0,
			# "?" is jsonb's operator here, not a placeholder
			pg_placeholder_dollaronly => 1,
		});
	die "cannot connect to $dbname as " . ($user // 'default') . ': ' . ($DBI::errstr // '')
	  unless $dbh;
	return $dbh;
}

sub _lost
{
	my ($dbh, $err) = @_;
	return 1
	  if ($err // '') =~
	  /server closed the connection|terminating connection because of crash|no connection to the server|could not receive data|connection to server .* (?:lost|failed)|SSL SYSCALL|EOF detected/i;
	# connection exceptions (class 08; DBD::Pg says S8006 for a lost one)
	return 1 if $dbh->state && $dbh->state =~ /^(08|S8)/;
	return 1 if $dbh->pg_ping < 0;
	return 0;
}

# Run one statement: { ok => 1, state => '00000', rows => [...] } or
# { ok => 0, state => SQLSTATE (or 'CRASH' when the connection was lost),
# err => message }.  On a lost connection it waits for the server to accept
# connections again (the old code crashes it).
sub es_run
{
	my ($dbh, $sql, @bind) = @_;
	my $sth = $dbh->prepare($sql);
	if ($sth && defined $sth->execute(@bind))
	{
		my $rows = ($sth->{NUM_OF_FIELDS} // 0) > 0 ? $sth->fetchall_arrayref : [];
		$sth->finish;
		return { ok => 1, state => '00000', rows => $rows };
	}
	my $err = $dbh->errstr // '';
	my $state = $dbh->state // '';
	if (_lost($dbh, $err))
	{
		return { ok => 0, state => 'CRASH', err => $err };
	}
	return { ok => 0, state => $state, err => $err };
}

# The SQLSTATE of a statement ('00000' when it succeeds, 'CRASH' when the
# connection was lost).
sub es_state
{
	my $r = es_run(@_);
	return $r->{state};
}

# The first column of every row, joined with ','; the SQLSTATE prefixed with
# "ERROR " when it fails.
sub es_col
{
	my $r = es_run(@_);
	return "ERROR $r->{state}" unless $r->{ok};
	return join(',', map { $_->[0] // 'NULL' } @{ $r->{rows} });
}

# Run $sql in a new connection (as $user, in $dbname) and return its
# SQLSTATE; 'CRASH' if the server went away meanwhile, after which it waits
# for the server to be back.
sub es_sqlstate_of
{
	my ($node, $dbname, $user, $sql) = @_;
	my $dbh = es_connect($node, $dbname, $user);
	my $r = es_run($dbh, $sql);
	$dbh->disconnect if $r->{state} ne 'CRASH';
	es_wait_ready($node) if $r->{state} eq 'CRASH';
	return wantarray ? ($r->{state}, $r) : $r->{state};
}

# Wait (up to 120 s) until the server accepts connections and is out of
# recovery; true when it does.
sub es_wait_ready
{
	my ($node) = @_;
	my $end = time + 120;
	while (time < $end)
	{
		my $dbh = DBI->connect(
			'dbi:Pg:dbname=postgres;host=' . $node->host . ';port=' . $node->port,
			'', '', { RaiseError => 0, PrintError => 0, PrintWarn => 0 });
		if ($dbh)
		{
			my ($r) = $dbh->selectrow_array('SELECT pg_is_in_recovery()');
			$dbh->disconnect;
			return 1 if defined $r && !$r;
		}
		usleep(200_000);
	}
	return 0;
}

# Start a statement without waiting for it.
sub es_async
{
	my ($dbh, $sql) = @_;
	return $dbh->do($sql, { pg_async => PG_ASYNC });
}

# The outcome of an asynchronous statement, as es_run's (it waits for it).
sub es_async_result
{
	my ($dbh) = @_;
	my $n = $dbh->pg_result;
	if (defined $n)
	{
		return { ok => 1, state => '00000', count => $n };
	}
	return es_last_error($dbh);
}

# The error of the last statement on $dbh, as es_run's.
sub es_last_error
{
	my ($dbh) = @_;
	my $err = $dbh->errstr // '';
	return { ok => 0, state => (_lost($dbh, $err) ? 'CRASH' : ($dbh->state // '')), err => $err };
}

# Wait (bounded) until backend $pid waits for a lock, as pg_locks shows it.
# $what: a condition on pg_locks (default: any lock not granted).
sub es_wait_blocked
{
	my ($observer, $pid, $what, $timeout) = @_;
	$what //= 'true';
	$timeout //= 60;
	my $end = time + $timeout;
	while (time < $end)
	{
		my ($n) = $observer->selectrow_array(
			"SELECT count(*) FROM pg_catalog.pg_locks WHERE pid = \$1 AND NOT granted AND ($what)",
			undef, $pid);
		return 1 if $n && $n > 0;
		usleep(10_000);
	}
	return 0;
}

# The node types of a JSON plan (EXPLAIN (FORMAT JSON)) as a flat list of
# { type, relation, parent_types => [...] }.
sub es_plan_nodes
{
	my ($json_text) = @_;
	my $plan = JSON::PP->new->decode($json_text);
	my @out;
	my $walk;
	$walk = sub {
		my ($node, $parents) = @_;
		push @out,
		  {
			type => $node->{'Node Type'},
			relation => $node->{'Relation Name'},
			function => $node->{'Function Name'},
			workers_launched => $node->{'Workers Launched'},
			parents => [@$parents],
			node => $node
		  };
		for my $child (@{ $node->{Plans} // [] })
		{
			$walk->($child, [ @$parents, $node->{'Node Type'} ]);
		}
	};
	$walk->($_->{Plan}, []) for @$plan;
	return @out;
}

# The pids of a process's children.
sub es_children_of
{
	my ($pid) = @_;
	return map { /^\s*(\d+)/ ? $1 : () } split /\n/, `ps -o pid= --ppid $pid`;
}

# kill -9 of the postmaster and all its children at once (an OOM killer, a
# power cut), then start it again: retried, bounded, while the old
# processes let go of the shared memory.  True if it started.
sub es_crash_and_restart
{
	my ($node) = @_;
	my $pm = $node->{_pid};
	# stopped first, so that it forks no child after the list is taken (a
	# child left out would outlive the crash, and could wait for ever on a
	# lock a killed process held, keeping the shared memory)
	kill 'STOP', $pm;
	my @kids = es_children_of($pm);
	kill 'KILL', $pm, @kids;
	$node->{_pid} = undef;
	my $end = time + 30;
	usleep(50_000) while time < $end && grep { kill(0, $_) } @kids;
	# a backend forked just before the kill (clients reconnect all the
	# time) may hold the shared memory a little longer: retry, bounded
	for (1 .. 40)
	{
		return 1 if $node->start(fail_ok => 1);
		usleep(500_000);
	}
	return 0;
}

# At the end of a file: the server log must show no crash, no PANIC and no
# internal error (XX000).
sub es_check_log
{
	my ($node, $label) = @_;
	my $log = slurp_file($node->logfile);
	# line by line: a pattern over the whole log backtracks without end on
	# a long log with an XX000 line in it
	my (@signal, @panic, @xx);
	for my $line (split /\n/, $log)
	{
		push @signal, $line if index($line, 'terminated by signal') >= 0;
		push @panic, $line if $line =~ /\bPANIC\b/;
		push @xx, $line if index($line, ' XX000 ') >= 0 && $line =~ /\b(?:ERROR|FATAL|PANIC):/;
	}
	is(scalar(@signal), 0, "$label: no server process was terminated by a signal")
	  or diag(join("\n", @signal[ 0 .. ($#signal < 4 ? $#signal : 4) ]));
	is(scalar(@panic), 0, "$label: no PANIC in the server log")
	  or diag(join("\n", @panic[ 0 .. ($#panic < 4 ? $#panic : 4) ]));
	is(scalar(@xx), 0, "$label: no internal error (XX000) in the server log")
	  or diag(join("\n", @xx[ 0 .. ($#xx < 4 ? $#xx : 4) ]));
}


# ---------------------------------------------------------------------------
# EsTest::Workload: the appending session of the memory tests
# (009_memory.pl) and of bench/memory.pl, in one backend: mostly the
# single-event es_append (1 in 10 with a client event id, 1 in 20 with the
# exact expected version), 1 operation in 50 a JSON batch of 2 to 10 events,
# 1 in 200 a plain INSERT; every "read" operations es_read_stream both ways;
# every "stale" a wrong expected version (V0001), caught; every "feed" a page
# of es_read_all (with and without types), es_read_category of a consumer
# group member, es_stream_version, es_head_position and checkpoints; every
# "bad_key" a batch with an unknown key (22023), caught.
#
#   my $w = EsTest::Workload->new($dbh, streams => 2000,
#       every => { read => 50, stale => 250, feed => 250, bad_key => 500 });
#   $w->step while $w->{events} < 10_000;
#   my $m = $w->measure(5);    # { events, contexts, total, used, rss, top }
# ---------------------------------------------------------------------------
package EsTest::Workload;

use strict;
use warnings;
use Time::HiRes qw(time);

sub new
{
	my ($class, $dbh, %opts) = @_;
	my ($pid) = $dbh->selectrow_array('SELECT pg_backend_pid()');
	my $self = bless {
		dbh => $dbh,
		pid => $pid,
		streams => $opts{streams} // 10_000,
		prefix => $opts{prefix} // '',
		every => { read => 100, stale => 500, feed => 1000, bad_key => 1000,
			%{ $opts{every} // {} } },
		categories => [ 'order', 'payment', 'shipment' ],
		consumer => $opts{consumer} // 'memory-workload',
		version => {},
		calls => {},
		events => 0,
		ops => 0,
		errors => 0,
		id_base => int(time * 1e6),
		id_count => 0,
	}, $class;
	my %sql = (
		one => 'SELECT last_version FROM event_store.es_append($1, $2::bigint, $3::text, '
		  . '$4::jsonb, $5::jsonb, $6::uuid)',
		batch => 'SELECT last_version FROM event_store.es_append($1, $2::bigint, $3::jsonb)',
		insert => 'INSERT INTO event_store.events (stream, type, data, metadata) '
		  . 'VALUES ($1, $2, $3::jsonb, $4::jsonb) RETURNING version',
		read_stream =>
		  'SELECT * FROM event_store.es_read_stream($1, $2::bigint, $3::bigint, $4::boolean)',
		read_all => 'SELECT * FROM event_store.es_read_all($1::bigint, $2::bigint)',
		read_types => 'SELECT * FROM event_store.es_read_all($1::bigint, $2::bigint, $3::text[])',
		read_category =>
		  'SELECT * FROM event_store.es_read_category($1, $2::bigint, $3::bigint, $4::int, $5::int)',
		version => 'SELECT event_store.es_stream_version($1)',
		head => 'SELECT event_store.es_head_position()',
		checkpoint_save => 'SELECT event_store.es_checkpoint_save($1, $2::bigint)',
		checkpoint_reset => 'SELECT event_store.es_checkpoint_reset($1, $2::bigint)',
		mem => 'SELECT count(*), sum(total_bytes), sum(total_bytes - free_bytes) '
		  . 'FROM pg_backend_memory_contexts',
		mem_top => 'SELECT name, coalesce(ident, \'\'), total_bytes FROM pg_backend_memory_contexts '
		  . 'ORDER BY total_bytes DESC, name LIMIT $1',
	);
	$self->{sth}{$_} = $dbh->prepare($sql{$_}) for keys %sql;
	return $self;
}

sub stream_name
{
	my ($self) = @_;
	my $k = int(rand($self->{streams}));
	return $self->{categories}[ $k % 3 ] . "-$self->{prefix}$k";
}

# a client event id, unique across runs, shaped as a version 4 UUID
sub client_id
{
	my ($self) = @_;
	my $h = sprintf('%016x%08x%08x', $self->{id_base}, $self->{pid}, $self->{id_count}++);
	substr($h, 12, 1) = '4';
	substr($h, 16, 1) = '8';
	return join('-', substr($h, 0, 8), substr($h, 8, 4), substr($h, 12, 4),
		substr($h, 16, 4), substr($h, 20, 12));
}

sub data_json
{
	my ($i) = @_;
	return sprintf('{"amount": %.2f, "currency": "EUR", "customer": "c-%d", "note": "%s"}',
		$i * 1.5, $i % 977, 'x' x 120);
}

sub metadata_json
{
	my ($i) = @_;
	return sprintf('{"correlation_id": "%032x", "user_id": "u-%d"}',
		$i * 2654435761 % 2**32, $i % 50);
}

sub event_type { return $_[0] % 100 == 0 ? 'Rare' : 'Happened' }

# run a prepared statement, counting it; its rows
sub run
{
	my ($self, $name, @args) = @_;
	$self->{calls}{$name}++;
	$self->{sth}{$name}->execute(@args);
	return $self->{sth}{$name}->fetchall_arrayref;
}

# an error raised on purpose: the statement must fail with this SQLSTATE
sub expect_error
{
	my ($self, $state, $name, @args) = @_;
	$self->{calls}{"$name error"}++;
	my $ok = eval { $self->{sth}{$name}->execute(@args); 1 };
	die "expected SQLSTATE $state from $name, but it succeeded\n" if $ok;
	die "expected SQLSTATE $state from $name, got " . $self->{dbh}->state . ": $@"
	  unless $self->{dbh}->state eq $state;
	$self->{errors}++;
}

sub known_version
{
	my ($self, $stream) = @_;
	# the stream may hold events from an earlier run
	$self->{version}{$stream} //= $self->run('version', $stream)->[0][0];
	return $self->{version}{$stream};
}

sub append_one
{
	my ($self, $stream) = @_;
	my $expected = $self->{ops} % 20 == 0 ? $self->known_version($stream) : undef;
	my $id = $self->{ops} % 10 == 0 ? $self->client_id : undef;
	my $e = $self->{events};
	my $rows = $self->run('one', $stream, $expected, event_type($e), data_json($e),
		metadata_json($e), $id);
	$self->{version}{$stream} = $rows->[0][0];
	$self->{events}++;
}

sub append_batch
{
	my ($self, $stream) = @_;
	my $n = 2 + int(rand(9));
	my $batch = '[' . join(', ',
		map {
			my $i = $self->{events} + $_;
			sprintf('{"type": "%s", "data": %s, "metadata": %s}',
				event_type($i), data_json($i), metadata_json($i))
		} 0 .. $n - 1) . ']';
	$self->{version}{$stream} = $self->run('batch', $stream, undef, $batch)->[0][0];
	$self->{events} += $n;
}

sub plain_insert
{
	my ($self, $stream) = @_;
	my $e = $self->{events};
	$self->{version}{$stream} =
	  $self->run('insert', $stream, 'Inserted', data_json($e), metadata_json($e))->[0][0];
	$self->{events}++;
}

sub reads
{
	my ($self) = @_;
	my ($ops, $every) = ($self->{ops}, $self->{every});
	my $stream = $self->stream_name;
	if ($ops % $every->{read} == 0)
	{
		$self->run('read_stream', $stream, undef, 50, 0);
		$self->run('read_stream', $stream, undef, 10, 1);
	}
	if ($ops % $every->{stale} == 0)
	{
		$self->expect_error('V0001', 'one', $stream, $self->known_version($stream) + 5,
			'Stale', '{}', undef, undef);
	}
	if ($ops % $every->{feed} == 0)
	{
		my $k = $ops / $every->{feed} % 3;
		my $head = $self->run('head')->[0][0];
		my $after = $head > 1000 ? int(rand($head - 1000)) : 0;
		$self->run('read_all', $after, 1000);
		$self->run('read_types', $after, 1000, [ 'Rare', 'Inserted' ]);
		$self->run('read_category', $self->{categories}[$k], $after, 1000, $k, 3);
		$self->run('version', $stream);
		$self->run('checkpoint_save', $self->{consumer}, $head);
		$self->run('checkpoint_reset', $self->{consumer}, $after);
	}
	if ($ops % $every->{bad_key} == 0)
	{
		$self->expect_error('22023', 'batch', $stream, undef,
			'[{"type": "T", "data": {}, "metdata": {}}]');
	}
}

# one operation of the session
sub step
{
	my ($self) = @_;
	my $ops = ++$self->{ops};
	my $stream = $self->stream_name;
	if ($ops % 50 == 0) { $self->append_batch($stream) }
	elsif ($ops % 200 == 1) { $self->plain_insert($stream) }
	else { $self->append_one($stream) }
	$self->reads;
}

# the backend's /proc status: VmRSS, RssAnon, RssShmem in kB ('n/a' if unreadable)
sub rss
{
	my ($self) = @_;
	my %r = (VmRSS => 'n/a', RssAnon => 'n/a', RssShmem => 'n/a');
	if (open(my $fh, '<', "/proc/$self->{pid}/status"))
	{
		while (<$fh>) { $r{$1} = $2 if /^(VmRSS|RssAnon|RssShmem):\s+(\d+) kB/ }
		close $fh;
	}
	return \%r;
}

# the backend's memory: its contexts (count, total and used bytes, the
# largest $top) and its resident memory
sub measure
{
	my ($self, $top) = @_;
	my $sth = $self->{sth}{mem};
	$sth->execute;
	my ($n, $total, $used) = $sth->fetchrow_array;
	$sth->finish;
	$self->{sth}{mem_top}->execute($top // 5);
	my $largest = $self->{sth}{mem_top}->fetchall_arrayref;
	return {
		events => $self->{events},
		contexts => $n,
		total => $total,
		used => $used,
		rss => $self->rss,
		top => [ map { { name => $_->[0], ident => $_->[1], bytes => $_->[2] } } @$largest ],
		at => time,
	};
}

sub finish
{
	my ($self) = @_;
	$_->finish for values %{ $self->{sth} };
}

package EsTest;

1;
