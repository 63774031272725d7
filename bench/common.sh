# bench/common.sh: a throwaway PostgreSQL with pg_txguard preloaded, for the
# benchmark scripts.  Sourced; uses scripts/lib.sh for users and packages.
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

BENCH_PORT=${BENCH_PORT:-5498}
BENCH_DATA=$BASE/bench-data
PSQL=("$PG_BIN/psql" -X -q -h /tmp -p "$BENCH_PORT" -d postgres)
PGBENCH=("$PG_BIN/pgbench" -h /tmp -p "$BENCH_PORT")

# bench_start "extra postgresql.conf lines"
bench_start() {
	ensure_packages
	build_copy
	as_root rm -rf "$BENCH_DATA"
	as_user mkdir -p "$BENCH_DATA"
	as_user "$PG_BIN/initdb" -D "$BENCH_DATA" -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
	as_user tee -a "$BENCH_DATA/postgresql.conf" >/dev/null <<CONF
shared_preload_libraries = 'pg_txguard'
port = $BENCH_PORT
listen_addresses = ''
unix_socket_directories = '/tmp'
$1
CONF
	as_user "$PG_BIN/pg_ctl" -D "$BENCH_DATA" -l "$BENCH_DATA/log" -w start >/dev/null
	trap bench_stop EXIT
	sql 'CREATE EXTENSION pg_txguard'
}

bench_stop() {
	as_user "$PG_BIN/pg_ctl" -D "$BENCH_DATA" -m immediate -w stop >/dev/null 2>&1 || true
}

sql() { as_user "${PSQL[@]}" -At -c "$1"; }

# machine facts printed with every result
bench_header() {
	echo "# $1"
	echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}')"
}
