# 011_durations.pl: transaction durations per (database, role,
# application_name)
#
# The longest idle wait between two statements, simple and extended
# protocol, a Describe answered after a wait, and up to a session that
# leaves idle; a wait going along when a transaction changes its
# application_name; keys that change in a
# session; what txguard.would_time_out() counts of open transactions; the
# bound on keys and the "(other)" row; DROP DATABASE; survival across a
# clean restart, and none across an immediate shutdown.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use FindBin;
use lib $FindBin::RealBin;
use TxgWire;
use TxgCheck;

my $node = PostgreSQL::Test::Cluster->new('durations');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_txguard'
autovacuum = off
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_txguard');
$node->safe_psql('postgres', 'CREATE DATABASE work');

TxgCheck::use_node($node);

# the durations of an application in database "work": "transactions
# max_idle_ms", max_idle rounded down to the millisecond
sub durations_of
{
	my ($app) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT transactions || ' ' || floor(extract(epoch FROM max_idle) * 1000)
		  FROM txguard.durations
		 WHERE datname = 'work' AND application_name = '$app'});
}

# start over: reset, and make the key of the readers (psql in postgres)
sub start_over
{
	$node->safe_psql('postgres', 'SELECT txguard.reset_stats()');
	$node->safe_psql('postgres', 'SELECT 1');
}

# --- the longest wait for the client between two statements ---
start_over();
{
	my $c = session('idle-simple');
	$c->simple('BEGIN');
	$c->simple('SELECT 1');
	usleep(400_000);
	$c->simple('SELECT 2');
	$c->simple('COMMIT');
	my ($n, $idle) = split / /, durations_of('idle-simple');
	is($n, 1, 'simple protocol: one transaction');
	cmp_ok($idle, '>=', 400, 'simple protocol: max_idle is the 400 ms wait');
	cmp_ok($idle, '<', 5000, 'simple protocol: and not more than the transaction');

	# extended protocol: the wait after a Sync, up to the next Parse
	my $p = session('idle-extended');
	$p->pbe('BEGIN');
	$p->pbe('SELECT 1');
	$p->sync;
	is(TxgWire::status($p->read_until_ready), 'T', 'extended protocol: idle in the block');
	usleep(300_000);
	$p->pbe('SELECT 2');
	$p->pbe('COMMIT');
	$p->sync;
	is(TxgWire::status($p->read_until_ready), 'I', 'extended protocol: committed');
	($n, $idle) = split / /, durations_of('idle-extended');
	is($n, 1, 'extended protocol: one transaction');
	cmp_ok($idle, '>=', 300, 'extended protocol: max_idle is the 300 ms wait');

	# a Bind of a statement parsed before the wait also ends it
	my $b = session('idle-bind');
	$b->parse('s1', 'SELECT 3');
	$b->pbe('BEGIN');
	$b->sync;
	$b->read_until_ready;
	usleep(300_000);
	$b->bind('', 's1');
	$b->execute('', 0);
	$b->pbe('COMMIT');
	$b->sync;
	is(TxgWire::status($b->read_until_ready), 'I', 'bind: committed');
	($n, $idle) = split / /, durations_of('idle-bind');
	cmp_ok($idle, '>=', 300, 'bind: max_idle is the 300 ms wait');

	# a Describe answered after the wait ends it too, though no statement
	# runs before the next Sync
	my $d = session('idle-describe');
	$d->parse('s2', 'SELECT 4');
	$d->pbe('BEGIN');
	$d->pbe('SELECT 1');
	$d->sync;
	$d->read_until_ready;
	usleep(400_000);
	$d->describe('S', 's2');
	$d->sync;
	is(TxgWire::status($d->read_until_ready), 'T', 'describe: still in the block');
	$d->pbe('SELECT 2');
	$d->pbe('COMMIT');
	$d->sync;
	$d->read_until_ready;
	($n, $idle) = split / /, durations_of('idle-describe');
	cmp_ok($idle, '>=', 400, 'describe: max_idle is the 400 ms wait before it');

	# a transaction that changes application_name takes its wait along
	my $m = session('idle-before-set');
	$m->simple('BEGIN');
	$m->simple('SELECT 1');
	usleep(400_000);
	$m->simple(q{SET application_name = 'idle-after-set'});
	$m->simple('COMMIT');
	($n, $idle) = split / /, durations_of('idle-after-set');
	is($n, 1, 'renamed: the transaction counts for the name it ended with');
	cmp_ok($idle, '>=', 400, 'renamed: with its wait');
	is(durations_of('idle-before-set'), '', 'renamed: nothing for the name it started with');
	$_->terminate for ($d, $m);

	# a failed block waits too: until the client's ROLLBACK
	my $f = session('idle-failed');
	$f->simple('BEGIN');
	$f->simple('SELECT 1/0');
	usleep(300_000);
	$f->simple('ROLLBACK');
	($n, $idle) = split / /, durations_of('idle-failed');
	cmp_ok($idle, '>=', 300, 'failed block: max_idle is the 300 ms wait');

	# a client that leaves idle in its transaction: the wait lasts to its exit
	my $l = session('idle-leaver');
	$l->simple('BEGIN');
	$l->simple('SELECT 1');
	usleep(300_000);
	$l->terminate;
	is(poll_sql(q{SELECT transactions FROM txguard.durations
		WHERE datname = 'work' AND application_name = 'idle-leaver'}, '1', 10), '1',
		'leaver: its abandoned transaction is counted');
	($n, $idle) = split / /, durations_of('idle-leaver');
	cmp_ok($idle, '>=', 300, 'leaver: max_idle runs to its exit');

	# one statement per transaction: nothing waits
	my $a = session('autocommit');
	$a->simple('SELECT 1') for 1 .. 3;
	usleep(200_000);
	$a->simple('SELECT 1');
	is(durations_of('autocommit'), '4 0', 'autocommit: four transactions, no wait inside one');
	$_->terminate for ($c, $p, $b, $f, $a);
}

# --- a session that changes its application_name ---
start_over();
{
	my $c = session('first');
	$c->simple('SELECT 1') for 1 .. 2;
	$c->simple(q{SET application_name = 'second'});
	$c->simple('SELECT 1');
	is(durations_of('first'), '2 0', 'before the SET: two transactions of the first name');
	is(durations_of('second'), '2 0', 'the SET and the next: of the second name, while connected');
	$c->simple(q{SET application_name = 'first'});
	$c->terminate;
	is(poll_sql(q{SELECT string_agg(application_name || '=' || transactions, ' '
			ORDER BY application_name COLLATE "C") FROM txguard.durations WHERE datname = 'work'},
		'first=3 second=2', 10), 'first=3 second=2', 'after the exit: the same counts, in the table');
}

# --- what a limit would end now: open transactions ---
start_over();
{
	my $h = session('holder');
	$h->simple('BEGIN');
	$h->simple('SELECT 1');
	usleep(300_000);
	my $wto = sub {
		my ($limit) = @_;
		return $node->safe_psql('postgres', qq{
			SELECT transactions || ' ' || ended_longer || ' ' || open_longer
			  FROM txguard.would_time_out('$limit')
			 WHERE datname = 'work' AND application_name = 'holder'});
	};
	is($wto->('200ms'), '0 0 1', 'open: one transaction older than 200 ms, none ended');
	is($wto->('1h'), '', 'open: none older than 1 h, and no row');
	$h->simple('COMMIT');
	is($wto->('200ms'), '1 1 0', 'ended: the same transaction, now ended, lasted longer');
	is($wto->('1h'), '1 0 0', 'ended: but not 1 h');
	$h->terminate;
}

# --- at most txguard.max_duration_keys keys; then "(other)" per database ---
$node->append_conf('postgresql.conf', 'txguard.max_duration_keys = 4');
$node->restart;
start_over();
{
	my $offset = -s $node->logfile;
	foreach my $k (1 .. 5)
	{
		my $c = session("key$k");
		$c->simple('SELECT 1') for 1 .. 2;
		$c->terminate;
		poll_sql(qq{SELECT count(*) FROM pg_stat_activity WHERE application_name = 'key$k'}, '0', 10);
	}
	# psql in postgres, key1, key2 and key3 are the four keys
	my $rows = q{SELECT string_agg(coalesce(usename, '-') || ':' || application_name || '=' || transactions,
		' ' ORDER BY application_name COLLATE "C") FROM txguard.durations WHERE datname = 'work'};
	my $c = session('key6');
	$c->simple('SELECT 1');
	is($node->safe_psql('postgres', $rows),
		'-:(other)=5 ' . join(' ', map { getpwuid($<) . ":key$_=2" } 1 .. 3),
		'the fifth key and beyond are counted in (other), a live session\'s too');
	$c->terminate;
	is(poll_sql($rows, '-:(other)=5 ' . join(' ', map { getpwuid($<) . ":key$_=2" } 1 .. 3), 5),
		'-:(other)=5 ' . join(' ', map { getpwuid($<) . ":key$_=2" } 1 .. 3),
		'the same once it has left');
	ok(log_line($offset, qr/transaction durations are kept for at most 4 keys/),
		'the log says the keys are full');
	is($node->safe_psql('postgres', q{SELECT count(*) FROM txguard.duration_histogram
			WHERE datname = 'work' AND application_name = '(other)' AND usename IS NULL}),
		'23', '(other) has its histogram too');
}
$node->append_conf('postgresql.conf', 'txguard.max_duration_keys = 1000');
$node->restart;

# --- DROP DATABASE takes its durations along ---
start_over();
{
	$node->safe_psql('postgres', 'CREATE DATABASE gone');
	my $oid = $node->safe_psql('postgres', q{SELECT oid FROM pg_database WHERE datname = 'gone'});
	my $c = session('goner', dbname => 'gone');
	$c->simple('SELECT 1');
	$c->terminate;
	poll_sql(q{SELECT count(*) FROM pg_stat_activity WHERE datname = 'gone'}, '0', 10);
	is(poll_sql("SELECT count(*) > 0 FROM txguard._durations() WHERE dbid = $oid", 't', 10), 't',
		'the database has durations');
	$node->safe_psql('postgres', 'DROP DATABASE gone');
	is($node->safe_psql('postgres', "SELECT count(*) FROM txguard._durations() WHERE dbid = $oid"), '0',
		'DROP DATABASE removes them');
}

# --- kept across a clean restart, not across an immediate shutdown ---
start_over();
{
	my $c = session('kept');
	$c->simple('BEGIN');
	$c->simple('SELECT pg_sleep(0.1)');
	usleep(200_000);
	$c->simple('COMMIT');
	$c->terminate;
	my $q = q{SELECT string_agg(application_name || ' ' || transactions || ' ' || mean || ' '
			|| p99 || ' ' || max || ' ' || max_idle, ', ' ORDER BY application_name COLLATE "C")
		FROM txguard.durations WHERE datname = 'work'};
	my $h = q{SELECT string_agg(application_name || ' ' || coalesce(le::text, 'inf') || ' ' || count, ', '
			ORDER BY application_name COLLATE "C", le) FROM txguard.duration_histogram WHERE datname = 'work'};
	poll_sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'kept'", '0', 10);
	my $before = $node->safe_psql('postgres', $q);
	my $hist = $node->safe_psql('postgres', $h);
	like($before, qr/^kept 1 /, 'one transaction of "kept"');
	$node->restart;
	is($node->safe_psql('postgres', $q), $before, 'a clean restart keeps the durations');
	is($node->safe_psql('postgres', $h), $hist, 'and the histogram');

	$node->stop('immediate');
	$node->start;
	is($node->safe_psql('postgres', $q), '', 'an immediate shutdown starts them from zero');
}

$node->stop;
done_testing();
