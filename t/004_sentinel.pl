# 004_sentinel.pl: the idle-blocker sentinel
#
# A session idle in a transaction that blocks another is terminated after
# txguard.idle_blocker_timeout; the blocked writer proceeds; an idle
# transaction that blocks nobody survives.  The worker shows in
# pg_stat_activity, survives SIGHUP and comes back after it is killed.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('sentinel');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_txguard'
txguard.idle_blocker_timeout = '1s'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_txguard');
$node->safe_psql('postgres', 'CREATE TABLE stock (id int PRIMARY KEY, n int); INSERT INTO stock VALUES (1, 10), (2, 20)');

my $worker_pid_sql = "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_txguard sentinel'";
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($worker_pid_sql) w"),
	'the sentinel runs, named in pg_stat_activity');

# --- a blocker is ended, a harmless idle transaction is not ---
{
	my $harmless = $node->background_psql('postgres');
	$harmless->query_safe(q{SET application_name = 'harmless'});
	$harmless->query_safe(q{BEGIN});
	$harmless->query_safe(q{UPDATE stock SET n = n + 1 WHERE id = 2});

	my $blocker = $node->background_psql('postgres', on_error_stop => 0);
	$blocker->query_safe(q{SET application_name = 'blocker'});
	$blocker->query_safe(q{BEGIN});
	$blocker->query_safe(q{UPDATE stock SET n = n - 1 WHERE id = 1});

	my $log_offset = -s $node->logfile;
	my $start = time();
	my $waiter_out = $node->safe_psql('postgres',
		q{SET application_name = 'waiter'; UPDATE stock SET n = 0 WHERE id = 1 RETURNING n});
	my $waited = time() - $start;
	is($waiter_out, '0', 'the blocked writer proceeds');
	cmp_ok($waited, '<', 1 + 5, 'within the timeout plus slack');

	ok( $node->wait_for_log(
			qr/FATAL:  terminating connection because it was idle in a transaction that blocked other sessions/,
			$log_offset),
		'the blocker got the FATAL');
	ok( $node->wait_for_log(
			qr/LOG:  pg_txguard: event=idle_blocker_terminate action=terminate pid=\d+ user=\S+ database=postgres application_name=blocker .* limit="1000 ms" limit_setting=txguard.idle_blocker_timeout statements=1 first_statement="UPDATE stock SET n = n - 1 WHERE id = 1" .*blocking=\{\d+\}/,
			$log_offset),
		'LOG line with the statement and the pid it blocked');
	is( $node->safe_psql('postgres', q{
		SELECT kind || ' ' || cardinality(blocking) FROM txguard.events
		 WHERE application_name = 'blocker'}),
		'idle_blocker_terminate 1', 'event with the blocked pid');
	is( $node->safe_psql('postgres',
			"SELECT blocker_terminated FROM txguard.stats WHERE datname = 'postgres'"),
		'1', 'counted as blocker_terminated');

	# the harmless one has been idle for longer than the timeout by now
	sleep 1;
	is( $harmless->query_safe(q{SELECT 'still here'}), 'still here',
		'an idle transaction that blocks nobody survives');
	$harmless->query_safe(q{COMMIT});
	$harmless->quit;
	$blocker->quit;
}

# --- the worker survives SIGHUP, and comes back after being killed ---
{
	my $pid = $node->safe_psql('postgres', $worker_pid_sql);
	$node->safe_psql('postgres', "ALTER SYSTEM SET txguard.idle_blocker_timeout = '2s'");
	$node->reload;
	sleep 1;
	is($node->safe_psql('postgres', $worker_pid_sql), $pid, 'same worker after SIGHUP');

	kill 'TERM', $pid;
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM ($worker_pid_sql) w WHERE pid <> $pid"),
		'a new worker after the old one was killed');

	# and it still works, with the reloaded timeout
	my $blocker = $node->background_psql('postgres', on_error_stop => 0);
	$blocker->query_safe(q{SET application_name = 'blocker2'});
	$blocker->query_safe(q{BEGIN});
	$blocker->query_safe(q{UPDATE stock SET n = 5 WHERE id = 1});
	my $start = time();
	$node->safe_psql('postgres', q{UPDATE stock SET n = 6 WHERE id = 1});
	my $waited = time() - $start;
	cmp_ok($waited, '>=', 1, 'the new worker waits for the reloaded timeout');
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM txguard.events WHERE application_name = 'blocker2'"),
		'the new worker ends the blocker');
	$blocker->quit;
}

$node->stop;
done_testing();
