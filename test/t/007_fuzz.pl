# Bad input at scale: a bounded, deterministic fuzzer of every SQL function
# of event_store, of plain INSERT (and COPY) into event_store.events, which go
# through the C triggers, and of UPDATE / DELETE / TRUNCATE / MERGE / ON
# CONFLICT DO UPDATE attempts.
#
# A seeded PRNG (the seed is printed; ES_FUZZ_SEED=n replays a run,
# ES_FUZZ_SCALE=x multiplies the number of random inputs) generates more than
# 10,000 malformed or hostile inputs: JSON of the wrong shape, scalars,
# nested arrays, unknown and duplicate keys, huge strings, payloads nested
# 10,000 deep, arrays at and above the 10,000 events limit, numbers such as
# 1e400, -0, 2^63, "NaN"; binary-looking strings; names with combining
# characters, RTL marks, zero-width joiners, emoji, whitespace only, a
# leading "-", exactly the byte limit and one byte more with a multibyte
# character straddling it; -2^63, 2^63-1, 0, -1 and friends for every integer
# argument; NULL in every argument position; odd arrays (NULL elements,
# empty, 101 and 10,000 elements, two dimensions, odd bounds).  A sweep first
# gives every argument of every function, one at a time, each edge value of
# its type (NULL, -2^63, 2^63-1, 0, -1, limits and one byte over) with the
# other arguments valid; then random inputs, interleaved across functions.
# They run in a UTF8 database as superuser, again there as three roles with
# fewer privileges (none; INSERT without SELECT; an application role), and a
# share of them in a SQL_ASCII database, where any byte but NUL reaches the
# functions.
#
# For every input it asserts:
#   - the server does not crash: the connection stays up, and at the end the
#     postmaster is alive, a fresh connection works and the server log has no
#     crash line (terminated by signal, server process ... exited, PANIC,
#     TRAP) and no resource leak warning;
#   - every error carries a proper SQLSTATE, never class XX (internal error)
#     or 58 (system error), nor one that says the statement itself was wrong
#     (the fuzzer would then not reach the function);
#   - a failing call stores nothing: after every call to a function that
#     writes, the number of events, the highest position, the number and
#     versions of the streams and the checkpoints are compared with those
#     before; about 1 in 8 of those calls also runs inside a transaction,
#     after a valid append, under a SAVEPOINT: the failure rolled back to the
#     savepoint must leave the transaction's state as it was, and the same
#     stream must then take the next version; the transaction then commits
#     or rolls back (and then leaves nothing at all);
#   - invariants after every write: as many events as the streams' versions
#     add up to, no empty stream; every 1,000 writes and at the end: each
#     stream numbered 1..N and its row at N; at the end amcheck of every
#     index of the tables (heapallindexed), and the feed read page by page is
#     exactly the table;
#   - what succeeds is well formed: reads return the stream, category,
#     consumer group member (FNV-1a, computed here), types asked for, in
#     order, at most max_count; es_category and es_consumer_member agree with
#     their definitions; es_uuid_v7 gives distinct version 7 UUIDs; a replay
#     of an append whose events all carry ids is an idempotent retry that
#     stores nothing; UPDATE / DELETE / TRUNCATE / MERGE never succeed;
#   - the notifications sent meanwhile are JSON whose categories are, byte
#     for byte, categories of stored streams (odd names escaped right).
#
# Then, in databases of their own, the edges that would exhaust the
# positions of the main one: a position of exactly 2^62; streams rows
# written directly (as a restore does) at a version near 2^63; and (noted,
# not asserted) where a failed INSERT that gave a position leaves the
# register.
#
# One ok() per function (with its number of inputs); a diag lists every
# offending input in full (parameters over 4 kB abbreviated, with how they
# were built).  At the end a line starting with "# summary" gives the inputs
# per function and in all.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DBI;
use DBD::Pg;
use Encode qw(encode_utf8);
use JSON::PP;
use Time::HiRes qw(time);

my $started = time;
my $seed = $ENV{ES_FUZZ_SEED} // 20070;
die "ES_FUZZ_SEED must be an integer\n" unless $seed =~ /^\d+$/;
my $scale = $ENV{ES_FUZZ_SCALE} // 1;
die "ES_FUZZ_SCALE must be a number\n" unless $scale =~ /^\d+(\.\d+)?$/;
srand($seed);
diag("fuzz seed $seed (replay with ES_FUZZ_SEED=$seed)");

my $node = PostgreSQL::Test::Cluster->new('fuzz');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'event_store'
log_line_prefix = '%m [%p] %b %e '
log_min_messages = warning
log_min_error_statement = panic
log_statement = none
max_connections = 20
});
$node->start;
for my $db (
	[ 'fuzz', 'UTF8' ],
	[ 'fuzz_ascii', 'SQL_ASCII' ],
	[ 'fuzz_edge', 'UTF8' ],
	[ 'fuzz_edge2', 'UTF8' ])
{
	$node->safe_psql('postgres',
		"CREATE DATABASE $db->[0] TEMPLATE template0 ENCODING '$db->[1]' LC_COLLATE 'C' LC_CTYPE 'C'");
	$node->safe_psql($db->[0], 'CREATE EXTENSION event_store');
}
$node->safe_psql('fuzz', 'CREATE EXTENSION amcheck');

# warnings the server sends to a client (e.g. "resource leak"), collected
my @client_warnings;
$SIG{__WARN__} = sub {
	my $w = join('', @_);
	if ($w =~ /^(WARNING|NOTICE|INFO|LOG):/) { push @client_warnings, $w }
	else { print STDERR $w }
};

sub connect_db
{
	my ($db, $user) = @_;
	my $dbh = DBI->connect(
		"dbi:Pg:dbname=$db;host=" . $node->host . ';port=' . $node->port,
		$user // '', '',
		{
			AutoCommit => 1,
			RaiseError => 0,
			PrintError => 0,
			PrintWarn => 1,
			pg_enable_utf8 => 0,    # every string is bytes, sent as is
			AutoInactiveDestroy => 1
		}) or die "connect $db: $DBI::errstr";
	$dbh->do("SET statement_timeout = '60s'");
	$dbh->do("SET lock_timeout = '20s'");
	$dbh->do('SET client_min_messages = warning');
	$dbh->do($db eq 'fuzz_ascii' ? "SET client_encoding = 'SQL_ASCII'" : "SET client_encoding = 'UTF8'");
	return $dbh;
}

# ---------------------------------------------------------------------------
# random helpers (all randomness comes from srand($seed))
# ---------------------------------------------------------------------------
sub rint { return int(rand($_[0])) }
sub pick { return $_[ rint(scalar @_) ] }
sub chance { return rand() < $_[0] }
sub u8 { return encode_utf8($_[0]) }    # characters -> UTF-8 bytes

sub shuffle
{
	my @a = @_;
	for (my $i = $#a; $i > 0; $i--)
	{
		my $j = rint($i + 1);
		@a[ $i, $j ] = @a[ $j, $i ];
	}
	return @a;
}

# multibyte characters of 2, 3 and 4 bytes, and a combining sequence
my @mb = map { u8($_) } ("\x{E9}", "\x{20AC}", "\x{1F600}", "e\x{301}", "\x{5B57}", "\x{10FFFF}");

# odd pieces of names: combining marks, RTL marks and overrides, zero-width
# joiners and spaces, BOM, emoji sequences, controls (no NUL), quotes,
# format directives, SQL
my @pieces = map { u8($_) } (
	"\x{301}", "e\x{301}", "\x{200F}", "\x{202E}", "\x{200D}", "\x{200B}",
	"\x{FEFF}", "\x{A0}", "\x{3000}", "\x{2028}", "\x{1F600}",
	"\x{1F468}\x{200D}\x{1F469}\x{200D}\x{1F467}", "\x{10FFFF}", "\x{FFFE}",
	"\x{FFFF}", "\x{FDD0}", "\x{E000}", "\x{E9}", "\x{20AC}", "\x{5B57}",
	"\x{627}\x{644}", "\x{1}", "\x{7}", "\x{1B}[31m", "\x{7F}", "\t", "\n", "\r",
	' ', '-', "'", '"', "\\", '%s', '%n', '%d%d%d', '$1', ';', '--', '/*', '*/',
	"\x{1D11E}", "\x{3A9}", "\x{FB00}", "\x{130}", "\x{DF}", "\x{2010}", "\x{2212}",
	'{', '}', ',', 'NULL', '\\N');

my @fixed_odd_names = map { u8($_) } (
	' ', '  ', "\t", "\n", "\r\n", "\x{3000}", "\x{A0}", "\x{2028}", "\x{200B}",
	"\x{FEFF}", '-', '-a', '--', "-\x{301}", '- ', 'a-', 'a--b', '-' x 1000,
	'a' . '-' x 999, "'; DROP TABLE event_store.events; --", '%s%s%s%n',
	"\\", '"', 'null', 'NULL', "\x{FEFF}order-1", 'order-1 ', ' order-1',
	'ORDER-1', "order\x{2010}1", "order\x{2212}1", "\x{E9}-1", "e\x{301}-1",
	"\x{202E}1-redro", "\x{1F600}-\x{1F600}", "\x{1F468}\x{200D}\x{1F469}-1",
	"\x{1}\x{2}\x{3}", "a\x{7F}b", 'order-1/../2', '*', '%', '_', 'order-%',
	"\x{10FFFF}-x", "x\x{301}\x{301}\x{301}\x{301}", '{a,b}', '(1,2)', '$$');

# a name of exactly the byte limit, or one more, a multibyte character
# straddling the limit
sub limit_name
{
	my ($limit) = @_;
	my $c = pick(@mb);
	my $k = length $c;
	my $kind = rint(9);
	return 'x' x $limit if $kind == 0;
	return 'x' x ($limit + 1) if $kind == 1;
	return ('x' x ($limit - $k)) . $c if $kind == 2;        # exactly the limit
	return ('x' x ($limit - $k + 1)) . $c if $kind == 3;    # one byte more
	return $c x int($limit / $k) if $kind == 4;
	return $c x (int($limit / $k) + 1) if $kind == 5;
	return ('x' x ($limit - 1)) . $c if $kind == 6;         # straddles
	return ('x' x ($limit - 1)) . "\x{CC}\x{81}" if $kind == 7;   # a combining mark across it
	return 'x' x ($limit - 1);
}

# NUL-free bytes, mostly not UTF-8
sub random_bytes
{
	my ($n) = @_;
	return join('', map { chr(1 + rint(255)) } 1 .. $n);
}

# valid UTF-8 from odd corners of Unicode (no surrogates, no NUL)
my @ranges = (
	[ 0x20, 0x7e ], [ 0x1, 0x1f ], [ 0xa0, 0xff ], [ 0x300, 0x36f ],
	[ 0x590, 0x6ff ], [ 0x200b, 0x200f ], [ 0x202a, 0x202e ], [ 0x2060, 0x206f ],
	[ 0x4e00, 0x9fff ], [ 0xe000, 0xf8ff ], [ 0xfe00, 0xfe0f ], [ 0xfff0, 0xffff ],
	[ 0x1f300, 0x1faff ], [ 0x10000, 0x10ffff ]);

sub random_unicode
{
	my ($n) = @_;
	my $s = '';
	for (1 .. $n)
	{
		my $r = pick(@ranges);
		$s .= chr($r->[0] + rint($r->[1] - $r->[0] + 1));
	}
	return u8($s);
}

sub random_uuid
{
	my $h = join('', map { sprintf('%04x', rint(65536)) } 1 .. 8);
	return join('-', substr($h, 0, 8), substr($h, 8, 4), substr($h, 12, 4),
		substr($h, 16, 4), substr($h, 20, 12));
}

# the names of streams, types and consumers that the fuzzer uses
sub gen_name
{
	my ($limit, $pool) = @_;
	my $r = rand();
	return pick(@$pool) if $r < 0.45 && @$pool;
	return undef if $r < 0.50;
	return '' if $r < 0.53;
	return limit_name($limit) if $r < 0.63;
	return pick(@fixed_odd_names) if $r < 0.76;
	return join('', map { pick(@pieces) } 1 .. 1 + rint(6)) if $r < 0.82;
	return random_bytes(1 + rint(40)) if $r < 0.88;
	return random_unicode(1 + rint(60));
}

my @int8_edges = (
	'-9223372036854775808', '9223372036854775807', '9223372036854775806', '0',
	'-1', '1', '2', '4611686018427387903', '4611686018427387904', '2147483647',
	'2147483648', '-2147483648', '-2147483649', '10000', '10001', '1024', '1025',
	'100', '101', '-4611686018427387904');
my @int_bad_text = (
	'9223372036854775808', '-9223372036854775809', '1e400', 'NaN', '1.5', '',
	' 7 ', 'abc', '0x10', '+5', u8("\x{661}\x{662}"), '99999999999999999999999',
	'-0', '1e3', 'Infinity', '--1', '1 1');

sub gen_int
{
	my $r = rand();
	return undef if $r < 0.12;
	return pick(@int_bad_text) if $r < 0.17;
	return rint(12) if $r < 0.55;
	return pick(@int8_edges);
}

my @bools = (undef, 'true', 'false', 't', 'f', 'true', 'false', 'yes', 'off', '1', '0', 'maybe', '', 'TRUE ');

sub gen_bool { return pick(@bools) }

sub gen_uuid_arg
{
	my ($known) = @_;
	my $r = rand();
	return undef if $r < 0.45;
	return random_uuid() if $r < 0.65;
	return pick(@$known) if $r < 0.80 && @$known;
	return pick(
		'not-a-uuid', '', '00000000-0000-0000-0000-000000000000',
		'ffffffff-ffff-ffff-ffff-ffffffffffff', '{' . random_uuid() . '}',
		uc(random_uuid()), join('', split /-/, random_uuid()),
		random_uuid() . '0', substr(random_uuid(), 1), 'NULL', ' ',
		'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz', random_bytes(36));
}

# ---------------------------------------------------------------------------
# JSON, written by hand: duplicate keys, odd numbers and escapes included
# ---------------------------------------------------------------------------
sub jstr
{
	my ($s) = @_;
	$s =~ s/(["\\])/\\$1/g;
	$s =~ s/([\x00-\x1f])/sprintf('\\u%04x', ord $1)/ge;
	return qq{"$s"};
}

my @json_numbers = (
	'0', '-0', '1', '-1', '1e400', '-1e400', '1e-400', '9223372036854775808',
	'-9223372036854775809', '18446744073709551616', '2147483648', '0.5', '1.0',
	'1e0', '1E+2', '3.14159', '1' . '0' x 300, '0.' . '0' x 300 . '1',
	'-' . '9' x 100, '4611686018427387904', '-0.0', '1e131071');
my @json_odd_strings = (
	'"NaN"', '"Infinity"', '"1e400"', '"\ud83d\ude00"', '"\u00e9"', '"\u200f"',
	'"\u0001"', '""', '" "', '"\\\\"', '"\""', '"\/"', '"\ufeff"', '"\uffff"');
my @json_bad = (
	'NaN', 'Infinity', '-Infinity', '01', '1.', '.5', '+1', '0x10', q{'x'},
	'undefined', '[1,]', '{"a":1,}', '{', '[', '', ' ', '{"a"}', '{1:2}', 'nul',
	'"\u0000"', '"\ud800"', '"\udc00x"', qq{"\x01"}, '"\x"', '[1] x', '1e999999999',
	qq{"\xff\xfe"}, '{"a":1}{"b":2}', '[' x 100_000 . ']' x 100_000);

# built once: payloads nested 10,000 deep (PostgreSQL accepts them)
my $deep_array = '[' x 10_000 . ']' x 10_000;
my $deep_object = '{"a":' x 10_000 . '1' . '}' x 10_000;

sub gen_json
{
	my ($d) = @_;
	$d //= 0;
	my $r = rand();
	if ($d > 3 || $r < 0.45)
	{
		my $s = rand();
		return pick(@json_numbers) if $s < 0.3;
		return pick('true', 'false', 'null') if $s < 0.4;
		return pick(@json_odd_strings) if $s < 0.55;
		return jstr(random_unicode(rint(20))) if $s < 0.8;
		return jstr(pick(@fixed_odd_names));
	}
	return pick($deep_array, $deep_object) if $r < 0.46;
	if ($r < 0.7)
	{
		return '[' . join(',', map { gen_json($d + 1) } 1 .. rint(5)) . ']';
	}
	return '{'
	  . join(',',
		map { jstr(chance(0.5) ? 'k' . rint(5) : random_unicode(rint(8))) . ':' . gen_json($d + 1) }
		  1 .. rint(5))
	  . '}';
}

my @types_valid = map { u8($_) } (
	'T', 'OrderPlaced', 'ItemAdded', 'x', "\x{C9}v\x{E9}nement", "\x{1F600}",
	' ', 'a.b.c', 'Type-With-Dashes', "e\x{301}", 'UPPER', 'T' x 500);

my @known_ids;        # event ids stored in the current database
my @known_streams;    # stream names that took an append

sub gen_type { return chance(0.7) ? pick(@types_valid) : gen_name(500, \@types_valid) }

sub gen_stream_name
{
	my $r = rand();
	return 'fz-' . rint(30) if $r < 0.25;
	return pick('order-', 'payment-', u8("\x{E9}-"), 'cat', 'fz-', u8("\x{1F600}-")) . rint(6)
	  if $r < 0.35;
	return gen_name(1000, \@known_streams);
}

my @unknown_keys = map { u8($_) } (
	'metdata', 'Type', 'TYPE', '', 'type ', " type", "typ\x{435}", 'position',
	'version', 'stream', 'created_at', 'event_id', 'data2', 'k' x 1000,
	"\x{200B}type", 'schemaVersion', 'ID', 'Data', 'meta_data');
my @bad_ids = (
	'1', 'true', '{}', '[]', '""', '"not-a-uuid"',
	'"00000000-0000-0000-0000-000000000000"', '"ffffffff-ffff-ffff-ffff-ffffffffffff"',
	'"zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"', '"' . random_uuid() . '0"', '" "',
	'"\u0031"', 'null', '1e400');
my @bad_schema_versions = (
	'0', '-1', '1.5', '1e400', '-0', '2147483647', '2147483648', '"1"', '"NaN"',
	'null', 'true', '[]', '{}', '1.0', '1e0', '2e9', '3e9', '-2147483649', '0.0000001',
	'1e-400', '9223372036854775808', '-9223372036854775809', '1' . '0' x 100);
my @bad_metadata = ('[]', '"x"', '1', 'true', 'null', '{}', '[{}]', '"{}"', '1e400');

# one event object, mostly valid, with 0 to 2 mutations
sub gen_event
{
	my ($id) = @_;
	my @kv;
	my %ev;
	$ev{type} = jstr(gen_type());
	$ev{data} = gen_json(1);
	$ev{metadata} = '{"correlation_id":' . jstr('c-' . rint(100)) . '}' if chance(0.3);
	$ev{id} = jstr($id // random_uuid()) if defined $id || chance(0.2);
	$ev{schema_version} = pick('1', '2', 'null') if chance(0.1);
	my @extra;
	my $nmut = defined $id ? rint(2) * rint(2) : (chance(0.25) ? 0 : 1 + rint(2));
	for (1 .. $nmut)
	{
		my $m = rint(10);
		if ($m == 0) { delete $ev{ pick('type', 'data') } }
		elsif ($m == 1)
		{
			$ev{type} = pick('1', 'null', 'true', '{}', '[]', '["T"]', '""',
				jstr(limit_name(500)), jstr(' '), jstr(gen_name(500, [])),
				jstr(random_bytes(1 + rint(10))));
		}
		elsif ($m == 2) { $ev{data} = pick(gen_json(0), 'null', '""', '[]', '1e400', pick(@json_bad)) }
		elsif ($m == 3)
		{
			$ev{metadata} = pick(@bad_metadata, '{"a":' . $deep_object . '}', gen_json(1));
		}
		elsif ($m == 4)
		{
			$ev{id} = chance(0.4) && @known_ids ? jstr(pick(@known_ids)) : pick(@bad_ids);
		}
		elsif ($m == 5) { $ev{schema_version} = pick(@bad_schema_versions) }
		elsif ($m == 6) { push @extra, [ jstr(pick(@unknown_keys)), gen_json(1) ] }
		elsif ($m == 7) { push @extra, [ '"type"', pick('1', '""', jstr(gen_type())) ] }    # duplicate key
		elsif ($m == 8)
		{
			push @extra, map { [ jstr("k$_"), '1' ] } 1 .. pick(1, 10, 200);
		}
		else
		{
			return pick('null', '1', '"x"', '[]', '[{}]', 'true', '{}', $deep_array);
		}
	}
	@kv = ((map { [ jstr($_), $ev{$_} ] } sort keys %ev), @extra);
	return '{' . join(',', map { "$_->[0]:$_->[1]" } shuffle(@kv)) . '}';
}

my @odd_events = (
	'{}', '1', '"x"', 'null', 'true', '{"type":"T","data":{}}',
	'[[{"type":"T","data":{}}]]', '[]', '[null]', '[[]]', '[1,2]', '"[]"',
	'[{"type":"T","data":{}}, null]', '[{"type":"T","data":{}}, []]',
	'{"events":[{"type":"T","data":{}}]}', '[{"type":"T","data":{}}, "x"]',
	'[' . $deep_array . ']', '[{"type":"T"}]', '[{"data":{}}]', '[{}]',
	'[{"type":"T","data":{},"id":null,"metadata":null,"schema_version":null}]');

# the events argument of es_append; $meta gets n and whether all carry ids
sub gen_events
{
	my ($meta) = @_;
	my $r = rand();
	return undef if $r < 0.04;
	return pick(@json_bad) if $r < 0.08;
	return pick(@odd_events) if $r < 0.2;
	my $n = 1 + (chance(0.85) ? rint(3) : rint(40));
	my $all_ids = chance(0.12);
	my @ids = map { random_uuid() } 1 .. $n;
	$ids[-1] = $ids[0] if $n > 1 && chance(0.05);    # the same id twice
	my @evs = map { gen_event($all_ids ? $ids[$_] : undef) } 0 .. $n - 1;
	$meta->{n} = $n;
	$meta->{all_ids} = $all_ids;
	return '[' . join(',', @evs) . ']';
}

sub array_literal
{
	my @e = @_;
	return '{' . join(',', map {
		  my $s = $_;
		  defined $s ? do { $s =~ s/(["\\])/\\$1/g; qq{"$s"} } : 'NULL'
	} @e) . '}';
}

my @odd_arrays = (
	'{}', '{NULL}', '{{a,b},{c,d}}', '[0:1]={T,OrderPlaced}',
	'[-2147483648:-2147483647]={a,b}', '[2147483646:2147483647]={a,b}', '{', '{a',
	'a', '{"a}', '{{}}', '{{{{{{{a}}}}}}}', '{a,{b}}', '{{a},{b,c}}', '{""}',
	'{T,T,T}', '{ }', '{NULL,NULL}', '[1:0]={}', '[1:2]={a}', '{{T}}', '{"NULL"}',
	'[1:1][1:1]={{T}}', '{' . join(',', ('T') x 101) . '}');

sub gen_types
{
	my ($meta) = @_;
	my $r = rand();
	return undef if $r < 0.3;
	return pick(@odd_arrays) if $r < 0.45;
	my $n = pick(1, 1, 2, 3, 5, 99, 100, 101);
	my @e = map { chance(0.85) ? pick(@types_valid) : gen_name(500, []) } 1 .. $n;
	$meta->{types} = [@e];
	return array_literal(@e);
}

# ---------------------------------------------------------------------------
# FNV-1a 64 modulo size, in 32-bit halves (Perl's integers are not 64-bit
# unsigned under multiplication); es_category in bytes
# ---------------------------------------------------------------------------
sub fnv_member
{
	my ($bytes, $size) = @_;
	my ($hi, $lo) = (0xcbf29ce4, 0x84222325);
	for my $b (unpack('C*', $bytes))
	{
		$lo ^= $b;
		my $l = $lo * 0x1b3;
		my $nlo = $l % 4294967296;
		my $carry = ($l - $nlo) / 4294967296;
		my $nhi = ($hi * 0x1b3 + $carry + (($lo % 16777216) * 256)) % 4294967296;
		($hi, $lo) = ($nhi, $nlo);
	}
	return (($hi % $size) * (4294967296 % $size) + $lo) % $size;
}
die 'fnv_member is wrong'
  unless fnv_member('order-1', 3) == 0
  && fnv_member('order-1', 4) == 1
  && fnv_member('account-42', 3) == 1
  && fnv_member(u8("\x{E9}-1"), 4) == 3;

sub category_of
{
	my ($s) = @_;
	my $i = index($s, '-');
	return $i < 0 ? $s : substr($s, 0, $i);
}

sub plain_int { return defined $_[0] && $_[0] =~ /^-?\d{1,19}$/ }

# PostgreSQL's boolean input, for the values the fuzzer sends
sub pg_bool
{
	my ($v) = @_;
	return undef unless defined $v;
	(my $s = lc $v) =~ s/^\s+|\s+$//g;
	return 1 if $s =~ /^(t|tr|tru|true|y|ye|yes|on|1)$/;
	return 0 if $s =~ /^(f|fa|fal|fals|false|n|no|off|of|0)$/;
	return undef;
}

# ---------------------------------------------------------------------------
# the statements, prepared once per connection, with typed parameters
# ---------------------------------------------------------------------------
my $ev_cols = 'position, stream, version, type';
my %SQL = (
	append_json => 'SELECT * FROM event_store.es_append($1::text, $2::bigint, $3::jsonb)',
	append_one7 => 'SELECT * FROM event_store.es_append($1::text, $2::bigint, $3::text, $4::jsonb, $5::jsonb, $6::uuid, $7::integer)',
	append_one4 => 'SELECT * FROM event_store.es_append($1::text, $2::bigint, $3::text, $4::jsonb)',
	append_named => 'SELECT * FROM event_store.es_append(stream => $1::text, expected_version => $2::bigint, type => $3::text, data => $4::jsonb, schema_version => $5::integer)',
	read_stream4 => "SELECT $ev_cols FROM event_store.es_read_stream(\$1::text, \$2::bigint, \$3::bigint, \$4::boolean)",
	read_stream_star => 'SELECT * FROM event_store.es_read_stream($1::text, $2::bigint, $3::bigint, $4::boolean)',
	read_stream1 => "SELECT $ev_cols FROM event_store.es_read_stream(\$1::text)",
	read_stream_named => "SELECT $ev_cols FROM event_store.es_read_stream(stream => \$1::text, backwards => \$2::boolean)",
	stream_version => 'SELECT event_store.es_stream_version($1::text)',
	head => 'SELECT event_store.es_head_position()',
	read_all3 => "SELECT $ev_cols FROM event_store.es_read_all(\$1::bigint, \$2::bigint, \$3::text[])",
	read_all_star => 'SELECT * FROM event_store.es_read_all($1::bigint, $2::bigint, $3::text[])',
	read_all1 => "SELECT $ev_cols FROM event_store.es_read_all(\$1::bigint)",
	read_cat5 => "SELECT $ev_cols FROM event_store.es_read_category(\$1::text, \$2::bigint, \$3::bigint, \$4::integer, \$5::integer)",
	read_cat_star => 'SELECT * FROM event_store.es_read_category($1::text, $2::bigint, $3::bigint, $4::integer, $5::integer)',
	read_cat1 => "SELECT $ev_cols FROM event_store.es_read_category(\$1::text)",
	member => 'SELECT event_store.es_consumer_member($1::text, $2::integer)',
	category => 'SELECT event_store.es_category($1::text)',
	uuid => 'SELECT event_store.es_uuid_v7()::text',
	cp_save3 => 'SELECT event_store.es_checkpoint_save($1::text, $2::bigint, $3::bigint)',
	cp_save2 => 'SELECT event_store.es_checkpoint_save($1::text, $2::bigint)',
	cp_get => 'SELECT event_store.es_checkpoint_get($1::text)',
	cp_reset2 => 'SELECT event_store.es_checkpoint_reset($1::text, $2::bigint)',
	cp_reset1 => 'SELECT event_store.es_checkpoint_reset($1::text)',
	check_consumer => 'SELECT event_store._es_check_consumer($1::text)',
	check_position => 'SELECT event_store._es_check_position($1::bigint)',
	install => 'SELECT event_store._es_install()',
	trig_before => 'SELECT event_store._es_events_before_insert()',
	trig_after => 'SELECT event_store._es_events_after_statement()',
	trig_refuse => 'SELECT event_store._es_refuse_change()',
	ins_basic => 'INSERT INTO event_store.events (stream, type, data) VALUES ($1::text, $2::text, $3::jsonb) RETURNING position, version',
	ins_full => 'INSERT INTO event_store.events (stream, type, data, metadata, event_id, schema_version) VALUES ($1::text, $2::text, $3::jsonb, $4::jsonb, $5::uuid, $6::integer) RETURNING position, version',
	ins_version => 'INSERT INTO event_store.events (stream, version, type, data) VALUES ($1::text, $2::bigint, $3::text, $4::jsonb) RETURNING position, version',
	ins_position => 'INSERT INTO event_store.events (position, stream, type, data) VALUES ($1::bigint, $2::text, $3::text, $4::jsonb) RETURNING position, version',
	ins_two => 'INSERT INTO event_store.events (stream, type, data) VALUES ($1::text, $2::text, $3::jsonb), ($4::text, $5::text, $6::jsonb) RETURNING position, version',
	ins_series => 'INSERT INTO event_store.events (stream, type, data) SELECT $1::text, $2::text, $3::jsonb FROM generate_series(1, $4::integer) RETURNING position, version',
	ins_nothing => 'INSERT INTO event_store.events (stream, type, data, event_id) VALUES ($1::text, $2::text, $3::jsonb, $4::uuid) ON CONFLICT (event_id) DO NOTHING RETURNING position, version',
	ch_upd_data => 'UPDATE event_store.events SET data = $1::jsonb WHERE position = $2::bigint',
	ch_upd_stream => 'UPDATE event_store.events SET stream = $1::text WHERE stream = $2::text',
	ch_upd_none => 'UPDATE event_store.events SET position = position WHERE $1::boolean',
	ch_del_stream => 'DELETE FROM event_store.events WHERE stream = $1::text',
	ch_del_after => 'DELETE FROM event_store.events WHERE position > $1::bigint',
	ch_upd_streams => 'UPDATE event_store.streams SET version = $1::bigint WHERE name = $2::text',
	ch_del_streams => 'DELETE FROM event_store.streams WHERE name = $1::text',
	ch_upsert => 'INSERT INTO event_store.events (stream, type, data, event_id) VALUES ($1::text, $2::text, $3::jsonb, $4::uuid) ON CONFLICT (event_id) DO UPDATE SET data = excluded.data',
	ch_merge => 'MERGE INTO event_store.events e USING (SELECT $1::bigint AS p) s ON e.position = s.p WHEN MATCHED THEN UPDATE SET data = $2::jsonb WHEN NOT MATCHED THEN DO NOTHING',
	ch_merge_del => 'MERGE INTO event_store.streams t USING (SELECT $1::text AS n) s ON t.name = s.n WHEN MATCHED THEN DELETE',
	ch_truncate_events => 'TRUNCATE event_store.events',
	ch_truncate_streams => 'TRUNCATE event_store.streams CASCADE',
);

# state: what a failing call must leave alone
my $STATE_SQL = q{
SELECT (SELECT count(*) FROM event_store.events),
       (SELECT coalesce(max(position), 0) FROM event_store.events),
       s.n, s.v, s.z, c.n, c.p
  FROM (SELECT count(*) AS n, coalesce(sum(version), 0) AS v,
               count(*) FILTER (WHERE version = 0) AS z FROM event_store.streams) s,
       (SELECT count(*) AS n, coalesce(sum(position), 0) AS p FROM event_store.checkpoints) c};

# every stream numbered 1..N, its row at N, its category right
my $CONSISTENCY_SQL = q{
SELECT count(*) FROM
  (SELECT stream, count(*) AS c, min(version) AS lo, max(version) AS hi
     FROM event_store.events GROUP BY stream) e
  FULL JOIN event_store.streams s ON s.name = e.stream
 WHERE e.stream IS NULL OR s.name IS NULL OR e.c <> e.hi OR e.lo <> 1
    OR s.version <> e.hi OR s.category <> event_store.es_category(s.name)};

# ---------------------------------------------------------------------------
# bookkeeping
# ---------------------------------------------------------------------------
my %stats;         # function => {n, ok, err, codes => {sqlstate => count}}
my @offenders;     # {fn, why, sql, params, label, db}
my %fn_offended;   # function => count
my %tx_stats = (rounds => 0, failed_inside => 0, committed => 0, rolled_back => 0);
my $db_label;      # database of the current phase

sub show_param
{
	my ($v) = @_;
	return 'NULL' unless defined $v;
	my $len = length $v;
	my $shown = $len > 4000 ? substr($v, 0, 300) : $v;
	$shown =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
	return $len > 4000 ? "'$shown'... ($len bytes in all)" : "'$shown'";
}

sub offend
{
	my ($fn, $why, $key, $params, $label) = @_;
	$fn_offended{$fn}++;
	push @offenders,
	  {
		fn => $fn,
		db => $db_label,
		why => $why,
		sql => defined $key ? ($SQL{$key} // $key) : '',
		params => $params // [],
		label => $label // ''
	  };
}

# a handle: the connection, its prepared statements, the state it last saw
sub new_handle
{
	my ($db) = @_;
	my $h = { db => $db, dbh => connect_db($db), sth => {} };
	$h->{state} = measure($h);
	return $h;
}

sub reconnect
{
	my ($h) = @_;
	eval { $h->{dbh}->disconnect };
	$h->{dbh} = connect_db($h->{db}, $h->{user});
	$h->{sth} = {};
	$h->{state} = measure($h);
}

# the connection that measures: the fuzzing one, or the superuser's when
# the fuzzing one is a role that may not read the tables
sub mdbh { return $_[0]{mdbh} // $_[0]{dbh} }

sub measure
{
	my ($h) = @_;
	my $row = mdbh($h)->selectrow_arrayref($STATE_SQL);
	return 'unmeasurable: ' . (mdbh($h)->errstr // '?') unless $row;
	return sprintf('events=%s max_position=%s streams=%s versions=%s empty_streams=%s checkpoints=%s checkpoint_sum=%s', @$row);
}

sub invariants_ok
{
	my ($state) = @_;
	return 0 unless $state =~ /^events=(\d+) max_position=\d+ streams=\d+ versions=(\d+) empty_streams=(\d+)/;
	return $1 == $2 && $3 == 0;
}

# run one statement; returns (1, rows) or (0, sqlstate, message)
sub run_sql
{
	my ($h, $key, $params) = @_;
	my $dbh = $h->{dbh};
	my $sth = $h->{sth}{$key} //= $dbh->prepare($SQL{$key} // $key);
	return (0, $dbh->state, $dbh->errstr) unless $sth;
	my $rv = $sth->execute(@$params);
	return (0, $dbh->state, $dbh->errstr // '') unless defined $rv;
	my $rows = $sth->{NUM_OF_FIELDS} ? $sth->fetchall_arrayref : [];
	return (0, $dbh->state, $dbh->errstr // '') unless defined $rows;
	return (1, $rows);
}

# classify an error; returns true when the connection had to be replaced
sub check_error
{
	my ($h, $fn, $key, $params, $label, $state, $msg) = @_;
	$state //= '';
	my $s = $stats{$fn};
	$s->{err}++;
	$s->{codes}{$state}++;
	my $alive = $h->{dbh}->ping;
	if (!$alive || $state =~ /^(08|57P)/)
	{
		offend($fn, "connection lost (SQLSTATE '$state': $msg)", $key, $params, $label);
		reconnect($h);
		return 1;
	}
	if ($state !~ /^[0-9A-Z]{5}$/)
	{
		offend($fn, "no proper SQLSTATE ('$state': $msg)", $key, $params, $label);
	}
	elsif ($state =~ /^(XX|58)/)
	{
		offend($fn, "SQLSTATE $state: $msg", $key, $params, $label);
	}
	elsif ($state =~ /^(42601|42883|42P18|42725|42P08|42804|42P02|42703)$/)
	{
		offend($fn, "the statement did not reach the function (SQLSTATE $state: $msg)",
			$key, $params, $label);
	}
	elsif ($state eq '57014')
	{
		offend($fn, "statement timeout: a hang? ($msg)", $key, $params, $label);
	}
	return 0;
}

# one input in autocommit mode: its own transaction
#   $writes: compare the state after it with the state before
#   $check:  sub (params, rows) returning an error string for a bad result
sub fuzz_one
{
	my ($fn, $h, $key, $params, $label, %opt) = @_;
	my $s = $stats{$fn} //= { n => 0, ok => 0, err => 0, codes => {} };
	$s->{n}++;
	my $t = time;
	my ($ok, @res) = run_sql($h, $key, $params);
	my $lost = 0;
	if ($ok)
	{
		$s->{ok}++;
		if ($opt{check})
		{
			my $bad = $opt{check}->($params, $res[0]);
			offend($fn, "bad result: $bad", $key, $params, $label) if $bad;
		}
		offend($fn, 'succeeded, but must always be refused', $key, $params, $label)
		  if $opt{must_fail};
	}
	else
	{
		$lost = check_error($h, $fn, $key, $params, $label, @res);
	}
	if (($opt{writes} || $opt{measure}) && !$lost)
	{
		my $after = measure($h);
		if ((!$ok || $opt{stores_nothing} || !$opt{writes}) && $after ne $h->{state})
		{
			my $what = $ok ? ($opt{writes} ? 'an idempotent retry' : 'a read') : 'a failing call';
			offend($fn, "$what changed the state: before $h->{state}, after $after",
				$key, $params, $label);
		}
		offend($fn, "invariant broken after the call: $after", $key, $params, $label)
		  unless invariants_ok($after);
		$h->{state} = $after;
		after_write($h, $fn) if $opt{writes};
	}
	$s->{t} += time - $t;
	return ($ok, @res);
}

my $writes_since_deep = 0;

sub after_write
{
	my ($h, $fn) = @_;
	return if ++$writes_since_deep < 1000;
	$writes_since_deep = 0;
	deep_check($h, "after writes by $fn");
	refresh_known($h);
}

sub deep_check
{
	my ($h, $when) = @_;
	my ($bad) = mdbh($h)->selectrow_array($CONSISTENCY_SQL);
	offend('consistency', "$when: " . ($bad // mdbh($h)->errstr) . ' streams inconsistent with their events')
	  unless defined $bad && $bad == 0;
}

sub refresh_known
{
	my ($h) = @_;
	my $ids = mdbh($h)->selectcol_arrayref(
		'SELECT event_id::text FROM event_store.events ORDER BY position DESC LIMIT 200');
	@known_ids = @$ids if $ids && @$ids;
	my $names = mdbh($h)->selectcol_arrayref(
		'SELECT name FROM event_store.streams ORDER BY id DESC LIMIT 200');
	@known_streams = @$names if $names && @$names;
}

# one input inside a transaction, under a savepoint, after a valid append
my @tx_streams = map { "fz-tx-$_" } 0 .. 7;
my %tx_stream_param = (append_json => 0, append_one7 => 0, append_one4 => 0,
	append_named => 0, ins_basic => 0, ins_full => 0, ins_version => 0,
	ins_position => 1, ins_two => 0, ins_series => 0, ins_nothing => 0);

sub fuzz_in_tx
{
	my ($fn, $h, $key, $params, $label, %opt) = @_;
	my $dbh = $h->{dbh};
	my $base = $h->{state};
	my $txs = pick(@tx_streams);
	my @p = @$params;
	$p[ $tx_stream_param{$key} ] = $txs if exists $tx_stream_param{$key} && chance(0.5);
	$tx_stats{rounds}++;
	my $s = $stats{$fn} //= { n => 0, ok => 0, err => 0, codes => {} };
	$s->{n}++;
	my $t = time;
	my $ret = fuzz_in_tx_body($fn, $h, $key, \@p, $label, $s, $base, $txs, %opt);
	$s->{t} += time - $t;
	return $ret;
}

sub fuzz_in_tx_body
{
	my ($fn, $h, $key, $pp, $label, $s, $base, $txs, %opt) = @_;
	my @p = @$pp;
	my $dbh = $h->{dbh};

	$dbh->begin_work;
	my ($ok0, @r0) = run_sql($h, 'append_one4', [ $txs, undef, 'TxBefore', '{}' ]);
	unless ($ok0)
	{
		offend($fn, "setup append in the transaction failed: @r0", $key, \@p, $label);
		$dbh->rollback;
		reconnect($h) unless $dbh->ping;
		return;
	}
	my $s1 = measure($h);
	$dbh->do('SAVEPOINT fuzz');
	my ($ok, @res) = run_sql($h, $key, \@p);
	if ($ok)
	{
		$s->{ok}++;
		offend($fn, 'succeeded inside a transaction, but must always be refused', $key, \@p, $label)
		  if $opt{must_fail};
		$dbh->do('RELEASE SAVEPOINT fuzz');
	}
	else
	{
		$tx_stats{failed_inside}++;
		return if check_error($h, $fn, $key, \@p, $label, @res);
		unless ($dbh->do('ROLLBACK TO SAVEPOINT fuzz'))
		{
			offend($fn, 'ROLLBACK TO SAVEPOINT failed: ' . $dbh->errstr, $key, \@p, $label);
			$dbh->rollback;
			reconnect($h) unless $dbh->ping;
			return;
		}
		my $s2 = measure($h);
		offend($fn, "a failing call under a savepoint changed the transaction's state: before $s1, after $s2",
			$key, \@p, $label)
		  if $s2 ne $s1;
	}
	# the stream takes the next version, and stays numbered 1..N
	my ($ok3, @r3) = run_sql($h, 'append_one4', [ $txs, undef, 'TxAfter', '{}' ]);
	offend($fn, "the transaction's stream refused the next append after the call: @r3", $key, \@p, $label)
	  unless $ok3;
	my $row = $dbh->selectrow_arrayref(
		'SELECT s.version, (SELECT count(*) FROM event_store.events e WHERE e.stream = s.name),
		        (SELECT coalesce(max(version), 0) FROM event_store.events e WHERE e.stream = s.name)
		   FROM event_store.streams s WHERE s.name = $1', undef, $txs);
	offend($fn, "inside the transaction, stream $txs is numbered wrongly: "
		  . ($row ? "row at $row->[0], $row->[1] events, highest $row->[2]" : $dbh->errstr),
		$key, \@p, $label)
	  unless $row && $row->[0] == $row->[1] && $row->[1] == $row->[2];

	if ($opt{force} ? $opt{force} eq 'rollback' : chance(0.5))
	{
		$dbh->rollback;
		$tx_stats{rolled_back}++;
		my $after = measure($h);
		offend($fn, "a rolled-back transaction left state behind: before $base, after $after",
			$key, \@p, $label)
		  if $after ne $base;
		$h->{state} = $after;
	}
	else
	{
		unless ($dbh->commit)
		{
			offend($fn, 'COMMIT failed: ' . ($dbh->state // '') . ' ' . $dbh->errstr, $key, \@p, $label);
		}
		$tx_stats{committed}++;
		my $after = measure($h);
		offend($fn, "invariant broken after the transaction: $after", $key, \@p, $label)
		  unless invariants_ok($after);
		$h->{state} = $after;
	}
	reconnect($h) unless $dbh->ping;
}

# ---------------------------------------------------------------------------
# result checks
# ---------------------------------------------------------------------------
sub check_append
{
	my ($n) = @_;
	return sub {
		my ($p, $rows) = @_;
		return 'not one row' unless @$rows == 1;
		my ($stream, $fv, $lv, $fp, $lp) = @{ $rows->[0] };
		return "stream $stream" unless $stream eq $p->[0];
		return "versions $fv..$lv" unless $fv >= 1 && $lv >= $fv;
		return "positions $fp..$lp" unless $fp >= 1 && $lp - $fp == $lv - $fv;
		return "$n events, versions $fv..$lv" if defined $n && $lv - $fv + 1 != $n;
		push @known_streams, $stream if @known_streams < 400;
		return undef;
	};
}

sub monotone
{
	my ($list, $down) = @_;
	for my $i (1 .. $#$list)
	{
		return 0 if $down ? $list->[$i] >= $list->[ $i - 1 ] : $list->[$i] <= $list->[ $i - 1 ];
	}
	return 1;
}

sub check_read_stream
{
	my ($p, $rows) = @_;
	my ($stream, $from, $max, $back) = @$p;
	my $down = pg_bool($back);
	my $star = @$rows && @{ $rows->[0] } > 4;
	for my $r (@$rows)
	{
		return "a row of stream '$r->[1]'" unless $r->[1] eq $stream;
	}
	return "more than max_count $max rows" if plain_int($max) && @$rows > $max;
	if (defined $down)
	{
		my @v = map { $_->[2] } @$rows;
		return 'versions out of order' unless monotone(\@v, $down);
		my @pos = map { $_->[0] } @$rows;
		return 'positions do not follow versions' unless monotone(\@pos, $down);
		if (plain_int($from) && @v)
		{
			return "version $v[0] before from_version $from" if $down ? $v[0] > $from : $v[0] < $from;
		}
	}
	return undef;
}

sub check_feed
{
	my ($p, $rows, $meta, $cat) = @_;
	my ($after, $max) = @$p;
	my @pos = map { $_->[0] } @$rows;
	return 'positions out of order' unless monotone(\@pos, 0);
	return "position $pos[0] not after $after" if @pos && plain_int($after) && $pos[0] <= $after;
	return "more than max_count $max rows" if plain_int($max) && @$rows > $max;
	if ($meta && $meta->{types})
	{
		my %t = map { $_ => 1 } @{ $meta->{types} };
		for my $r (@$rows) { return "a row of type '$r->[3]'" unless $t{ $r->[3] } }
	}
	return undef;
}

sub check_category
{
	my ($p, $rows) = @_;
	my ($cat, $after, $max, $member, $size) = @$p;
	my $bad = check_feed([ $after, $max ], $rows);
	return $bad if $bad;
	for my $r (@$rows)
	{
		return "a row of stream '$r->[1]'" unless category_of($r->[1]) eq $cat;
		return "stream '$r->[1]' is not member $member of $size"
		  if plain_int($member) && plain_int($size) && fnv_member($r->[1], $size) != $member;
	}
	return undef;
}

my %uuids_seen;

# ---------------------------------------------------------------------------
# the inputs, per function
# ---------------------------------------------------------------------------
sub n_of { return int($_[0] * $scale + 0.5) }

my @successful_appends;    # [params, n] of JSON appends whose events all carry ids

sub fuzz_writer
{
	my ($fn, $h, $key, $params, $label, %opt) = @_;
	if (!$opt{no_tx} && !$h->{mdbh} && chance(0.125))
	{
		fuzz_in_tx($fn, $h, $key, $params, $label, %opt);
	}
	else
	{
		return fuzz_one($fn, $h, $key, $params, $label, writes => 1, %opt);
	}
	return;
}

sub gen_expected
{
	my $r = rand();
	return undef if $r < 0.4;
	return rint(6) if $r < 0.7;
	return pick(@int8_edges, @int_bad_text);
}

sub round_append_json
{
	my ($h, $n) = @_;
	for (1 .. $n)
	{
		if (@successful_appends && chance(0.03))
		{
			# replay: an idempotent retry, which stores nothing
			my $prev = pick(@successful_appends);
			fuzz_one('es_append(stream, expected_version, events)', $h, 'append_json',
				$prev->[0], 'replay of a successful append whose events all carry ids',
				writes => 1, stores_nothing => 1, check => check_append($prev->[1]));
			next;
		}
		my %meta;
		my $events = gen_events(\%meta);
		my @p = (gen_stream_name(), gen_expected(), $events);
		my ($ok) = fuzz_writer('es_append(stream, expected_version, events)', $h,
			'append_json', \@p, 'random', check => check_append($meta{n}));
		push @successful_appends, [ \@p, $meta{n} ]
		  if $ok && $meta{all_ids} && @successful_appends < 100;
	}
}

sub gen_jsonb_arg
{
	my $r = rand();
	return undef if $r < 0.08;
	return pick(@json_bad) if $r < 0.14;
	return gen_json(0);
}

sub gen_metadata_arg
{
	my $r = rand();
	return undef if $r < 0.4;
	return pick(@bad_metadata, '{"a":' . $deep_object . '}') if $r < 0.7;
	return pick(@json_bad) if $r < 0.75;
	return '{"user_id":' . jstr(random_unicode(5)) . '}';
}

sub gen_int4_arg
{
	my $r = rand();
	return undef if $r < 0.3;
	return '1' if $r < 0.6;
	return gen_int();
}

sub round_append_one
{
	my ($h, $n) = @_;
	my $fn = 'es_append(stream, expected_version, type, data, ...)';
	for (1 .. $n)
	{
		my $v = rint(10);
		if ($v < 7)
		{
			fuzz_writer($fn, $h, 'append_one7',
				[ gen_stream_name(), gen_expected(), gen_type_arg(), gen_jsonb_arg(),
				  gen_metadata_arg(), gen_uuid_arg(\@known_ids), gen_int4_arg() ],
				'random', check => check_append(1));
		}
		elsif ($v < 9)
		{
			fuzz_writer($fn, $h, 'append_one4',
				[ gen_stream_name(), gen_expected(), gen_type_arg(), gen_jsonb_arg() ],
				'random, 4 arguments', check => check_append(1));
		}
		else
		{
			fuzz_writer($fn, $h, 'append_named',
				[ gen_stream_name(), gen_expected(), gen_type_arg(), gen_jsonb_arg(), gen_int4_arg() ],
				'random, named arguments', check => check_append(1));
		}
	}
}

sub gen_type_arg { return chance(0.1) ? undef : gen_type() }

# positions a plain INSERT may give in the main database: never one that
# would exhaust its positions (that edge has a database of its own)
sub gen_position_arg
{
	my $r = rand();
	return undef if $r < 0.2;
	my $v = gen_int();
	return $v unless defined $v && plain_int($v);
	return '4611686018427387904' if $v > 1_000_000_000_000 && $v <= 4611686018427387903;
	return $v;
}

sub round_insert
{
	my ($h, $n) = @_;
	my $fn = 'INSERT INTO events';
	for (1 .. $n)
	{
		my $v = rint(20);
		my ($key, @p);
		if ($v < 5) { $key = 'ins_basic'; @p = (gen_stream_name(), gen_type_arg(), gen_jsonb_arg()) }
		elsif ($v < 9)
		{
			$key = 'ins_full';
			@p = (gen_stream_name(), gen_type_arg(), gen_jsonb_arg(), gen_metadata_arg(),
				chance(0.1) ? undef : gen_uuid_arg(\@known_ids) // random_uuid(),
				chance(0.1) ? undef : gen_int4_arg() // 1);
		}
		elsif ($v < 11) { $key = 'ins_version'; @p = (gen_stream_name(), gen_int(), gen_type_arg(), gen_jsonb_arg()) }
		elsif ($v < 13) { $key = 'ins_position'; @p = (gen_position_arg(), gen_stream_name(), gen_type_arg(), gen_jsonb_arg()) }
		elsif ($v < 15)
		{
			my $st = gen_stream_name();
			$key = 'ins_two';
			@p = ($st, gen_type_arg(), gen_jsonb_arg(), chance(0.5) ? $st : gen_stream_name(), gen_type_arg(), gen_jsonb_arg());
		}
		elsif ($v < 17)
		{
			$key = 'ins_series';
			@p = (gen_stream_name(), gen_type_arg(), gen_jsonb_arg(), pick(0, 1, 2, 3, 50, '-1', undef, '2147483648'));
		}
		elsif ($v < 19)
		{
			$key = 'ins_nothing';
			@p = (gen_stream_name(), gen_type_arg(), gen_jsonb_arg(),
				@known_ids && chance(0.6) ? pick(@known_ids) : gen_uuid_arg(\@known_ids));
		}
		else
		{
			copy_input($h, $fn);
			next;
		}
		fuzz_writer($fn, $h, $key, \@p, 'random');
	}
}

sub copy_esc
{
	my ($v) = @_;
	return '\N' unless defined $v;
	$v =~ s/\\/\\\\/g;
	$v =~ s/\t/\\t/g;
	$v =~ s/\n/\\n/g;
	$v =~ s/\r/\\r/g;
	return $v;
}

# COPY into events: the same triggers, rows from the same pools
sub copy_input
{
	my ($h, $fn) = @_;
	my $dbh = $h->{dbh};
	my @rows = map { [ gen_stream_name(), gen_type_arg(), gen_jsonb_arg(), gen_metadata_arg() ] } 1 .. 1 + rint(3);
	my $sql = 'COPY event_store.events (stream, type, data, metadata) FROM STDIN';
	my $s = $stats{$fn} //= { n => 0, ok => 0, err => 0, codes => {} };
	$s->{n}++;
	my $ok = $dbh->do($sql);
	if ($ok)
	{
		for my $r (@rows)
		{
			$dbh->pg_putcopydata(join("\t", map { copy_esc($_) } @$r) . "\n");
		}
		$ok = $dbh->pg_putcopyend();
	}
	my $params = [ map { @$_ } @rows ];
	my $lost = 0;
	if ($ok) { $s->{ok}++ }
	else { $lost = check_error($h, $fn, $sql, $params, 'COPY, rows of 4 columns', $dbh->state, $dbh->errstr) }
	return if $lost;
	my $after = measure($h);
	offend($fn, "a failing COPY changed the state: before $h->{state}, after $after", $sql, $params, 'COPY')
	  if !$ok && $after ne $h->{state};
	offend($fn, "invariant broken after COPY: $after", $sql, $params, 'COPY') unless invariants_ok($after);
	$h->{state} = $after;
}

sub round_changes
{
	my ($h, $n) = @_;
	my $fn = 'UPDATE/DELETE/TRUNCATE/MERGE/ON CONFLICT DO UPDATE';
	for (1 .. $n)
	{
		my $v = rint(12);
		my ($key, @p);
		if ($v == 0) { $key = 'ch_upd_data'; @p = (gen_jsonb_arg(), gen_int()) }
		elsif ($v == 1) { $key = 'ch_upd_stream'; @p = (gen_stream_name(), gen_stream_name()) }
		elsif ($v == 2) { $key = 'ch_upd_none'; @p = (gen_bool()) }
		elsif ($v == 3) { $key = 'ch_del_stream'; @p = (gen_stream_name()) }
		elsif ($v == 4) { $key = 'ch_del_after'; @p = (gen_int()) }
		elsif ($v == 5) { $key = 'ch_upd_streams'; @p = (gen_int(), gen_stream_name()) }
		elsif ($v == 6) { $key = 'ch_del_streams'; @p = (gen_stream_name()) }
		elsif ($v == 7)
		{
			$key = 'ch_upsert';
			@p = (gen_stream_name(), gen_type_arg(), gen_jsonb_arg(),
				@known_ids && chance(0.7) ? pick(@known_ids) : gen_uuid_arg(\@known_ids));
		}
		elsif ($v == 8) { $key = 'ch_merge'; @p = (gen_int(), gen_jsonb_arg()) }
		elsif ($v == 9) { $key = 'ch_merge_del'; @p = (gen_stream_name()) }
		elsif ($v == 10) { $key = pick('ch_truncate_events', 'ch_truncate_streams'); @p = () }
		else
		{
			# as a replication-role session (the triggers fire ALWAYS)
			my $dbh = $h->{dbh};
			my $s = $stats{$fn} //= { n => 0, ok => 0, err => 0, codes => {} };
			$s->{n}++;
			$dbh->begin_work;
			$dbh->do('SET LOCAL session_replication_role = replica');
			my $stmt = pick('DELETE FROM event_store.events', 'UPDATE event_store.events SET version = version + 1',
				'TRUNCATE event_store.events', 'DELETE FROM event_store.streams');
			my $ok = $dbh->do($stmt);
			if ($ok) { offend($fn, 'succeeded as session_replication_role = replica', $stmt, [], 'replica') }
			else { check_error($h, $fn, $stmt, [], 'replica', $dbh->state, $dbh->errstr) }
			$dbh->rollback if $dbh->ping;
			my $after = measure($h);
			offend($fn, "state changed: before $h->{state}, after $after", $stmt, [], 'replica')
			  if $after ne $h->{state};
			next;
		}
		fuzz_writer($fn, $h, $key, \@p, 'random', must_fail => 1);
	}
}

sub gen_max_count
{
	my $r = rand();
	return undef if $r < 0.15;
	return pick(1, 2, 10, 100, 1000, 9999, 10000, 10001) if $r < 0.5;
	return gen_int();
}

sub gen_from
{
	my $r = rand();
	return undef if $r < 0.3;
	return 1 + rint(30) if $r < 0.6;
	return gen_int();
}

my $read_count = 0;

sub read_measure { return ++$read_count % 100 == 0 ? (measure => 1) : () }

sub round_read_stream
{
	my ($h, $n) = @_;
	my $fn = 'es_read_stream';
	for (1 .. $n)
	{
		my $v = rint(10);
		my $stream = chance(0.5) && @known_streams ? pick(@known_streams) : gen_stream_name();
		if ($v < 6)
		{
			fuzz_one($fn, $h, 'read_stream4', [ $stream, gen_from(), gen_max_count(), gen_bool() ],
				'random', check => \&check_read_stream, read_measure());
		}
		elsif ($v < 7)
		{
			fuzz_one($fn, $h, 'read_stream_star', [ $stream, gen_from(), gen_max_count(), gen_bool() ],
				'random, every column', check => \&check_read_stream, read_measure());
		}
		elsif ($v < 9)
		{
			fuzz_one($fn, $h, 'read_stream1', [$stream], 'random, 1 argument',
				check => sub { check_read_stream([ $_[0][0], undef, undef, 'false' ], $_[1]) }, read_measure());
		}
		else
		{
			my $b = gen_bool();
			fuzz_one($fn, $h, 'read_stream_named', [ $stream, $b ], 'random, named arguments',
				check => sub { check_read_stream([ $_[0][0], undef, undef, $_[0][1] ], $_[1]) }, read_measure());
		}
	}
}

sub round_stream_version
{
	my ($h, $n) = @_;
	for (1 .. $n)
	{
		my $stream = chance(0.4) && @known_streams ? pick(@known_streams) : gen_stream_name();
		fuzz_one('es_stream_version', $h, 'stream_version', [$stream], 'random',
			check => sub { $_[1][0][0] >= 0 ? undef : "version $_[1][0][0]" }, read_measure());
	}
}

sub round_head
{
	my ($h, $n) = @_;
	my $fn = 'es_head_position';
	my $dbh = $h->{dbh};
	for my $i (1 .. $n)
	{
		my $ctx = $i % 6;
		if ($ctx == 0)
		{
			# autocommit, nobody appending: the head is the newest event
			my ($maxpos) = $h->{state} =~ /max_position=(\d+)/;
			fuzz_one($fn, $h, 'head', [], 'autocommit',
				check => sub { $_[1][0][0] == $maxpos ? undef : "head $_[1][0][0], newest event $maxpos" },
				measure => 1);
			next;
		}
		my $label = ('', 'READ ONLY transaction', 'REPEATABLE READ transaction',
			'after an append in the same transaction', 'after a failed append rolled back to a savepoint',
			'SERIALIZABLE READ ONLY DEFERRABLE transaction')[$ctx];
		$dbh->begin_work;
		my $own;
		$dbh->do('SET TRANSACTION READ ONLY') if $ctx == 1;
		$dbh->do('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ') if $ctx == 2;
		$dbh->do('SET TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE') if $ctx == 5;
		if ($ctx == 3)
		{
			my ($ok, $rows) = run_sql($h, 'append_one4', [ pick(@tx_streams), undef, 'T', '{}' ]);
			$own = $rows->[0][3] if $ok;
		}
		if ($ctx == 4)
		{
			$dbh->do('SAVEPOINT f');
			run_sql($h, 'append_json', [ pick(@tx_streams), undef, '[{"type":"T","data":{},"bad":1}]' ]);
			$dbh->do('ROLLBACK TO SAVEPOINT f');
		}
		fuzz_one($fn, $h, 'head', [], $label,
			check => sub {
				my $head = $_[1][0][0];
				return "head $head" unless $head >= 0;
				return "head $head not below the transaction's own position $own"
				  if defined $own && $head >= $own;
				return undef;
			});
		$dbh->rollback;
		my $after = measure($h);
		offend($fn, "state changed: before $h->{state}, after $after", 'head', [], $label)
		  if $after ne $h->{state};
	}
}

sub round_read_all
{
	my ($h, $n) = @_;
	my $fn = 'es_read_all';
	for (1 .. $n)
	{
		my %meta;
		my $after = chance(0.3) ? 0 : gen_int();
		my $v = rint(10);
		if ($v < 7)
		{
			fuzz_one($fn, $h, 'read_all3', [ $after, gen_max_count(), gen_types(\%meta) ], 'random',
				check => sub { check_feed(@_, \%meta) }, read_measure());
		}
		elsif ($v < 8)
		{
			fuzz_one($fn, $h, 'read_all_star', [ $after, gen_max_count(), gen_types(\%meta) ],
				'random, every column', check => sub { check_feed(@_, \%meta) }, read_measure());
		}
		else
		{
			fuzz_one($fn, $h, 'read_all1', [$after], 'random, 1 argument',
				check => sub { check_feed([ $_[0][0], 1000 ], $_[1]) }, read_measure());
		}
	}
}

sub gen_category
{
	my $r = rand();
	return pick('order', 'payment', 'fz', u8("\x{E9}"), 'cat0', 'fz', u8("\x{1F600}")) if $r < 0.4;
	return category_of(pick(@known_streams)) if $r < 0.55 && @known_streams;
	return gen_name(1000, []);
}

sub gen_member_size
{
	my $r = rand();
	return (rint(3), 3) if $r < 0.35;
	return (rint(1024), 1024) if $r < 0.45;
	return (0, 1) if $r < 0.55;
	return (gen_int(), gen_int());
}

sub round_read_category
{
	my ($h, $n) = @_;
	my $fn = 'es_read_category';
	for (1 .. $n)
	{
		my $v = rint(10);
		my $after = chance(0.3) ? 0 : gen_int();
		if ($v < 8)
		{
			fuzz_one($fn, $h, $v < 7 ? 'read_cat5' : 'read_cat_star',
				[ gen_category(), $after, gen_max_count(), gen_member_size() ], 'random',
				check => \&check_category, read_measure());
		}
		else
		{
			fuzz_one($fn, $h, 'read_cat1', [ gen_category() ], 'random, 1 argument',
				check => sub { check_category([ $_[0][0], 0, 1000, 0, 1 ], $_[1]) }, read_measure());
		}
	}
}

sub round_member
{
	my ($h, $n) = @_;
	for (1 .. $n)
	{
		my $stream = chance(0.3) && @known_streams ? pick(@known_streams) : gen_stream_name();
		my $size = chance(0.5) ? pick(1, 2, 3, 4, 7, 1023, 1024, 1025) : gen_int();
		fuzz_one('es_consumer_member', $h, 'member', [ $stream, $size ], 'random',
			check => sub {
				my $got = $_[1][0][0];
				return undef unless defined $got || defined $_[0][0] && defined $_[0][1];
				return "NULL for non-NULL arguments" unless defined $got;
				return undef unless plain_int($_[0][1]);
				my $want = fnv_member($_[0][0], $_[0][1]);
				return $got == $want ? undef : "member $got, FNV-1a says $want";
			});
	}
}

sub round_category
{
	my ($h, $n) = @_;
	for (1 .. $n)
	{
		my $stream = chance(0.3) && @known_streams ? pick(@known_streams) : gen_stream_name();
		fuzz_one('es_category', $h, 'category', [$stream], 'random',
			check => sub {
				my $got = $_[1][0][0];
				return defined $_[0][0] ? 'NULL for a name' : undef unless defined $got;
				my $want = category_of($_[0][0]);
				return $got eq $want ? undef : 'category ' . show_param($got) . ', expected ' . show_param($want);
			});
	}
}

sub round_uuid
{
	my ($h, $n) = @_;
	for (1 .. $n)
	{
		fuzz_one('es_uuid_v7', $h, 'uuid', [], 'no arguments',
			check => sub {
				my $u = $_[1][0][0];
				return "not a version 7 UUID: $u"
				  unless $u =~ /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
				return "duplicate UUID $u" if $uuids_seen{$u}++;
				return undef;
			});
	}
}

my @consumers = ('c-1', 'c-2', 'c-3', 'proj', u8("\x{E9}t\x{E9}"), 'x' x 200, u8("\x{1F600}" x 50));

sub gen_consumer { return gen_name(200, \@consumers) }

sub gen_cp_position
{
	my $r = rand();
	return rint(50) if $r < 0.5;
	return gen_int();
}

sub round_checkpoints
{
	my ($h, $n) = @_;
	for (1 .. $n)
	{
		my $v = rint(10);
		if ($v < 4)
		{
			my $exp = chance(0.5) ? undef : chance(0.5) ? rint(50) : gen_int();
			if (chance(0.8))
			{
				fuzz_writer('es_checkpoint_save', $h, 'cp_save3', [ gen_consumer(), gen_cp_position(), $exp ],
					'random', check => sub { !plain_int($_[0][1]) || $_[1][0][0] == $_[0][1] ? undef : "returned $_[1][0][0]" });
			}
			else
			{
				fuzz_writer('es_checkpoint_save', $h, 'cp_save2', [ gen_consumer(), gen_cp_position() ],
					'random, 2 arguments');
			}
		}
		elsif ($v < 6)
		{
			fuzz_one('es_checkpoint_get', $h, 'cp_get', [ gen_consumer() ], 'random',
				check => sub { $_[1][0][0] >= 0 ? undef : "checkpoint $_[1][0][0]" }, read_measure());
		}
		elsif ($v < 9)
		{
			if (chance(0.8))
			{
				fuzz_writer('es_checkpoint_reset', $h, 'cp_reset2', [ gen_consumer(), gen_cp_position() ], 'random');
			}
			else
			{
				fuzz_writer('es_checkpoint_reset', $h, 'cp_reset1', [ gen_consumer() ], 'random, 1 argument');
			}
		}
		else
		{
			if (chance(0.5))
			{
				fuzz_one('_es_check_consumer', $h, 'check_consumer', [ gen_consumer() ], 'random', measure => 1);
			}
			else
			{
				fuzz_one('_es_check_position', $h, 'check_position', [ gen_cp_position() ], 'random', measure => 1);
			}
		}
	}
}

sub round_internals
{
	my ($h) = @_;
	for my $key (qw(trig_before trig_after trig_refuse))
	{
		fuzz_one('trigger functions called directly', $h, $key, [], 'direct call', must_fail => 1, measure => 1);
	}
	# _es_install: the register forgets and reloads the highest position;
	# the next append continues above every stored one
	my ($maxpos) = $h->{state} =~ /max_position=(\d+)/;
	fuzz_one('_es_install', $h, 'install', [], 'between appends', measure => 1);
	my ($ok, $rows) = fuzz_one('es_append(stream, expected_version, type, data, ...)', $h,
		'append_one4', [ 'fz-after-install', undef, 'T', '{}' ], 'after _es_install', writes => 1,
		check => sub { $_[1][0][3] > $maxpos ? undef : "position $_[1][0][3] not above $maxpos after _es_install" });
}

# ---------------------------------------------------------------------------
# the sweep: every argument of every function, one at a time, gets each edge
# value of its type (NULL included) while the others stay valid
# ---------------------------------------------------------------------------
sub limit_set
{
	my ($limit) = @_;
	my ($e2, $e4) = (u8("\x{E9}"), u8("\x{1F600}"));
	return (
		[ "$limit bytes", 'x' x $limit ],
		[ ($limit + 1) . ' bytes', 'x' x ($limit + 1) ],
		[ "$limit bytes ending in a 4-byte character", ('x' x ($limit - 4)) . $e4 ],
		[ ($limit + 1) . ' bytes, a 4-byte character straddling the limit', ('x' x ($limit - 3)) . $e4 ],
		[ ($limit + 1) . ' bytes, a 2-byte character straddling the limit', ('x' x ($limit - 1)) . $e2 ],
		[ "$limit bytes of 2-byte characters", $e2 x ($limit / 2) ]);
}

my %sweep_values = (
	int8 => [
		[ 'NULL', undef ], [ '-2^63', '-9223372036854775808' ], [ '2^63-1', '9223372036854775807' ],
		[ '0', '0' ], [ '-1', '-1' ], [ '2^63 (out of range)', '9223372036854775808' ] ],
	int4 => [
		[ 'NULL', undef ], [ '-2^31', '-2147483648' ], [ '2^31-1', '2147483647' ], [ '0', '0' ],
		[ '-1', '-1' ], [ '1025', '1025' ], [ '2^31 (out of range)', '2147483648' ] ],
	jsonb => [
		[ 'NULL', undef ], [ 'null', 'null' ], [ '1e400', '1e400' ], [ '-0', '-0' ], [ '"NaN"', '"NaN"' ],
		[ '[]', '[]' ], [ '{}', '{}' ], [ '[[]]', '[[]]' ], [ '2^63', '9223372036854775808' ],
		[ 'nested 10,000 deep', $deep_array ], [ 'an array of 10,001 objects', '[' . join(',', ('{}') x 10_001) . ']' ] ],
	uuid => [ [ 'NULL', undef ], [ 'nil', '00000000-0000-0000-0000-000000000000' ], [ 'not a UUID', 'x' ] ],
	bool => [ [ 'NULL', undef ], [ 'true', 'true' ], [ 'not a boolean', 'maybe' ] ],
	types => [
		[ 'NULL', undef ], [ '{}', '{}' ], [ '{NULL}', '{NULL}' ], [ '{T,NULL}', '{T,NULL}' ],
		[ '100 elements', array_literal(('T') x 100) ], [ '101 elements', array_literal(('T') x 101) ],
		[ '2 dimensions', '{{T}}' ], [ 'an empty type', '{""}' ],
		[ 'a type of 501 bytes', array_literal('x' x 501) ], [ 'bounds [5:5]', '[5:5]={T}' ] ],
);
my @odd_text = (
	[ 'NULL', undef ], [ 'empty', '' ], [ 'a space', ' ' ], [ 'a tab and a newline', "\t\n" ],
	[ 'a leading -', '-x' ], [ '-', '-' ], [ 'an RTL mark', u8("\x{200F}") ],
	[ 'a combining mark alone', u8("\x{301}") ], [ 'a ZWJ emoji', u8("\x{1F468}\x{200D}\x{1F469}") ],
	[ 'a BOM', u8("\x{FEFF}") ], [ 'bytes that are not UTF-8', "\xff\xfe\x80" ]);
$sweep_values{$_->[0]} = [ @odd_text, limit_set($_->[1]) ]
  for ([ 'stream', 1000 ], [ 'type', 500 ], [ 'consumer', 200 ], [ 'category', 1000 ]);

# function, statement, valid arguments, their kinds, options
my @sweep = (
	[ 'es_append(stream, expected_version, events)', 'append_json',
		[ 'fz-sweep', undef, '[{"type":"T","data":{}}]' ], [qw(stream int8 jsonb)], 1 ],
	[ 'es_append(stream, expected_version, type, data, ...)', 'append_one7',
		[ 'fz-sweep', undef, 'T', '{}', '{}', undef, 1 ], [qw(stream int8 type jsonb jsonb uuid int4)], 1 ],
	[ 'INSERT INTO events', 'ins_full',
		[ 'fz-sweep', 'T', '{}', '{}', 'UUID', 1 ], [qw(stream type jsonb jsonb uuid int4)], 1 ],
	[ 'INSERT INTO events', 'ins_version', [ 'fz-sweep', 'NEXT', 'T', '{}' ], [qw(stream int8 type jsonb)], 1 ],
	[ 'INSERT INTO events', 'ins_position', [ undef, 'fz-sweep', 'T', '{}' ], [qw(int8 stream type jsonb)], 1 ],
	[ 'es_read_stream', 'read_stream4', [ 'order-1', 1, 10, 'false' ], [qw(stream int8 int8 bool)], 0 ],
	[ 'es_stream_version', 'stream_version', ['order-1'], [qw(stream)], 0 ],
	[ 'es_read_all', 'read_all3', [ 0, 10, '{T}' ], [qw(int8 int8 types)], 0 ],
	[ 'es_read_category', 'read_cat5', [ 'order', 0, 10, 0, 1 ], [qw(category int8 int8 int4 int4)], 0 ],
	[ 'es_consumer_member', 'member', [ 'order-1', 3 ], [qw(stream int4)], 0 ],
	[ 'es_category', 'category', ['order-1'], [qw(stream)], 0 ],
	[ 'es_checkpoint_save', 'cp_save3', [ 'sweep', 'NEXT', undef ], [qw(consumer int8 int8)], 1 ],
	[ 'es_checkpoint_get', 'cp_get', ['sweep'], [qw(consumer)], 0 ],
	[ 'es_checkpoint_reset', 'cp_reset2', [ 'sweep', 0 ], [qw(consumer int8)], 1 ],
	[ '_es_check_consumer', 'check_consumer', ['sweep'], [qw(consumer)], 0 ],
	[ '_es_check_position', 'check_position', [1], [qw(int8)], 0 ]);

my %sweep_checks = (
	read_stream4 => \&check_read_stream,
	read_all3 => \&check_feed,
	read_cat5 => \&check_category);

sub round_sweep
{
	my ($h) = @_;
	my $cp = 1000;
	for my $sw (@sweep)
	{
		my ($fn, $key, $valid, $kinds, $writes) = @$sw;
		for my $i (0 .. $#$kinds)
		{
			for my $v (@{ $sweep_values{ $kinds->[$i] } })
			{
				my @p = @$valid;
				$p[$i] = $v->[1];
				# fresh values where a valid call needs one
				for my $j (0 .. $#p)
				{
					next if $j == $i || !defined $p[$j];
					$p[$j] = random_uuid() if $p[$j] eq 'UUID';
					if ($p[$j] eq 'NEXT')
					{
						if ($key eq 'ins_version')
						{
							my ($ver) = mdbh($h)->selectrow_array(
								'SELECT event_store.es_stream_version($1)', undef, $p[0] // 'fz-sweep');
							$p[$j] = ($ver // 0) + 1;
						}
						else { $p[$j] = $cp++ }
					}
				}
				my $label = "sweep: argument " . ($i + 1) . " ($kinds->[$i]) = $v->[0]";
				if ($writes)
				{
					fuzz_one($fn, $h, $key, \@p, $label, writes => 1);
				}
				else
				{
					fuzz_one($fn, $h, $key, \@p, $label, measure => 1,
						$sweep_checks{$key} ? (check => $sweep_checks{$key}) : ());
				}
			}
		}
	}
}

# ---------------------------------------------------------------------------
# heavy inputs, built once and thrown once each (main database only)
# ---------------------------------------------------------------------------
sub events_of
{
	my ($n, $ev) = @_;
	return '[' . join(',', ($ev) x $n) . ']';
}

sub specials
{
	my ($h) = @_;
	my $fa = 'es_append(stream, expected_version, events)';
	my $fo = 'es_append(stream, expected_version, type, data, ...)';
	my $ev = '{"type":"T","data":{}}';
	my $id = random_uuid();
	my @list = (
		[ 'events: 10,001 events', events_of(10_001, $ev) ],
		[ 'events: 100,000 events', events_of(100_000, $ev) ],
		[ 'events: 10,000 events, the last with an unknown key',
			'[' . join(',', ($ev) x 9_999) . ',{"type":"T","data":{},"metdata":{}}]' ],
		[ 'events: 10,000 events, the last with the id of the first (after 9,999 rows are in)',
			'[{"type":"T","data":{},"id":"' . $id . '"},'
			  . join(',', ($ev) x 9_998) . ',{"type":"T","data":{},"id":"' . $id . '"}]' ],
		[ 'events: 9,999 small events and one of 2 MB',
			'[' . join(',', ($ev) x 9_999) . ',{"type":"T","data":"' . ('x' x 2_000_000) . '"}]' ],
		[ 'events: one event with data of 2,000,000 bytes', '[{"type":"T","data":"' . ('x' x 2_000_000) . '"}]' ],
		[ 'events: one event with data of 1,048,559 bytes (at max_event_size with type T)',
			'[{"type":"T","data":"' . ('x' x 1_048_559) . '"}]' ],
		[ 'events: one event with data of 1,048,560 bytes (one byte over)',
			'[{"type":"T","data":"' . ('x' x 1_048_560) . '"}]' ],
		[ 'events: data nested 10,000 deep (array)', qq{[{"type":"T","data":$deep_array}]} ],
		[ 'events: data nested 10,000 deep (object)', qq{[{"type":"T","data":$deep_object}]} ],
		[ 'events: metadata nested 10,000 deep', qq{[{"type":"T","data":{},"metadata":{"a":$deep_object}}]} ],
		[ 'events: nested 100,000 deep (over max_stack_depth)', '[' x 100_000 . ']' x 100_000 ],
		[ 'events: an array of 10,000 arrays', events_of(10_000, '[]') ],
		[ 'events: an array of 10,001 nulls', events_of(10_001, 'null') ],
		[ 'events: 1,000 unknown keys', '[{"type":"T","data":{},' . join(',', map {"\"k$_\":1"} 1 .. 1000) . '}]' ],
		[ 'events: data with 100,000 keys', '[{"type":"T","data":{' . join(',', map {"\"k$_\":$_"} 1 .. 100_000) . '}}]' ],
		[ 'events: type of 500 bytes ending in a 4-byte character',
			'[{"type":"' . ('x' x 496) . u8("\x{1F600}") . '","data":{}}]' ],
		[ 'events: type of 501 bytes, a 4-byte character straddling the limit',
			'[{"type":"' . ('x' x 497) . u8("\x{1F600}") . '","data":{}}]' ],
	);
	for my $s (@list)
	{
		fuzz_one($fa, $h, 'append_json', [ 'fz-special-' . rint(3), undef, $s->[1] ], $s->[0], writes => 1);
	}
	# valid appends of exactly 10,000 events, in transactions rolled back
	# (the table stays small, so that counting it after every call is cheap)
	fuzz_in_tx($fa, $h, 'append_json', [ 'fz-special-10k', undef, events_of(10_000, $ev) ],
		'events: 10,000 valid events in a transaction rolled back', force => 'rollback');
	fuzz_in_tx($fa, $h, 'append_json',
		[ 'fz-special-10k', undef, '[' . join(',', map {"{\"type\":\"T$_\",\"data\":$_}"} 1 .. 10_000) . ']' ],
		'events: 10,000 valid events of distinct types in a transaction rolled back', force => 'rollback');
	fuzz_one($fa, $h, 'append_json', [ 'big-1', undef, events_of(2_000, '{"type":"Big","data":{"n":1}}') ],
		'events: 2,000 valid events', writes => 1, check => check_append(2_000));
	# the single-event form
	for my $s (
		[ 'data of 2,000,000 bytes', [ 'fz-special-1', undef, 'T', '"' . ('x' x 2_000_000) . '"', undef, undef, 1 ] ],
		[ 'type of 500 bytes (emoji)', [ 'fz-special-1', undef, u8("\x{1F600}" x 125), '{}', undef, undef, 1 ] ],
		[ 'type of 501 bytes', [ 'fz-special-1', undef, 'y' . u8("\x{1F600}" x 125), '{}', undef, undef, 1 ] ],
		[ 'metadata nested 10,000 deep (array)', [ 'fz-special-1', undef, 'T', '{}', $deep_array, undef, 1 ] ],
		[ 'data nested 10,000 deep', [ 'fz-special-1', undef, 'T', $deep_object, undef, undef, 1 ] ],
		[ 'metadata of 2,000,000 bytes', [ 'fz-special-1', undef, 'T', '{}', '{"a":"' . ('x' x 2_000_000) . '"}', undef, 1 ] ],
		[ 'stream of 1,000 bytes (emoji)', [ u8("\x{1F600}" x 250), undef, 'T', '{}', undef, undef, 1 ] ],
		[ 'stream of 1,001 bytes', [ 'z' . u8("\x{1F600}" x 250), undef, 'T', '{}', undef, undef, 1 ] ],
		[ 'schema_version 2^31-1', [ 'fz-special-1', undef, 'T', '{}', undef, undef, '2147483647' ] ],
		[ 'schema_version -2^31', [ 'fz-special-1', undef, 'T', '{}', undef, undef, '-2147483648' ] ])
	{
		fuzz_one($fo, $h, 'append_one7', $s->[1], $s->[0], writes => 1);
	}
	# plain INSERT: 2,000 rows of one statement, rolled back; a 2 MB row
	fuzz_in_tx('INSERT INTO events', $h, 'ins_series', [ 'fz-special-ins', 'T', '{}', 2000 ],
		'INSERT ... SELECT of 2,000 rows in a transaction rolled back', force => 'rollback');
	fuzz_one('INSERT INTO events', $h, 'ins_basic', [ 'fz-special-ins', 'T', '"' . ('x' x 2_000_000) . '"' ],
		'INSERT of data of 2,000,000 bytes', writes => 1);
	fuzz_one('INSERT INTO events', $h, 'ins_basic', [ 'fz-special-ins', 'T', $deep_array ],
		'INSERT of data nested 10,000 deep', writes => 1);
	# reads: pages of 10,000; 10,000 types
	my $types10k = array_literal(map {"T$_"} 1 .. 10_000);
	fuzz_one('es_read_all', $h, 'read_all3', [ 0, 10_000, undef ], 'a page of 10,000', check => \&check_feed, measure => 1);
	fuzz_one('es_read_all', $h, 'read_all_star', [ 0, 10_000, undef ], 'a page of 10,000, every column', check => \&check_feed);
	fuzz_one('es_read_all', $h, 'read_all3', [ 0, 10, $types10k ], '10,000 types', measure => 1);
	fuzz_one('es_read_all', $h, 'read_all3', [ 0, 10, array_literal(map {"T$_"} 1 .. 100) ], '100 types',
		check => sub { check_feed(@_, { types => [ map {"T$_"} 1 .. 100 ] }) });
	fuzz_one('es_read_stream', $h, 'read_stream_star', [ 'big-1', undef, undef, 'true' ], 'the whole of a 2,000-event stream, backwards',
		check => \&check_read_stream);
	fuzz_one('es_read_category', $h, 'read_cat_star', [ 'big', 0, 10_000, 0, 1 ], 'a page of 10,000 of one category',
		check => \&check_category);
}

# ---------------------------------------------------------------------------
# a phase: every function, in one database
# ---------------------------------------------------------------------------
sub seed_database
{
	my ($h) = @_;
	my @s;
	for my $c ('order', 'payment', u8("\x{E9}"), 'fz', u8("\x{1F600}"))
	{
		push @s, map { "$c-$_" } 0 .. 5;
	}
	push @s, 'cat0', 'cat1';
	for my $st (@s)
	{
		my ($ok, @r) = run_sql($h, 'append_json',
			[ $st, undef, '[{"type":"OrderPlaced","data":{"n":1}},{"type":"ItemAdded","data":[1,2]},{"type":"T","data":null,"metadata":{"a":1}}]' ]);
		die "seed append failed: @r" unless $ok;
	}
	$h->{state} = measure($h);
	refresh_known($h);
}

sub phase
{
	my ($h, $f) = @_;
	seed_database($h);
	round_sweep($h);
	specials($h) if $f >= 1;
	my @rounds = (
		[ \&round_append_json, 3000 ],
		[ \&round_append_one, 2200 ],
		[ \&round_insert, 1800 ],
		[ \&round_changes, 500 ],
		[ \&round_read_stream, 1400 ],
		[ \&round_stream_version, 500 ],
		[ \&round_head, 240 ],
		[ \&round_read_all, 1300 ],
		[ \&round_read_category, 1300 ],
		[ \&round_member, 800 ],
		[ \&round_category, 700 ],
		[ \&round_uuid, 200 ],
		[ \&round_checkpoints, 2600 ]);
	# interleaved in slices, so that reads see what writes made
	for my $slice (1 .. 10)
	{
		for my $r (@rounds)
		{
			$r->[0]->($h, n_of($r->[1] * $f / 10));
		}
		round_internals($h) if $slice == 5;
	}
	deep_check($h, "end of phase $db_label");
}

my %inputs_by_db;
my %replays_of;    # database => the appends that may be replayed there

sub run_phase
{
	my ($db, $f) = @_;
	$db_label = $db;
	@known_ids = ();
	@known_streams = ();
	@successful_appends = ();
	my $before = 0;
	$before += $_->{n} for values %stats;
	my $h = new_handle($db);
	phase($h, $f);
	my $after = 0;
	$after += $_->{n} for values %stats;
	$inputs_by_db{$db} = $after - $before;
	$replays_of{$db} = [@successful_appends];
	return $h;
}

my %listeners = map { $_ => connect_db($_) } ('fuzz', 'fuzz_ascii');
$_->do('LISTEN es_events') for values %listeners;

my $t0 = time;
my $main = run_phase('fuzz', 1);
my $t_main = time - $t0;
$t0 = time;
my $ascii = run_phase('fuzz_ascii', 0.15);
my $t_ascii = time - $t0;

# the main database again, as roles with fewer privileges: one with none,
# one that may INSERT events but not read them, an application role
$node->safe_psql('fuzz', q{
CREATE ROLE fuzz_nobody LOGIN;
CREATE ROLE fuzz_blind LOGIN;
GRANT INSERT ON event_store.events TO fuzz_blind;
GRANT SELECT, INSERT, UPDATE ON event_store.checkpoints TO fuzz_blind;
CREATE ROLE fuzz_app LOGIN;
GRANT SELECT, INSERT ON event_store.events TO fuzz_app;
GRANT SELECT ON event_store.streams TO fuzz_app;
GRANT SELECT, INSERT, UPDATE ON event_store.checkpoints TO fuzz_app;});
$t0 = time;
@successful_appends = @{ $replays_of{fuzz} };
refresh_known($main);
for my $role ('fuzz_nobody', 'fuzz_blind', 'fuzz_app')
{
	$db_label = "fuzz as $role";
	my $before = 0;
	$before += $_->{n} for values %stats;
	my $h = { db => 'fuzz', user => $role, dbh => connect_db('fuzz', $role), sth => {}, mdbh => $main->{dbh} };
	$h->{state} = measure($h);
	for my $slice (1 .. 2)
	{
		round_append_json($h, n_of(60));
		round_append_one($h, n_of(45));
		round_insert($h, n_of(40));
		round_changes($h, n_of(10));
		round_read_stream($h, n_of(25));
		round_stream_version($h, n_of(10));
		round_head($h, n_of(6));
		round_read_all($h, n_of(25));
		round_read_category($h, n_of(25));
		round_checkpoints($h, n_of(50));
	}
	my $after = 0;
	$after += $_->{n} for values %stats;
	$inputs_by_db{"fuzz as $role"} = $after - $before;
	$h->{dbh}->disconnect;
}
my $t_roles = time - $t0;
$main->{state} = measure($main);
deep_check($main, 'after the role phases');

# ---------------------------------------------------------------------------
# the edges, in a database of their own
# ---------------------------------------------------------------------------
my @edge_results;
my $observation = '';
{
	$db_label = 'fuzz_edge';
	my $h = new_handle('fuzz_edge');
	my $dbh = $h->{dbh};
	my $fn = 'edges (fuzz_edge database)';
	my $one = sub {
		my ($key, $params, $label) = @_;
		my $s = $stats{$fn} //= { n => 0, ok => 0, err => 0, codes => {} };
		$s->{n}++;
		my ($ok, @r) = run_sql($h, $key, $params);
		if ($ok) { $s->{ok}++ }
		else { check_error($h, $fn, $key, $params, $label, @r) }
		push @edge_results, [ $label, $ok ? 'ok' : $r[0], $ok ? $r[0] : $r[1] ];
		return ($ok, @r);
	};

	# (1) a streams row written directly (as a restore does) that claims
	#     version 2^63-1: the next append must not store a version below 1
	$dbh->do(q{INSERT INTO event_store.streams (name, category, version) VALUES
		('huge-1', 'huge', 9223372036854775807), ('huge-2', 'huge', 9223372036854775806),
		('huge-3', 'huge', 9223372036854775807), ('huge-4', 'huge', 9223372036854775807)})
	  or die 'INSERT INTO streams: ' . $dbh->errstr;
	$one->('append_one4', [ 'huge-1', undef, 'T', '{}' ], 'es_append to a stream whose row claims version 2^63-1');
	$one->('append_json', [ 'huge-2', undef, '[{"type":"T","data":{}},{"type":"T","data":{}}]' ],
		'es_append of 2 events to a stream whose row claims version 2^63-2');
	$one->('append_one4', [ 'huge-3', '9223372036854775807', 'T', '{}' ],
		'es_append at expected version 2^63-1 to a stream whose row claims it');
	$one->('ins_basic', [ 'huge-4', 'T', '{}' ], 'plain INSERT into a stream whose row claims version 2^63-1');
	$one->('read_stream4', [ 'huge-1', '9223372036854775807', '9223372036854775807', 'true' ],
		'es_read_stream of it from version 2^63-1, backwards');
	$one->('stream_version', ['huge-1'], 'es_stream_version of it');
	my ($low) = $dbh->selectrow_array(
		q{SELECT count(*) FROM event_store.events WHERE version < 1});
	my ($low_streams) = $dbh->selectrow_array(
		q{SELECT count(*) FROM event_store.streams WHERE version < 0});
	is("$low $low_streams", '0 0',
		'edge: appends to a stream whose row claims version 2^63-1 (written directly, as a restore does) store no version below 1 and no negative stream version')
	  or diag(
		"stored:\n",
		join("\n", map { join(' | ', map { $_ // 'NULL' } @$_) } @{ $dbh->selectall_arrayref(
			q{SELECT 'event', position, stream, version FROM event_store.events WHERE version < 1
			  UNION ALL SELECT 'stream', id, name, version FROM event_store.streams WHERE version < 0}) }),
		"\nrepro: INSERT INTO event_store.streams (name, category, version) VALUES ('huge-1', 'huge', 9223372036854775807);\n",
		"       SELECT * FROM event_store.es_append('huge-1', NULL, 'T', '{}');");

	# (2) exactly 2^62 stored, as a restore may: the positions end there
	$one->('append_one4', [ 'edge-1', undef, 'T', '{}' ], 'a first append');
	$one->('ins_position', [ '4611686018427387903', 'edge-4', 'T', '{}' ], 'plain INSERT at position 2^62');
	my ($top) = $dbh->selectrow_array('SELECT max(position) FROM event_store.events');
	my @after;
	for my $c (
		[ 'append_one4', [ 'edge-5', undef, 'T', '{}' ], 'es_append after the positions are exhausted' ],
		[ 'append_json', [ 'edge-5', undef, '[{"type":"T","data":{}}]' ], 'es_append (events) after the positions are exhausted' ],
		[ 'ins_basic', [ 'edge-5', 'T', '{}' ], 'plain INSERT after the positions are exhausted' ],
		[ 'ins_position', [ '4611686018427387904', 'edge-5', 'T', '{}' ], 'plain INSERT at position 2^62+1' ])
	{
		my ($ok, @r) = $one->(@$c);
		push @after, $ok ? 'ok' : $r[0];
	}
	is("$top: " . join(' ', @after), '4611686018427387903: 2200H 2200H 2200H 22003',
		'edge: position 2^62 is stored; then appends and INSERTs are refused with 2200H, a position above 2^62 with 22003');
	my ($ok3, @r3) = $one->('head', [], 'es_head_position at the end of the positions');
	$one->('read_all3', [ '4611686018427387902', 10, undef ], 'es_read_all just below 2^62');
	$one->('read_all3', [ '9223372036854775807', 10000, undef ], 'es_read_all after 2^63-1');
	$one->('read_cat5', [ 'edge', '4611686018427387902', 10000, 0, 1 ], 'es_read_category just below 2^62');
	$one->('read_stream4', [ 'edge-4', '9223372036854775807', '9223372036854775807', 'true' ], 'es_read_stream from 2^63-1 backwards');
	is($ok3 ? $r3[0][0][0] : "error $r3[0]", $top, 'edge: es_head_position is the highest stored position, 2^62');
	$h->{dbh}->disconnect;

	# (3) a plain INSERT that gives a position ahead, then fails (duplicate
	#     event id, checked after the trigger claimed the position): the
	#     register has moved anyway.  Observed and reported, not asserted:
	#     the README documents gaps left by rolled-back appends.
	$h = new_handle('fuzz_edge2');
	$dbh = $h->{dbh};
	$one->('append_one4', [ 'edge-1', undef, 'T', '{}' ], 'a first append');
	my ($eid) = $dbh->selectrow_array('SELECT event_id::text FROM event_store.events WHERE stream = $1', undef, 'edge-1');
	$SQL{ins_pos_id} = 'INSERT INTO event_store.events (position, stream, type, data, event_id) VALUES ($1::bigint, $2::text, $3::text, $4::jsonb, $5::uuid)';
	$one->('ins_pos_id', [ '1000000', 'edge-2', 'T', '{}', $eid ],
		'plain INSERT at position 1,000,000 with a duplicate event id');
	my ($ok1, @r1) = $one->('append_one4', [ 'edge-3', undef, 'T', '{}' ], 'the next append');
	$one->('ins_pos_id', [ '4611686018427387903', 'edge-2', 'T', '{}', $eid ],
		'plain INSERT at position 2^62 with a duplicate event id');
	my ($ok2, @r2) = $one->('append_one4', [ 'edge-3', undef, 'T', '{}' ], 'the next append, after the failed claim of 2^62');
	my ($stored_max, $stored_n) = $dbh->selectrow_array('SELECT max(position), count(*) FROM event_store.events');
	$observation = sprintf('a plain INSERT that gives position 1,000,000 and fails (duplicate event_id) leaves the next append at position %s; '
		  . 'one that gives 2^62 and fails leaves the next append %s, with %d events stored, the highest at position %s',
		$ok1 ? $r1[0][0][3] : "refused ($r1[0])",
		$ok2 ? "at position $r2[0][0][3]" : "refused ($r2[0]: $r2[1])", $stored_n, $stored_max);
	$observation =~ s/\s+/ /g;
	note("observation: $observation");
	$h->{dbh}->disconnect;
}

# ---------------------------------------------------------------------------
# end checks
# ---------------------------------------------------------------------------
# the feed, page by page, is exactly the table; the indexes are sound
{
	my $dbh = $main->{dbh};
	my ($count, $sum) = $dbh->selectrow_array(
		'SELECT count(*), coalesce(sum(position), 0) FROM event_store.events');
	my ($after, $n, $s, $pages) = (0, 0, 0, 0);
	while (1)
	{
		my $rows = $dbh->selectall_arrayref(
			'SELECT position FROM event_store.es_read_all($1, 1000)', undef, $after);
		last unless $rows && @$rows;
		$pages++;
		$n += @$rows;
		$s += $_->[0] for @$rows;
		$after = $rows->[-1][0];
	}
	is("$n $s", "$count $sum", "main database: the feed read in $pages pages is exactly the table ($count events)");
	deep_check($main, 'end');
	# (the BRIN index on created_at is not amcheck's: it only summarizes)
	my $idx = q{SELECT i.indexrelid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_am a ON a.oid = c.relam
		WHERE a.amname = 'btree' AND i.indrelid IN ('event_store.events'::regclass,
		'event_store.streams'::regclass, 'event_store.checkpoints'::regclass)};
	my ($nidx) = $dbh->selectrow_array("SELECT count(*) FROM ($idx) i");
	my ($checked) = $dbh->selectrow_array("SELECT count(*) FROM (SELECT bt_index_check(indexrelid, true) FROM ($idx) i) c");
	ok(defined $checked && $checked == $nidx && $nidx >= 6,
		"amcheck: the $nidx B-tree indexes of events, streams and checkpoints are sound, every row indexed")
	  or diag('amcheck: ' . $dbh->errstr);
}

# the notifier's payloads: JSON, a head no higher than the newest event, and
# categories that are, byte for byte, categories of stored streams (odd
# names must be escaped right)
for my $db (sort keys %listeners)
{
	my $l = $listeners{$db};
	$l->do('SELECT 1');
	my $js = $db eq 'fuzz' ? JSON::PP->new->utf8 : JSON::PP->new->latin1;
	my %stored = map { $_ => 1 } @{ $l->selectcol_arrayref('SELECT DISTINCT category FROM event_store.streams') };
	my ($maxpos) = $l->selectrow_array('SELECT coalesce(max(position), 0) FROM event_store.events');
	my ($n, $ncat, @bad) = (0, 0);
	while (my $nt = $l->pg_notifies)
	{
		$n++;
		my $p = eval { $js->decode($nt->[2]) };
		if (!$p || ref $p ne 'HASH' || !defined $p->{head} || $p->{head} !~ /^\d+$/ || $p->{head} > $maxpos
			|| (defined $p->{categories} && ref $p->{categories} ne 'ARRAY'))
		{
			push @bad, 'payload ' . show_param($nt->[2]);
			next;
		}
		for my $c (@{ $p->{categories} // [] })
		{
			my $bytes = $db eq 'fuzz' ? encode_utf8($c) : Encode::encode('latin1', $c);
			$ncat++;
			push @bad, 'category ' . show_param($bytes) . ' is not the category of a stored stream'
			  unless $stored{$bytes};
		}
	}
	ok($n > 0 && !@bad,
		"$db: the $n notifications received carry JSON with a head no higher than the newest event and $ncat categories, each stored")
	  or diag(join("\n", @bad[ 0 .. ($#bad < 20 ? $#bad : 20) ]));
	$l->disconnect;
}
$main->{dbh}->disconnect;
$ascii->{dbh}->disconnect;

# one ok per function
my $total = 0;
$total += $_->{n} for values %stats;
for my $fn (sort keys %stats)
{
	my $s = $stats{$fn};
	my $codes = join(', ', map { "$_ x$s->{codes}{$_}" } sort keys %{ $s->{codes} });
	ok(!$fn_offended{$fn},
		"$fn: $s->{n} inputs ($s->{ok} succeeded, $s->{err} refused): no crash, no XX/58 SQLSTATE, nothing stored by a failing call, results well formed");
	note(sprintf('  %s: %.1f s; SQLSTATEs: %s', $fn, $s->{t} // 0, $codes || 'none'));
}
ok(!$fn_offended{consistency}, 'streams stay numbered 1..N with their rows at N (checked every 1,000 writes)');
ok($tx_stats{rounds} > 0 && !grep({ $_->{why} =~ /savepoint|transaction/ } @offenders),
	"$tx_stats{rounds} inputs ran inside a transaction after an append ($tx_stats{failed_inside} failed under a savepoint; $tx_stats{committed} committed, $tx_stats{rolled_back} rolled back): nothing left by a failure");
cmp_ok($total, '>=', 10_000 * ($scale < 1 ? $scale : 1), "at least 10,000 inputs ($total)");

# the server is alive, a fresh connection works, the log is clean
{
	my $pid = $node->{_pid};
	ok(defined $pid && kill(0, $pid), 'the postmaster is alive');
	my $fresh = connect_db('fuzz');
	my ($one) = $fresh->selectrow_array('SELECT count(*) FROM event_store.es_read_all(0, 1)');
	ok(defined $one, 'a fresh connection works and reads the feed');
	my ($notifier) = $fresh->selectrow_array(
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'event_store notifier'});
	note("notifiers running: $notifier");
	$fresh->disconnect;
	my $log = slurp_file($node->logfile);
	my @crash = grep { /terminated by signal|server process .* exited|was terminated|PANIC|TRAP:|terminating any other active server processes|all server processes terminated/ }
	  split /\n/, $log;
	is(scalar(@crash), 0, 'the server log has no crash line') or diag(join("\n", @crash));
	my @bad = grep { / (XX|58)[0-9A-Z]{3} |leak|WARNING:  .*(reference|snapshot|still pinned)/ } split /\n/, $log;
	is(scalar(@bad), 0, 'the server log has no XX/58 error and no leak warning') or diag(join("\n", @bad));
	my @notifier_errors = grep { /event_store notifier \S+ (ERROR|FATAL)/ } split /\n/, $log;
	is(scalar(@notifier_errors), 0, 'the notifier logged no error') or diag(join("\n", @notifier_errors));
	my @w = grep { /leak|WARNING/ } @client_warnings;
	is(scalar(@w), 0, 'no warning reached the clients') or diag(join('', @w[ 0 .. ($#w < 20 ? $#w : 20) ]));
}

# offending inputs, in full
if (@offenders)
{
	my $shown = 0;
	for my $o (@offenders)
	{
		last if ++$shown > 60;
		diag("OFFENDING INPUT [$o->{db}] $o->{fn}: $o->{why}\n  statement: $o->{sql}\n  built as: $o->{label}\n  parameters: "
			  . join(', ', map { show_param($_) } @{ $o->{params} }));
	}
	diag(scalar(@offenders) - 60 . ' more offending inputs not shown') if @offenders > 60;
}
for my $e (@edge_results)
{
	note('edge: ' . join(' | ', map { $_ // '' } @$e));
}

$node->stop;
my $elapsed = time - $started;
diag(sprintf('summary: %d inputs (%s); per function: %s; %d offending; seed %d; %.1f s (fuzz %.1f s, fuzz_ascii %.1f s, roles %.1f s)',
	$total, join(', ', map { "$_ $inputs_by_db{$_}" } sort keys %inputs_by_db),
	join(', ', map { "$_ $stats{$_}{n}" } sort keys %stats),
	scalar(@offenders), $seed, $elapsed, $t_main, $t_ascii, $t_roles));
done_testing();
