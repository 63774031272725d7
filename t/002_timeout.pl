# 002_timeout.pl: what clients see of the transaction timeout, and its log
#
# The FATAL of an idle session (SQLSTATE, message, detail), the LOG line of
# each enforcement, escapes through PL/pgSQL exception blocks, the aborted
# idle transaction left alone, and the interplay with
# idle_in_transaction_session_timeout.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('timeout');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_txguard'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_txguard');
$node->safe_psql('postgres', 'CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0)');

# run a psql script; return (exit code, stdout, stderr)
sub run_script
{
	my ($script) = @_;
	my ($out, $err);
	my $rc = $node->psql('postgres', "\\set VERBOSITY verbose\n" . $script,
		stdout => \$out, stderr => \$err, on_error_stop => 0);
	return ($rc, $out, $err);
}

sub event_count
{
	my ($kind) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM txguard.events WHERE kind = '$kind'");
}

# --- a session idle in its transaction is terminated ---
{
	my $log_offset = -s $node->logfile;
	my ($rc, $out, $err) = run_script(qq{
SET application_name = 'idler';
SET txguard.transaction_timeout = '500ms';
BEGIN;
UPDATE t SET v = 1 WHERE id = 1;
\\! sleep 2
SELECT 'still here';
});
	like($err, qr/FATAL:  25P04: terminating connection due to transaction timeout/,
		'idle session: client sees FATAL with SQLSTATE 25P04');
	like($err, qr/DETAIL:  The transaction reached its limit of 500 ms\./,
		'idle session: DETAIL gives the limit');
	like($err, qr/HINT:  The limit is set by "txguard.transaction_timeout"\./,
		'idle session: HINT names the setting');
	unlike($out, qr/still here/, 'idle session: nothing runs after the termination');
	is($node->safe_psql('postgres', 'SELECT v FROM t WHERE id = 1'), '0',
		'idle session: its update was rolled back');

	ok($node->wait_for_log(qr/LOG:  pg_txguard: event=timeout_terminate action=terminate pid=\d+ user=\S+ database=postgres application_name=idler client_addr=local xact_start="[^"]+" duration="\d+\.\d+ s" limit="500 ms" limit_setting=txguard.transaction_timeout statements=1 first_statement="UPDATE t SET v = 1 WHERE id = 1" last_statement="UPDATE t SET v = 1 WHERE id = 1" blocking=\{\}/,
			$log_offset),
		'idle session: one LOG line with every field');
	my $log = slurp_file($node->logfile, $log_offset);
	my @lines = ($log =~ /event=timeout_terminate/g);
	is(scalar @lines, 1, 'idle session: exactly one LOG line');
}

# --- a running statement is canceled; DETAIL and HINT ---
{
	my ($rc, $out, $err) = run_script(qq{
SET txguard.max_transaction_timeout = '300ms';
SELECT pg_sleep(3);
SELECT 'alive' AS after;
});
	like($err, qr/ERROR:  25P04: canceling statement due to transaction timeout/,
		'running statement: ERROR 25P04');
	like($err, qr/DETAIL:  The transaction reached its limit of 300 ms\./,
		'running statement: DETAIL');
	like($err, qr/HINT:  The limit is set by "txguard.max_transaction_timeout"\.\n/,
		'running statement: HINT names the cap, and nothing else');
	unlike($err, qr/Roll back/,
		'running statement: an autocommit statement is not told to roll back');
	like($out, qr/alive/, 'running statement: session survives');
}

# --- in a transaction block: the hint says to roll back; the next
# statement gets 25P02 (the block is aborted), and after ROLLBACK TO a
# savepoint, 25P04 (the transaction lives, past its deadline) ---
{
	my ($rc, $out, $err) = run_script(qq{
SET txguard.transaction_timeout = '300ms';
BEGIN;
SELECT pg_sleep(3);
SELECT 'in the aborted block';
ROLLBACK;
BEGIN;
SAVEPOINT s;
SELECT pg_sleep(3);
ROLLBACK TO SAVEPOINT s;
SELECT 'after rollback to';
COMMIT;
SELECT 'alive' AS after;
});
	like($err, qr/ERROR:  25P04: canceling statement due to transaction timeout\nDETAIL:  The transaction reached its limit of 300 ms\.\nHINT:  The limit is set by "txguard.transaction_timeout"\. Roll back the transaction\./,
		'block: the cancel tells to roll back');
	like($err, qr/ERROR:  25P02: current transaction is aborted, commands ignored until end of transaction block/,
		'block: the next statement gets 25P02');
	like($err, qr/ERROR:  25P04: canceling statement due to transaction timeout\nDETAIL:  The transaction reached its limit of 300 ms and can only be rolled back\.\nHINT:  Roll back the transaction\./,
		'block: after ROLLBACK TO, a statement is refused with 25P04');
	my @errors = ($err =~ /ERROR:/g);
	is(scalar @errors, 4, 'block: COMMIT past the deadline is accepted (it rolls back)');
	unlike($out, qr/in the aborted block|after rollback to/, 'block: nothing ran after the cancel');
	like($out, qr/alive/, 'block: the session survives');
}

# --- PL/pgSQL that catches the cancel and goes on is terminated ---
foreach my $case (
	[ 'more SQL',
	  q{DO $$ BEGIN
		  BEGIN PERFORM pg_sleep(3); EXCEPTION WHEN query_canceled THEN RAISE NOTICE 'caught'; END;
		  PERFORM pg_sleep(3);
		END $$;} ],
	[ 'a loop catching every error',
	  q{DO $$ BEGIN
		  LOOP
		    BEGIN PERFORM pg_sleep(0.1); EXCEPTION WHEN query_canceled OR others THEN NULL; END;
		  END LOOP;
		END $$;} ],
	[ 'a loop without SQL',
	  q{DO $$ DECLARE x bigint := 0; BEGIN
		  BEGIN PERFORM pg_sleep(3); EXCEPTION WHEN query_canceled THEN NULL; END;
		  LOOP x := x + 1; END LOOP;
		END $$;} ])
{
	my ($name, $sql) = @$case;
	my $before = event_count('timeout_terminate');
	my ($rc, $out, $err) = run_script(qq{
SET txguard.transaction_timeout = '300ms';
$sql
SELECT 'still here';
});
	like($err, qr/FATAL:  25P04: terminating connection due to transaction timeout/,
		"escape through $name: session terminated");
	unlike($out, qr/still here/, "escape through $name: nothing runs after it");
	is(event_count('timeout_terminate'), $before + 1,
		"escape through $name: one event");
}

# --- an aborted transaction left idle is not touched ---
{
	my $before = event_count('timeout_terminate') + event_count('timeout_cancel');
	my ($rc, $out, $err) = run_script(qq{
SET txguard.transaction_timeout = '300ms';
BEGIN;
SELECT 1/0;
\\! sleep 1
ROLLBACK;
SELECT 'alive after ' || 'abort' AS r;
});
	like($out, qr/alive after abort/, 'idle aborted transaction: session left alone');
	unlike($err, qr/25P04/, 'idle aborted transaction: no timeout error');
	is(event_count('timeout_terminate') + event_count('timeout_cancel'), $before,
		'idle aborted transaction: no event');
}

# --- idle_in_transaction_session_timeout: whichever comes first wins ---
{
	my $before = event_count('timeout_terminate');
	my ($rc, $out, $err) = run_script(qq{
SET idle_in_transaction_session_timeout = '300ms';
SET txguard.transaction_timeout = '5s';
BEGIN;
SELECT 1;
\\! sleep 1.5
SELECT 2;
});
	like($err, qr/FATAL:  25P03: terminating connection due to idle-in-transaction timeout/,
		'idle_in_transaction_session_timeout first: core terminates');
	is(event_count('timeout_terminate'), $before,
		'idle_in_transaction_session_timeout first: no timeout event');

	($rc, $out, $err) = run_script(qq{
SET idle_in_transaction_session_timeout = '5s';
SET txguard.transaction_timeout = '300ms';
BEGIN;
SELECT 1;
\\! sleep 1.5
SELECT 2;
});
	like($err, qr/FATAL:  25P04: terminating connection due to transaction timeout/,
		'transaction timeout first: pg_txguard terminates');
	unlike($err, qr/idle-in-transaction timeout/, 'and only once');
}

# --- ROLLBACK TO SAVEPOINT, then idle: terminated after a grace ---
{
	my ($rc, $out, $err) = run_script(qq{
SET txguard.transaction_timeout = '300ms';
BEGIN;
SAVEPOINT s;
SELECT pg_sleep(2);
ROLLBACK TO SAVEPOINT s;
ROLLBACK;
SELECT 'quick rollback is fine' AS r;
BEGIN;
SAVEPOINT s;
SELECT pg_sleep(2);
ROLLBACK TO SAVEPOINT s;
\\! sleep 2
SELECT 'too late';
});
	like($out, qr/quick rollback is fine/, 'ROLLBACK right after ROLLBACK TO works');
	like($err, qr/FATAL:  25P04: terminating connection due to transaction timeout/,
		'idle after ROLLBACK TO in an expired transaction: terminated');
	unlike($out, qr/too late/, 'nothing runs after that');
}

$node->stop;
done_testing();
