#!/usr/bin/env bash
# bench/upsert_bench.sh: txguard.insert_or_get against the usual ways of
# writing get-or-create, with pgbench on one server in one run.
#
# Methods, each on its own table of the same shape (bigserial id, unique
# email), on two paths:
#   existing  the key is already there (100k preloaded rows, random pick)
#   new       the key is new (random 40-bit number: collisions negligible)
#
#   helper     SELECT id FROM txguard.insert_or_get(NULL::t, jsonb_build_object(...))
#   plpgsql    a PL/pgSQL function: SELECT; if none, INSERT ... ON CONFLICT
#              DO NOTHING RETURNING; if none, SELECT again
#   do_update  INSERT ... ON CONFLICT (email) DO UPDATE SET email =
#              EXCLUDED.email RETURNING id
#   client     client-side check-then-insert: SELECT, and when the client
#              sees no row, INSERT ... ON CONFLICT DO NOTHING (two round trips)
#   upsert     txguard.upsert with an unchanged value (existing path) or a
#              new row, for reference
#
# Each round runs every method once, in an order rotated from round to
# round, so that drifts of a noisy machine (checkpoints, other load) hit
# all of them alike; the table shows each method's median tps over the
# rounds and its ratio to the helper's.
#
# Needs a server with pg_txguard in shared_preload_libraries; connection
# from the usual PG* variables.  Creates and drops tables bench_*.
#
#   PGPORT=5601 bench/upsert_bench.sh
#   Env: PGBENCH PSQL (default: from PATH)  CLIENTS (4) THREADS (2)
#        SECONDS_PER_RUN (10) ROUNDS (3) PRELOAD (100000)
set -euo pipefail

PGBENCH=${PGBENCH:-pgbench}
PSQL=${PSQL:-psql}
CLIENTS=${CLIENTS:-4}
THREADS=${THREADS:-2}
SECS=${SECONDS_PER_RUN:-10}
ROUNDS=${ROUNDS:-3}
PRELOAD=${PRELOAD:-100000}
METHODS=(helper plpgsql do_update client upsert)

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"

sql() { "$PSQL" -X -q -v ON_ERROR_STOP=1 "$@"; }

echo "setting up tables (${PRELOAD} rows each)..." >&2
{
	echo "CREATE EXTENSION IF NOT EXISTS pg_txguard;"
	echo "SET client_min_messages = warning;"
	for m in "${METHODS[@]}"; do
		cat <<SQL
DROP TABLE IF EXISTS bench_$m;
CREATE TABLE bench_$m (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE,
                       name text, created_at timestamptz DEFAULT now());
INSERT INTO bench_$m (email, name)
    SELECT 'user' || i || '@example.com', 'n' FROM generate_series(1, $PRELOAD) i;
VACUUM ANALYZE bench_$m;
SQL
	done
	cat <<'SQL'
CREATE OR REPLACE FUNCTION bench_plpgsql_get(p_email text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    SELECT id INTO v_id FROM bench_plpgsql WHERE email = p_email;
    IF FOUND THEN
        RETURN v_id;
    END IF;
    INSERT INTO bench_plpgsql (email) VALUES (p_email)
        ON CONFLICT (email) DO NOTHING RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        SELECT id INTO v_id FROM bench_plpgsql WHERE email = p_email;
    END IF;
    RETURN v_id;
END $$;
SQL
} | sql

# the scripts; :email is set by the path's prologue
prologue_existing="\\set k random(1, $PRELOAD)"
prologue_new="\\set k random(1, 1099511627776)"
body_helper="SELECT id FROM txguard.insert_or_get(NULL::bench_helper, jsonb_build_object('email', 'user' || :k || '@example.com'));"
body_plpgsql="SELECT bench_plpgsql_get('user' || :k || '@example.com');"
body_do_update="INSERT INTO bench_do_update (email) VALUES ('user' || :k || '@example.com') ON CONFLICT (email) DO UPDATE SET email = EXCLUDED.email RETURNING id;"
body_client="SELECT count(*) AS found, max(id) AS id FROM bench_client WHERE email = 'user' || :k || '@example.com' \\gset
\\if :found
\\else
INSERT INTO bench_client (email) VALUES ('user' || :k || '@example.com') ON CONFLICT (email) DO NOTHING RETURNING id;
\\endif"
body_upsert="SELECT id FROM txguard.upsert(NULL::bench_upsert, jsonb_build_object('email', 'user' || :k || '@example.com', 'name', 'n'));"

declare -A TPS
for path in existing new; do
	prologue_var=prologue_$path
	for m in "${METHODS[@]}"; do
		body_var=body_$m
		printf '%s\n%s\n' "${!prologue_var}" "${!body_var}" >"$WORK/${path}_$m.sql"
	done
done

n=${#METHODS[@]}
for round in $(seq 1 "$ROUNDS"); do
	for path in existing new; do
		# rotate the order each round: no method always runs first
		for j in $(seq 0 $((n - 1))); do
			m=${METHODS[$(((j + round - 1) % n))]}
			out=$("$PGBENCH" -n -M prepared -c "$CLIENTS" -j "$THREADS" -T "$SECS" \
				-f "$WORK/${path}_$m.sql" 2>&1) || { echo "$out" >&2; exit 1; }
			tps=$(echo "$out" | awk '/^tps = / {print $3; exit}')
			TPS[$path,$m]="${TPS[$path,$m]:-} $tps"
			printf 'round %d  %-8s  %-10s %10.0f tps\n' "$round" "$path" "$m" "$tps" >&2
		done
	done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
# per-round ratios of method to helper (same round, same machine state)
ratios() { paste <(echo "$1" | tr ' ' '\n' | grep -v '^$') <(echo "$2" | tr ' ' '\n' | grep -v '^$') | awk '{printf "%s ", $1 / $2}'; }

echo
echo "pgbench -M prepared -c $CLIENTS -j $THREADS -T $SECS, $ROUNDS rounds; $PRELOAD preloaded rows"
echo "tps: median over the rounds; ratio: median over the rounds of (helper tps / method tps) in the same round"
echo
printf '| %-10s | %15s | %18s | %15s | %18s |\n' method "existing: tps" "helper / method" "new: tps" "helper / method"
printf '|%s|%s|%s|%s|%s|\n' ------------ ----------------- -------------------- ----------------- --------------------
for m in "${METHODS[@]}"; do
	e=$(echo "${TPS[existing,$m]}" | median)
	n=$(echo "${TPS[new,$m]}" | median)
	re=$(ratios "${TPS[existing,helper]}" "${TPS[existing,$m]}" | median)
	rn=$(ratios "${TPS[new,helper]}" "${TPS[new,$m]}" | median)
	printf '| %-10s | %15.0f | %17.2fx | %15.0f | %17.2fx |\n' "$m" "$e" "$re" "$n" "$rn"
done
echo

sql -q -c "$(for m in "${METHODS[@]}"; do echo "DROP TABLE bench_$m;"; done) DROP FUNCTION bench_plpgsql_get(text);"
