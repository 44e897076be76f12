# pg_dump and pg_restore keep everything the extension holds, and the
# restored database behaves as the source did:
#
# - every table as it was: events, streams (with their metadata: retention
#   rules, a soft-deleted stream's deleted_at and truncate_before, an erased
#   stream's tombstone), snapshots, checkpoints, upcaster registrations that
#   point at user functions in a user schema (restored before the rows that
#   name them), the erasure audit trail, the streams id sequence, and the
#   GRANTs on the extension's objects;
# - every read gives the same answer (upcasting, snapshots, retention, time
#   travel, the feed and its consumers);
# - appends continue: next versions, positions above the restored ones, a
#   soft-deleted stream reopens, the erased name stays refused (V0004);
#   checkpoints and upcaster chains go on from where they were.
#
# Round trips: custom format into a new database; plain format through psql
# into a new database; custom format into the same database after DROP
# EXTENSION / CREATE EXTENSION.  A long stream restores in one COPY
# transaction without trouble.
#
# Across major versions (scripts/test.sh sets ES_DUMP_OUT and ES_DUMP_IN):
# the custom-format dump of this run is kept with the answers of its source,
# and a dump made by another major version (15's, restored on 17 and 18)
# restores with the serial pg_restore of docs/operations.md and answers every
# read as its source did.
#
# A restore never gives again the positions of erased events (erasures
# keeps the highest).  pg_restore -j would load events alongside streams
# (their data dependency holds for a serial restore only): the documented
# recipe restores the data section serially and the rest in parallel.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP qw(decode_json encode_json);
use File::Copy qw(copy);
use Time::HiRes qw(time);

my $started = time;
my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'event_store'\n");
$node->start;

# roles are cluster-wide: every restored database finds them
$node->safe_psql('postgres', q{
  CREATE ROLE es_app NOLOGIN;      -- owns the upcasters
  CREATE ROLE es_reader NOLOGIN;
  CREATE ROLE es_eraser NOLOGIN;
  CREATE DATABASE es_src;
});
$node->safe_psql('es_src', q{
  CREATE EXTENSION event_store;
  -- many short streams, in position order interleaved across streams
  SELECT count(*) FROM (
    SELECT event_store.es_append('order-' || (i % 5000), NULL, 'Placed',
                                 jsonb_build_object('i', i), '{"user_id": "u"}')
      FROM generate_series(1, 20000) i) s;
  -- one long stream
  SELECT count(*) FROM (
    SELECT event_store.es_append('ledger-1', NULL, '[{"type": "Posted", "data": {}}]')
      FROM generate_series(1, 20000) i) s;
  -- plain inserts, a client-chosen id, a rolled-back append (a position gap)
  INSERT INTO event_store.events (stream, type, data, event_id)
  VALUES ('plain-1', 'Noted', '{"n": 1}', 'd0000000-0000-4000-8000-000000000001');
  BEGIN; SELECT event_store.es_append('gone-1', 0, 'Gone', '{}'); ROLLBACK;
  SELECT event_store.es_append('plain-1', 1, 'Noted', '{"n": 2}');
});
my $bulk_head = $node->safe_psql('es_src', 'SELECT max(position) FROM event_store.events');

# What issue 6 added, each kind of object at least once.  Every statement is
# its own transaction (distinct created_at).
$node->safe_psql('es_src', q{
  -- upcasters: user functions in a user schema, owned by another role; the
  -- second has an SQL-standard body (pg_dump orders it after what it uses:
  -- the extension's es_upcast type and the helper) and a name that needs
  -- quoting
  CREATE SCHEMA app AUTHORIZATION es_app;
  CREATE FUNCTION app.deposited_v1(data jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE
    AS $$ SELECT jsonb_build_object('amount_cents', (data ->> 'amount')::numeric * 100) $$;
  CREATE FUNCTION app.currency(metadata jsonb) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT coalesce(metadata ->> 'currency', 'EUR') $$;
  CREATE FUNCTION app."Deposited_V2"(data jsonb, metadata jsonb)
    RETURNS event_store.es_upcast LANGUAGE sql IMMUTABLE
    BEGIN ATOMIC
      SELECT ROW(data || jsonb_build_object('currency', app.currency(metadata)),
                 coalesce(metadata, '{}') || '{"upcast": 2}')::event_store.es_upcast;
    END;
  ALTER FUNCTION app.deposited_v1(jsonb) OWNER TO es_app;
  ALTER FUNCTION app.currency(jsonb) OWNER TO es_app;
  ALTER FUNCTION app."Deposited_V2"(jsonb, jsonb) OWNER TO es_app;
  SELECT event_store.es_register_upcaster('Deposited', 1, 'app.deposited_v1(jsonb)');
  SELECT event_store.es_register_upcaster('Deposited', 2, 'app."Deposited_V2"(jsonb, jsonb)');

  -- events at three schema versions, a snapshot in the middle
  SELECT event_store.es_append('account-1', 0, 'Deposited', '{"amount": 10}');
  SELECT event_store.es_append('account-1', 1, 'Deposited', '{"amount": 20}', '{"currency": "USD"}');
  SELECT event_store.es_append('account-1', 2, 'Deposited', '{"amount_cents": 500}', NULL, NULL, 2);
  SELECT event_store.es_append('account-1', 3, 'Deposited',
                               '{"amount_cents": 700, "currency": "CHF"}', '{"user_id": "u"}', NULL, 3);
  SELECT event_store.es_save_snapshot('account-1', 2, '{"balance_cents": 3000}', 2);
  SELECT event_store.es_append('account-1', 4, 'Deposited', '{"amount": 1}');

  -- retention rules: max_count (with a snapshot it still allows),
  -- truncate_before with a key of our own, max_age (two events written
  -- long ago by the owner, as a restore or a migration would)
  SELECT event_store.es_append('ret-1', NULL, 'Tick', jsonb_build_object('n', i))
    FROM generate_series(1, 6) i;
  SELECT event_store.es_set_stream_metadata('ret-1', '{"max_count": 3}');
  SELECT event_store.es_save_snapshot('ret-1', 5, '{"ticks": 5}');
  SELECT event_store.es_append('ret-2', NULL, 'Tick', jsonb_build_object('n', i))
    FROM generate_series(1, 4) i;
  SELECT event_store.es_set_stream_metadata('ret-2', '{"truncate_before": 3, "owner": "team-a"}');
  INSERT INTO event_store.events (stream, type, data, created_at)
  VALUES ('ret-3', 'Tick', '{"n": 1}', '2001-01-01 00:00:00+00'),
         ('ret-3', 'Tick', '{"n": 2}', '2001-01-02 00:00:00+00');
  SELECT event_store.es_append('ret-3', 2, 'Tick', '{"n": 3}');
  SELECT event_store.es_append('ret-3', 3, 'Tick', '{"n": 4}');
  SELECT event_store.es_set_stream_metadata('ret-3', '{"max_age": 3600}');

  -- soft deletes: one stays deleted (its snapshot dropped), one reopens
  SELECT event_store.es_append('closed-1', NULL, 'Step', jsonb_build_object('n', i))
    FROM generate_series(1, 3) i;
  SELECT event_store.es_save_snapshot('closed-1', 3, '{"steps": 3}');
  SELECT event_store.es_delete_stream('closed-1', 3);
  SELECT event_store.es_append('closed-2', NULL, 'Step', jsonb_build_object('n', i))
    FROM generate_series(1, 2) i;
  SELECT event_store.es_delete_stream('closed-2');
  SELECT event_store.es_append('closed-2', 2, 'Reopened', '{}');
  SELECT event_store.es_save_snapshot('closed-2', 3, '{"open": true}');

  -- checkpoints
  SELECT event_store.es_checkpoint_save('proj-b', 0);
  SELECT event_store.es_checkpoint_save('proj-a', (SELECT max(position) FROM event_store.events
                                                    WHERE stream = 'account-1'));

  -- an erased stream, holding the newest positions, read by a consumer first
  SELECT event_store.es_append('gdpr-1', NULL, 'Registered', jsonb_build_object('email', 'a' || i || '@example.com'))
    FROM generate_series(1, 3) i;
  SELECT event_store.es_save_snapshot('gdpr-1', 2, '{"email": "a2@example.com"}');
  SELECT event_store.es_checkpoint_save('audit', event_store.es_head_position());
  SELECT event_store.es_erase_stream('gdpr-1', 'erasure request 42');

  -- privileges on the extension's objects
  GRANT SELECT ON event_store.events, event_store.streams TO es_reader;
  GRANT EXECUTE ON FUNCTION event_store.es_erase_stream(text, text) TO es_eraser;
});

# Everything the tables hold, as text, ordered: a digest of the big tables
# and their row counts, the small ones in full.
my %contents_sql = (
	events => q{SELECT count(*) || ' rows, md5 ' || md5(string_agg(t::text, E'\n' ORDER BY position))
	              FROM event_store.events t},
	streams => q{SELECT count(*) || ' rows, md5 ' || md5(string_agg(t::text, E'\n' ORDER BY id))
	               FROM event_store.streams t},
	'streams with metadata' => q{SELECT string_agg(t::text, E'\n' ORDER BY id) FROM event_store.streams t
	                              WHERE metadata <> '{}' OR erased_at IS NOT NULL},
	'streams_id_seq' => q{SELECT last_value || ' ' || is_called FROM event_store.streams_id_seq},
	'head' => q{SELECT event_store.es_head_position()},
	# (without MAINTAIN, which PostgreSQL 17 added to an owner's privileges)
	'privileges' => q{
	  SELECT string_agg(format('%s %s', c, acl), E'\n' ORDER BY c) FROM (
	    SELECT relname::text AS c,
	           (SELECT string_agg(format('%s=%s/%s', a.grantee::regrole, a.privilege_type, a.grantor::regrole),
	                              ',' ORDER BY a.grantee::regrole::text, a.privilege_type)
	              FROM aclexplode(relacl) a WHERE a.privilege_type <> 'MAINTAIN') AS acl
	      FROM pg_class
	     WHERE relnamespace = 'event_store'::regnamespace AND relacl IS NOT NULL
	    UNION ALL
	    SELECT oid::regprocedure::text, proacl::text FROM pg_proc
	     WHERE pronamespace IN ('event_store'::regnamespace, 'app'::regnamespace)
	       AND proacl IS NOT NULL) s},
	'upcaster functions' => q{
	  SELECT string_agg(format('%s %s', oid::regprocedure, pg_get_userbyid(proowner)), E'\n'
	                    ORDER BY oid::regprocedure::text)
	    FROM pg_proc WHERE pronamespace = 'app'::regnamespace});
for my $t ([ 'snapshots', 'stream' ], [ 'checkpoints', 'consumer' ],
	[ 'upcasters', 'type, from_schema_version' ], [ 'erasures', 'stream' ])
{
	$contents_sql{ $t->[0] } =
	  "SELECT string_agg(t::text, E'\\n' ORDER BY $t->[1]) FROM event_store.$t->[0] t";
}

# Reads that must give the same answers: each function's rows as text, in
# the order it returns them.
my @reads = (
	"es_read_stream('account-1')",
	"es_read_stream('account-1', 2, 2)",
	"es_read_stream('account-1', NULL, NULL, true)",
	"es_read_stream_at('account-1', 3)",
	"es_read_stream_at('account-1', NULL, (SELECT created_at FROM event_store.events WHERE stream = 'account-1' AND version = 2))",
	"es_load_aggregate('account-1')",
	"es_load_aggregate('account-1', 3)",
	"es_load_snapshot('account-1')",
	"es_load_snapshot('account-1', 3)",
	(map { "es_read_stream('$_')" } qw(ret-1 ret-2 ret-3 closed-1 closed-2 gdpr-1 plain-1)),
	"es_load_aggregate('ret-1')",
	"es_load_aggregate('ret-3')",
	"es_load_aggregate('closed-1')",
	"es_load_aggregate('closed-2')",
	"es_read_all($bulk_head, 1000)",
	"es_read_all($bulk_head, 1000, ARRAY['Deposited', 'Tick'])",
	"es_read_category('ret', 0, 1000)",
	"es_read_category('account', 0, 1000)",
	"es_read_all(39990, 20)");
my %reads_sql;
for my $r (@reads)
{
	$reads_sql{$r} =
	  "SELECT coalesce(string_agg(r::text, E'\\n' ORDER BY n), '(none)') FROM event_store.$r WITH ORDINALITY AS r(a, b, c, d, e, f, g, h, i, n)";
}
$reads_sql{"es_load_snapshot('account-1')"} =
  "SELECT coalesce(string_agg(r::text, E'\\n'), '(none)') FROM event_store.es_load_snapshot('account-1') r";
$reads_sql{"es_load_snapshot('account-1', 3)"} =
  "SELECT coalesce(string_agg(r::text, E'\\n'), '(none)') FROM event_store.es_load_snapshot('account-1', 3) r";
$reads_sql{'stream versions'} = q{
  SELECT string_agg(s || ' ' || event_store.es_stream_version(s), ', ' ORDER BY s)
    FROM unnest(ARRAY['account-1', 'ret-1', 'ret-2', 'ret-3', 'closed-1', 'closed-2', 'gdpr-1', 'ledger-1', 'nobody-1']) s};
$reads_sql{'consumers'} = q{
  SELECT string_agg(format('%s %s %s %s', consumer, position, head, lag_positions), ', ' ORDER BY consumer)
    FROM event_store.es_consumers};

# Run many one-value queries in one statement (one psql each would take
# most of the run time): a hash of the results by name.
sub query_all
{
	my ($db, %q) = @_;
	my @values;
	for my $k (sort keys %q)
	{
		(my $key = $k) =~ s/'/''/g;
		push @values, "('$key', ($q{$k})::text)";
	}
	my $json = $node->safe_psql($db,
		"SELECT json_object_agg(k, coalesce(v, '(null)')) FROM (VALUES\n"
		  . join(",\n", @values) . "\n) AS t(k, v)");
	return decode_json($json);
}

sub snapshot_of
{
	my ($db) = @_;
	return query_all($db, %contents_sql,
		map { ("read $_" => $reads_sql{$_}) } keys %reads_sql);
}

my $source = snapshot_of('es_src');

# A few of the answers spelled out, so that an empty or broken source cannot
# pass for a good restore.
my %expected = (
	# every event upcast to schema version 3: data and metadata
	"es_read_stream('account-1')" => join("\n",
		'1 3 {"currency": "EUR", "amount_cents": 1000} {"upcast": 2}',
		'2 3 {"currency": "USD", "amount_cents": 2000} {"upcast": 2, "currency": "USD"}',
		'3 3 {"currency": "EUR", "amount_cents": 500} {"upcast": 2}',
		'4 3 {"currency": "CHF", "amount_cents": 700} {"user_id": "u"}',
		'5 3 {"currency": "EUR", "amount_cents": 100} {"upcast": 2}'),
	# the snapshot, then the events after it
	"es_load_aggregate('account-1')" => join("\n",
		'2 2 {"balance_cents": 3000}',
		'3 3 {"currency": "EUR", "amount_cents": 500} {"upcast": 2}',
		'4 3 {"currency": "CHF", "amount_cents": 700} {"user_id": "u"}',
		'5 3 {"currency": "EUR", "amount_cents": 100} {"upcast": 2}'),
	"es_load_aggregate('account-1', 3)" => '1 2 3 4 5',
	"es_read_stream('ret-1')" => '4 5 6',
	"es_load_aggregate('ret-1')" => '5 6',
	"es_read_stream('ret-2')" => '3 4',
	"es_read_stream('ret-3')" => '3 4',
	"es_read_stream('closed-1')" => '',
	"es_load_aggregate('closed-1')" => '',
	"es_read_stream('closed-2')" => '3',
	"es_load_aggregate('closed-2')" => '3',
	"es_read_stream('gdpr-1')" => '');
my %expected_sql;
for my $r (keys %expected)
{
	my $cols = $expected{$r} =~ /[{]/
	  ? q{concat_ws(' ', version, schema_version, data, metadata)}
	  : q{version::text};
	my $sep = $expected{$r} =~ /[{]/ ? 'E\'\n\'' : q{' '};
	$expected_sql{$r} =
	  "SELECT coalesce(string_agg($cols, $sep ORDER BY n), '') FROM event_store.$r WITH ORDINALITY AS r(position, stream, version, type, data, metadata, event_id, schema_version, created_at, n)";
}
# the tables hold what the fixture made
my %expected_rows = (
	'erased stream' => [
		q{SELECT format('%s %s %s %s %s', s.version, s.erased_at = e.erased_at, e.events_erased, e.last_version, e.reason)
		    FROM event_store.streams s JOIN event_store.erasures e ON e.stream = s.name WHERE s.name = 'gdpr-1'},
		"3 t 3 3 erasure request 42" ],
	'erased stream has no events or snapshot' => [
		q{SELECT (SELECT count(*) FROM event_store.events WHERE stream = 'gdpr-1')
		       + (SELECT count(*) FROM event_store.snapshots WHERE stream = 'gdpr-1')},
		'0' ],
	'soft-deleted stream' => [
		q{SELECT format('%s %s %s %s', version, metadata -> 'truncate_before', metadata ? 'deleted_at',
		                (SELECT count(*) FROM event_store.events WHERE stream = 'closed-1'))
		    FROM event_store.streams WHERE name = 'closed-1'},
		'3 4 t 3' ],
	'stream metadata' => [
		q{SELECT string_agg(name || ' ' || (metadata - 'deleted_at'), ', ' ORDER BY name)
		    FROM event_store.streams WHERE name LIKE 'ret-%' OR name LIKE 'closed-%'},
		'closed-1 {"truncate_before": 4}, closed-2 {"truncate_before": 3}, '
		  . 'ret-1 {"max_count": 3}, ret-2 {"owner": "team-a", "truncate_before": 3}, ret-3 {"max_age": 3600}' ],
	'snapshots' => [
		q{SELECT string_agg(format('%s@%s', stream, version), ' ' ORDER BY stream) FROM event_store.snapshots},
		'account-1@2 closed-2@3 ret-1@5' ],
	'upcasters' => [
		q{SELECT string_agg(format('%s %s %s', type, from_schema_version, upcaster), ', ' ORDER BY from_schema_version)
		    FROM event_store.upcasters},
		'Deposited 1 app.deposited_v1(pg_catalog.jsonb), Deposited 2 app."Deposited_V2"(pg_catalog.jsonb,pg_catalog.jsonb)' ],
	'checkpoints' => [
		q{SELECT string_agg(consumer || ' ' || event_store.es_checkpoint_get(consumer), ', ' ORDER BY consumer)
		    FROM event_store.checkpoints},
		undef ],    # filled below from the source
	'grants' => [
		q{SELECT format('%s %s %s', has_table_privilege('es_reader', 'event_store.events', 'SELECT'),
		                has_table_privilege('es_reader', 'event_store.events', 'INSERT'),
		                has_function_privilege('es_eraser', 'event_store.es_erase_stream(text, text)', 'EXECUTE'))},
		't f t' ]);

my $audit = $node->safe_psql('es_src', q{SELECT event_store.es_checkpoint_get('audit')});
my $proj_a = $node->safe_psql('es_src', q{SELECT event_store.es_checkpoint_get('proj-a')});
$expected_rows{checkpoints}[1] = "audit $audit, proj-a $proj_a, proj-b 0";
cmp_ok($audit, '>', $node->safe_psql('es_src', 'SELECT max(position) FROM event_store.events'),
	'fixture: the erased stream held the newest positions, which a consumer had read');

# Check a database against the source: the tables, the reads, the spelled-out
# answers.
sub check_restored
{
	my ($db, $label) = @_;
	my $got;
	if ($label ne 'source')
	{
		$got = snapshot_of($db);
		for my $k (sort keys %$source)
		{
			is($got->{$k}, $source->{$k}, "$label: $k as in the source");
		}
	}
	$got = query_all($db, %expected_sql,
		map { ("row $_" => $expected_rows{$_}[0]) } keys %expected_rows);
	for my $r (sort keys %expected_sql)
	{
		is($got->{$r}, $expected{$r}, "$label: $r");
	}
	for my $k (sort keys %expected_rows)
	{
		is($got->{"row $k"}, $expected_rows{$k}[1], "$label: $k");
	}
	return;
}

check_restored('es_src', 'source');

# the SQLSTATE a statement fails with, or 'ok'
sub sqlstate
{
	my ($db, $sql) = @_;
	my ($rc, $out, $err) = $node->psql($db, "\\set VERBOSITY sqlstate\n$sql");
	return 'ok' if $rc == 0;
	return $err =~ /ERROR:\s+([0-9A-Z]{5})/ ? $1 : $err;
}

# the same for several statements, in one session: each runs in its own
# subtransaction
sub sqlstates
{
	my ($db, @sql) = @_;
	my $list = join(', ', map { (my $q = $_) =~ s/'/''/g; "'$q'" } @sql);
	my $out = $node->safe_psql($db, qq{
	  CREATE FUNCTION pg_temp.es_sqlstate(sql text) RETURNS text LANGUAGE plpgsql AS \$\$
	  BEGIN
	    EXECUTE sql;
	    RETURN 'ok';
	  EXCEPTION WHEN OTHERS THEN
	    RETURN SQLSTATE;
	  END \$\$;
	  SELECT string_agg(pg_temp.es_sqlstate(s), ' ' ORDER BY n) FROM unnest(ARRAY[$list]) WITH ORDINALITY AS u(s, n)});
	return split / /, $out;
}

# restore commands must succeed without a single error or warning
sub restore_ok
{
	my ($cmd, $name) = @_;
	my $t = time;
	$node->command_checks_all($cmd, 0, [qr/^/], [qr/^$/], $name);
	note sprintf('took %.2f s for %s', time - $t, $name);
	return;
}

my $dumpfile = $node->basedir . '/es_src.dump';
my $sqlfile = $node->basedir . '/es_src.sql';
$node->command_ok(
	[ 'pg_dump', '-Fc', '-f', $dumpfile, '-h', $node->host, '-p', $node->port, 'es_src' ],
	'pg_dump of a database using event_store');
$node->command_ok(
	[ 'pg_dump', '-Fp', '-f', $sqlfile, '-h', $node->host, '-p', $node->port, 'es_src' ],
	'pg_dump of a database using event_store, plain format');

# Kept for a later version's run: the dump, and what its source held and answered.
my $major = int($node->safe_psql('postgres', q{SELECT current_setting('server_version_num')}) / 10000);
if ($ENV{ES_DUMP_OUT})
{
	mkdir $ENV{ES_DUMP_OUT};
	copy($dumpfile, "$ENV{ES_DUMP_OUT}/es_src-$major.dump") or die "copy: $!";
	open my $fh, '>', "$ENV{ES_DUMP_OUT}/es_src-$major.json" or die "open: $!";
	print $fh encode_json({ source => $source, audit => $audit, 'proj-a' => $proj_a });
	close $fh;
}

# The archive restores the upcaster functions (pre-data) before the rows of
# event_store.upcasters that name them, and streams before what references
# them.
my ($toc) = run_command([ 'pg_restore', '-l', $dumpfile ]);
my @toc = split /\n/, $toc;
my $toc_at = sub {
	my ($re) = @_;
	for my $i (0 .. $#toc) { return $i if $toc[$i] =~ $re; }
	return -1;
};
my $data_upcasters = $toc_at->(qr/TABLE DATA event_store upcasters /);
my $data_streams = $toc_at->(qr/TABLE DATA event_store streams /);
ok($data_upcasters > 0, 'the archive holds the rows of event_store.upcasters');
for my $f ([ 'deposited_v1(jsonb)', qr/deposited_v1\(jsonb\)/ ],
	[ 'currency(jsonb)', qr/currency\(jsonb\)/ ],
	[ '"Deposited_V2"(jsonb, jsonb)', qr/"?Deposited_V2"?\(jsonb, jsonb\)/ ])
{
	my $at = $toc_at->(qr/FUNCTION app $f->[1] /);
	ok($at >= 0 && $at < $data_upcasters, "the archive creates app.$f->[0] before it loads the upcasters");
}
for my $t (qw(events snapshots))
{
	my $at = $toc_at->(qr/TABLE DATA event_store $t /);
	ok($data_streams >= 0 && $at > $data_streams, "the archive loads the streams before the $t");
}

# 1. into a new database
$node->safe_psql('postgres', 'CREATE DATABASE es_dst');
restore_ok([ 'pg_restore', '-e', '-d', 'es_dst', '-h', $node->host, '-p', $node->port, $dumpfile ],
	'pg_restore into a new database');
check_restored('es_dst', 'new database');

# Appends continue, each in its own transaction, in a fresh session (the
# upcaster cache is per backend) without event_store or app on the
# search_path: versions after the restored ones, positions above them.
my $max = $node->safe_psql('es_dst', 'SELECT max(position) FROM event_store.events');
my @appends = (
	[ 'ledger-1',  20000, q{'Posted', '{}'},                    20001 ],
	[ 'new-1',     0,     q{'First', '{}'},                     1 ],
	[ 'plain-1',   2,     q{'Noted', '{}'},                     3 ],
	[ 'account-1', 5,     q{'Deposited', '{"amount": 2}'},      6 ],
	[ 'ret-1',     6,     q{'Tick', '{}'},                      7 ],
	[ 'closed-1',  3,     q{'Step', '{"n": 4}'},                4 ]);
my @lines = split /\n/, $node->safe_psql('es_dst', join("\n",
	q{SET search_path = pg_catalog;
	  SELECT string_agg(schema_version || ' ' || (data ->> 'currency'), ', ' ORDER BY version)
	    FROM event_store.es_read_stream('account-1');},
	map { "SELECT last_version || ' ' || last_position FROM event_store.es_append('$_->[0]', $_->[1], $_->[2]);" } @appends));
is(shift @lines, '3 EUR, 3 USD, 3 EUR, 3 CHF, 3 EUR',
	'new database: a fresh session reads the events upcast by the restored functions');
my $prev = $max;
my %new_position;
for my $a (@appends)
{
	my ($version, $position) = split / /, (shift(@lines) // '');
	is($version, $a->[3], "$a->[0] continues at version $a->[3]");
	cmp_ok($position, '>', $prev, "$a->[0]: its position is above every restored one and the previous append's");
	$prev = $new_position{ $a->[0] } = $position;
}
cmp_ok($new_position{'ledger-1'}, '>', $audit,
	'a new position is above every position the source gave, the erased ones too');
like($node->safe_psql('es_dst', "SELECT string_agg(stream, ' ') FROM event_store.es_read_all($audit, 100)"),
	qr/ledger-1/, 'a consumer checkpointed at the old head reads the new events');

# what the restored streams look like with their new events
my $after = query_all('es_dst',
	'new stream id' => q{SELECT (SELECT id FROM event_store.streams WHERE name = 'new-1')
	                          > (SELECT max(id) FROM event_store.streams WHERE name <> 'new-1')},
	'account-1 aggregate' => q{
	  SELECT string_agg(format('%s %s %s', version, type, data ->> 'amount_cents'), ', ' ORDER BY n)
	    FROM event_store.es_load_aggregate('account-1')
	         WITH ORDINALITY AS r(position, stream, version, type, data, metadata, event_id, schema_version, created_at, n)},
	'ret-1' => q{SELECT string_agg(version::text, ' ' ORDER BY version) FROM event_store.es_read_stream('ret-1')},
	'closed-1' => q{SELECT string_agg(version::text, ' ' ORDER BY version) FROM event_store.es_read_stream('closed-1')},
	'closed-2' => q{SELECT event_store.es_stream_version('closed-2')});
is($after->{'new stream id'}, 'true', 'a new stream gets an id above the restored ones');
is($after->{'account-1 aggregate'},
	'2 $snapshot , 3 Deposited 500, 4 Deposited 700, 5 Deposited 100, 6 Deposited 200',
	'the restored snapshot, then the events after it, the new one upcast too');
is($after->{'ret-1'}, '5 6 7', 'max_count keeps applying to new events of a restored stream');
is($after->{'closed-1'}, '4',
	'a restored soft-deleted stream reopens at the next version, its old events still hidden');
is($after->{'closed-2'}, '3', 'the reopened stream keeps its version');

# What must still be refused: the erased name, whatever the way in (V0004);
# a restored event id; a change to the audit trail; a duplicate or a hole in
# a restored upcaster chain; a restored checkpoint moving backwards.
my @refused = (
	[ q{SELECT event_store.es_append('gdpr-1', NULL, 'Registered', '{}')}, 'V0004' ],
	[ q{SELECT event_store.es_append('gdpr-1', 3, 'Registered', '{}')}, 'V0004' ],
	[ q{SELECT event_store.es_append('gdpr-1', 0, '[{"type": "Registered", "data": {}}]')}, 'V0004' ],
	[ q{INSERT INTO event_store.events (stream, type, data) VALUES ('gdpr-1', 'Registered', '{}')}, 'V0004' ],
	[ q{SELECT event_store.es_set_stream_metadata('gdpr-1', '{}')}, 'V0004' ],
	[ q{SELECT event_store.es_delete_stream('gdpr-1')}, 'V0004' ],
	[ q{SELECT event_store.es_save_snapshot('gdpr-1', 1, '{}')}, 'V0004' ],
	[ q{SELECT event_store.es_erase_stream('gdpr-1')}, 'V0004' ],
	[ q{SELECT event_store.es_append('x-1', 0, 'Dup', '{}', NULL, 'd0000000-0000-4000-8000-000000000001')}, '23505' ],
	[ q{UPDATE event_store.erasures SET reason = NULL}, '42501' ],
	[ q{SELECT event_store.es_register_upcaster('Deposited', 2, 'app.deposited_v1(jsonb)')}, '23505' ],
	[ q{SELECT event_store.es_register_upcaster('Deposited', 5, 'app.deposited_v1(jsonb)')}, '22023' ],
	[ "SELECT event_store.es_checkpoint_save('proj-a', $proj_a - 1)", 'V0002' ]);
my @states = sqlstates('es_dst', map { $_->[0] } @refused);
for my $i (0 .. $#refused)
{
	is($states[$i], $refused[$i][1], "refused after the restore ($refused[$i][1]): $refused[$i][0]");
}
is(sqlstate('es_dst', q{SET ROLE es_reader; SELECT event_store.es_erase_stream('ret-2')}), '42501',
	'a role without the grant still cannot erase');

# upcaster chains and checkpoints go on from where they were
is( $node->safe_psql('es_dst', qq{
      CREATE FUNCTION app.deposited_v3(data jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE
        AS \$\$ SELECT data - 'currency' || jsonb_build_object('ccy', data -> 'currency') \$\$;
      SELECT FROM event_store.es_register_upcaster('Deposited', 3, 'app.deposited_v3(jsonb)') \\g /dev/null
      SELECT string_agg(format('%s %s', schema_version, data ->> 'ccy'), ', ' ORDER BY version)
        FROM event_store.es_read_stream('account-1');
      SELECT event_store.es_checkpoint_save('proj-a', $proj_a + 1, $proj_a);
      SELECT string_agg(stream || ' ' || version, ', ' ORDER BY position)
        FROM event_store.es_read_all($proj_a, 1000) WHERE stream IN ('account-1', 'ret-1');}),
	join("\n", '4 EUR, 4 USD, 4 EUR, 4 CHF, 4 EUR, 4 EUR', $proj_a + 1,
		'ret-1 5, ret-1 6, account-1 6, ret-1 7'),
	'the restored chain extends at its end and every read follows it; a restored checkpoint '
	  . 'moves on from where it was, and its consumer reads what came after it');

# 2. plain format, through psql
$node->safe_psql('postgres', 'CREATE DATABASE es_plain');
restore_ok(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-o', '/dev/null', '-f', $sqlfile,
	  '-h', $node->host, '-p', $node->port, '-d', 'es_plain' ],
	'psql restore of the plain-format dump into a new database');
check_restored('es_plain', 'plain format');
is( $node->safe_psql('es_plain', q{SELECT format('%s %s', last_version, last_position > (SELECT max(position) FROM event_store.events WHERE stream <> 'account-1'))
                                     FROM event_store.es_append('account-1', 5, 'Deposited', '{"amount": 2}')}),
	'6 t', 'plain format: appends continue above the restored positions');
is(sqlstate('es_plain', q{SELECT event_store.es_append('gdpr-1', NULL, 'Registered', '{}')}),
	'V0004', 'plain format: the erased name is refused');

# 3. parallel restore.  pg_dump orders the data of the extension's tables by
# their foreign keys (streams before events and snapshots) for a serial
# restore only: parallel workers take the biggest table first, the events,
# whose trigger creates the streams rows that the COPY of streams, running
# alongside, then collides with (a race, lost nearly every time with this
# many events).  Restoring --section=pre-data, then --section=data without
# -j, then --section=post-data with -j works.
$node->safe_psql('postgres', 'CREATE DATABASE es_par');
for my $step ([ 'pre-data', 1 ], [ 'data', 1 ], [ 'post-data', 2 ])
{
	my ($section, $jobs) = @$step;
	$node->command_ok(
		[ 'pg_restore', '-e', '-j', $jobs, "--section=$section", '-d', 'es_par',
		  '-h', $node->host, '-p', $node->port, $dumpfile ],
		"parallel restore recipe: --section=$section with $jobs job(s)");
}
check_restored('es_par', 'parallel recipe');

# 4. into the same database, after DROP EXTENSION and CREATE EXTENSION
# (positions start again from the restored table, not from the old counter).
# The upcaster with the es_upcast result type goes with the extension: drop
# the rest of the application schema too, as a full restore expects.
$node->safe_psql('es_src', 'DROP EXTENSION event_store CASCADE');
$node->safe_psql('es_src', 'DROP SCHEMA IF EXISTS event_store CASCADE');
$node->safe_psql('es_src', 'DROP SCHEMA app CASCADE');
restore_ok([ 'pg_restore', '-e', '-d', 'es_src', '-h', $node->host, '-p', $node->port, $dumpfile ],
	'pg_restore into the same database after DROP EXTENSION');
check_restored('es_src', 'same database');
cmp_ok($node->safe_psql('es_src', q{SELECT last_position FROM event_store.es_append('new-1', 0, 'First', '{}')}),
	'>', $max, 'appends continue above the restored positions');
is(sqlstate('es_src', q{SELECT event_store.es_append('gdpr-1', NULL, 'Registered', '{}')}),
	'V0004', 'same database: the erased name is refused');

# 5. a dump made by another major version of PostgreSQL (scripts/test.sh
# passes 15's to 17 and 18): a serial pg_restore into a new database, every
# table and every read as in its source, appends continue.
my $imported = 0;
for my $in (glob(($ENV{ES_DUMP_IN} // '/nonexistent') . '/es_src-*.dump'))
{
	my ($from) = $in =~ /es_src-(\d+)\.dump$/;
	next if $from == $major;
	my $db = "es_from_$from";
	open my $fh, '<', $in =~ s/\.dump$/.json/r or die "open: $!";
	my $then = decode_json(do { local $/; <$fh> });
	close $fh;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	restore_ok([ 'pg_restore', '-e', '-d', $db, '-h', $node->host, '-p', $node->port, $in ],
		"pg_restore on $major of a dump made on $from");
	my $got = snapshot_of($db);
	ok(keys %{ $then->{source} } > 20, "the dump of $from comes with its source's answers");
	for my $k (sort keys %{ $then->{source} })
	{
		is($got->{$k}, $then->{source}{$k}, "from $from to $major: $k as in the source");
	}
	my $head = $node->safe_psql($db, 'SELECT max(position) FROM event_store.events');
	is( $node->safe_psql($db, qq{SELECT format('%s %s', last_version, last_position > $then->{audit})
	                                FROM event_store.es_append('account-1', 5, 'Deposited', '{"amount": 2}')}),
		'6 t',
		"from $from to $major: appends continue at the next version, above every position the source gave");
	is(sqlstate($db, q{SELECT event_store.es_append('gdpr-1', NULL, 'Registered', '{}')}),
		'V0004', "from $from to $major: the erased name is refused");
	is($node->safe_psql($db, "SELECT string_agg(stream || ' ' || version, ', ') FROM event_store.es_read_all($then->{audit}, 10)"),
		'account-1 6', "from $from to $major: a consumer checkpointed at the old head reads the new event");
	$imported++;
}
ok($imported > 0, 'a dump made by another major version was restored') if $ENV{ES_DUMP_REQUIRE};

note sprintf('took %.1f s', time - $started);
$node->stop;
done_testing();
