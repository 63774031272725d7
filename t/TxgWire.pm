# TxgWire.pm: a small client of the PostgreSQL v3 wire protocol for TAP tests
#
# psql and libpq cannot send the message sequences pg_txguard must survive
# (a Parse with no Sync, a Bind whose portal is executed much later, a
# fast-path call inside a transaction), so the tests speak the protocol
# themselves over the node's Unix socket.  Only trust authentication is
# supported, as in the test clusters.
#
#   my $c = TxgWire->connect($node, dbname => 'work', application_name => 'x');
#   $c->parse('', 'SELECT $1::int', 23);
#   $c->bind('p1', '', '42');
#   $c->execute('p1', 0);
#   $c->sync;
#   my @msgs = $c->read_until_ready;          # [type, body] pairs
#   my $err  = TxgWire::error(@msgs);         # {S, C, M, D, H} or undef
#
# Reads stop at a timeout (returning what arrived) and at the end of the
# connection (the last pair is then ['EOF', '']).
package TxgWire;

use strict;
use warnings;

use IO::Select;
use IO::Socket::UNIX;
use Time::HiRes qw(time);

# the server may close a connection while a test writes to it
$SIG{PIPE} = 'IGNORE';

our $DEFAULT_TIMEOUT = 30;

sub connect
{
	my ($class, $node, %opt) = @_;
	my $sock = IO::Socket::UNIX->new(
		Type => SOCK_STREAM(),
		Peer => $node->host . '/.s.PGSQL.' . $node->port)
	  or die "cannot connect to " . $node->name . ": $!";
	my $self = bless { sock => $sock, buf => '', pid => undef }, $class;

	my %params = (
		user => $opt{user} // scalar(getpwuid($<)),
		database => $opt{dbname} // 'postgres',
		application_name => $opt{application_name} // 'txgwire');
	my $startup = pack('N', 196608)
	  . join('', map { "$_\0$params{$_}\0" } sort keys %params) . "\0";
	$self->_write(pack('N', length($startup) + 4) . $startup);

	my @msgs = $self->read_until_ready;
	my $err = error(@msgs);
	die "connection failed: $err->{M}" if $err;
	foreach my $m (@msgs)
	{
		$self->{pid} = unpack('N', $m->[1]) if $m->[0] eq 'K';
	}
	return $self;
}

# the backend's pid, from BackendKeyData
sub pid { return $_[0]->{pid}; }

sub _write
{
	my ($self, $data) = @_;
	my $off = 0;
	while ($off < length($data))
	{
		my $n = syswrite($self->{sock}, $data, length($data) - $off, $off);
		return 0 unless defined $n;    # closed by the server
		$off += $n;
	}
	return 1;
}

# one message: a type byte, then a length that counts itself
sub send
{
	my ($self, $type, $body) = @_;
	return $self->_write($type . pack('N', length($body) + 4) . $body);
}

# --- frontend messages ---

sub query { $_[0]->send('Q', "$_[1]\0"); }

# parse(statement name, query text, parameter type oids...)
sub parse
{
	my ($self, $name, $sql, @types) = @_;
	$self->send('P', "$name\0$sql\0" . pack('n', scalar @types) . pack('N*', @types));
}

# bind(portal, statement, text parameters...); undef is NULL; text results
sub bind
{
	my ($self, $portal, $stmt, @params) = @_;
	my $body = "$portal\0$stmt\0" . pack('n', 0) . pack('n', scalar @params);
	foreach my $p (@params)
	{
		$body .= defined $p ? pack('N', length $p) . $p : pack('l>', -1);
	}
	$self->send('B', $body . pack('n', 0));
}

# execute(portal, row limit); 0 is no limit
sub execute { $_[0]->send('E', "$_[1]\0" . pack('N', $_[2] // 0)); }

# describe('S' or 'P', name); close_('S' or 'P', name)
sub describe { $_[0]->send('D', "$_[1]$_[2]\0"); }
sub close_ { $_[0]->send('C', "$_[1]$_[2]\0"); }

sub flush { $_[0]->send('H', ''); }
sub sync { $_[0]->send('S', ''); }

# Parse + Bind + Execute of one unnamed statement (no Sync)
sub pbe
{
	my ($self, $sql, @params) = @_;
	$self->parse('', $sql);
	$self->bind('', '', @params);
	$self->execute('', 0);
}

# fast-path call: function oid, then binary arguments (undef is NULL);
# the result is asked for in binary
sub function_call
{
	my ($self, $oid, @args) = @_;
	my $body = pack('N', $oid) . pack('n', 1) . pack('n', 1) . pack('n', scalar @args);
	foreach my $a (@args)
	{
		$body .= defined $a ? pack('N', length $a) . $a : pack('l>', -1);
	}
	$self->send('F', $body . pack('n', 1));
}

sub copy_data { $_[0]->send('d', $_[1]); }
sub copy_done { $_[0]->send('c', ''); }
sub copy_fail { $_[0]->send('f', "$_[1]\0"); }

sub terminate
{
	my ($self) = @_;
	$self->send('X', '');
	close $self->{sock};
}

# --- reading ---

# the next message, [type, body]; undef on timeout; ['EOF', ''] at the end
sub read_msg
{
	my ($self, $timeout) = @_;
	my $end = time() + ($timeout // $DEFAULT_TIMEOUT);
	my $sel = IO::Select->new($self->{sock});
	while (1)
	{
		if (length($self->{buf}) >= 5)
		{
			my ($type, $len) = unpack('a N', $self->{buf});
			if (length($self->{buf}) >= $len + 1)
			{
				my $body = substr($self->{buf}, 5, $len - 4);
				substr($self->{buf}, 0, $len + 1, '');
				return [ $type, $body ];
			}
		}
		my $left = $end - time();
		return undef if $left <= 0;
		next unless $sel->can_read($left);
		my $n = sysread($self->{sock}, $self->{buf}, 65536, length($self->{buf}));
		return [ 'EOF', '' ] unless $n;
	}
}

# messages up to and including the first of the given types (a string of
# type bytes, e.g. 'Z' or '1E'), the end of the connection or the timeout
sub read_until
{
	my ($self, $types, $timeout) = @_;
	my $end = time() + ($timeout // $DEFAULT_TIMEOUT);
	my @msgs;
	while (1)
	{
		my $m = $self->read_msg($end - time());
		return @msgs unless defined $m;
		push @msgs, $m;
		return @msgs if $m->[0] eq 'EOF' || index($types, $m->[0]) >= 0;
	}
}

sub read_until_ready { return $_[0]->read_until('Z', $_[1]); }

# Query and read up to ReadyForQuery
sub simple
{
	my ($self, $sql, $timeout) = @_;
	$self->query($sql);
	return $self->read_until_ready($timeout);
}

# --- looking at what came back ---

# the fields of the first ErrorResponse, as {S => 'ERROR', C => '25P04', ...}
sub error
{
	foreach my $m (@_)
	{
		next unless $m->[0] eq 'E';
		my %f = map { substr($_, 0, 1) => substr($_, 1) } grep { length } split /\0/, $m->[1];
		$f{S} = $f{V} if defined $f{V};
		return \%f;
	}
	return undef;
}

# "SEVERITY SQLSTATE" of the first error, or "none"
sub error_code
{
	my $e = error(@_);
	return $e ? "$e->{S} $e->{C}" : 'none';
}

# the message types in order, e.g. "12DCZ"
sub types { return join '', map { $_->[0] eq 'EOF' ? '<EOF>' : $_->[0] } @_; }

# the transaction status of the last ReadyForQuery ('I', 'T' or 'E'), or undef
sub status
{
	foreach my $m (reverse @_)
	{
		return $m->[1] if $m->[0] eq 'Z';
	}
	return undef;
}

# the rows of DataRow messages, as array refs of text values (undef is NULL)
sub rows
{
	my @rows;
	foreach my $m (@_)
	{
		next unless $m->[0] eq 'D';
		my ($n, $rest) = unpack('n a*', $m->[1]);
		my @vals;
		for (1 .. $n)
		{
			my $len = unpack('l>', $rest);
			$rest = substr($rest, 4);
			if ($len < 0) { push @vals, undef; next; }
			push @vals, substr($rest, 0, $len);
			$rest = substr($rest, $len);
		}
		push @rows, \@vals;
	}
	return @rows;
}

# the first column of the first row, or undef
sub value
{
	my @r = rows(@_);
	return @r ? $r[0][0] : undef;
}

# the result of a fast-path call (FunctionCallResponse), undef for NULL
sub fastpath_result
{
	foreach my $m (@_)
	{
		next unless $m->[0] eq 'V';
		my $len = unpack('l>', $m->[1]);
		return $len < 0 ? undef : substr($m->[1], 4, $len);
	}
	return undef;
}

1;
