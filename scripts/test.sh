#!/usr/bin/env bash
# Every test suite of event_store on every PostgreSQL it supports: the matrix.
#
#   15          Debian 12's own server, on the host
#   17, 18      Debian's packages of trixie and sid, in chroots that debootstrap
#               makes on the first run and later runs reuse (kept in ES_CACHE,
#               /var/cache/event_store-test by default)
#   15-cassert  PostgreSQL 15 built from Debian's source package with
#               --enable-cassert --enable-debug (kept in ES_CACHE too)
#
# For each, scripts/suites.sh builds the extension with -Wall -Werror against
# that server, starts a throwaway cluster and runs every suite; the last line
# counts all versions: "N passed, N failed".  Runs as root on Debian 12 (it
# installs what is missing); traffic on private ports and sockets only.
#
#   bash scripts/test.sh                      # the whole matrix (CI)
#   ES_PG_MAJORS="15" bash scripts/test.sh    # some versions only
#   ES_SUITES="regress isolation" bash scripts/test.sh
#   ES_TAP_TESTS="test/t/002_notify.pl" bash scripts/test.sh
# ES_TEST_PORT (default 54329) picks the port, ES_KEEP=1 keeps the output,
# ES_SKIP_BUILD=1 tests what is installed (the host's versions only).
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$top/scripts/lib.sh"

majors=${ES_PG_MAJORS:-15 17 18 15-cassert}
logs=$(mktemp -d "${TMPDIR:-/tmp}/event_store-matrix.XXXXXX")
chmod 755 "$logs"
# test/t/004_dump.pl keeps the host's dump here; the chroots' runs restore it
dumps=$logs/dumps
mkdir -p "$dumps"
chmod 777 "$dumps"
total_passed=0
total_failed=0
summary=()
failures=()
started=$(date +%s)

# run_one LABEL COMMAND...: one version's suites, its lines prefixed by LABEL;
# its "N passed, N failed" is added to the totals (no such line: 1 failure)
run_one() {
  local label=$1 t0 line p f
  shift
  t0=$(date +%s)
  es_log "PostgreSQL $label"
  set +e
  ES_LABEL=$label "$@" > "$logs/$label.log" 2>&1 &
  local pid=$!
  tail -n +1 --pid=$pid -f "$logs/$label.log"
  wait $pid
  set -e
  line=$(tail -n 1 "$logs/$label.log")
  if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    p=${BASH_REMATCH[1]}; f=${BASH_REMATCH[2]}
  else
    p=0; f=1
    printf '  FAILED  %s (did not complete)\n' "$label"
  fi
  total_passed=$((total_passed + p))
  total_failed=$((total_failed + f))
  summary+=("$(printf '%-11s %3d passed, %d failed, %4d s' "$label" "$p" "$f" $(( $(date +%s) - t0 )))")
  [ "$f" -gt 0 ] && failures+=("$(grep -E '^failed: ' "$logs/$label.log" | sed 's/^failed: //' || echo "$label: see above")")
  return 0
}

# one version in the chroot of its Debian release, on a copy of the tree
run_chroot() {
  local major=$1 dir
  dir=$(es_chroot_make "$major") || return 1
  es_copy_tree "$top" "$dir/es/src"
  cp "$top/scripts/lib.sh" "$dir/es/lib.sh"
  # the dump an earlier version of the matrix made, to restore on this one
  rm -rf "$dir/es/dumps-in"
  cp -r "$dumps" "$dir/es/dumps-in"
  local ES_DUMP_IN=/es/dumps-in ES_DUMP_REQUIRE=0
  compgen -G "$dumps/*.dump" >/dev/null && ES_DUMP_REQUIRE=1
  es_chroot "$dir" env ES_PG_MAJOR="$major" ES_SKIP_BUILD=0 bash /es/src/scripts/suites.sh
}

# the assertion-enabled server, on a copy of the tree (the host's build of
# the extension is left alone)
run_cassert() {
  local major=$1 pgc copy
  pgc=$(es_cassert_build "$major") || return 1
  copy=$ES_CACHE/src-cassert
  es_copy_tree "$top" "$copy"
  ES_PG_MAJOR=$major ES_PG_CONFIG=$pgc ES_SKIP_BUILD=0 bash "$copy/scripts/suites.sh"
}

# What the versions need is made first, all at once (the chroots mostly wait
# on the network and dpkg, the assertion-enabled build on the CPU), before any
# suite runs: no test runs beside a build.  The host's packages come first,
# one apt at a time.
prepare() {
  local m pids=() labels=() i rc=0 t0
  t0=$(date +%s)
  es_install_packages "${ES_PACKAGES[@]}" "${ES_MONITORING_PACKAGES[@]}" debootstrap dpkg-dev zlib1g-dev
  if [[ " ${ES_SUITES:-deb} " == *" deb "* ]] && [[ " $majors " == *" 15 "* ]]; then
    bash "$top/scripts/deb.sh" prepare > "$logs/prepare-deb.log" 2>&1 &
    pids+=($!); labels+=(deb)
  fi
  for m in $majors; do
    case $m in
      *-cassert) es_cassert_build "${m%-cassert}" > "$logs/prepare-$m.log" 2>&1 & ;;
      *) es_host_runs "$m" && continue
         es_chroot_make "$m" > "$logs/prepare-$m.log" 2>&1 & ;;
    esac
    pids+=($!); labels+=("$m")
  done
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      es_log "preparing ${labels[$i]} failed:"; cat "$logs/prepare-${labels[$i]}.log" >&2; rc=1
    fi
  done
  [ ${#pids[@]} -gt 0 ] && es_log "prepared ${labels[*]} in $(( $(date +%s) - t0 )) s"
  return $rc
}
prepare || true		# a version that could not be prepared fails below

for m in $majors; do
  case $m in
    *-cassert) run_one "$m" run_cassert "${m%-cassert}" ;;
    *)
      if es_host_runs "$m"; then
        run_one "$m" env ES_PG_MAJOR="$m" ES_DUMP_OUT="$dumps" bash "$top/scripts/suites.sh"
      else
        run_one "$m" run_chroot "$m"
      fi ;;
  esac
done
rm -rf "$logs"

echo
echo "matrix ($(( $(date +%s) - started )) s):"
printf '  %s\n' "${summary[@]}"
[ ${#failures[@]} -gt 0 ] && printf 'failed: %s\n' "${failures[@]}"
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
