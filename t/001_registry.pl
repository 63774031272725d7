# 001_registry.pl: txguard.transactions with real clients
#
# The extended protocol (pgbench -M prepared / extended), many sessions at
# once, slots released when a session exits, and an empty, working
# registry after a backend is killed with SIGKILL (crash and restart).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('registry');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_txguard'
max_connections = 130
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_txguard');

my $tempdir = PostgreSQL::Test::Utils::tempdir;

# start pgbench in the background with the given script and options
sub start_pgbench
{
	my ($script, @opts) = @_;
	my $file = "$tempdir/script.sql";
	open my $fh, '>', $file or die $!;
	print $fh $script;
	close $fh;
	my ($out, $err) = ('', '');
	# the test framework sets PGAPPNAME for every client; name pgbench's
	local $ENV{PGAPPNAME} = 'pgbench';
	my $h = IPC::Run::start(
		[ 'pgbench', '-n', @opts, '-f', $file, '-h', $node->host, '-p', $node->port, 'postgres' ],
		'>', \$out, '2>', \$err);
	return ($h, \$out, \$err);
}

sub finish_pgbench
{
	my ($h, $out, $err, $name) = @_;
	$h->finish;
	is($h->result(0), 0, "$name: pgbench succeeded") or diag($$out . $$err);
}

# --- the extended protocol: Parse/Bind/Execute, as Go drivers use it ---
foreach my $mode (qw(prepared extended))
{
	# a SELECT whose portal stays open while the client sleeps in the
	# transaction: the session is idle in transaction, not active
	my ($h, $out, $err) = start_pgbench(
		"BEGIN;\nSELECT 1;\nSELECT 2;\n\\sleep 3 s\nEND;\n",
		'-M', $mode, '-c', '1', '-t', '1');
	ok( $node->poll_query_until('postgres', qq{
		SELECT statements = 2 AND first_statement = 'SELECT 1'
		       AND last_statement = 'SELECT 2' AND state = 'idle in transaction'
		  FROM txguard.transactions WHERE application_name = 'pgbench'}),
		"$mode protocol: statements counted, session idle in transaction");
	finish_pgbench($h, $out, $err, "$mode protocol");
	is( $node->safe_psql('postgres',
			"SELECT count(*) FROM txguard.transactions WHERE application_name = 'pgbench'"),
		'0', "$mode protocol: no row once the transaction ended");

	# a running statement is active
	($h, $out, $err) = start_pgbench("SELECT pg_sleep(2);\n",
		'-M', $mode, '-c', '1', '-t', '1');
	ok( $node->poll_query_until('postgres', qq{
		SELECT statements = 1 AND state = 'active'
		       AND first_statement = 'SELECT pg_sleep(2)'
		  FROM txguard.transactions WHERE application_name = 'pgbench'}),
		"$mode protocol: implicit transaction is active with its statement");
	finish_pgbench($h, $out, $err, "$mode protocol, implicit transaction");
}

# --- 100 sessions in transactions at once ---
{
	my ($h, $out, $err) = start_pgbench(
		"BEGIN;\nSELECT 1;\n\\sleep 4 s\nEND;\n", '-c', '100', '-j', '2', '-t', '1');
	ok( $node->poll_query_until('postgres', qq{
		SELECT count(*) = 100 FROM txguard.transactions
		 WHERE application_name = 'pgbench' AND state = 'idle in transaction'
		   AND statements = 1}),
		'100 concurrent sessions are all in the view');
	is( $node->safe_psql('postgres', qq{
		SELECT count(DISTINCT pid) FROM txguard.transactions
		 WHERE application_name = 'pgbench'}),
		'100', 'one row per session');
	finish_pgbench($h, $out, $err, '100 sessions');
	is( $node->safe_psql('postgres',
			"SELECT count(*) FROM txguard.transactions WHERE application_name = 'pgbench'"),
		'0', 'all 100 rows gone after the sessions ended');
}

# --- a session that exits inside a transaction leaves no row ---
{
	my $psql = $node->background_psql('postgres');
	$psql->query_safe("SET application_name = 'leaver'; BEGIN; SELECT 42;");
	is( $node->safe_psql('postgres',
			"SELECT last_statement FROM txguard.transactions WHERE application_name = 'leaver'"),
		'SELECT 42', 'session in a transaction is registered');
	$psql->quit;
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) = 0 FROM txguard.transactions WHERE application_name = 'leaver'"),
		'its slot is released when the session exits');
}

# --- SIGKILL: crash and restart come back with an empty, working registry ---
{
	my $psql = $node->background_psql('postgres');
	my $pid = $psql->query_safe(
		"SET application_name = 'victim'; BEGIN; SELECT pg_backend_pid();");
	chomp $pid;
	my $other = $node->background_psql('postgres');
	$other->query_safe("SET application_name = 'bystander'; BEGIN; SELECT 1;");
	is( $node->safe_psql('postgres', 'SELECT count(*) FROM txguard.transactions'),
		'3', 'two sessions and the observer are in the registry');

	my $log_offset = -s $node->logfile;
	kill 'KILL', $pid;
	$psql->{run}->kill_kill;
	$other->{run}->kill_kill;
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
	ok( $node->poll_query_until('postgres', 'SELECT true'),
		'server accepts connections after the crash');
	is( $node->safe_psql('postgres',
			'SELECT count(*) FROM txguard.transactions WHERE pid <> pg_backend_pid()'),
		'0', 'no stale slot survives the crash');

	my $again = $node->background_psql('postgres');
	$again->query_safe("SET application_name = 'after'; BEGIN; SELECT 7;");
	is( $node->safe_psql('postgres', qq{
		SELECT state || ' ' || statements FROM txguard.transactions
		 WHERE application_name = 'after'}),
		'idle in transaction 1', 'registry works after the restart');
	$again->quit;
}

$node->stop;
done_testing();
