# Replays from a time (issue 16, item 5): created_at is the start of the
# appending transaction, so positions are not in the order of created_at.
# Three sessions interleave so that an event created earlier gets a later
# position:
#
#   A: BEGIN (tA)          B: append b1 (tB)        C: BEGIN (tC)
#   A: append a1, COMMIT   C: append c1, COMMIT     B: append d1 (tD)
#
# so created_at(a1) = tA < tB = created_at(b1) while position(a1) >
# position(b1).  For every T among those times (and before and after them
# all) es_position_before_time(T) is the smallest position of an event
# created at or after T, minus one; a replay from T (es_rebuild_projection
# with a time, run by the server's worker) applies exactly the events after
# it, once each: every event created at or after T, and the later positions
# of transactions that started before T (a1 in a replay from tB).  A
# rebuild from a position applies exactly the events after it.  The lookup
# is backed by the BRIN index events_created_at (auto_explain shows the
# plan of the function's query).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use EsTest;

my $node = es_new_node('replay_from_time', conf => q{
event_store.notifier_idle_timeout = '30s'
});
$node->safe_psql('postgres', q{
CREATE EXTENSION event_store;
CREATE ROLE replayer;
GRANT SELECT ON event_store.events TO replayer;
GRANT SELECT, INSERT, UPDATE, DELETE ON event_store.projections, event_store.dead_letters TO replayer;
GRANT SELECT ON event_store.es_projections TO replayer;
CREATE SCHEMA rm AUTHORIZATION replayer;
SET ROLE replayer;
CREATE TABLE rm.seen (position bigint);
CREATE FUNCTION rm.page(e event_store.es_event[]) RETURNS void LANGUAGE sql
  AS $$ INSERT INTO rm.seen SELECT x.position FROM unnest(e) x $$;
CREATE FUNCTION rm.reset() RETURNS void LANGUAGE sql AS $$ DELETE FROM rm.seen $$;
});

my $a = es_connect($node);
my $b = es_connect($node);
my $c = es_connect($node);

sub one
{
	my ($dbh, $sql) = @_;
	my $r = es_run($dbh, $sql);
	die "$sql: $r->{state} $r->{err}" unless $r->{ok};
	return $r->{rows}[0][0];
}

sub append
{
	my ($dbh, $stream) = @_;
	return one($dbh, qq{SELECT last_position FROM event_store.es_append('$stream', NULL, 'Happened', '{}')});
}

# a few events before, so that position 1 is not the answer by accident
append($b, 'before-1') for 1 .. 3;
my $t0 = one($b, q{SELECT clock_timestamp()});

one($a, 'BEGIN');
my $tA = one($a, q{SELECT now()});
my $p_b1 = append($b, 'b-1');
my $tB = one($b, q{SELECT created_at FROM event_store.events WHERE stream = 'b-1'});
one($c, 'BEGIN');
my $tC = one($c, q{SELECT now()});
my $p_a1 = append($a, 'a-1');
one($a, 'COMMIT');
my $p_c1 = append($c, 'c-1');
one($c, 'COMMIT');
my $p_d1 = append($b, 'd-1');
my $tD = one($b, q{SELECT created_at FROM event_store.events WHERE stream = 'd-1'});
my $tAfter = one($b, q{SELECT clock_timestamp() + interval '1 second'});

ok($p_b1 < $p_a1 && $p_a1 < $p_c1 && $p_c1 < $p_d1, 'positions: b1 < a1 < c1 < d1');
is(one($b, qq{SELECT '$tA'::timestamptz < '$tB' AND '$tB' < '$tC' AND '$tC' < '$tD'}), 1,
	'created_at: tA < tB < tC < tD (a1 created before b1, stored after it)');
is(one($b, q{SELECT string_agg(stream, ' ' ORDER BY position) FROM event_store.events
              WHERE stream NOT LIKE 'before-%'}), 'b-1 a-1 c-1 d-1', 'the log in position order');

my $head = one($b, q{SELECT event_store.es_head_position()});
my %expect = (
	t0 => [ $t0, $p_b1 - 1 ],
	tA => [ $tA, $p_b1 - 1 ],
	tB => [ $tB, $p_b1 - 1 ],
	tC => [ $tC, $p_c1 - 1 ],
	tD => [ $tD, $p_d1 - 1 ],
	after => [ $tAfter, $head ],);
for my $name (sort keys %expect)
{
	my ($t, $start) = @{ $expect{$name} };
	is(one($b, qq{SELECT event_store.es_position_before_time('$t')}), $start,
		"es_position_before_time($name) = the smallest position created at or after it, minus one");
	# the definition, checked against the log itself
	is( one($b, qq{SELECT count(*) FROM event_store.events
	                WHERE created_at >= '$t' AND position <= $start}), 0,
		"no event created at or after $name lies at or before the start");
}

# Replays by the server's worker, each exactly the expected set, once.
one($b, q{SET ROLE replayer});
one($b, q{SELECT event_store.es_register_projection('seen', 'rm.page(event_store.es_event[])',
            reset_handler => 'rm.reset()')});

sub replayed
{
	my ($label) = @_;
	my $end = time + 60;
	while (time < $end)
	{
		my $r = es_run($b, q{SELECT position >= event_store.es_head_position() AND state = 'running'
		                       FROM event_store.es_projections WHERE name = 'seen'});
		last if $r->{ok} && $r->{rows}[0][0];
		usleep(50_000);
	}
	return one($b, q{SELECT string_agg(position::text, ' ' ORDER BY position) FROM rm.seen});
}

my $all = one($b, q{SELECT string_agg(position::text, ' ' ORDER BY position) FROM event_store.events});
is(replayed('registration'), $all, 'registered: every event, once');

my %replays = (
	tA => "$p_b1 $p_a1 $p_c1 $p_d1",
	tB => "$p_b1 $p_a1 $p_c1 $p_d1",
	tC => "$p_c1 $p_d1",
	tD => "$p_d1",);
for my $name (sort keys %replays)
{
	my $t = $expect{$name}[0];
	is(one($b, qq{SELECT event_store.es_rebuild_projection('seen', '$t'::timestamptz)}), $expect{$name}[1],
		"rebuild from $name rewinds to its start");
	is(replayed($name), $replays{$name}, "replay from $name: exactly the events after the start, once each");
}
one($b, qq{SELECT event_store.es_rebuild_projection('seen', '$tAfter'::timestamptz)});
is(replayed('after') // '', '', 'replay from after the last event: nothing');
one($b, qq{SELECT event_store.es_rebuild_projection('seen', $p_b1)});
is(replayed('position'), "$p_a1 $p_c1 $p_d1", 'rebuild from a position: exactly the events after it, once each');
one($b, q{RESET ROLE});

# The lookup's plan: the BRIN index, on a log of 20 transactions of 1,000
# events (vacuumed: its ranges summarized), from a recent time.
for my $i (1 .. 20)
{
	one($b, qq{SELECT count(*) FROM event_store.es_append('bulk-$i', NULL,
	             (SELECT jsonb_agg(jsonb_build_object('type', 'Bulk', 'data', jsonb_build_object('i', g)))
	                FROM generate_series(1, 1000) g))});
}
$node->safe_psql('postgres', 'VACUUM ANALYZE event_store.events');
my $recent = one($b, q{SELECT created_at FROM event_store.events WHERE stream = 'bulk-20' LIMIT 1});
my $bulk_start = one($b, q{SELECT min(position) - 1 FROM event_store.events WHERE stream = 'bulk-20'});
my $log_offset = -s $node->logfile;
# (the assertion-enabled build has no contrib modules: the plan is checked
# on the other servers)
my $explain = es_run($b, q{LOAD 'auto_explain'})->{ok};
if ($explain)
{
	one($b, q{SET auto_explain.log_min_duration = 0});
	one($b, q{SET auto_explain.log_nested_statements = on});
}
is(one($b, qq{SELECT event_store.es_position_before_time('$recent')}), $bulk_start,
	'the lookup from the last transaction');
SKIP:
{
	skip 'auto_explain is not installed in this build', 2 unless $explain;
	one($b, q{RESET auto_explain.log_min_duration});
	my $log = slurp_file($node->logfile, $log_offset);
	like($log, qr/Bitmap Index Scan on events_created_at/,
		"the lookup's query reads the BRIN index events_created_at");
	unlike($log, qr/Index Scan using events_pkey on events/,
		'and does not walk the primary key from the first event');
}

$_->disconnect for ($a, $b, $c);
$node->stop;
done_testing();
