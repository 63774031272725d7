#!/usr/bin/env bash
# bench/registry_view.sh: the cost of reading txguard.transactions with
# 500 sessions open in transactions, side by side with pg_stat_activity
# (which reads the same number of backend slots) in the same run.
#
#   bench/registry_view.sh [SESSIONS]     (default 500)
. "$(dirname "$0")/common.sh"

SESSIONS=${1:-500}
READS=300
bench_start "max_connections = $((SESSIONS + 20))"
bench_header "txguard.transactions with $SESSIONS sessions in transactions"

tmp=$(as_user mktemp -d)
as_user sh -c "printf 'BEGIN;\nSELECT 1;\n\\\\sleep 600 s\nEND;\n' > $tmp/hold.sql"
as_user sh -c "echo 'SELECT * FROM txguard.transactions;' > $tmp/view.sql"
as_user sh -c "echo 'SELECT * FROM pg_stat_activity;' > $tmp/psa.sql"
as_user sh -c "echo 'SELECT count(*) FROM txguard.transactions;' > $tmp/count.sql"

ulimit -n 4096 2>/dev/null || true
as_user env PGAPPNAME=holder "${PGBENCH[@]}" -n -c "$SESSIONS" -j 2 -t 1 -f "$tmp/hold.sql" postgres \
	>/dev/null 2>&1 &
holder=$!
for _ in $(seq 1 600); do
	n=$(sql "SELECT count(*) FROM txguard.transactions WHERE application_name = 'holder'")
	[ "$n" -ge "$SESSIONS" ] && break
	sleep 0.1
done
echo "sessions in transactions: $n"

latency() {
	as_user "${PGBENCH[@]}" -n -c 1 -t "$READS" -f "$1" postgres 2>/dev/null |
		awk '/latency average/ {print $4}'
}
# warm up, then measure each query three times, interleaved
latency "$tmp/view.sql" >/dev/null
for round in 1 2 3; do
	v=$(latency "$tmp/view.sql"); p=$(latency "$tmp/psa.sql"); c=$(latency "$tmp/count.sql")
	printf 'round %d: txguard.transactions %s ms, pg_stat_activity %s ms, count(*) of the view %s ms, ratio view/pg_stat_activity %.2f\n' \
		"$round" "$v" "$p" "$c" "$(echo "$v $p" | awk '{print $1 / $2}')"
done

kill "$holder" 2>/dev/null || true
as_root rm -rf "$tmp"
