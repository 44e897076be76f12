# shellcheck shell=bash
# shellcheck disable=SC2154  # $work and $port are the caller's
# Shared by bench/run and bench/instructions (sourced after scripts/lib.sh,
# with $top, $work and $port set): the contenders' databases and the payload.

contenders="es ceiling naive plpgsql"

# psql_d DB [psql args]: psql on the throwaway cluster, quiet, stop on error
psql_d() { local db=$1; shift; es_as_pg psql -X -q -At -h "$work/sock" -p "$port" -d "$db" -v ON_ERROR_STOP=1 "$@"; }

# bench_databases: one database per contender, each with the common part,
# its own setup and (PL/pgSQL) the baseline; expects $work/sql and
# $work/plpgsql_event_store.sql in place.  Sets $data and $meta, the
# payload every workload appends.
bench_databases() {
  local db
  for db in $contenders; do
    psql_d postgres -c "CREATE DATABASE $db"
    psql_d "$db" -f "$work/sql/common.sql" >/dev/null
    [ "$db" = plpgsql ] && psql_d "$db" -f "$work/plpgsql_event_store.sql" >/dev/null
    psql_d "$db" -f "$work/sql/setup_$db.sql" >/dev/null
  done
  data=$(psql_d es -c 'SELECT bench_data()')
  meta=$(psql_d es -c 'SELECT bench_meta()')
}

batch_json() {		# batch_json N: a JSON array of N events
  local i out="["
  for ((i = 1; i <= $1; i++)); do
    out+="{\"type\": \"Deposited\", \"data\": $data, \"metadata\": $meta}"
    [ "$i" -lt "$1" ] && out+=", "
  done
  echo "$out]"
}
