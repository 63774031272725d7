# 012_timeout_before_hooks.pl: the transaction timeout while the first
# work of a transaction waits for a lock before any hook has seen it
#
# A Query's or a Parse's parse analysis, and a Bind that revalidates a
# cached plan, take their locks before pg_txguard's first hook runs for
# the transaction.  Blocked there by a session holding the table, the
# transaction must still end at its limit: canceled (25P04), counted as
# timed_out, reported with the statement; the session survives.  Also
# after the session sat idle for longer than its limit first (the timer
# goes on looking between transactions), after an error (whose recovery
# disables every timer), after a second error in an aborted block; a
# deadline passed during a long parse analysis still ends in a cancel.
# Not limited: VACUUM's own next transactions, and the transactions core
# runs by itself while the session is idle (delivering notifications).
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

my $node = PostgreSQL::Test::Cluster->new('before_hooks');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_txguard'
autovacuum = off
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_txguard');
$node->safe_psql('postgres', 'CREATE DATABASE work');
$node->safe_psql('work', 'CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)');

TxgCheck::use_node($node);

# a session that holds table t until released
sub hold_table
{
	my $h = session('holder');
	$h->simple('BEGIN');
	$h->simple('LOCK TABLE t IN ACCESS EXCLUSIVE MODE');
	return $h;
}

sub timed_out_events
{
	my ($app) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT count(*) || ' ' || coalesce(max(first_statement), '')
		  FROM txguard.events WHERE kind = 'timeout_cancel' AND application_name = '$app'});
}

# the messages until ReadyForQuery, the time it took, and the error code
sub answer
{
	my ($c, $start) = @_;
	my @m = $c->read_until_ready(20);
	return (TxgWire::error_code(@m), time() - $start, TxgWire::status(@m), @m);
}

# --- a Query waiting in parse analysis ---
{
	my $c = session('query');
	$c->simple(q{SET txguard.transaction_timeout = '400ms'});
	my $h = hold_table();
	my $before = stats();
	my $start = time();
	$c->query('SELECT count(*) FROM t');
	my ($code, $took, $status, @m) = answer($c, $start);
	is($code, 'ERROR 25P04', 'query: canceled by the transaction timeout');
	is(TxgWire::error(@m)->{M}, 'canceling statement due to transaction timeout', 'query: the message');
	cmp_ok($took, '<', 5, 'query: near its limit, not when the lock came free');
	is($status, 'I', 'query: the session survives');
	is(TxgCheck::delta($before), 'timed_out=1', 'query: counted as timed_out');
	is(timed_out_events('query'), '1 SELECT count(*) FROM t', 'query: reported with its statement');
	$h->simple('ROLLBACK');
	is(TxgWire::error_code($c->simple('SELECT count(*) FROM t')), 'none', 'query: then works again');
	$c->terminate;
	$h->terminate;
}

# --- the same after the session sat idle for longer than its limit ---
{
	my $c = session('idle-first');
	$c->simple(q{SET txguard.transaction_timeout = '300ms'});
	usleep(1_200_000);
	my $h = hold_table();
	my $start = time();
	$c->query('SELECT count(*) FROM t');
	my ($code, $took) = answer($c, $start);
	is($code, 'ERROR 25P04', 'idle first: canceled');
	cmp_ok($took, '<', 5, 'idle first: near its limit');

	# and after that error, whose recovery disabled every timer
	$start = time();
	$c->query('SELECT count(*) FROM t');
	($code, $took) = answer($c, $start);
	is($code, 'ERROR 25P04', 'after an error: canceled again');
	cmp_ok($took, '<', 5, 'after an error: near its limit');
	$h->simple('ROLLBACK');
	$c->terminate;
	$h->terminate;
}

# --- a Parse waiting in parse analysis (extended protocol) ---
{
	my $c = session('parse');
	$c->simple(q{SET txguard.transaction_timeout = '400ms'});
	my $h = hold_table();
	my $start = time();
	$c->parse('', 'SELECT count(*) FROM t');
	$c->sync;
	my ($code, $took, $status) = answer($c, $start);
	is($code, 'ERROR 25P04', 'parse: canceled');
	cmp_ok($took, '<', 5, 'parse: near its limit');
	is($status, 'I', 'parse: the session survives');
	$h->simple('ROLLBACK');
	$c->terminate;
	$h->terminate;
}

# --- a Bind revalidating a cached plan ---
{
	my $c = session('bind');
	$c->simple(q{SET txguard.transaction_timeout = '400ms'});
	$c->parse('s', 'SELECT count(*) FROM t');
	$c->sync;
	$c->read_until_ready;
	my $h = hold_table();
	my $before = stats();
	my $start = time();
	$c->bind('', 's');
	$c->execute('', 0);
	$c->sync;
	my ($code, $took, $status) = answer($c, $start);
	is($code, 'ERROR 25P04', 'bind: canceled');
	cmp_ok($took, '<', 5, 'bind: near its limit');
	is($status, 'I', 'bind: the session survives');
	is(TxgCheck::delta($before), 'timed_out=1', 'bind: counted as timed_out');
	$h->simple('ROLLBACK');
	$c->terminate;
	$h->terminate;
}

# --- a deadline that passes while a long statement is analysed: when the
# parse hook then sees the transaction, the cancel stands (not a FATAL) ---
{
	my $c = session('long-parse');
	$c->simple(q{SET txguard.transaction_timeout = '20ms'});
	my $list = join(',', (1) x 500_000);
	$c->parse('', "SELECT 1 WHERE 1 IN ($list)");
	$c->bind('', '');
	$c->execute('', 0);
	$c->sync;
	my @m = $c->read_until_ready(30);
	is(TxgWire::error_code(@m), 'ERROR 25P04', 'long parse: canceled, the session survives');
	is(TxgWire::status(@m), 'I', 'long parse: ready for the next query');
	$c->terminate;
}

# --- after a second error in an aborted block (error recovery disables
# every timer), the next transaction is bounded all the same ---
{
	my $c = session('aborted');
	$c->simple(q{SET txguard.transaction_timeout = '400ms'});
	$c->simple('BEGIN');
	$c->simple('SELECT 1/0');
	$c->simple('SELECT 1');
	$c->simple('ROLLBACK');
	my $h = hold_table();
	my $start = time();
	$c->query('SELECT count(*) FROM t');
	my ($code, $took) = answer($c, $start);
	is($code, 'ERROR 25P04', 'after an aborted block: canceled');
	cmp_ok($took, '<', 5, 'after an aborted block: near its limit');
	$h->simple('ROLLBACK');
	$c->terminate;
	$h->terminate;
}

# --- a transaction core runs by itself while the session is idle (to
# deliver notifications) is not the client's: the session is left alone ---
{
	my $l = session('listener');
	$l->simple(q{SET txguard.transaction_timeout = '1s'});
	$l->simple('LISTEN ch');
	my $pid = $l->pid;
	usleep(1_500_000);
	# more than the socket takes: delivery waits for the listener to read
	$node->safe_psql('work', q{SELECT pg_notify('ch', repeat('x', 7000) || i) FROM generate_series(1, 3000) i});
	usleep(2_500_000);
	is($node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $pid"), '1',
		'listener: still connected while its notifications wait for it');
	$l->query('SELECT 1');
	my @m = $l->read_until_ready(20);
	is(TxgWire::error_code(@m), 'none', 'listener: no error');
	cmp_ok(scalar(grep { $_->[0] eq 'A' } @m), '==', 3000, 'listener: every notification delivered');
	$l->terminate;
}

# --- within its limit, a wait for a lock before any hook is left alone ---
{
	my $c = session('within');
	$c->simple(q{SET txguard.transaction_timeout = '5s'});
	my $h = hold_table();
	$c->query('SELECT count(*) FROM t');
	usleep(500_000);
	$h->simple('ROLLBACK');
	my @m = $c->read_until_ready(20);
	is(TxgWire::error_code(@m), 'none', 'within: the query runs once the lock is free');
	$c->terminate;
	$h->terminate;
}

# --- VACUUM's own next transactions are not limited ---
{
	$node->safe_psql('work', 'CREATE TABLE v1 (id int); CREATE TABLE v2 (id int)');
	my $c = session('vacuum');
	$c->simple(q{SET txguard.transaction_timeout = '500ms'});
	my $h = session('holder');
	$h->simple('BEGIN');
	$h->simple('LOCK TABLE v2 IN SHARE MODE');
	my $start = time();
	# v1 at once, then v2 in a transaction of its own, which waits
	$c->query('VACUUM v1, v2');
	usleep(1_500_000);
	$h->simple('ROLLBACK');
	my @m = $c->read_until_ready(20);
	is(TxgWire::error_code(@m), 'none', 'vacuum: its later transaction waits past the limit, untouched');
	$c->terminate;
	$h->terminate;
}

$node->stop;
done_testing();
