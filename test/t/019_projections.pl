# Projections run by the server (issue 16), end to end with real workers:
#
# (1) 4 writers with random delays before commit and 20% rollbacks; 3
#     projections (the whole log, one category, a set of types) whose
#     handlers insert each position into an unkeyed table, registered
#     before the writers start and run by the database's worker with no
#     client: each table ends with exactly the committed matching events,
#     once each.
# (2) The same through 5 crashes of the server (kill -9 of the postmaster
#     and all its children, one in the middle of a slow page): after each
#     restart the launcher starts the worker, which catches up with no new
#     append, and nothing is applied twice or skipped.
# (3) A poison event under each policy, run by the worker: paused at its
#     position minus one with everything before it applied; skipped with
#     exactly one dead-letter row and everything else applied; no retry
#     before the backoff; the other projections' lag is unaffected.
# (4) A client running a projection (es_run_projection) in a loop while the
#     worker runs it too: no page is applied twice.
# (5) Errors that leave a page (a cancel, a failed assertion, a page over
#     event_store.projection_timeout) count as attempts of that projection
#     and fault it; the others go on. A handler's advisory lock does not
#     outlive its page.
# (6) pg_dump and pg_restore (roles first): the registrations come back with
#     their checkpoints and run on without applying an event twice.
# (7) The positions of a rolled-back transaction above the newest event,
#     handed out again after a restart, are not skipped (found by the
#     assertion-enabled run: a checkpoint at the horizon passed them).
# (8) DROP DATABASE with a worker running projections in it works.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DBI;
use POSIX ();
use Time::HiRes qw(time usleep);
use EsTest;

my $started = time;
my $node = es_new_node('projections', conf => q{
max_worker_processes = 16
event_store.notifier_idle_timeout = '30s'
event_store.projection_timeout = '1s'
});

sub must
{
	my ($dbh, $sql, $label) = @_;
	my $r = es_run($dbh, $sql);
	ok($r->{ok}, $label) or diag("$r->{state}: " . ($r->{err} // ''));
	return $r;
}

my $setup = q{
CREATE EXTENSION event_store;
CREATE ROLE proj_app LOGIN;
GRANT SELECT, INSERT ON event_store.events TO proj_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON event_store.projections, event_store.dead_letters TO proj_app;
GRANT SELECT ON event_store.es_projections, event_store.es_dead_letters TO proj_app;
CREATE SCHEMA rm AUTHORIZATION proj_app;
SET ROLE proj_app;
CREATE TABLE rm.all_seen (position bigint);
CREATE TABLE rm.cat_seen (position bigint);
CREATE TABLE rm.type_seen (position bigint);
CREATE FUNCTION rm.all_page(e event_store.es_event[]) RETURNS void LANGUAGE sql
  AS $$ INSERT INTO rm.all_seen SELECT x.position FROM unnest(e) x $$;
-- one event at a time, slowly: a crash finds it in the middle of a page
CREATE FUNCTION rm.cat_one(e event_store.es_event) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_sleep(0.002);
  INSERT INTO rm.cat_seen VALUES (e.position);
END $$;
CREATE FUNCTION rm.type_page(e event_store.es_event[]) RETURNS void LANGUAGE sql
  AS $$ INSERT INTO rm.type_seen SELECT x.position FROM unnest(e) x $$;
SELECT event_store.es_register_projection('all', 'rm.all_page(event_store.es_event[])', page_size => 50);
SELECT event_store.es_register_projection('cat', 'rm.cat_one(event_store.es_event)', category => 'alpha',
                                          page_size => 20);
SELECT event_store.es_register_projection('types', 'rm.type_page(event_store.es_event[])',
                                          types => '{Rare,Other}', page_size => 7);
RESET ROLE;
};
$node->safe_psql('postgres', 'CREATE DATABASE proj');
$node->safe_psql('proj', $setup);

# The writers: each in its own process, $n transactions of 1 to 3 events
# into streams of categories alpha, beta, gamma; a random delay before the
# commit; one in five rolled back.
sub writers
{
	my ($n, $seed) = @_;
	my @pids;
	for my $w (1 .. 4)
	{
		my $pid = fork();
		die "fork: $!" unless defined $pid;
		if ($pid == 0)
		{
			srand($seed * 10 + $w);
			my $h = eval { es_connect($node, 'proj') };
			POSIX::_exit(0) unless $h;
			for my $i (1 .. $n)
			{
				my $cat = (qw(alpha beta gamma))[ int(rand(3)) ];
				my $type = (qw(Common Common Rare Other Common))[ int(rand(5)) ];
				my $events = join(',', map { qq{{"type": "$type", "data": {"i": $i}}} } 1 .. 1 + int(rand(3)));
				last unless es_run($h, 'BEGIN')->{ok};
				my $r = es_run($h, qq{SELECT event_store.es_append('$cat-$w-$seed-' || ($i % 7), NULL, '[$events]')});
				usleep(int(rand(3000)));
				es_run($h, rand() < 0.2 || !$r->{ok} ? 'ROLLBACK' : 'COMMIT');
				last unless $h->ping;
			}
			POSIX::_exit(0);
		}
		push @pids, $pid;
	}
	return @pids;
}

# Wait until every running projection is at the head (bounded).
sub caught_up
{
	my ($dbh, $secs) = @_;
	my $end = time + $secs;
	while (time < $end)
	{
		my $r = es_run($dbh, q{SELECT count(*) FROM event_store.es_projections
		                        WHERE state = 'running' AND position < event_store.es_head_position()});
		return 1 if $r->{ok} && $r->{rows}[0][0] == 0;
		usleep(100_000);
	}
	return 0;
}

# Each table holds exactly the committed matching events, once each.
sub exactly_once
{
	my ($dbh, $label) = @_;
	for my $t (
		[ 'all_seen', 'true' ],
		[ 'cat_seen', q{event_store.es_category(e.stream) = 'alpha'} ],
		[ 'type_seen', q{e.type IN ('Rare', 'Other')} ])
	{
		my ($table, $cond) = @$t;
		my $r = es_run($dbh, qq{
			SELECT (SELECT count(*) FROM event_store.events e WHERE $cond),
			       (SELECT count(*) FROM rm.$table),
			       (SELECT count(*) FROM (SELECT position FROM rm.$table GROUP BY position HAVING count(*) > 1) d),
			       (SELECT count(*) FROM event_store.events e WHERE $cond
			           AND NOT EXISTS (SELECT FROM rm.$table s WHERE s.position = e.position)),
			       (SELECT count(*) FROM rm.$table s
			         WHERE NOT EXISTS (SELECT FROM event_store.events e WHERE e.position = s.position AND $cond))});
		if (!$r->{ok})
		{
			fail("$label: $table: $r->{err}");
			next;
		}
		my ($want, $have, $dups, $missing, $extra) = @{ $r->{rows}[0] };
		ok($want > 0 && $dups == 0 && $missing == 0 && $extra == 0 && $have == $want,
			"$label: $table holds each of the $want committed matching events exactly once")
		  or diag("events $want, rows $have, duplicated $dups, missing $missing, extra $extra");
	}
}

# ---------------------------------------------------------------------------
# (1) concurrent writers, the worker alone
# ---------------------------------------------------------------------------
my $obs = es_connect($node, 'proj');
my @pids = writers(150, 1);
waitpid($_, 0) for @pids;
ok(caught_up($obs, 60), '(1) the worker brings every projection to the head, with no client running them');
exactly_once($obs, '(1)');
my $r = es_run($obs, q{SELECT count(*) FROM pg_stat_activity
                         WHERE backend_type = 'event_store notifier' AND datname = 'proj'});
is($r->{rows}[0][0], 1, '(1) one worker in the database runs them (and notifies)');

# ---------------------------------------------------------------------------
# (2) crashes
# ---------------------------------------------------------------------------

$obs->disconnect;
for my $cycle (1 .. 5)
{
	@pids = writers(60, 10 + $cycle);
	# in the middle of the writers and of the worker's pages
	usleep(150_000 + int(rand(300_000)));
	ok(es_crash_and_restart($node), "(2) cycle $cycle: kill -9 of the server during the appends and pages; it restarts");
	waitpid($_, 0) for @pids;
	$obs = es_connect($node, 'proj');
	# no client appends now: the launcher's worker catches up by itself
	ok(caught_up($obs, 60), "(2) cycle $cycle: after the restart the projections catch up with no new append");
	exactly_once($obs, "(2) cycle $cycle");
	$obs->disconnect;
}
$obs = es_connect($node, 'proj');

# ---------------------------------------------------------------------------
# (3) poison events under each policy, run by the worker
# ---------------------------------------------------------------------------
$node->safe_psql('proj', q{
SET ROLE proj_app;
CREATE TABLE rm.p_seen (projection text, position bigint);
CREATE FUNCTION rm.picky(e event_store.es_event) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF e.data ? 'poison' THEN RAISE EXCEPTION 'poison at version %', e.version USING ERRCODE = '22000'; END IF;
  INSERT INTO rm.p_seen VALUES ('picky', e.position);
END $$;
CREATE FUNCTION rm.lenient(e event_store.es_event) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF e.data ? 'poison' THEN RAISE EXCEPTION 'poison at version %', e.version USING ERRCODE = '22000'; END IF;
  INSERT INTO rm.p_seen VALUES ('lenient', e.position);
END $$;
SELECT event_store.es_register_projection('picky', 'rm.picky(event_store.es_event)', category => 'poison',
                                          max_attempts => 3, backoff => '300 ms', on_error => 'pause',
                                          start_position => event_store.es_head_position());
SELECT event_store.es_register_projection('lenient', 'rm.lenient(event_store.es_event)', category => 'poison',
                                          max_attempts => 2, backoff => '300 ms', on_error => 'skip',
                                          start_position => event_store.es_head_position());
RESET ROLE;
});
my $p = es_run($obs, q{SELECT (event_store.es_append('poison-1', 0,
  '[{"type": "T", "data": {}}, {"type": "T", "data": {}}, {"type": "T", "data": {"poison": 1}},
    {"type": "T", "data": {}}]')).first_position});
my $first = $p->{rows}[0][0];
my $t0 = time;
my ($picky, $lenient);
my $end = time + 30;
while (time < $end)
{
	$picky = es_run($obs, q{SELECT state, position, attempts, error_position, error_sqlstate
	                          FROM event_store.es_projections WHERE name = 'picky'})->{rows}[0];
	$lenient = es_run($obs, q{SELECT state, position, dead_lettered
	                            FROM event_store.es_projections WHERE name = 'lenient'})->{rows}[0];
	last if $picky->[0] eq 'faulted' && $lenient->[1] >= $first + 3;
	usleep(50_000);
}
my $took = time - $t0;
is($picky->[0], 'faulted', '(3) pause: the projection faults after max_attempts');
is($picky->[1], $first + 1, '(3) pause: its checkpoint is the poison event\'s position minus one');
is($picky->[3], $first + 2, '(3) pause: the error names the poison event');
is($picky->[2], 3, '(3) pause: after 3 attempts');
cmp_ok($took, '>=', 0.3 + 0.6, '(3) pause: the retries waited for their backoff (300 ms, then 600 ms)');
is($lenient->[1], $first + 3, '(3) skip: the checkpoint passed the poison event and the one after it');
is($lenient->[2], 1, '(3) skip: one event dead-lettered');
$r = es_run($obs, q{SELECT consumer, position, sqlstate, attempts FROM event_store.dead_letters ORDER BY 1});
is_deeply($r->{rows}, [ [ 'lenient', $first + 2, '22000', 2 ] ], '(3) skip: exactly one dead-letter row, with the error');
$r = es_run($obs, q{SELECT projection, string_agg(position::text, ',' ORDER BY position) FROM rm.p_seen GROUP BY 1 ORDER BY 1});
is_deeply($r->{rows}, [ [ 'lenient', join(',', $first, $first + 1, $first + 3) ], [ 'picky', join(',', $first, $first + 1) ] ],
	'(3) everything before the poison applied by both, and after it by the lenient one, once');
# the others went on meanwhile
ok(caught_up($obs, 30), '(3) the other projections are at the head: the faulted one holds nobody back');
exactly_once($obs, '(3)');

# ---------------------------------------------------------------------------
# (4) a client and the worker run the same projection
# ---------------------------------------------------------------------------
{
	my $client = es_connect($node, 'proj', 'proj_app');
	@pids = writers(80, 40);
	my ($calls, $errors) = (0, 0);
	while (grep { waitpid($_, POSIX::WNOHANG()) == 0 } @pids)
	{
		my $x = es_run($client, q{SELECT event_store.es_run_projection('all', 3)});
		$calls++;
		$errors++ unless $x->{ok};
		usleep(2_000);
	}
	waitpid($_, 0) for @pids;
	ok($calls > 10 && $errors == 0, "(4) the client ran the projection $calls times beside the worker, without error");
	ok(caught_up($obs, 60), '(4) caught up');
	exactly_once($obs, '(4)');
	$client->disconnect;
}

# ---------------------------------------------------------------------------
# (5) errors outside the handler's exception block, and timeouts
# ---------------------------------------------------------------------------
$node->safe_psql('proj', q{
SET ROLE proj_app;
CREATE FUNCTION rm.cancels(e event_store.es_event) RETURNS void LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'cancelled by the handler' USING ERRCODE = 'query_canceled'; END $$;
CREATE FUNCTION rm.asserts(e event_store.es_event) RETURNS void LANGUAGE plpgsql AS $$
BEGIN ASSERT false, 'an assertion of the handler'; END $$;
CREATE FUNCTION rm.sleeps(e event_store.es_event) RETURNS void LANGUAGE sql AS $$ SELECT pg_sleep(3) $$;
CREATE TABLE rm.locked (position bigint);
CREATE FUNCTION rm.locks(e event_store.es_event) RETURNS void LANGUAGE sql
  AS $$ SELECT pg_advisory_lock(4242); INSERT INTO rm.locked VALUES (e.position) $$;
SELECT event_store.es_register_projection(n, ('rm.' || n || '(event_store.es_event)')::regprocedure,
                                          category => 'err', max_attempts => 2, backoff => '100 ms',
                                          start_position => event_store.es_head_position())
  FROM unnest(ARRAY['cancels', 'asserts', 'sleeps', 'locks']) n;
RESET ROLE;
});
es_run($obs, q{SELECT event_store.es_append('err-1', 0, 'E', '{}')});
$end = time + 30;
my $states;
while (time < $end)
{
	$states = es_col($obs, q{SELECT string_agg(name || ':' || state || ':' || coalesce(error_sqlstate, ''), ' ' ORDER BY name)
	                           FROM event_store.projections WHERE name IN ('cancels', 'asserts', 'sleeps', 'locks')});
	last if $states eq 'asserts:faulted:P0004 cancels:faulted:57014 locks:running: sleeps:faulted:57014';
	usleep(100_000);
}
is($states, 'asserts:faulted:P0004 cancels:faulted:57014 locks:running: sleeps:faulted:57014',
	'(5) a cancel, an assertion and a page over projection_timeout count as attempts and fault their projection; the other applies the event');
ok(caught_up($obs, 30), '(5) the other projections are at the head');
is(es_col($obs, q{SELECT pg_try_advisory_lock(4242)::text}), 'true', '(5) the handler\'s advisory lock went with its page');
es_run($obs, q{SELECT pg_advisory_unlock(4242)});

# A handler that catches every cancel and goes on: 5 s after its page's
# timeout its worker is ended (an error cannot stop it); the next worker
# records the attempt; after its attempts the projection faults, and the
# others run on between its attempts.
$node->safe_psql('proj', q{
SET ROLE proj_app;
CREATE FUNCTION rm.stubborn(e event_store.es_event) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  LOOP
    BEGIN
      PERFORM pg_sleep(0.2);
    EXCEPTION WHEN query_canceled THEN
      NULL;
    END;
  END LOOP;
END $$;
SELECT event_store.es_register_projection('stubborn', 'rm.stubborn(event_store.es_event)',
                                          category => 'stuck', max_attempts => 2, backoff => '100 ms',
                                          start_position => event_store.es_head_position());
RESET ROLE;
});
my $stuck_from = -s $node->logfile;
es_run($obs, q{SELECT event_store.es_append('stuck-1', 0, 'E', '{}')});
$end = time + 60;
my $stuck = '';
while (time < $end)
{
	$stuck = es_col($obs, q{SELECT state || ':' || attempts || ':' || coalesce(error_sqlstate, '') || ':' || coalesce(error_message, '')
	                          FROM event_store.projections WHERE name = 'stubborn'});
	last if $stuck =~ /^faulted:/;
	# the others run on between its attempts
	es_run($obs, q{SELECT event_store.es_append('alpha-stuck', NULL, 'Common', '{}')});
	usleep(200_000);
}
like($stuck, qr/^faulted:2:57014:the page did not stop 5000 ms after event_store\.projection_timeout/,
	'(5) a handler that catches every cancel: its worker is ended, the attempts recorded, the projection faulted');
ok(caught_up($obs, 30), '(5) the other projections are at the head');
exactly_once($obs, '(5) after the worker was ended');
like(slurp_file($node->logfile, $stuck_from),
	qr/the page of projection "stubborn" did not stop 5000 ms after event_store\.projection_timeout, and its worker was ended/,
	'(5) the log says why the worker was ended');

# ---------------------------------------------------------------------------
# (6) pg_dump and pg_restore
# ---------------------------------------------------------------------------
{
	my $dump = $node->basedir . '/proj.dump';
	my $before = es_col($obs, q{SELECT string_agg(name || ':' || position || ':' || state, ' ' ORDER BY name) FROM event_store.projections});
	$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('proj') ], '(6) pg_dump of the database');
	$node->safe_psql('postgres', 'CREATE DATABASE proj_restored');
	$node->command_ok([ 'pg_restore', '-d', $node->connstr('proj_restored'), $dump ],
		'(6) pg_restore into a new database (the roles exist: pg_dumpall --globals-only first)');
	my $res = es_connect($node, 'proj_restored');
	is(es_col($res, q{SELECT string_agg(name || ':' || position || ':' || state, ' ' ORDER BY name) FROM event_store.projections}),
		$before, '(6) every registration came back with its checkpoint and state');
	my $n0 = es_col($res, q{SELECT count(*) FROM rm.all_seen});
	es_run($res, q{SELECT event_store.es_append('alpha-restored', 0, 'Rare', '{}')});
	ok(caught_up($res, 30), '(6) the restored projections run: at the head after an append');
	is(es_col($res, q{SELECT count(*) FROM rm.all_seen}), $n0 + 1, '(6) the new event applied once, none of the old again');
	exactly_once($res, '(6) restored');
	$res->disconnect;
}

# ---------------------------------------------------------------------------
# (7) positions of a rolled-back transaction above the newest event are
# handed out again after a restart: no checkpoint may pass them
# ---------------------------------------------------------------------------
{
	es_run($obs, q{SELECT event_store.es_pause_projection('all')});
	es_run($obs, q{SELECT event_store.es_append('zeta-1', NULL, 'Z', '{}')});
	es_run($obs, 'BEGIN');
	es_run($obs, q{SELECT event_store.es_append('zeta-2', NULL, '[{"type": "Z", "data": {}}, {"type": "Z", "data": {}}, {"type": "Z", "data": {}}]')});
	es_run($obs, 'ROLLBACK');
	es_run($obs, q{SELECT event_store.es_resume_projection('all')});
	ok(caught_up($obs, 30), '(7) the whole-log projection read the event before the rolled-back positions');
	is(es_col($obs, q{SELECT (position = event_store.es_head_position())::text FROM event_store.projections WHERE name = 'all'}), 'true',
		'(7) its checkpoint is the newest event, not past the rolled-back positions');
	$obs->disconnect;
	$node->restart;
	$obs = es_connect($node, 'proj');
	es_run($obs, q{SELECT event_store.es_append('zeta-3', NULL, 'Z', '{}')});
	ok(caught_up($obs, 30), '(7) after a restart, an append takes one of those positions again, and the projections catch up');
	exactly_once($obs, '(7)');
}

# ---------------------------------------------------------------------------
# (8) DROP DATABASE with the worker in it
# ---------------------------------------------------------------------------
$obs->disconnect;
$r = es_run(es_connect($node, 'postgres'), 'DROP DATABASE proj');
ok($r->{ok}, '(8) DROP DATABASE works while the database\'s worker runs projections')
  or diag("$r->{state}: $r->{err}");

es_check_log($node, '019');
$node->stop;
note sprintf('took %.1f s', time - $started);
done_testing();
