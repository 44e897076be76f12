# A streaming hot standby: stream reads there return what the primary
# committed; appends are refused (25006); the feed head is refused (55000),
# because a standby cannot tell whether the primary still holds a lower
# position.  After promotion, appends continue above every old position.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'event_store'\n");
$primary->start;
$primary->safe_psql('postgres', q{
  CREATE EXTENSION event_store;
  SELECT event_store.es_append('order-1', 0, '[{"type": "Placed", "data": {"n": 1}},
                                               {"type": "Paid", "data": {"n": 2}}]');});
$primary->backup('base');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

$primary->safe_psql('postgres',
	q{SELECT event_store.es_append('order-1', 2, 'Shipped', '{"n": 3}')});
$primary->wait_for_catchup($standby);

is( $standby->safe_psql('postgres',
		q{SELECT string_agg(version || type, ' ' ORDER BY version) FROM event_store.es_read_stream('order-1')}),
	'1Placed 2Paid 3Shipped',
	'es_read_stream on the standby returns what the primary committed');
is($standby->safe_psql('postgres', q{SELECT event_store.es_stream_version('order-1')}),
	'3', 'es_stream_version on the standby');

my ($rc, $out, $err) = $standby->psql('postgres',
	q{\set VERBOSITY verbose
	  SELECT event_store.es_append('order-1', 3, 'Refused', '{}')});
like($err, qr/25006/, 'es_append on the standby is refused with 25006');
($rc, $out, $err) = $standby->psql('postgres',
	q{\set VERBOSITY verbose
	  SELECT event_store.es_head_position()});
like($err, qr/55000: the event feed cannot be read during recovery/,
	'es_head_position on the standby is refused with 55000');

# promotion: the register starts from the highest replicated position
my $max = $primary->safe_psql('postgres', 'SELECT max(position) FROM event_store.events');
$primary->stop;
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'standby did not promote';
my $pos = $standby->safe_psql('postgres',
	q{SELECT last_position FROM event_store.es_append('order-1', 3, 'Delivered', '{}')});
cmp_ok($pos, '>', $max, 'after promotion, appends get positions above the replicated ones');
is($standby->safe_psql('postgres', 'SELECT event_store.es_head_position()'),
	$pos, 'and the feed head is readable again');

$standby->stop;
done_testing();
