#!/usr/bin/env bash
# bench/timeout_lateness.sh: how late the transaction timeout acts, from
# the deadline to the enforcement (the moment the client's error is
# emitted, recorded as event_time in txguard.events), over 100 trials of
# each kind: a running statement canceled, an idle session terminated.
#
#   bench/timeout_lateness.sh [TRIALS]    (default 100)
. "$(dirname "$0")/common.sh"

TRIALS=${1:-100}
LIMIT_MS=50
bench_start ""
bench_header "transaction timeout lateness, $TRIALS trials each, limit ${LIMIT_MS} ms"

# cancel: one session, TRIALS statements that outlive the limit
script=$(for _ in $(seq 1 "$TRIALS"); do echo "SELECT pg_sleep(1);"; done)
as_user "${PSQL[@]}" >/dev/null 2>&1 <<SQL || true
SET txguard.transaction_timeout = '${LIMIT_MS}ms';
$script
SQL

# terminate: TRIALS sessions that idle in a transaction past the limit
for _ in $(seq 1 "$TRIALS"); do
	as_user "${PSQL[@]}" >/dev/null 2>&1 <<SQL || true
SET txguard.transaction_timeout = '${LIMIT_MS}ms';
BEGIN;
SELECT 1;
\! sleep 0.3
SQL
done

sql "
SELECT kind,
       count(*) AS trials,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY late_ms)::numeric, 2) AS p50_ms,
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY late_ms)::numeric, 2) AS p99_ms,
       round(max(late_ms)::numeric, 2) AS max_ms
  FROM (SELECT kind,
               extract(epoch FROM duration) * 1000 - $LIMIT_MS AS late_ms
          FROM txguard.events) e
 GROUP BY kind ORDER BY kind" |
	awk -F'|' '{ printf "%-18s trials=%s p50=%s ms p99=%s ms max=%s ms\n", $1, $2, $3, $4, $5 }'
