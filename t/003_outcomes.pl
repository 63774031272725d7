# 003_outcomes.pl: transaction outcomes, txguard.stats, abandoned
# transactions and the long-transaction log
#
# Work runs in database "work"; the checks read txguard.stats from
# "postgres", so that they do not count themselves.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('outcomes');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_txguard'
restart_after_crash = on
log_timezone = 'UTC'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_txguard');
$node->safe_psql('postgres', 'CREATE DATABASE work');
$node->safe_psql('work', 'CREATE TABLE orders (id int PRIMARY KEY, state text)');

sub stats
{
	return $node->safe_psql('postgres', qq{
		SELECT committed || ' ' || rolled_back || ' ' || failed || ' ' || abandoned
		       || ' ' || timed_out || ' ' || terminated || ' ' || blocker_terminated
		  FROM txguard.stats WHERE datname = 'work'});
}

sub run_work
{
	my ($script) = @_;
	my ($out, $err);
	$node->psql('work', $script, stdout => \$out, stderr => \$err, on_error_stop => 0);
	return ($out, $err);
}

# --- counters for commits, rollbacks and failures ---
$node->safe_psql('postgres', 'SELECT txguard.reset_stats()');
is(stats(), '', 'after reset, no row for the database');
run_work(q{
BEGIN; INSERT INTO orders VALUES (1, 'new'); COMMIT;
BEGIN; INSERT INTO orders VALUES (2, 'new'); COMMIT;
INSERT INTO orders VALUES (3, 'new');
BEGIN; INSERT INTO orders VALUES (4, 'new'); ROLLBACK;
BEGIN; SELECT 1; ROLLBACK;
INSERT INTO orders VALUES (1, 'duplicate');
BEGIN; UPDATE orders SET state = 'x' WHERE id = 1; SELECT 1/count(*) FROM orders WHERE false; ROLLBACK;
});
is(stats(), '3 2 2 0 0 0 0', 'committed 3, rolled back 2, failed 2');
ok( $node->safe_psql('postgres',
		"SELECT max_duration > interval '0' AND stats_reset <= now() FROM txguard.stats WHERE datname = 'work'")
		eq 't', 'max_duration and stats_reset are set');

# --- timed_out and terminated ---
run_work(q{
SET txguard.transaction_timeout = '200ms';
SELECT pg_sleep(2);
});
run_work(q{
SET txguard.transaction_timeout = '200ms';
BEGIN; SELECT 1;
\! sleep 1
});
is(stats(), '5 2 2 0 1 1 0',
	'a canceled statement counts as timed_out, an idle termination as terminated (the two SETs commit)');

# --- abandoned: the client quits cleanly mid-transaction ---
{
	my $log_offset = -s $node->logfile;
	run_work(q{
SET application_name = 'order-service';
BEGIN;
UPDATE orders SET state = 'shipped' WHERE id = 1;
INSERT INTO orders VALUES (10, 'shipped');
});
	ok( $node->wait_for_log(
			qr/LOG:  pg_txguard: event=abandoned pid=\d+ user=\S+ database=work application_name=order-service client_addr=local xact_start="[^"]+" duration="[\d.]+ s" statements=2 first_statement="UPDATE orders SET state = 'shipped' WHERE id = 1" last_statement="INSERT INTO orders VALUES \(10, 'shipped'\)" blocking=\{\}/,
			$log_offset),
		'clean quit: LOG line with the statements');
	is( $node->safe_psql('postgres', qq{
		SELECT kind || ' ' || statements || ' ' || last_statement
		  FROM txguard.events WHERE application_name = 'order-service'}),
		"abandoned 2 INSERT INTO orders VALUES (10, 'shipped')",
		'clean quit: abandoned event');
	is($node->safe_psql('work', "SELECT state FROM orders WHERE id = 1"), 'new',
		'clean quit: nothing committed');
	is(stats(), '7 2 2 1 1 1 0', 'clean quit: abandoned counted (the check above committed one more)');
}

# --- abandoned: the client is killed with SIGKILL ---
{
	my $log_offset = -s $node->logfile;
	my $psql = $node->background_psql('work');
	$psql->query_safe(q{SET application_name = 'killed-client'});
	$psql->query_safe(q{BEGIN});
	$psql->query_safe(q{INSERT INTO orders VALUES (20, 'lost')});
	$psql->{run}->signal('KILL');
	eval { $psql->{run}->finish; };
	ok( $node->wait_for_log(
			qr/event=abandoned pid=\d+ user=\S+ database=work application_name=killed-client .*first_statement="INSERT INTO orders VALUES \(20, 'lost'\)"/,
			$log_offset),
		'SIGKILL: LOG line with the statement');
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM txguard.events WHERE kind = 'abandoned' AND application_name = 'killed-client'"),
		'SIGKILL: abandoned event');
	is($node->safe_psql('work', "SELECT count(*) FROM orders WHERE id = 20"), '0',
		'SIGKILL: nothing committed');
	is(stats(), '9 2 2 2 1 1 0', 'SIGKILL: abandoned counted (with the SET and the check)');
}

# --- a transaction aborted by an error, then left by the client: abandoned ---
{
	my ($before_failed, $before_abandoned) = split / /, $node->safe_psql('postgres',
		"SELECT failed || ' ' || abandoned FROM txguard.stats WHERE datname = 'work'");
	run_work(q{
SET application_name = 'gave-up';
BEGIN;
INSERT INTO orders VALUES (1, 'duplicate');
});
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM txguard.events WHERE kind = 'abandoned' AND application_name = 'gave-up'"),
		'aborted, then left: abandoned event');
	is( $node->safe_psql('postgres',
			"SELECT failed || ' ' || abandoned FROM txguard.stats WHERE datname = 'work'"),
		$before_failed . ' ' . ($before_abandoned + 1),
		'aborted, then left: counted once, as abandoned');
}

# --- txguard.log_abandoned off: event and counter, no LOG line ---
{
	$node->safe_psql('postgres', "ALTER SYSTEM SET txguard.log_abandoned = off");
	$node->reload;
	$node->poll_query_until('work', "SELECT current_setting('txguard.log_abandoned') = 'off'");
	my $log_offset = -s $node->logfile;
	run_work(q{
SET application_name = 'quiet-leaver';
BEGIN;
SELECT 1;
});
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM txguard.events WHERE application_name = 'quiet-leaver'"),
		'log_abandoned off: the event is still recorded');
	$node->safe_psql('postgres', 'SELECT 1');
	unlike(slurp_file($node->logfile, $log_offset), qr/event=abandoned[^\n]*quiet-leaver/,
		'log_abandoned off: no LOG line');
	$node->safe_psql('postgres', "ALTER SYSTEM RESET txguard.log_abandoned");
	$node->reload;
}

# --- long transactions: logged at or above txguard.log_min_duration ---
{
	$node->safe_psql('postgres', "ALTER SYSTEM SET txguard.log_min_duration = '700ms'");
	$node->reload;
	$node->poll_query_until('work', "SELECT current_setting('txguard.log_min_duration') = '700ms'");
	my $log_offset = -s $node->logfile;
	run_work(q{
SET application_name = 'slow';
BEGIN; SELECT pg_sleep(1); UPDATE orders SET state = 'slow' WHERE id = 2; COMMIT;
SET application_name = 'fast';
BEGIN; SELECT pg_sleep(0.1); COMMIT;
});
	ok( $node->wait_for_log(
			qr/LOG:  pg_txguard: event=long_transaction outcome=committed pid=\d+ user=\S+ database=work application_name=slow client_addr=local xact_start="[^"]+" duration="1\.\d+ s" statements=2 first_statement="SELECT pg_sleep\(1\)" last_statement="UPDATE orders SET state = 'slow' WHERE id = 2"/,
			$log_offset),
		'a 1 s transaction is logged above a 700 ms threshold');
	$node->safe_psql('postgres', 'SELECT 1');
	unlike(slurp_file($node->logfile, $log_offset), qr/event=long_transaction[^\n]*application_name=fast/,
		'a 100 ms transaction is not');

	# xact_start is in log_timezone, as the line's prefix, whatever the
	# session's TimeZone
	$log_offset = -s $node->logfile;
	run_work(q{
SET application_name = 'tokyo';
SET TimeZone = 'Asia/Tokyo';
BEGIN; SELECT pg_sleep(0.8); COMMIT;
});
	ok( $node->wait_for_log(qr/event=long_transaction [^\n]*application_name=tokyo/, $log_offset),
		'a transaction of a session in another time zone is logged');
	my ($prefix, $xs) = slurp_file($node->logfile, $log_offset)
	  =~ /^(\S+ \S+ \S+) .*event=long_transaction [^\n]*application_name=tokyo [^\n]*xact_start="([^"]*)"/m;
	like($xs // '', qr/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC$/,
		'xact_start is written in log_timezone, with milliseconds');
	like($prefix // '', qr/ UTC$/, 'as the line prefix is');
	$node->safe_psql('postgres', "ALTER SYSTEM RESET txguard.log_min_duration");
	$node->reload;
}

# --- counters survive a clean restart, and are discarded after a crash ---
{
	my $before = stats();
	$node->restart;
	is(stats(), $before, 'counters survive a clean restart');
	ok( $node->safe_psql('postgres',
			"SELECT stats_reset < now() - interval '0' FROM txguard.stats WHERE datname = 'work'") eq 't',
		'stats_reset survives too');

	my $psql = $node->background_psql('work');
	my $pid = $psql->query_safe('SELECT pg_backend_pid()');
	chomp $pid;
	my $log_offset = -s $node->logfile;
	kill 'KILL', $pid;
	eval { $psql->{run}->kill_kill; };
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
	$node->poll_query_until('postgres', 'SELECT true');
	is(stats(), '', 'after a crash the counters start from zero');
}

$node->stop;
done_testing();
