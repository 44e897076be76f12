# shellcheck shell=bash
# Shared by scripts/demo.sh and scripts/test.sh: install what is missing,
# build, start and stop a throwaway cluster with event_store preloaded.

set -euo pipefail

ES_PG_MAJOR=${ES_PG_MAJOR:-15}
ES_PACKAGES=(
  "postgresql-$ES_PG_MAJOR" "postgresql-server-dev-$ES_PG_MAJOR"
  "postgresql-$ES_PG_MAJOR-pgtap" libtap-parser-sourcehandler-pgtap-perl
  libipc-run-perl libdbd-pg-perl make gcc rsync python3 python3-psycopg
)

es_log() { printf '==> %s\n' "$*" >&2; }

# Install the Debian packages that are missing (needs root).
es_install_deps() {
  local missing=() p
  for p in "${ES_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    es_log "missing packages: ${missing[*]} (run as root to install them)"; return 1
  fi
  es_log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

es_pg_config() { echo "/usr/lib/postgresql/$ES_PG_MAJOR/bin/pg_config"; }
es_bindir() { "$(es_pg_config)" --bindir; }

# Build with warnings as errors and install into the server's directories.
es_build_install() {
  local top=$1
  es_log "building event_store (-Wall -Werror)"
  make -C "$top" -s clean >/dev/null
  make -C "$top" -s ES_WERROR=1 PG_CONFIG="$(es_pg_config)"
  make -C "$top" -s install PG_CONFIG="$(es_pg_config)" >/dev/null
}

# initdb refuses to run as root: run cluster commands as postgres then.
es_as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- env PATH="$(es_bindir):$PATH" "$@"
  else
    env PATH="$(es_bindir):$PATH" "$@"
  fi
}

# A fresh directory the cluster user owns.
es_tempdir() {
  local d
  d=$(mktemp -d "${TMPDIR:-/tmp}/event_store.XXXXXX")
  chmod 755 "$d"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$d"
  echo "$d"
}

# What every test cluster logs: the SQLSTATE of each message, so that the
# suite can look for XX000 (see es_check_logs).
es_log_settings() {
  echo "log_line_prefix = '%m [%p] %e '"
}

# es_check_logs FILE...: a server must never crash (a process terminated by
# a signal other than the SIGKILL the crash tests send), PANIC, or fail an
# internal check (SQLSTATE XX000) whatever a test does.  Prints the lines.
es_check_logs() {
  local bad
  bad=$(grep -HE 'terminated by signal ([0-8]|1[0-9]|[2-9][0-9])\b|PANIC|XX000 (ERROR|FATAL|PANIC):|was terminated by exception' "$@" 2>/dev/null || true)
  [ -z "$bad" ] && return 0
  printf '%s\n' "$bad" | head -n 50 >&2
  return 1
}

# es_cluster_start DIR PORT: initdb in DIR/data, socket in DIR/sock.
es_cluster_start() {
  local dir=$1 port=$2
  es_as_pg mkdir -p "$dir/sock"
  es_as_pg initdb -D "$dir/data" -A trust -U postgres --no-sync >/dev/null
  es_as_pg tee -a "$dir/data/postgresql.conf" >/dev/null <<CONF
shared_preload_libraries = 'event_store'
port = $port
listen_addresses = ''
unix_socket_directories = '$dir/sock'
max_prepared_transactions = 10
max_worker_processes = 16
fsync = on
log_min_messages = warning
$(es_log_settings)
CONF
  es_log "starting a throwaway cluster in $dir (port $port)"
  es_as_pg pg_ctl -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
}

es_cluster_stop() {
  local dir=$1
  [ -f "$dir/data/postmaster.pid" ] || return 0
  es_log "stopping the cluster in $dir"
  es_as_pg pg_ctl -D "$dir/data" -m fast -w stop >/dev/null || true
}
