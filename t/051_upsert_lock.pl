# txguard.lock timeouts: the timeout argument and lock_timeout, each with a
# clear error after about the time asked for, and lock_timeout restored
# after a call with a timeout argument.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('upsert_lock');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_txguard'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_txguard');

# a holder of the key
my $holder = $node->background_psql('postgres');
$holder->query_safe("BEGIN; SELECT txguard.lock('job:1');");

# run SQL, returning (stderr, seconds taken)
sub timed
{
	my ($sql) = @_;
	my $start = time();
	my ($ret, $out, $err) = $node->psql('postgres', $sql);
	return ($err, time() - $start);
}

my ($err, $secs) = timed("SELECT txguard.lock('job:1', '300 ms')");
like(
	$err,
	qr/ERROR:  could not obtain lock "job:1" within 300 ms/,
	'timeout argument: clear error');
cmp_ok($secs, '>=', 0.3, 'timeout argument: waited the timeout');

($err, $secs) =
  timed("SET lock_timeout = '200ms'; SELECT txguard.lock('job:1')");
like(
	$err,
	qr/ERROR:  could not obtain lock "job:1" within "lock_timeout" \(200 ms\)/,
	'lock_timeout: clear error');
cmp_ok($secs, '>=', 0.2, 'lock_timeout: waited lock_timeout');

# the timeout argument wins over lock_timeout, for that one call only
($err, $secs) = timed(
	q{SET lock_timeout = '400ms';
	  DO $$ BEGIN PERFORM txguard.lock('job:1', '50 ms');
	  EXCEPTION WHEN lock_not_available THEN NULL; END $$;
	  SELECT pg_advisory_xact_lock(txguard.lock_key('job:1'));
	  SELECT txguard.lock('job:1');});
like(
	$err,
	qr/within "lock_timeout" \(400 ms\)/,
	'lock_timeout applies again after a call with a timeout argument');
cmp_ok($secs, '>=', 0.45, 'lock_timeout: restored after the timed call');
is($node->safe_psql('postgres', 'SHOW lock_timeout'),
	'0', 'lock_timeout setting untouched');

# the holder commits: the next caller gets the lock at once
$holder->query_safe('COMMIT');
($err, $secs) = timed("SELECT txguard.lock('job:1', '10 s')");
is($err, '', 'lock obtained after the holder committed');
cmp_ok($secs, '<', 5, 'without waiting for the timeout');

$holder->quit;
$node->stop;
done_testing();
