# 020_fuzz.pl: the protocol-sequence fuzzer (issue 9), with a fixed seed
#
# test/fuzz/txg_fuzz.py drives several sessions of database "fuzz" with
# random sequences of protocol messages (simple and extended protocol,
# pipelines without Sync, suspended portals, fast-path calls, COPY,
# savepoints, procedures that commit, two-phase commit, short transaction
# timeouts, idle pauses, disconnects) and checks from database "postgres"
# that the server stays up, no transaction outlives its limit, the
# sentinel ends idle blockers, txguard.transactions agrees with
# pg_stat_activity and txguard.stats counts every transaction once.  Here
# it runs with seed FUZZ_SEED (default 1) for FUZZ_SECONDS (default 60);
# this test then checks its exit status, its summary line and the server
# log.  The fuzzer's output is kept in tmp_check/log/020_fuzz_output.log.
#
# A longer run against any server with the library preloaded:
#   FUZZ_SECONDS=1800 python3 test/fuzz/txg_fuzz.py --host /tmp --port 5499 --db fuzz
use strict;
use warnings;

use FindBin;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $seconds = $ENV{FUZZ_SECONDS} // 60;
my $seed = $ENV{FUZZ_SEED} // 1;
my $sessions = $ENV{FUZZ_SESSIONS} // 5;
my $python = $ENV{PYTHON} // 'python3';
my $fuzzer = "$FindBin::RealBin/../test/fuzz/txg_fuzz.py";

my $node = PostgreSQL::Test::Cluster->new('fuzz');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_txguard'
autovacuum = off
max_prepared_transactions = 10
txguard.idle_blocker_timeout = '300ms'
# the fuzzer sends 40 MB statements: do not log every statement
log_statement = none
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_txguard');
$node->safe_psql('postgres', 'CREATE DATABASE fuzz');

my $user = getpwuid($<);
my ($out, $err) = ('', '');
my $ok = IPC::Run::run(
	[
		$python, $fuzzer,
		'--seconds' => $seconds,
		'--seed' => $seed,
		'--sessions' => $sessions,
		'--host' => $node->host,
		'--port' => $node->port,
		'--user' => $user,
		'--db' => 'fuzz',
		'--monitor-db' => 'postgres'
	],
	'>' => \$out,
	'2>' => \$err,
	IPC::Run::timeout($seconds + 300));
my $status = $? >> 8;

my $saved = "$PostgreSQL::Test::Utils::log_path/020_fuzz_output.log";
open(my $fh, '>', $saved) or die "could not write $saved: $!";
print $fh $out, $err;
close $fh;

is($status, 0, "the fuzzer exits 0 (seed $seed, $seconds s, $sessions sessions)")
  or diag("fuzzer output (also in $saved):\n" . substr($out . $err, 0, 60_000));
ok($out =~
	  /^fuzz: seed=\Q$seed\E seconds=\d+ steps=[1-9]\d* sessions=\Q$sessions\E failures=0$/m,
	'its summary line reports steps and no failure');
my ($summary) = $out =~ /^(fuzz: seed=.*)$/m;
note($summary // 'no summary line');

my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal/, 'no backend terminated by a signal');
unlike($log, qr/server process \(PID \d+\) was terminated/, 'no server process was terminated');
unlike($log, qr/^.*\b(?:PANIC|TRAP):.*$/m, 'no PANIC, no failed assertion');
my @unexpected = grep { /WARNING:/ && /unexpected/ && /pg_txguard|state/ } split /\n/, $log;
is(scalar(@unexpected), 0, 'no pg_txguard WARNING about an unexpected state')
  or diag(join("\n", @unexpected[ 0 .. ($#unexpected < 9 ? $#unexpected : 9) ]));

# the server is still up and answers
my ($rc, $one) = $node->psql('postgres', 'SELECT 1');
is($one, '1', 'the server answers after the run');

$node->stop('fast', fail_ok => 1);
done_testing();
