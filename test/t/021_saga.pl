# The order saga of examples/order_saga.sql, run by the server (issue 16):
# 80 orders placed by 4 clients, with 3 crashes of the server (kill -9 of
# the postmaster and all its children) while the saga runs.  Then:
# - every order ended confirmed or cancelled, its stream holding exactly
#   OrderPlaced and one of OrderConfirmed, OrderCancelled;
# - payments over the limit failed and were compensated: InventoryReleased
#   exactly for them, and the stock is the initial stock less what the
#   confirmed orders took;
# - no reaction happened twice (no stream holds a type twice), whatever the
#   crashes;
# - every event the saga appended carries the order's correlation id (the
#   OrderPlaced event's id) and the id of the event it reacted to.
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
my $node = es_new_node('saga', conf => q{
max_worker_processes = 16
event_store.notifier_idle_timeout = '30s'
});
$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', 'CREATE EXTENSION event_store');
my $example = slurp_file('examples/order_saga.sql');
$node->safe_psql('shop', $example);


# 4 clients place 20 orders each: skus book (stock 100) and lamp (stock 5),
# amounts up to 1500 (over 1000 the payment fails); an order placed is
# retried until acknowledged (V0001 then means it is there already).
sub place
{
	my ($client) = @_;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	return $pid if $pid;
	srand($client);
	for my $i (1 .. 20)
	{
		my $id = $client * 100 + $i;
		my $sku = rand() < 0.3 ? 'lamp' : 'book';
		my $qty = 1 + int(rand(3));
		my $amount = 10 * (1 + int(rand(150)));
		for my $try (1 .. 100)
		{
			my $h = eval { es_connect($node, 'shop') };
			if ($h)
			{
				my $r = es_run($h, qq{SELECT event_store.es_append('order-$id', 0, 'OrderPlaced',
				  '{"sku": "$sku", "qty": $qty, "amount": $amount}')});
				$h->disconnect if $h->ping;
				last if $r->{ok} || $r->{state} eq 'V0001';
			}
			usleep(100_000);
		}
		usleep(int(rand(20_000)));
	}
	POSIX::_exit(0);
}

my @pids = map { place($_) } 1 .. 4;
for my $cycle (1 .. 3)
{
	usleep(300_000 + int(rand(400_000)));
	ok(es_crash_and_restart($node), "crash $cycle: kill -9 of the server while orders are placed and the saga reacts; it restarts")
	  or do { kill 'KILL', @pids; BAIL_OUT('the server did not restart') };
}
waitpid($_, 0) for @pids;

my $h = es_connect($node, 'shop');
my $end = time + 90;
my $open;
while (time < $end)
{
	$open = es_col($h, q{SELECT 80 - count(*) FILTER (WHERE state IN ('confirmed', 'cancelled')) FROM saga.orders});
	last if defined $open && $open == 0;
	usleep(200_000);
}
is($open, 0, 'every one of the 80 orders ended, confirmed or cancelled (after the crashes, with no client running the saga)');

is(es_col($h, q{SELECT count(*) FROM event_store.events WHERE type = 'OrderPlaced'}), 80, '80 orders placed');
is(es_col($h, q{SELECT count(*) FROM (SELECT stream FROM event_store.events GROUP BY stream, type HAVING count(*) > 1) d}), 0,
	'no reaction happened twice: no stream holds an event type twice');
is(es_col($h, q{
	SELECT count(*) FROM event_store.streams s
	 WHERE s.name LIKE 'order-%'
	   AND (s.version <> 2
	        OR (SELECT count(*) FROM event_store.events e WHERE e.stream = s.name
	             AND e.type IN ('OrderConfirmed', 'OrderCancelled')) <> 1)}), 0,
	'each order stream: OrderPlaced and exactly one of OrderConfirmed, OrderCancelled');
is(es_col($h, q{
	SELECT count(*) FROM saga.orders o
	 WHERE (o.state = 'confirmed') <> EXISTS (SELECT FROM event_store.events e
	                                           WHERE e.stream = 'order-' || o.id AND e.type = 'OrderConfirmed')}), 0,
	'the read model agrees with the streams');
is(es_col($h, q{
	SELECT count(*) FROM saga.orders o
	 WHERE EXISTS (SELECT FROM event_store.events e WHERE e.stream = 'payment-' || o.id AND e.type = 'PaymentFailed')
	       <> EXISTS (SELECT FROM event_store.events e WHERE e.stream = 'inventory-' || o.id AND e.type = 'InventoryReleased')}), 0,
	'compensation: InventoryReleased exactly for the orders whose payment failed');
is(es_col($h, q{
	SELECT count(*) FROM saga.orders o
	 WHERE o.state = 'confirmed' AND o.amount > 1000}), 0, 'no order over the limit was confirmed');
my $failed = es_col($h, q{SELECT count(*) FROM event_store.events WHERE type = 'PaymentFailed'});
cmp_ok($failed, '>', 0, "some payments failed and were compensated ($failed)");
is(es_col($h, q{
	SELECT string_agg(s.sku || '=' || s.available, ',' ORDER BY s.sku) FROM saga.stock s}),
	es_col($h, q{
	SELECT string_agg(k.sku || '=' || (k.initial - coalesce((SELECT sum(o.qty) FROM saga.orders o
	                                                          WHERE o.sku = k.sku AND o.state = 'confirmed'), 0)),
	                  ',' ORDER BY k.sku)
	  FROM (VALUES ('book', 100), ('lamp', 5)) k(sku, initial)}),
	'the stock is the initial stock less what the confirmed orders took');
is(es_col($h, q{
	SELECT count(*) FROM event_store.events r
	  JOIN event_store.events p ON p.type = 'OrderPlaced' AND p.stream = 'order-' || split_part(r.stream, '-', 2)
	 WHERE r.type <> 'OrderPlaced'
	   AND (r.metadata ->> 'correlation_id' IS DISTINCT FROM p.event_id::text
	        OR NOT EXISTS (SELECT FROM event_store.events c WHERE c.event_id::text = r.metadata ->> 'causation_id'))}), 0,
	'every reaction carries the order\'s correlation id and the id of the event it reacted to');
is(es_col($h, q{SELECT state || ':' || dead_lettered FROM event_store.projections WHERE name = 'order_saga'}), 'running:0',
	'the saga runs, with no dead letter');

$h->disconnect;
es_check_log($node, '021');
$node->stop;
note sprintf('took %.1f s', time - $started);
done_testing();
