# scripts/lib.sh: shared by scripts/start, scripts/stop and scripts/test.
#
# PostgreSQL refuses to run as root.  When these scripts run as root, the
# server, the build and the test instances run as the unprivileged
# "postgres" account, from a copy of the project that account owns (the
# checkout itself may not be readable by it).  As a normal user, they run
# as that user, and use sudo for apt and "make install".

set -euo pipefail

PROJECT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_MAJOR=${PG_MAJOR:-15}
PG_BIN=${PGTXG_PG_BIN:-/usr/lib/postgresql/$PG_MAJOR/bin}
PG_CONFIG=$PG_BIN/pg_config

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" = 0 ]; then
	RUN_USER=postgres
	SUDO=()
else
	RUN_USER=$(id -un)
	SUDO=(sudo)
fi

as_root() { "${SUDO[@]}" "$@"; }

as_user() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$RUN_USER" -- "$@"
	else
		"$@"
	fi
}

# Debian packages the build, the server and the tests need.
PACKAGES=(
	"postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR"
	libipc-run-perl libkrb5-dev python3
	make gcc libc6-dev
)

# and those only the tests need (scripts/test): the pooler, the drivers
# and the languages the TAP tests run real clients with, the exporter
TEST_PACKAGES=(
	pgbouncer python3-psycopg prometheus-postgres-exporter
	golang-go golang-github-lib-pq-dev golang-github-jackc-pgx-v4-dev
)

ensure_packages() {
	local missing=() p
	for p in "${PACKAGES[@]}" "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
			|| missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing ${missing[*]} (apt)"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends "${missing[@]}" >/dev/null
	# Debian creates and starts a "main" cluster on port 5432; it is not ours,
	# and we leave it as the package set it up.
}

user_home() { getent passwd "$RUN_USER" | cut -d: -f6; }

# BASE: where the run user keeps pg_txguard's build copy, data and logs
BASE=${PGTXG_BASE:-$(user_home)/.pg_txguard}
WORK=${WORK:-$BASE/src}

# copy the project to $WORK (owned by the run user) and build it there
build_copy() {
	as_root rm -rf "$WORK"
	as_user mkdir -p "$WORK"
	tar -C "$PROJECT" --exclude=./.git --exclude=./results --exclude=./output_iso \
		--exclude='./tmp_check*' --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
		--exclude=./regression.diffs --exclude=./regression.out --exclude=./log \
		-cf - . | as_user tar -C "$WORK" -xf -
	log "building pg_txguard against PostgreSQL $PG_MAJOR in $WORK"
	as_user make -s -C "$WORK" PG_CONFIG="$PG_CONFIG" >/dev/null
	log "installing pg_txguard into $($PG_CONFIG --pkglibdir)"
	as_root make -s -C "$WORK" PG_CONFIG="$PG_CONFIG" install >/dev/null
}
