-- Projections run by the server (docs/projections.md): registration and its
-- refusals, a page applied with its checkpoint, the failing event found,
-- retried after its backoff and then parked or faulting the projection,
-- rebuilds, the status view, the rights of roles.  Each case registers its
-- projections in a transaction it rolls back, so the database's worker
-- never sees them: these tests drive pages with es_run_projection.
SET search_path = regress, public;

CREATE ROLE pj_app;
CREATE ROLE pj_other;
CREATE ROLE pj_super SUPERUSER;
GRANT SELECT, INSERT ON event_store.events TO pj_app, pj_other;
GRANT SELECT, INSERT, UPDATE, DELETE ON event_store.projections, event_store.dead_letters
   TO pj_app, pj_other;
GRANT SELECT ON event_store.es_projections, event_store.es_dead_letters TO pj_app, pj_other;
CREATE SCHEMA pj AUTHORIZATION pj_app;
GRANT USAGE ON SCHEMA pj TO pj_other;

SET ROLE pj_app;
CREATE TABLE pj.seen (projection text, position bigint, stream text);
CREATE FUNCTION pj.page(events event_store.es_event[]) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO pj.seen SELECT 'page', e.position, e.stream FROM unnest(events) e
$$;
-- fails on events whose data says so (the poison), else records it
CREATE FUNCTION pj.one(e event_store.es_event) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF e.data ? 'poison' THEN
    RAISE EXCEPTION 'poisoned event at version %', e.version USING ERRCODE = '22000';
  END IF;
  INSERT INTO pj.seen VALUES ('one', e.position, e.stream);
END $$;
CREATE FUNCTION pj.reset() RETURNS void LANGUAGE sql AS $$ DELETE FROM pj.seen $$;
CREATE FUNCTION pj.wrong(e jsonb) RETURNS void LANGUAGE sql AS $$ SELECT $$;
CREATE FUNCTION pj.many(e event_store.es_event) RETURNS SETOF int LANGUAGE sql AS $$ SELECT 1 $$;
CREATE PROCEDURE pj.proc(e event_store.es_event) LANGUAGE sql AS $$ SELECT $$;
CREATE FUNCTION pj.private(e event_store.es_event) RETURNS void LANGUAGE sql AS $$ SELECT $$;
REVOKE EXECUTE ON FUNCTION pj.private(event_store.es_event) FROM PUBLIC;
-- a process manager: reacts to an event by appending to another stream
CREATE FUNCTION pj.react(e event_store.es_event) RETURNS void
LANGUAGE sql AS $$
  SELECT event_store.es_append('pjr-' || e.version, 0, 'Reacted', '{}',
                               event_store.es_caused_by(e));
$$;

-- the events: stream pj-1 (4 events, the third poisoned), pq-1 (2)
SELECT event_store.es_append('pj-1', 0,
  '[{"type": "A", "data": {}}, {"type": "B", "data": {}},
    {"type": "A", "data": {"poison": 1}}, {"type": "B", "data": {}}]') IS NOT NULL AS appended;
SELECT event_store.es_append('pq-1', 0,
  '[{"type": "A", "data": {}}, {"type": "C", "data": {}}]') IS NOT NULL AS appended;
SELECT min(position) - 1 AS base FROM event_store.events WHERE stream IN ('pj-1', 'pq-1') \gset

-- 1. Registration refusals, each with its SQLSTATE; nothing is stored.
BEGIN;
SELECT err($$SELECT event_store.es_register_projection(NULL, 'pj.page(event_store.es_event[])')$$);
SELECT err($$SELECT event_store.es_register_projection('', 'pj.page(event_store.es_event[])')$$);
SELECT err($$SELECT event_store.es_register_projection('p', 'pj.nosuch(event_store.es_event[])')$$);
SELECT err($$SELECT event_store.es_register_projection('p', 'pj.wrong(jsonb)')$$);
SELECT err($$SELECT event_store.es_register_projection('p', 'pj.many(event_store.es_event)')$$);
SELECT err($$SELECT event_store.es_register_projection('p', 'pj.proc(event_store.es_event)')$$);
SELECT err($$SELECT event_store.es_register_projection('p', 'pj.page(event_store.es_event[])', page_size => 0)$$);
SELECT err($$SELECT event_store.es_register_projection('p', 'pj.page(event_store.es_event[])', page_size => 10001)$$);
SELECT err($$SELECT event_store.es_register_projection('p', 'pj.page(event_store.es_event[])', max_attempts => 0)$$);
SELECT err($$SELECT event_store.es_register_projection('p', 'pj.page(event_store.es_event[])', on_error => 'retry')$$);
SELECT err($$SELECT event_store.es_register_projection('p', 'pj.page(event_store.es_event[])', backoff => '-1 s')$$);
SELECT err($$SELECT event_store.es_register_projection('p', 'pj.page(event_store.es_event[])', category => 'pj', types => '{A}')$$);
SELECT err($$SELECT event_store.es_register_projection('p', 'pj.page(event_store.es_event[])', category => 'pj-x')$$);
SELECT err($$SELECT event_store.es_register_projection('p', 'pj.page(event_store.es_event[])', types => '{}')$$);
SELECT err($$SELECT event_store.es_register_projection('p', 'pj.page(event_store.es_event[])', reset_handler => 'pj.page(event_store.es_event[])')$$);
SELECT err($$SELECT event_store.es_register_projection('p', 'pj.page(event_store.es_event[])', start_position => -1)$$);
SELECT event_store.es_register_projection('p', 'pj.page(event_store.es_event[])');
SELECT err($$SELECT event_store.es_register_projection('p', 'pj.one(event_store.es_event)')$$);
SELECT count(*) AS registered FROM event_store.projections;
ROLLBACK;

-- the caller must be able to execute the handler, and not be a superuser
SET ROLE pj_other;
BEGIN;
SELECT err($$SELECT event_store.es_register_projection('p', 'pj.private(event_store.es_event)')$$);
ROLLBACK;
RESET ROLE;
SET ROLE pj_super;
BEGIN;
SELECT err($$SELECT event_store.es_register_projection('p', 'pj.page(event_store.es_event[])')$$);
ROLLBACK;
SET ROLE pj_app;
-- a row written directly is checked as well
BEGIN;
SELECT err($$INSERT INTO event_store.projections (name, handler, shape, page_size, on_error, max_attempts, backoff, owner)
             VALUES ('p', 'pj.page(event_store.es_event[])', 'event', 10, 'pause', 1, '0', 'pj_app')$$);
SELECT err($$INSERT INTO event_store.projections (name, handler, shape, page_size, on_error, max_attempts, backoff, owner)
             VALUES ('p', 'pj.page(event_store.es_event[])', 'page', 10, 'pause', 1, '0', 'pj_other')$$);
SELECT err($$INSERT INTO event_store.projections (name, handler, shape, page_size, on_error, max_attempts, backoff, owner)
             VALUES ('p', '12345', 'page', 10, 'pause', 1, '0', 'pj_app')$$);
ROLLBACK;

-- 2. A page handler: the page and its checkpoint; a filter that matches
-- nothing more still moves the checkpoint to where the read got.
BEGIN;
SELECT event_store.es_register_projection('cat', 'pj.page(event_store.es_event[])',
                                          category => 'pj', page_size => 3, start_position => :base);
SELECT event_store.es_run_projection('cat') AS applied;
SELECT position - :base AS checkpoint, processed FROM event_store.es_projections WHERE name = 'cat';
SELECT event_store.es_run_projection('cat', max_pages => 10) AS applied;
SELECT position - :base AS checkpoint, processed, lag_positions >= 0 AS lag_known
  FROM event_store.es_projections WHERE name = 'cat';
SELECT position - :base AS position, stream FROM pj.seen ORDER BY position;
-- caught up: the checkpoint is at the head, past pq-1's events it never read
SELECT position = event_store.es_head_position() AS at_head FROM event_store.projections WHERE name = 'cat';
SELECT event_store.es_run_projection('cat') AS applied;
ROLLBACK;

-- es_feed_reached never passes the newest event: the positions of a
-- rolled-back transaction above it are handed out again after a restart
BEGIN;
SELECT event_store.es_append('gap-1', NULL, '[{"type": "G", "data": {}}, {"type": "G", "data": {}}]') IS NOT NULL AS appended;
ROLLBACK;
SELECT count(*) FROM event_store.es_read_all(event_store.es_head_position() - 1, 100);
SELECT event_store.es_feed_reached() = event_store.es_head_position() AS reached_is_the_newest_event;

-- es_feed_reached: the same for clients
SELECT count(*) FROM event_store.es_read_category('pq', :base, 1);
SELECT event_store.es_feed_reached() - :base AS reached_full_page;
SELECT count(*) FROM event_store.es_read_category('pq', :base, 100);
SELECT event_store.es_feed_reached() = event_store.es_head_position() AS reached_head;

-- 3. A poison event, on_error = pause: the events before it applied, then
-- retried after the backoff, then faulted at its position minus one.
BEGIN;
SELECT event_store.es_register_projection('pause', 'pj.one(event_store.es_event)', types => '{A,B}',
                                          max_attempts => 2, backoff => '1 hour',
                                          start_position => :base);
SELECT event_store.es_run_projection('pause', 10) AS applied;
SELECT state, position - :base AS checkpoint, attempts, retry_at > now() + '59 min' AS backing_off,
       error_position - :base AS error_position, error_sqlstate, error_message
  FROM event_store.es_projections WHERE name = 'pause';
-- not before its backoff
SELECT event_store.es_run_projection('pause', 10) AS applied;
SELECT attempts FROM event_store.projections WHERE name = 'pause';
-- retry now: the second attempt fails, and the projection faults
SELECT event_store.es_retry_projection('pause');
SELECT event_store.es_run_projection('pause', 10) AS applied;
SELECT state, position - :base AS checkpoint, attempts, error_position - :base AS error_position
  FROM event_store.es_projections WHERE name = 'pause';
SELECT err($$SELECT event_store.es_retry_projection('pause')$$);
SELECT event_store.es_run_projection('pause', 10) AS applied;
SELECT position - :base AS position, stream FROM pj.seen ORDER BY position;
-- the event repaired (here: the handler), resumed: it goes on from there
CREATE OR REPLACE FUNCTION pj.one(e event_store.es_event) RETURNS void
LANGUAGE sql AS $$ INSERT INTO pj.seen VALUES ('one', e.position, e.stream) $$;
SELECT event_store.es_resume_projection('pause');
SELECT event_store.es_run_projection('pause', 10) AS applied;
SELECT state, position - :base AS checkpoint, attempts FROM event_store.es_projections WHERE name = 'pause';
ROLLBACK;

-- 4. on_error = skip: exactly one dead letter, everything else applied.
BEGIN;
SELECT event_store.es_register_projection('skip', 'pj.one(event_store.es_event)', category => 'pj',
                                          max_attempts => 1, on_error => 'skip', start_position => :base);
SELECT event_store.es_run_projection('skip', 10) AS applied;
SELECT state, position = event_store.es_head_position() AS at_head, processed, dead_lettered
  FROM event_store.es_projections WHERE name = 'skip';
SELECT consumer, position - :base AS position, stream, version, type, attempts, sqlstate, message
  FROM event_store.es_dead_letters;
SELECT position - :base AS position, stream FROM pj.seen ORDER BY position;
ROLLBACK;

-- 5. A page handler that fails: the page is applied event by event up to
-- the failing one.
BEGIN;
CREATE OR REPLACE FUNCTION pj.page(events event_store.es_event[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT FROM unnest(events) e WHERE e.data ? 'poison') THEN
    RAISE EXCEPTION 'a poisoned page' USING ERRCODE = '22000';
  END IF;
  INSERT INTO pj.seen SELECT 'page', e.position, e.stream FROM unnest(events) e;
END $$;
SELECT event_store.es_register_projection('pages', 'pj.page(event_store.es_event[])', category => 'pj',
                                          max_attempts => 1, start_position => :base);
SELECT event_store.es_run_projection('pages', 10) AS applied;
SELECT state, position - :base AS checkpoint, error_position - :base AS error_position
  FROM event_store.es_projections WHERE name = 'pages';
SELECT position - :base AS position, stream FROM pj.seen ORDER BY position;
ROLLBACK;

-- 6. Rebuild: the reset handler and the rewind in one transaction; a
-- rebuild of a running rebuild is refused; from a time.
BEGIN;
SELECT event_store.es_register_projection('rb', 'pj.page(event_store.es_event[])', category => 'pq',
                                          reset_handler => 'pj.reset()', start_position => :base);
SELECT event_store.es_run_projection('rb', 10) AS applied;
SELECT count(*) AS rows_before FROM pj.seen;
SELECT event_store.es_rebuild_projection('rb', :base) - :base AS rewound_to;
SELECT count(*) AS rows_after_reset FROM pj.seen;
SELECT state, position - :base AS checkpoint, rebuild_progress < 1 AS in_progress
  FROM event_store.es_projections WHERE name = 'rb';
SELECT regexp_replace(err($$SELECT event_store.es_rebuild_projection('rb')$$), '\d+', 'N', 'g');
-- paused (or faulted), the rebuild runs no more: it may start over
SELECT event_store.es_pause_projection('rb');
SELECT event_store.es_rebuild_projection('rb', :base) - :base AS rewound_again;
SELECT state, rebuild_progress < 1 AS in_progress FROM event_store.es_projections WHERE name = 'rb';
SELECT event_store.es_run_projection('rb', 10) AS applied;
SELECT rebuild_progress FROM event_store.es_projections WHERE name = 'rb';
SELECT count(*) AS rows_rebuilt FROM pj.seen;
-- from a time: every event created at or after it, here all of them
SELECT event_store.es_rebuild_projection('rb', now() - interval '1 day') AS from_time_position;
SELECT event_store.es_position_before_time('infinity') = event_store.es_head_position() AS nothing_after_infinity;
ROLLBACK;

-- 7. A process manager: its append carries correlation and causation, in
-- the page's transaction.
BEGIN;
SELECT event_store.es_register_projection('pm', 'pj.react(event_store.es_event)', category => 'pq',
                                          start_position => :base);
SELECT event_store.es_run_projection('pm', 10) AS applied;
SELECT r.stream, r.metadata ->> 'causation_id' = e.event_id::text AS caused,
       r.metadata ->> 'correlation_id' = e.event_id::text AS correlated
  FROM event_store.events r
  JOIN event_store.events e ON e.stream = 'pq-1' AND 'pjr-' || e.version = r.stream
 ORDER BY r.stream;
ROLLBACK;
SELECT event_store.es_caused_by(e, '{"k": 1}') - 'causation_id'
  FROM (SELECT (1, 's', 1, 't', '{}', '{"correlation_id": "c-1"}', '00000000-0000-0000-0000-000000000001', 1, now())::event_store.es_event AS e) x;

-- 8. Rights: another role neither sees nor controls the projection, nor
-- runs its handler; a handler without a privilege it needs fails with 42501.
BEGIN;
SELECT event_store.es_register_projection('mine', 'pj.page(event_store.es_event[])', category => 'pq',
                                          start_position => :base);
SET LOCAL ROLE pj_other;
SELECT count(*) AS visible FROM event_store.es_projections;
SELECT err($$SELECT event_store.es_pause_projection('mine')$$);
SELECT err($$SELECT event_store.es_run_projection('mine')$$);
SELECT err($$SELECT event_store._es_call_handler('mine', 'pj.page(event_store.es_event[])', 'page', 'pj_app', '{}')$$);
SELECT err($$UPDATE event_store.projections SET state = 'paused'$$) AS updates_nothing;
RESET ROLE;
SET LOCAL ROLE pj_app;
SELECT err($$UPDATE event_store.projections SET owner = 'pj_other'$$);
SELECT err($$SELECT event_store.es_pause_projection('nosuch')$$);
SELECT err($$SELECT event_store.es_unregister_projection('nosuch')$$);
SELECT err($$SELECT event_store.es_run_projection('mine', 0)$$);
RESET ROLE;
REVOKE INSERT ON pj.seen FROM pj_app;
SET LOCAL ROLE pj_app;
SELECT event_store.es_run_projection('mine', 10) AS applied;
SELECT state, error_sqlstate, attempts FROM event_store.es_projections WHERE name = 'mine';
SELECT event_store.es_pause_projection('mine');
SELECT event_store.es_unregister_projection('mine');
SELECT count(*) AS left FROM event_store.projections;
ROLLBACK;

-- 9. A dropped handler: the projection fails with 42883, not an internal
-- error.
BEGIN;
SELECT event_store.es_register_projection('dropped', 'pj.one(event_store.es_event)', category => 'pq',
                                          max_attempts => 1, start_position => :base);
DROP FUNCTION pj.one(event_store.es_event);
SELECT event_store.es_run_projection('dropped', 10) AS applied;
SELECT state, error_sqlstate, error_message FROM event_store.es_projections WHERE name = 'dropped';
ROLLBACK;

-- 10. Found by the review: each refused with its SQLSTATE, or harmless.
BEGIN;
-- a position beyond the head
SELECT regexp_replace(err($$SELECT event_store.es_register_projection('far', 'pj.page(event_store.es_event[])', start_position => 9223372036854775807)$$), 'head is at position \d+', 'head is at position N');
SELECT event_store.es_register_projection('r10', 'pj.page(event_store.es_event[])', category => 'pq', start_position => :base);
SELECT regexp_replace(err($$SELECT event_store.es_rebuild_projection('r10', 9223372036854775000)$$), 'head is at position \d+', 'head is at position N');
-- rows written directly: a renamed projection keeps the rules of names; a
-- retry time must be finite; attempts are bounded
SELECT err($$UPDATE event_store.projections SET name = '' WHERE name = 'r10'$$);
SELECT err($$UPDATE event_store.projections SET retry_at = 'infinity' WHERE name = 'r10'$$);
SELECT err($$UPDATE event_store.projections SET attempts = 2147483647 WHERE name = 'r10'$$);
-- a temporary function, or a trigger function, is no handler
CREATE FUNCTION pg_temp.tmp_handler(e event_store.es_event) RETURNS void LANGUAGE sql AS $$ SELECT $$;
SELECT regexp_replace(err($$SELECT event_store.es_register_projection('tmp', 'pg_temp.tmp_handler(event_store.es_event)')$$), 'pg_temp_\d+', 'pg_temp_N', 'g');
CREATE FUNCTION pj.trig() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
SELECT err($$SELECT event_store.es_register_projection('trg', 'pj.page(event_store.es_event[])', reset_handler => 'pj.trig()')$$);
ROLLBACK;

-- a handler may not run or change a projection (its page holds it)
BEGIN;
CREATE FUNCTION pj.reentrant(e event_store.es_event) RETURNS void LANGUAGE sql
  AS $$ SELECT event_store.es_run_projection('re', 1) $$;
SELECT event_store.es_register_projection('re', 'pj.reentrant(event_store.es_event)', category => 'pq',
                                          max_attempts => 1, start_position => :base);
SELECT event_store.es_run_projection('re', 10) AS applied;
SELECT state, error_sqlstate, error_message FROM event_store.es_projections WHERE name = 're';
ROLLBACK;

-- a dead letter belongs to a projection of its owner: no role parks rows
-- under another's projection
BEGIN;
SELECT event_store.es_register_projection('mine2', 'pj.page(event_store.es_event[])', category => 'pq',
                                          start_position => :base);
SET LOCAL ROLE pj_other;
SELECT err($$INSERT INTO event_store.dead_letters (consumer, owner, position, stream, version, type, event_id, attempts, sqlstate, message)
             VALUES ('mine2', 'pj_other', 1, 's', 1, 't', gen_random_uuid(), 1, '22000', 'x')$$);
-- the views are security barriers: a cheap function in the caller's WHERE
-- sees no other role's row
CREATE FUNCTION pg_temp.peek(n text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001
  AS $$ BEGIN RAISE NOTICE 'saw %', n; RETURN true; END $$;
SELECT count(*) AS seen FROM event_store.es_projections WHERE pg_temp.peek(name);
ROLLBACK;

-- a projection's dead letters go with its row, however it is deleted
BEGIN;
CREATE FUNCTION pj.refuse(e event_store.es_event) RETURNS void LANGUAGE plpgsql
  AS $$ BEGIN RAISE EXCEPTION 'refused' USING ERRCODE = '22000'; END $$;
SELECT event_store.es_register_projection('dl', 'pj.refuse(event_store.es_event)', category => 'pq',
                                          max_attempts => 1, on_error => 'skip', start_position => :base);
SELECT event_store.es_run_projection('dl', 10) AS applied;
SELECT count(*) AS dead_letters FROM event_store.dead_letters WHERE consumer = 'dl';
DELETE FROM event_store.projections WHERE name = 'dl';
SELECT count(*) AS dead_letters_left FROM event_store.dead_letters WHERE consumer = 'dl';
ROLLBACK;

-- a feed read that failed got nowhere
SELECT count(*) FROM event_store.es_read_all(0, 1);
SELECT err($$SELECT count(*) FROM event_store.es_read_all(0, 0)$$);
SELECT event_store.es_feed_reached() IS NULL AS reached_after_a_failed_read;

-- skip parks an event the handler refuses, not a missing handler: that
-- faults the projection, whatever its policy
BEGIN;
SELECT event_store.es_register_projection('gone', 'pj.one(event_store.es_event)', category => 'pq',
                                          max_attempts => 1, on_error => 'skip', start_position => :base);
DROP FUNCTION pj.one(event_store.es_event);
SELECT event_store.es_run_projection('gone', 10) AS applied;
SELECT state, error_sqlstate, dead_lettered FROM event_store.es_projections WHERE name = 'gone';
ROLLBACK;

-- the attempts are the failing event's: a new failing event starts at one
BEGIN;
CREATE TABLE pj.fail_at (position bigint);
CREATE FUNCTION pj.fails(e event_store.es_event) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT FROM pj.fail_at f WHERE f.position = e.position) THEN
    RAISE EXCEPTION 'refused %', e.version USING ERRCODE = '22000';
  END IF;
END $$;
INSERT INTO pj.fail_at SELECT position FROM event_store.events WHERE stream = 'pj-1' AND version IN (2, 4);
SELECT event_store.es_register_projection('counts', 'pj.fails(event_store.es_event)', category => 'pj',
                                          max_attempts => 2, backoff => '0', start_position => :base);
SELECT event_store.es_run_projection('counts', 1) AS applied;
SELECT attempts, error_position - :base AS error_position FROM event_store.projections WHERE name = 'counts';
DELETE FROM pj.fail_at WHERE position = :base + 2;
SELECT event_store.es_run_projection('counts', 1) AS applied;
SELECT state, attempts, error_position - :base AS error_position FROM event_store.projections WHERE name = 'counts';
ROLLBACK;

RESET ROLE;
-- a projection whose owner was dropped does not break the views
BEGIN;
CREATE ROLE pj_gone;
GRANT SELECT ON event_store.events TO pj_gone;
GRANT SELECT, INSERT ON event_store.projections TO pj_gone;
GRANT USAGE ON SCHEMA pj TO pj_gone;
SET LOCAL ROLE pj_gone;
SELECT event_store.es_register_projection('orphan', 'pj.page(event_store.es_event[])', start_position => :base);
RESET ROLE;
REVOKE ALL ON event_store.events, event_store.projections FROM pj_gone;
REVOKE USAGE ON SCHEMA pj FROM pj_gone;
DROP ROLE pj_gone;
SELECT count(*) AS listed FROM event_store.es_projections;
SELECT count(*) AS stored FROM event_store.projections WHERE name = 'orphan';
ROLLBACK;

RESET ROLE;
DROP SCHEMA pj CASCADE;
REVOKE ALL ON event_store.events, event_store.projections, event_store.dead_letters,
  event_store.es_projections, event_store.es_dead_letters FROM pj_app, pj_other;
DROP ROLE pj_app, pj_other, pj_super;
