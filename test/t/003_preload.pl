# Without shared_preload_libraries the extension refuses to install, with
# SQLSTATE 55000 (object_not_in_prerequisite_state) and a hint saying what to
# configure, and leaves nothing behind.  With the preload it installs.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('nopreload');
$node->init;
$node->start;

is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'', 'the node runs without shared_preload_libraries');

# VERBOSITY verbose prints the SQLSTATE after the severity
my ($rc, $stdout, $stderr) = $node->psql(
	'postgres', "\\set VERBOSITY verbose\nCREATE EXTENSION event_store;");
isnt($rc, 0, 'CREATE EXTENSION event_store fails without the preload');
like($stderr, qr/ERROR:\s+55000:/, '... with SQLSTATE 55000');
like($stderr, qr/^HINT:.*shared_preload_libraries/m,
	'... and a hint naming shared_preload_libraries');
like($stderr, qr/ERROR:.*shared_preload_libraries/,
	'... and a message saying why');
note "error: $stderr";

is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM pg_namespace WHERE nspname = 'event_store'}),
	'0',
	'no schema event_store is left behind');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM pg_extension WHERE extname = 'event_store'}),
	'0',
	'no extension is left behind');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM pg_proc WHERE prosrc LIKE 'es\_%'
					  AND probin LIKE '%event_store%'}),
	'0',
	'no function is left behind');

# also when the library was loaded into the session first
($rc, $stdout, $stderr) = $node->psql(
	'postgres', "\\set VERBOSITY verbose\nLOAD 'event_store';\nCREATE EXTENSION event_store;");
like($stderr, qr/ERROR:\s+55000:.*\n(?:.*\n)*HINT:.*shared_preload_libraries/,
	'a LOAD in the session does not make CREATE EXTENSION work');

# the same server with the preload installs it: the failure was the preload
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'event_store'");
$node->restart;
($rc, $stdout, $stderr) = $node->psql('postgres', 'CREATE EXTENSION event_store');
is($rc, 0, 'with the preload, CREATE EXTENSION succeeds') or diag($stderr);
is( $node->safe_psql(
		'postgres',
		q{SELECT last_version FROM event_store.es_append('preload-1', 0, 'Loaded', '{}')}),
	'1',
	'and appending works');

$node->stop;
done_testing();
