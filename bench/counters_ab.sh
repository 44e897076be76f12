#!/usr/bin/env bash
# The cost of the counters of es_stats() (issue 17) on the append path: an
# A/B of two builds in instructions per event (callgrind), the method of
# bench/instructions made smaller.  "base" is a commit (HEAD by default),
# "new" another (ES_AB_NEW) or the working tree as it is (the default).
# Neither build is installed on the host: both are built and installed, one
# after the other, inside the chroot of
# PostgreSQL 17 that scripts/test.sh keeps (scripts/lib.sh, es_chroot_make),
# where everything happens under /es-bench-h17 (removed at the end).
#
#   sudo bash bench/counters_ab.sh              # base = HEAD, new = working tree
#   sudo ES_AB_BASE=51413cb ES_AB_NEW=0ead5ca bash bench/counters_ab.sh
#                     # the figures of bench/README.md: before and with the counters
#
# Runs as root; refuses while a process runs inside the chroot (the test
# matrix).  Variables: ES_AB_BASE (HEAD), ES_AB_NEW (none: the working
# tree), ES_AB_PORT (54391), ES_AB_STREAMS (20000), ES_AB_ROUNDS (2: each measurement twice, to show it is stable),
# ES_AB_KEEP=1 keeps /es-bench-h17 (its callgrind files) in the chroot.
# The chroot is left with valgrind and the new build installed (the matrix
# builds and installs its own copy before each run).
#
# For each build: make && make install; initdb with shared_preload_libraries
# = 'event_store' and autovacuum = off; CREATE EXTENSION; ES_AB_STREAMS
# streams created (bench_preload, bench/sql/setup_es.sql), VACUUM ANALYZE,
# each appended to once more (one transaction each: streams at version 2,
# dead row versions in the streams table as under load), REINDEX of the
# events table, CHECKPOINT; that data directory is copied before every run.
# A run is `postgres --single` under callgrind (Ir only, no cache simulation)
# with N PREPAREd calls, each its own transaction, call i to stream
# s-<i * 7919 mod streams> at version 2 (synchronous_commit off):
#   W1e     SELECT event_store.es_append($1, 2, 'Deposited', $4::jsonb, $5::jsonb)
#   W2-10   SELECT event_store.es_append($1, 2, $3::jsonb), 10 events
#   INSERT  INSERT INTO event_store.events (stream, type, data, metadata)
#           VALUES ($1, 'Deposited', $2, $3), one row (numbered by the trigger)
# Per event = (Ir(N2) - Ir(N1)) / (N2 - N1) / events per call; ratio =
# base / new (1.00: the changes cost nothing; the target is >= 0.98).
# 0ead5ca (the counters' commit) also adds a BRIN index on events.created_at, maintained by
# every append: a third variant, "nobrin", runs the new build on a data
# directory where that index was dropped before the preload, which leaves
# the counters (and the rest of the C changes) as the only difference.  The
# inclusive Ir of es_stats_pending, es_register_release, es_stats_publish
# and es_publish_lower_bound (callgrind_annotate --inclusive=yes), per event
# the same way, for base and new.
set -euo pipefail

if [ "${1:-}" != --inner ]; then
  # ---- on the host ---------------------------------------------------------
  top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  # shellcheck source=scripts/lib.sh
  source "$top/scripts/lib.sh"
  [ "$(id -u)" -eq 0 ] || { es_log "run as root (chroot)"; exit 1; }
  dir=$(es_chroot_make 17)
  for p in /proc/[0-9]*; do
    if [ "$(readlink "$p/root" 2>/dev/null)" = "$dir" ]; then
      es_log "a process runs in $dir (pid ${p#/proc/}): the matrix? try later"; exit 1
    fi
  done
  w=$dir/es-bench-h17
  rm -rf "$w"
  mkdir -p "$w/base" "$w/new"
  git -C "$top" archive "${ES_AB_BASE:-HEAD}" | tar -x -C "$w/base"
  if [ -n "${ES_AB_NEW:-}" ]; then
    git -C "$top" archive "$ES_AB_NEW" | tar -x -C "$w/new"
    new_name=$(git -C "$top" rev-parse --short "$ES_AB_NEW")
  else
    es_copy_tree "$top" "$w/new"
    new_name="the working tree"
  fi
  cp "${BASH_SOURCE[0]}" "$w/counters_ab.sh"
  es_chroot "$dir" bash -c 'dpkg -s valgrind >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends valgrind >/dev/null; }'
  rc=0
  es_chroot "$dir" env ES_AB_PORT="${ES_AB_PORT:-54391}" ES_AB_STREAMS="${ES_AB_STREAMS:-20000}" \
    ES_AB_ROUNDS="${ES_AB_ROUNDS:-2}" ES_AB_BASE_NAME="$(git -C "$top" rev-parse --short "${ES_AB_BASE:-HEAD}")" \
    ES_AB_NEW_NAME="$new_name" \
    bash /es-bench-h17/counters_ab.sh --inner || rc=$?
  [ "${ES_AB_KEEP:-0}" = 1 ] || rm -rf "$w"
  exit $rc
fi

# ---- inside the chroot -------------------------------------------------------
w=/es-bench-h17
# shellcheck disable=SC2034  # read by lib.sh
ES_PG_MAJOR=17
# shellcheck source=scripts/lib.sh
source "$w/new/scripts/lib.sh"
pgc=$(es_pg_config)
port=$ES_AB_PORT streams=$ES_AB_STREAMS rounds=$ES_AB_ROUNDS
work=$w/work
mkdir -p "$work"
chown postgres "$work"
trap 'for b in base new nobrin; do es_cluster_stop "$work/$b" 2>/dev/null; done' EXIT

psql_d() { local db=$1; shift; es_as_pg psql -X -q -At -h "$cl/sock" -p "$port" -d "$db" -v ON_ERROR_STOP=1 "$@"; }
q() { printf "'%s'" "${1//\'/\'\'}"; }	# a SQL literal

for b in base new; do
  es_log "building $b"
  make -C "$w/$b" -s clean >/dev/null
  make -C "$w/$b" -s PG_CONFIG="$pgc" >/dev/null
done

# src VARIANT: the build a variant runs (nobrin: new's, on its own data)
src() { case $1 in nobrin) echo new ;; *) echo "$1" ;; esac; }

# the data directory of variant $1 ($work/$1/data.orig)
prepare() {
  local v=$1 b i
  b=$(src "$v") cl=$work/$v
  make -C "$w/$b" -s install PG_CONFIG="$pgc" >/dev/null
  mkdir -p "$cl"; chown postgres "$cl"
  es_cluster_start "$cl" "$port"
  echo "autovacuum = off" | es_as_pg tee -a "$cl/data/postgresql.conf" >/dev/null
  es_as_pg pg_ctl -D "$cl/data" -w restart >/dev/null
  psql_d postgres -c "CREATE DATABASE es"
  psql_d es -f "$w/base/bench/sql/common.sql" >/dev/null
  psql_d es -f "$w/base/bench/sql/setup_es.sql" >/dev/null
  # the new tree's other change on the append path: a BRIN index
  [ "$v" = nobrin ] && psql_d es -c "DROP INDEX event_store.events_created_at"
  psql_d es -c "SELECT bench_preload('s-', 0, $((streams - 1)))" -c 'VACUUM ANALYZE' >/dev/null
  data=$(psql_d es -c 'SELECT bench_data()')
  meta=$(psql_d es -c 'SELECT bench_meta()')
  for ((i = 0; i < streams; i++)); do
    echo "SELECT event_store.es_append('s-$i', 1, 'Deposited', bench_data(), bench_meta());"
  done | psql_d es >/dev/null
  psql_d es -c "REINDEX TABLE event_store.events" -c ANALYZE -c CHECKPOINT
  es_cluster_stop "$cl"
  mv "$cl/data" "$cl/data.orig"
}

# script WORKLOAD N: the single-user input
script() {
  local wl=$1 n=$2 i s D M B
  D=$(q "$data") M=$(q "$meta")
  echo "SET synchronous_commit = off"
  case $wl in
    W1e) echo "PREPARE a(text, bigint, text, text, text) AS SELECT event_store.es_append(\$1, \$2, \$3, \$4::jsonb, \$5::jsonb)" ;;
    W2-10) echo "PREPARE a(text, bigint, text) AS SELECT event_store.es_append(\$1, \$2, \$3::jsonb)"
           B="["; for ((i = 1; i <= 10; i++)); do
             B+="{\"type\": \"Deposited\", \"data\": $data, \"metadata\": $meta}"; [ $i -lt 10 ] && B+=", "
           done; B=$(q "$B]") ;;
    INSERT) echo "PREPARE a(text, jsonb, jsonb) AS INSERT INTO event_store.events (stream, type, data, metadata) VALUES (\$1, 'Deposited', \$2, \$3)" ;;
  esac
  for ((i = 0; i < n; i++)); do
    s="'s-$(( (i * 7919) % streams ))'"
    case $wl in
      W1e) echo "EXECUTE a($s, 2, 'Deposited', $D, $M)" ;;
      W2-10) echo "EXECUTE a($s, 2, $B)" ;;
      INSERT) echo "EXECUTE a($s, $D, $M)" ;;
    esac
  done
}

# run VARIANT WORKLOAD N ROUND: total Ir of one single-user run (its
# callgrind file: $work/VARIANT/cg.WORKLOAD.N.ROUND)
run() {
  local b=$1 wl=$2 n=$3 r=$4 cg
  cl=$work/$b cg=$work/$b/cg.$wl.$n.$r
  rm -rf "$cl/data" && cp -a "$cl/data.orig" "$cl/data"
  script "$wl" "$n" > "$cl/input.sql"
  es_as_pg env TMPDIR="$cl" valgrind --tool=callgrind --callgrind-out-file="$cg" \
    "$(es_bindir)/postgres" --single -D "$cl/data" es < "$cl/input.sql" > "$cl/single.log" 2>&1
  if ! [ -s "$cg" ] || grep -q 'ERROR:' "$cl/single.log"; then
    grep -m3 'ERROR:' "$cl/single.log" >&2 || tail -n 5 "$cl/single.log" >&2
    es_log "failed: $b $wl $n"; exit 1
  fi
  awk '/^(summary|totals):/ {print $2; exit}' "$cg"
}

# inclusive FILE FUNCTION: inclusive Ir of FUNCTION in a callgrind file (0:
# not in it, e.g. inlined)
inclusive() {
  callgrind_annotate --inclusive=yes --auto=no --threshold=100 "$1" 2>/dev/null |
    awk -v f="$2" '{ for (i = 2; i <= NF; i++) if ($i ~ (":" f "$")) { gsub(",", "", $1); s += $1 } } END { print s + 0 }'
}

variants="base new nobrin"
for v in $variants; do es_log "preparing the data of $v"; prepare "$v"; done
declare -A ir
for ((r = 1; r <= rounds; r++)); do
  for v in $variants; do
    make -C "$w/$(src "$v")" -s install PG_CONFIG="$pgc" >/dev/null
    for wl in W1e W2-10 INSERT; do
      case $wl in W2-10) n1=20 n2=170 e=10 ;; *) n1=50 n2=450 e=1 ;; esac
      es_log "round $r: $v $wl"
      i1=$(run "$v" "$wl" "$n1" "$r") i2=$(run "$v" "$wl" "$n2" "$r")
      ir[$v.$wl.$r]=$(( (i2 - i1) / (n2 - n1) / e ))
    done
  done
done

ratio() { printf '%.4f' "$(echo "$1 / $2" | bc -l)"; }
echo "PostgreSQL $("$pgc" --version | awk '{print $2}') (chroot), $streams streams at version 2; base = $ES_AB_BASE_NAME, new = $ES_AB_NEW_NAME;"
echo "new without BRIN = the new build on a data directory without the new events_created_at index"
echo
echo "| workload | round | base Ir/event | new Ir/event | base/new | new without BRIN Ir/event | base/(new without BRIN) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for wl in W1e W2-10 INSERT; do
  for ((r = 1; r <= rounds; r++)); do
    a=${ir[base.$wl.$r]} c=${ir[new.$wl.$r]} x=${ir[nobrin.$wl.$r]}
    echo "| $wl | $r | $a | $c | $(ratio "$a" "$c") | $x | $(ratio "$a" "$x") |"
  done
done
echo
echo "Inclusive Ir per event, (N2 run - N1 run) / (N2 - N1) / events per call, round 1"
echo "(es_stats_publish is inlined into es_register_release when it shows 0):"
echo
echo "| workload | build | es_stats_pending | es_register_release | es_stats_publish | es_publish_lower_bound |"
echo "|---|---|---:|---:|---:|---:|"
for wl in W1e W2-10 INSERT; do
  case $wl in W2-10) n1=20 n2=170 e=10 ;; *) n1=50 n2=450 e=1 ;; esac
  for v in base new; do
    line="| $wl | $v |"
    for f in es_stats_pending es_register_release es_stats_publish es_publish_lower_bound; do
      x1=$(inclusive "$work/$v/cg.$wl.$n1.1" "$f") x2=$(inclusive "$work/$v/cg.$wl.$n2.1" "$f")
      line+=" $(printf '%.1f' "$(echo "($x2 - $x1) / ($n2 - $n1) / $e" | bc -l)") |"
    done
    echo "$line"
  done
done
