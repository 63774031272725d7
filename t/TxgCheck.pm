# TxgCheck.pm: what the protocol-level TAP tests ask the server, shared
#
# The tests drive sessions of database "work" with TxgWire and check from
# database "postgres" (so that the checks do not count themselves in
# txguard.stats).  Call TxgCheck::use_node($node) once, then use the
# functions below.
package TxgCheck;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Utils;
use Time::HiRes qw(time usleep);
use TxgWire;

our @EXPORT = qw(stats delta poll_sql registry_row activity_state
  wait_for_lock_wait session log_line);

my $node;

# the node the functions ask
sub use_node
{
	($node) = @_;
	return;
}

our @outcomes = qw(committed rolled_back failed abandoned timed_out terminated blocker_terminated observed);

# the counters of database "work"
sub stats
{
	my $row = $node->safe_psql('postgres',
		'SELECT ' . join(" || ' ' || ", @outcomes) . " FROM txguard.stats WHERE datname = 'work'");
	my @v = $row eq '' ? (0) x @outcomes : split / /, $row;
	my %s;
	@s{@outcomes} = @v;
	return \%s;
}

# the non-zero differences since $before, as "committed=1 failed=1"
sub delta
{
	my ($before) = @_;
	my $now = stats();
	my @d = map { "$_=" . ($now->{$_} - $before->{$_}) }
	  grep { $now->{$_} != $before->{$_} } @outcomes;
	return @d ? join(' ', @d) : 'none';
}

# run $sql in "postgres" until it returns $expected or $timeout seconds pass;
# returns the last result
sub poll_sql
{
	my ($sql, $expected, $timeout) = @_;
	my $end = time() + ($timeout // 5);
	my $got;
	while (1)
	{
		$got = $node->safe_psql('postgres', $sql);
		return $got if $got eq $expected || time() > $end;
		usleep(50_000);
	}
}

sub registry_row
{
	my ($pid, $cols) = @_;
	return $node->safe_psql('postgres', "SELECT $cols FROM txguard.transactions WHERE pid = $pid");
}

sub activity_state
{
	my ($pid) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(state, '') || ' / ' || coalesce(wait_event, '') || ' / xact_start '"
		  . " || CASE WHEN xact_start IS NULL THEN 'null' ELSE 'set' END || ' / ' || left(query, 40)"
		  . " FROM pg_stat_activity WHERE pid = $pid");
}

sub wait_for_lock_wait
{
	my ($pid) = @_;
	return poll_sql("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $pid", 'Lock', 5) eq 'Lock';
}

sub session
{
	my ($app, %opt) = @_;
	return TxgWire->connect($node, dbname => $opt{dbname} // 'work', application_name => $app,
		user => $opt{user});
}

# the first line of the server log after $offset that matches, or ''
# (never the whole log: it may hold a 40 MB statement)
sub log_line
{
	my ($offset, $re) = @_;
	foreach my $line (split /\n/, substr(slurp_file($node->logfile), $offset))
	{
		return substr($line, 0, 1000) if $line =~ $re;
	}
	return '';
}

1;
