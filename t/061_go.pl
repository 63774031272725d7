# 061_go.pl: the three field reports, reproduced with Go's lib/pq and pgx v4
#
# test/drivers/go/txgdrivers is built offline from Debian's packages
# (golang-go, golang-github-lib-pq-dev, golang-github-jackc-pgx-v4-dev,
# which scripts/test installs) and run against a preloaded server:
#
#  - a transaction shared by two goroutines: the driver fails ("pq:
#    unexpected ... response", "conn busy"), the connection is dropped, and
#    pg_txguard records an abandoned transaction with its statements;
#  - a missing Rollback() holding FOR UPDATE: the transaction timeout, or
#    the sentinel, frees the request waiting for the row;
#  - check-then-insert from many goroutines leaves duplicates, while
#    txguard.insert_or_get from the same goroutines leaves none.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $gocode = '/usr/share/gocode/src/github.com';
plan skip_all => 'Go or its PostgreSQL drivers are not installed (scripts/test installs '
  . 'golang-go, golang-github-lib-pq-dev and golang-github-jackc-pgx-v4-dev)'
  unless system('sh', '-c', 'command -v go >/dev/null') == 0
  && -d "$gocode/lib/pq" && -d "$gocode/jackc/pgx/v4";

my $src = -d 'test/drivers/go/txgdrivers'
  ? 'test/drivers/go/txgdrivers' : "$ENV{TESTDIR}/test/drivers/go/txgdrivers";
my $bin = "${PostgreSQL::Test::Utils::tmp_check}/txgdrivers";
{
	local %ENV = (%ENV, GO111MODULE => 'off', GOPATH => '/usr/share/gocode',
		GOPROXY => 'off', GOFLAGS => '',
		GOCACHE => "${PostgreSQL::Test::Utils::tmp_check}/gocache");
	my ($out, $err);
	my $ok = IPC::Run::run([ 'go', 'build', '-o', $bin, '.' ],
		'>', \$out, '2>', \$err, init => sub { chdir $src or die "chdir $src: $!" });
	ok($ok, 'txgdrivers builds offline from the Debian packages') or diag($err);
}

my $node = PostgreSQL::Test::Cluster->new('go');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_txguard'\n");
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION pg_txguard;
CREATE TABLE orders (id int PRIMARY KEY, state text);
INSERT INTO orders VALUES (1, 'new'), (2, 'new');
CREATE TABLE stock (id int PRIMARY KEY, n int);
INSERT INTO stock VALUES (1, 10);
CREATE TABLE signups (id bigserial PRIMARY KEY, email text NOT NULL);
CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE);
CREATE ROLE app LOGIN;
GRANT ALL ON orders, stock, signups, users TO app;
GRANT ALL ON SEQUENCE signups_id_seq, users_id_seq TO app;
ALTER ROLE app SET txguard.transaction_timeout = '1s';
});
my $superuser = $node->safe_psql('postgres', 'SELECT current_user');

# run a scenario; returns the hash of its key=value lines
sub scenario
{
	my ($name, $driver, $user) = @_;
	my $dsn = 'host=' . $node->host . ' port=' . $node->port
	  . " dbname=postgres user=$user sslmode=disable";
	my ($out, $err) = ('', '');
	IPC::Run::run([ $bin, $name, $driver, $dsn ], '>', \$out, '2>', \$err,
		IPC::Run::timeout(60));
	note("$name $driver:\n$out$err");
	my %r = map { /^([^=]+)=(.*)$/ ? ($1 => $2) : () } split /\n/, $out;
	return \%r;
}

sub events_of
{
	my ($app) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(kind || ' ' || statements || ' ' || first_statement, '; ' ORDER BY event_time)
		  FROM txguard.events WHERE application_name = '$app'});
}

# --- a transaction shared by two goroutines ---
{
	my $r = scenario('shared-tx', 'pq', $superuser);
	like(($r->{reader_error} // '') . ' ' . ($r->{writer_error} // ''),
		qr/pq: unexpected \S+ response/, 'lib/pq: the driver fails on the interleaved protocol');
	ok( $node->poll_query_until('postgres',
			q{SELECT count(*) = 1 FROM txguard.events WHERE application_name = 'shared-tx-pq'}),
		'lib/pq: an event is recorded');
	like(events_of('shared-tx-pq'),
		qr/^abandoned \d+ UPDATE orders SET state = 'reserved' WHERE id = 1$/,
		'lib/pq: abandoned, with the first statement');

	$r = scenario('shared-tx', 'pgx', $superuser);
	like($r->{writer_error} // '', qr/conn busy/, 'pgx: the second goroutine gets "conn busy"');
	like($r->{rollback_error} // '', qr/conn busy/, 'pgx: so does its deferred Rollback');
	is($r->{conn_closed}, 'true', 'pgx: which closes the connection');
	ok( $node->poll_query_until('postgres',
			q{SELECT count(*) = 1 FROM txguard.events WHERE application_name = 'shared-tx-pgx'}),
		'pgx: an event is recorded');
	like(events_of('shared-tx-pgx'),
		qr/^abandoned \d+ UPDATE orders SET state = 'reserved' WHERE id = 1$/,
		'pgx: abandoned, with the first statement');
	is($node->safe_psql('postgres', q{SELECT string_agg(state, ',' ORDER BY id) FROM orders}),
		'new,new', 'neither transaction committed');
}

# --- a missing Rollback() holding FOR UPDATE ---
foreach my $driver ('pq', 'pgx')
{
	# the role's transaction timeout ends it
	my $r = scenario('leak', $driver, 'app');
	is($r->{first_request}, 'not enough stock', "$driver: the first request leaks its transaction");
	is($r->{second_request}, '<nil>', "$driver: the waiting request succeeds");
	cmp_ok($r->{waited_ms} // 1e9, '<', 5000, "$driver: after about the timeout");
	like(events_of("leak-$driver"),
		qr/^timeout_terminate \d+ SELECT n FROM stock WHERE id = 1 FOR UPDATE$/,
		"$driver: ended by the transaction timeout");
}
# --- what database/sql returns, with the role's 1 s limit ---
foreach my $driver ('pq', 'pgx')
{
	my $r = scenario('errors', $driver, 'app');
	is($r->{cancel_sqlstate}, '25P04', "$driver: a cancelled statement's error has SQLSTATE 25P04");
	is($r->{cancel_rollback}, '<nil>', "$driver: Rollback() succeeds after it");
	is($r->{after_rollback}, '<nil>', "$driver: and the pool's connection works");
	is($r->{idle_error}, 'driver: bad connection',
		"$driver: the next statement of a terminated idle transaction fails");
	is($r->{idle_sqlstate} . '|' . $r->{idle_bad_conn}, '|true',
		"$driver: with no SQLSTATE: it is driver.ErrBadConn");
	is($r->{after_idle}, '<nil>', "$driver: the pool opens a new connection for the next request");
}

$node->safe_psql('postgres', q{
ALTER ROLE app RESET txguard.transaction_timeout;
ALTER SYSTEM SET txguard.idle_blocker_timeout = '1s';
SELECT pg_reload_conf();
});
foreach my $driver ('pq', 'pgx')
{
	# no timeout: the sentinel ends it, as it blocks the second request
	my $r = scenario('leak', $driver, $superuser);
	is($r->{second_request}, '<nil>', "$driver, sentinel: the waiting request succeeds");
	cmp_ok($r->{waited_ms} // 1e9, '<', 5000, "$driver, sentinel: after about the threshold");
	like(events_of("leak-$driver"),
		qr/idle_blocker_terminate \d+ SELECT n FROM stock WHERE id = 1 FOR UPDATE$/,
		"$driver, sentinel: ended by the sentinel");
}

# --- check-then-insert from many goroutines ---
foreach my $driver ('pq', 'pgx')
{
	$node->safe_psql('postgres', 'TRUNCATE signups, users');
	my $r = scenario('dupes', $driver, $superuser);
	cmp_ok($r->{check_then_insert_rows} // 0, '>', $r->{check_then_insert_distinct} // 0,
		"$driver: check-then-insert leaves duplicates");
	is($r->{check_then_insert_distinct}, '20', "$driver: of the 20 addresses");
	is(($r->{insert_or_get_rows} // '') . ' ' . ($r->{insert_or_get_distinct} // ''),
		'20 20', "$driver: insert_or_get leaves one row per address");
	is($r->{insert_or_get_errors}, '0', "$driver: and no errors");
}

$node->stop;
done_testing();
