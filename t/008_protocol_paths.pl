# 008_protocol_paths.pl: protocol paths around the transaction deadline
#
# The message sequences of issue 9's test list, spoken with TxgWire.pm:
# pipelines (with an error in the middle), Execute with a row limit and a
# suspended portal, Describe, Close and Flush, COPY in both directions,
# large-object fast-path calls, AND CHAIN of aborted blocks, procedures
# that commit and roll back, PREPARE TRANSACTION, savepoints in every
# state, cursors WITH HOLD.  Each block checks the state in
# txguard.transactions, the errors, that locks are released, and the exact
# change of txguard.stats (work runs in "work", checks in "postgres").
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

my $node = PostgreSQL::Test::Cluster->new('paths');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_txguard'
autovacuum = off
max_prepared_transactions = 5
log_statement = 'none'
log_connections = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_txguard');
$node->safe_psql('postgres', 'CREATE DATABASE work');
$node->safe_psql('work', q{
CREATE TABLE t (id int PRIMARY KEY, n int);
INSERT INTO t SELECT g, 0 FROM generate_series(1, 20) g;
CREATE TABLE log (x int);
CREATE PROCEDURE p_cr() LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO log VALUES (1); COMMIT;
	INSERT INTO log VALUES (2); ROLLBACK;
	INSERT INTO log VALUES (3);
END $$;
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (pid int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);
CREATE FUNCTION f_nested() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
	PERFORM count(*) FROM log;
	RETURN 1;
END $$;
});

TxgCheck::use_node($node);
my @outcomes = @TxgCheck::outcomes;

# the baseline of the final check: txguard.stats against pg_stat_database
my $stats_start = stats();
my $pgstat_sql = q{SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'work'};
my $pgstat_start = $node->safe_psql('postgres', $pgstat_sql);
my $log_start = -s $node->logfile;

sub fastpath_oid
{
	return $node->safe_psql('work', "SELECT '$_[0]'::regprocedure::oid");
}

# --- pipelines: several Parse/Bind/Execute before one Sync ---
{
	my $c = session('pipeline');
	my $before = stats();
	$c->pbe('INSERT INTO log VALUES (101)');
	$c->pbe('INSERT INTO log VALUES (102)');
	$c->pbe('INSERT INTO log VALUES (103)');
	$c->flush;
	my @m = $c->read_until('C', 5);
	@m = (@m, $c->read_until('C', 5), $c->read_until('C', 5));
	is(TxgWire::types(@m), '12C12C12C', 'pipeline: Flush returns the results before the Sync');
	is(registry_row($c->pid, q{state || ' | ' || first_statement || ' | ' || statements}),
		'active | INSERT INTO log VALUES (101) | 3', 'pipeline: with no Sync yet, the transaction is active');
	$c->sync;
	is(TxgWire::status($c->read_until_ready(5)), 'I', 'pipeline: Sync commits');
	is(registry_row($c->pid, 'count(*)'), '0', 'pipeline: no row after the Sync');
	is(delta($before), 'committed=1', 'pipeline: one transaction, committed');

	# an error in the middle: the rest is skipped, the whole pipeline rolls back
	$before = stats();
	$c->pbe('INSERT INTO log VALUES (111)');
	$c->pbe('INSERT INTO t VALUES (1, 0)');
	$c->pbe('INSERT INTO log VALUES (113)');
	$c->sync;
	@m = $c->read_until_ready(5);
	is(TxgWire::types(@m), '12C12EZ', 'pipeline with an error: messages after it are skipped');
	is(TxgWire::error_code(@m) . ' ' . TxgWire::status(@m), 'ERROR 23505 I', 'pipeline with an error: 23505, then idle');
	is(delta($before), 'failed=1', 'pipeline with an error: one transaction, failed');
	is($node->safe_psql('work', 'SELECT count(*) FROM log WHERE x BETWEEN 111 AND 113'), '0',
		'pipeline with an error: nothing committed');

	# the same inside a transaction block: the block is aborted, ROLLBACK ends it
	$before = stats();
	$c->pbe('BEGIN');
	$c->pbe('INSERT INTO log VALUES (121)');
	$c->pbe('SELECT 1/0');
	$c->pbe('INSERT INTO log VALUES (123)');
	$c->sync;
	@m = $c->read_until_ready(5);
	is(TxgWire::error_code(@m) . ' ' . TxgWire::status(@m), 'ERROR 22012 E', 'pipeline in a block: the block is aborted');
	is(registry_row($c->pid, 'state'), 'idle in transaction (aborted)', 'pipeline in a block: idle in transaction (aborted)');
	is(TxgWire::status($c->simple('ROLLBACK')), 'I', 'pipeline in a block: ROLLBACK');
	is(delta($before), 'failed=1', 'pipeline in a block: failed');
	$c->terminate;
}

# --- named prepared statements: the client's statement, not what it calls ---
# (a Bind of a named statement is recognised by its portal, without
# comparing texts; the statements its function runs are not the client's,
# and the white space around a text is trimmed when it is read)
{
	my $c = session('named');
	$c->simple('BEGIN');
	$c->parse('ns', "  SELECT f_nested()\n ");
	$c->sync;
	$c->read_until_ready(5);
	foreach my $i (1 .. 2)
	{
		$c->bind('', 'ns');
		$c->execute('', 0);
		$c->sync;
		is(TxgWire::status($c->read_until_ready(5)), 'T', "named: Bind and Execute of a named statement ($i)");
	}
	$c->parse('ns2', 'SELECT $1::int + f_nested()', 23);
	$c->bind('pn', 'ns2', '1');
	$c->execute('pn', 0);
	$c->sync;
	is(TxgWire::status($c->read_until_ready(5)), 'T', 'named: a named portal of a named statement');
	is(registry_row($c->pid, q{statements || ' | ' || first_statement || ' | ' || last_statement}),
		'3 | SELECT f_nested() | SELECT $1::int + f_nested()',
		'named: three client statements, none of the function\'s, texts trimmed');
	my $before = stats();
	$c->terminate;
	is(poll_sql(q{SELECT first_statement || ' | ' || last_statement FROM txguard.events
		WHERE kind = 'abandoned' AND application_name = 'named'}, 'SELECT f_nested() | SELECT $1::int + f_nested()'),
		'SELECT f_nested() | SELECT $1::int + f_nested()', 'named: the abandoned event keeps the trimmed texts');
	is(delta($before), 'abandoned=1', 'named: abandoned');
}

# --- Execute with a row limit: a suspended portal across the deadline ---
{
	# the client leaves the portal suspended, with no Sync: it waits for
	# its client, so it is terminated, and the row lock is released
	my $c = session('suspended');
	$c->simple(q{SET txguard.transaction_timeout = '700ms'});
	my $before = stats();
	my $start = time();
	$c->simple('BEGIN');
	$c->parse('', 'SELECT id FROM t WHERE id <= 3 ORDER BY id FOR UPDATE');
	$c->bind('p', '');
	$c->execute('p', 1);
	$c->flush;
	my @m = $c->read_until('sE', 5);
	is(TxgWire::types(@m), '12Ds', 'suspended: one row, then PortalSuspended');
	my $w = session('suspended_waiter');
	$w->query('UPDATE t SET n = n + 1 WHERE id = 1');
	my @fatal = $c->read_until('Z', 5);
	is(TxgWire::error_code(@fatal), 'FATAL 25P04', 'suspended: the session waiting with a suspended portal is terminated');
	cmp_ok(time() - $start, '<', 0.7 + 3, 'suspended: within the limit plus 3 s');
	is(TxgWire::error_code($w->read_until_ready(5)), 'none', 'suspended: the blocked UPDATE proceeds');
	is(delta($before), 'committed=1 terminated=1', 'suspended: terminated (and the waiter committed)');
	$w->terminate;

	# the next batch of the portal runs across the deadline: cancelled
	$c = session('next_batch');
	$c->simple(q{SET txguard.transaction_timeout = '1s'});
	$before = stats();
	$c->simple('BEGIN');
	$c->parse('', 'SELECT g, pg_sleep(0.3) FROM generate_series(1, 10) g');
	$c->bind('p', '');
	$c->execute('p', 2);
	$c->flush;
	@m = $c->read_until('sE', 5);
	is(TxgWire::types(@m), '12DDs', 'next batch: two rows, then PortalSuspended');
	$c->execute('p', 0);
	$c->flush;
	@m = $c->read_until('CE', 6);
	is(TxgWire::error_code(@m), 'ERROR 25P04', 'next batch: cancelled at the deadline');
	$c->sync;
	is(TxgWire::status($c->read_until_ready(5)), 'E', 'next batch: the block is aborted');
	is(TxgWire::status($c->simple('ROLLBACK')), 'I', 'next batch: ROLLBACK');
	is(delta($before), 'timed_out=1', 'next batch: timed_out');
	$c->terminate;
}

# --- Describe, Close and Flush ---
{
	my $c = session('close');
	my $before = stats();
	$c->parse('s1', 'SELECT $1::int + 1', 23);
	$c->describe('S', 's1');
	$c->bind('p1', 's1', '41');
	$c->describe('P', 'p1');
	$c->execute('p1', 0);
	$c->close_('P', 'p1');
	$c->close_('S', 's1');
	$c->flush;
	my @m = $c->read_until('3', 5);
	push @m, $c->read_until('3', 5);
	is(TxgWire::types(@m), '1tT2TDC33', 'close: Describe, Execute and Close answered after Flush');
	is(TxgWire::value(@m), '42', 'close: the result');
	$c->execute('p1', 0);
	$c->sync;
	@m = $c->read_until_ready(5);
	is(TxgWire::error_code(@m) . ' ' . TxgWire::status(@m), 'ERROR 34000 I', 'close: the closed portal is gone');
	is(delta($before), 'failed=1', 'close: one implicit transaction, failed');

	# a transaction that only parsed and described is counted too
	$before = stats();
	$c->parse('', 'SELECT 1');
	$c->describe('S', '');
	$c->sync;
	is(TxgWire::types($c->read_until_ready(5)), '1tTZ', 'describe only: ParseComplete, descriptions, ReadyForQuery');
	is(delta($before), 'committed=1', 'describe only: counted as committed');
	$c->terminate;
}

# --- COPY FROM STDIN and COPY TO STDOUT ---
{
	my $c = session('copy_in');
	my $before = stats();
	$c->query('COPY log FROM STDIN');
	is(TxgWire::types($c->read_until('GE', 5)), 'G', 'copy in: CopyInResponse');
	$c->copy_data("201\n202\n");
	$c->copy_done;
	is(TxgWire::status($c->read_until_ready(5)), 'I', 'copy in: CopyDone commits');
	$c->query('COPY log FROM STDIN');
	$c->read_until('GE', 5);
	$c->copy_data("203\n");
	$c->copy_fail('client gave up');
	is(TxgWire::error_code($c->read_until_ready(5)), 'ERROR 57014', 'copy in: CopyFail fails the COPY');
	is(delta($before), 'committed=1 failed=1', 'copy in: committed and failed');
	is($node->safe_psql('work', 'SELECT string_agg(x::text, \',\' ORDER BY x) FROM log WHERE x BETWEEN 201 AND 203'),
		'201,202', 'copy in: the first COPY committed, the second did not');

	# the client stops sending data: it is the client the backend waits for
	$c->simple(q{SET txguard.transaction_timeout = '700ms'});
	$before = stats();
	my $start = time();
	$c->simple('BEGIN');
	$c->query('COPY log FROM STDIN');
	$c->read_until('GE', 5);
	$c->copy_data("204\n");
	my @fatal = $c->read_until('Z', 5);
	is(TxgWire::error_code(@fatal), 'FATAL 25P04', 'copy in across the deadline: terminated');
	cmp_ok(time() - $start, '<', 0.7 + 3, 'copy in across the deadline: within the limit plus 3 s');
	is(delta($before), 'terminated=1', 'copy in across the deadline: terminated');
	is($node->safe_psql('work', 'SELECT count(*) FROM log WHERE x = 204'), '0', 'copy in across the deadline: nothing committed');

	# COPY TO STDOUT that outlives the deadline: the backend works, so a cancel
	$c = session('copy_out');
	$c->simple(q{SET txguard.transaction_timeout = '700ms'});
	$before = stats();
	$c->query('COPY (SELECT g, pg_sleep(0.2) FROM generate_series(1, 20) g) TO STDOUT');
	my @m = $c->read_until_ready(8);
	my $rows = grep { $_->[0] eq 'd' } @m;
	cmp_ok($rows, '>', 0, 'copy out across the deadline: some rows were sent');
	cmp_ok($rows, '<', 20, 'copy out across the deadline: not all of them');
	is(TxgWire::error_code(@m) . ' ' . TxgWire::status(@m), 'ERROR 25P04 I', 'copy out across the deadline: cancelled');
	is(delta($before), 'timed_out=1', 'copy out across the deadline: timed_out');
	$c->terminate;
}

# --- large objects through fast-path calls ---
{
	my %oid = map { $_ => fastpath_oid($_) }
	  ('lo_creat(int4)', 'lo_open(oid,int4)', 'lowrite(int4,bytea)', 'lo_lseek(int4,int4,int4)', 'loread(int4,int4)');
	my $c = session('lo');
	my $before = stats();
	$c->simple('BEGIN');
	$c->function_call($oid{'lo_creat(int4)'}, pack('l>', -1));
	my $lo = unpack('N', TxgWire::fastpath_result($c->read_until_ready(5)) // "\0\0\0\0");
	ok($lo > 0, 'lo: lo_creat returns an oid');
	$c->function_call($oid{'lo_open(oid,int4)'}, pack('N', $lo), pack('N', 0x60000));
	my $fd = unpack('l>', TxgWire::fastpath_result($c->read_until_ready(5)) // pack('l>', -1));
	ok($fd >= 0, 'lo: lo_open returns a descriptor');
	$c->function_call($oid{'lowrite(int4,bytea)'}, pack('N', $fd), 'hello');
	$c->read_until_ready(5);
	$c->function_call($oid{'lo_lseek(int4,int4,int4)'}, pack('N', $fd), pack('N', 0), pack('N', 0));
	$c->read_until_ready(5);
	$c->function_call($oid{'loread(int4,int4)'}, pack('N', $fd), pack('N', 5));
	my @m = $c->read_until_ready(5);
	is(TxgWire::fastpath_result(@m), 'hello', 'lo: loread reads what lowrite wrote');
	is(TxgWire::status(@m), 'T', 'lo: still in the transaction');
	is(registry_row($c->pid, 'state'), 'idle in transaction', 'lo: idle in transaction between calls');
	is(TxgWire::status($c->simple('COMMIT')), 'I', 'lo: COMMIT');
	is(delta($before), 'committed=1', 'lo: one transaction');

	# a fast-path call outside a block is a transaction of its own
	$before = stats();
	$c->function_call($oid{'lo_creat(int4)'}, pack('l>', -1));
	is(TxgWire::error_code($c->read_until_ready(5)), 'none', 'lo: a call outside a block');
	is(delta($before), 'committed=1', 'lo: counted as a committed transaction');

	# past the deadline, a fast-path call fails at once
	$c->simple(q{SET txguard.transaction_timeout = '1s'});
	$before = stats();
	$c->simple('BEGIN');
	$c->simple('SAVEPOINT s');
	is(TxgWire::error_code($c->simple('SELECT pg_sleep(5)', 6)), 'ERROR 25P04', 'lo past the deadline: cancelled');
	is(TxgWire::status($c->simple('ROLLBACK TO s')), 'T', 'lo past the deadline: ROLLBACK TO is accepted');
	my $start = time();
	$c->function_call($oid{'lo_creat(int4)'}, pack('l>', -1));
	@m = $c->read_until_ready(3);
	is(TxgWire::error_code(@m), 'ERROR 25P04', 'lo past the deadline: the fast-path call fails with 25P04');
	cmp_ok(time() - $start, '<', 0.4, 'lo past the deadline: at once');
	is(TxgWire::status($c->simple('ROLLBACK')), 'I', 'lo past the deadline: ROLLBACK');
	is(delta($before), 'timed_out=1', 'lo past the deadline: timed_out');
	$c->terminate;
}

# --- COMMIT AND CHAIN and ROLLBACK AND CHAIN ---
{
	my $c = session('chain');
	$c->simple(q{SET txguard.transaction_timeout = '700ms'});
	my $before = stats();
	$c->simple('BEGIN');
	$c->simple('SELECT 1/0');
	my $start = time();
	is(TxgWire::status($c->simple('ROLLBACK AND CHAIN')), 'T', 'chain: ROLLBACK AND CHAIN of an aborted block');
	is(registry_row($c->pid, q{state || ' | ' || (xact_start >= now() - interval '0.5 s')}),
		'idle in transaction | true', 'chain: the chained transaction is registered, started just now');
	my @fatal = $c->read_until('Z', 5);
	is(TxgWire::error_code(@fatal), 'FATAL 25P04', 'chain: the idle chained transaction is ended at its own deadline');
	cmp_ok(time() - $start, '<', 0.7 + 3, 'chain: within the limit plus 3 s');
	is(delta($before), 'failed=1 terminated=1', 'chain: failed, then terminated');

	$c = session('chain2');
	$before = stats();
	$c->simple('BEGIN');
	$c->simple('INSERT INTO log VALUES (301)');
	my $xs1 = registry_row($c->pid, 'xact_start');
	is(TxgWire::status($c->simple('COMMIT AND CHAIN')), 'T', 'chain: COMMIT AND CHAIN of a live block');
	is(registry_row($c->pid, qq{state || ' | ' || (xact_start > '$xs1')}), 'idle in transaction | true',
		'chain: a new transaction with a new start');
	$c->simple('SELECT 1/0');
	is(TxgWire::status($c->simple('COMMIT AND CHAIN')), 'T', 'chain: COMMIT AND CHAIN of the aborted block');
	$c->simple('COMMIT');
	is(delta($before), 'committed=2 failed=1', 'chain: committed, failed, committed');
	$c->terminate;

	# COMMIT AND CHAIN whose commit fails (a deferred foreign key): core
	# rolls the block back and chains nothing, the session is idle
	$c = session('chain-fails');
	$before = stats();
	my $offset = -s $node->logfile;
	$c->simple('BEGIN');
	$c->simple('INSERT INTO child VALUES (42)');
	my @m = $c->simple('COMMIT AND CHAIN');
	is(TxgWire::error_code(@m) . ' ' . TxgWire::status(@m), 'ERROR 23503 I',
		'chain: a COMMIT AND CHAIN that fails leaves no transaction');
	is(registry_row($c->pid, 'count(*)'), '0', 'chain: and none is listed');
	is(TxgWire::status($c->simple('SELECT 1')), 'I', 'chain: the next statement runs on its own');
	is(delta($before), 'committed=1 failed=1', 'chain: the block failed, the next statement committed');
	is(log_line($offset, qr/unexpected event/), '', 'chain: no unexpected event');
	$c->terminate;

	# An aborted block, then only the Parse of its ROLLBACK AND CHAIN, with
	# a Flush and no Sync (the fuzzer's seed 17 found this quiet state).
	# Core reports the session 'active' (the Parse) with no xact_start (the
	# abort cleared it), but the block still exists: the registry keeps it,
	# with pg_stat_activity's state, until the ROLLBACK runs.
	$c = session('chain3');
	$before = stats();
	$c->simple('BEGIN');
	$c->simple('SELECT 1/0');
	$c->parse('', 'ROLLBACK AND CHAIN');
	$c->describe('S', '');
	$c->flush;
	is(TxgWire::types($c->read_until('n', 5)), '1tn', 'chain: Parse and Describe of ROLLBACK AND CHAIN answered');
	like(activity_state($c->pid), qr{^active / ClientRead / xact_start null / ROLLBACK AND CHAIN},
		'chain: core shows the parsing session active, with no xact_start');
	is(registry_row($c->pid, 'state'), 'active', 'chain: the aborted block stays listed, in the same state');
	$c->bind('', '');
	$c->execute('', 0);
	$c->sync;
	is(TxgWire::status($c->read_until_ready(5)), 'T', 'chain: the unsynced ROLLBACK AND CHAIN chains');
	is(registry_row($c->pid, 'state'), 'idle in transaction', 'chain: the chained transaction is listed');
	$c->simple('COMMIT');
	is(delta($before), 'committed=1 failed=1', 'chain: failed, then committed');
	$c->terminate;
}

# --- procedures that commit and roll back ---
{
	my $c = session('proc');
	my $before = stats();
	is(TxgWire::error_code($c->simple('CALL p_cr()')), 'none', 'procedure: CALL');
	is(delta($before), 'committed=2 rolled_back=1', 'procedure: committed, rolled back, committed');
	$before = stats();
	$c->pbe('CALL p_cr()');
	$c->sync;
	is(TxgWire::types($c->read_until_ready(5)), '12CZ', 'procedure, extended protocol: CALL');
	is(delta($before), 'committed=2 rolled_back=1', 'procedure, extended protocol: the same outcomes');
	is($node->safe_psql('work', 'SELECT count(*) FROM log WHERE x IN (1, 3)') . ' '
		  . $node->safe_psql('work', 'SELECT count(*) FROM log WHERE x = 2'), '4 0',
		'procedure: what was committed');
	$c->terminate;
}

# --- PREPARE TRANSACTION ---
{
	my $c = session('prepare');
	$c->simple(q{SET txguard.transaction_timeout = '500ms'});
	my $before = stats();
	$c->simple('BEGIN');
	$c->simple('UPDATE t SET n = n + 1 WHERE id = 7');
	is(TxgWire::status($c->simple(q{PREPARE TRANSACTION 'g1'})), 'I', 'prepare: PREPARE TRANSACTION');
	is(registry_row($c->pid, 'count(*)'), '0', 'prepare: the session has no transaction left');
	sleep 1;
	is(TxgWire::value($c->simple('SELECT 1')), '1', 'prepare: the session survives past the deadline');
	is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'g1'}), '1',
		'prepare: the prepared transaction is not timed out');
	is(delta($before), 'committed=1', 'prepare: not counted (only the SELECT)');
	$before = stats();
	is(TxgWire::status($c->simple(q{COMMIT PREPARED 'g1'})), 'I', 'prepare: COMMIT PREPARED');
	is(delta($before), 'committed=1', 'prepare: COMMIT PREPARED counts one');
	$c->terminate;
}

# --- SAVEPOINT, RELEASE and ROLLBACK TO in every state ---
{
	my $c = session('savepoints');
	my $before = stats();
	$c->simple('BEGIN');
	# idle in a live transaction
	is(TxgWire::error_code(map { $c->simple($_) } 'SAVEPOINT a', 'RELEASE a', 'SAVEPOINT b', 'ROLLBACK TO b'),
		'none', 'savepoints, live: SAVEPOINT, RELEASE, ROLLBACK TO');
	is(registry_row($c->pid, 'state'), 'idle in transaction', 'savepoints, live: idle in transaction');
	# a failed subtransaction in a live transaction
	$c->simple('SAVEPOINT c');
	$c->simple('SELECT 1/0');
	is(TxgWire::error_code($c->simple('RELEASE c')), 'ERROR 25P02', 'savepoints, failed subtransaction: RELEASE is refused');
	is(TxgWire::status($c->simple('ROLLBACK TO c')), 'T', 'savepoints, failed subtransaction: ROLLBACK TO recovers');
	is(registry_row($c->pid, 'state'), 'idle in transaction', 'savepoints, after ROLLBACK TO: idle in transaction');
	is(TxgWire::status($c->simple('COMMIT')), 'I', 'savepoints: COMMIT');
	is(delta($before), 'committed=1', 'savepoints: committed');

	# an aborted top-level transaction: exempt from the timeout
	$c->simple(q{SET txguard.transaction_timeout = '500ms'});
	$before = stats();
	$c->simple('BEGIN');
	$c->simple('SELECT 1/0');
	is(TxgWire::error_code($c->simple('SAVEPOINT d')), 'ERROR 25P02', 'savepoints, aborted: SAVEPOINT is refused');
	is(TxgWire::error_code($c->simple('ROLLBACK TO d')), 'ERROR 3B001', 'savepoints, aborted: no such savepoint');
	is(registry_row($c->pid, 'state'), 'idle in transaction (aborted)', 'savepoints, aborted: idle in transaction (aborted)');
	sleep 1;
	is(TxgWire::status($c->simple('ROLLBACK')), 'I', 'savepoints, aborted: left alone past the deadline, then ROLLBACK');
	is(delta($before), 'failed=1', 'savepoints, aborted: failed');

	# past the deadline: ROLLBACK TO is accepted, SAVEPOINT is not
	$c->simple(q{SET txguard.transaction_timeout = '1s'});
	$before = stats();
	$c->simple('BEGIN');
	$c->simple('SAVEPOINT e');
	is(TxgWire::error_code($c->simple('SELECT pg_sleep(5)', 6)), 'ERROR 25P04', 'savepoints, deadline: cancelled');
	is(TxgWire::status($c->simple('ROLLBACK TO e')), 'T', 'savepoints, deadline: ROLLBACK TO is accepted');
	is(TxgWire::error_code($c->simple('SAVEPOINT f')), 'ERROR 25P04', 'savepoints, deadline: SAVEPOINT fails with 25P04');
	is(TxgWire::status($c->simple('ROLLBACK TO e')), 'T', 'savepoints, deadline: ROLLBACK TO again');
	is(TxgWire::error_code($c->simple('RELEASE e')), 'ERROR 25P04', 'savepoints, deadline: RELEASE fails with 25P04');
	is(TxgWire::status($c->simple('ROLLBACK')), 'I', 'savepoints, deadline: ROLLBACK');
	is(delta($before), 'timed_out=1', 'savepoints, deadline: timed_out');

	# past the deadline, a session idle after ROLLBACK TO is terminated
	$before = stats();
	my $start = time();
	$c->simple('BEGIN');
	$c->simple('SAVEPOINT g');
	$c->simple('SELECT pg_sleep(5)', 6);
	$c->simple('ROLLBACK TO g');
	my @fatal = $c->read_until('Z', 4);
	is(TxgWire::error_code(@fatal), 'FATAL 25P04', 'savepoints, deadline: idle after ROLLBACK TO is terminated');
	cmp_ok(time() - $start, '<', 1 + 3, 'savepoints, deadline: within the limit plus 3 s');
	is(delta($before), 'terminated=1', 'savepoints, deadline: terminated');
}

# --- cursors WITH HOLD ---
{
	my $c = session('hold');
	$c->simple(q{SET txguard.transaction_timeout = '700ms'});
	my $before = stats();
	$c->simple('BEGIN');
	$c->simple('DECLARE c CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, 3) g');
	is(TxgWire::status($c->simple('COMMIT')), 'I', 'hold: COMMIT keeps the cursor');
	is(registry_row($c->pid, 'count(*)'), '0', 'hold: no transaction left');
	sleep 1;
	my @m = $c->simple('FETCH ALL c');
	is(scalar(TxgWire::rows(@m)) . ' ' . TxgWire::error_code(@m), '3 none',
		'hold: the cursor outlives the transaction and its deadline');
	$c->simple('CLOSE c');
	is(delta($before), 'committed=3', 'hold: three transactions committed');

	# materializing the cursor at COMMIT is work past the deadline
	$before = stats();
	$c->simple('BEGIN');
	$c->simple('DECLARE c2 CURSOR WITH HOLD FOR SELECT pg_sleep(0.1) FROM generate_series(1, 30)');
	my $start = time();
	@m = $c->simple('COMMIT', 6);
	is(TxgWire::error_code(@m) . ' ' . TxgWire::status(@m), 'ERROR 25P04 I', 'hold: COMMIT that materializes past the deadline is cancelled');
	cmp_ok(time() - $start, '<', 0.7 + 3, 'hold: within the limit plus 3 s');
	is(TxgWire::error_code($c->simple('FETCH c2')), 'ERROR 34000', 'hold: the cursor is gone');
	is(delta($before), 'failed=1 timed_out=1', 'hold: timed_out (and the FETCH failed)');
	$c->terminate;
}

# --- every transaction counted once: txguard.stats against pg_stat_database ---
{
	is(poll_sql(q{SELECT count(*) FROM pg_stat_activity WHERE datname = 'work'}, '0'), '0', 'all sessions of "work" have left');
	my $now = stats();
	my $sum = 0;
	$sum += $now->{$_} - $stats_start->{$_} foreach @outcomes;
	# core counts more than the client's transactions: one commit per
	# connection (the transaction in which a backend starts up, in
	# InitPostgres), and COMMIT PREPARED twice (the prepared transaction and
	# the one that runs the command); this test ran one COMMIT PREPARED
	my $connections = () = substr(slurp_file($node->logfile), $log_start)
	  =~ /connection authorized: user=\S+ database=work /g;
	is($sum, $node->safe_psql('postgres', $pgstat_sql) - $pgstat_start - $connections - 1,
		'the outcomes counted equal xact_commit + xact_rollback of pg_stat_database, less one per connection and COMMIT PREPARED');
}

$node->stop;
done_testing();
