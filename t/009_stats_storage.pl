# 009_stats_storage.pl: where txguard.stats lives between restarts
#
# Rows of dropped databases are reclaimed (at DROP DATABASE, and when the
# file is loaded), a backend that counted nothing makes no row, the file
# is loaded whole or not at all (its checksum and every value checked),
# and an immediate shutdown, like a crash, starts the counters from zero.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Copy;
use FindBin;
use lib $FindBin::RealBin;
use TxgWire;

my $node = PostgreSQL::Test::Cluster->new('storage');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_txguard'
autovacuum = off
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_txguard');
$node->safe_psql('postgres', "CREATE DATABASE $_") foreach qw(d1 d2 d3 d4);

my $file = $node->data_dir . '/pg_stat/pg_txguard.stat';

# rows of _stats() (by database oid, so that dropped databases show too)
sub rows
{
	return $node->safe_psql('postgres', q{
		SELECT coalesce(d.datname, 'oid ' || s.dbid) || ' ' || s.committed || ' ' || s.failed
		  FROM txguard._stats() s LEFT JOIN pg_database d ON d.oid = s.dbid
		 WHERE coalesce(d.datname, '') NOT IN ('postgres', 'template1')
		 ORDER BY 1});
}

sub work
{
	my ($db, $n) = @_;
	$node->safe_psql($db, join(' ', ('SELECT 1;') x $n));
}

sub stats_reset
{
	return $node->safe_psql('postgres', 'SELECT max(stats_reset) FROM txguard._stats()');
}

sub oid_of
{
	return $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = '$_[0]'");
}

# --- a backend that counted nothing makes no row ---
{
	work('d1', 3);
	work('d2', 2);
	my $c = TxgWire->connect($node, dbname => 'd3', application_name => 'silent');
	$c->terminate;
	$node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = 'd3'");
	is(rows(), "d1 3 0\nd2 2 0", 'rows for the databases that counted, none for a silent session');
}

# --- DROP DATABASE takes its row with it ---
{
	my $oid = oid_of('d2');
	$node->safe_psql('postgres', 'DROP DATABASE d2');
	is($node->safe_psql('postgres', "SELECT count(*) FROM txguard._stats() WHERE dbid = $oid"), '0',
		'the row of a dropped database is gone');
	my ($ret) = $node->psql('postgres', 'BEGIN; DROP DATABASE d1; COMMIT');
	is(rows(), 'd1 3 0', 'a DROP DATABASE that fails keeps the row');
}

# --- a clean restart keeps the rows and stats_reset ---
my $reset_before = stats_reset();
$node->restart;
is(rows(), 'd1 3 0', 'the counters survive a clean restart');
is(stats_reset(), $reset_before, 'stats_reset survives a clean restart');

# --- rows of databases dropped while the library was not loaded ---
{
	work('d4', 4);
	is(rows(), "d1 3 0\nd4 4 0", 'd4 counted');
	$node->stop;
	ok(-f $file, 'the file is written at a clean shutdown');
	$node->append_conf('postgresql.conf', "shared_preload_libraries = ''");
	$node->start;
	$node->safe_psql('postgres', 'DROP DATABASE d4');
	$node->stop;
	ok(-f $file, 'the file is left alone while the library is not loaded');
	$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_txguard'");
	my $offset = -s $node->logfile;
	$node->start;
	is(rows(), 'd1 3 0', 'the row of the database dropped meanwhile is reclaimed at load');
	like(slurp_file($node->logfile, $offset),
		qr/dropped the transaction counters of 1 database that no longer exists/,
		'the reclaim is logged');
	like(slurp_file($node->logfile, $offset),
		qr/dropped the transaction durations of 1 key of databases that no longer exist/,
		'the durations of the dropped database go too, and the log says so');
}

# --- damaged files: loaded whole or not at all ---

# CRC-32C (Castagnoli), as PostgreSQL's INIT/COMP/FIN_CRC32C
my @crc_table;
foreach my $i (0 .. 255)
{
	my $c = $i;
	$c = ($c & 1) ? (($c >> 1) ^ 0x82F63B78) : ($c >> 1) foreach 1 .. 8;
	push @crc_table, $c;
}

sub crc32c
{
	my $crc = 0xFFFFFFFF;
	$crc = $crc_table[ ($crc ^ $_) & 0xFF ] ^ ($crc >> 8) foreach unpack('C*', $_[0]);
	return $crc ^ 0xFFFFFFFF;
}

# layout: magic u32, stats_reset i64, ndbs i32, rows of 80 bytes (dbid,
# pad, 7 counters, max_duration, observed), then the durations: nkeys i32,
# keys of 280 bytes (dbid, userid, application_name 64 bytes, 23 buckets,
# sum, max, max_idle), nothers i32, "(other)" rows of 280 bytes; crc u32.
# The damage is done to the first row, or the first key.
my $d1 = oid_of('d1');
is($node->safe_psql('postgres', "SELECT sum(transactions) FROM txguard._durations() WHERE dbid = $d1"),
	'3', 'd1 has the durations of its 3 transactions');
$node->stop;
my $good = slurp_file($file);
my $dstart = 16 + 2 * 80;
is(unpack('V', $good), 0x54584733, 'the file is in the format with durations');
my $nkeys = unpack('l<', substr($good, $dstart, 4));
is($nkeys, 2, 'the durations of two keys (psql in d1, and in postgres where the checks run)');
is(length($good), $dstart + 4 + $nkeys * 280 + 4 + 4, 'the file holds two rows, two keys and no (other) row');
is(unpack('V', substr($good, -4)), crc32c(substr($good, 0, -4)), 'its checksum is CRC-32C');
my $reset_in_file = unpack('q<', substr($good, 4, 8));

sub with_crc
{
	my ($body) = @_;
	return $body . pack('V', crc32c($body));
}

sub body { return substr($good, 0, -4); }

my $row = substr(body(), 16, 80);
my %damaged = (
	'a flipped byte' => [ substr(body(), 0, 30) . chr(ord(substr(body(), 30, 1)) ^ 1) . substr($good, 31),
		qr/its checksum does not match its contents/ ],
	'truncated' => [ substr($good, 0, 50), qr/its size does not match its number of databases/ ],
	'an infinite longest duration' => [
		with_crc(substr(body(), 0, 16 + 64) . pack('q<', 9223372036854775807) . substr(body(), 16 + 72)),
		qr/it holds a longest duration out of range/ ],
	'two rows for one database' => [
		with_crc(substr(body(), 0, 12) . pack('l<', 2) . $row . $row),
		qr/it holds two rows for one database/ ],
	'a negative counter' => [
		with_crc(substr(body(), 0, 16 + 8) . pack('q<', -5) . substr(body(), 16 + 16)),
		qr/it holds a negative counter/ ],
	'a reset time in the year 148138' => [
		with_crc(substr(body(), 0, 4) . pack('q<', 4611686018427387000) . substr(body(), 12)),
		qr/its reset time is out of range/ ],
	'an older format' => [ pack('V', 0x54584731) . substr($good, 4), qr/it is not in this version's format/ ],
	'a negative count of durations' => [
		with_crc(substr(body(), 0, $dstart + 4 + 72) . pack('q<', -1) . substr(body(), $dstart + 4 + 80)),
		qr/it holds a negative count of durations/ ],
	'an application_name without its end' => [
		with_crc(substr(body(), 0, $dstart + 4 + 8) . ('x' x 64) . substr(body(), $dstart + 4 + 72)),
		qr/it holds an application_name that does not end/ ],
	'two rows of durations for one key' => [
		with_crc(substr(body(), 0, $dstart) . pack('l<', 2) . (substr(body(), $dstart + 4, 280) x 2)
			. pack('l<', 0)),
		qr/it holds two rows of durations for one key/ ],
	'durations cut short' => [
		with_crc(substr(body(), 0, $dstart) . pack('l<', $nkeys + 1) . substr(body(), $dstart + 4)),
		qr/its durations are cut short/ ],
	'a count of durations out of range' => [
		with_crc(substr(body(), 0, $dstart + 4 + 72 + 8 * 22) . pack('q<', 2**47)
			. substr(body(), $dstart + 4 + 72 + 8 * 23)),
		qr/it holds a count of durations out of range/ ],
	'a sum of durations past what its longest allows' => [
		with_crc(substr(body(), 0, $dstart + 4 + 256) . pack('q<', 4611686018427387000)
			. substr(body(), $dstart + 4 + 264)),
		qr/it holds a sum of durations out of range/ ],
);
foreach my $what (sort keys %damaged)
{
	my ($contents, $reason) = @{ $damaged{$what} };
	open(my $fh, '>:raw', $file) or die "could not write $file: $!";
	print $fh $contents;
	close $fh;
	my $offset = -s $node->logfile;
	$node->start;
	like(slurp_file($node->logfile, $offset),
		qr/ignoring the statistics file "pg_stat\/pg_txguard.stat": $reason/,
		"$what: rejected, and the log says why");
	is(rows(), '', "$what: no counter loaded");
	is($node->safe_psql('postgres', "SELECT count(*) FROM txguard._durations() WHERE dbid = $d1"),
		'0', "$what: no durations loaded");
	work('d1', 1);
	is(rows(), 'd1 1 0', "$what: counting starts from zero");
	is($node->safe_psql('postgres', "SELECT '" . stats_reset() . "'::timestamptz > '$reset_before'"),
		't', "$what: stats_reset not loaded either");
	$node->stop;
}

# the good file still loads
{
	open(my $fh, '>:raw', $file) or die;
	print $fh $good;
	close $fh;
	$node->start;
	is(rows(), 'd1 3 0', 'the undamaged file loads');
	is(stats_reset(), $reset_before, 'with its stats_reset');
	is($node->safe_psql('postgres', "SELECT sum(transactions) FROM txguard._durations() WHERE dbid = $d1"),
		'3', 'and its durations');
}

# a file of the previous format (no durations) still loads its counters
{
	$node->stop;
	open(my $fh, '>:raw', $file) or die;
	print $fh with_crc(pack('V', 0x54584732) . substr(body(), 4, $dstart - 4));
	close $fh;
	$node->start;
	is(rows(), 'd1 3 0', 'a file of the previous format loads its counters');
	is($node->safe_psql('postgres', "SELECT count(*) FROM txguard._durations() WHERE dbid = $d1"),
		'0', 'and has no durations');
}

# a file with more keys than txguard.max_duration_keys (lowered since, say):
# the first ones load as keys, the rest join their database's (other) row
{
	$node->stop;
	my $keys = '';
	foreach my $i (1 .. 5000)
	{
		$keys .= pack('LL', $d1, 10) . pack('a64', "key$i")
		  . pack('q<*', 1, (0) x 22, 500, 500, 0);
	}
	open(my $fh, '>:raw', $file) or die;
	print $fh with_crc(substr(body(), 0, $dstart) . pack('l<', 5000) . $keys . pack('l<', 0));
	close $fh;
	my $offset = -s $node->logfile;
	$node->start;
	is($node->safe_psql('postgres', "SELECT count(*) FILTER (WHERE userid IS NOT NULL) || ' '
			|| sum(transactions) FILTER (WHERE userid IS NULL)
			FROM txguard._durations() WHERE dbid = $d1"),
		'1000 4000', '5,000 keys: 1,000 load as keys, the rest in (other)');
	is(rows(), 'd1 3 0', 'and the counters load with them');
	like(slurp_file($node->logfile, $offset), qr/transaction durations are kept for at most 1000 keys/,
		'and the log says the keys are full');
}

# --- an immediate shutdown starts the counters from zero, as a crash does ---
{
	work('d1', 2);
	is(rows(), 'd1 5 0', 'd1 counted 2 more');
	$node->stop('immediate');
	my $offset = -s $node->logfile;
	$node->start;
	like(slurp_file($node->logfile, $offset),
		qr/transaction counters start from zero\n.*DETAIL:  The server did not shut down cleanly/,
		'after an immediate shutdown the file is not loaded, and the log says so');
	is(rows(), '', 'the counters start from zero');
	ok(!-f $file, 'the file is removed');
}

$node->stop;
done_testing();
