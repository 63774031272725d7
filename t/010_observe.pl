# 010_observe.pl: txguard.observe_timeout, a limit that is only reported
#
# Past the deadline, one LOG line, one txguard.events row and one count in
# txguard.stats.observed, once per transaction, whether the session works
# or sits idle; nothing is cancelled or terminated; a real limit next to
# it is enforced as before; a transaction within the limit leaves no trace.
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

my $node = PostgreSQL::Test::Cluster->new('observe');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_txguard'
autovacuum = off
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_txguard');
$node->safe_psql('postgres', 'CREATE DATABASE work');
$node->safe_psql('postgres', q{
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
CREATE ROLE carol LOGIN;
ALTER ROLE carol SET txguard.observe_timeout = '300ms';
});
$node->safe_psql('work', 'CREATE TABLE t (id int PRIMARY KEY, n int); INSERT INTO t VALUES (1, 0)');

TxgCheck::use_node($node);

# the number of observed events of an application
sub observed
{
	my ($app) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT count(*) FROM txguard.events
		 WHERE kind = 'timeout_observed' AND application_name = '$app'});
}

# --- a running statement past the deadline: reported while it runs, not cancelled ---
{
	my $c = session('running');
	$c->simple(q{SET txguard.observe_timeout = '500ms'});
	my $before = stats();
	my $offset = -s $node->logfile;
	$c->simple('BEGIN');
	my $start = time();
	$c->query('SELECT pg_sleep(2.5)');
	is(poll_sql(q{SELECT count(*) FROM txguard.events WHERE kind = 'timeout_observed'
			AND application_name = 'running'}, '1', 2), '1', 'running: the event appears');
	cmp_ok(time() - $start, '<', 2.2, 'running: while the statement still runs');
	my @m = $c->read_until_ready(5);
	is(TxgWire::error_code(@m), 'none', 'running: the statement is not cancelled');
	is(TxgWire::status($c->simple('COMMIT')), 'I', 'running: the transaction commits');
	is(delta($before), 'committed=1 observed=1', 'running: committed, and counted as observed once');
	is(observed('running'), '1', 'running: one event, though the transaction ended past its deadline');
	like(log_line($offset, qr/event=timeout_observed/),
		qr/pg_txguard: event=timeout_observed pid=\d+ user=\S+ database=work application_name=running client_addr=local xact_start="[^"]+" duration="[\d.]+ s" limit="500 ms" limit_setting=txguard.observe_timeout statements=1 first_statement="SELECT pg_sleep\(2.5\)" last_statement="SELECT pg_sleep\(2.5\)" blocking=\{\}/,
		'running: the LOG line has the fields of an enforcement');
	my $lines = () = substr(slurp_file($node->logfile), $offset) =~ /event=timeout_observed/g;
	is($lines, 1, 'running: one LOG line');
	$c->terminate;
}

# --- idle in the transaction, holding a lock another session waits for ---
{
	my $c = session('idle');
	my $w = session('waiter');
	$c->simple(q{SET txguard.observe_timeout = '400ms'});
	my $before = stats();
	$c->simple('BEGIN');
	$c->simple('UPDATE t SET n = n + 1 WHERE id = 1');
	$w->query('UPDATE t SET n = n + 1 WHERE id = 1');
	ok(wait_for_lock_wait($w->pid), 'idle: another session waits for its row');
	is(poll_sql(q{SELECT count(*) FROM txguard.events WHERE kind = 'timeout_observed'
			AND application_name = 'idle'}, '1', 3), '1', 'idle: reported while idle');
	is($node->safe_psql('postgres', q{SELECT blocking = ARRAY[} . $w->pid . q{] FROM txguard.events
			WHERE kind = 'timeout_observed' AND application_name = 'idle'}), 't',
		'idle: the event names the session it blocks');
	usleep(300_000);
	is(TxgWire::status($c->simple('SELECT 2')), 'T', 'idle: the session is still there, in its transaction');
	is(TxgWire::status($c->simple('COMMIT')), 'I', 'idle: and commits');
	is(TxgWire::status($w->read_until_ready(5)), 'I', 'idle: the waiter goes on');
	is(delta($before), 'committed=2 observed=1', 'idle: both committed, one observed');
	is(observed('idle'), '1', 'idle: one event');
	$c->terminate;
	$w->terminate;
}

# --- within the limit: no trace ---
{
	my $c = session('quick');
	$c->simple(q{SET txguard.observe_timeout = '2s'});
	my $before = stats();
	my $offset = -s $node->logfile;
	$c->simple('BEGIN');
	$c->simple('SELECT 1');
	$c->simple('COMMIT');
	usleep(600_000);
	is(delta($before), 'committed=1', 'quick: committed, not observed');
	is(observed('quick'), '0', 'quick: no event');
	is(log_line($offset, qr/event=timeout_observed/), '', 'quick: no LOG line');
	$c->terminate;
}

# --- just past the deadline, ended before the sentinel looks: each once ---
{
	my $c = session('short');
	$c->simple(q{SET txguard.observe_timeout = '100ms'});
	my $before = stats();
	$c->simple('SELECT pg_sleep(0.15)') foreach 1 .. 6;
	usleep(600_000);
	is(delta($before), 'committed=6 observed=6', 'short: six transactions, each observed');
	is(observed('short'), '6', 'short: six events, one each');
	$c->terminate;
}

# --- next to a real limit: enforced as before, and observed too ---
{
	my $c = session('both');
	$c->simple(q{SET txguard.observe_timeout = '300ms'});
	$c->simple(q{SET txguard.transaction_timeout = '900ms'});
	my $before = stats();
	$c->simple('BEGIN');
	my @m = $c->simple('SELECT pg_sleep(3)', 6);
	is(TxgWire::error_code(@m), 'ERROR 25P04', 'both: the real limit cancels');
	$c->simple('ROLLBACK');
	is(delta($before), 'timed_out=1 observed=1', 'both: timed out, and observed');

	# the same deadline for both
	$c->simple(q{SET txguard.observe_timeout = '500ms'});
	$c->simple(q{SET txguard.transaction_timeout = '500ms'});
	$before = stats();
	$c->simple('BEGIN');
	@m = $c->simple('SELECT pg_sleep(3)', 6);
	is(TxgWire::error_code(@m), 'ERROR 25P04', 'both, one deadline: cancelled');
	$c->simple('ROLLBACK');
	is(delta($before), 'timed_out=1 observed=1', 'both, one deadline: enforced and also observed, once');
	is(observed('both'), '2', 'both: one event per transaction');
	$c->terminate;
}

# --- an aborted block holds no locks: the limit stops there, as the real one does ---
{
	my $c = session('aborted');
	$c->simple(q{SET txguard.observe_timeout = '300ms'});
	my $before = stats();
	$c->simple('BEGIN');
	$c->simple('SELECT 1/0');
	usleep(800_000);
	$c->simple('ROLLBACK');
	is(delta($before), 'failed=1', 'aborted: failed, not observed');
	is(observed('aborted'), '0', 'aborted: no event');
	$c->terminate;
}

# --- SET LOCAL inside the transaction: counted from its start, for it alone ---
{
	my $c = session('local');
	my $before = stats();
	$c->simple('BEGIN');
	$c->simple('SELECT 1');
	$c->simple(q{SET LOCAL txguard.observe_timeout = '300ms'});
	is(poll_sql(q{SELECT count(*) FROM txguard.events WHERE kind = 'timeout_observed'
			AND application_name = 'local'}, '1', 3), '1', 'local: SET LOCAL applies to the open transaction');
	$c->simple('COMMIT');
	$c->simple('BEGIN');
	usleep(800_000);
	$c->simple('COMMIT');
	is(delta($before), 'committed=2 observed=1', 'local: the next transaction is not observed');
	$c->terminate;
}

# --- ALTER ROLE ... SET: the limit of every session of the role ---
{
	my $c = session('carol', user => 'carol');
	my $before = stats();
	$c->simple('BEGIN');
	is(poll_sql(q{SELECT count(*) FROM txguard.events WHERE kind = 'timeout_observed'
			AND application_name = 'carol'}, '1', 3), '1', 'role: the role setting applies from login');
	$c->simple('COMMIT');
	is(delta($before), 'committed=1 observed=1', 'role: observed once');
	$c->terminate;
}

# --- privacy: the statements of an observed event follow the events' rule ---
{
	my $c = session('alice', user => 'alice');
	$c->simple(q{SET txguard.observe_timeout = '200ms'});
	$c->simple('BEGIN');
	$c->simple(q{SELECT 'secret-of-alice'});
	poll_sql(q{SELECT count(*) FROM txguard.events WHERE kind = 'timeout_observed'
			AND application_name = 'alice'}, '1', 3);
	$c->simple('COMMIT');
	my $q = q{SELECT coalesce(first_statement, '<hidden>') FROM txguard.events
		WHERE kind = 'timeout_observed' AND application_name = 'alice'};
	is($node->safe_psql('postgres', "SET ROLE bob; $q"), '<hidden>', 'privacy: another role does not see the statements');
	is($node->safe_psql('postgres', "SET ROLE alice; $q"), q{SELECT 'secret-of-alice'}, 'privacy: the role itself does');
	is($node->safe_psql('postgres', "SELECT usename FROM txguard.events
		WHERE kind = 'timeout_observed' AND application_name = 'alice'"), 'alice', 'privacy: the event is the login role\'s');
	$c->terminate;
}

$node->stop;
done_testing();
