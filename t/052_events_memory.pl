# Reading txguard.events allocates for the events recorded, not for the
# whole ring.  With a ring of 1000 events of 100 kB statement texts (200 MB
# of text in shared memory), reading a ring that holds one event must not
# make the backend's address space grow by anything like 200 MB.  The
# backend reads its own peak virtual size (VmPeak) from /proc/self/status
# before and after the read, so the test runs where /proc exists (Linux)
# and pg_read_file() reads it (PostgreSQL 14 and later).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

if (!-r '/proc/self/status')
{
	plan skip_all => 'no /proc/self/status on this platform';
}

my $node = PostgreSQL::Test::Cluster->new('events_memory');
$node->init;
if ($node->pg_version < 14)
{
	plan skip_all => 'pg_read_file() reads /proc files from PostgreSQL 14 on';
}
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'pg_txguard'
txguard.max_events = 1000
txguard.track_statement_size = 100000
max_connections = 10
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_txguard');
$node->safe_psql('postgres', q{
CREATE FUNCTION vm_peak_kb() RETURNS bigint LANGUAGE sql
    AS $$ SELECT substring(pg_read_file('/proc/self/status') FROM 'VmPeak:\s*(\d+)')::bigint $$;
});

# one event: a transaction canceled by its timeout
my ($rc, $out, $err) = $node->psql('postgres', q{
SET txguard.transaction_timeout = '200ms';
BEGIN;
SELECT pg_sleep(5);
});
like($err, qr/ERROR:/, 'the transaction timed out');

$out = $node->safe_psql('postgres', q{
SELECT count(*) FROM pg_database, pg_roles \g /dev/null
SELECT vm_peak_kb() AS before \gset
SELECT kind, first_statement FROM txguard.events;
SELECT vm_peak_kb() - :before < 50 * 1024 AS small;
});
is($out, "timeout_cancel|SELECT pg_sleep(5)\nt",
	'one event read, and the backend did not grow by the size of the ring');

$node->stop;
done_testing();
