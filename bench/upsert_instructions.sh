#!/usr/bin/env bash
# bench/upsert_instructions.sh: instructions per call of the race-free
# helpers' existing-row path, side by side with a plain index lookup and
# the usual get-or-create patterns, counted by valgrind in one run.
#
# Table users(id bigserial primary key, email text unique, name text) with
# 10,000 rows; every call looks up a random existing key ('user' || k ||
# '@example.com', k from 1 to 10,000), with pgbench -M prepared -f script:
#
#   base       SELECT :k                              (what is subtracted)
#   lookup     SELECT * FROM users WHERE email = $1   (the yardstick)
#   lookup_json  SELECT * FROM users WHERE email = (vals)->>'email', with
#              the helper's vals: the plain lookup given the same jsonb
#   populate   SELECT * FROM jsonb_populate_record(NULL::users, vals): a
#              built-in function of the same shape in FROM, no table read
#   plpgsql    SELECT * FROM a PL/pgSQL get-or-create function (SELECT,
#              then INSERT ... ON CONFLICT DO NOTHING RETURNING, then
#              SELECT again)
#   helper     SELECT * FROM txguard.insert_or_get(NULL::users,
#              ('{"email": "' || ... || '"}')::jsonb)
#   upsert     SELECT * FROM txguard.upsert(NULL::users, ...) with the
#              name it already has (nothing to update)
#   helper_value, upsert_value
#              the same calls in the select list, SELECT txguard.f(...):
#              the row as one value of the row type, no function scan
#   do_update  INSERT ... ON CONFLICT (email) DO UPDATE SET email =
#              EXCLUDED.email RETURNING *
#
# Each figure is the cost of a call: the instructions per transaction of
# the script minus those of SELECT :k, so that what every transaction pays
# (the protocol, the transaction itself) cancels out.  The last column is
# that cost divided by the cost of the plain lookup.
#
# Instructions per transaction are counted as bench/instructions.sh counts
# them: user-space instructions of one pgbench client's backend under
# valgrind (cachegrind, no cache simulation), (long run of 3N transactions
# - short run of N) / 2N with fixed seeds, not counting the wait for the
# client's next message.  do_update runs last, since it writes.
#
#   bench/upsert_instructions.sh [-b PGBIN] [-n N] [-r ROWS] [-P ROWS] [-k]
#     -b  PostgreSQL bin directory (default /usr/lib/postgresql/15/bin);
#         pg_txguard must be installed there (make install
#         PG_CONFIG=PGBIN/pg_config): CREATE EXTENSION loads the library
#         from $libdir, so an uninstalled build cannot be measured
#     -n  transactions in the short run; the long run has 3N (default 500)
#     -r  rows, comma-separated, from lookup,lookup_json,populate,plpgsql,
#         helper,upsert,helper_value,upsert_value,do_update (default: all;
#         base always runs)
#     -P  profile too: run under callgrind rather than cachegrind (slower;
#         the counts agree within 0.5%) and print, for the rows given (comma-separated,
#         among those of -r), the instructions per transaction spent in
#         each function, calls included, side by side, the largest first
#         (static functions of a stripped postgres show as addresses)
#     -k  keep the work directory (server log, valgrind files cg.PID)
#
# Needs valgrind and PostgreSQL (Debian: apt-get install valgrind
# postgresql-15), and python3 for -P.  Runs as root (the server then runs
# as user postgres; DIR must be readable by it) or as a normal user.
# Takes under half a minute, about a minute with -P.
set -euo pipefail

PGBIN=/usr/lib/postgresql/15/bin
N=500
ROWS=lookup,lookup_json,populate,plpgsql,helper,upsert,helper_value,upsert_value,do_update
PROFILE=""
KEEP=0
SEED_SHORT=7
SEED_LONG=11
NROWS=10000

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
die() { printf 'upsert_instructions.sh: %s\n' "$*" >&2; exit 1; }
say() { printf '  %s\n' "$*" >&2; }

while getopts "b:n:r:P:kh" o; do
	case $o in
		b) PGBIN=$OPTARG ;;
		n) N=$OPTARG ;;
		r) ROWS=$OPTARG ;;
		P) PROFILE=$OPTARG ;;
		k) KEEP=1 ;;
		*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage
[[ $N =~ ^[1-9][0-9]*$ ]] || die "-n wants a positive number"
IFS=, read -r -a ROW_LIST <<<"$ROWS"
for r in "${ROW_LIST[@]}"; do
	[[ $r =~ ^(lookup|lookup_json|populate|plpgsql|helper|upsert|helper_value|upsert_value|do_update)$ ]] ||
		die "unknown row $r (lookup, lookup_json, populate, plpgsql, helper, upsert, helper_value, upsert_value, do_update)"
done
ROW_LIST=(base "${ROW_LIST[@]}")
IFS=, read -r -a PROFILE_LIST <<<"$PROFILE"
for r in "${PROFILE_LIST[@]}"; do
	[[ " ${ROW_LIST[*]} " == *" $r "* ]] || die "-P $r: not a row of this run"
done

command -v valgrind >/dev/null || die "valgrind is not installed (apt-get install valgrind)"
[ -z "$PROFILE" ] || command -v python3 >/dev/null || die "python3 is not installed (needed by -P)"
[ -x "$PGBIN/postgres" ] && [ -x "$PGBIN/pgbench" ] ||
	die "no postgres and pgbench in $PGBIN (apt-get install postgresql-15, or give -b)"
PKGLIBDIR=$("$PGBIN/pg_config" --pkglibdir 2>/dev/null) || PKGLIBDIR=$(dirname "$PGBIN")/lib
SHAREDIR=$("$PGBIN/pg_config" --sharedir 2>/dev/null) || SHAREDIR=""
PG_VERSION=$("$PGBIN/postgres" --version | awk '{print $3}')
[ -z "$SHAREDIR" ] || [ -f "$SHAREDIR/extension/pg_txguard.control" ] ||
	die "pg_txguard is not installed in $SHAREDIR (make install PG_CONFIG=$PGBIN/pg_config)"

as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

TXG_SO=$PKGLIBDIR/pg_txguard.so
[ -f "$TXG_SO" ] || die "pg_txguard is not installed in $PKGLIBDIR (make install PG_CONFIG=$PGBIN/pg_config)"

T=$(mktemp -d /tmp/txg-uinstr.XXXXXX)
chmod 777 "$T"
PORT=$((40000 + RANDOM % 9000))
stop() {
	[ -d "$T/d" ] || return 0
	as_owner "$PGBIN/pg_ctl" -D "$T/d" -w -t 600 -m fast stop >/dev/null 2>&1 || true
}
cleanup() {
	stop
	if [ "$KEEP" = 1 ]; then echo "work directory kept: $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
PGB() { "$PGBIN/pgbench" -h "$T" -p "$PORT" -U postgres "$@" postgres; }
PSQL() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$T" -p "$PORT" -U postgres -d postgres "$@"; }

# the scripts
email="'user' || :k || '@example.com'"
json="('{\"email\": \"user' || :k || '@example.com\"}')::jsonb"
json_name="('{\"email\": \"user' || :k || '@example.com\", \"name\": \"n\"}')::jsonb"
script() {
	case $1 in
		base) echo "SELECT :k;" ;;
		lookup) echo "SELECT * FROM users WHERE email = $email;" ;;
		lookup_json) echo "SELECT * FROM users WHERE email = $json ->> 'email';" ;;
		populate) echo "SELECT * FROM jsonb_populate_record(NULL::users, $json);" ;;
		plpgsql) echo "SELECT * FROM get_or_create_user($email);" ;;
		helper) echo "SELECT * FROM txguard.insert_or_get(NULL::users, $json);" ;;
		upsert) echo "SELECT * FROM txguard.upsert(NULL::users, $json_name);" ;;
		helper_value) echo "SELECT txguard.insert_or_get(NULL::users, $json);" ;;
		upsert_value) echo "SELECT txguard.upsert(NULL::users, $json_name);" ;;
		do_update) echo "INSERT INTO users (email) VALUES ($email) ON CONFLICT (email) DO UPDATE SET email = EXCLUDED.email RETURNING *;" ;;
	esac
}
label() {
	case $1 in
		base) echo '`SELECT :k` (subtracted)' ;;
		lookup) echo '`SELECT * FROM users WHERE email = $1`' ;;
		lookup_json) echo '`SELECT * FROM users WHERE email = (vals)->>'"'email'"'`, the same `vals` as the helper'"'"'s' ;;
		populate) echo '`SELECT * FROM jsonb_populate_record(NULL::users, vals)`, no table read' ;;
		plpgsql) echo 'PL/pgSQL get-or-create (`SELECT`, then `INSERT ... ON CONFLICT DO NOTHING`)' ;;
		helper) echo '`txguard.insert_or_get(NULL::users, vals)`' ;;
		upsert) echo '`txguard.upsert(NULL::users, vals)`, nothing to update' ;;
		helper_value) echo '`SELECT txguard.insert_or_get(NULL::users, vals)`: the row as one value' ;;
		upsert_value) echo '`SELECT txguard.upsert(NULL::users, vals)`: the row as one value, nothing to update' ;;
		do_update) echo '`INSERT ... ON CONFLICT DO UPDATE ... RETURNING *`' ;;
	esac
}
for r in "${ROW_LIST[@]}"; do
	printf '\\set k random(1, %d)\n%s\n' "$NROWS" "$(script "$r")" >"$T/$r.sql"
	chmod 644 "$T/$r.sql"
done

echo "upsert_instructions.sh: PostgreSQL $PG_VERSION, N=$N, work directory $T" >&2
as_owner "$PGBIN/initdb" -D "$T/d" -A trust -U postgres -E UTF8 --locale=C >/dev/null
{
	cat <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$T'
fsync = off
autovacuum = off
checkpoint_timeout = '1d'
max_wal_size = '10GB'
log_line_prefix = '%p %a '
log_disconnections = on
wal_writer_delay = '10s'
wal_buffers = '64MB'
bgwriter_lru_maxpages = 0
shared_preload_libraries = 'pg_txguard'
CONF
} | as_owner tee -a "$T/d/postgresql.conf" >/dev/null
as_owner "$PGBIN/pg_ctl" -D "$T/d" -l "$T/setup.log" -w start >/dev/null ||
	{ tail -5 "$T/setup.log" >&2; exit 1; }
PSQL <<SQL >/dev/null
CREATE EXTENSION pg_txguard;
CREATE EXTENSION pg_prewarm;
CREATE TABLE users (id bigserial PRIMARY KEY, email text UNIQUE, name text);
INSERT INTO users (email, name)
    SELECT 'user' || i || '@example.com', 'n' FROM generate_series(1, $NROWS) i;
VACUUM ANALYZE users;
CREATE FUNCTION get_or_create_user(p_email text) RETURNS users
LANGUAGE plpgsql AS \$\$
DECLARE
    r users;
BEGIN
    SELECT * INTO r FROM users WHERE email = p_email;
    IF FOUND THEN
        RETURN r;
    END IF;
    INSERT INTO users (email) VALUES (p_email)
        ON CONFLICT (email) DO NOTHING RETURNING * INTO r;
    IF r.id IS NULL THEN
        SELECT * INTO r FROM users WHERE email = p_email;
    END IF;
    RETURN r;
END \$\$;
SQL
as_owner "$PGBIN/pg_ctl" -D "$T/d" -w -m fast stop >/dev/null

# every process of the cluster under valgrind; each writes its own files
TOOL_NAME="cachegrind, no cache simulation"
[ -z "$PROFILE" ] || TOOL_NAME=callgrind
if [ -z "$PROFILE" ]; then
	TOOL="--tool=cachegrind --cache-sim=no '--cachegrind-out-file=$T/cg.%p'"
else
	TOOL="--tool=callgrind --dump-instr=no --compress-strings=no --compress-pos=no '--callgrind-out-file=$T/cg.%p'"
fi
as_owner bash -c "cd '$T' && exec valgrind --trace-children=yes $TOOL '--log-file=$T/vg.%p' \
	'$PGBIN/postgres' -D '$T/d' >'$T/server.log' 2>&1 &"
ok=0
for _ in $(seq 1 300); do
	if "$PGBIN/pg_isready" -h "$T" -p "$PORT" -q; then ok=1; break; fi
	sleep 1
done
[ "$ok" = 1 ] || { tail -20 "$T/server.log" >&2; die "the server did not start"; }
pm=$(head -1 "$T/d/postmaster.pid")
maps=$(as_owner grep -o '/[^ ]*pg_txguard[^ ]*\.so' "/proc/$pm/maps" | sort -u)
[ "$maps" = "$TXG_SO" ] || die "expected $TXG_SO loaded, found '${maps:-nothing}'"
PSQL -c "SELECT sum(pg_prewarm(c.oid)) FROM pg_class c
         WHERE c.relname LIKE 'users%' AND c.relkind IN ('r', 'i')" >/dev/null
# have the WAL writer initialise the WAL buffers now (see bench/instructions.sh)
PSQL -c "SET synchronous_commit = off" \
	-c "CREATE TABLE instr_wal_wake AS SELECT g FROM generate_series(1, 10000) g" >/dev/null
sleep 3

start=$SECONDS
for r in "${ROW_LIST[@]}"; do
	for run in short long; do
		if [ $run = short ]; then seed=$SEED_SHORT; t=$N; else seed=$SEED_LONG; t=$((3 * N)); fi
		PGAPPNAME="instr_${r}_$run" PGB -n -c 1 --random-seed=$seed -t "$t" -M prepared \
			-f "$T/$r.sql" >/dev/null 2>"$T/err" || { cat "$T/err" >&2; die "pgbench failed ($r)"; }
	done
	say "$r done"
done
# the existing-row path only: no row may have been created
created=$(PSQL -c "SELECT count(*) FROM users")
[ "$created" = "$NROWS" ] || die "users has $created rows, not $NROWS: a call took the new-row path"
stop

WAIT_FUNCTIONS="secure_read secure_raw_read recv __libc_recv __errno_location
	WaitEventSetWait WaitEventSetWaitBlock ModifyWaitEvent epoll_wait ProcessClientReadInterrupt"
# a function's own instructions; callgrind's line after "calls=" is the
# call's, counted in the callee
irefs() {
	awk -v skip="$WAIT_FUNCTIONS" '
		BEGIN { n = split(skip, w, /[ \t\n]+/); for (i = 1; i <= n; i++) if (w[i] != "") waiting[w[i]] = 1 }
		/^fn=/ { fn = substr($0, 4); next }
		/^calls=/ { call = 1; next }
		/^[0-9]/ && call { call = 0; next }
		/^[0-9]/ && !(fn in waiting) { total += $2 }
		END { printf "%.0f\n", total }' "$1"
}
backend_pid() {
	awk -v app="$1" '$2 == app && /disconnection:/ {print $1}' "$T/server.log" | tail -1
}
declare -A PER
for r in "${ROW_LIST[@]}"; do
	short=$(backend_pid "instr_${r}_short")
	long=$(backend_pid "instr_${r}_long")
	[ -n "$short" ] && [ -n "$long" ] || die "could not find the backends of $r in the server log"
	a=$(irefs "$T/cg.$short")
	b=$(irefs "$T/cg.$long")
	[ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ] || die "no count for $r (valgrind logs $T/vg.$short, $T/vg.$long)"
	PER[$r]=$(((b - a) / (2 * N)))
done
elapsed=$((SECONDS - start))

grp() { echo "$1" | sed ':a; s/\B[0-9]\{3\}\>/,&/; ta'; }
base=${PER[base]}
echo
echo "| call | instructions per transaction | above \`SELECT :k\` | vs the plain lookup |"
echo "|---|---:|---:|---:|"
for r in "${ROW_LIST[@]}"; do
	if [ "$r" = base ]; then
		echo "| $(label "$r") | $(grp "$base") | | |"
		continue
	fi
	cost=$((PER[$r] - base))
	ratio=""
	if [ -n "${PER[lookup]:-}" ]; then
		ratio=$(awk -v c="$cost" -v l="$((PER[lookup] - base))" 'BEGIN { printf "%.2fx", c / l }')
	fi
	echo "| $(label "$r") | $(grp "${PER[$r]}") | $(grp "$cost") | $ratio |"
done
echo
lib="pg_txguard from $TXG_SO"
cat <<EOF
Instructions in user space of the pgbench client's backend, counted by
valgrind $(valgrind --version | sed 's/valgrind-//') ($TOOL_NAME) with
\`bench/upsert_instructions.sh\`: PostgreSQL $PG_VERSION, a $NROWS-row users table, a
random existing key, pgbench -M prepared, one client, a short run of $N
transactions (\`--random-seed=$SEED_SHORT\`) and a long run of $((3 * N)) (\`--random-seed=$SEED_LONG\`),
(long - short) / $((2 * N)), not counting the wait for the client's next message;
$lib.
$(date -u +%Y-%m-%d), $(nproc) cores, ${elapsed} s.
EOF

[ -n "$PROFILE" ] || exit 0

# -P: instructions per transaction in each function, calls included
files=()
for r in "${PROFILE_LIST[@]}"; do
	files+=("$r" "$T/cg.$(backend_pid "instr_${r}_short")" "$T/cg.$(backend_pid "instr_${r}_long")")
done
echo
python3 - "$N" "${files[@]}" <<'PY'
import sys, collections

def inclusive(path):
    """each function's instructions, its calls included (a recursive call
    is not added twice)"""
    cost = collections.Counter()
    fn = cfn = None
    call = False
    for line in open(path, errors='replace'):
        if line.startswith('fn='):
            fn = line[3:].strip()
        elif line.startswith('cfn='):
            cfn = line[4:].strip()
        elif line.startswith('calls='):
            call = True
        elif line[:1].isdigit():
            parts = line.split()
            if len(parts) < 2:
                continue
            if call:
                call = False
                if cfn != fn:
                    cost[fn] += int(parts[1])
            else:
                cost[fn] += int(parts[1])
    return cost

n = int(sys.argv[1])
args = sys.argv[2:]
rows = []
for i in range(0, len(args), 3):
    short, long_ = inclusive(args[i + 1]), inclusive(args[i + 2])
    rows.append((args[i], {f: (long_[f] - short[f]) / (2.0 * n)
                           for f in set(short) | set(long_)}))
funcs = set()
for _, per in rows:
    funcs |= {f for f, v in per.items() if abs(v) >= 100}
order = sorted(funcs, key=lambda f: -max(per.get(f, 0) for _, per in rows))
print('Instructions per transaction in each function, its calls included:')
print()
print('| function | ' + ' | '.join(r for r, _ in rows) + ' |')
print('|---|' + '---:|' * len(rows))
for f in order[:80]:
    print('| `%s` | %s |' % (f, ' | '.join('{:,.0f}'.format(per.get(f, 0))
                                           for _, per in rows)))
PY
