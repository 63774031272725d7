#!/usr/bin/env bash
# bench/overhead.sh: what pg_txguard costs per transaction.  pgbench's
# select-only transactions (one client, so that the per-statement path
# dominates) on the same server and data, restarted between
# configurations, interleaved over rounds:
#
#   off       shared_preload_libraries = ''
#   on        pg_txguard preloaded (registry, outcomes), no timeout
#   timeout   pg_txguard preloaded, txguard.transaction_timeout = 30s
#
#   bench/overhead.sh [SECONDS] [ROUNDS]   (default 5 s, 3 rounds)
. "$(dirname "$0")/common.sh"

SECONDS_EACH=${1:-5}
ROUNDS=${2:-3}
bench_start ""
bench_header "pg_txguard overhead, pgbench -S, 1 client, ${SECONDS_EACH}s x $ROUNDS rounds"
as_user "${PGBENCH[@]}" -i -q -s 10 postgres >/dev/null 2>&1

configure() {
	as_user "$PG_BIN/pg_ctl" -D "$BENCH_DATA" -m fast -w stop >/dev/null
	case $1 in
		off) pre="''"; timeout=0 ;;
		on) pre="'pg_txguard'"; timeout=0 ;;
		timeout) pre="'pg_txguard'"; timeout=30s ;;
	esac
	as_user sed -i "/^shared_preload_libraries/d; /^txguard.transaction_timeout/d" "$BENCH_DATA/postgresql.conf"
	echo "shared_preload_libraries = $pre" | as_user tee -a "$BENCH_DATA/postgresql.conf" >/dev/null
	[ "$1" = timeout ] && echo "txguard.transaction_timeout = '$timeout'" |
		as_user tee -a "$BENCH_DATA/postgresql.conf" >/dev/null
	as_user "$PG_BIN/pg_ctl" -D "$BENCH_DATA" -l "$BENCH_DATA/log" -w start >/dev/null
}

declare -A sum
for mode in simple prepared; do
	for config in off on timeout; do sum[$mode,$config]=0; done
done
for round in $(seq 1 "$ROUNDS"); do
	for config in off on timeout; do
		configure "$config"
		for mode in simple prepared; do
			tps=$(as_user "${PGBENCH[@]}" -n -S -M "$mode" -c 1 -T "$SECONDS_EACH" postgres 2>/dev/null |
				awk '/^tps/ {print $3}')
			printf 'round %d %-8s %-8s %10.0f tps\n' "$round" "$config" "$mode" "$tps"
			sum[$mode,$config]=$(echo "${sum[$mode,$config]} $tps" | awk '{print $1 + $2}')
		done
	done
done
for mode in simple prepared; do
	off=${sum[$mode,off]}
	printf '%-8s mean tps: off %.0f, on %.0f (%.3f of off), timeout %.0f (%.3f of off)\n' "$mode" \
		"$(echo "$off $ROUNDS" | awk '{print $1/$2}')" \
		"$(echo "${sum[$mode,on]} $ROUNDS" | awk '{print $1/$2}')" \
		"$(echo "${sum[$mode,on]} $off" | awk '{print $1/$2}')" \
		"$(echo "${sum[$mode,timeout]} $ROUNDS" | awk '{print $1/$2}')" \
		"$(echo "${sum[$mode,timeout]} $off" | awk '{print $1/$2}')"
done
