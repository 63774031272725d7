# 006_portal_resume.pl: a portal executed again after a Sync
#
# Drivers that fetch in batches (JDBC's setFetchSize, for one) bind a
# portal once and send Execute(portal, n) + Sync for every batch.  The
# later Executes run the portal without parsing, binding or starting an
# executor: the session must still show as active, and a transaction
# timeout that expires during such an Execute must cancel it (ERROR), not
# terminate the session as if it were idle.
#
# psql cannot send these messages, so this test speaks the protocol itself.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IO::Socket::UNIX;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('portal');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_txguard'");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_txguard');

my $sock = IO::Socket::UNIX->new(
	Type => SOCK_STREAM(),
	Peer => $node->host . '/.s.PGSQL.' . $node->port)
  or die "cannot connect: $!";

sub send_msg
{
	my ($type, $body) = @_;
	print $sock $type . pack('N', length($body) + 4) . $body;
}

# read messages up to ReadyForQuery; return them as [type, body] pairs
sub read_until_ready
{
	my @msgs;
	while (1)
	{
		my $header = '';
		while (length($header) < 5)
		{
			my $n = sysread($sock, $header, 5 - length($header), length($header));
			die "connection closed" unless $n;
		}
		my ($type, $len) = unpack('a N', $header);
		my $body = '';
		while (length($body) < $len - 4)
		{
			my $n = sysread($sock, $body, $len - 4 - length($body), length($body));
			die "connection closed" unless $n;
		}
		push @msgs, [ $type, $body ];
		return @msgs if $type eq 'Z';
	}
}

sub error_fields
{
	my (@msgs) = @_;
	foreach my $m (@msgs)
	{
		next unless $m->[0] eq 'E';
		my %f = map { substr($_, 0, 1) => substr($_, 1) } split /\0/, $m->[1];
		return \%f;
	}
	return undef;
}

my $user = getpwuid($<);
my $startup = pack('N', 196608)
  . "user\0$user\0database\0postgres\0application_name\0portal_client\0\0";
print $sock pack('N', length($startup) + 4) . $startup;
read_until_ready();

# Timing: the first batch ends at about 2 s, the second would end at about
# 4 s; the deadline, 3.5 s, falls in the second, and the check that it is
# running comes 0.3 s after it was sent: 1.2 s of slack for a slow machine
# between the first batch and that check.
send_msg('Q', "SET txguard.transaction_timeout = '3500ms'\0");
read_until_ready();
send_msg('Q', "BEGIN\0");
read_until_ready();

# Parse, Bind a named portal, fetch one row, Sync: about 2 s
my $query = "SELECT pg_sleep(2) FROM generate_series(1, 3)";
send_msg('P', "\0$query\0" . pack('n', 0));
send_msg('B', "p1\0\0" . pack('n', 0) . pack('n', 0) . pack('n', 0));
send_msg('E', "p1\0" . pack('N', 1));
send_msg('S', '');
my @first = read_until_ready();
ok(!defined error_fields(@first), 'first batch fetched');
is($node->safe_psql('postgres',
		"SELECT state FROM txguard.transactions WHERE application_name = 'portal_client'"),
	'idle in transaction', 'between batches the session is idle in transaction');

# the next batch: the portal runs again, with no statement start
send_msg('E', "p1\0" . pack('N', 1));
send_msg('S', '');
usleep(300_000);
is($node->safe_psql('postgres',
		"SELECT state FROM txguard.transactions WHERE application_name = 'portal_client'"),
	'active', 'while the next batch runs, the session is active');

# the deadline (3.5 s) passes during this batch: a cancel, not a termination
my @second = read_until_ready();
my $err = error_fields(@second);
ok(defined $err, 'the batch that outlived the deadline failed');
is($err->{S}, 'ERROR', 'with ERROR, not FATAL');
is($err->{C}, '25P04', 'SQLSTATE 25P04');
is($err->{M}, 'canceling statement due to transaction timeout', 'the timeout message');

send_msg('Q', "ROLLBACK\0");
my @rb = read_until_ready();
is($rb[-1][1], 'I', 'the session survives and rolls back');
send_msg('X', '');
close $sock;

$node->stop;
done_testing();
