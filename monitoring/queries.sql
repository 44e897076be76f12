-- event_store's metrics as plain SQL, for exporters other than
-- prometheus-postgres-exporter (sql_exporter, telegraf's postgresql_extensible,
-- a cron job...).  The same two queries as postgres_exporter.yml, whose
-- namespaces name the series <namespace>_<column>: event_store_stats_events,
-- event_store_consumer_lag_positions, ...; docs/operations.md ("Metrics and
-- alerts") says what each column means.  Run both in every database that has
-- the extension, as a role granted pg_monitor.
--
-- Labels: database (both), kind and name (event_store_consumer).
-- Counters (only grow, but for a server restart or es_stats_reset()):
-- transactions, events, bytes, rolled_back, conflicts, idempotent_retries,
-- notifications, notifier_start_failures, erasures.  Everything else is a
-- gauge; NULL means unknown (a standby).

-- event_store_stats: one row per database
SELECT database,
       transactions, events, bytes, rolled_back, conflicts, idempotent_retries,
       notifications, notifier_start_failures, erasures,
       notifier_running::integer AS notifier_running,
       head,
       coalesce(oldest_xact_seconds, 0) AS oldest_xact_seconds,
       extract(epoch FROM stats_reset) AS reset_timestamp_seconds
  FROM event_store.es_stats();

-- event_store_consumer: one row per checkpoint consumer and per projection
SELECT current_database() AS database, kind, name,
       faulted,
       (state IS NOT DISTINCT FROM 'paused')::integer AS paused,
       position, head, lag_positions, lag_seconds, seconds_since_save,
       processed, dead_lettered, attempts,
       rebuilding, rebuild_progress
  FROM event_store.es_consumer_metrics;
