# 005_not_preloaded.pl: pg_txguard loaded any way but shared_preload_libraries
#
# CREATE EXTENSION, LOAD and every SQL function answer with an error that
# names shared_preload_libraries; nothing crashes.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('not_preloaded');
$node->init;
$node->start;

my ($rc, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION pg_txguard');
isnt($rc, 0, 'CREATE EXTENSION fails without preloading');
like($err, qr/ERROR:  pg_txguard must be loaded via "shared_preload_libraries"/,
	'the error says how it must be loaded');
like($err, qr/HINT:  Add pg_txguard to "shared_preload_libraries" in postgresql.conf and restart the server\./,
	'and the hint says what to do');

# without the preload, a setting is a placeholder: accepted, and ignored
($rc, $out, $err) = $node->psql('postgres',
	"SET txguard.transaction_timeout = '100ms'; SELECT pg_sleep(0.5); SELECT 'not enforced'");
is($rc, 0, 'SET txguard.transaction_timeout is accepted without the preload');
is($err, '', 'without a warning');
like($out, qr/not enforced/, 'and does nothing');

($rc, $out, $err) = $node->psql('postgres', "LOAD 'pg_txguard'");
like($err, qr/must be loaded via "shared_preload_libraries"/, 'LOAD fails the same way');

# created while preloaded, then the server restarts without it
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_txguard'");
$node->restart;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_txguard');
$node->adjust_conf('postgresql.conf', 'shared_preload_libraries', "''");
$node->restart;

foreach my $query ('SELECT * FROM txguard.transactions',
	'SELECT * FROM txguard.events',
	'SELECT * FROM txguard.stats',
	'SELECT txguard.reset_stats()')
{
	($rc, $out, $err) = $node->psql('postgres', $query);
	like($err, qr/ERROR:  pg_txguard must be loaded via "shared_preload_libraries"/,
		"$query: clear error");
}
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is fine');

$node->stop;
done_testing();
