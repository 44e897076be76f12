# Logical replication of the event log, and logical decoding of it for other
# systems (Debezium, Kafka connectors: a pgoutput publication).
#
# The primary publishes
#   es_log     = event_store.events + event_store.streams  (for a subscriber
#                with the extension: it needs both tables)
#   es_events  = event_store.events, inserts only          (for anything else)
# and feeds one subscriber cluster:
#   database "postgres":  the extension installed, subscribed to es_log, its
#                         triggers as CREATE EXTENSION made them;
#   database "plain":     no extension, a plain table event_store.events of
#                         the same shape (plus a local arrival counter),
#                         subscribed to es_events;
#   database "triggered": the extension, with its numbering triggers made
#                         ENABLE ALWAYS so that they fire in the apply worker,
#                         subscribed to es_events: the setup NOT to use;
#                         its initial copy is refused (55000).
#
# (1) The initial copy, then a deterministic interleaving on the primary:
#     A appends (position pA) and stays open, B appends (pB > pA) and
#     commits, C appends and rolls back, A commits.  The change stream is in
#     commit order: pB arrives before pA; C never arrives.  The primary's
#     gap-safe feed holds pB back while A is open; the subscriber refuses
#     its feed and local appends (55000), as a standby does.
# (2) Four forked writers append concurrently (three forms, one or two
#     streams per transaction, savepoints rolled back, about 20% of the
#     transactions rolled back).  After catch-up both subscribers hold
#     exactly the primary's committed events, columns identical to the text,
#     no rolled-back one; "postgres" also has identical streams rows and
#     serves es_read_stream / es_stream_version like the primary.  Arrival
#     order on the plain subscriber is commit order: versions ascend within
#     each stream, positions need not ascend across streams.
# (3) Logical decoding on the primary: a pgoutput slot (what Debezium reads)
#     and a test_decoding slot return every committed event once, in commit
#     order, with the same column text as the table, and nothing rolled back.
# (4) Cutover: after DROP SUBSCRIPTION, the subscriber with the extension
#     becomes writable once the streams id sequence is set (sequences are
#     not replicated): appends continue above every replicated position,
#     without a restart.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DBI;
use DBD::Pg;
use IO::Handle;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time usleep);

my $started = time;
my $json = JSON::PP->new->canonical;
my $nwriters = 4;
my $xacts_per_writer = 100;
my @pool = map { ("order-$_", "pay-$_") } 1 .. 4;

# ---------------------------------------------------------------------------
# clusters
# ---------------------------------------------------------------------------
my $primary = PostgreSQL::Test::Cluster->new('publisher');
$primary->init(allows_streaming => 'logical');
$primary->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'event_store'
max_connections = 40
max_wal_senders = 16
max_replication_slots = 16
log_min_messages = warning
});
$primary->start;

my $subscriber = PostgreSQL::Test::Cluster->new('subscriber');
$subscriber->init;
$subscriber->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'event_store'
max_worker_processes = 16
max_logical_replication_workers = 8
wal_retrieve_retry_interval = 200ms
log_min_messages = warning
});
$subscriber->start;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $publisher_conn = 'host=' . $primary->host . ' port=' . $primary->port . ' dbname=postgres';

sub connect_primary
{
	return DBI->connect(
		'dbi:Pg:dbname=postgres;host=' . $primary->host . ';port=' . $primary->port,
		'', '',
		{ AutoCommit => 1, RaiseError => 1, PrintError => 0, AutoInactiveDestroy => 1 });
}

sub uuid_of
{
	my ($a, $b) = @_;
	return sprintf('%08x-0000-4000-8000-%012x', $a, $b);
}

# The nine columns as text, in position order, time zone fixed: the same
# text for the tables on both clusters and for the decoded tuples.
my $columns = 'position, stream, version, type, data, metadata, event_id, schema_version, created_at';
sub dump_events
{
	my ($node, $db, $where) = @_;
	$where //= 'true';
	return $node->safe_psql($db,
		"SET TimeZone = 'UTC'; SELECT $columns FROM event_store.events WHERE $where ORDER BY position");
}
my $streams_sql = q{SET TimeZone = 'UTC';
  SELECT id, name, category, version, created_at, updated_at, metadata
    FROM event_store.streams ORDER BY id};

# ---------------------------------------------------------------------------
# history before the subscriptions: copied by the initial table sync
# ---------------------------------------------------------------------------
$primary->safe_psql('postgres', q{
  CREATE EXTENSION event_store;
  SELECT event_store.es_append('order-1', 0, '[
    {"type": "Placed", "data": {"total": 99.98}, "metadata": {"correlation_id": "req-1"}},
    {"type": "ItemAdded", "data": {"sku": "A-1", "qty": 2}, "schema_version": 2}]');
  INSERT INTO event_store.events (stream, type, data, event_id)
  VALUES ('pay-1', 'Authorised', '"text, | and \\\\ too"', '00000000-0000-4000-8000-000000000001');
  BEGIN;
  SELECT event_store.es_append('gone-1', 0, 'Gone', '{}', NULL, '00000000-0000-4000-8000-0000000000ff');
  ROLLBACK;
  SELECT event_store.es_append('order-1', 2, 'Paid', '[1, 2, {"a": null}]');

  CREATE PUBLICATION es_log FOR TABLE event_store.events, event_store.streams;
  CREATE PUBLICATION es_events FOR TABLE event_store.events WITH (publish = 'insert');
});

# (a) the extension on the subscriber, triggers as installed
$subscriber->safe_psql('postgres', qq{
  CREATE EXTENSION event_store;
  CREATE SUBSCRIPTION es_replica CONNECTION '$publisher_conn' PUBLICATION es_log;
});
# (b) a plain table of the same shape; "received" counts arrivals
$subscriber->safe_psql('postgres', 'CREATE DATABASE plain');
$subscriber->safe_psql('plain', qq{
  CREATE SCHEMA event_store;
  CREATE TABLE event_store.events (
    position        bigint PRIMARY KEY,
    stream          text COLLATE "C" NOT NULL,
    version         bigint NOT NULL,
    type            text COLLATE "C" NOT NULL,
    data            jsonb NOT NULL,
    metadata        jsonb,
    event_id        uuid NOT NULL UNIQUE,
    schema_version  integer NOT NULL,
    created_at      timestamptz NOT NULL,
    received        bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    UNIQUE (stream, version));
  CREATE SUBSCRIPTION es_plain CONNECTION '$publisher_conn' PUBLICATION es_events;
});
# (a') the extension with its numbering triggers firing in the apply worker
$subscriber->safe_psql('postgres', 'CREATE DATABASE triggered');
$subscriber->safe_psql('triggered', qq{
  CREATE EXTENSION event_store;
  ALTER TABLE event_store.events ENABLE ALWAYS TRIGGER events_number;
  ALTER TABLE event_store.events ENABLE ALWAYS TRIGGER events_count;
  CREATE SUBSCRIPTION es_triggered CONNECTION '$publisher_conn' PUBLICATION es_events;
});
$subscriber->wait_for_subscription_sync($primary, 'es_replica', 'postgres');
$subscriber->wait_for_subscription_sync($primary, 'es_plain', 'plain');
# there the trigger refuses the initial copy: the apply worker's COPY
# reaches the position register of a subscriber
$subscriber->wait_for_log(qr/ERROR:  table "event_store\.events" is the target of a logical replication subscription/)
  or die 'no refusal in "triggered"';
pass('with the numbering triggers firing in the apply worker, the copy is refused clearly (55000)');
is($subscriber->safe_psql('triggered', 'SELECT count(*) FROM event_store.events'), '0',
	'and nothing is applied there');
$subscriber->safe_psql('triggered', 'ALTER SUBSCRIPTION es_triggered DISABLE');
$subscriber->safe_psql('triggered', 'DROP SUBSCRIPTION es_triggered');

# ---------------------------------------------------------------------------
# (0) what fires in the apply worker
# ---------------------------------------------------------------------------
is( $subscriber->safe_psql('postgres', q{
      SELECT string_agg(tgname || '=' || tgenabled::text, ' ' ORDER BY tgname) FROM pg_trigger
       WHERE tgrelid = 'event_store.events'::regclass AND NOT tgisinternal}),
	'events_count=O events_immutable=A events_number=O',
	'the numbering triggers fire only in origin sessions: the apply worker (session_replication_role = replica) bypasses them');
is($subscriber->safe_psql('postgres', q{
      SELECT rolsuper FROM pg_subscription s JOIN pg_roles r ON r.oid = s.subowner
       WHERE subname = 'es_replica'}),
	't', 'the apply worker runs as the subscription owner, a superuser on PostgreSQL 15');

my $initial = dump_events($primary, 'postgres');
is(dump_events($subscriber, 'postgres'), $initial,
	'initial copy: the subscriber with the extension has the same events, column for column');
is(dump_events($subscriber, 'plain'), $initial, 'initial copy: the plain table too');
is($subscriber->safe_psql('postgres', $streams_sql), $primary->safe_psql('postgres', $streams_sql),
	'initial copy: the streams rows are identical');
is($subscriber->safe_psql('postgres',
		q{SELECT count(*) FROM event_store.events WHERE event_id = '00000000-0000-4000-8000-0000000000ff'}),
	'0', 'the append rolled back before the subscription is not there');

# ---------------------------------------------------------------------------
# (0b) rules and upcasters arriving by replication reach sessions that are
#      already open: the apply worker fires row triggers only, and the
#      extension's ENABLE REPLICA row triggers tell every session
# ---------------------------------------------------------------------------
for my $node ($primary, $subscriber)
{
	$node->safe_psql('postgres', q{
	  CREATE FUNCTION public.rules_up(d jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE
	      AS $$ SELECT d || '{"upcast": true}' $$;});
}
$primary->safe_psql('postgres', q{
  SELECT event_store.es_append('rules-1', 0, '[{"type": "R", "data": {"n": 1}},
                                               {"type": "R", "data": {"n": 2}},
                                               {"type": "R", "data": {"n": 3}}]');
  ALTER PUBLICATION es_log ADD TABLE event_store.upcasters;});
$subscriber->safe_psql('postgres', 'ALTER SUBSCRIPTION es_replica REFRESH PUBLICATION');
$subscriber->wait_for_subscription_sync($primary, 'es_replica', 'postgres');
my $reader = DBI->connect(
	'dbi:Pg:dbname=postgres;host=' . $subscriber->host . ';port=' . $subscriber->port,
	'', '', { AutoCommit => 1, RaiseError => 1, PrintError => 0, AutoInactiveDestroy => 1 });
my $read_rules = q{SELECT string_agg(data::text, ' ' ORDER BY version) FROM event_store.es_read_stream('rules-1')};
is($reader->selectrow_array($read_rules), '{"n": 1} {"n": 2} {"n": 3}',
	'a session on the subscriber reads the stream (and caches that no stream has rules)');
$primary->safe_psql('postgres', q{
  SELECT event_store.es_set_stream_metadata('rules-1', '{"max_count": 2}');
  SELECT event_store.es_register_upcaster('R', 1, 'public.rules_up(jsonb)');});
$subscriber->poll_query_until('postgres', q{
  SELECT (SELECT metadata FROM event_store.streams WHERE name = 'rules-1') = '{"max_count": 2}'
     AND EXISTS (SELECT 1 FROM event_store.upcasters WHERE type = 'R')})
  or die 'the rules did not arrive';
is($reader->selectrow_array($read_rules), '{"n": 2, "upcast": true} {"n": 3, "upcast": true}',
	'the same session, after metadata and an upcaster arrived by replication, reads with both (old code: all three, not upcast)');
$reader->disconnect;

# ---------------------------------------------------------------------------
# (1) commit order is not position order
# ---------------------------------------------------------------------------
my $slot_after = $primary->safe_psql('postgres', 'SELECT max(position) FROM event_store.events');
$primary->safe_psql('postgres', q{
  SELECT pg_create_logical_replication_slot('es_test_decoding', 'test_decoding');
  SELECT pg_create_logical_replication_slot('es_pgoutput', 'pgoutput');});

my ($sa, $sb, $sc) = map { connect_primary() } 1 .. 3;
my $append_one = q{SELECT last_position FROM event_store.es_append($1::text, 0, $2::text, $3::jsonb, NULL, $4::uuid)};
$sa->begin_work;
my ($pA) = $sa->selectrow_array($append_one, undef, 'acct-a', 'Opened', '{"who": "A"}', uuid_of(0xa, 1));
my ($pB) = $sb->selectrow_array($append_one, undef, 'acct-b', 'Opened', '{"who": "B"}', uuid_of(0xb, 1));
$sc->begin_work;
my ($pC) = $sc->selectrow_array($append_one, undef, 'acct-c', 'Opened', '{"who": "C"}', uuid_of(0xc, 1));
$sc->rollback;
cmp_ok($pB, '>', $pA, "B (position $pB) took a position after A ($pA) and committed first");

for my $db ('postgres', 'plain')
{
	$subscriber->poll_query_until($db,
		"SELECT count(*) = 1 FROM event_store.events WHERE position = $pB")
	  or die "$db did not receive position $pB";
}
is($subscriber->safe_psql('postgres', "SELECT count(*) FROM event_store.events WHERE position = $pA"),
	'0', "while A is open, the subscriber has B's event ($pB) but not A's ($pA)");

# the primary's feed holds pB back while A may still commit pA
is( $primary->safe_psql('postgres',
		"SELECT count(*) FROM event_store.es_read_all($slot_after, 10000)"),
	'0', "the primary's gap-safe feed returns nothing after $slot_after while A is open");

# the subscriber's feed (first use of its position register)
my ($rc, $out, $err) = $subscriber->psql('postgres',
	"SELECT coalesce(string_agg(position::text, ' ' ORDER BY position), '') FROM event_store.es_read_all($slot_after, 10000)",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
my $sub_feed_refused = ($rc != 0 && $err =~ /55000/);
diag("subscriber es_read_all($slot_after) while A is open: "
	  . ($rc == 0 ? "returned [$out]" : "refused: $err"));
ok($sub_feed_refused, "the subscriber refuses its feed (55000): $pA can still arrive below $pB");

$sa->commit;
my $head_after_a = $primary->safe_psql('postgres', 'SELECT event_store.es_head_position()');
cmp_ok($head_after_a, '>=', $pB, 'once A commits, the primary feed head passes both');
for my $db ('postgres', 'plain')
{
	$subscriber->poll_query_until($db,
		"SELECT count(*) = 1 FROM event_store.events WHERE position = $pA")
	  or die "$db did not receive position $pA";
}
is( $subscriber->safe_psql('plain', qq{
      SELECT string_agg(position::text, ' ' ORDER BY received) FROM event_store.events
       WHERE position IN ($pA, $pB, $pC)}),
	"$pB $pA", 'the plain subscriber received B before A (commit order), and never C');

# test_decoding: the same order
my @td = split /\n/, $primary->safe_psql('postgres', q{
  SELECT data FROM pg_logical_slot_peek_changes('es_test_decoding', NULL, NULL,
                                               'include-xids', '0', 'skip-empty-xacts', '1')});
my @td_positions = map { /^table event_store\.events: INSERT: "position"\[bigint\]:(\d+) / ? ($1) : () } @td;
is("@td_positions", "$pB $pA", 'test_decoding: B\'s event, then A\'s; C\'s never');
is(scalar(grep { /^table event_store\.streams: INSERT: .*name\[text\]:'acct-b'/ } @td), 1,
	'test_decoding: the streams row travels in the same transaction as its event');


# ---------------------------------------------------------------------------
# (2) concurrent writers
# ---------------------------------------------------------------------------
sub writer_main
{
	my ($w) = @_;
	srand($$ ^ int(time * 1000));
	open my $committed, '>', "$dir/w$w.committed" or die "open: $!";
	open my $rolledback, '>', "$dir/w$w.rolledback" or die "open: $!";
	my $dbh = connect_primary();
	my $seq = 0;
	for my $x (1 .. $xacts_per_writer)
	{
		my %pick = ($pool[ int(rand(@pool)) ] => 1);
		$pick{ $pool[ int(rand(@pool)) ] } = 1 if rand() < 0.3;
		my @streams = sort keys %pick;    # no two writers lock in opposite order
		my (@kept, @undone);
		$dbh->begin_work;
		for my $s (@streams)
		{
			my $form = int(rand(3));
			my @ids = map { uuid_of($w + 1, ++$seq) } 1 .. ($form == 1 ? 1 : 1 + int(rand(3)));
			if ($form == 0)
			{
				my @batch = map {
					{ type => 'Batched', data => { w => $w, x => $x }, id => $_,
					  (rand() < 0.5 ? (metadata => { writer => "w$w" }) : ()) }
				} @ids;
				$dbh->do('SELECT event_store.es_append($1::text, NULL, $2::jsonb)',
					undef, $s, $json->encode(\@batch));
			}
			elsif ($form == 1)
			{
				$dbh->do('SELECT event_store.es_append($1::text, NULL, $2::text, $3::jsonb, $4::jsonb, $5::uuid, 3)',
					undef, $s, 'Single', $json->encode({ w => $w, x => $x }), '{"writer": "single"}', $ids[0]);
			}
			else
			{
				$dbh->do('INSERT INTO event_store.events (stream, type, data, event_id) VALUES '
					  . join(', ', map { '($1, \'Inserted\', \'{"plain": true}\', \'' . $_ . '\')' } @ids),
					undef, $s);
			}
			push @kept, @ids;
		}
		if (rand() < 0.1)
		{
			# an append rolled back to a savepoint, in a stream already held
			my $id = uuid_of($w + 1, ++$seq);
			$dbh->do('SAVEPOINT s');
			$dbh->do(q{SELECT event_store.es_append($1::text, NULL, 'Undone', '{}', NULL, $2::uuid)},
				undef, $streams[-1], $id);
			$dbh->do('ROLLBACK TO SAVEPOINT s');
			push @undone, $id;
		}
		usleep(int(rand(3000)));    # vary the commit order, not a synchronisation
		if (rand() < 0.2)
		{
			$dbh->rollback;
			push @undone, @kept;
		}
		else
		{
			$dbh->commit;
			print $committed "$_\n" for @kept;
		}
		print $rolledback "$_\n" for @undone;
	}
	close $committed;
	close $rolledback;
	$dbh->disconnect;
}

my %running;
for my $w (1 .. $nwriters)
{
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		my $ok = eval { writer_main($w); 1 };
		warn "writer $w: $@" unless $ok;
		POSIX::_exit($ok ? 0 : 1);
	}
	$running{$pid} = "writer $w";
}
my @failed;
for my $pid (keys %running)
{
	waitpid($pid, 0);
	push @failed, $running{$pid} if $? != 0;
}
is("@failed", '', 'every writer finished without an error');

sub read_lines
{
	my ($file) = @_;
	open my $fh, '<', $file or die "open $file: $!";
	my @lines = <$fh>;
	close $fh;
	chomp @lines;
	return @lines;
}
my (@committed, @rolledback);
for my $w (1 .. $nwriters)
{
	push @committed, read_lines("$dir/w$w.committed");
	push @rolledback, read_lines("$dir/w$w.rolledback");
}
my $ids_of = sub { join ',', map { "'$_'" } @_ };
cmp_ok(scalar(@rolledback), '>', 0, scalar(@committed) . ' events committed, ' . scalar(@rolledback) . ' rolled back');

$primary->wait_for_catchup('es_replica');
$primary->wait_for_catchup('es_plain');

my $all = dump_events($primary, 'postgres');
is( $primary->safe_psql('postgres',
		'SELECT count(*) FROM event_store.events WHERE event_id IN (' . $ids_of->(@committed) . ')'),
	scalar(@committed), 'the primary holds every committed event');
is(dump_events($subscriber, 'postgres'), $all,
	'subscriber with the extension: every event, in position order, columns identical');
is(dump_events($subscriber, 'plain'), $all,
	'plain subscriber: every event, in position order, columns identical');
for my $db ('postgres', 'plain')
{
	is( $subscriber->safe_psql($db,
			'SELECT count(*) FROM event_store.events WHERE event_id IN (' . $ids_of->(@rolledback) . ')'),
		'0', "$db: no rolled-back event (whole transactions and savepoints)");
}
is($subscriber->safe_psql('postgres', $streams_sql), $primary->safe_psql('postgres', $streams_sql),
	'subscriber with the extension: the streams rows are identical (id, version, timestamps)');
is( $subscriber->safe_psql('postgres', q{
      SELECT count(*) FROM event_store.streams s
       WHERE s.version <> (SELECT count(*) FROM event_store.events e WHERE e.stream = s.name)
          OR s.version <> (SELECT coalesce(max(version), 0) FROM event_store.events e WHERE e.stream = s.name)}),
	'0', 'subscriber with the extension: every stream\'s version is its number of events, 1..N');

# stream reads on the subscriber: the same answers as on the primary
my $reads = q{SET TimeZone = 'UTC';
  SELECT s.name, event_store.es_stream_version(s.name),
         (SELECT string_agg(format('%s/%s/%s/%s/%s', r.version, r.position, r.type, r.data, r.event_id), ' '
                            ORDER BY r.version)
            FROM event_store.es_read_stream(s.name) r),
         (SELECT r.version FROM event_store.es_read_stream(s.name, NULL, 1, true) r)
    FROM event_store.streams s ORDER BY s.name};
my $primary_reads = $primary->safe_psql('postgres', $reads);
is($subscriber->safe_psql('postgres', $reads), $primary_reads,
	'es_read_stream (forwards, backwards) and es_stream_version on the subscriber answer like the primary, for every stream');

# arrival (commit) order on the plain subscriber
is( $subscriber->safe_psql('plain', q{
      SELECT count(*) FROM (
        SELECT version, lag(version) OVER (PARTITION BY stream ORDER BY received) AS prev
          FROM event_store.events) t
       WHERE prev IS NOT NULL AND version <> prev + 1}),
	'0', 'plain subscriber: within each stream, events arrive in version order');
my $inversions = $subscriber->safe_psql('plain', q{
  SELECT count(*) FROM (
    SELECT position, max(position) OVER (ORDER BY received ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS seen
      FROM event_store.events) t WHERE position < seen});
cmp_ok($inversions, '>=', 1,
	"plain subscriber: across streams, $inversions events arrived after a higher position (commit order is not position order)");

# the subscriber's feed after catch-up
my $primary_head = $primary->safe_psql('postgres', 'SELECT event_store.es_head_position()');
($rc, $out, $err) = $subscriber->psql('postgres', 'SELECT event_store.es_head_position()',
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
diag("after catch-up: primary head $primary_head, subscriber head "
	  . ($rc == 0 ? $out : "refused: $err"));
ok($rc != 0 && $err =~ /55000/, 'the subscriber refuses its feed head (55000)');
($rc, $out, $err) = $subscriber->psql('postgres',
	q{SELECT event_store.es_append('order-1', NULL, 'Local', '{}')},
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
ok($rc != 0 && $err =~ /55000/, 'the subscriber refuses local appends (55000)');

# ---------------------------------------------------------------------------
# (3) logical decoding on the primary
# ---------------------------------------------------------------------------
# pgoutput, protocol 1, text tuples: what a Debezium connector receives
my @messages = map { pack('H*', $_) } split /\n/, $primary->safe_psql('postgres', q{
  SET TimeZone = 'UTC';
  SELECT encode(data, 'hex') FROM pg_logical_slot_get_binary_changes('es_pgoutput', NULL, NULL,
    'proto_version', '1', 'publication_names', 'es_events')});
my (%relname, @decoded, @xacts, $in_xact);
for my $m (@messages)
{
	my $kind = substr($m, 0, 1);
	if ($kind eq 'B') { push @xacts, []; $in_xact = 1; }
	elsif ($kind eq 'C') { $in_xact = 0; }
	elsif ($kind eq 'R')
	{
		my ($relid, $nsp, $rel) = unpack('x N Z* Z*', $m);
		$relname{$relid} = "$nsp.$rel";
	}
	elsif ($kind eq 'I')
	{
		my ($relid, $n) = unpack('x N x n', $m);
		die "insert outside a transaction" unless $in_xact;
		die "insert into $relname{$relid}" unless $relname{$relid} eq 'event_store.events';
		my $off = 1 + 4 + 1 + 2;
		my @cols;
		for (1 .. $n)
		{
			my $t = substr($m, $off++, 1);
			if ($t eq 'n') { push @cols, ''; next; }
			die "unexpected column kind $t" unless $t eq 't';
			my $len = unpack('N', substr($m, $off, 4));
			push @cols, substr($m, $off + 4, $len);
			$off += 4 + $len;
		}
		push @decoded, \@cols;
		push @{ $xacts[-1] }, \@cols;
	}
	else { die "unexpected pgoutput message $kind"; }
}
my $since = dump_events($primary, 'postgres', "position > $slot_after");
my @since_rows = split /\n/, $since;
is(join("\n", map { join('|', @$_) } sort { $a->[0] <=> $b->[0] } @decoded), $since,
	'pgoutput: every event committed since the slot was created, once, with the table\'s column text');
is(join(' ', map { $_->[0] } @decoded[ 0, 1 ]), "$pB $pA", 'pgoutput: in commit order (B before A)');
my %decoded_ids = map { $_->[6] => 1 } @decoded;
is(scalar(grep { $decoded_ids{$_} } @rolledback, uuid_of(0xc, 1)), 0, 'pgoutput: no rolled-back event');
my ($bad_xact, $bad_stream) = (0, 0);
my %last_version;
for my $x (@xacts)
{
	for my $i (1 .. $#$x) { $bad_xact++ if $x->[$i][0] <= $x->[ $i - 1 ][0]; }
}
for my $e (@decoded)
{
	$bad_stream++ if ($last_version{ $e->[1] } // 0) + 1 != $e->[2]
	  && exists $last_version{ $e->[1] };
	$last_version{ $e->[1] } = $e->[2];
}
is("$bad_xact $bad_stream", '0 0',
	'pgoutput: positions ascend within a transaction, versions follow each other within a stream');
is( $primary->safe_psql('postgres', q{
      SELECT count(*) FROM pg_logical_slot_peek_binary_changes('es_pgoutput', NULL, NULL,
        'proto_version', '1', 'publication_names', 'es_events')}),
	'0', 'pgoutput: get consumed the changes (the slot advanced)');

@td = split /\n/, $primary->safe_psql('postgres', q{
  SELECT data FROM pg_logical_slot_get_changes('es_test_decoding', NULL, NULL,
                                              'include-xids', '0', 'skip-empty-xacts', '1')});
@td_positions = map { /^table event_store\.events: INSERT: "position"\[bigint\]:(\d+) / ? ($1) : () } @td;
is("@td_positions", join(' ', map { $_->[0] } @decoded),
	'test_decoding: the same events in the same (commit) order as pgoutput');
$primary->safe_psql('postgres', q{
  SELECT pg_drop_replication_slot('es_test_decoding');
  SELECT pg_drop_replication_slot('es_pgoutput');});

# ---------------------------------------------------------------------------
# (4) cutover: the subscriber with the extension becomes a primary
# ---------------------------------------------------------------------------
my $max = $primary->safe_psql('postgres', 'SELECT max(position) FROM event_store.events');
my $order1 = $primary->safe_psql('postgres', q{SELECT event_store.es_stream_version('order-1')});
$subscriber->safe_psql('postgres', 'DROP SUBSCRIPTION es_replica');
# sequences are not replicated; the position register may have been loaded
# while the database was a subscriber: set the one, reload the other
$subscriber->safe_psql('postgres', q{
  SELECT setval(pg_get_serial_sequence('event_store.streams', 'id'), max(id)) FROM event_store.streams});
my $appended = $subscriber->safe_psql('postgres', q{
  SELECT first_version || ' ' || first_position FROM event_store.es_append('order-1', NULL, 'AfterCutover', '{}');
  SELECT first_position FROM event_store.es_append('new-1', 0, 'AfterCutover', '{}');});
my ($v, $p, $p2) = split /\s+/, $appended;
is($v, $order1 + 1, 'after cutover, an existing stream continues at the next version');
cmp_ok($p, '>', $max, 'after cutover, positions continue above every replicated one');
cmp_ok($p2, '>', $p, 'and a new stream can be created');
is($subscriber->safe_psql('postgres', 'SELECT event_store.es_head_position()'), $p2,
	'and the feed is readable and current');

$_->disconnect for $sa, $sb, $sc;
$subscriber->stop;
$primary->stop;
diag(sprintf('summary: %d committed, %d rolled back, %d decoded, %d cross-stream inversions',
		scalar(@committed), scalar(@rolledback), scalar(@decoded), $inversions));
diag(sprintf('took %.1f s', time - $started));
done_testing();
