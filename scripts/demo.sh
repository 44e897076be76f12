#!/usr/bin/env bash
# The event_store demo: installs what is missing, builds, starts a throwaway
# cluster with the extension preloaded, tells a short story (an order placed,
# a stale write refused, the stream read back, a projection following the
# feed, a listener woken), and stops the cluster.
#
# ES_DEMO_INSTALLED=1: the extension installed already (the Debian package,
# postgresql-MAJOR-event-store, with the server it depends on): nothing is
# built or installed, the demo runs on those files.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$top/scripts/lib.sh"

port=${ES_DEMO_PORT:-54339}

# The installed server and extension, or a clear message.
check_installed() {
  local pgc control
  pgc=$(es_pg_config)
  [ -x "$pgc" ] || { es_log "PostgreSQL $ES_PG_MAJOR is not installed ($pgc is missing)"; exit 1; }
  control=$("$pgc" --sharedir)/extension/event_store.control
  if [ ! -f "$control" ]; then
    es_log "$control is missing: install postgresql-$ES_PG_MAJOR-event-store first (README.md, \"Install from the Debian package\")"
    exit 1
  fi
  es_log "using the installed event_store ($control)"
}

if [ "${ES_DEMO_INSTALLED:-0}" = 1 ]; then
  check_installed
else
  es_install_deps
  es_build_install "$top"
fi
work=$(es_tempdir)
trap 'es_cluster_stop "$work"; rm -rf "$work"' EXIT
es_cluster_start "$work" "$port"

sql() { es_as_pg psql -X -q -h "$work/sock" -p "$port" -d postgres -v ON_ERROR_STOP=1 "$@"; }
say() {
  if [ -t 1 ]; then printf '\n\033[1m%s\033[0m\n' "$*"; else printf '\n== %s\n' "$*"; fi
}

say "CREATE EXTENSION event_store"
sql -c "CREATE EXTENSION event_store"

say "A listener subscribes to es_events (it prints what it received in a moment)"
es_as_pg psql -X -q -h "$work/sock" -p "$port" -d postgres \
  -c "LISTEN es_events" -c "SELECT pg_sleep(2)" > "$work/listener.out" 2>&1 &
listener=$!
# wait until the LISTEN is registered
for _ in $(seq 50); do
  [ "$(sql -At -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(2)%' AND pid <> pg_backend_pid()")" = 1 ] && break
  sleep 0.1
done

say "1. Place order-42: expected version 0 (the stream must be new)"
sql -c "SELECT * FROM event_store.es_append('order-42', 0,
  '[{\"type\": \"OrderPlaced\", \"data\": {\"total\": 99.98}, \"metadata\": {\"correlation_id\": \"req-1\"}},
    {\"type\": \"ItemAdded\", \"data\": {\"sku\": \"A-1\", \"qty\": 2}}]')"

say "2. Another writer still believes the order is new: refused with SQLSTATE V0001"
sql -v ON_ERROR_STOP=0 -v VERBOSITY=default \
  -c "SELECT * FROM event_store.es_append('order-42', 0, 'OrderCancelled', '{}')" \
  -c '\echo SQLSTATE :LAST_ERROR_SQLSTATE' || true

say "3. It reads the stream again and appends at version 2"
sql -c "SELECT event_store.es_stream_version('order-42')" \
    -c "SELECT * FROM event_store.es_append('order-42', 2, 'OrderPaid', '{\"amount\": 99.98}')"

say "4. A plain INSERT is numbered like es_append"
sql -c "INSERT INTO event_store.events (stream, type, data)
        VALUES ('order-42', 'OrderShipped', '{\"carrier\": \"post\"}') RETURNING position, version"

say "5. Read order-42 back to rebuild the aggregate"
sql -c "SELECT position, version, type, data, metadata FROM event_store.es_read_stream('order-42')"

say "6. A projection follows the gap-safe feed from its checkpoint"
sql -c "SELECT position, stream, version, type FROM event_store.es_read_all(event_store.es_checkpoint_get('demo_view'), 100)" \
    -c "SELECT event_store.es_checkpoint_save('demo_view', event_store.es_head_position()) AS checkpoint" \
    -c "SELECT count(*) AS unread FROM event_store.es_read_all(event_store.es_checkpoint_get('demo_view'))"

say "7. The listener was woken (one notification can announce several commits)"
wait "$listener" || true
grep -i notification "$work/listener.out" || { echo "no notification received"; exit 1; }

say "Done; stopping the throwaway cluster."
