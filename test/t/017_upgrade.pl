# Upgrading in place from 0.1.0 (event_store--0.1.0--0.2.0.sql).
#
# A database holds the objects of 0.1.0, installed from its script as
# shipped, with rows in every table as 0.1.0 wrote them (loaded as a restore
# loads them, with the numbering trigger off: the library installed here is
# 0.2.0's), privileges granted on them, an erasure whose tombstone kept the
# stream's metadata and an upcaster registered unqualified.
#
#  - Before ALTER EXTENSION UPDATE, the new library refuses to work with the
#    old objects (55000, with the hint to update), and changes nothing.
#  - After it, the schema equals that of a fresh 0.2.0 install (pg_dump
#    --binary-upgrade --schema-only, OIDs left out), every row is intact
#    (but for what 0.2.0 changes on purpose: qualified upcaster signatures,
#    the emptied metadata of an erased stream), reads answer as before,
#    positions continue above the old ones, the feed and checkpoints go on.
#  - The privileges granted on es_consumers, which the update has to make
#    again, survive pg_dump and pg_restore (review of issue 13: they were
#    recorded as the extension's own and left out of dumps).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use EsTest;

my $node = es_new_node('upgrade');
my $psql = sub { my ($db, $sql) = @_; return $node->safe_psql($db, $sql); };

$psql->('postgres', 'CREATE DATABASE up; CREATE DATABASE fresh; CREATE ROLE app_reader; CREATE ROLE app_monitor');
my $app = q{
  CREATE SCHEMA app;
  CREATE FUNCTION app.deposited_v2(data jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE
    AS $$ SELECT data || '{"v": 2}' $$;
};
$psql->('fresh', $app . 'CREATE EXTENSION event_store');
$psql->('up', $app . q{
  CREATE EXTENSION event_store VERSION '0.1.0';
  GRANT SELECT ON event_store.events, event_store.streams TO app_reader;
  GRANT SELECT ON event_store.es_consumers TO app_monitor;
  GRANT SELECT (consumer, position) ON event_store.es_consumers TO app_reader;
  GRANT SELECT (lag_events) ON event_store.es_consumers TO app_reader;
});
is($psql->('up', q{SELECT extversion FROM pg_extension WHERE extname = 'event_store'}),
	'0.1.0', 'the database holds the objects of 0.1.0');

# Rows as 0.1.0 wrote them, loaded as a restore loads them.
$psql->('up', q{
  SET session_replication_role = replica;
  ALTER TABLE event_store.upcasters DISABLE TRIGGER upcasters_changed;
  INSERT INTO event_store.streams (name, category, version, created_at, updated_at, metadata, erased_at) VALUES
    ('account-1', 'account', 3, '2026-01-01', '2026-01-03', '{}', NULL),
    ('ret-1', 'ret', 4, '2026-01-01', '2026-01-04', '{"max_count": 2, "owner": "x"}', NULL),
    ('closed-1', 'closed', 2, '2026-01-01', '2026-01-02', '{"truncate_before": 3, "deleted_at": "2026-01-05T00:00:00+00:00"}', NULL),
    ('gdpr-1', 'gdpr', 2, '2026-01-01', '2026-01-02', '{"email": "ann@example.com"}', '2026-01-06');
  INSERT INTO event_store.events (position, stream, version, type, data, metadata, event_id, schema_version, created_at)
  SELECT p, s, v, t, jsonb_build_object('p', p), NULL, ('01890000-0000-7000-8000-' || lpad(p::text, 12, '0'))::uuid, 1,
         '2026-01-01'::timestamptz + p * interval '1 hour'
    FROM (VALUES (1, 'account-1', 1, 'Opened'), (2, 'ret-1', 1, 'T'), (3, 'account-1', 2, 'Deposited'),
                 (4, 'ret-1', 2, 'T'), (5, 'closed-1', 1, 'T'), (6, 'ret-1', 3, 'T'),
                 (7, 'account-1', 3, 'Deposited'), (8, 'closed-1', 2, 'T'), (9, 'ret-1', 4, 'T')) e(p, s, v, t);
  INSERT INTO event_store.snapshots (stream, version, state) VALUES ('account-1', 2, '{"balance": 10}');
  INSERT INTO event_store.checkpoints (consumer, position) VALUES ('projector', 4), ('mailer', 9);
  INSERT INTO event_store.upcasters (type, from_schema_version, upcaster) VALUES
    ('Deposited', 1, 'app.deposited_v2(jsonb)'), ('Opened', 1, 'jsonb_strip_nulls(jsonb)');
  INSERT INTO event_store.erasures (stream, erased_at, erased_by, session_user_name, events_erased, last_version, reason, last_position)
    VALUES ('gdpr-1', '2026-01-06', 'postgres', 'postgres', 2, 2, 'request', 11);
  ALTER TABLE event_store.upcasters ENABLE ALWAYS TRIGGER upcasters_changed;
});

my $tables = q{
  SELECT 'streams', count(*), md5(string_agg(format('%s %s %s %s %s', name, category, version, created_at, updated_at), ',' ORDER BY name)) FROM event_store.streams
  UNION ALL SELECT 'events', count(*), md5(string_agg(format('%s %s %s %s %s %s %s %s', position, stream, version, type, data, metadata, event_id, created_at), ',' ORDER BY position)) FROM event_store.events
  UNION ALL SELECT 'snapshots', count(*), md5(string_agg(format('%s %s %s', stream, version, state), ',')) FROM event_store.snapshots
  UNION ALL SELECT 'checkpoints', count(*), md5(string_agg(format('%s %s', consumer, position), ',' ORDER BY consumer)) FROM event_store.checkpoints
  UNION ALL SELECT 'erasures', count(*), md5(string_agg(format('%s %s %s %s', stream, events_erased, last_version, last_position), ',')) FROM event_store.erasures
  UNION ALL SELECT 'upcasters', count(*), string_agg(format('%s %s', type, from_schema_version), ',' ORDER BY type) FROM event_store.upcasters};
my $before = $psql->('up', $tables);

# The new library and the old objects: a clear refusal, nothing changed.
my ($rc, $out, $err) = $node->psql('up',
	q{SELECT event_store.es_append('account-1', 3, 'Deposited', '{}')},
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:\s+55000: the objects of extension "event_store" are not those of its library/,
	'before the update, es_append refuses (55000)');
like($err, qr/HINT:\s+Run ALTER EXTENSION event_store UPDATE/, '... with the hint to update');
($rc, $out, $err) = $node->psql('up', q{SELECT count(*) FROM event_store.es_read_stream('account-1')});
like($err, qr/are not those of its library/, 'before the update, es_read_stream refuses too');
($rc, $out, $err) = $node->psql('up', q{INSERT INTO event_store.events (stream, type, data) VALUES ('account-1', 'T', '{}')});
like($err, qr/are not those of its library/, 'before the update, a plain INSERT is refused too');
is($psql->('up', $tables), $before, 'the refused calls changed nothing');

# The update.
$psql->('up', 'ALTER EXTENSION event_store UPDATE');
is($psql->('up', q{SELECT extversion FROM pg_extension WHERE extname = 'event_store'}),
	'0.2.0', 'ALTER EXTENSION event_store UPDATE brings it to 0.2.0');

# The same schema as a fresh install.
sub schema_of
{
	my ($db) = @_;
	my ($stdout, $stderr);
	IPC::Run::run([ 'pg_dump', '--schema-only', '--binary-upgrade', '--no-owner',
			'-h', $node->host, '-p', $node->port, '-d', $db ],
		'>', \$stdout, '2>', \$stderr)
	  or die "pg_dump $db: $stderr";
	my @lines = grep { !/binary_upgrade_set_next|^--|^\s*$|^SET |^SELECT pg_catalog.set_config|^\\(un)?restrict|pg_catalog\.setval/ }
	  split /\n/, $stdout;
	s/'\{[0-9,]+\}'/'{OIDS}'/g for @lines;
	s/'[0-9]+'::pg_catalog\.oid/'OID'::pg_catalog.oid/g for @lines;
	s/WHERE oid = '[0-9]+'/WHERE oid = 'OID'/g for @lines;
	# the grants of this test's roles are data, not schema
	@lines = grep { !/app_reader|app_monitor/ } @lines;
	return join("\n", @lines);
}
my ($up_schema, $fresh_schema) = (schema_of('up'), schema_of('fresh'));
ok(length($fresh_schema) > 1000, 'the fresh install dumps its schema');
is($up_schema, $fresh_schema, 'after the update, the schema equals a fresh 0.2.0 install');
if ($up_schema ne $fresh_schema)
{
	my ($a, $b) = ("$PostgreSQL::Test::Utils::tmp_check/up.sql", "$PostgreSQL::Test::Utils::tmp_check/fresh.sql");
	PostgreSQL::Test::Utils::append_to_file($a, $up_schema);
	PostgreSQL::Test::Utils::append_to_file($b, $fresh_schema);
	diag(`diff -u $b $a | head -60`);
}

# The rows: intact, but for what 0.2.0 changes on purpose.
is($psql->('up', $tables), $before, 'every row is intact');
is($psql->('up', q{SELECT string_agg(upcaster, ', ' ORDER BY type) FROM event_store.upcasters}),
	'app.deposited_v2(pg_catalog.jsonb), pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb)',
	'upcaster signatures are qualified');
is($psql->('up', q{SELECT metadata FROM event_store.streams WHERE name = 'gdpr-1'}),
	'{}', 'the tombstone of the erased stream no longer holds its metadata');
is($psql->('up', q{SELECT metadata FROM event_store.streams WHERE name = 'ret-1'}),
	'{"owner": "x", "max_count": 2}', 'the metadata of other streams is kept');

# Reads, positions, the feed and checkpoints go on.
is($psql->('up', q{SELECT string_agg(version || ':' || coalesce(data->>'v', '-'), ',' ORDER BY version) FROM event_store.es_read_stream('account-1')}),
	'1:-,2:2,3:2', 'reads upcast through the registered chain');
is($psql->('up', q{SELECT string_agg(version::text, ',' ORDER BY version) FROM event_store.es_read_stream('ret-1')}),
	'3,4', 'retention applies');
is($psql->('up', q{SELECT string_agg(CASE WHEN type = '$snapshot' THEN 'snap@' || version ELSE version::text END, ',') FROM event_store.es_load_aggregate('account-1')}),
	'snap@2,3', 'the snapshot is used');
is($psql->('up', q{SELECT count(*) FROM event_store.es_read_stream('closed-1')}), '0', 'the soft delete holds');
my ($rc2, $o2, $e2) = $node->psql('up', q{SELECT event_store.es_append('gdpr-1', NULL, 'T', '{}')});
like($e2, qr/was erased/, 'the erased name stays refused');
is($psql->('up', q{SELECT first_position FROM event_store.es_append('account-1', 3, 'Deposited', '{}')}),
	'12', 'positions continue above the old ones and above the erased ones');
is($psql->('up', q{SELECT string_agg(position::text, ',') FROM event_store.es_read_all(event_store.es_checkpoint_get('mailer'), 100)}),
	'12', 'the feed goes on from a checkpoint');
is($psql->('up', q{SELECT event_store.es_checkpoint_save('mailer', 12)}), '12', 'checkpoints go on');

# The privileges on es_consumers, made again by the update, survive a dump.
is($psql->('up', q{SELECT has_table_privilege('app_monitor', 'event_store.es_consumers', 'SELECT')}),
	't', 'the grant on es_consumers is there after the update');
is($psql->('up', q{SELECT string_agg(c, ',' ORDER BY c) FROM unnest(ARRAY['consumer', 'position', 'head', 'lag_seconds']) c
                     WHERE has_column_privilege('app_reader', 'event_store.es_consumers', c, 'SELECT')}),
	'consumer,position', 'so are the grants on its columns that the new view keeps (lag_events is gone)');
my $dumpfile = "$PostgreSQL::Test::Utils::tmp_check/up.dump";
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dumpfile, '-h', $node->host, '-p', $node->port, '-d', 'up' ],
	'pg_dump of the updated database');
$psql->('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '-d', 'restored', '-h', $node->host, '-p', $node->port, $dumpfile ],
	'pg_restore into a new database');
is($psql->('restored', q{SELECT has_table_privilege('app_monitor', 'event_store.es_consumers', 'SELECT')}),
	't', 'the grant on es_consumers survives pg_dump and pg_restore');
is($psql->('restored', q{SELECT string_agg(c, ',' ORDER BY c) FROM unnest(ARRAY['consumer', 'position', 'head', 'lag_seconds']) c
                           WHERE has_column_privilege('app_reader', 'event_store.es_consumers', c, 'SELECT')}),
	'consumer,position', 'and so do the grants on its columns');
is($psql->('restored', q{SELECT has_table_privilege('app_reader', 'event_store.events', 'SELECT')}),
	't', 'and the grants on the tables');
is($psql->('restored', $tables), $psql->('up', $tables), 'the restored rows equal the updated ones');

es_check_log($node, 'upgrade');
done_testing();
