# Defects 1, 2 and 7 of issue 13: upcasters.
#
# (1) The signature of an upcaster is checked every time it is resolved, not
#     only at registration: its owner drops it and creates a function of the
#     same name and arguments that returns bigint, text, a set, or a
#     procedure: every read of the type fails with 42P13 (the old code
#     crashed the server, or raised XX000).  Rows written into
#     event_store.upcasters directly, by the README's schema keeper (SELECT,
#     INSERT, DELETE on it), are validated when inserted: a function with the
#     wrong signature, or one the keeper does not own, is refused and nothing
#     is stored; its own function with the right signature is stored fully
#     qualified.
# (2) The upcaster cache is not reset under a running upcaster: an upcaster
#     that reads the store itself while an invalidation arrives (a CREATE
#     FUNCTION committed by another session while it waits on an advisory
#     lock), and one that runs function DDL itself before it reads.  The read
#     returns the right rows and the server does not crash.
# (7) An upcaster registered as pg_catalog.jsonb_strip_nulls(jsonb) is stored
#     qualified and resolved under a fixed path: a reader whose search_path
#     puts a schema of an attacker first, then resets it, never runs the
#     attacker's function of the same name.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DBI;
use DBD::Pg;
use JSON::PP;
use Time::HiRes qw(time);
use EsTest;

my $started = time;
my $json = JSON::PP->new->canonical;
my $node = es_new_node('upcasters');

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION event_store;
-- the README's roles
CREATE ROLE reader LOGIN;
GRANT SELECT ON event_store.events, event_store.streams, event_store.snapshots TO reader;
CREATE ROLE keeper LOGIN;
GRANT SELECT ON event_store.events, event_store.streams, event_store.snapshots TO keeper;
GRANT SELECT, INSERT, DELETE ON event_store.upcasters TO keeper;
CREATE SCHEMA keeper AUTHORIZATION keeper;
CREATE ROLE attacker LOGIN;
CREATE SCHEMA attacker AUTHORIZATION attacker;
GRANT USAGE ON SCHEMA attacker TO PUBLIC;
});

# Every statement here runs in a new connection: the old code crashes the
# server, which ends every connection.
sub state_as
{
	my ($user, $sql) = @_;
	return es_sqlstate_of($node, 'postgres', $user, $sql);
}

sub run_as
{
	my ($user, $sql) = @_;
	my $dbh = es_connect($node, 'postgres', $user);
	my $r = es_run($dbh, $sql);
	if ($r->{state} eq 'CRASH') { es_wait_ready($node) }
	else { $dbh->disconnect }
	return $r;
}

sub must
{
	my ($user, $sql, $label) = @_;
	my $r = run_as($user, $sql);
	ok($r->{ok}, $label) or diag("$r->{state}: " . ($r->{err} // ''));
	return $r;
}

# the reads of a stream whose events are of one type, each in a new session
sub reads_of
{
	my ($stream, $type) = @_;
	return (
		es_read_stream => "SELECT * FROM event_store.es_read_stream('$stream')",
		es_read_all => "SELECT * FROM event_store.es_read_all(0, 1000, ARRAY['$type'])",
		es_load_aggregate => "SELECT * FROM event_store.es_load_aggregate('$stream')",
		es_read_stream_at => "SELECT * FROM event_store.es_read_stream_at('$stream', at_version => 100)",
	);
}

# ---------------------------------------------------------------------------
# (1) the signature is checked at every resolution
# ---------------------------------------------------------------------------
my %replacements = (
	bigint => q{CREATE FUNCTION keeper.%s(data jsonb) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$ SELECT 42::bigint $$},
	text => q{CREATE FUNCTION keeper.%s(data jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'not json at all'::text $$},
	setof => q{CREATE FUNCTION keeper.%s(data jsonb) RETURNS SETOF jsonb LANGUAGE sql IMMUTABLE AS $$ SELECT data || '{"v2": true}' $$},
	procedure => q{CREATE PROCEDURE keeper.%s(INOUT data jsonb) LANGUAGE plpgsql AS $$ BEGIN data := data || '{"v2": true}'; END $$},
);

for my $kind (sort keys %replacements)
{
	my $fn = "up_$kind";
	my $type = "Ret" . ucfirst($kind);
	my $stream = lc("ret$kind-1");
	must('keeper',
		qq{CREATE FUNCTION keeper.$fn(data jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS \$\$ SELECT data || '{"v2": true}' \$\$;
		   SELECT event_store.es_register_upcaster('$type', 1, 'keeper.$fn(jsonb)')},
		"(1) $kind: the keeper registers its upcaster $fn");
	must('postgres',
		qq{SELECT event_store.es_append('$stream', 0, '[{"type": "$type", "data": {"a": 1}}, {"type": "$type", "data": {"a": 2}}]')},
		"(1) $kind: two events of type $type");
	is(run_as('reader', "SELECT string_agg(data::text, ';' ORDER BY version) FROM event_store.es_read_stream('$stream')")->{rows}[0][0],
		'{"a": 1, "v2": true};{"a": 2, "v2": true}',
		"(1) $kind: reads are upcast");
	must('keeper',
		"DROP FUNCTION keeper.$fn(jsonb); " . sprintf($replacements{$kind}, $fn),
		"(1) $kind: the keeper drops it and creates a $kind of the same name and arguments");
	my %reads = reads_of($stream, $type);
	for my $read (sort keys %reads)
	{
		my $state = state_as('reader', $reads{$read});
		is($state, '42P13',
			"(1) defect 1: $kind in place of the upcaster: $read fails with 42P13 (not a crash, not XX000)");
	}
	# the right signature again: reads work again
	must('keeper',
		($kind eq 'procedure' ? "DROP PROCEDURE keeper.$fn(jsonb); " : "DROP FUNCTION keeper.$fn(jsonb); ")
		  . qq{CREATE FUNCTION keeper.$fn(data jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS \$\$ SELECT data || '{"v2": true}' \$\$},
		"(1) $kind: the keeper puts a function with the right signature back");
	is(run_as('reader', "SELECT count(*) FROM event_store.es_read_stream('$stream') WHERE data ? 'v2'")->{rows}[0][0],
		2, "(1) $kind: reads are upcast again");
}

# a two-argument upcaster replaced by one that returns jsonb instead of es_upcast
{
	must('keeper',
		q{CREATE FUNCTION keeper.up_two(data jsonb, metadata jsonb) RETURNS event_store.es_upcast LANGUAGE sql IMMUTABLE
		    AS $$ SELECT ROW(data || '{"v2": true}', metadata)::event_store.es_upcast $$;
		  SELECT event_store.es_register_upcaster('RetTwo', 1, 'keeper.up_two(jsonb, jsonb)')},
		'(1) two arguments: the keeper registers an upcaster of data and metadata');
	must('postgres', q{SELECT event_store.es_append('rettwo-1', 0, 'RetTwo', '{"a": 1}', '{"m": 1}')},
		'(1) two arguments: an event of its type');
	must('keeper',
		q{DROP FUNCTION keeper.up_two(jsonb, jsonb);
		  CREATE FUNCTION keeper.up_two(data jsonb, metadata jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$ SELECT data $$},
		'(1) two arguments: replaced by one returning jsonb');
	is(state_as('reader', q{SELECT * FROM event_store.es_read_stream('rettwo-1')}),
		'42P13', '(1) defect 1: a two-argument upcaster that returns jsonb: es_read_stream fails with 42P13');
}

# rows written directly into event_store.upcasters by the schema keeper
{
	must('postgres',
		q{SELECT event_store.es_append('direct-1', 0, '[{"type": "Direct", "data": [1, 2, 3]}, {"type": "Direct", "data": [4]}]')},
		'(1) direct: events of type Direct (arrays)');
	my $r = run_as('keeper',
		q{INSERT INTO event_store.upcasters (type, from_schema_version, upcaster) VALUES ('Direct', 1, 'pg_catalog.jsonb_array_length(jsonb)')});
	ok(!$r->{ok} && $r->{state} =~ /^(42P13|42501)$/,
		'(1) defect 1: the keeper inserting a row naming pg_catalog.jsonb_array_length(jsonb) fails at INSERT with 42P13 or 42501')
	  or diag("got $r->{state}: " . ($r->{err} // ''));
	is(run_as('postgres', q{SELECT count(*) FROM event_store.upcasters WHERE type = 'Direct'})->{rows}[0][0],
		0, '(1) defect 1: ... and nothing is stored');
	my $state = state_as('reader', q{SELECT * FROM event_store.es_read_stream('direct-1')});
	ok($state ne 'CRASH' && $state ne 'XX000',
		'(1) defect 1: reading the type afterwards does not crash the server')
	  or diag("got $state");
	run_as('postgres', q{DELETE FROM event_store.upcasters WHERE type = 'Direct'});

	# a function with the right signature that the keeper does not own
	$r = run_as('keeper',
		q{INSERT INTO event_store.upcasters (type, from_schema_version, upcaster) VALUES ('DirectOther', 1, 'pg_catalog.jsonb_strip_nulls(jsonb)')});
	is($r->{state}, '42501',
		'(1) defect 1: the keeper inserting a row naming a function it is not a member of the owner of fails with 42501');
	run_as('postgres', q{DELETE FROM event_store.upcasters WHERE type = 'DirectOther'});

	# its own function, named unqualified (its search_path finds it): works,
	# and what is stored is qualified
	must('keeper',
		q{CREATE FUNCTION keeper.up_direct(data jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$ SELECT jsonb_build_object('wrapped', data) $$},
		'(1) direct: the keeper creates a function with the right signature');
	$r = run_as('keeper',
		q{SET search_path = keeper, pg_catalog;
		  INSERT INTO event_store.upcasters (type, from_schema_version, upcaster) VALUES ('DirectOwn', 1, 'up_direct(jsonb)')});
	ok($r->{ok}, '(1) direct: the keeper inserting a row naming its own function works')
	  or diag("$r->{state}: " . ($r->{err} // ''));
	my $stored = run_as('postgres', q{SELECT upcaster FROM event_store.upcasters WHERE type = 'DirectOwn'})->{rows}[0][0] // '';
	like($stored, qr/\.\s*"?up_direct"?\s*\(/,
		'(1) defect 1: the stored signature is fully schema-qualified')
	  or diag("stored: '$stored'");
	must('postgres', q{SELECT event_store.es_append('directown-1', 0, 'DirectOwn', '{"a": 1}')},
		'(1) direct: an event of type DirectOwn');
	is(run_as('reader', q{SELECT data::text FROM event_store.es_read_stream('directown-1')})->{rows}[0][0],
		'{"wrapped": {"a": 1}}', '(1) direct: it upcasts reads');
}

# ---------------------------------------------------------------------------
# (7) search_path: stored qualified, resolved under a fixed path
# ---------------------------------------------------------------------------
{
	must('postgres',
		q{SELECT event_store.es_register_upcaster('Stripped', 1, 'pg_catalog.jsonb_strip_nulls(jsonb)')},
		'(7) a superuser registers pg_catalog.jsonb_strip_nulls(jsonb)');
	my $stored = run_as('postgres', q{SELECT upcaster FROM event_store.upcasters WHERE type = 'Stripped'})->{rows}[0][0] // '';
	like($stored, qr/^pg_catalog\.jsonb_strip_nulls\((?:pg_catalog\.)?jsonb\)$/,
		'(7) defect 7: the registry stores the signature qualified')
	  or diag("stored: '$stored'");
	must('attacker',
		q{CREATE FUNCTION attacker.jsonb_strip_nulls(jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$ SELECT '{"pwned": true}'::jsonb $$;
		  GRANT EXECUTE ON FUNCTION attacker.jsonb_strip_nulls(jsonb) TO PUBLIC},
		'(7) the attacker plants attacker.jsonb_strip_nulls(jsonb)');
	must('postgres', q{SELECT event_store.es_append('stripped-1', 0, 'Stripped', '{"a": null, "b": 1}')},
		'(7) an event of type Stripped');

	my $victim = es_connect($node, 'postgres', 'reader');
	es_run($victim, 'SET search_path = attacker, pg_catalog');
	my $first = es_col($victim, q{SELECT data::text FROM event_store.es_read_stream('stripped-1')});
	es_run($victim, 'RESET search_path');
	my $second = es_col($victim, q{SELECT data::text FROM event_store.es_read_stream('stripped-1')});
	my $feed = es_col($victim, q{SELECT data::text FROM event_store.es_read_all(0, 1000, ARRAY['Stripped'])});
	$victim->disconnect;
	unlike($first, qr/pwned/,
		"(7) defect 7: the first read with search_path = attacker, pg_catalog does not run the attacker's function");
	unlike($second, qr/pwned/,
		"(7) defect 7: after RESET search_path, the same connection does not run it either");
	is($second, '{"b": 1}', '(7) the registered function upcasts the event');
	is($feed, '{"b": 1}', '(7) ... in the feed too');

	# and the other way round: the cache loaded first with the default path
	my $other = es_connect($node, 'postgres', 'reader');
	my $before = es_col($other, q{SELECT data::text FROM event_store.es_read_stream('stripped-1')});
	es_run($other, 'SET search_path = attacker, pg_catalog');
	# a change of the registry makes the session resolve again, now under the hostile path
	must('postgres',
		q{SELECT event_store.es_register_upcaster('Stripped', 2, 'pg_catalog.jsonb_strip_nulls(jsonb)')},
		'(7) another upcaster registered meanwhile (the cache is reloaded)');
	my $after = es_col($other, q{SELECT data::text FROM event_store.es_read_stream('stripped-1')});
	$other->disconnect;
	is($before, '{"b": 1}', '(7) a reader with the default path: upcast');
	unlike($after, qr/pwned/,
		"(7) defect 7: a reload of the cache under search_path = attacker, pg_catalog does not pick the attacker's function");
}

# ---------------------------------------------------------------------------
# (2) the cache is not reset under a running upcaster
# ---------------------------------------------------------------------------
my $nevents = 50;
{
	# a few more upcasters, so that a reload of the cache has work to do
	must('postgres',
		q{CREATE FUNCTION public.pad_up(data jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$ SELECT data $$;
		  SELECT event_store.es_register_upcaster('Pad' || i, 1, 'public.pad_up(jsonb)') FROM generate_series(1, 20) i},
		'(2) setup: 20 more upcasters');
	must('postgres',
		q{CREATE TABLE public.enrich_gate (x int);
		  GRANT SELECT ON public.enrich_gate TO PUBLIC;
		  CREATE FUNCTION public.enrich(data jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
		  DECLARE
		    r jsonb;
		    n bigint;
		  BEGIN
		    -- wait here while another session holds the key
		    PERFORM pg_catalog.pg_advisory_lock_shared(42);
		    PERFORM pg_catalog.pg_advisory_unlock_shared(42);
		    -- a table not locked yet: taking its lock takes in pending invalidations
		    SELECT count(*) INTO n FROM public.enrich_gate;
		    -- enrich from another stream
		    SELECT e.data INTO r FROM event_store.es_read_stream('ref-1') e ORDER BY e.version LIMIT 1;
		    RETURN data || jsonb_build_object('ref', r);
		  END $$;
		  SELECT event_store.es_register_upcaster('Enrich', 1, 'public.enrich(jsonb)')},
		'(2) setup: an upcaster that reads another stream and waits on advisory lock 42 first');
	must('postgres', q{SELECT event_store.es_append('ref-1', 0, 'Ref', '{"k": "v"}')},
		'(2) setup: the reference stream');
	must('postgres',
		qq{SELECT event_store.es_append('enrich-1', 0,
		     (SELECT jsonb_agg(jsonb_build_object('type', 'Enrich', 'data', jsonb_build_object('i', i)) ORDER BY i)
		        FROM generate_series(1, $nevents) i))},
		"(2) setup: $nevents events of type Enrich");

	# the same in SQL: its execution state lives in the memory of its
	# FmgrInfo, in the cache
	must('postgres',
		q{CREATE FUNCTION public.enrich_sql(data jsonb) RETURNS jsonb LANGUAGE sql AS $$
		    SELECT pg_catalog.pg_advisory_lock_shared(42), pg_catalog.pg_advisory_unlock_shared(42);
		    SELECT count(*) FROM public.enrich_gate;
		    SELECT data || jsonb_build_object('ref',
		      (SELECT e.data FROM event_store.es_read_stream('ref-1') e ORDER BY e.version LIMIT 1));
		  $$;
		  SELECT event_store.es_register_upcaster('EnrichSql', 1, 'public.enrich_sql(jsonb)')},
		'(2) setup: the same upcaster in SQL');
	must('postgres',
		qq{SELECT event_store.es_append('enrichsql-1', 0,
		     (SELECT jsonb_agg(jsonb_build_object('type', 'EnrichSql', 'data', jsonb_build_object('i', i)) ORDER BY i)
		        FROM generate_series(1, $nevents) i))},
		"(2) setup: $nevents events of type EnrichSql");

	# The read runs asynchronously and waits inside the upcaster of its first
	# event, on advisory lock 42, which another session holds; a third
	# session commits a CREATE FUNCTION (an invalidation of the function
	# cache); the lock is released; the upcaster goes on, takes in the
	# invalidation and reads the store.
	my $want = join(',', map { "$_=$_/v/2" } 1 .. $nevents);
	my $round = 0;
	for my $case (['plpgsql', 'enrich-1'], ['plpgsql', 'enrich-1'], ['sql', 'enrichsql-1'], ['sql', 'enrichsql-1'])
	{
		my ($lang, $stream) = @$case;
		$round++;
		my $holder = es_connect($node);
		my $reader = es_connect($node, 'postgres', 'reader');
		my $ddl = es_connect($node);
		my $observer = es_connect($node);
		es_run($holder, 'SELECT pg_advisory_lock(42)');
		my ($rpid) = $reader->selectrow_array('SELECT pg_backend_pid()');
		my $sth = $reader->prepare(
			qq{SELECT string_agg(version || '=' || (data->>'i') || '/' || (data->'ref'->>'k') || '/' || schema_version, ',' ORDER BY version)
			    FROM event_store.es_read_stream('$stream')},
			{ pg_async => PG_ASYNC });
		$sth->execute;
		ok(es_wait_blocked($observer, $rpid, q{locktype = 'advisory'}),
			"(2) round $round ($lang upcaster): the read waits inside the upcaster, on the advisory lock");
		ok(es_run($ddl, "CREATE FUNCTION public.unrelated_$round() RETURNS int LANGUAGE sql AS 'SELECT 1'")->{ok},
			"(2) round $round ($lang upcaster): another session commits a CREATE FUNCTION meanwhile");
		es_run($holder, 'SELECT pg_advisory_unlock(42)');
		my $n = $reader->pg_result;
		my $res = defined $n ? { ok => 1, state => '00000' } : es_last_error($reader);
		ok($res->{state} ne 'CRASH',
			"(2) defect 2: round $round ($lang upcaster): the read survives an invalidation that arrived while its upcaster ran (no crash)")
		  or diag("got $res->{state}: " . ($res->{err} // ''));
		my $got = defined $n ? ($sth->fetchrow_array)[0] : "ERROR $res->{state}";
		is($got, $want,
			"(2) defect 2: round $round ($lang upcaster): the read returns the $nevents events, each upcast and enriched, schema version 2");
		es_wait_ready($node) if $res->{state} eq 'CRASH';
		for my $h ($holder, $reader, $ddl, $observer)
		{
			$h->disconnect if $h->ping;
		}
	}
}

{
	# an upcaster that runs function DDL itself, then reads the store
	must('postgres',
		q{CREATE FUNCTION public.ddl_up(data jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
		  DECLARE r jsonb;
		  BEGIN
		    EXECUTE 'CREATE OR REPLACE FUNCTION public.some_other() RETURNS int LANGUAGE sql AS ''SELECT 1''';
		    SELECT e.data INTO r FROM event_store.es_read_stream('ref-1') e ORDER BY e.version LIMIT 1;
		    RETURN data || jsonb_build_object('ref', r);
		  END $$;
		  SELECT event_store.es_register_upcaster('SelfDdl', 1, 'public.ddl_up(jsonb)')},
		'(2) setup: an upcaster that replaces a function, then reads the store');
	must('postgres',
		qq{SELECT event_store.es_append('selfddl-1', 0,
		     (SELECT jsonb_agg(jsonb_build_object('type', 'SelfDdl', 'data', jsonb_build_object('i', i)) ORDER BY i)
		        FROM generate_series(1, $nevents) i))},
		"(2) setup: $nevents events of type SelfDdl");
	my $r = run_as('postgres',
		q{SELECT string_agg(version || '=' || (data->>'i') || '/' || (data->'ref'->>'k') || '/' || schema_version, ',' ORDER BY version)
		    FROM event_store.es_read_stream('selfddl-1')});
	ok($r->{state} ne 'CRASH', '(2) defect 2: an upcaster doing function DDL and then reading does not crash the server')
	  or diag("got $r->{state}");
	# since the reviews an upcaster runs read-only, and no utility command
	is($r->{ok} ? $r->{rows}[0][0] : "ERROR $r->{state}", 'ERROR 42501',
		"(2) defect 2: ... its DDL is refused, as every utility command of an upcaster (42501)");
}

es_check_log($node, '012');
$node->stop;
note sprintf('took %.1f s', time - $started);
done_testing();
