-- The order saga, run by the server: a process manager that reacts to the
-- events of an order and records each reaction exactly once, in the same
-- transaction as its checkpoint (docs/projections.md).
--
--   OrderPlaced          -> reserve the items: InventoryReserved, or
--                           InventoryUnavailable (then OrderCancelled)
--   InventoryReserved    -> take the payment: PaymentProcessed, or
--                           PaymentFailed (the card's limit is 1000)
--   PaymentProcessed     -> OrderConfirmed
--   PaymentFailed        -> compensation: InventoryReleased, OrderCancelled
--
-- Streams: order-<id> (the order's life), inventory-<id> (its reservation),
-- payment-<id> (its payment).  Every event the saga appends carries the
-- correlation id of the OrderPlaced event and the id of the event it
-- reacts to (es_caused_by).  Each append names the version it expects, so
-- a reaction can happen only once even if two sagas ran.
--
-- Run it as a superuser in a database with the extension:
--   psql -d DB -f examples/order_saga.sql
-- then place orders (as any role that may append):
--   SELECT event_store.es_append('order-1', 0, 'OrderPlaced',
--          '{"sku": "book", "qty": 2, "amount": 40}');
-- and watch saga.orders and the streams.

CREATE ROLE saga_app;
GRANT SELECT, INSERT ON event_store.events TO saga_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON event_store.projections, event_store.dead_letters TO saga_app;
GRANT SELECT ON event_store.es_projections, event_store.es_dead_letters TO saga_app;
CREATE SCHEMA saga AUTHORIZATION saga_app;

SET ROLE saga_app;

-- the stock the inventory reserves from, and the state of each order
CREATE TABLE saga.stock (sku text PRIMARY KEY, available integer NOT NULL CHECK (available >= 0));
INSERT INTO saga.stock VALUES ('book', 100), ('lamp', 5);
CREATE TABLE saga.orders (
    id          text PRIMARY KEY,
    state       text NOT NULL,
    sku         text NOT NULL,
    qty         integer NOT NULL,
    amount      numeric NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- append one event the saga decided, caused by e, at the version expected
CREATE FUNCTION saga.emit(e event_store.es_event, stream text, expected bigint, type text, data jsonb)
RETURNS void LANGUAGE sql AS $$
  SELECT event_store.es_append(stream, expected, type, data, event_store.es_caused_by(e))
$$;

CREATE FUNCTION saga.react(e event_store.es_event) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  order_id text := split_part(e.stream, '-', 2);
  o saga.orders;
BEGIN
  CASE e.type
  WHEN 'OrderPlaced' THEN
    INSERT INTO saga.orders (id, state, sku, qty, amount)
    VALUES (order_id, 'placed', e.data ->> 'sku', (e.data ->> 'qty')::int, (e.data ->> 'amount')::numeric);
    UPDATE saga.stock SET available = available - (e.data ->> 'qty')::int
     WHERE sku = e.data ->> 'sku' AND available >= (e.data ->> 'qty')::int;
    IF FOUND THEN
      PERFORM saga.emit(e, 'inventory-' || order_id, 0, 'InventoryReserved', e.data);
    ELSE
      PERFORM saga.emit(e, 'inventory-' || order_id, 0, 'InventoryUnavailable', e.data);
    END IF;
  WHEN 'InventoryReserved' THEN
    UPDATE saga.orders SET state = 'reserved', updated_at = now() WHERE orders.id = order_id;
    IF (e.data ->> 'amount')::numeric <= 1000 THEN
      PERFORM saga.emit(e, 'payment-' || order_id, 0, 'PaymentProcessed', jsonb_build_object('amount', e.data -> 'amount'));
    ELSE
      PERFORM saga.emit(e, 'payment-' || order_id, 0, 'PaymentFailed', jsonb_build_object('amount', e.data -> 'amount', 'reason', 'over the limit'));
    END IF;
  WHEN 'InventoryUnavailable' THEN
    UPDATE saga.orders SET state = 'cancelled', updated_at = now() WHERE orders.id = order_id;
    PERFORM saga.emit(e, 'order-' || order_id, 1, 'OrderCancelled', '{"reason": "out of stock"}');
  WHEN 'PaymentProcessed' THEN
    UPDATE saga.orders SET state = 'confirmed', updated_at = now() WHERE orders.id = order_id;
    PERFORM saga.emit(e, 'order-' || order_id, 1, 'OrderConfirmed', '{}');
  WHEN 'PaymentFailed' THEN
    -- compensation: give the items back, then cancel
    SELECT * INTO o FROM saga.orders WHERE orders.id = order_id;
    UPDATE saga.stock SET available = available + o.qty WHERE sku = o.sku;
    UPDATE saga.orders SET state = 'cancelled', updated_at = now() WHERE orders.id = order_id;
    PERFORM saga.emit(e, 'inventory-' || order_id, 1, 'InventoryReleased', jsonb_build_object('sku', o.sku, 'qty', o.qty));
    PERFORM saga.emit(e, 'order-' || order_id, 1, 'OrderCancelled', '{"reason": "payment failed"}');
  ELSE
    NULL;
  END CASE;
END $$;

SELECT event_store.es_register_projection('order_saga', 'saga.react(event_store.es_event)',
    types => '{OrderPlaced,InventoryReserved,InventoryUnavailable,PaymentProcessed,PaymentFailed}',
    page_size => 50, on_error => 'pause');

RESET ROLE;
