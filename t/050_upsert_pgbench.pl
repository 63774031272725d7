# Race-free helpers under pgbench: 8 clients on a small key space.
#
# Every client error makes pgbench abort that client and exit non-zero, so
# "exit status 0, all transactions processed" means no unique violation,
# no deadlock and no failed retry; afterwards each key has exactly one row.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $clients = 8;
my $xacts = 250;

my $node = PostgreSQL::Test::Cluster->new('upsert_pgbench');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pg_txguard'\nmax_connections = 40\n");
$node->start;

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION pg_txguard;
	CREATE TABLE kv (id bigserial PRIMARY KEY, k int NOT NULL UNIQUE,
	                 v int, hits int DEFAULT 0);
	CREATE TABLE emails (id bigserial PRIMARY KEY, email text NOT NULL);
	CREATE UNIQUE INDEX emails_ci ON emails (lower(email));
});

my $dir = PostgreSQL::Test::Utils::tempdir;

# run pgbench with scripts {name => [weight, text]}; check it processed
# every transaction without a client error
sub bench
{
	my ($name, %scripts) = @_;
	my @cmd = (
		'pgbench', '-n', '-c', $clients, '-j', 2, '-t', $xacts,
		'-d', $node->connstr('postgres'));
	foreach my $s (sort keys %scripts)
	{
		my ($weight, $text) = @{ $scripts{$s} };
		my $file = "$dir/$s.sql";
		open(my $fh, '>', $file) or die "could not write $file: $!";
		print $fh $text;
		close $fh;
		push @cmd, '-f', "$file\@$weight";
	}
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err);
	my $rc = $? >> 8;
	is($rc, 0, "$name: pgbench exits with status 0");
	unlike($err, qr/ERROR|aborted/, "$name: no client got an error")
	  or diag($err);
	my $total = $clients * $xacts;
	like(
		$out,
		qr/number of transactions actually processed: $total\/$total/,
		"$name: all $total transactions processed");
	return;
}

# one row per key: no duplicate, no gap among the keys used
sub one_row_per_key
{
	my ($name, $table, $key, $expect) = @_;
	my $got = $node->safe_psql('postgres',
		"SELECT count(*) = count(DISTINCT $key) AND count(*) > 0, count(*) <= $expect FROM $table"
	);
	is($got, "t|t", "$name: exactly one row per key in $table");
	return;
}

# 1. insert_or_get on 20 keys
bench(
	'insert_or_get',
	get => [
		1, q{
\set k random(1, 20)
SELECT id FROM txguard.insert_or_get(NULL::kv, jsonb_build_object('k', :k));
}
	]);
one_row_per_key('insert_or_get', 'kv', 'k', 20);
is($node->safe_psql('postgres', 'SELECT count(*) FROM kv'),
	'20', 'insert_or_get: every key was created');

# 2. the expression index, with the key spelt in different cases
bench(
	'insert_or_get on lower(email)',
	get => [
		1, q{
\set k random(1, 10)
\set c random(0, 1)
SELECT id FROM txguard.insert_or_get(NULL::emails,
    jsonb_build_object('email', CASE :c WHEN 0 THEN 'User' ELSE 'USER' END || :k || '@example.com'));
}
	]);
one_row_per_key('insert_or_get on lower(email)', 'emails', 'lower(email)', 10);

# 3. upserts, gets and deletes on the same 10 keys: a delete between the
# conflict and the lookup makes the helpers go round again
bench(
	'upsert with concurrent deletes',
	upsert => [
		6, q{
\set k random(1, 10)
\set v random(1, 1000)
SELECT id FROM txguard.upsert(NULL::kv, jsonb_build_object('k', :k, 'v', :v));
}
	],
	get => [
		3, q{
\set k random(1, 10)
SELECT id FROM txguard.insert_or_get(NULL::kv, jsonb_build_object('k', :k));
}
	],
	del => [
		2, q{
\set k random(1, 10)
DELETE FROM kv WHERE k = :k;
}
	]);
one_row_per_key('upsert with concurrent deletes', 'kv', 'k', 20);

# 4. batches of three keys in random order, two batches per transaction:
# keys are taken in index order, so overlapping batches cannot deadlock
bench(
	'upsert_many',
	many => [
		1, q{
\set a random(1, 8)
\set b random(1, 8)
\set c random(1, 8)
\set v random(1, 1000)
BEGIN;
SELECT count(*) FROM txguard.upsert_many(NULL::kv, jsonb_build_array(
    jsonb_build_object('k', :a, 'v', :v), jsonb_build_object('k', :b, 'v', :v),
    jsonb_build_object('k', :c, 'v', :v)));
SELECT count(*) FROM txguard.insert_or_get_many(NULL::kv, jsonb_build_array(
    jsonb_build_object('k', :c), jsonb_build_object('k', :a + 10)));
COMMIT;
}
	]);
one_row_per_key('upsert_many', 'kv', 'k', 20);

# 5. txguard.lock as a mutex around a read-modify-write no index protects
$node->safe_psql('postgres', 'CREATE TABLE ticket (n int)');
bench(
	'txguard.lock',
	take => [
		1, q{
BEGIN;
SELECT txguard.lock('ticket');
INSERT INTO ticket SELECT coalesce(max(n), 0) + 1 FROM ticket;
COMMIT;
}
	]);
my $total = $clients * $xacts;
is( $node->safe_psql(
		'postgres', 'SELECT count(*), count(DISTINCT n), max(n) FROM ticket'),
	"$total|$total|$total",
	'txguard.lock: every ticket number taken exactly once');

$node->stop;
done_testing();
