#!/usr/bin/env bash
# Run the pg_regress suite against a throwaway cluster whose server runs under
# valgrind (memcheck), then count the errors valgrind reported and say which
# involve event_store's code.  Exits non-zero when any error has a frame of
# event_store.so (in its own stack, or in the stack that created an
# uninitialised value; see "Count the errors" below), or when pg_regress
# fails or cannot run.  The whole suite (11 tests) took about 5 minutes on
# 2 cores (307 s; 11 minutes on a loaded machine).
#
#   bash scripts/valgrind.sh                  # every test of REGRESS (make -s print-REGRESS)
#   bash scripts/valgrind.sh setup append     # a subset (setup first: it creates the extension)
#   ES_SKIP_BUILD=1 bash scripts/valgrind.sh  # test what is installed, do not build
# ES_VALGRIND_PORT (default 54359) picks the port, ES_KEEP=1 keeps the
# directory (the valgrind logs are in DIR/valgrind/<pid>.log),
# ES_VALGRIND_SUPP= (empty) runs without the suppressions, to audit them: an
# error counts as event_store's when its stack OR the stack that created the
# uninitialised value has a frame of event_store.
#
# What this finds: reads of uninitialised memory (conditional jumps, system
# calls such as the WAL write), invalid reads and writes outside malloc()ed
# blocks, invalid frees, overlapping memcpy, in the server and the extension,
# with the stack that created the uninitialised value (--track-origins).
#
# What it cannot find here: Debian's postgres binary is not built with
# USE_VALGRIND, so palloc() and pfree() inside memory contexts are invisible to
# memcheck (a context's block is one malloc() to it): an overrun inside a
# block, a use after pfree() or after a context reset, or a read of a palloc()
# chunk that was reused are not reported, and memory context leaks are not
# leaks to valgrind.  That needs a server built from source with
# -DUSE_VALGRIND (and src/tools/valgrind.supp).  Leak checking is off
# (--leak-check=no), as is customary for PostgreSQL: the server frees memory
# by dropping contexts and by exiting; test/t/009_memory.pl and
# bench/memory.pl measure the extension's memory instead.
#
# The suppressions are in test/valgrind.supp (written for this suite; see the
# comments there).  Expect the run to take many times longer than without
# valgrind: every server process, the postmaster included, runs on valgrind's
# synthetic CPU.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$top/scripts/lib.sh"

port=${ES_VALGRIND_PORT:-54359}
# a server under valgrind takes long to shut down
export PGCTLTIMEOUT=${PGCTLTIMEOUT:-600}
tests=${*:-$(make -s -C "$top" print-REGRESS)}

es_install_deps
if ! command -v valgrind >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then
    es_log "installing valgrind"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind >/dev/null
  else
    es_log "valgrind is missing (run as root to install it)"; exit 1
  fi
fi
[ "${ES_SKIP_BUILD:-0}" = 1 ] || es_build_install "$top"

work=$(es_tempdir)
cleanup() {
  es_cluster_stop "$work"
  if [ "${ES_KEEP:-0}" = 1 ] || [ "${keep:-0}" = 1 ]; then
    es_log "output kept in $work (valgrind logs in $work/valgrind)"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

# pg_regress writes next to its inputs: run it on a copy the cluster user owns.
es_copy_tree "$top" "$work/src"
mkdir -p "$work/out" "$work/valgrind"
[ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$work/src" "$work/out" "$work/valgrind"

# initdb and the configuration as for the other suites; then restart the
# server under valgrind.  Autovacuum is off (it never runs extension code, and
# under valgrind it would only take CPU from the tests).
es_cluster_start "$work" "$port"
es_cluster_stop "$work"
es_as_pg tee -a "$work/data/postgresql.conf" >/dev/null <<CONF
autovacuum = off
CONF

bindir=$(es_bindir)
supp=${ES_VALGRIND_SUPP-$work/src/test/valgrind.supp}
# --trace-children: the postmaster's children are forks and are followed
# anyway; this also follows anything the server execs.  --log-file with %p:
# one log per process (a forked child reopens its own).  --error-exitcode=1: a
# backend with errors exits with status 1, which the postmaster takes as a
# normal exit (not a crash that would restart the whole server and fail every
# later test); the verdict comes from the logs.  --error-markers delimit each
# error in the logs for the count below.
# shellcheck disable=SC2054  # the comma in --error-markers is valgrind's
vg_opts=(
  --tool=memcheck --trace-children=yes --leak-check=no
  --track-origins=yes --read-var-info=yes --num-callers=30
  --error-exitcode=1 --gen-suppressions=all
  ${supp:+--suppressions="$supp"}
  --error-markers=VALGRINDERROR-BEGIN,VALGRINDERROR-END
  --log-file="$work/valgrind/%p.log"
)
es_log "starting the server under valgrind (port $port)"
started=$(date +%s)
es_as_pg bash -c "cd '$work' && exec valgrind ${vg_opts[*]} '$bindir/postgres' -D '$work/data' \
  >> '$work/server.log' 2>&1 &"
# wait for it: under valgrind, the start and each connection take seconds
ready=0
for _ in $(seq 120); do
  if es_as_pg "$bindir/pg_isready" -q -t 30 -h "$work/sock" -p "$port"; then ready=1; break; fi
  sleep 1
done
[ "$ready" = 1 ] || {
  es_log "the server did not start under valgrind"; tail -n 30 "$work/server.log" >&2; keep=1; exit 1; }
es_log "ready after $(( $(date +%s) - started )) s"

pgxs=$(cd "$(dirname "$("$(es_pg_config)" --pgxs)")/../.." && pwd)
es_log "pg_regress: $tests"
regress_status=ok
# shellcheck disable=SC2086  # $tests: one word per test
es_as_pg "$pgxs/src/test/regress/pg_regress" \
  --inputdir="$work/src/test" --outputdir="$work/out/regress" --bindir="$bindir" \
  --host="$work/sock" --port="$port" --user=postgres --dbname=es_valgrind \
  $tests > "$work/out/regress.log" 2>&1 || regress_status=failed
cat "$work/out/regress.log" >&2
if [ "$regress_status" != ok ] && [ -f "$work/out/regress/regression.diffs" ]; then
  cat "$work/out/regress/regression.diffs" >&2
fi

# Stop the server (its processes write their last errors on exit).
es_cluster_stop "$work"
elapsed=$(( $(date +%s) - started ))

# Count the errors: one block between the markers is one error context
# (valgrind prints a repeated error once).  An error involves event_store when
# a frame names event_store.so or one of its source files (the library has
# debug information, so frames show file:line): in the error's stack, in the
# stack that allocated the address, or in the stack that created the
# uninitialised value.  Two kinds of frames do not count: the utility hook
# es_ProcessUtility when it only passes a statement on (a "by" frame, in any
# of these stacks: every utility statement runs through it), and the error
# stack of a WAL write
# (the bytes may come from any record of the transaction: only their origin
# tells whose they are).
report=$(python3 - "$work/valgrind" <<'PY'
import os, re, sys
logdir = sys.argv[1]
ours_re = re.compile(r'event_store\.so|\((?:es_[a-z_]+|event_store)\.c:\d+\)')
hook_re = re.compile(r'^\s+by 0x[0-9A-F]+: es_ProcessUtility \(')
ours, theirs = [], []
procs = suppressed = 0

def involves_us(block):
    # sections: the error's stack, then " Address ..." and " Uninitialised
    # value was created ..." with their stacks
    sections = re.split(r'\n(?= \S)', block.split('{\n', 1)[0])
    error_stack = sections[0]
    wal_write = 'Syscall param pwrite64(buf)' in error_stack and 'XLog' in error_stack
    def ours_frames(section):
        return any(ours_re.search(line) and not hook_re.match(line)
                   for line in section.splitlines())
    if not wal_write and ours_frames(error_stack):
        return True
    return any(ours_frames(s) for s in sections[1:])

for name in sorted(os.listdir(logdir)):
    procs += 1
    text = open(os.path.join(logdir, name), errors='replace').read()
    suppressed += sum(int(n) for n in re.findall(r'ERROR SUMMARY: .*\(suppressed: (\d+) from', text))
    for block in re.findall(r'VALGRINDERROR-BEGIN\n(.*?)VALGRINDERROR-END', text, re.S):
        block = re.sub(r'^==\d+== ?', '', block, flags=re.M)
        (ours if involves_us(block) else theirs).append((name, block))
print(f"processes: {procs}")
print(f"errors involving event_store: {len(ours)}")
print(f"other errors: {len(theirs)}")
print(f"suppressed (test/valgrind.supp): {suppressed}")
for title, errs in (("event_store", ours), ("other", theirs)):
    seen = {}
    for name, block in errs:
        first = block.strip().splitlines()[0]
        seen.setdefault(first, []).append((name, block))
    for first, group in seen.items():
        print(f"\n--- {title}: {len(group)} x {first} (first in {group[0][0]})")
        print(group[0][1].split('{\n', 1)[0].rstrip())
PY
)
es_log "valgrind run done in $elapsed s"
echo "$report"
echo
echo "pg_regress under valgrind: $regress_status ($tests)"
echo "time: $elapsed s"
n_ours=$(echo "$report" | awk -F': ' '/^errors involving event_store:/ {print $2}')
n_other=$(echo "$report" | awk -F': ' '/^other errors:/ {print $2}')
[ "$regress_status" = ok ] || keep=1
[ "${n_ours:-1}" -eq 0 ] && [ "${n_other:-1}" -eq 0 ] || keep=1
if [ "${n_ours:-1}" -ne 0 ] || [ "$regress_status" != ok ]; then
  echo "FAILED: ${n_ours:-?} valgrind errors involve event_store; pg_regress $regress_status"
  exit 1
fi
echo "OK: no valgrind error involves event_store (${n_other} other errors)"
