# 060_pgbouncer.pl: pg_txguard behind pgbouncer, in transaction and in
# session pooling
#
# For each pool mode, through pgbouncer (Debian package pgbouncer, which
# scripts/test installs): a role-level limit and SET LOCAL cancel
# statements with 25P04; a session-level SET carries over to the next
# client under transaction pooling and not under session pooling; an idle
# transaction is terminated (the client sees FATAL 25P04, then
# pgbouncer's error) and the next client gets a working connection; a
# client that disconnects mid-transaction is counted as abandoned and its
# locks are freed; application_name_add_host puts the client's address
# into application_name.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use IO::Socket::INET;
use Time::HiRes qw(usleep);

my $pgbouncer = -x '/usr/sbin/pgbouncer' ? '/usr/sbin/pgbouncer' : undef;
plan skip_all => 'pgbouncer is not installed (scripts/test installs the Debian package)'
  unless $pgbouncer;

my $node = PostgreSQL::Test::Cluster->new('pgbouncer');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_txguard'\n");
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION pg_txguard;
CREATE DATABASE work;
CREATE ROLE app LOGIN;
ALTER ROLE app SET txguard.transaction_timeout = '500ms';
});
$node->safe_psql('work', q{
CREATE TABLE stock (id int PRIMARY KEY, n int);
INSERT INTO stock VALUES (1, 10);
});
my $superuser = $node->safe_psql('postgres', 'SELECT current_user');

# the counters of database "work", read from "postgres"
sub abandoned
{
	return $node->safe_psql('postgres',
		q{SELECT coalesce(max(abandoned), 0) FROM txguard.stats WHERE datname = 'work'});
}

# start a pgbouncer in front of database "work"; returns (handle, port)
sub start_pgbouncer
{
	my ($mode) = @_;
	my $dir = "${PostgreSQL::Test::Utils::tmp_check}/pgbouncer_$mode";
	mkdir $dir;
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $host = $node->host;
	my $pgport = $node->port;
	open(my $users, '>', "$dir/userlist.txt") or die $!;
	print $users qq{"app" ""\n"$superuser" ""\n};
	close $users;
	open(my $ini, '>', "$dir/pgbouncer.ini") or die $!;
	print $ini qq{[databases]
work = host=$host port=$pgport dbname=work

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = $mode
default_pool_size = 1
max_client_conn = 20
application_name_add_host = 1
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
};
	close $ini;
	my $h = IPC::Run::start([ $pgbouncer, "$dir/pgbouncer.ini" ],
		'<', \undef, '>', "$dir/stdout", '2>', "$dir/stderr");
	# wait until it accepts connections: first its socket (a psql that
	# cannot connect exits before taking its script, and the broken pipe
	# ends the test), then a query through it
	for (1 .. 100)
	{
		my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port);
		if ($sock)
		{
			close $sock;
			my ($rc) = eval { bouncer_psql($port, $superuser, 'SELECT 1') };
			return ($h, $port) if defined $rc && $rc == 0;
		}
		usleep(100_000);
	}
	die "pgbouncer did not start: " . slurp_file("$dir/pgbouncer.log");
}

# run a psql script through pgbouncer; return (exit code, stdout, stderr)
sub bouncer_psql
{
	my ($port, $user, $script) = @_;
	my ($out, $err);
	my $rc = $node->psql('work', "\\set VERBOSITY verbose\n" . $script,
		stdout => \$out, stderr => \$err, on_error_stop => 0,
		extra_params => [ '-d', "host=127.0.0.1 port=$port dbname=work user=$user" ]);
	return ($rc, $out // '', $err // '');
}

foreach my $mode ('transaction', 'session')
{
	my ($h, $port) = start_pgbouncer($mode);

	# --- a role-level limit ---
	my ($rc, $out, $err) = bouncer_psql($port, 'app', q{
SELECT pg_sleep(2);
SELECT 'alive';
});
	like($err, qr/ERROR:  25P04: canceling statement due to transaction timeout/,
		"$mode pooling: ALTER ROLE's limit cancels the statement");
	like($out, qr/alive/, "$mode pooling: the client goes on");

	# --- SET LOCAL: for one transaction only ---
	($rc, $out, $err) = bouncer_psql($port, $superuser, q{
BEGIN;
SET LOCAL txguard.transaction_timeout = '300ms';
SELECT pg_sleep(2);
ROLLBACK;
SELECT pg_sleep(0.6);
SELECT 'no limit after';
});
	like($err, qr/ERROR:  25P04: canceling statement due to transaction timeout/,
		"$mode pooling: SET LOCAL's limit cancels the statement");
	like($out, qr/no limit after/, "$mode pooling: the next transaction has no limit");

	# --- a session-level SET and the next client of the server connection ---
	bouncer_psql($port, $superuser, q{SET txguard.transaction_timeout = '300ms';});
	($rc, $out, $err) = bouncer_psql($port, $superuser, q{
SELECT pg_sleep(0.6);
SELECT 'next client';
});
	if ($mode eq 'transaction')
	{
		like($err, qr/ERROR:  25P04: canceling statement due to transaction timeout/,
			'transaction pooling: a session-level SET carries over to the next client');
	}
	else
	{
		is($err, '', 'session pooling: the reset query drops a session-level SET');
	}
	like($out, qr/next client/, "$mode pooling: the next client goes on");
	# the one server connection of the pool (default_pool_size = 1) forgets it
	bouncer_psql($port, $superuser, q{RESET txguard.transaction_timeout;});
	is((bouncer_psql($port, $superuser, q{SHOW txguard.transaction_timeout;}))[1], '0',
		"$mode pooling: the setting is reset");

	# --- an idle transaction is terminated; the next client is served ---
	($rc, $out, $err) = bouncer_psql($port, 'app', q{
BEGIN;
SELECT 1;
\! sleep 1.5
SELECT 'too late';
});
	like($err, qr/FATAL:  25P04: terminating connection due to transaction timeout/,
		"$mode pooling: the idle client sees FATAL 25P04");
	like($err, qr/08P01: server conn crashed\?/,
		"$mode pooling: then pgbouncer's 08P01");
	unlike($out, qr/too late/, "$mode pooling: nothing ran after it");
	($rc, $out, $err) = bouncer_psql($port, 'app', q{SELECT 'fresh';});
	is($out, 'fresh', "$mode pooling: the next client gets a working connection");

	# --- application_name_add_host: the client's address ---
	my $bg = $node->background_psql('work',
		extra_params => [ '-d', "host=127.0.0.1 port=$port dbname=work user=$superuser application_name=shop" ]);
	$bg->query_safe('BEGIN');
	$bg->query_safe('UPDATE stock SET n = n + 1 WHERE id = 1');
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	like( $node->safe_psql('postgres',
			"SELECT application_name || ' ' || coalesce(host(client_addr), 'local') FROM txguard.transactions WHERE pid = $pid"),
		qr/^shop - 127\.0\.0\.1:\d+ local$/,
		"$mode pooling: application_name carries the client's address, client_addr the pooler's");

	# --- a client that disconnects mid-transaction ---
	my $before = abandoned();
	$bg->{run}->kill_kill;
	ok( $node->poll_query_until('postgres',
			q{SELECT coalesce(max(abandoned), 0) FROM txguard.stats WHERE datname = 'work'},
			$before + 1),
		"$mode pooling: a client gone mid-transaction is counted as abandoned");
	is( $node->safe_psql('work',
			q{SET lock_timeout = '5s'; UPDATE stock SET n = 0 WHERE id = 1 RETURNING n}),
		'0', "$mode pooling: its locks are freed");

	$h->kill_kill;
}

$node->stop;
done_testing();
