# The pages of event_store.streams under many appends, with autovacuum off
# so that the only cleanup is what the appenders do themselves.
#
# Every append updates its stream's row.  The update must stay on the row's
# page (HOT: no index entries, no new pages) and the dead versions must be
# reclaimed by the appenders (pruning), or the table would grow with every
# append until a VACUUM.  Appenders prune a page only once its room runs
# short, not on every visit as PostgreSQL's readers do (src/es_stream.c):
# counted here in the WAL, where every prune leaves a record.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $nstreams = 300;
my $rounds = 20;
my $appends = $nstreams * $rounds;

my $node = PostgreSQL::Test::Cluster->new('streams_pages');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'event_store'
autovacuum = off
log_min_messages = warning
# Nothing else holds pruning back meanwhile, as on a slow disk it could long
# enough for the appends to fill a page (with or without event_store): a
# page being written out cannot be pruned, nor versions that a transaction
# still running could see (the notifier's, which announces the appends).
bgwriter_lru_maxpages = 0
event_store.notify_min_interval = 10000
checkpoint_timeout = 1h
max_wal_size = 1GB
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION event_store');

# the streams, created in one transaction: their rows fill the pages up to
# the table's fillfactor
$node->safe_psql('postgres',
	"SELECT count(event_store.es_append('s-' || i, NULL, 'Opened', '{}', NULL))
	   FROM generate_series(0, $nstreams - 1) i");
$node->safe_psql('postgres', 'CHECKPOINT');
my $pages_before = $node->safe_psql('postgres',
	"SELECT pg_relation_size('event_store.streams') / current_setting('block_size')::int");
my $lsn_before = $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');

# every stream appended to $rounds times, each append its own transaction,
# in the order s-0, s-77, s-154, ... (77 is prime to $nstreams): the stream
# rows were created in order, so one page after the other is visited, and
# each visit finds the versions the visits before it left
$node->safe_psql('postgres', qq{
DO \$\$
BEGIN
	FOR r IN 1..$rounds LOOP
		FOR i IN 0..$nstreams - 1 LOOP
			PERFORM event_store.es_append('s-' || (i * 77 % $nstreams), NULL,
										  'Deposited', '{"n": 1}', NULL);
			COMMIT;
		END LOOP;
	END LOOP;
END
\$\$});
my $lsn_after = $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');

is( $node->safe_psql('postgres',
		"SELECT count(*) FILTER (WHERE version = $rounds + 1), count(*) FROM event_store.streams"),
	"$nstreams|$nstreams",
	"every stream at version @{[$rounds + 1]}");
is( $node->safe_psql('postgres', 'SELECT count(*) FROM event_store.events'),
	$nstreams * ($rounds + 1),
	'every event stored');

my $pages_after = $node->safe_psql('postgres',
	"SELECT pg_relation_size('event_store.streams') / current_setting('block_size')::int");
cmp_ok($pages_after, '<=', $pages_before,
	"the streams table did not grow ($pages_before pages) over $appends appends without VACUUM");

# the statistics of the appending session reach the shared counters when it ends
$node->poll_query_until('postgres',
	"SELECT n_tup_upd >= $appends FROM pg_stat_user_tables
	  WHERE schemaname = 'event_store' AND relname = 'streams'")
  or die 'the update count never arrived';
is( $node->safe_psql('postgres',
		"SELECT n_tup_upd = n_tup_hot_upd FROM pg_stat_user_tables
		  WHERE schemaname = 'event_store' AND relname = 'streams'"),
	't',
	'every update of a stream row was a HOT update');

# prunes of the WAL between the two points: only the streams table has dead
# rows to prune (events are never updated); PostgreSQL's own rule would prune
# a page on nearly every visit, once per append
my ($stdout, $stderr) = run_command(
	[
		'pg_waldump', '--stats=record', '-p', $node->data_dir . '/pg_wal',
		'-s', $lsn_before, '-e', $lsn_after
	]);
# (PostgreSQL 17 names the record of a prune by a reader or writer
# PRUNE_ON_ACCESS, and VACUUM's PRUNE_VACUUM_SCAN and _CLEANUP; 15 has one
# PRUNE for all: only VACUUM's differ, and no VACUUM runs here)
my $prunes = 0;
$prunes += $1 while $stdout =~ m{^Heap2/PRUNE(?:_ON_ACCESS)?\s+(\d+)}mg;
note("summary: $prunes prunes of the streams pages in $appends appends");
cmp_ok($prunes, '>', 0, 'the appenders pruned the streams pages');
cmp_ok($prunes, '<', $appends / 4,
	"they pruned a page once per several appends ($prunes prunes, $appends appends)");

$node->stop;
done_testing();
