#!/usr/bin/env bash
# bench/timeout_syscalls.sh: system calls per autocommit statement, with
# txguard.transaction_timeout off and on, measured with strace -c on the
# backend of one pgbench client running "SELECT 1" in a loop.
#
# The question: does arming and disarming the timer per transaction add a
# setitimer() (or any) system call per statement?
. "$(dirname "$0")/common.sh"

command -v strace >/dev/null || ensure_packages strace
bench_start ""
bench_header "system calls per autocommit statement (strace -c on the backend)"

tmp=$(as_user mktemp -d)
as_user sh -c "echo 'SELECT 1;' > $tmp/select1.sql"

measure() {
	local timeout=$1 pid out
	as_user env PGAPPNAME=strace_me PGOPTIONS="-c txguard.transaction_timeout=$timeout" \
		"${PGBENCH[@]}" -n -c 1 -T 8 -f "$tmp/select1.sql" postgres >/dev/null 2>&1 &
	local bench=$!
	for _ in $(seq 1 100); do
		pid=$(sql "SELECT pid FROM pg_stat_activity WHERE application_name = 'strace_me'")
		[ -n "$pid" ] && break
		sleep 0.05
	done
	[ -n "$pid" ] || die "pgbench's backend did not show up"
	sleep 0.5
	out=$(timeout -s INT 4 strace -c -p "$pid" 2>&1 || true)
	wait "$bench" || true
	# let the backend go before the next measurement looks for its own
	while [ -n "$(sql "SELECT pid FROM pg_stat_activity WHERE application_name = 'strace_me'")" ]; do
		sleep 0.05
	done
	[ -n "${BENCH_DEBUG:-}" ] && echo "$out" >&2
	# statements = messages read: one recvfrom() per Query message
	if ! echo "$out" | grep -q recvfrom; then
		echo "(strace saw no statement for transaction_timeout=$timeout; measuring again)" >&2
		measure "$timeout"
		return
	fi
	echo "$out" | awk -v t="$timeout" '
		$NF == "recvfrom" { recv = $4 } $NF == "setitimer" { timer = $4 }
		$NF == "total" { total = $4 }
		END { printf "transaction_timeout=%-6s statements=%d syscalls/statement=%.3f setitimer/statement=%.5f (setitimer calls: %d)\n",
		      t, recv, total / recv, timer / recv, timer }'
}

for round in 1 2; do
	measure 0
	measure 30s
	measure 100ms
done
as_root rm -rf "$tmp"
