# pg_dump and pg_restore keep every event and stream as they were, and
# appends continue above the restored positions: into a new database, and
# into the same database after DROP EXTENSION / CREATE EXTENSION.  A long
# stream restores in one COPY transaction without trouble.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $started = time;
my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'event_store'\n");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE es_src');
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

# a fingerprint of everything the tables hold
my $fingerprint = q{
  SELECT md5(string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s|%s', position, stream, version, type,
                               data, metadata, event_id, schema_version, created_at), ',' ORDER BY position))
    FROM event_store.events
  UNION ALL
  SELECT md5(string_agg(format('%s|%s|%s|%s|%s|%s|%s', id, name, category, version,
                               created_at, updated_at, metadata), ',' ORDER BY id))
    FROM event_store.streams
  UNION ALL
  SELECT format('%s events, %s streams, head %s', (SELECT count(*) FROM event_store.events),
                (SELECT count(*) FROM event_store.streams), event_store.es_head_position())};
my $source = $node->safe_psql('es_src', $fingerprint);
my $dumpfile = $node->basedir . '/es_src.dump';
$node->command_ok(
	[ 'pg_dump', '-Fc', '-f', $dumpfile, '-h', $node->host, '-p', $node->port, 'es_src' ],
	'pg_dump of a database using event_store');

# 1. into a new database
$node->safe_psql('postgres', 'CREATE DATABASE es_dst');
my $t = time;
$node->command_ok(
	[ 'pg_restore', '-d', 'es_dst', '-h', $node->host, '-p', $node->port, $dumpfile ],
	'pg_restore into a new database');
note sprintf('took %.2f s for pg_restore of 40,002 events', time - $t);
is($node->safe_psql('es_dst', $fingerprint), $source,
	'the restored tables hold exactly what the source held (events, streams, head)');

# appends continue: versions after the restored ones, positions above them
my $max = $node->safe_psql('es_dst', 'SELECT max(position) FROM event_store.events');
is( $node->safe_psql('es_dst', q{
      SELECT format('%s %s', last_version, first_position > (SELECT max(position) FROM event_store.events WHERE stream <> 'ledger-1' OR version <= 20000))
        FROM event_store.es_append('ledger-1', 20000, 'Posted', '{}')}),
	'20001 t',
	'an append after the restore continues the stream above the restored positions');
cmp_ok($node->safe_psql('es_dst', q{SELECT last_position FROM event_store.es_append('new-1', 0, 'First', '{}')}),
	'>', $max, 'a new stream gets a position above every restored one');
is( $node->safe_psql('es_dst', q{SELECT last_version FROM event_store.es_append('plain-1', 2, 'Noted', '{}')}),
	'3', 'plain-1 continues at version 3');
my ($rc, $out, $err) = $node->psql('es_dst',
	q{SELECT event_store.es_append('x-1', 0, 'Dup', '{}', NULL, 'd0000000-0000-4000-8000-000000000001')});
like($err, qr/already exists/, 'restored event ids stay unique');

# 2. into the same database, after DROP EXTENSION and CREATE EXTENSION
# (positions start again from the restored table, not from the old counter)
$node->safe_psql('es_src', 'DROP EXTENSION event_store CASCADE');
$node->safe_psql('es_src', 'DROP SCHEMA IF EXISTS event_store CASCADE');
$node->command_ok(
	[ 'pg_restore', '-d', 'es_src', '-h', $node->host, '-p', $node->port, $dumpfile ],
	'pg_restore into the same database after DROP EXTENSION');
is($node->safe_psql('es_src', $fingerprint), $source,
	'restored in place, the tables hold exactly what they held');
cmp_ok($node->safe_psql('es_src', q{SELECT last_position FROM event_store.es_append('new-1', 0, 'First', '{}')}),
	'>', $max, 'appends continue above the restored positions');

note sprintf('took %.1f s', time - $started);
$node->stop;
done_testing();
