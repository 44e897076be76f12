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
# test/t/023_monitoring.pl's exporter and promtool (monitoring/): installed by
# the test runs on the host only (scripts/test.sh, scripts/suites.sh), not by
# the demo; the chroots of 17 and 18 (/es/pg-major) go without, and 023
# skips there
ES_MONITORING_PACKAGES=(prometheus-postgres-exporter prometheus)

es_log() { printf '==> %s\n' "$*" >&2; }

# Install the Debian packages that are missing (needs root).
es_install_packages() {
  local missing=() p
  for p in "$@"; do
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
  es_no_monitoring_services "${missing[@]}"
}

# The monitoring packages start their daemons where systemd runs (a
# Prometheus server on :9090, the exporter on :9187): the tests start their
# own exporter, so the services of packages just installed are turned off.
es_no_monitoring_services() {
  local p
  [ -d /run/systemd/system ] || return 0
  for p in "$@"; do
    case " ${ES_MONITORING_PACKAGES[*]} " in
      *" $p "*) systemctl disable --now "$p.service" >/dev/null 2>&1 || true ;;
    esac
  done
}

# what the suites need
es_install_deps() { es_install_packages "${ES_PACKAGES[@]}"; }

# ES_PG_CONFIG names another server's pg_config (the assertion-enabled build)
es_pg_config() { echo "${ES_PG_CONFIG:-/usr/lib/postgresql/$ES_PG_MAJOR/bin/pg_config}"; }
es_bindir() { "$(es_pg_config)" --bindir; }

# Build with warnings as errors and install into the server's directories.
es_build_install() {
  local top=$1
  es_log "building event_store (-Wall -Werror)"
  make -C "$top" -s clean >/dev/null
  make -C "$top" -s ES_WERROR=1 PG_CONFIG="$(es_pg_config)"
  # (esctl too; its link in /usr/local/bin is the Debian server's, not that
  # of an ES_PG_CONFIG build: docs/esctl.md)
  make -C "$top" -s install PG_CONFIG="$(es_pg_config)" ${ES_PG_CONFIG:+ES_LINKDIR=} >/dev/null
}

# es_copy_tree SRC DST: the source tree SRC into DST (made the same), without
# .git and what a build leaves
es_copy_tree() {
  mkdir -p "$2"
  rsync -a --delete --exclude .git --exclude '*.o' --exclude '*.so' --exclude '*.bc' "$1/" "$2/"
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

# ---------------------------------------------------------------------------
# The test matrix (scripts/test.sh): PostgreSQL 15 on the host (Debian 12),
# 17 and 18 in chroots made by debootstrap from Debian's own packages (trixie,
# sid), and PostgreSQL 15 built with assertions from Debian's source package.
# All of it is kept in ES_CACHE between runs; delete a folder to remake it.
ES_CACHE=${ES_CACHE:-/var/cache/event_store-test}
ES_MIRROR=${ES_MIRROR:-http://deb.debian.org/debian}

# the Debian release whose own packages give PostgreSQL MAJOR
es_suite_of() {
  case $1 in
    15) echo bookworm ;;
    17) echo trixie ;;
    18) echo sid ;;
    *) es_log "no Debian release is known to package PostgreSQL $1"; return 1 ;;
  esac
}

# es_host_runs MAJOR: this machine runs MAJOR itself: its own Debian release
# packages it, or it is the chroot made for it (/es/pg-major; sid's
# os-release names the next release, not sid)
es_host_runs() {
  local codename
  [ "$(cat /es/pg-major 2>/dev/null)" = "$1" ] && return 0
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ "$codename" = "$(es_suite_of "$1")" ]
}

es_chroot_mount() {	# es_chroot_mount DIR: /proc, /dev and /dev/shm inside
  local m
  for m in proc dev dev/shm; do
    mountpoint -q "$1/$m" || mount --bind "/$m" "$1/$m"
  done
}

es_chroot_umount() {
  local m
  for m in dev/shm dev proc; do
    if mountpoint -q "$1/$m"; then umount "$1/$m" 2>/dev/null || umount -l "$1/$m"; fi
  done
}

# es_chroot_no_services DIR: no service starts inside (a package's cluster
# would take port 5432)
es_chroot_no_services() {
  printf '#!/bin/sh\nexit 101\n' > "$1/usr/sbin/policy-rc.d"
  chmod 755 "$1/usr/sbin/policy-rc.d"
}

# es_chroot DIR COMMAND...: run COMMAND inside the chroot DIR with a clean
# environment, but for the ES_* and CI variables of this one
es_chroot() {
  local dir=$1 v envs=()
  shift
  for v in $(compgen -v | grep -E '^(ES_[A-Z_]+|CI)$' || true); do
    case $v in ES_CACHE|ES_PACKAGES|ES_PG_CONFIG|ES_MIRROR|ES_PG_MAJOR) continue ;; esac
    envs+=("$v=${!v}")
  done
  chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "${envs[@]}" "$@"
}

# es_chroot_make MAJOR: the chroot of PostgreSQL MAJOR, made once (debootstrap
# --variant=minbase, then the packages the suites need); prints its folder.
# A folder is ready when .es-ready is in it: an interrupted one is made anew.
es_chroot_make() {
  local major=$1 suite dir started lib
  suite=$(es_suite_of "$major")
  dir=$ES_CACHE/$suite
  lib=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh
  if [ ! -f "$dir/.es-ready" ]; then
    started=$(date +%s)
    [ "$(id -u)" -eq 0 ] || { es_log "making a chroot needs root"; return 1; }
    es_install_packages debootstrap
    if [ -d "$dir" ]; then es_chroot_umount "$dir"; rm -rf --one-file-system "$dir"; fi
    mkdir -p "$ES_CACHE"
    es_log "debootstrap --variant=minbase $suite $dir"
    debootstrap --variant=minbase "$suite" "$dir" "$ES_MIRROR" > "$ES_CACHE/$suite.log" 2>&1 || {
      tail -n 20 "$ES_CACHE/$suite.log" >&2; return 1; }
    es_chroot_no_services "$dir"
    # sid's Release file is a fixed snapshot whose Valid-Until has passed
    if [ "$suite" = sid ]; then
      echo 'Acquire::Check-Valid-Until "false";' > "$dir/etc/apt/apt.conf.d/99event-store"
    fi
    es_chroot_mount "$dir"
    mkdir -p "$dir/es"
    echo "$major" > "$dir/es/pg-major"
    cp "$lib" "$dir/es/lib.sh"
    es_chroot "$dir" env ES_PG_MAJOR="$major" bash -c 'source /es/lib.sh && es_install_deps' \
      >> "$ES_CACHE/$suite.log" 2>&1 || { tail -n 20 "$ES_CACHE/$suite.log" >&2; return 1; }
    touch "$dir/.es-ready"
    es_log "chroot $dir made in $(( $(date +%s) - started )) s"
  fi
  es_chroot_mount "$dir"
  echo "$dir"
}

# es_cassert_build MAJOR: PostgreSQL MAJOR from Debian's source package,
# configured --enable-cassert --enable-debug, installed in
# ES_CACHE/pgMAJOR-cassert with pg_isolation_regress, the TAP modules, the
# contrib modules the tests use and pgTAP; prints its pg_config.
es_cassert_build() {
  local major=$1 prefix build apt srcdir started codename
  prefix=$ES_CACHE/pg$major-cassert
  if [ ! -f "$prefix/.es-ready" ]; then
    started=$(date +%s)
    [ "$(id -u)" -eq 0 ] || { es_log "building the server needs root (apt-get source)"; return 1; }
    es_install_packages dpkg-dev gcc make libipc-run-perl zlib1g-dev "postgresql-$major-pgtap"
    build=$ES_CACHE/pg$major-cassert.build
    apt=$ES_CACHE/apt
    rm -rf "$prefix" "$build"
    mkdir -p "$build" "$apt/lists/partial" "$apt/none"
    # Debian's source packages, through a list of our own: the host's apt
    # sources are left as they are
    codename=$(es_suite_of "$major")
    {
      echo "deb-src $ES_MIRROR $codename main"
      echo "deb-src $ES_MIRROR $codename-updates main"
    } > "$apt/sources.list"
    local aptopts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=$apt/none"
                   -o "Dir::State::Lists=$apt/lists")
    es_log "apt-get source postgresql-$major (deb-src of $codename)"
    apt-get "${aptopts[@]}" update -qq
    (cd "$build" && apt-get "${aptopts[@]}" source --download-only "postgresql-$major" > source.log 2>&1) || {
      tail -n 20 "$build/source.log" >&2; return 1; }
    # The upstream tarball of the source package, without Debian's patches:
    # they fix the library directory at /usr/lib/postgresql/MAJOR/lib whatever
    # the prefix, and the install would overwrite the host's server.
    tar -C "$build" -xf "$build"/postgresql-"$major"_*.orig.tar.*
    srcdir=$(find "$build" -mindepth 1 -maxdepth 1 -type d -name "postgresql-$major*" | head -n 1)
    es_log "building $(basename "$srcdir") --enable-cassert --enable-debug into $prefix"
    # (one step after the other: set -e does not apply in a list with ||)
    (cd "$srcdir" &&
      ./configure --prefix="$prefix" --enable-cassert --enable-debug --enable-tap-tests \
        --without-readline --without-icu --with-zlib > "$build/configure.log" 2>&1 &&
      ! grep -q /usr/lib/postgresql src/Makefile.global &&
      make -j"$(nproc)" > "$build/make.log" 2>&1 &&
      make install > "$build/install.log" 2>&1 &&
      make -C src/test/isolation install >> "$build/install.log" 2>&1 &&
      make -C contrib/amcheck install >> "$build/install.log" 2>&1 &&
      make -C contrib/dblink install >> "$build/install.log" 2>&1 &&
      make -C contrib/test_decoding install >> "$build/install.log" 2>&1) || {
      tail -n 30 "$build"/*.log >&2; return 1; }
    cp /usr/share/postgresql/"$major"/extension/pgtap* "$("$prefix/bin/pg_config" --sharedir)/extension/"
    rm -rf "$build"
    touch "$prefix/.es-ready"
    es_log "PostgreSQL $major with assertions built in $(( $(date +%s) - started )) s"
  fi
  echo "$prefix/bin/pg_config"
}
