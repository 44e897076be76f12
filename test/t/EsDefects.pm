# Helpers of the defect tests (011_snapshot_reads.pl .. 014_races.pl).
#
# Every helper is about observing behaviour without relying on timing:
# statements run with their SQLSTATE captured (a lost connection counts as
# "CRASH" and the helper waits for the server to come back), blocking
# statements run asynchronously and are seen waiting in pg_locks by a
# bounded poll, and the server log is checked at the end for crashes.
package EsDefects;

use strict;
use warnings;
use Exporter 'import';
use DBI;
use DBD::Pg qw(:async);
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

our @EXPORT = qw(es_new_node es_connect es_run es_state es_col es_wait_ready
  es_wait_blocked es_async es_async_result es_last_error es_check_log es_sqlstate_of
  es_plan_nodes PG_ASYNC);

# A cluster with the extension preloaded, on a port PostgreSQL::Test::Cluster
# picks, never one of 54329..54340 (used by the developers' own clusters).
# It restarts after a crash (PostgreSQL::Test::Cluster turns that off), so
# that one crash of the old code does not end the whole file, and logs the
# SQLSTATE of every message (%e), so that the log can be checked for XX000.
#   es_new_node($name, conf => "...", init => { allows_streaming => 1 }, start => 0)
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
	$node->start unless defined $opts{start} && !$opts{start};
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

# At the end of a file: the server log must show no crash, no PANIC and no
# internal error (XX000).
sub es_check_log
{
	my ($node, $label) = @_;
	my $log = slurp_file($node->logfile);
	my @signal = $log =~ /^.*terminated by signal.*$/mg;
	my @panic = $log =~ /^.*\bPANIC\b.*$/mg;
	my @xx = $log =~ /^.* XX000 .*\b(?:ERROR|FATAL|PANIC):.*$/mg;
	is(scalar(@signal), 0, "$label: no server process was terminated by a signal")
	  or diag(join("\n", @signal[ 0 .. ($#signal < 4 ? $#signal : 4) ]));
	is(scalar(@panic), 0, "$label: no PANIC in the server log")
	  or diag(join("\n", @panic[ 0 .. ($#panic < 4 ? $#panic : 4) ]));
	is(scalar(@xx), 0, "$label: no internal error (XX000) in the server log")
	  or diag(join("\n", @xx[ 0 .. ($#xx < 4 ? $#xx : 4) ]));
}

1;
