# 062_psycopg.pl: what a Python application using psycopg 3 sees
#
# test/drivers/psycopg_check.py (Debian package python3-psycopg, which
# scripts/test installs) connects to a preloaded server and reports: a
# cancelled statement raises with sqlstate 25P04 and the connection works
# after rollback(); a session terminated while idle in its transaction
# raises OperationalError with sqlstate None on its next statement, as
# core's idle_in_transaction_session_timeout does.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

plan skip_all => 'psycopg 3 is not installed (scripts/test installs python3-psycopg)'
  unless system('python3', '-c', 'import psycopg') == 0;

my $node = PostgreSQL::Test::Cluster->new('psycopg');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_txguard'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_txguard');

my $script = -f 'test/drivers/psycopg_check.py'
  ? 'test/drivers/psycopg_check.py' : "$ENV{TESTDIR}/test/drivers/psycopg_check.py";
my $conninfo = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres';
my ($out, $err) = ('', '');
IPC::Run::run([ 'python3', $script, $conninfo ], '>', \$out, '2>', \$err);
is($err, '', 'the script ran without an uncaught error');
my %r = map { /^([^=]+)=(.*)$/ ? ($1 => $2) : () } split /\n/, $out;

is($r{cancel_raised}, 'yes', 'a cancelled statement raises');
is($r{cancel_sqlstate}, '25P04', 'with e.sqlstate == 25P04');
is($r{cancel_status}, 'INERROR', 'the transaction is in error until rollback()');
is($r{after_rollback}, 'works', 'the connection works after rollback()');

is($r{idle_class}, 'OperationalError', 'an idle termination raises OperationalError');
is($r{idle_sqlstate}, 'None', 'with sqlstate None');
is($r{idle_closed}, 'True', 'and the connection is closed');
is($r{core_idle_class} . ' ' . $r{core_idle_sqlstate}, $r{idle_class} . ' ' . $r{idle_sqlstate},
	'as with core\'s idle_in_transaction_session_timeout');

is( $node->safe_psql('postgres',
		q{SELECT string_agg(kind, ' ' ORDER BY event_time) FROM txguard.events}),
	'timeout_cancel timeout_terminate abandoned',
	'both enforcements recorded (and core\'s idle timeout as an abandoned transaction)');

$node->stop;
done_testing();
