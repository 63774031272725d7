# 040_readme.pl: every SQL example of README.md runs, in order
#
# The ```sql blocks of the README are run one after the other, each in its
# own psql session with ON_ERROR_STOP, on a fresh server set up as
# scripts/start sets one up (pg_txguard preloaded, CREATE EXTENSION in
# database postgres, a superuser).  Where a block shows a result as
# "-- " comment lines (a psql table), psql's output must contain each of
# those lines.  A README example that no longer runs, or whose shown
# result is no longer what it gives, fails here.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $readme = -f 'README.md' ? 'README.md' : "$ENV{TESTDIR}/README.md";
my @lines = split /\n/, slurp_file($readme);

# the ```sql blocks (possibly indented inside a list): [first line, text]
my @blocks;
my ($in, $indent, $start, @text) = (0, '', 0);
for my $i (0 .. $#lines)
{
	my $l = $lines[$i];
	if (!$in && $l =~ /^(\s*)```sql\s*$/)
	{
		($in, $indent, $start, @text) = (1, $1, $i + 2);
	}
	elsif ($in && $l =~ /^\s*```\s*$/)
	{
		push @blocks, [ $start, join("\n", @text) . "\n" ];
		$in = 0;
	}
	elsif ($in)
	{
		$l =~ s/^\Q$indent\E//;
		push @text, $l;
	}
}
cmp_ok(scalar @blocks, '>=', 15, 'the README has its SQL examples');

my $node = PostgreSQL::Test::Cluster->new('readme');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_txguard'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION IF NOT EXISTS pg_txguard');

my $checked = 0;
foreach my $block (@blocks)
{
	my ($line, $sql) = @$block;
	my ($out, $err) = ('', '');
	my @cmd = ('psql', '-X', '-v', 'ON_ERROR_STOP=1', '-P', 'pager=off',
		'-d', $node->connstr('postgres'), '-f', '-');
	my $ok = IPC::Run::run(\@cmd, '<', \$sql, '>', \$out, '2>', \$err);
	# a NOTICE (IF NOT EXISTS) is fine; a warning or an error is not
	ok($ok && $err !~ /(WARNING|ERROR|FATAL|PANIC):/, "README line $line: the example runs")
	  or diag("SQL:\n$sql\nstdout:\n$out\nstderr:\n$err");

	# result tables shown as comments: each line is in psql's output
	my %shown = map { s/\s+$//r => 1 } split /\n/, $out;
	my @expected = map { s/^-- //r =~ s/\s+$//r }
	  grep { /^-- .*(\||-\+-)/ } split /\n/, $sql;
	next unless @expected;
	$checked++;
	my @missing = grep { !$shown{$_} } @expected;
	is(join("\n", @missing), '', "README line $line: the results shown are the results")
	  or diag("psql output:\n$out");
}

cmp_ok($checked, '>=', 3, 'results were compared for several examples');

$node->stop;
done_testing();
