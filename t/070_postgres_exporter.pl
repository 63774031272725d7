# 070_postgres_exporter.pl: monitoring/postgres_exporter.yml, loaded by
# Debian's prometheus-postgres-exporter (which scripts/test installs) and
# scraped over loopback
#
# Activity of known shape (commits, a cancelled statement, a writing
# transaction idle while another session waits for its lock) must show in
# the txguard_ metrics: the counters per database, the open transactions
# per database and state, the events per kind, the durations as a
# histogram per key; and no metric carries a pid.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;
use IPC::Run;
use Time::HiRes qw(usleep);
use List::Util qw(max);

my $exporter = '/usr/bin/prometheus-postgres-exporter';
plan skip_all => 'prometheus-postgres-exporter is not installed (scripts/test installs it)'
  unless -x $exporter;

my $queries = -f 'monitoring/postgres_exporter.yml'
  ? 'monitoring/postgres_exporter.yml' : "$ENV{TESTDIR}/monitoring/postgres_exporter.yml";

my $node = PostgreSQL::Test::Cluster->new('exporter');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_txguard'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_txguard; CREATE DATABASE work');
$node->safe_psql('work', 'CREATE TABLE stock (id int PRIMARY KEY, n int); INSERT INTO stock VALUES (1, 10)');

# activity: 5 commits, a cancelled statement, an idle writer blocking a waiter
$node->safe_psql('work', 'SELECT 1') for 1 .. 5;
$node->psql('work', q{SET txguard.transaction_timeout = '200ms'; SELECT pg_sleep(2)});
my $blocker = $node->background_psql('work');
$blocker->query_safe('BEGIN');
$blocker->query_safe('UPDATE stock SET n = n - 1 WHERE id = 1');
my $waiter = $node->background_psql('work');
$waiter->query_until(qr/waiting/, q{\echo waiting
UPDATE stock SET n = 0 WHERE id = 1;
});
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = 'work' AND wait_event_type = 'Lock'}),
	'the waiter waits for the blocker');

my $port = PostgreSQL::Test::Cluster::get_free_port();
my $dsn = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres sslmode=disable';
my ($eout, $eerr) = ('', '');
my $h = IPC::Run::start(
	[ $exporter, "--web.listen-address=127.0.0.1:$port", "--extend.query-path=$queries",
	  '--disable-default-metrics', '--disable-settings-metrics' ],
	'<', \undef, '>', \$eout, '2>', \$eerr,
	init => sub { $ENV{DATA_SOURCE_NAME} = $dsn });

# scrape until the txguard_ metrics are there
my $body = '';
for (1 .. 100)
{
	my $res = HTTP::Tiny->new(timeout => 5)->get("http://127.0.0.1:$port/metrics");
	$body = $res->{content} if $res->{success};
	last if $body =~ /^txguard_events_events/m;
	usleep(200_000);
}
ok($body =~ /^txguard_stats_committed/m, 'the exporter loads the queries file and serves txguard_ metrics')
  or diag("exporter stderr:\n$eerr");

note(join("\n", grep { /^txguard_/ } split /\n/, $body));

# the value of a metric with exactly these labels (and "server")
sub metric
{
	my ($name, %labels) = @_;
	my $want = join(',', map { qq{$_="$labels{$_}"} } sort keys %labels);
	foreach my $line (split /\n/, $body)
	{
		next unless $line =~ /^\Q$name\E\{([^}]*)\} (\S+)$/;
		my ($l, $v) = ($1, $2);
		# the exporter adds the server it scraped as a label
		my $got = join(',', sort grep { !/^server=/ } split /,/, $l);
		return $v if $got eq $want;
	}
	return undef;
}

cmp_ok(metric('txguard_stats_committed', datname => 'work') // -1, '>=', 5,
	'txguard_stats_committed counts the commits');
is(metric('txguard_stats_timed_out', datname => 'work'), '1',
	'txguard_stats_timed_out counts the cancelled statement');
cmp_ok(metric('txguard_stats_max_duration_seconds', datname => 'work') // -1, '>=', 0.2,
	'max_duration in seconds');

my %idle = (datname => 'work', state => 'idle in transaction');
my %active = (datname => 'work', state => 'active');
is(metric('txguard_transactions_open', %idle), '1', 'one transaction idle in transaction');
is(metric('txguard_transactions_wrote', %idle), '1', 'which wrote');
is(metric('txguard_transactions_blocking', %idle), '1', 'and blocks another session');
is(metric('txguard_transactions_sessions_blocked', %idle), '1', 'one session blocked by it');
cmp_ok(metric('txguard_transactions_oldest_seconds', %idle) // -1, '>', 0,
	'its age in seconds');
is(metric('txguard_transactions_open', %active), '1', 'the waiter is an active transaction');
is(metric('txguard_transactions_blocking', %active), '0', 'which blocks nobody');
is(metric('txguard_events_events', kind => 'timeout_cancel'), '1', 'events per kind');

# durations: per key of database "work", a histogram whose +Inf bucket is
# the key's count, cumulative in le, with the 23 bounds in seconds
my %keys;
foreach my $line (split /\n/, $body)
{
	next unless $line =~ /^txguard_duration_bucket\{([^}]*)\} (\S+)$/;
	my ($l, $v) = ($1, $2);
	my %lab = map { /^(\w+)="(.*)"$/ ? ($1 => $2) : () } split /,(?=\w+=")/, $l;
	next unless $lab{datname} eq 'work';
	$keys{"$lab{usename}|$lab{application_name}"}{ $lab{le} } = $v;
}
ok(scalar(keys %keys) >= 1, 'txguard_duration_bucket has the keys of database work');
my $total = 0;
foreach my $k (sort keys %keys)
{
	my ($usename, $app) = split /\|/, $k, 2;
	my %b = %{ $keys{$k} };
	my @le = sort { ($a eq '+Inf' ? 9e99 : $a) <=> ($b eq '+Inf' ? 9e99 : $b) } keys %b;
	is(join(' ', @le),
		'0.001 0.002 0.005 0.01 0.02 0.05 0.1 0.2 0.5 1 2 5 10 20 30 60 120 300 600 1200 1800 3600 +Inf',
		"$app: the bounds in seconds");
	my @v = map { $b{$_} } @le;
	is(join(' ', @v), join(' ', sort { $a <=> $b } @v), "$app: the buckets are cumulative");
	is($b{'+Inf'}, metric('txguard_durations_count', datname => 'work', usename => $usename,
			application_name => $app), "$app: the +Inf bucket is the count");
	$total += $b{'+Inf'};
}
cmp_ok($total, '>=', 5 + 1, 'the durations count the commits and the cancelled statement');
cmp_ok(max(map { metric('txguard_durations_max_seconds', datname => 'work', usename => (split /\|/, $_)[0],
			application_name => (split /\|/, $_, 2)[1]) // 0 } keys %keys), '>=', 0.2,
	'the longest transaction, in seconds');
like($body, qr/^# TYPE txguard_duration_bucket counter$/m, 'the buckets are counters');

my @pid_labels = grep { /^txguard_.*pid=/ } split /\n/, $body;
is(scalar @pid_labels, 0, 'no metric has a pid label');
like($body, qr/^# TYPE txguard_stats_committed counter$/m, 'the counters are counters');

$h->kill_kill;
$blocker->query_safe('ROLLBACK');
$blocker->quit;
$waiter->quit;
$node->stop;
done_testing();
