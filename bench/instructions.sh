#!/usr/bin/env bash
# bench/instructions.sh: user-space instructions per transaction of one
# pgbench client backend, counted by valgrind, for four configurations side
# by side:
#
#   none     shared_preload_libraries = ''
#   pgss     shared_preload_libraries = 'pg_stat_statements' (for scale)
#   txg      shared_preload_libraries = 'pg_txguard', no timeout
#   txgt     pg_txguard with txguard.transaction_timeout = '1h' and
#            txguard.idle_blocker_timeout = '1min' (the sentinel running)
#
# and four workloads (rows):
#
#   sp       pgbench -S -M prepared
#   ss       pgbench -S -M simple
#   st       a 20-statement transaction, -M prepared (BEGIN; 20 x SELECT
#            abalance FROM pgbench_accounts WHERE aid = :aid; END;), also
#            shown per statement
#   np       pgbench -N -M prepared
#
# TPS on a 2-core machine moves by several percent between identical runs;
# instruction counts do not.  Each figure is the difference between a long
# run (3N transactions) and a short run (N transactions) of one pgbench
# client, divided by 2N, so connection start-up and exit cancel out; pgbench
# uses fixed seeds, so every configuration does the same work.  Every
# configuration starts from a copy of the same freshly initialised and
# prewarmed cluster, and runs the rows in the same order.
#
# What depends on timing is left out or switched off, so that repeated runs
# agree to within a few instructions per transaction:
#   - the instructions spent waiting for the client's next message (whether it
#     has arrived when the backend reads decides between one read and a read,
#     a wait and a second read; up to 0.5% of a figure): the functions in
#     WAIT_FUNCTIONS below are not counted;
#   - the WAL writer initialising WAL pages ahead of the backends when it
#     happens to wake (up to 0.4% on the write row): it is made to initialise
#     all 64MB of wal_buffers before the runs (see start_under_valgrind);
#   - the background writer is off, and there are no timed checkpoints, no
#     autovacuum, no fsync.
# Statistics are still flushed once a second; that costs a few instructions
# per transaction at most.
#
#   bench/instructions.sh [-b PGBIN] [-L DIR] [-r ROWS] [-c COLUMNS] [-n N] [-s SCALE] [-P] [-k]
#     -b  PostgreSQL bin directory (default /usr/lib/postgresql/15/bin)
#     -L  load pg_txguard.so from DIR instead of the installed library, e.g.
#         an uninstalled build: sets dynamic_library_path = 'DIR:$libdir'
#     -r  rows, comma-separated, from sp,ss,st,np (default: all)
#     -c  columns, comma-separated, from none,pgss,txg,txgt (default: all;
#         percentages need none)
#     -n  transactions in the short run; the long run has 3N (default 500)
#     -s  pgbench scale (default 1)
#     -P  profile instead: callgrind on one row and one pg_txguard column
#         (default sp and txgt; else the first of -r and the first txg* of
#         -c), printing the instructions per transaction spent in each
#         pg_txguard function (self) and in each core function it calls
#         (inclusive), without the calls that hand the work on to PostgreSQL
#     -k  keep the work directory (server logs; cachegrind files cg.PID, per
#         function: compare two with cg_diff / cg_annotate)
#
# Needs valgrind and PostgreSQL (Debian: apt-get install valgrind
# postgresql-15; pgbench, pg_stat_statements and pg_prewarm are part of
# postgresql-15 on Debian), and python3 for -P.
# Runs as root (the server then runs as user postgres; DIR must be readable
# by it) or as a normal user.  Takes about half a minute per column, 10 s with -P.
# The script stands alone: it does not use the project's other scripts.
set -euo pipefail

PGBIN=/usr/lib/postgresql/15/bin
LIBDIR_OVERRIDE=""
ROWS=sp,ss,st,np
COLS=none,pgss,txg,txgt
N=500
SCALE=1
PROFILE=0
KEEP=0
SEED_SHORT=7
SEED_LONG=11
STATEMENTS=20

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
die() { printf 'instructions.sh: %s\n' "$*" >&2; exit 1; }
say() { printf '  %s\n' "$*" >&2; }

while getopts "b:L:r:c:n:s:Pkh" o; do
	case $o in
		b) PGBIN=$OPTARG ;;
		L) LIBDIR_OVERRIDE=$(cd "$OPTARG" && pwd) || die "no directory $OPTARG" ;;
		r) ROWS=$OPTARG ;;
		c) COLS=$OPTARG ;;
		n) N=$OPTARG ;;
		s) SCALE=$OPTARG ;;
		P) PROFILE=1 ;;
		k) KEEP=1 ;;
		*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage
[[ $N =~ ^[1-9][0-9]*$ ]] || die "-n wants a positive number"

IFS=, read -r -a ROW_LIST <<<"$ROWS"
IFS=, read -r -a COL_LIST <<<"$COLS"
for r in "${ROW_LIST[@]}"; do [[ $r =~ ^(sp|ss|st|np)$ ]] || die "unknown row $r (sp, ss, st, np)"; done
for c in "${COL_LIST[@]}"; do [[ $c =~ ^(none|pgss|txg|txgt)$ ]] || die "unknown column $c (none, pgss, txg, txgt)"; done
if [ "$PROFILE" = 1 ]; then
	# one row (default sp) and one pg_txguard column (default txgt)
	[ "$ROWS" = sp,ss,st,np ] && ROW_LIST=(sp)
	ROW_LIST=("${ROW_LIST[0]}")
	pcol=txgt
	[ "$COLS" = none,pgss,txg,txgt ] ||
		for c in "${COL_LIST[@]}"; do [[ $c == txg* ]] && { pcol=$c; break; }; done
	COL_LIST=("$pcol")
fi

command -v valgrind >/dev/null || die "valgrind is not installed (apt-get install valgrind)"
[ "$PROFILE" = 0 ] || command -v python3 >/dev/null || die "python3 is not installed"
[ -x "$PGBIN/postgres" ] && [ -x "$PGBIN/pgbench" ] ||
	die "no postgres and pgbench in $PGBIN (apt-get install postgresql-15, or give -b)"
PKGLIBDIR=$("$PGBIN/pg_config" --pkglibdir 2>/dev/null) ||
	PKGLIBDIR=$(dirname "$PGBIN")/lib
PG_VERSION=$("$PGBIN/postgres" --version | awk '{print $3}')

as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

needs_txguard=0
for c in "${COL_LIST[@]}"; do [[ $c == txg* ]] && needs_txguard=1; done
if [ "$needs_txguard" = 1 ]; then
	if [ -n "$LIBDIR_OVERRIDE" ]; then
		TXG_SO=$LIBDIR_OVERRIDE/pg_txguard.so
		[ -f "$TXG_SO" ] || die "no $TXG_SO (build it first: make PG_CONFIG=$PGBIN/pg_config)"
		as_owner test -r "$TXG_SO" || die "$TXG_SO is not readable by $(as_owner id -un)"
	else
		TXG_SO=$PKGLIBDIR/pg_txguard.so
		[ -f "$TXG_SO" ] || die "pg_txguard is not installed in $PKGLIBDIR (make install, or give -L DIR)"
	fi
fi

T=$(mktemp -d /tmp/txg-instr.XXXXXX)
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

# the 20-statement transaction
{
	echo '\set aid random(1, 100000 * :scale)'
	echo 'BEGIN;'
	for _ in $(seq 1 "$STATEMENTS"); do echo 'SELECT abalance FROM pgbench_accounts WHERE aid = :aid;'; done
	echo 'END;'
} >"$T/st.sql"
chmod 644 "$T/st.sql"

row_args() {
	case $1 in
		sp) echo "-S -M prepared" ;;
		ss) echo "-S -M simple" ;;
		st) echo "-M prepared -f $T/st.sql" ;;
		np) echo "-N -M prepared" ;;
	esac
}
row_label() {
	case $1 in
		sp) echo '`pgbench -S -M prepared`' ;;
		ss) echo '`pgbench -S -M simple`' ;;
		st) echo "$STATEMENTS-statement transaction, \`-M prepared\`" ;;
		np) echo '`pgbench -N -M prepared`' ;;
	esac
}
col_label() {
	case $1 in
		none) echo "no extension" ;;
		pgss) echo "pg_stat_statements" ;;
		txg) echo "pg_txguard, no timeout" ;;
		txgt) echo "pg_txguard, timeout and sentinel on" ;;
	esac
}
col_conf() {
	case $1 in
		none) echo "shared_preload_libraries = ''" ;;
		pgss) echo "shared_preload_libraries = 'pg_stat_statements'" ;;
		txg) echo "shared_preload_libraries = 'pg_txguard'" ;;
		txgt)
			echo "shared_preload_libraries = 'pg_txguard'"
			echo "txguard.transaction_timeout = '1h'"
			echo "txguard.idle_blocker_timeout = '1min'"
			;;
	esac
	if [[ $1 == txg* ]] && [ -n "$LIBDIR_OVERRIDE" ]; then
		echo "dynamic_library_path = '$LIBDIR_OVERRIDE:\$libdir'"
	fi
}

# --- one pristine cluster, copied for every configuration ---
echo "instructions.sh: PostgreSQL $PG_VERSION, scale $SCALE, N=$N, work directory $T" >&2
as_owner "$PGBIN/initdb" -D "$T/pristine" -A trust -U postgres -E UTF8 --locale=C >/dev/null
as_owner tee -a "$T/pristine/postgresql.conf" >/dev/null <<CONF
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
CONF
as_owner "$PGBIN/pg_ctl" -D "$T/pristine" -l "$T/pristine.log" -w start >/dev/null ||
	{ tail -5 "$T/pristine.log" >&2; exit 1; }
PGB -i -q -s "$SCALE" >/dev/null 2>&1 || die "pgbench -i failed"
PSQL -c 'CREATE EXTENSION pg_prewarm' >/dev/null
as_owner "$PGBIN/pg_ctl" -D "$T/pristine" -w -m fast stop >/dev/null

# start the copy under valgrind; $1 = configuration, $2... = valgrind options
start_under_valgrind() {
	local col=$1
	shift
	as_owner rm -rf "$T/d"
	as_owner cp -a "$T/pristine" "$T/d"
	col_conf "$col" | as_owner tee -a "$T/d/postgresql.conf" >/dev/null
	# every process of the cluster under valgrind; each writes its own files
	as_owner bash -c "cd '$T' && exec valgrind --trace-children=yes $* \
		'$PGBIN/postgres' -D '$T/d' >'$T/$col.log' 2>&1 &"
	local ok=0
	for _ in $(seq 1 300); do
		if "$PGBIN/pg_isready" -h "$T" -p "$PORT" -q; then ok=1; break; fi
		sleep 1
	done
	[ "$ok" = 1 ] || { tail -20 "$T/$col.log" >&2; die "the server did not start ($col)"; }
	# check that the library in the columns' names is the one loaded
	if [[ $col == txg* ]]; then
		local pm maps
		pm=$(head -1 "$T/d/postmaster.pid")
		maps=$(as_owner grep -o '/[^ ]*pg_txguard[^ ]*\.so' "/proc/$pm/maps" | sort -u)
		[ "$maps" = "$TXG_SO" ] || die "$col: expected $TXG_SO loaded, found '${maps:-nothing}'"
	fi
	if [ "$col" = txgt ]; then
		local s=0
		for _ in $(seq 1 60); do
			s=$(PSQL -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_txguard sentinel'")
			[ "$s" -ge 1 ] && break
			sleep 1
		done
		[ "$s" -ge 1 ] || die "the pg_txguard sentinel is not running"
	fi
	# shared buffers hold the whole data set before anything is measured
	PSQL -c "SELECT sum(pg_prewarm(c.oid)) FROM pg_class c
	         WHERE c.relname LIKE 'pgbench%' AND c.relkind IN ('r', 'i')" >/dev/null
	# When the WAL writer finds WAL to write, it also initialises the free WAL
	# buffers ahead of the insert position, work a backend would otherwise do
	# itself, at moments that depend on timing (up to 0.4% on the write row).
	# Have it do so now, for all 64MB of wal_buffers, more than the rows write:
	# then no backend initialises a WAL page.  An asynchronous commit of more
	# than a page of WAL wakes it.
	PSQL -c "SET synchronous_commit = off" \
		-c "CREATE TABLE instr_wal_wake AS SELECT g FROM generate_series(1, 10000) g" >/dev/null
	sleep 3
}

# the pid of a run's backend, from the server log: pgbench's first
# connection (reading the scale) ends before its client's connection starts
backend_pid() {
	awk -v app="$2" '$2 == app && /disconnection:/ {print $1}' "$T/$1.log" | tail -1
}

# run row $2 on configuration $1: a short and a long run, with fixed seeds
run_row() {
	local col=$1 row=$2 args
	read -r -a args <<<"$(row_args "$row")"
	PGAPPNAME="instr_${row}_short" PGB -n -c 1 --random-seed=$SEED_SHORT -t "$N" "${args[@]}" \
		>/dev/null 2>"$T/err" || { cat "$T/err" >&2; die "pgbench failed ($col, $row)"; }
	PGAPPNAME="instr_${row}_long" PGB -n -c 1 --random-seed=$SEED_LONG -t $((3 * N)) "${args[@]}" \
		>/dev/null 2>"$T/err" || { cat "$T/err" >&2; die "pgbench failed ($col, $row)"; }
}

# Instructions of a backend, from its cachegrind file, without those spent
# on waiting for the client's next message: whether it has already arrived
# when the backend reads depends on timing (one read, or a read that finds
# nothing, a wait and a second read), which moves a figure by up to 0.5%.
WAIT_FUNCTIONS="secure_read secure_raw_read recv __libc_recv __errno_location
	WaitEventSetWait WaitEventSetWaitBlock ModifyWaitEvent epoll_wait ProcessClientReadInterrupt"
irefs() {
	awk -v skip="$WAIT_FUNCTIONS" '
		BEGIN { n = split(skip, w, /[ \t\n]+/); for (i = 1; i <= n; i++) if (w[i] != "") waiting[w[i]] = 1 }
		/^fn=/ { fn = substr($0, 4); next }
		/^[0-9]/ && !(fn in waiting) { total += $2 }
		END { printf "%.0f\n", total }' "$1"
}

if [ "$PROFILE" = 1 ]; then
	start=$SECONDS
	prow=${ROW_LIST[0]}
	say "profiling $(row_label "$prow"), $(col_label "$pcol") (callgrind)"
	start_under_valgrind "$pcol" --tool=callgrind "--callgrind-out-file=$T/cg.%p" \
		--log-file="$T/vg.%p" --dump-instr=no
	run_row "$pcol" "$prow"
	stop
	short=$(backend_pid "$pcol" "instr_${prow}_short")
	long=$(backend_pid "$pcol" "instr_${prow}_long")
	[ -n "$short" ] && [ -n "$long" ] || die "could not find the backends in the server log"
	python3 - "$T/cg.$short" "$T/cg.$long" "$N" "$(basename "$TXG_SO")" \
		"$(row_label "$prow"), $(col_label "$pcol")" <<'PY'
import sys, re, collections

def parse(path, obj):
    """self cost per function of object obj, and inclusive cost of every
    call from those functions to functions outside it"""
    names = {k: {} for k in ('ob', 'fl', 'fn')}
    kind = {'ob': 'ob', 'cob': 'ob', 'fl': 'fl', 'fi': 'fl', 'fe': 'fl',
            'cfi': 'fl', 'cfl': 'fl', 'fn': 'fn', 'cfn': 'fn'}
    ours = set()                                     # function names in obj
    self_cost = collections.Counter()
    calls_out = collections.Counter()                # (caller, callee) -> inclusive
    calls_in = collections.Counter()                 # (caller, callee) -> inclusive, inside obj
    ob = fn = cob = cfn = None
    pending_call = False
    for line in open(path):
        line = line.rstrip('\n')
        m = re.match(r'^(ob|fl|fi|fe|fn|cob|cfi|cfl|cfn)=(?:\((\d+)\))?\s*(.*)$', line)
        if m:
            key, ident, name = m.groups()
            table = names[kind[key]]
            if ident is not None:
                if name:
                    table[ident] = name
                name = table.get(ident, '?' + ident)
            if key == 'ob':
                ob = name
            elif key == 'fn':
                fn = name
                cob = None
                if ob is not None and ob.endswith('/' + obj):
                    ours.add(fn)
            elif key == 'cob':
                cob = name
            elif key == 'cfn':
                cfn = name
            continue
        if line.startswith('calls='):
            pending_call = True
            continue
        if not line or not (line[0].isdigit() or line[0] in '+-*'):
            continue
        parts = line.split()
        cost = int(parts[1]) if len(parts) > 1 else 0
        if pending_call:
            pending_call = False
            target_ob = cob if cob is not None else ob
            if fn in ours:
                if target_ob is not None and target_ob.endswith('/' + obj):
                    calls_in[(fn, cfn)] += cost
                else:
                    calls_out[(fn, cfn)] += cost
            cob = None
        elif fn in ours:
            self_cost[fn] += cost
    return ours, self_cost, calls_out

short_path, long_path, n, obj, what = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
o1, s1, c1 = parse(short_path, obj)
o2, s2, c2 = parse(long_path, obj)
per = lambda a, b, k: (b.get(k, 0) - a.get(k, 0)) / (2.0 * n)

# calls that hand the work on to PostgreSQL (the hooked function itself, or
# the previous hook or method, called through a pointer: a static function
# such as socket_putmessage has no name in a stripped postgres) are not
# pg_txguard's cost; everything else is
passthrough = re.compile(r'^(standard_\w+|socket_\w+|0x[0-9a-f]+)$')

print('pg_txguard, instructions per transaction: %s (callgrind)' % what)
print()
print('| pg_txguard function (self) | instructions |')
print('|---|---:|')
rows = sorted(((per(s1, s2, f), f) for f in set(s1) | set(s2)), reverse=True)
own = 0.0
for v, f in rows:
    if abs(v) >= 0.5:
        print('| `%s` | %.0f |' % (f, v))
    own += v
print('| **total in pg_txguard** | **%.0f** |' % own)
print()
print('| core function called by pg_txguard (inclusive) | from | instructions |')
print('|---|---|---:|')
rows = sorted(((per(c1, c2, k), k) for k in set(c1) | set(c2)), reverse=True)
core = 0.0
passed = []
by_callee = collections.Counter()
for v, (caller, callee) in rows:
    if passthrough.match(callee):
        if abs(v) >= 0.5:
            passed.append((v, caller, callee))
        continue
    if abs(v) >= 0.5:
        print('| `%s` | `%s` | %.0f |' % (callee, caller, v))
    core += v
    by_callee[callee] += v
print('| **total in core functions** | | **%.0f** |' % core)
print()
print('core functions, all callers: ' + ', '.join(
    '`%s` %.0f' % (f, v) for f, v in by_callee.most_common() if abs(v) >= 0.5))
print()
print('pg_txguard and what it calls: %.0f instructions per transaction' % (own + core))
print('(static inline functions are counted in their callers)')
if passed:
    print('(not counted, the work handed on to PostgreSQL: %s)' %
          ', '.join('`%s` from `%s`' % (callee, caller) for _, caller, callee in passed))
PY
	echo
	echo "Measured with bench/instructions.sh -P: PostgreSQL $PG_VERSION, valgrind $(valgrind --version | sed 's/valgrind-//'), scale $SCALE, pgbench -n -c 1 with --random-seed=$SEED_SHORT (-t $N) and --random-seed=$SEED_LONG (-t $((3 * N))), per transaction = (long - short) / $((2 * N)); library $TXG_SO; $((SECONDS - start)) s."
	exit 0
fi

# --- the table ---
declare -A RESULT
start=$SECONDS
for col in "${COL_LIST[@]}"; do
	say "$(col_label "$col"): starting the server under valgrind"
	start_under_valgrind "$col" --tool=cachegrind --cache-sim=no \
		"--cachegrind-out-file=$T/cg.%p" "--log-file=$T/vg.%p"
	for row in "${ROW_LIST[@]}"; do
		run_row "$col" "$row"
	done
	stop
	for row in "${ROW_LIST[@]}"; do
		short=$(backend_pid "$col" "instr_${row}_short")
		long=$(backend_pid "$col" "instr_${row}_long")
		[ -n "$short" ] && [ -n "$long" ] || die "could not find the backends of $col/$row in the server log"
		a=$(irefs "$T/cg.$short")
		b=$(irefs "$T/cg.$long")
		[ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ] || die "no count for $col/$row (valgrind logs $T/vg.$short, $T/vg.$long)"
		RESULT[$col,$row]=$(((b - a) / (2 * N)))
		say "$(col_label "$col"), $(row_label "$row"): ${RESULT[$col,$row]} instructions per transaction"
	done
done
elapsed=$((SECONDS - start))

# thousands separators, and the difference from "no extension"
grp() { echo "$1" | sed ':a; s/\B[0-9]\{3\}\>/,&/; ta'; }
cell() {
	local col=$1 value=$2 base=$3
	if [ "$col" != none ] && [ -n "$base" ]; then
		printf '%s (%s)' "$(grp "$value")" "$(awk -v v="$value" -v b="$base" 'BEGIN { printf "%+.2f%%", 100 * (v - b) / b }')"
	else
		grp "$value"
	fi
}

echo
header="| workload |"; rule="|---|"
for col in "${COL_LIST[@]}"; do header+=" $(col_label "$col") |"; rule+="---:|"; done
echo "$header"
echo "$rule"
for row in "${ROW_LIST[@]}"; do
	line="| $(row_label "$row") |"
	base=${RESULT[none,$row]:-}
	for col in "${COL_LIST[@]}"; do line+=" $(cell "$col" "${RESULT[$col,$row]}" "$base") |"; done
	echo "$line"
	if [ "$row" = st ]; then
		line="| the same, per statement |"
		base=${base:+$((base / STATEMENTS))}
		for col in "${COL_LIST[@]}"; do
			line+=" $(cell "$col" $((RESULT[$col,$row] / STATEMENTS)) "$base") |"
		done
		echo "$line"
	fi
done
echo
lib=""
if [ "$needs_txguard" = 1 ]; then
	lib="; pg_txguard from $TXG_SO"
	# the build's commit, when the library sits in a git checkout
	g=(git -c safe.directory='*' -C "$(dirname "$TXG_SO")")
	if commit=$("${g[@]}" rev-parse --short HEAD 2>/dev/null); then
		"${g[@]}" diff --quiet HEAD -- 2>/dev/null || commit+=", with local changes"
		lib+=" (commit $commit)"
	fi
fi
cat <<EOF
Instructions per transaction in user space of the pgbench client's backend,
counted by valgrind $(valgrind --version | sed 's/valgrind-//') (cachegrind, no cache simulation) with
\`bench/instructions.sh\`: PostgreSQL $PG_VERSION, pgbench scale $SCALE, one client,
a short run of $N transactions (\`--random-seed=$SEED_SHORT\`) and a long run of $((3 * N))
(\`--random-seed=$SEED_LONG\`), (long - short) / $((2 * N)), not counting the wait for the
client's next message; every configuration starts from a copy of the same
prewarmed cluster (fsync, autovacuum, timed checkpoints and the background
writer off; the WAL buffers initialised before the runs).
"Timeout and sentinel on": \`txguard.transaction_timeout = '1h'\`,
\`txguard.idle_blocker_timeout = '1min'\`$lib.
$(date -u +%Y-%m-%d), $(nproc) cores, ${elapsed} s.
EOF
