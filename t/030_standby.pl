# 030_standby.pl: pg_txguard on a hot standby, and after its promotion
#
# A streaming standby (a base backup of a primary that preloads
# pg_txguard) runs read-only sessions: the views show them, the
# transaction timeout cancels and terminates them, the sentinel runs there
# from the moment the standby is consistent and ends an idle holder of
# txguard.lock that blocks a waiter, txguard.lock works, insert_or_get
# returns an existing row and refuses a new one with a clear error, the
# counters survive a restart of the standby, and a promotion keeps the
# sentinel running and lets insert_or_get insert.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_txguard'
});
$primary->start;
$primary->safe_psql('postgres', q{
CREATE EXTENSION pg_txguard;
CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, name text);
INSERT INTO users (email, name) VALUES ('ann@example.com', 'Ann');
CREATE TABLE stock (id int PRIMARY KEY, n int);
INSERT INTO stock VALUES (1, 10);
});

# the same refusal in a read-only transaction of the primary
{
	my ($out, $err);
	$primary->psql('postgres', q{\set VERBOSITY verbose
BEGIN READ ONLY;
SELECT * FROM txguard.insert_or_get(NULL::users, '{"email": "bob@example.com"}');
ROLLBACK;
BEGIN READ ONLY;
SELECT * FROM txguard.upsert(NULL::users, '{"email": "ann@example.com", "name": "Annie"}');
ROLLBACK;},
		stdout => \$out, stderr => \$err, on_error_stop => 0);
	like($err, qr/ERROR:  25006: cannot insert into table "users" in a read-only transaction\nDETAIL:  No row of "users" holds the given key, and a read-only transaction cannot write a new one\.\nHINT:  Call it in a read-write transaction\./,
		'insert_or_get in a READ ONLY transaction: refused with 25006');
	like($err, qr/ERROR:  25006: cannot update table "users" in a read-only transaction\nDETAIL:  The row of "users" that holds the given key differs from the given values, and a read-only transaction cannot change it\./,
		'upsert in a READ ONLY transaction: refused with 25006');
}

$primary->backup('b1');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b1', has_streaming => 1);
# the sentinel's setting is the standby's own
$standby->append_conf('postgresql.conf', qq{
txguard.idle_blocker_timeout = '1s'
max_standby_streaming_delay = -1
});
$standby->start;
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't',
	'the standby is in recovery');

my $worker_pid_sql = "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_txguard sentinel'";
ok($standby->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($worker_pid_sql) w"),
	'the sentinel runs on the standby');
my $worker_pid = $standby->safe_psql('postgres', $worker_pid_sql);

# run a psql script on the standby; return (exit code, stdout, stderr)
sub run_script
{
	my ($script) = @_;
	my ($out, $err);
	my $rc = $standby->psql('postgres', "\\set VERBOSITY verbose\n" . $script,
		stdout => \$out, stderr => \$err, on_error_stop => 0);
	return ($rc, $out, $err);
}

sub standby_stats
{
	return $standby->safe_psql('postgres',
		q{SELECT committed || ' ' || failed || ' ' || timed_out || ' ' || terminated
		  || ' ' || blocker_terminated
		  FROM txguard.stats WHERE datname = 'postgres'});
}

# --- the views ---
{
	my $reader = $standby->background_psql('postgres');
	$reader->query_safe(q{SET application_name = 'reader'});
	$reader->query_safe(q{BEGIN});
	$reader->query_safe(q{SELECT count(*) FROM users});
	my $reader_pid = $reader->query_safe(q{SELECT pg_backend_pid()});
	is( $standby->safe_psql('postgres', qq{
		SELECT state || ' | ' || statements || ' | ' || first_statement || ' | '
		       || last_statement || ' | ' || wrote || ' | ' || cardinality(blocking)
		       || ' | ' || (deadline IS NULL)
		  FROM txguard.transactions WHERE pid = $reader_pid}),
		'idle in transaction | 2 | SELECT count(*) FROM users | SELECT pg_backend_pid() | false | 0 | true',
		'txguard.transactions shows a read-only transaction of the standby');
	$reader->query_safe(q{COMMIT});
	$reader->quit;
	is( $standby->safe_psql('postgres',
			q{SELECT count(*) FROM txguard.transactions WHERE application_name = 'reader'}),
		'0', 'and no longer once it committed');
	cmp_ok((split / /, standby_stats())[0], '>', 0,
		'txguard.stats counts the standby\'s transactions');
	is($standby->safe_psql('postgres', 'SELECT count(*) FROM txguard.events'),
		'0', 'txguard.events is readable, and empty');
}

# --- the timeout cancels a running read-only statement ---
{
	my ($rc, $out, $err) = run_script(q{
SET application_name = 'slow reader';
SET txguard.transaction_timeout = '300ms';
SELECT pg_sleep(3);
SELECT 'alive' AS after;
});
	like($err, qr/ERROR:  25P04: canceling statement due to transaction timeout/,
		'cancel on the standby: ERROR 25P04');
	like($out, qr/alive/, 'cancel on the standby: the session survives');
	is( $standby->safe_psql('postgres',
			q{SELECT kind FROM txguard.events WHERE application_name = 'slow reader'}),
		'timeout_cancel', 'cancel on the standby: event recorded');
}

# --- the timeout terminates a session idle in a read-only transaction ---
{
	my $log_offset = -s $standby->logfile;
	my ($rc, $out, $err) = run_script(q{
SET application_name = 'idle reader';
SET txguard.transaction_timeout = '500ms';
BEGIN;
SELECT count(*) FROM stock;
\! sleep 2
SELECT 'still here';
});
	like($err, qr/FATAL:  25P04: terminating connection due to transaction timeout/,
		'terminate on the standby: FATAL 25P04');
	unlike($out, qr/still here/, 'terminate on the standby: nothing runs after it');
	ok( $standby->wait_for_log(
			qr/LOG:  pg_txguard: event=timeout_terminate action=terminate pid=\d+ .*application_name="idle reader" .*first_statement="SELECT count\(\*\) FROM stock"/,
			$log_offset),
		'terminate on the standby: LOG line');
	is( $standby->safe_psql('postgres',
			q{SELECT kind FROM txguard.events WHERE application_name = 'idle reader'}),
		'timeout_terminate', 'terminate on the standby: event recorded');
}

# --- txguard.lock on the standby ---
{
	my $holder = $standby->background_psql('postgres');
	$holder->query_safe(q{BEGIN});
	$holder->query_safe(q{SELECT txguard.lock('job:1')});
	my ($rc, $out, $err) = run_script(q{SELECT txguard.lock('job:1', '200 ms');});
	like($err, qr/ERROR:  55P03: could not obtain lock "job:1" within 200 ms/,
		'txguard.lock on the standby: a held key times out');
	($rc, $out, $err) = run_script(q{SELECT txguard.lock('job:1', '0');});
	like($err, qr/ERROR:  55P03: could not obtain lock "job:1" without waiting/,
		'txguard.lock on the standby: no wait with a zero timeout');
	$holder->query_safe(q{COMMIT});
	($rc, $out, $err) = run_script(q{BEGIN; SELECT txguard.lock('job:1', '0'); SELECT 'got it'; COMMIT;});
	like($out, qr/got it/, 'txguard.lock on the standby: a free key is taken');
	$holder->quit;
}

# --- the sentinel ends an idle holder of txguard.lock that blocks a waiter ---
{
	my $blocker = $standby->background_psql('postgres', on_error_stop => 0);
	$blocker->query_safe(q{SET application_name = 'lock holder'});
	$blocker->query_safe(q{BEGIN});
	$blocker->query_safe(q{SELECT txguard.lock('month-end')});
	my $log_offset = -s $standby->logfile;
	my $start = time();
	my $waiter_out = $standby->safe_psql('postgres',
		q{BEGIN; SELECT txguard.lock('month-end'); SELECT 'waited'; COMMIT;});
	my $waited = time() - $start;
	like($waiter_out, qr/waited/, 'sentinel on the standby: the waiter gets the lock');
	cmp_ok($waited, '<', 1 + 3, 'sentinel on the standby: within the timeout plus slack');
	ok( $standby->wait_for_log(
			qr/FATAL:  terminating connection because it was idle in a transaction that blocked other sessions/,
			$log_offset),
		'sentinel on the standby: the holder got the FATAL');
	is( $standby->safe_psql('postgres', q{
		SELECT kind || ' ' || cardinality(blocking) FROM txguard.events
		 WHERE application_name = 'lock holder'}),
		'idle_blocker_terminate 1', 'sentinel on the standby: event with the blocked pid');
	is((split / /, standby_stats())[4], '1',
		'sentinel on the standby: counted as blocker_terminated');
	$blocker->quit;
}

# --- a replay conflict: not in `blocking`, and the sentinel leaves it ---
# (pg_blocking_pids() does not show the startup process waiting; core
# resolves the conflict itself after max_standby_streaming_delay, here
# infinite)
{
	my $reader = $standby->background_psql('postgres');
	$reader->query_safe(q{SET application_name = 'replay blocker'});
	$reader->query_safe(q{BEGIN});
	$reader->query_safe(q{SELECT count(*) FROM stock});
	my $reader_pid = $reader->query_safe(q{SELECT pg_backend_pid()});
	my $locker = $primary->background_psql('postgres');
	$locker->query_safe(q{BEGIN});
	$locker->query_safe(q{LOCK TABLE stock IN ACCESS EXCLUSIVE MODE});
	ok( $standby->poll_query_until('postgres',
			q{SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE backend_type = 'startup'}),
		'replay conflict: the startup process waits for the reader\'s lock');
	sleep 2;	# twice the sentinel's timeout
	is($standby->safe_psql('postgres',
			"SELECT state || ' ' || blocking::text FROM txguard.transactions WHERE pid = $reader_pid"),
		'idle in transaction {}', 'replay conflict: not shown in blocking');
	is($reader->query_safe(q{SELECT 'still here'}), 'still here',
		'replay conflict: the sentinel leaves the reader alone');
	$reader->query_safe(q{COMMIT});
	$reader->quit;
	$locker->query_safe(q{COMMIT});
	$locker->quit;
	$primary->wait_for_catchup($standby);
	is( $standby->safe_psql('postgres',
			q{SELECT count(*) FROM txguard.events WHERE application_name = 'replay blocker'}),
		'0', 'replay conflict: no event');
}

# --- insert_or_get: an existing row is returned, a new one is refused ---
{
	is( $standby->safe_psql('postgres',
			q{SELECT id || ' ' || name FROM txguard.insert_or_get(NULL::users, '{"email": "ann@example.com", "name": "Ann"}')}),
		'1 Ann', 'insert_or_get on the standby: the existing row');
	is( $standby->safe_psql('postgres',
			q{SELECT (r).id || ' ' || created FROM txguard.insert_or_get_created(NULL::users, '{"email": "ann@example.com"}')}),
		'1 false', 'insert_or_get_created on the standby: found, not created');
	my ($rc, $out, $err) = run_script(
		q{SELECT * FROM txguard.insert_or_get(NULL::users, '{"email": "bob@example.com"}');});
	like($err, qr/ERROR:  25006: cannot insert into table "users" during recovery/,
		'insert_or_get on the standby: a new row is refused with 25006');
	like($err, qr/DETAIL:  No row of "users" holds the given key, and a standby cannot write a new one\./,
		'insert_or_get on the standby: DETAIL says why');
	like($err, qr/HINT:  Call it on the primary\./,
		'insert_or_get on the standby: HINT says where to call it');
	($rc, $out, $err) = run_script(
		q{SELECT * FROM txguard.upsert(NULL::users, '{"email": "ann@example.com", "name": "Annie"}');});
	like($err, qr/ERROR:  25006: cannot update table "users" during recovery/,
		'upsert on the standby: a change to the existing row is refused with 25006');
	like($err, qr/DETAIL:  The row of "users" that holds the given key differs from the given values, and a standby cannot change it\./,
		'upsert on the standby: DETAIL says why');
	is( $standby->safe_psql('postgres',
			q{SELECT name FROM txguard.upsert(NULL::users, '{"email": "ann@example.com", "name": "Ann"}')}),
		'Ann', 'upsert on the standby: an unchanged row is returned');
}

# --- the counters survive a restart of the standby ---
{
	my $before = standby_stats();
	my @b = split / /, $before;
	cmp_ok($b[2], '>=', 1, 'before the restart: a timed_out transaction counted');
	cmp_ok($b[3], '>=', 1, 'before the restart: a terminated session counted');
	$standby->restart;
	is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't',
		'the standby is in recovery again');
	# the check itself is one more committed transaction, after the reading
	my @a = split / /, standby_stats();
	is(join(' ', @a[1 .. 4]), join(' ', @b[1 .. 4]),
		'failed, timed_out, terminated, blocker_terminated survive the restart');
	cmp_ok($a[0], '>=', $b[0], 'committed survives the restart');
	ok($standby->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($worker_pid_sql) w"),
		'the sentinel runs again after the restart');
	$worker_pid = $standby->safe_psql('postgres', $worker_pid_sql);
}

# --- promotion ---
{
	$standby->promote;
	ok($standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'),
		'the standby is promoted');
	is($standby->safe_psql('postgres', $worker_pid_sql), $worker_pid,
		'the same sentinel keeps running across the promotion');
	is( $standby->safe_psql('postgres',
			q{SELECT (r).email || ' ' || created FROM txguard.insert_or_get_created(NULL::users, '{"email": "bob@example.com"}')}),
		'bob@example.com true', 'insert_or_get after the promotion inserts the new row');

	# the sentinel still ends a writing blocker
	my $blocker = $standby->background_psql('postgres', on_error_stop => 0);
	$blocker->query_safe(q{SET application_name = 'writer after promotion'});
	$blocker->query_safe(q{BEGIN});
	$blocker->query_safe(q{UPDATE stock SET n = n - 1 WHERE id = 1});
	is($standby->safe_psql('postgres', q{UPDATE stock SET n = 0 WHERE id = 1 RETURNING n}),
		'0', 'after the promotion: the blocked writer proceeds');
	ok( $standby->poll_query_until('postgres',
			q{SELECT count(*) = 1 FROM txguard.events WHERE application_name = 'writer after promotion' AND kind = 'idle_blocker_terminate'}),
		'after the promotion: the sentinel ended the blocker');
	$blocker->quit;
}

$standby->stop;
$primary->stop;
done_testing();
