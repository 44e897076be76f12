#!/usr/bin/env bash
# Every test suite of event_store against one PostgreSQL server (scripts/test.sh
# runs this once per version of the matrix): pg_regress (test/sql,
# test/expected), isolation (test/specs), pgTAP (test/pgtap), TAP (test/t, each
# test starts its own clusters).
# Installs what is missing (as root), builds with -Wall -Werror, installs,
# starts a cluster with the extension preloaded on a private port and socket
# directory, runs the suites, stops the cluster and prints "N passed, N failed".
#
# ES_PG_MAJOR (15) and ES_PG_CONFIG pick the server; ES_LABEL prefixes every
# result line; the other options are scripts/test.sh's.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$top/scripts/lib.sh"

suites=${ES_SUITES:-package layers regress isolation pgtap tap deb}
port=${ES_TEST_PORT:-54329}

[ -f /es/pg-major ] || ES_PACKAGES+=("${ES_MONITORING_PACKAGES[@]}")
es_install_deps
# ES_SKIP_BUILD=1: test what is installed (e.g. while another run builds)
[ "${ES_SKIP_BUILD:-0}" = 1 ] || es_build_install "$top"

work=$(es_tempdir)
cleanup() {
  es_cluster_stop "$work"
  if [ "${ES_KEEP:-0}" = 1 ] || [ "$failed" -gt 0 ]; then
    es_log "test output kept in $work/out"
  else
    rm -rf "$work"
  fi
}
passed=0
failed=0
failures=()
trap cleanup EXIT

# The suites write next to their inputs: run them on a copy the cluster user owns.
es_copy_tree "$top" "$work/src"
mkdir -p "$work/out"
[ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$work/src" "$work/out"

es_cluster_start "$work" "$port"
export PGHOST="$work/sock" PGPORT="$port" PGUSER=postgres
bindir=$(es_bindir)
pgxs=$(cd "$(dirname "$("$(es_pg_config)" --pgxs)")/../.." && pwd)

label=${ES_LABEL:+$ES_LABEL }
record() {		# record NAME STATUS
  set -- "$label$1" "$2"
  if [ "$2" = ok ]; then
    passed=$((passed + 1)); printf '  ok      %s\n' "$1"
  else
    failed=$((failed + 1)); failures+=("$1"); printf '  FAILED  %s\n' "$1"
  fi
}

# pg_regress and pg_isolation_regress print one line per test.
parse_regress() {	# parse_regress SUITE LOGFILE TESTS
  local line name seen=" " t
  while IFS= read -r line; do
    # up to 15: "test name ... ok"; 16 and later print TAP: "ok 1 - name 36 ms",
    # "not ok 2 + name" (+: in a parallel group)
    if [[ $line =~ ^(test|ok|not\ ok|\ +)[[:space:]]*([0-9]+[[:space:]]+-[[:space:]]+)?([a-z0-9_]+)[[:space:]]+\.\.\.[[:space:]]+(ok|FAILED|failed) ]]; then
      name=${BASH_REMATCH[3]}
      seen="$seen$name "
      if [ "${BASH_REMATCH[4]}" = ok ]; then record "$1/$name" ok; else record "$1/$name" failed; fi
    elif [[ $line =~ ^(ok|not\ ok)[[:space:]]+[0-9]+[[:space:]]+[-+][[:space:]]+([a-z0-9_]+)([[:space:]]|$) ]]; then
      name=${BASH_REMATCH[2]}
      seen="$seen$name "
      if [ "${BASH_REMATCH[1]}" = ok ]; then record "$1/$name" ok; else record "$1/$name" failed; fi
    fi
  done < "$2"
  # a test without a result (it could not run, or has no expected output)
  # is a failure, not a test less
  for t in $3; do
    [[ $seen == *" $t "* ]] || record "$1/$t (no result)" failed
  done
}

# run_check NAME WHAT COMMAND...: a check of the tree, one result
run_check() {
  local name=$1 what=$2
  shift 2
  es_log "$what"
  if "$@" >&2; then record "$name" ok; else record "$name" failed; fi
}

run_package() {
  run_check package/metadata "package: META.json, control file, versions, debian/" \
    python3 "$work/src/test/check_package.py" "$work/src"
}

# the include and call graph of src/ (scripts/check_layers.py), on the build
run_layers() {
  run_check layers/src "layers: the include and call graph of src/" \
    python3 "$top/scripts/check_layers.py" "$top/src"
}

# run_pg_regress SUITE DRIVER INPUTDIR TESTS: pg_regress or pg_isolation_regress
run_pg_regress() {
  local suite=$1 driver=$2 inputdir=$3 tests=$4
  es_log "$suite: $tests"
  es_as_pg "$pgxs/src/test/$driver" \
    --inputdir="$inputdir" --outputdir="$work/out/$suite" --bindir="$bindir" \
    --host="$PGHOST" --port="$PGPORT" --user=postgres --dbname="es_$suite" \
    $tests > "$work/out/$suite.log" 2>&1 || true
  cat "$work/out/$suite.log" >&2
  parse_regress "$suite" "$work/out/$suite.log" "$tests"
  [ -f "$work/out/$suite/regression.diffs" ] && cat "$work/out/$suite/regression.diffs" >&2 || true
}

# The Debian package of this version (scripts/deb.sh): built and checked;
# on the host's Debian 12, also installed into a clean chroot, where the demo
# runs on the packaged files.  Not for the assertion-enabled server (the
# package is built against Debian's).
run_deb() {
  local out=$work/out/deb deb
  if [ -n "${ES_PG_CONFIG:-}" ] || [ "$(id -u)" -ne 0 ]; then
    es_log "deb: not for ES_PG_CONFIG's server, and only as root"; return 0
  fi
  es_log "deb: the package of PostgreSQL $ES_PG_MAJOR"
  if bash "$top/scripts/deb.sh" build "$out" > "$work/out/deb-build.log" 2>&1; then
    grep -E '^  (ok|FAILED) ' "$work/out/deb-build.log" >&2 || true
    record deb/build ok
  else
    cat "$work/out/deb-build.log" >&2
    record deb/build failed
    return 0
  fi
  [ -f /es/pg-major ] && return 0	# a chroot makes no chroot
  deb=$(ls "$out"/postgresql-"$ES_PG_MAJOR"-event-store_*.deb 2>/dev/null | head -n 1)
  if [ -n "$deb" ] && bash "$top/scripts/deb.sh" install-test "$deb" > "$work/out/deb-install.log" 2>&1; then
    grep -E '^  (ok|FAILED) |took' "$work/out/deb-install.log" >&2 || true
    record deb/install-in-clean-chroot ok
  else
    cat "$work/out/deb-install.log" >&2
    record deb/install-in-clean-chroot failed
  fi
}

run_regress() {
  run_pg_regress regress regress/pg_regress "$work/src/test" "$(make -s -C "$top" print-REGRESS)"
}

run_isolation() {
  run_pg_regress isolation isolation/pg_isolation_regress "$work/src/test" \
    "$(make -s -C "$top" print-ISOLATION)"
}

run_pgtap() {
  local f name
  es_log "pgTAP: test/pgtap"
  for f in "$work"/src/test/pgtap/*.sql; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .sql)
    # every file gets a fresh database with the extension and pgTAP
    es_as_pg psql -X -q -v ON_ERROR_STOP=1 -d postgres \
      -c "DROP DATABASE IF EXISTS es_pgtap" -c "CREATE DATABASE es_pgtap" >/dev/null
    es_as_pg psql -X -q -v ON_ERROR_STOP=1 -d es_pgtap \
      -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION event_store" >/dev/null
    if es_as_pg pg_prove --ext .sql -h "$PGHOST" -p "$PGPORT" -U postgres -d es_pgtap \
         "$f" > "$work/out/pgtap-$name.log" 2>&1; then
      record "pgtap/$name" ok
    else
      cat "$work/out/pgtap-$name.log" >&2
      record "pgtap/$name" failed
    fi
  done
  es_as_pg psql -X -q -d postgres -c "DROP DATABASE IF EXISTS es_pgtap" >/dev/null || true
}

run_tap() {
  local f name files
  files=${ES_TAP_TESTS:-$(cd "$work/src" && ls test/t/*.pl 2>/dev/null || true)}
  es_log "TAP: $files"
  es_log_settings > "$work/out/tap.conf"
  for f in $files; do
    name=$(basename "$f" .pl)
    if es_as_pg env TESTDIR="$work/out/tap-$name" PG_REGRESS="$pgxs/src/test/regress/pg_regress" \
         PGHOST= PGPORT= TEMP_CONFIG="$work/out/tap.conf" \
         bash -c "mkdir -p '$work/out/tap-$name' && cd '$work/src' && \
                  prove -v -I '$pgxs/src/test/perl' -I test/t '$f'" \
         > "$work/out/tap-$name.log" 2>&1; then
      grep -E '^# (took|wake|notifications|acknowledged|summary)' "$work/out/tap-$name.log" >&2 || true
      record "tap/$name" ok
    else
      cat "$work/out/tap-$name.log" >&2
      for log in "$work/out/tap-$name"/tmp_check/log/*.log; do
        [ -e "$log" ] && { echo "--- $log" >&2; tail -n 30 "$log" >&2; }
      done
      record "tap/$name" failed
    fi
  done
}

for suite in $suites; do
  "run_$suite"
done

# Whatever the suites did, no server crashed, PANICked or failed an internal
# check: the test cluster's log and every TAP cluster's.
es_log "server logs: no crash, no PANIC, no XX000"
if es_check_logs "$work/server.log" "$work"/out/tap-*/tmp_check/log/*.log; then
  record logs/no-crash-panic-xx000 ok
else
  record logs/no-crash-panic-xx000 failed
fi

# stop the cluster before the summary, which must be the last line
trap - EXIT
cleanup
echo
[ ${#failures[@]} -gt 0 ] && printf 'failed: %s\n' "${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
