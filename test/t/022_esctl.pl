# esctl, the operators' command-line tool (cli/, docs/esctl.md), against a
# real server:
#
# (1) tail: golden outputs, text and --json, of a fixed data set (positions,
#     event ids and times given by the owner's plain INSERT), with
#     --category, --type, --from, --from-time, --limit; the same under a
#     hostile search_path.
# (2) tail --follow across a pg_terminate_backend of its connection and a
#     restart of the server, with appends before, between and after, and a
#     rolled-back append leaving a gap: every committed position printed
#     exactly once, in order.
# (3) append: the position and version printed; a wrong expected version
#     is exit 1 with SQLSTATE V0001.
# (4) stats and projections, text and --json.
# (5) replay: a projection run by the server's worker, rewound and caught
#     up (from the beginning, from a position, --no-wait); a projection that
#     faults during its replay is exit 1 with its error.
# (6) verify: exit 0 on a correct read model, and on a projection behind
#     the head (rebuilt up to its checkpoint only), run by the projection's
#     owner (no superuser); exit 3 naming the rows after a row is deleted
#     and a value changed; the live state unchanged by it.
# (7) bad input: a wrong conninfo, an unreachable port (exit 1, a clear
#     message); every command's --help (exit 0); a bad option or argument
#     (exit 2).
#
# The binary: $ESCTL, else esctl on PATH (scripts/suites.sh puts the
# server's bindir first, where make install puts it), else pg_config
# --bindir.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use JSON::PP;
use Time::HiRes qw(time usleep);
use File::Spec;
use EsTest;

sub find_esctl
{
	return $ENV{ESCTL} if $ENV{ESCTL};
	for my $dir (split /:/, $ENV{PATH} // '')
	{
		my $f = File::Spec->catfile($dir, 'esctl');
		return $f if -x $f;
	}
	my $bindir = `pg_config --bindir`;
	chomp $bindir;
	return "$bindir/esctl";
}
my $esctl = find_esctl();
plan skip_all => "no esctl binary (make install builds and installs it): $esctl"
  unless -x $esctl;
note "esctl: $esctl";

# times in the output are in UTC whatever the machine says
$ENV{PGTZ} = 'UTC';
# and its application_name is its own ("esctl": PostgreSQL::Test::Utils sets
# PGAPPNAME), by which the follower's connection is found
delete $ENV{$_} for qw(PGHOST PGPORT PGDATABASE PGUSER PGSERVICE PGOPTIONS PGAPPNAME);

my $node = es_new_node('esctl', conf => q{
event_store.notifier_idle_timeout = '30s'
});
my $host = $node->host;
my $port = $node->port;
sub conninfo { my ($db, $user) = @_; return "host=$host port=$port dbname=$db" . ($user ? " user=$user" : '') }

# run esctl: (exit code, stdout, stderr)
sub esctl
{
	my @args = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $esctl, @args ], '<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout(120));
	return ($? >> 8, $out, $err);
}

my $admin = es_connect($node, 'postgres');
es_run($admin, 'CREATE DATABASE golden');
es_run($admin, 'CREATE DATABASE live');

# ---------------------------------------------------------------------------
# (1) golden outputs
# ---------------------------------------------------------------------------
$node->safe_psql('golden', q{
CREATE EXTENSION event_store;
INSERT INTO event_store.events (position, stream, type, data, metadata, event_id, created_at) VALUES
 (1, 'order-1', 'OrderPlaced', '{"total": 30}', '{"user_id": "u-1"}', '00000000-0000-7000-8000-000000000001', '2026-01-02 03:04:05+00'),
 (2, 'order-1', 'ItemAdded', '{"sku": "A-1", "note": "tab\there"}', NULL, '00000000-0000-7000-8000-000000000002', '2026-01-02 03:04:06.5+00'),
 (3, 'payment-7', 'PaymentTaken', '{"amount": 30}', NULL, '00000000-0000-7000-8000-000000000003', '2026-01-02 03:05:00+00'),
 (4, 'order-2', 'OrderPlaced', '{"total": 12.5}', NULL, '00000000-0000-7000-8000-000000000004', '2026-01-03 00:00:00+00'),
 (5, 'order-1', 'OrderShipped', '{"carrier": "post"}', '{"user_id": "u-7"}', '00000000-0000-7000-8000-000000000005', '2026-01-03 10:00:00+00');
});
my $g = conninfo('golden');

my $golden_text = join('', map { "$_\n" }
	"1\torder-1\t1\tOrderPlaced\t2026-01-02 03:04:05+00\t{\"total\": 30}",
	"2\torder-1\t2\tItemAdded\t2026-01-02 03:04:06.5+00\t{\"sku\": \"A-1\", \"note\": \"tab\\\\there\"}",
	"3\tpayment-7\t1\tPaymentTaken\t2026-01-02 03:05:00+00\t{\"amount\": 30}",
	"4\torder-2\t1\tOrderPlaced\t2026-01-03 00:00:00+00\t{\"total\": 12.5}",
	"5\torder-1\t3\tOrderShipped\t2026-01-03 10:00:00+00\t{\"carrier\": \"post\"}");
my ($rc, $out, $err) = esctl('tail', '-d', $g);
is($rc, 0, '(1) tail: exit 0 at the end of the feed') or diag($err);
is($out, $golden_text, '(1) tail: the golden text lines (tabs, the data\'s backslash escaped)');

my $golden_json = join('', map { "$_\n" }
	'{"position":1,"stream":"order-1","version":1,"type":"OrderPlaced","data":{"total": 30},"metadata":{"user_id": "u-1"},"event_id":"00000000-0000-7000-8000-000000000001","schema_version":1,"created_at":"2026-01-02T03:04:05+00:00"}',
	'{"position":2,"stream":"order-1","version":2,"type":"ItemAdded","data":{"sku": "A-1", "note": "tab\there"},"metadata":null,"event_id":"00000000-0000-7000-8000-000000000002","schema_version":1,"created_at":"2026-01-02T03:04:06.5+00:00"}',
	'{"position":3,"stream":"payment-7","version":1,"type":"PaymentTaken","data":{"amount": 30},"metadata":null,"event_id":"00000000-0000-7000-8000-000000000003","schema_version":1,"created_at":"2026-01-02T03:05:00+00:00"}',
	'{"position":4,"stream":"order-2","version":1,"type":"OrderPlaced","data":{"total": 12.5},"metadata":null,"event_id":"00000000-0000-7000-8000-000000000004","schema_version":1,"created_at":"2026-01-03T00:00:00+00:00"}',
	'{"position":5,"stream":"order-1","version":3,"type":"OrderShipped","data":{"carrier": "post"},"metadata":{"user_id": "u-7"},"event_id":"00000000-0000-7000-8000-000000000005","schema_version":1,"created_at":"2026-01-03T10:00:00+00:00"}');
($rc, $out, $err) = esctl('tail', '--json', '-d', $g);
is($rc, 0, '(1) tail --json: exit 0') or diag($err);
is($out, $golden_json, '(1) tail --json: one object per line, every column of es_event');
my @decoded = map { decode_json($_) } split /\n/, $out;
is(scalar(@decoded), 5, '(1) tail --json: every line is a JSON object');

sub positions_of { return join(',', map { (split /\t/)[0] } split /\n/, $_[0]) }
($rc, $out) = esctl('tail', '-d', $g, '--category', 'order');
is(positions_of($out), '1,2,4,5', '(1) tail --category order: the order events');
($rc, $out) = esctl('tail', '-d', $g, '--type', 'OrderPlaced', '--type', 'OrderShipped');
is(positions_of($out), '1,4,5', '(1) tail --type (twice): those types');
($rc, $out) = esctl('tail', '-d', $g, '--category', 'order', '--type', 'ItemAdded');
is(positions_of($out), '2', '(1) tail --category with --type: both filters');
($rc, $out) = esctl('tail', '-d', $g, '--from', '3');
is(positions_of($out), '4,5', '(1) tail --from 3: after position 3');
($rc, $out) = esctl('tail', '-d', $g, '--from', 'now');
is($out, '', '(1) tail --from now: nothing (no new event)');
($rc, $out) = esctl('tail', '-d', $g, '--from-time', '2026-01-03 00:00:00+00');
is(positions_of($out), '4,5', '(1) tail --from-time: the events created at or after it');
($rc, $out) = esctl('tail', '-d', $g, '-n', '2');
is(positions_of($out), '1,2', '(1) tail -n 2: two events');

# A hostile search_path (objects named like those esctl uses, in a schema
# listed first) changes nothing: every name is qualified and each session
# pins search_path to pg_catalog, pg_temp.
$node->safe_psql('golden', q{
CREATE SCHEMA evil;
CREATE FUNCTION evil.row_to_json(event_store.es_event) RETURNS json LANGUAGE sql AS $$ SELECT '{"hijacked": true}'::json $$;
CREATE FUNCTION evil.cat(text, text) RETURNS text LANGUAGE sql AS $$ SELECT 'hijacked' $$;
CREATE OPERATOR evil.|| (leftarg = text, rightarg = text, function = evil.cat);
CREATE FUNCTION evil.es_read_all(bigint, bigint, text[]) RETURNS SETOF event_store.es_event
  LANGUAGE sql AS $$ SELECT * FROM event_store.events WHERE false $$;
ALTER DATABASE golden SET search_path = evil, event_store, pg_catalog;
});
($rc, $out, $err) = esctl('tail', '-d', $g);
is($out, $golden_text, '(1) tail under a hostile search_path: the same text');
($rc, $out, $err) = esctl('tail', '--json', '-d', $g);
is($out, $golden_json, '(1) tail --json under a hostile search_path: the same JSON');

# ---------------------------------------------------------------------------
# (2) tail --follow across a terminated connection and a restart
# ---------------------------------------------------------------------------
my $l = conninfo('live');
$node->safe_psql('live', 'CREATE EXTENSION event_store');
my $live = es_connect($node, 'live');
my $appended = 0;
sub append_some
{
	my ($n, $label) = @_;
	for (1 .. $n)
	{
		my $r = es_run($live, q{SELECT event_store.es_append('follow-' || $1::text, NULL, 'Tick', '{}')},
			$appended % 3);
		$appended++ if $r->{ok};
		diag("$label: $r->{err}") unless $r->{ok};
	}
}
append_some(5, 'before');

my $follow_out = "$PostgreSQL::Test::Utils::tmp_check/esctl_follow.out";
my $follow_err = "$PostgreSQL::Test::Utils::tmp_check/esctl_follow.err";
my $follower = IPC::Run::start([ $esctl, 'tail', '--follow', '-d', $l ],
	'<', \undef, '>', $follow_out, '2>', $follow_err);

# the printed positions, once the file has at least $n lines (bounded)
sub printed_positions
{
	my ($n, $secs) = @_;
	my $end = time + ($secs // 90);
	my @pos;
	while (time < $end)
	{
		@pos = ();
		if (open(my $fh, '<', $follow_out))
		{
			while (my $line = <$fh>)
			{
				push @pos, $1 if $line =~ /^(\d+)\t.*\n\z/s;
			}
			close $fh;
		}
		return @pos if @pos >= $n;
		usleep(50_000);
	}
	return @pos;
}

# the committed positions, as the store has them
sub stored_positions
{
	my $dbh = es_connect($node, 'live');
	my $r = es_run($dbh, 'SELECT position FROM event_store.events ORDER BY position');
	$dbh->disconnect;
	return map { $_->[0] } @{ $r->{rows} };
}

# the follower's backend pid (bounded wait)
sub follower_pid
{
	my ($not) = @_;
	my $end = time + 90;
	while (time < $end)
	{
		my $dbh = eval { es_connect($node, 'postgres') };
		if ($dbh)
		{
			my $r = es_run($dbh, q{SELECT pid FROM pg_stat_activity
			                        WHERE application_name = 'esctl' AND datname = 'live'
			                          AND pid <> $1}, $not // 0);
			$dbh->disconnect;
			return $r->{rows}[0][0] if $r->{ok} && @{ $r->{rows} };
		}
		usleep(50_000);
	}
	return undef;
}

my @p = printed_positions(5);
is(join(',', @p), join(',', stored_positions()), '(2) follow: the events before it started');
my $pid = follower_pid();
ok($pid, '(2) follow: its connection is seen in pg_stat_activity');

# a rolled-back append leaves a gap in the positions
es_run($live, 'BEGIN');
es_run($live, q{SELECT event_store.es_append('follow-x', NULL, 'Gone', '{}')});
es_run($live, 'ROLLBACK');
append_some(5, 'after a rollback');
@p = printed_positions(10);
is(join(',', @p), join(',', stored_positions()), '(2) follow: woken by the notifications, the gap skipped');

es_run($admin, 'SELECT pg_terminate_backend($1)', $pid);
append_some(5, 'after pg_terminate_backend');
my $pid2 = follower_pid($pid);
ok($pid2 && $pid2 != $pid, '(2) follow: it reconnects after pg_terminate_backend');
append_some(5, 'after the reconnect');
@p = printed_positions(20);
is(join(',', @p), join(',', stored_positions()), '(2) follow: every event once across a terminated connection');

$live->disconnect;
$admin->disconnect;
$node->restart;
$live = es_connect($node, 'live');
$admin = es_connect($node, 'postgres');
append_some(5, 'after the restart');
@p = printed_positions(25);
append_some(3, 'later');
@p = printed_positions(28);
my @stored = stored_positions();
is(scalar(@stored), 28, '(2) 28 events committed');
is(join(',', @p), join(',', @stored), '(2) follow: every event once, in order, across a restart');
my %seen;
$seen{$_}++ for @p;
is(scalar(grep { $seen{$_} > 1 } keys %seen), 0, '(2) follow: no position printed twice');

$follower->signal('TERM');
$follower->finish;
is($? >> 8, 0, '(2) follow: SIGTERM ends it with exit 0');
like(slurp_file($follow_err), qr/connection lost after position \d+/,
	'(2) follow: the lost connections are said on stderr');

# ---------------------------------------------------------------------------
# (3) append
# ---------------------------------------------------------------------------
($rc, $out, $err) = esctl('append', 'order-9', '-d', $l, '--expected-version', 'no-stream',
	'--type', 'OrderPlaced', '--data', '{"total": 5}', '--metadata', '{"user_id": "u-9"}');
is($rc, 0, '(3) append: exit 0') or diag($err);
my $newest = es_col($live, 'SELECT max(position) FROM event_store.events');
like($out, qr/^stream: +order-9\nfirst_version: +1\nlast_version: +1\nfirst_position: +$newest\nlast_position: +$newest\n\z/,
	'(3) append: the stream, version and position');
($rc, $out, $err) = esctl('append', 'order-9', '-d', $l, '--expected-version', '0',
	'--type', 'OrderPlaced', '--data', '{}');
is($rc, 1, '(3) append: a wrong expected version is exit 1');
like($err, qr/wrong expected version for stream "order-9".*SQLSTATE V0001/s,
	'(3) append: the message and SQLSTATE V0001 on stderr');
($rc, $out, $err) = esctl('append', 'order-9', '-d', $l, '--expected-version', 'any',
	'--type', 'Note', '--data', '{"a": 1}', '--json');
is($rc, 0, '(3) append --json: exit 0');
$newest = es_col($live, 'SELECT max(position) FROM event_store.events');
is_deeply(decode_json($out), { stream => 'order-9', first_version => 2, last_version => 2,
	first_position => $newest, last_position => $newest }, '(3) append --json: the result as an object');
($rc, $out, $err) = esctl('append', 'order-9', '-d', $l, '--expected-version', 'any',
	'--type', 'Note', '--data', '{not json');
is($rc, 1, '(3) append: invalid JSON is exit 1');
like($err, qr/SQLSTATE 22P02/, '(3) append: with its SQLSTATE');

# ---------------------------------------------------------------------------
# (4) stats and projections (es_stats: if this build of the extension has it)
# ---------------------------------------------------------------------------
if (es_col($live, q{SELECT pg_catalog.to_regprocedure('event_store.es_stats()') IS NOT NULL}) eq '1')
{
	($rc, $out, $err) = esctl('stats', '-d', $l);
	is($rc, 0, '(4) stats: exit 0') or diag($err);
	like($out, qr/^database: +live$/m, '(4) stats: name: value lines (database)');
	like($out, qr/^events: +\d+$/m, '(4) stats: name: value lines (events)');
	($rc, $out, $err) = esctl('stats', '-d', $l, '--json');
	my $s = eval { decode_json($out) };
	ok($rc == 0 && $s && $s->{database} eq 'live', '(4) stats --json: one object');
}
else
{
	note 'this build of the extension has no es_stats(): stats not tested';
	($rc, $out, $err) = esctl('stats', '-d', $l);
	is($rc, 1, '(4) stats without es_stats(): exit 1');
}

# ---------------------------------------------------------------------------
# (5) replay, with a projection the server's worker runs
# ---------------------------------------------------------------------------
$node->safe_psql('live', q{
CREATE ROLE esctl_app LOGIN;
GRANT SELECT, INSERT ON event_store.events TO esctl_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON event_store.projections, event_store.dead_letters TO esctl_app;
GRANT SELECT ON event_store.es_projections, event_store.es_dead_letters TO esctl_app;
CREATE SCHEMA rm AUTHORIZATION esctl_app;
SET ROLE esctl_app;
CREATE TABLE rm.seen (position bigint, stream text, type text);
CREATE TABLE rm.totals (stream text PRIMARY KEY, events integer NOT NULL);
CREATE FUNCTION rm.apply(e event_store.es_event[]) RETURNS void LANGUAGE sql AS $$
  INSERT INTO rm.seen SELECT x.position, x.stream, x.type FROM unnest(e) x;
  INSERT INTO rm.totals AS t SELECT x.stream, count(*) FROM unnest(e) x GROUP BY x.stream
  ON CONFLICT (stream) DO UPDATE SET events = t.events + excluded.events $$;
CREATE FUNCTION rm.reset() RETURNS void LANGUAGE sql AS $$ DELETE FROM rm.seen; DELETE FROM rm.totals $$;
SELECT event_store.es_register_projection('seen', 'rm.apply(event_store.es_event[])',
                                          reset_handler => 'rm.reset()', page_size => 7);
CREATE FUNCTION rm.poisoned(e event_store.es_event) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF e.type = 'Poison' THEN RAISE EXCEPTION 'poison at %', e.position USING ERRCODE = '22000'; END IF;
END $$;
SELECT event_store.es_register_projection('poisoned', 'rm.poisoned(event_store.es_event)',
                                          max_attempts => 1, backoff => '0');
RESET ROLE;
});

sub caught_up
{
	my ($name) = @_;
	my $end = time + 90;
	while (time < $end)
	{
		my $r = es_run($live, q{SELECT position >= event_store.es_head_position() FROM event_store.es_projections
		                         WHERE name = $1}, $name);
		return 1 if $r->{ok} && $r->{rows}[0][0];
		usleep(100_000);
	}
	return 0;
}
ok(caught_up('seen'), '(5) the worker runs the projection to the head');
my $once = q{SELECT (SELECT count(*) FROM rm.seen) = (SELECT count(*) FROM event_store.events)
              AND NOT EXISTS (SELECT FROM rm.seen GROUP BY position HAVING count(*) > 1)};
is(es_col($live, $once), '1', '(5) each event in the read model once');

($rc, $out, $err) = esctl('projections', '-d', $l);
is($rc, 0, '(4) projections: exit 0') or diag($err);
like($out, qr/^name +\| state +\| position \| head \| lag \| lag_seconds \| processed \| dead_lettered \| attempts \| last_error$/m,
	'(4) projections: the header');
my $head = es_col($live, 'SELECT event_store.es_head_position()');
like($out, qr/^seen +\| running +\| +$head \| +$head \| +0 \|/m, '(4) projections: a row with its checkpoint, head, lag');
($rc, $out, $err) = esctl('projections', '-d', $l, '--json');
my @rows = map { decode_json($_) } split /\n/, $out;
is(join(',', map { $_->{name} } @rows), 'poisoned,seen', '(4) projections --json: one object per projection');

($rc, $out, $err) = esctl('replay', 'seen', '--from-beginning', '-d', $l, '--timeout', '90');
is($rc, 0, '(5) replay --from-beginning: exit 0') or diag("$out\n$err");
like($out, qr/^seen: rewound to position 0\n/, '(5) replay: rewound');
like($out, qr/^seen: caught up with position $head$/m, '(5) replay: caught up with the head as of the rewind');
unlike($out, qr/\r/, '(5) replay: no progress bar when stdout is not a terminal');
is(es_col($live, $once), '1', '(5) after the replay each event is in the read model once');

($rc, $out, $err) = esctl('replay', 'seen', '--from-position', '20', '-d', $l, '--timeout', '90');
is($rc, 0, '(5) replay --from-position 20: exit 0') or diag("$out\n$err");
is(es_col($live, 'SELECT min(position) || \'-\' || max(position) || \'/\' || count(*) FROM rm.seen'),
	es_col($live, 'SELECT min(position) || \'-\' || max(position) || \'/\' || count(*) FROM event_store.events WHERE position > 20'),
	'(5) replay --from-position 20: the reset handler ran, the events after 20 applied');

($rc, $out, $err) = esctl('replay', 'seen', '--from-beginning', '--no-wait', '-d', $l);
is($rc, 0, '(5) replay --no-wait: exit 0');
is($out, "seen: rewound to position 0\n", '(5) replay --no-wait: rewound only');
ok(caught_up('seen'), '(5) the worker catches up after --no-wait');

my $poison = es_col($live, q{SELECT last_position FROM event_store.es_append('order-9', NULL, 'Poison', '{}')});
my $end = time + 60;
usleep(100_000) while time < $end
  && es_col($live, q{SELECT state FROM event_store.es_projections WHERE name = 'poisoned'}) ne 'faulted';
($rc, $out, $err) = esctl('replay', 'poisoned', '--from-beginning', '-d', $l, '--timeout', '90');
is($rc, 1, '(5) replay of a projection that faults: exit 1');
my $before_poison = $poison - 1;
like($err, qr/projection "poisoned" is faulted at position $before_poison: 22000: poison at $poison/,
	'(5) replay: the fault and its error on stderr');
ok(caught_up('seen'), '(5) the other projection catches up');

# ---------------------------------------------------------------------------
# (6) verify
# ---------------------------------------------------------------------------
my $snapshot = q{SELECT (SELECT string_agg(position::text, ',' ORDER BY position) FROM rm.seen) || ' | ' ||
                        (SELECT string_agg(stream || '=' || events, ',' ORDER BY stream) FROM rm.totals) || ' | ' ||
                        (SELECT position || ' ' || processed FROM event_store.projections WHERE name = 'seen')};
my $before = es_col($live, $snapshot);
($rc, $out, $err) = esctl('verify', 'seen', '-d', $l);
is($rc, 0, '(6) verify of a correct read model: exit 0') or diag("$out\n$err");
like($out, qr/^rm\.seen: the same$/m, '(6) verify: rm.seen the same');
like($out, qr/^rm\.totals: the same$/m, '(6) verify: rm.totals the same (every table of the handler\'s schema)');
is(es_col($live, $snapshot), $before, '(6) verify: the live read model and checkpoint unchanged');

# a projection behind the head (paused, events appended since): the rebuild
# stops at its live checkpoint, not at the head
es_run($live, q{SELECT event_store.es_pause_projection('seen')});
my $paused_at = es_col($live, q{SELECT position FROM event_store.projections WHERE name = 'seen'});
es_run($live, q{SELECT event_store.es_append('order-9', NULL, 'Later', '{}')}) for 1 .. 3;
($rc, $out, $err) = esctl('verify', 'seen', '-d', $l);
is($rc, 0, '(6) verify of a projection behind the head: exit 0') or diag("$out\n$err");
like($out, qr/^seen: rebuilt from the beginning up to the live checkpoint $paused_at /m,
	'(6) verify: rebuilt up to the live checkpoint, below the head');
is(es_col($live, q{SELECT state || ' ' || position FROM event_store.projections WHERE name = 'seen'}),
	"paused $paused_at", '(6) verify: the projection still paused at its checkpoint');
es_run($live, q{SELECT event_store.es_resume_projection('seen')});
ok(caught_up('seen'), '(6) resumed, it catches up');
$before = es_col($live, $snapshot);

($rc, $out, $err) = esctl('verify', 'seen', '-d', conninfo('live', 'esctl_app'), '--table', 'rm.totals');
is($rc, 0, '(6) verify by the projection\'s owner (no superuser), one --table: exit 0') or diag("$out\n$err");
unlike($out, qr/rm\.seen/, '(6) verify --table: only that table');

# plant differences: a row deleted, a value changed
es_run($live, q{DELETE FROM rm.seen WHERE position = 7});
es_run($live, q{UPDATE rm.totals SET events = 99 WHERE stream = 'follow-1'});
my $planted = es_col($live, $snapshot);
my $right = es_col($live, q{SELECT events FROM rm.totals WHERE stream = 'follow-1'});
($rc, $out, $err) = esctl('verify', 'seen', '-d', $l);
is($rc, 3, '(6) verify after planting differences: exit 3') or diag("$out\n$err");
like($out, qr/^rm\.seen: 1 missing .*, 0 extra /m, '(6) verify: rm.seen has a row missing');
like($out, qr/^  missing \(7,follow-[0-9],Tick\)$/m, '(6) verify: the missing row named');
like($out, qr/^rm\.totals: 1 missing .*, 1 extra /m, '(6) verify: rm.totals has a changed row');
my $want = es_col($live, q{SELECT count(*) FROM event_store.events WHERE stream = 'follow-1'});
like($out, qr/^  missing \(follow-1,$want\)$/m, '(6) verify: the right value named');
like($out, qr/^  extra   \(follow-1,99\)$/m, '(6) verify: the planted value named');
like($out, qr/^seen: 3 different rows/m, '(6) verify: the count of differences');
is(es_col($live, $snapshot), $planted, '(6) verify: the live state unchanged (the planted rows kept)');
($rc, $out, $err) = esctl('verify', 'seen', '-d', $l, '--max-rows', '0');
ok($rc == 3 && $out =~ /\.\.\. and 1 more missing rows/, '(6) verify --max-rows 0: counts only');
($rc, $out, $err) = esctl('verify', 'nosuch', '-d', $l);
is($rc, 1, '(6) verify of an unknown projection: exit 1');
($rc, $out, $err) = esctl('verify', 'seen', '-d', $l, '--table', 'rm.nosuch');
is($rc, 1, '(6) verify of an unknown table: exit 1');
like($err, qr/no table "rm\.nosuch"/, '(6) verify: the unknown table named');

# a read model with a column named t (the name esctl gives its alias), and
# a projection without a reset handler
$node->safe_psql('live', q{
CREATE SCHEMA rm2 AUTHORIZATION esctl_app;
SET ROLE esctl_app;
CREATE TABLE rm2.tot (t text PRIMARY KEY, total numeric NOT NULL);
CREATE FUNCTION rm2.apply(e event_store.es_event[]) RETURNS void LANGUAGE sql AS $$
  INSERT INTO rm2.tot AS x SELECT y.stream, count(*) FROM unnest(e) y GROUP BY y.stream
  ON CONFLICT (t) DO UPDATE SET total = x.total + excluded.total $$;
CREATE VIEW rm2.tot_view AS SELECT * FROM rm2.tot;
SELECT event_store.es_register_projection('tot', 'rm2.apply(event_store.es_event[])');
RESET ROLE;
});
ok(caught_up('tot'), '(6) the projection without a reset handler catches up');
es_run($live, q{UPDATE rm2.tot SET total = 999});
my $owner = conninfo('live', 'esctl_app');
($rc, $out, $err) = esctl('verify', 'tot', '-d', $owner);
is($rc, 3, '(6) verify of a table with a column named t: the planted values found, exit 3') or diag("$out\n$err");
like($out, qr/^rm2\.tot: \d+ missing .*, \d+ extra /m, '(6) verify: rm2.tot compared on its whole rows');
is(es_col($live, q{SELECT count(*) FROM rm2.tot WHERE total = 999}),
	es_col($live, q{SELECT count(*) FROM rm2.tot}), '(6) verify: the live rows kept (rolled back)');
# without a reset handler verify empties the tables itself, firing their
# owner's triggers as the caller: never as a superuser
($rc, $out, $err) = esctl('verify', 'tot', '-d', $l);
is($rc, 1, '(6) verify as a superuser of a projection without a reset handler: refused, exit 1');
like($err, qr/has no reset handler: verify empties its tables itself/, '(6) verify: why it refuses');
# a view would run its functions as the caller: only tables are compared
($rc, $out, $err) = esctl('verify', 'tot', '-d', $owner, '--table', 'rm2.tot_view');
is($rc, 1, '(6) verify --table of a view: refused, exit 1');
like($err, qr/no table "rm2\.tot_view"/, '(6) verify: the view named');

# tail --follow into a reader that leaves (| head -n 2) on a quiet store:
# it ends when its reader does, not at the next event
{
	my ($hout, $herr) = ('', '');
	my $ended = eval {
		IPC::Run::run([ $esctl, 'tail', '--follow', '-d', $g ], '<', \undef, '2>', \$herr,
			'|', [ 'head', '-n', '2' ], '>', \$hout, IPC::Run::timeout(60));
		1;
	};
	ok($ended, '(2) tail --follow | head -n 2 on a quiet store ends with its reader') or diag($@);
	is(positions_of($hout), '1,2', '(2) tail --follow | head -n 2: the first two events');
}

# ---------------------------------------------------------------------------
# (7) bad input
# ---------------------------------------------------------------------------
($rc, $out, $err) = esctl('tail', '-d', 'host=' . $host . ' port=1');
is($rc, 1, '(7) an unreachable port: exit 1');
like($err, qr/^esctl: could not connect: .*(?:port 1\b|\.s\.PGSQL\.1\b)/m, '(7) an unreachable port: a clear message');
($rc, $out, $err) = esctl('stats', '-d', 'port=notaport');
is($rc, 1, '(7) a wrong conninfo: exit 1');
like($err, qr/could not connect: invalid integer value "notaport"/, '(7) a wrong conninfo: libpq\'s message');
($rc, $out, $err) = esctl('projections', '-d', 'postgresql://[oops');
is($rc, 1, '(7) a malformed URI: exit 1');
($rc, $out, $err) = esctl('tail', '-d', conninfo('nosuchdb'));
is($rc, 1, '(7) a database that does not exist: exit 1');
like($err, qr/database "nosuchdb" does not exist/, '(7) said so');

for my $cmd (qw(tail stats projections replay verify append))
{
	($rc, $out, $err) = esctl($cmd, '--help');
	ok($rc == 0 && $out =~ /^Usage:/m && $err eq '', "(7) $cmd --help: exit 0 and a usage");
	($rc, $out, $err) = esctl($cmd, '--no-such-option');
	ok($rc == 2 && $err =~ /Try "esctl $cmd --help"/, "(7) $cmd with a bad option: exit 2");
}
($rc, $out) = esctl('--help');
ok($rc == 0 && $out =~ /^Commands:/m, '(7) --help: exit 0');
($rc, $out) = esctl('--version');
like($out, qr/^esctl \(event_store\) \d+\.\d+\.\d+$/, '(7) --version');
is((esctl())[0], 2, '(7) no command: exit 2');
is((esctl('frobnicate'))[0], 2, '(7) an unknown command: exit 2');
is((esctl('tail', '--from', 'yesterday', '-d', $l))[0], 2, '(7) tail --from with a bad position: exit 2');
is((esctl('replay', 'seen', '-d', $l))[0], 2, '(7) replay without --from-...: exit 2');
is((esctl('append', 'x', '--type', 'T', '--data', '{}', '--expected-version', 'some', '-d', $l))[0], 2,
	'(7) append with a bad expected version: exit 2');
is((esctl('verify', '-d', $l))[0], 2, '(7) verify without a name: exit 2');
is((esctl('stats', 'extra', '-d', $l))[0], 2, '(7) an extra argument: exit 2');

$live->disconnect;
$admin->disconnect;
es_check_log($node, '022');
$node->stop;
done_testing();
