# 007_protocol_defects.pl: the defects of issue 9, one test each
#
# Each block drives the server with raw protocol messages (TxgWire.pm) the
# way the code review did, and checks what SPEC.md promises: no crash, no
# work after the deadline, an idle transaction that holds locks is ended,
# one outcome per transaction, events that show what they should.  Work
# runs in database "work"; the checks read the views from "postgres", so
# that they do not count themselves in txguard.stats.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use FindBin;
use lib $FindBin::RealBin;
use TxgWire;
use TxgCheck;

my $node = PostgreSQL::Test::Cluster->new('defects');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_txguard'
autovacuum = off
restart_after_crash = on
txguard.idle_blocker_timeout = '60s'
log_statement = 'none'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_txguard');
$node->safe_psql('postgres', 'CREATE DATABASE work');
$node->safe_psql('postgres', 'CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN');
$node->safe_psql('work', q{
CREATE TABLE t (id int PRIMARY KEY, n int);
INSERT INTO t SELECT g, 0 FROM generate_series(1, 20) g;
CREATE TABLE b (id int);
CREATE TABLE d4 (id int);
CREATE TABLE log (x int);
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (pid int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);
CREATE PROCEDURE p_fk() LANGUAGE plpgsql AS $$
BEGIN INSERT INTO child VALUES (999); COMMIT; END $$;
CREATE PROCEDURE p_late() LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO log VALUES (7);
	BEGIN PERFORM pg_sleep(3); EXCEPTION WHEN query_canceled THEN NULL; END;
	COMMIT;
END $$;
CREATE PROCEDURE p_commit() LANGUAGE plpgsql AS $$
BEGIN INSERT INTO log VALUES (12); COMMIT; END $$;
});
my $superuser = $node->safe_psql('postgres', 'SELECT current_user');

TxgCheck::use_node($node);

# --- defect 1: the statement text kept across messages (server crash) ---
# A 40 MB COMMIT through the extended protocol, then Parse/Bind of a
# statement whose planning runs PL/pgSQL (which runs a query: PERFORM
# goes through the executor), with no Sync in between.
{
	my $pm_pid = (split /\n/, slurp_file($node->data_dir . '/postmaster.pid'))[0];
	my $bystander = session('bystander');
	my $c = session('d1');
	$c->simple(q{CREATE FUNCTION pg_temp.imm() RETURNS int IMMUTABLE LANGUAGE plpgsql
		AS $$BEGIN PERFORM 1; RETURN 1; END$$});
	my $log_offset = -s $node->logfile;

	$c->pbe('COMMIT /* ' . ('x' x (40 * 1024 * 1024)) . ' */');
	$c->parse('', 'SELECT pg_temp.imm()');
	$c->bind('', '');
	$c->execute('', 0);
	$c->sync;
	my @m = $c->read_until_ready(60);
	is(TxgWire::types(grep { $_->[0] ne 'N' } @m), '12C12DCZ',
		'defect 1: the pipeline after a 40 MB COMMIT completes');
	is(TxgWire::value(@m), '1', 'defect 1: pg_temp.imm() returns 1');
	is(TxgWire::value($bystander->simple('SELECT 42')), '42',
		'defect 1: another session survives (no crash restart)');
	is(log_line($log_offset, qr/terminated by signal/), '', 'defect 1: no backend died of a signal');
	is((split /\n/, slurp_file($node->data_dir . '/postmaster.pid'))[0], $pm_pid,
		'defect 1: same postmaster');

	# the simple-protocol form: first_statement of the transaction started
	# after COMMIT is that transaction's statement, not the COMMIT
	$node->poll_query_until('postgres', 'SELECT true');    # after a crash, the restart
	$c = session('d1_simple');
	$c->simple(q{CREATE FUNCTION pg_temp.imm() RETURNS int IMMUTABLE LANGUAGE plpgsql
		AS $$BEGIN PERFORM 1; RETURN 1; END$$});
	$c->query('BEGIN; SELECT 1; COMMIT; SELECT pg_temp.imm(), pg_sleep(1.5)');
	usleep(500_000);
	my $first = registry_row($c->pid, 'first_statement');
	unlike($first, qr/^\s*COMMIT/, 'defect 1: first_statement is not the earlier COMMIT');
	like($first, qr/pg_temp\.imm\(\), pg_sleep\(1\.5\)/,
		'defect 1: first_statement is the statement running in the transaction');
	$c->read_until_ready(10);
	$c->terminate;
	$bystander->terminate;
}

# --- defect 2: an idle transaction with a failed subtransaction escapes ---
# The top-level transaction is alive and holds its row lock: the timeout
# must still end it (FATAL, the session waits for its client).
{
	my $c = session('d2a');
	$c->simple(q{SET txguard.transaction_timeout = '1s'});
	my $before = stats();
	my $start = time();
	$c->simple('BEGIN');
	$c->simple('UPDATE t SET n = n + 1 WHERE id = 2');
	$c->simple('SAVEPOINT s');
	my @m = $c->simple('SELECT 1/0');
	is(TxgWire::status(@m), 'E', 'defect 2: ReadyForQuery E after the error in the savepoint');
	is(registry_row($c->pid, 'state'), 'idle in transaction (aborted)',
		'defect 2: shown as idle in transaction (aborted), as core shows it');
	note('pg_stat_activity, failed subtransaction: ' . activity_state($c->pid));

	my $w = session('d2a_waiter');
	$w->query('UPDATE t SET n = n + 10 WHERE id = 2');
	my @fatal = $c->read_until('Z', 5);
	is(TxgWire::error_code(@fatal), 'FATAL 25P04', 'defect 2: terminated by the transaction timeout');
	cmp_ok(time() - $start, '<', 1 + 3, 'defect 2: within the limit plus 3 s');
	my @wm = $w->read_until_ready(5);
	is(TxgWire::error_code(@wm) . ' ' . (TxgWire::status(@wm) // 'no answer'), 'none I',
		'defect 2: the blocked UPDATE proceeds');
	is(delta($before), 'committed=1 terminated=1', 'defect 2: counted as terminated (and the waiter committed)');
	$w->terminate;
}

# defect 2, the timeout's own cancel inside a savepoint: the cancelled
# statement leaves a live transaction, ended 500 ms after its deadline
{
	my $c = session('d2b');
	$c->simple(q{SET txguard.transaction_timeout = '1s'});
	my $before = stats();
	my $start = time();
	$c->simple('BEGIN');
	$c->simple('UPDATE t SET n = n + 1 WHERE id = 3');
	$c->simple('SAVEPOINT s');
	my @m = $c->simple('SELECT pg_sleep(5)', 8);
	is(TxgWire::error_code(@m), 'ERROR 25P04', 'defect 2 (cancel): the statement in the savepoint is cancelled');
	my $w = session('d2b_waiter');
	$w->query('UPDATE t SET n = n + 10 WHERE id = 3');
	my @fatal = $c->read_until('Z', 5);
	is(TxgWire::error_code(@fatal), 'FATAL 25P04',
		'defect 2 (cancel): the session left idle after the cancel is terminated');
	cmp_ok(time() - $start, '<', 1 + 3, 'defect 2 (cancel): within the limit plus 3 s');
	my @wm = $w->read_until_ready(5);
	is(TxgWire::error_code(@wm) . ' ' . (TxgWire::status(@wm) // 'no answer'), 'none I',
		'defect 2 (cancel): the blocked UPDATE proceeds');
	is(delta($before), 'committed=1 terminated=1', 'defect 2 (cancel): one outcome, terminated');
	$w->terminate;
}

# --- defect 3: a portal bound before the deadline runs after it ---
{
	my $c = session('d3');
	$c->simple(q{SET txguard.transaction_timeout = '1s'});
	my $before = stats();
	$c->simple('BEGIN');
	$c->simple('UPDATE t SET n = n + 1 WHERE id = 5');
	$c->parse('', 'SELECT pg_sleep(3)');
	$c->bind('p1', '');
	$c->pbe('SAVEPOINT s');
	$c->pbe('SELECT pg_sleep(10)');
	$c->sync;
	my @m = $c->read_until_ready(5);
	is(TxgWire::error_code(@m), 'ERROR 25P04', 'defect 3: the statement in the savepoint is cancelled at the deadline');

	my $start = time();
	$c->pbe('ROLLBACK TO s');
	$c->execute('p1', 0);
	$c->sync;
	@m = $c->read_until_ready(6);
	my $took = time() - $start;
	is(scalar(TxgWire::rows(@m)), 0, 'defect 3: the portal bound earlier returns no row after the deadline');
	is(TxgWire::error_code(@m), 'ERROR 25P04', 'defect 3: its Execute fails with 25P04');
	cmp_ok($took, '<', 1.5, 'defect 3: at once, without running pg_sleep(3)');
	@m = $c->simple('ROLLBACK');
	is(TxgWire::status(@m), 'I', 'defect 3: the session rolls back');
	is(delta($before), 'timed_out=1', 'defect 3: counted as timed_out');
	$c->terminate;
}

# --- defect 4: Parse without Sync opens a transaction nobody guards ---
{
	my $c = session('d4');
	$c->simple(q{SET txguard.transaction_timeout = '1s'});
	my $before = stats();
	my $start = time();
	$c->parse('', 'SELECT * FROM d4');
	$c->flush;
	my @m = $c->read_until('1E', 5);
	is(TxgWire::types(@m), '1', 'defect 4: ParseComplete');
	is(registry_row($c->pid, q{state || ' | ' || first_statement || ' | ' || (xact_start IS NOT NULL)}),
		'active | SELECT * FROM d4 | true', 'defect 4: the transaction opened by Parse is registered, active');
	note('pg_stat_activity, Parse without Sync: ' . activity_state($c->pid));

	my $a = session('d4_alter');
	my @am = $a->simple(q{SET lock_timeout = '4s'; ALTER TABLE d4 ADD COLUMN x int}, 8);
	is(TxgWire::error_code(@am), 'none', 'defect 4: ALTER TABLE gets its lock');
	cmp_ok(time() - $start, '<', 1 + 3, 'defect 4: within the limit plus 3 s');
	my @fatal = $c->read_until('Z', 3);
	is(TxgWire::error_code(@fatal), 'FATAL 25P04', 'defect 4: the session waiting after Parse is terminated');
	is(delta($before), 'committed=1 terminated=1', 'defect 4: counted as terminated (and the ALTER committed)');
	$a->terminate;
}

# --- defect 5: a fast-path call at the deadline is terminated, not cancelled ---
{
	my $sleep_oid = $node->safe_psql('work', q{SELECT 'pg_sleep(float8)'::regprocedure::oid});
	my $c = session('d5');
	$c->simple(q{SET txguard.transaction_timeout = '1s'});
	my $before = stats();
	$c->simple('BEGIN');
	$c->function_call($sleep_oid, pack('d>', 3));
	usleep(300_000);
	is(registry_row($c->pid, 'state'), 'active', 'defect 5: a running fast-path call is active');
	note('pg_stat_activity, fast-path call: ' . activity_state($c->pid));
	my @m = $c->read_until_ready(6);
	my $e = TxgWire::error(@m);
	is(TxgWire::error_code(@m), 'ERROR 25P04', 'defect 5: the fast-path pg_sleep is cancelled (ERROR, not FATAL)');
	is($e && $e->{M}, 'canceling statement due to transaction timeout', 'defect 5: the cancel message');
	@m = $c->simple('ROLLBACK');
	is(TxgWire::status(@m), 'I', 'defect 5: the session survives and rolls back');
	is(delta($before), 'timed_out=1', 'defect 5: counted as timed_out');
	$c->terminate;
}

# --- defect 6: the outcome of an aborted block is lost when the next
# transaction starts first ---
{
	my $c = session('d6');
	my $before = stats();
	$c->simple('BEGIN');
	$c->simple('SELECT 1/0');
	is(TxgWire::status($c->simple('ROLLBACK AND CHAIN')), 'T', 'defect 6: ROLLBACK AND CHAIN opens the next block');
	$c->simple('COMMIT');
	is(delta($before), 'committed=1 failed=1', 'defect 6: ROLLBACK AND CHAIN of an aborted block counts failed');

	$before = stats();
	$c->simple('BEGIN');
	$c->simple('SELECT 1/0');
	my @m = $c->simple('COMMIT AND CHAIN');
	note('COMMIT AND CHAIN of an aborted block: ' . TxgWire::types(@m) . ' ' . TxgWire::error_code(@m));
	is(TxgWire::status(@m), 'T', 'defect 6: COMMIT AND CHAIN of an aborted block opens the next block');
	$c->simple('COMMIT');
	is(delta($before), 'committed=1 failed=1', 'defect 6: COMMIT AND CHAIN of an aborted block counts failed');

	$before = stats();
	$c->simple('BEGIN');
	$c->simple('SELECT 1/0');
	is(TxgWire::value($c->simple('ROLLBACK; SELECT 2')), '2', 'defect 6: ROLLBACK; SELECT 2 in one query string');
	is(delta($before), 'committed=1 failed=1', 'defect 6: ROLLBACK; SELECT 2 counts failed');

	$c->simple(q{SET txguard.transaction_timeout = '500ms'});
	$before = stats();
	$c->simple('BEGIN');
	is(TxgWire::error_code($c->simple('SELECT pg_sleep(3)', 5)), 'ERROR 25P04', 'defect 6: cancelled at the deadline');
	is(TxgWire::status($c->simple('ROLLBACK AND CHAIN')), 'T', 'defect 6: ROLLBACK AND CHAIN after the cancel');
	is(TxgWire::status($c->simple('COMMIT')), 'I', 'defect 6: the chained transaction commits');
	is(delta($before), 'committed=1 timed_out=1', 'defect 6: ROLLBACK AND CHAIN after the cancel counts timed_out');
	$c->terminate;
}

# --- defect 7: a COMMIT that fails inside a procedure is counted twice ---
{
	my $c = session('d7');
	my $before = stats();
	my @m = $c->simple('CALL p_fk()');
	is(TxgWire::error_code(@m), 'ERROR 23503', 'defect 7: the deferred foreign key fails the COMMIT in the procedure');
	is(delta($before), 'failed=1', 'defect 7: one outcome, failed');

	$c->simple(q{SET txguard.transaction_timeout = '500ms'});
	$before = stats();
	@m = $c->simple('CALL p_late()', 6);
	is(TxgWire::error_code(@m), 'ERROR 25P04', 'defect 7: the COMMIT past the deadline in the procedure is refused');
	is(delta($before), 'timed_out=1', 'defect 7: one outcome, timed_out');
	is($node->safe_psql('work', 'SELECT count(*) FROM log WHERE x = 7'), '0', 'defect 7: nothing committed');
	$c->terminate;
}

# --- defect 8: events show a superuser's statements to the role it
# switched to with SET SESSION AUTHORIZATION ---
{
	my $c = session('d8');
	$c->simple('BEGIN');
	$c->simple(q{ALTER ROLE bob PASSWORD 'secret8'});
	is(TxgWire::error_code($c->simple('SET SESSION AUTHORIZATION alice')), 'none',
		'defect 8: SET SESSION AUTHORIZATION alice');
	$c->terminate;
	is(poll_sql(q{SELECT count(*) FROM txguard.events WHERE kind = 'abandoned' AND application_name = 'd8'}, '1'),
		'1', 'defect 8: the abandoned event is recorded');
	is($node->safe_psql('postgres', q{SELECT usename FROM txguard.events WHERE application_name = 'd8'}),
		$superuser, 'defect 8: the event names the role that logged in');
	is( $node->safe_psql('postgres',
			q{SELECT coalesce(first_statement, '<hidden>') || ' | ' || coalesce(last_statement, '<hidden>')
			    FROM txguard.events WHERE application_name = 'd8'},
			extra_params => [ '-U', 'alice' ]),
		'<hidden> | <hidden>', 'defect 8: alice cannot read the statements');
	is( $node->safe_psql('postgres',
			q{SELECT count(*) FROM txguard.events WHERE first_statement LIKE '%secret8%' OR last_statement LIKE '%secret8%'},
			extra_params => [ '-U', 'alice' ]),
		'0', 'defect 8: alice sees no password in txguard.events');
}

# --- defect 9: an abandoned transaction records blocking = {} ---
{
	my $c = session('d9');
	$c->simple('BEGIN');
	$c->simple('UPDATE t SET n = n + 1 WHERE id = 9');
	my $w = session('d9_waiter');
	$w->query('UPDATE t SET n = n + 10 WHERE id = 9');
	ok(wait_for_lock_wait($w->pid), 'defect 9: the waiter waits for the lock');
	$c->terminate;
	is( poll_sql(q{SELECT blocking FROM txguard.events WHERE kind = 'abandoned' AND application_name = 'd9'},
			'{' . $w->pid . '}'),
		'{' . $w->pid . '}', 'defect 9: the abandoned event lists the pid it blocked');
	is(TxgWire::status($w->read_until_ready(5)), 'I', 'defect 9: the waiter proceeds');
	$w->terminate;
}

# --- defect 12: the transaction a procedure leaves open (CALL, no Sync) ---
{
	my $c = session('d12');
	$c->simple(q{SET txguard.transaction_timeout = '1s'});
	my $before = stats();
	my $log_offset = -s $node->logfile;
	$c->pbe('CALL p_commit()');
	$c->flush;
	my @m = $c->read_until('CE', 5);
	is(TxgWire::types(@m), '12C', 'defect 12: CALL completes without a Sync');
	is(registry_row($c->pid, q{state || ' | ' || (xact_start IS NOT NULL) || ' | ' || first_statement}),
		'active | true | CALL p_commit()', 'defect 12: the transaction the procedure left open is registered');
	note('pg_stat_activity, after CALL with COMMIT, no Sync: ' . activity_state($c->pid));
	my @fatal = $c->read_until('Z', 4);
	is(TxgWire::error_code(@fatal), 'FATAL 25P04', 'defect 12: the open transaction is ended at its deadline');
	ok($node->wait_for_log(qr/event=timeout_terminate .*pid=${\$c->pid} /, $log_offset),
		'defect 12: LOG line');
	my ($xs, $dur) = log_line($log_offset, qr/event=timeout_terminate .*pid=${\$c->pid} /)
	  =~ /xact_start="([^"]*)" duration="([\d.]+) s"/;
	like($xs // '', qr/^\d{4}-\d\d-\d\d /, 'defect 12: the LOG line has xact_start');
	cmp_ok($dur // 1e9, '<', 10, 'defect 12: and a plausible duration');
	is(delta($before), 'committed=1 terminated=1', 'defect 12: both transactions counted');
	is($node->safe_psql('work', 'SELECT count(*) FROM log WHERE x = 12'), '1',
		'defect 12: the transaction ended by the COMMIT in the procedure committed');
}

# --- defect 13: a failed implicit transaction in an unsynced pipeline stays listed ---
{
	my $c = session('d13');
	my $before = stats();
	$c->pbe('INSERT INTO t VALUES (1, 0)');
	$c->flush;
	my @m = $c->read_until('E', 5);
	is(TxgWire::error_code(@m), 'ERROR 23505', 'defect 13: the duplicate key fails');
	usleep(100_000);
	note('pg_stat_activity, failed pipeline without Sync: ' . activity_state($c->pid));
	is(registry_row($c->pid, 'count(*)'), '0', 'defect 13: the failed transaction is no longer listed');
	is(delta($before), 'failed=1', 'defect 13: counted as failed at once');
	$c->sync;
	is(TxgWire::status($c->read_until_ready(5)), 'I', 'defect 13: Sync ends the pipeline');
	is(delta($before), 'failed=1', 'defect 13: and Sync counts nothing more');
	$c->terminate;
}

# --- the sentinel: defects 11, 10 and 2 (sentinel part) ---

# defect 11: after a reload, the sentinel reports its own (new) limit; the
# victim, idle since before the reload, still has the old one
{
	my $c = session('d11');
	$c->simple('BEGIN');
	$c->simple('UPDATE t SET n = n + 1 WHERE id = 11');
	$node->safe_psql('postgres', q{ALTER SYSTEM SET txguard.idle_blocker_timeout = '1s'});
	$node->reload;
	sleep 1;    # the sentinel rereads its configuration
	my $log_offset = -s $node->logfile;
	my $start = time();
	my $w = session('d11_waiter');
	$w->query('UPDATE t SET n = n + 10 WHERE id = 11');
	my @fatal = $c->read_until('Z', 5);
	my $e = TxgWire::error(@fatal);
	is(TxgWire::error_code(@fatal), 'FATAL 25P03', 'defect 11: the idle blocker is terminated');
	cmp_ok(time() - $start, '<', 1 + 3, 'defect 11: within the new limit plus 3 s');
	like($e ? $e->{D} // '' : '', qr/for at least 1000 ms/, 'defect 11: the DETAIL gives the new limit');
	ok($node->wait_for_log(qr/event=idle_blocker_terminate .*pid=${\$c->pid} /, $log_offset),
		'defect 11: LOG line');
	my ($limit) = log_line($log_offset, qr/event=idle_blocker_terminate .*pid=${\$c->pid} /) =~ /limit="([^"]*)"/;
	is($limit, '1000 ms', 'defect 11: the LOG line gives the new limit');
	is(TxgWire::status($w->read_until_ready(5)), 'I', 'defect 11: the waiter proceeds');
	$w->terminate;
}

# defect 10: a session whose statement waits for a lock during parse
# analysis is working, not idle: the sentinel must leave it alone
{
	my $c = session('d10');
	$c->simple('BEGIN');
	$c->simple('UPDATE t SET n = n + 1 WHERE id = 10');
	my $h = session('d10_holder');
	$h->query('BEGIN; LOCK TABLE b IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT');
	my $w = session('d10_waiter');
	$w->query('UPDATE t SET n = n + 10 WHERE id = 10');
	ok(wait_for_lock_wait($w->pid), 'defect 10: another session waits for the idle session');
	usleep(300_000);
	$c->query('SELECT count(*) FROM b');
	ok(wait_for_lock_wait($c->pid), 'defect 10: the session waits for a lock in parse analysis');
	usleep(200_000);
	is(registry_row($c->pid, 'state'), 'active', 'defect 10: shown as active, as pg_stat_activity does');
	my @m = $c->read_until_ready(8);
	is(TxgWire::error_code(@m) . ' ' . (TxgWire::value(@m) // 'no row'), 'none 0',
		'defect 10: the sentinel did not end the working session');
	$c->simple('COMMIT');
	$h->read_until_ready(5);
	$w->read_until_ready(5);
	$_->terminate for ($c, $h, $w);
}

# defect 2, sentinel part: an idle transaction with a failed subtransaction
# holds its locks, and the sentinel ends it
{
	my $c = session('d2c');
	$c->simple('BEGIN');
	$c->simple('UPDATE t SET n = n + 1 WHERE id = 4');
	$c->simple('SAVEPOINT s');
	$c->simple('SELECT 1/0');
	my $start = time();
	my $w = session('d2c_waiter');
	$w->query('UPDATE t SET n = n + 10 WHERE id = 4');
	my @fatal = $c->read_until('Z', 5);
	is(TxgWire::error_code(@fatal), 'FATAL 25P03', 'defect 2 (sentinel): the idle blocker with a failed savepoint is terminated');
	cmp_ok(time() - $start, '<', 1 + 3, 'defect 2 (sentinel): within the limit plus 3 s');
	is(TxgWire::status($w->read_until_ready(5)), 'I', 'defect 2 (sentinel): the waiter proceeds');
	$w->terminate;
}

$node->safe_psql('postgres', 'ALTER SYSTEM RESET txguard.idle_blocker_timeout');
$node->reload;
is(log_line(0, qr/terminated by signal/), '', 'no backend died of a signal during the whole test');
$node->stop;
done_testing();
