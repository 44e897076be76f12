# Monitoring (issue 17): the files of monitoring/ work with the tools they
# are written for.
#
# (1) The alerting rules: `promtool check rules` accepts
#     monitoring/event_store.rules.yml and `promtool test rules` passes
#     monitoring/event_store.rules.test.yml (each alert firing and not
#     firing); every alert has a severity, a summary, a description and a
#     runbook_url naming a section of docs/operations.md that exists.
# (2) The exporter file: Debian's prometheus-postgres-exporter, started on
#     loopback with --extend.query-path monitoring/postgres_exporter.yml and
#     --auto-discover-databases, scrapes two databases with the extension as
#     a role that has pg_monitor and nothing else, after a known workload
#     (committed appends, rolled-back ones, a conflict, a checkpoint
#     consumer, a caught-up projection and a faulted one, an appending
#     transaction left open).  Every row of es_stats() and of
#     es_consumer_metrics is a series with the labels database (and kind,
#     name), of the declared type, whose value is the one the SQL gives at
#     the same moment (between a read before and one after the scrape for
#     the columns that grow with time); the scrape answers 200, and neither
#     it nor the exporter's log has a duplicate series ("collected before")
#     or an error about the queries.
# (3) The label "database" is what keeps the databases' rows apart: the
#     same file without it makes the same scrape fail with "collected
#     before" (so (2) can fail).
# (4) monitoring/queries.sql holds the same queries as the exporter file, and
#     docs/operations.md names each of its series.
#
# The exporter and promtool come from the packages prometheus-postgres-exporter
# and prometheus, which scripts/lib.sh installs on the host only: in the
# chroots of 17 and 18 the test skips; on the host it fails without them.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DBI;
use HTTP::Tiny;
use IO::Socket::INET;
use POSIX ();
use File::Temp ();
use File::Spec;
use IPC::Run;
use Time::HiRes qw(time usleep);
use EsTest;

my $dir = 'monitoring';
my $exporter_file = "$dir/postgres_exporter.yml";
my $rules_file = "$dir/event_store.rules.yml";
my $rules_test = "$dir/event_store.rules.test.yml";
my $queries_file = "$dir/queries.sql";

sub which
{
	my ($name) = @_;
	for my $d (split /:/, ($ENV{PATH} // '') . ':/usr/bin:/usr/sbin')
	{
		return "$d/$name" if $d ne '' && -x "$d/$name";
	}
	return undef;
}
my $exporter = which('prometheus-postgres-exporter') // which('postgres_exporter');
my $promtool = which('promtool');
if (!$exporter || !$promtool)
{
	my $missing = join(' and ', (!$exporter ? 'prometheus-postgres-exporter' : ()),
		(!$promtool ? 'promtool (package prometheus)' : ()));
	plan skip_all => "$missing not installed: scripts/lib.sh installs them on the host only, not in the chroots of 17 and 18"
	  if -f '/es/pg-major';
	fail("$missing not installed (scripts/lib.sh ES_PACKAGES installs them on the host: run as root)");
	done_testing();
	exit 0;
}

# ---------------------------------------------------------------------------
# (1) the rules
# ---------------------------------------------------------------------------
sub run_cmd
{
	my (@cmd) = @_;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(\@cmd, '>', \$out, '2>', \$err);
	return ($ok, "$out$err");
}

my ($ok, $out) = run_cmd($promtool, 'check', 'rules', $rules_file);
ok($ok, "(1) promtool check rules $rules_file") or diag($out);
my ($nrules) = $out =~ /SUCCESS: (\d+) rules found/;
# promtool test rules reads rule_files relative to the test file's folder
($ok, $out) = run_cmd($promtool, 'test', 'rules', $rules_test);
ok($ok, "(1) promtool test rules $rules_test") or diag($out);

my $rules = slurp_file($rules_file);
my $ops = slurp_file('docs/operations.md');
# the anchors of docs/operations.md's headings, as GitHub makes them
my %anchors = map {
	my $a = lc $_;
	$a =~ s/[^\w\- ]//g;
	$a =~ s/ /-/g;
	($a => 1)
} $ops =~ /^#+\s+(.*?)\s*$/mg;
my @alerts = split /^\s+- alert:\s*/m, $rules;
shift @alerts;
is(scalar(@alerts), $nrules // -1, '(1) every rule is an alert');
my %tested = map { $_ => 1 } slurp_file($rules_test) =~ /alertname:\s*(\w+)/g;
for my $a (@alerts)
{
	my ($name) = $a =~ /^(\w+)/;
	my ($anchor) = $a =~ /runbook_url:\s*"docs\/operations\.md#([\w-]+)"/;
	ok($a =~ /severity:\s*(warning|critical)\b/ && $a =~ /summary:/ && $a =~ /description:/
		  && defined $anchor,
		"(1) $name has a severity, a summary, a description and a runbook_url");
	ok(defined $anchor && $anchors{$anchor}, "(1) $name: docs/operations.md has the section #"
		  . ($anchor // '?'));
	ok($tested{$name}, "(1) $name is tested in $rules_test");
}

# ---------------------------------------------------------------------------
# (4) queries.sql holds the exporter file's queries
# ---------------------------------------------------------------------------
sub squash { my ($s) = @_; $s =~ s/--[^\n]*//g; $s =~ s/\s+/ /g; $s =~ s/^ | ?;? ?$//g; return $s }
my $yaml = slurp_file($exporter_file);
my %yaml_query;
while ($yaml =~ /^(\w+):\n  query: \|\n((?:    .*\n)+)/mg)
{
	$yaml_query{$1} = squash($2);
}
my @sql_queries = map { squash($_) } grep { /\S/ && !/^\s*(--[^\n]*\s*)*$/ }
  split /;\s*\n/, slurp_file($queries_file);
is_deeply(\@sql_queries, [ @yaml_query{qw(event_store_stats event_store_consumer)} ],
	"(4) $queries_file holds the queries of $exporter_file");

# the exporter file's columns: namespace -> { column -> LABEL | COUNTER | GAUGE }
my %usage;
while ($yaml =~ /^(\w+):\n((?: .*\n|\n)+)/mg)
{
	my ($ns, $body) = ($1, $2);
	while ($body =~ /^    - (\w+):\n        usage: "(\w+)"/mg)
	{
		$usage{$ns}{$1} = $2;
	}
}

my @undocumented = grep { index($ops, "`$_`") < 0 }
  map { my $ns = $_; map { "${ns}_$_" } grep { $usage{$ns}{$_} ne 'LABEL' } sort keys %{ $usage{$ns} } }
  sort keys %usage;
is("@undocumented", '', '(4) docs/operations.md says what each series of the exporter file means');

# ---------------------------------------------------------------------------
# (2) the exporter against a known workload
# ---------------------------------------------------------------------------
my $node = es_new_node('monitoring', conf => q{
max_worker_processes = 16
event_store.notifier_idle_timeout = '600s'
});
for my $db (qw(app app2))
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION event_store');
}
# the exporter's role: pg_monitor, nothing else
$node->safe_psql('postgres', 'CREATE ROLE es_monitor LOGIN IN ROLE pg_monitor');

# app: 20 committed transactions of 2 events, 3 rolled back, 1 conflict, a
# consumer 30 positions behind, a projection at the head and one faulted on
# its last event
$node->safe_psql('app', q{
CREATE ROLE mon_proj;
GRANT SELECT ON event_store.events TO mon_proj;
GRANT SELECT, INSERT, UPDATE, DELETE ON event_store.projections, event_store.dead_letters TO mon_proj;
CREATE SCHEMA rm AUTHORIZATION mon_proj;
SET ROLE mon_proj;
CREATE TABLE rm.totals (stream text PRIMARY KEY, n integer NOT NULL);
CREATE FUNCTION rm.count_page(e event_store.es_event[]) RETURNS void LANGUAGE sql AS $$
  INSERT INTO rm.totals AS t SELECT x.stream, count(*) FROM unnest(e) x GROUP BY 1
  ON CONFLICT (stream) DO UPDATE SET n = t.n + excluded.n $$;
CREATE FUNCTION rm.refuse_poison(e event_store.es_event) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF e.type = 'Poison' THEN RAISE EXCEPTION 'poison at %', e.position USING ERRCODE = '22000'; END IF;
END $$;
SELECT event_store.es_register_projection('totals', 'rm.count_page(event_store.es_event[])');
SELECT event_store.es_register_projection('picky', 'rm.refuse_poison(event_store.es_event)',
                                          max_attempts => 1, backoff => '0', on_error => 'pause');
RESET ROLE;
});
my $dbh = es_connect($node, 'app');
for my $i (1 .. 20)
{
	my $r = es_run($dbh, qq{SELECT event_store.es_append('order-$i', 0,
	  '[{"type": "OrderPlaced", "data": {"total": $i}}, {"type": "ItemAdded", "data": {"sku": "A"}}]')});
	BAIL_OUT("append: $r->{err}") unless $r->{ok};
}
for my $i (1 .. 3)
{
	$dbh->begin_work;
	es_run($dbh, qq{SELECT event_store.es_append('order-rb-$i', 0, 'OrderPlaced', '{}')});
	$dbh->rollback;
}
is(es_state($dbh, q{SELECT event_store.es_append('order-1', 0, 'OrderPlaced', '{}')}), 'V0001',
	'(2) workload: a conflict');
es_run($dbh, q{SELECT event_store.es_checkpoint_save('mailer', 10)});
es_run($dbh, q{SELECT event_store.es_append('poison-1', 0, 'Poison', '{}')});

# app2: 5 committed appends of one event, a consumer at the head
my $dbh2 = es_connect($node, 'app2');
es_run($dbh2, qq{SELECT event_store.es_append('cart-$_', 0, 'CartOpened', '{}')}) for 1 .. 5;
es_run($dbh2, q{SELECT event_store.es_checkpoint_save('billing', event_store.es_head_position())});

# quiesce: the projection at the head, the other faulted on the poison event
my $end = time + 60;
my $states = '';
while (time < $end)
{
	$states = es_col($dbh, q{SELECT string_agg(name || ':' || state || ':' || (position = event_store.es_head_position()),
	                          ' ' ORDER BY name) FROM event_store.es_projections});
	last if $states eq 'picky:faulted:false totals:running:true';
	usleep(100_000);
}
is($states, 'picky:faulted:false totals:running:true',
	'(2) workload: one projection at the head, the other faulted on the last event');

# an appending transaction left open (oldest_xact_seconds), in app
my $open = es_connect($node, 'app');
$open->begin_work;
es_run($open, q{SELECT event_store.es_append('held-1', 0, 'Held', '{}')});
usleep(200_000);

# a free port of 54381..54389 on loopback, taken by the exporter
my $tmp = File::Temp->newdir('es-exporter-XXXX', DIR => $PostgreSQL::Test::Utils::tmp_check);
my $dsn = 'host=' . $node->host . ' port=' . $node->port . ' user=es_monitor dbname=app sslmode=disable';
my $http = HTTP::Tiny->new(timeout => 30);
my @started;

END
{
	# only the exporters this test started, by pid
	for my $pid (@started)
	{
		kill 'TERM', $pid;
		waitpid($pid, 0);
	}
}

# start_exporter(QUERY_FILE, LOG): [ pid, url ] or undef
sub start_exporter
{
	my ($file, $log) = @_;
	for my $port (54381 .. 54389)
	{
		my $probe = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
			Proto => 'tcp', Listen => 1, ReuseAddr => 0);
		next unless $probe;
		close $probe;
		my $pid = fork();
		die "fork: $!" unless defined $pid;
		if ($pid == 0)
		{
			open(STDOUT, '>', "$log.out") or POSIX::_exit(126);
			open(STDERR, '>', $log) or POSIX::_exit(126);
			$ENV{DATA_SOURCE_NAME} = $dsn;
			{ exec($exporter, "--web.listen-address=127.0.0.1:$port", "--extend.query-path=$file",
				'--disable-default-metrics', '--disable-settings-metrics',
				'--no-collector.database', '--no-collector.bgwriter',
				'--auto-discover-databases', '--include-databases=app2', '--log.level=info') };
			POSIX::_exit(127);
		}
		push @started, $pid;
		my $url = "http://127.0.0.1:$port";
		my $until = time + 20;
		while (time < $until)
		{
			if (waitpid($pid, POSIX::WNOHANG()) == $pid)
			{
				@started = grep { $_ != $pid } @started;
				last;
			}
			my $r = $http->get("$url/");
			return [ $pid, $url ] if $r->{success} && $r->{content} =~ /Postgres exporter/;
			usleep(100_000);
		}
		diag("the exporter did not listen on port $port: " . slurp_file($log));
	}
	return undef;
}

sub stop_exporter
{
	my ($pid) = @_;
	kill 'TERM', $pid;
	waitpid($pid, 0);
	@started = grep { $_ != $pid } @started;
}

# the series of a scrape: { name => { 'k=v,...' => value } }, and the types
sub parse_metrics
{
	my ($text) = @_;
	my (%series, %type);
	for my $line (split /\n/, $text)
	{
		if ($line =~ /^# TYPE (\w+) (\w+)/) { $type{$1} = $2; next }
		next if $line =~ /^#/ || $line !~ /\S/;
		my ($name, $labels, $value) = $line =~ /^(\w+)(?:\{(.*)\})? (\S+)$/ or next;
		my %l;
		$l{$1} = $2 while ($labels // '') =~ /(\w+)="((?:[^"\\]|\\.)*)"/g;
		$series{$name}{ join(',', map { "$_=$l{$_}" } sort keys %l) } = $value;
	}
	return (\%series, \%type);
}

# what the SQL says, as the exporter's role: { 'series name' => { labels => value } }
my @growing = qw(lag_seconds seconds_since_save oldest_xact_seconds);
my ($host, $port) = ($node->host, $node->port);
my $server = "$host:$port";
sub sql_view
{
	my %want;
	for my $db (qw(app app2))
	{
		my $mon = es_connect($node, $db, 'es_monitor');
		for my $ns (qw(event_store_stats event_store_consumer))
		{
			my $sth = $mon->prepare($yaml_query{$ns});
			$sth->execute or die "$ns in $db: " . $mon->errstr;
			while (my $row = $sth->fetchrow_hashref)
			{
				my @labels = sort grep { $usage{$ns}{$_} eq 'LABEL' } keys %{ $usage{$ns} };
				my $key = join(',', sort((map { "$_=$row->{$_}" } @labels), "server=$server"));
				for my $col (grep { $usage{$ns}{$_} ne 'LABEL' } keys %{ $usage{$ns} })
				{
					$want{"${ns}_$col"}{$key} = $row->{$col};
				}
			}
		}
		$mon->disconnect;
	}
	return \%want;
}

sub num_eq
{
	my ($got, $want) = @_;
	return $got eq 'NaN' if !defined $want;
	return 0 if $got eq 'NaN';
	return abs($got - $want) <= 1e-6 * (1 + abs($want));
}

my $exp = start_exporter(File::Spec->rel2abs($exporter_file), "$tmp/exporter.log");
ok($exp, '(2) the exporter listens on a port of 54381..54389')
  or BAIL_OUT('no exporter');

# a scrape between two reads of the SQL; again while a counter or a
# projection moved meanwhile (the notifier, a worker), bounded
my ($before, $after, $scrape, $series, $types);
for my $try (1 .. 5)
{
	$before = sql_view();
	$scrape = $http->get("$exp->[1]/metrics");
	$after = sql_view();
	my $moved = 0;
	for my $m (keys %$before)
	{
		next if grep { $m =~ /_\Q$_\E$/ } @growing;
		for my $k (keys %{ $before->{$m} })
		{
			my ($x, $y) = ($before->{$m}{$k}, $after->{$m}{$k});
			$moved++ if (defined $x) != (defined $y) || (defined $x && $x != $y);
		}
	}
	last unless $moved;
	note("try $try: $moved values moved during the scrape");
}
is($scrape->{status}, 200, '(2) the scrape answers 200')
  or diag(substr($scrape->{content} // '', 0, 2000));
($series, $types) = parse_metrics($scrape->{content} // '');
unlike($scrape->{content} // '', qr/collected before/, '(2) the scrape has no duplicate series');

# every row of the SQL is a series with its labels and the SQL's value
my ($n, @bad) = (0);
for my $m (sort keys %$before)
{
	my ($ns, $col) = $m =~ /^(event_store_(?:stats|consumer))_(\w+)$/;
	my $want_type = lc $usage{$ns}{$col};
	push @bad, "$m: type " . ($types->{$m} // 'none') . ", not $want_type"
	  unless ($types->{$m} // '') eq $want_type;
	for my $k (sort keys %{ $before->{$m} })
	{
		$n++;
		my $got = $series->{$m}{$k};
		my ($lo, $hi) = ($before->{$m}{$k}, $after->{$m}{$k});
		if (!defined $got) { push @bad, "$m\{$k} missing"; next }
		if (grep { $col eq $_ } @growing)
		{
			push @bad, "$m\{$k} = $got, not between $lo and $hi"
			  unless defined $lo && defined $hi && $got >= $lo - 1e-6 && $got <= $hi + 1e-6;
		}
		else
		{
			push @bad, "$m\{$k} = $got, not " . ($lo // 'NULL') unless num_eq($got, $lo);
		}
	}
	my @extra = grep { !exists $before->{$m}{$_} } keys %{ $series->{$m} // {} };
	push @bad, "$m: series no row gives: @extra" if @extra;
}
my @unknown = grep { /^event_store_/ && !exists $before->{$_} } keys %$series;
push @bad, "series no column gives: @unknown" if @unknown;
is(join("\n", @bad), '', "(2) each of the $n values of es_stats() and es_consumer_metrics is a series with its labels, type and value");

# the workload, as the series tell it
my $app = "database=app,server=$server";
my $app2 = "database=app2,server=$server";
is(join(' ', map { $series->{"event_store_stats_$_"}{$app} // 'none' } qw(transactions events rolled_back conflicts)),
	'21 41 3 1', '(2) app: 21 committed appending transactions, 41 events, 3 rolled back, 1 conflict');
is(join(' ', map { $series->{"event_store_stats_$_"}{$app2} // 'none' } qw(transactions events rolled_back conflicts)),
	'5 5 0 0', '(2) app2: its own counters (5 transactions of one event)');
cmp_ok($series->{event_store_stats_oldest_xact_seconds}{$app} // 0, '>', 0,
	'(2) app: the open appending transaction is seen (oldest_xact_seconds)');
is($series->{event_store_consumer_lag_positions}{"database=app,kind=consumer,name=mailer,server=$server"},
	($series->{event_store_stats_head}{$app} // 0) - 10, '(2) the consumer mailer is behind by the head less its checkpoint 10');
my $picky = "database=app,kind=projection,name=picky,server=$server";
ok(($series->{event_store_consumer_faulted}{$picky} // '') eq '1'
	  && ($series->{event_store_consumer_paused}{$picky} // '') eq '0'
	  && ($series->{event_store_consumer_lag_positions}{$picky} // 0) > 0,
	'(2) picky: faulted (not paused), behind the head');
is(join(' ', map { $series->{"event_store_consumer_$_"}{"database=app,kind=projection,name=totals,server=$server"} // 'none' }
	qw(faulted lag_positions processed)), '0 0 41', '(2) totals: at the head, 41 events applied');

stop_exporter($exp->[0]);
my $log = slurp_file("$tmp/exporter.log");
my @errors = grep { /collected before|level=error|Error running query|Unparseable|Could not parse|Failed to reload|Missing column/ }
  split /\n/, $log;
is(join("\n", @errors), '', '(2) the exporter logged no duplicate series and no error about the queries');
like($scrape->{content}, qr/^pg_exporter_user_queries_load_error\{[^}]*\} 0$/m,
	'(2) the exporter loaded the query file');

# ---------------------------------------------------------------------------
# (3) without the label database, the two databases' rows collide
# ---------------------------------------------------------------------------
(my $nolabel = $yaml) =~ s/^    - database:\n.*\n.*\n//mg;
open(my $fh, '>', "$tmp/nolabel.yml") or die;
print $fh $nolabel;
close $fh;
$exp = start_exporter("$tmp/nolabel.yml", "$tmp/nolabel.log");
ok($exp, '(3) an exporter with the file less its label database listens');
if ($exp)
{
	my $r = $http->get("$exp->[1]/metrics");
	stop_exporter($exp->[0]);
	ok($r->{status} == 500 && $r->{content} =~ /was collected before with the same name and label values/,
		'(3) without the label database the scrape fails: "collected before"');
}

$open->rollback;
$_->disconnect for $dbh, $dbh2, $open;
es_check_log($node, '023');
$node->stop;
done_testing();
