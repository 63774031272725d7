#!/usr/bin/python3
"""txg_fuzz.py: protocol-sequence fuzzer for pg_txguard (issue 9).

Several sessions speak the PostgreSQL v3 protocol over a Unix socket and send
random sequences from a small grammar (transaction blocks, savepoints,
errors, contended UPDATEs, sleeps, pipelines without Sync, suspended portals,
cursors WITH HOLD, procedures that commit, two-phase commit, COPY, fast-path
calls, short transaction timeouts, idle pauses, disconnects).  A monitoring
connection to another database checks, all along the run:

  crash      the server stays up (the monitoring connection survives);
  deadline   no backend stays in a transaction longer than the limit its
             session set plus a tolerance (aborted top-level transactions
             are exempt); no session idle in a live transaction blocks
             another longer than txguard.idle_blocker_timeout + tolerance;
  kill       a session is never ended with a FATAL of the timeout (25P04)
             or of the sentinel (25P03) while it works for a message the
             fuzzer sent and is still waiting for (0.25 s after the send);
  internal   no ERROR with SQLSTATE XX000-XX002 and no message with
             "unexpected" reaches a client;
  registry   txguard._transactions() and pg_stat_activity agree, for every
             session that is quiescent (all replies read up to
             ReadyForQuery, or to the last message of a flushed pipeline,
             and nothing sent since, at both reads): same pids in a
             transaction (pg_stat_activity: xact_start set or state 'idle in
             transaction%'), same state ('fastpath function call' counts as
             'active'); re-checked once 0.3 s later.  Not compared: a block
             aborted at its top level while a pipeline is open and not yet
             synced, for which core shows 'active' with no xact_start;
  stats      at checkpoints (all sessions closed, their backends gone), the
             txguard.stats outcomes of the fuzz database grew by as much as
             pg_stat_database's xact_commit + xact_rollback, less what core
             PostgreSQL 15 counts there and txguard does not: one per
             connection (the transaction InitPostgres runs at connection
             start), one per COMMIT/ROLLBACK PREPARED (core counts the
             prepared transaction when it is finished, as well as the
             transaction that finishes it), and one per COMMIT that fails
             inside a procedure (core aborts the procedure's transaction and
             the one it starts before the error leaves the CALL; txguard
             counts one failed or timed_out transaction).  And every
             transaction counted has its duration: txguard.durations'
             transactions of the fuzz database grew by as much as the
             outcomes, and no key's max_idle exceeds its max.

Python 3 standard library only.  Knobs (flags override environment):
  FUZZ_SECONDS (60)  FUZZ_SEED (1)  FUZZ_SESSIONS (5)  FUZZ_ACTIONS (all)
  PGHOST (socket directory)  PGPORT  PGUSER  FUZZ_DB (fuzz)  FUZZ_MONITOR_DB
  (postgres)  FUZZ_CHECKPOINTS (3 mid-run stats checks)  FUZZ_TOLERANCE (1.0 s)
  FUZZ_STARTUP_XACTS (1: transactions per connection seen by
  pg_stat_database only)  FUZZ_PREPARED_XACTS (1: the same per
  COMMIT/ROLLBACK PREPARED)  FUZZ_BIG_COMMIT_RATE (0.005: share of steps
  that send a 40 MB COMMIT, defect 1 of issue 9)  FUZZ_MAX_REPORTS (5 shown
  per kind of failure)

The server must preload pg_txguard and trust local connections; the fuzzer
runs CREATE EXTENSION IF NOT EXISTS in the monitoring database and creates
its tables (fz_*) in the fuzz database, which needs no extension.  Each
failure is reported once per transaction (or quiescent period) it concerns.  Output: one line per failure with the seed and step, the
last messages of the sessions involved, and a final summary line
"fuzz: seed=S seconds=T steps=N sessions=M failures=K".  Exit status 1 on any
failure, 2 on a setup error.
"""

import argparse
import collections
import os
import random
import select
import socket
import struct
import sys
import threading
import time

READ_TIMEOUT = 30.0         # a reply that takes longer is a failure (hang)
LOG_KEEP = 40               # messages kept per session for failure reports
PROTO_V3 = 196608

# ---------------------------------------------------------------------------
# Wire protocol
# ---------------------------------------------------------------------------


class ConnLost(Exception):
    """The server closed the connection (after a FATAL, if fatal is set)."""

    def __init__(self, msg, fatal=None):
        Exception.__init__(self, msg)
        self.fatal = fatal


class Hang(Exception):
    pass


def cstr(s):
    if isinstance(s, str):
        s = s.encode()
    return s + b'\0'


def error_fields(body):
    f = {}
    for part in body.split(b'\0'):
        if part:
            f[chr(part[0])] = part[1:].decode('utf-8', 'replace')
    return f


def short(s, n=90):
    s = s.replace('\n', ' ')
    return s if len(s) <= n else s[:n] + '...(%d chars)' % len(s)


class Conn:
    """One protocol connection; every message in and out goes to a log."""

    def __init__(self, path, user, db, appname, t0):
        self.t0 = t0
        self.log = collections.deque(maxlen=LOG_KEEP)
        self.buf = bytearray()
        self.pid = None
        self.dead = False
        self.last_send = time.monotonic()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(READ_TIMEOUT)
        self.sock.connect(path)
        body = struct.pack('!I', PROTO_V3) + cstr('user') + cstr(user) + \
            cstr('database') + cstr(db) + cstr('application_name') + \
            cstr(appname) + b'\0'
        self.sock.sendall(struct.pack('!I', len(body) + 4) + body)
        self._note('>', 'startup db=%s app=%s' % (db, appname))
        while True:
            t, b = self.recv()
            if t == 'R':
                code = struct.unpack('!I', b[:4])[0]
                if code != 0:
                    raise RuntimeError('authentication method %d requested; '
                                       'the fuzzer needs trust' % code)
            elif t == 'K':
                self.pid = struct.unpack('!I', b[:4])[0]
            elif t == 'E':
                raise ConnLost('connection refused: %s' %
                               error_fields(b).get('M'))
            elif t == 'Z':
                break

    def _note(self, d, text):
        self.log.append('%8.3f %s %s' % (time.monotonic() - self.t0, d, text))

    # -- sending --
    def send_raw(self, data, note):
        if self.dead:
            raise ConnLost('connection already closed')
        self._note('>', note)
        try:
            self.sock.sendall(data)
        except OSError as e:
            self.dead = True
            raise ConnLost('send failed: %s' % e)
        self.last_send = time.monotonic()

    def msg(self, t, body, note=None):
        return t.encode() + struct.pack('!I', len(body) + 4) + body, \
            note or t

    def send(self, *msgs):
        data = b''.join(m[0] for m in msgs)
        self.send_raw(data, ' '.join(m[1] for m in msgs))

    # message builders: each returns (bytes, note)
    def Q(self, sql):
        return self.msg('Q', cstr(sql), 'Q %r' % short(sql))

    def P(self, sql, name=''):
        return self.msg('P', cstr(name) + cstr(sql) + struct.pack('!h', 0),
                        'P[%s] %r' % (name, short(sql, 60)))

    def B(self, portal='', stmt=''):
        return self.msg('B', cstr(portal) + cstr(stmt) +
                        struct.pack('!hhh', 0, 0, 0), 'B[%s/%s]' % (portal, stmt))

    def E(self, portal='', rows=0):
        return self.msg('E', cstr(portal) + struct.pack('!i', rows),
                        'E[%s,%d]' % (portal, rows))

    def D(self, kind, name=''):
        return self.msg('D', kind.encode() + cstr(name), 'D%s[%s]' % (kind, name))

    def C(self, kind, name=''):
        return self.msg('C', kind.encode() + cstr(name), 'C%s[%s]' % (kind, name))

    def H(self):
        return self.msg('H', b'', 'Flush')

    def S(self):
        return self.msg('S', b'', 'Sync')

    def X(self):
        return self.msg('X', b'', 'Terminate')

    def F(self, oid, args, name):
        body = struct.pack('!ihh', oid, 1, 0) + struct.pack('!h', len(args))
        for a in args:
            a = a.encode()
            body += struct.pack('!i', len(a)) + a
        body += struct.pack('!h', 0)
        return self.msg('F', body, 'F %s(%s)' % (name, ','.join(args)))

    def copy_data(self, data):
        return self.msg('d', data.encode(), 'CopyData(%d)' % len(data))

    def copy_done(self):
        return self.msg('c', b'', 'CopyDone')

    def copy_fail(self):
        return self.msg('f', cstr('fuzz'), 'CopyFail')

    # -- receiving --
    def pending(self):
        """True if the server has sent something we have not read."""
        if self.buf:
            return True
        try:
            r, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(r)

    def recv(self, timeout=READ_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 5:
                t = chr(self.buf[0])
                n = struct.unpack('!I', self.buf[1:5])[0]
                if len(self.buf) >= n + 1:
                    body = bytes(self.buf[5:n + 1])
                    del self.buf[:n + 1]
                    self._log_in(t, body)
                    if t == 'E':
                        f = error_fields(body)
                        if f.get('S') in ('FATAL', 'PANIC'):
                            self.dead = True
                            self.fatal = f
                            self.fatal_time = time.monotonic()
                    return t, body
            left = deadline - time.monotonic()
            if left <= 0:
                raise Hang('no reply for %.0f s' % timeout)
            try:
                self.sock.settimeout(left)
                chunk = self.sock.recv(1 << 16)
            except socket.timeout:
                raise Hang('no reply for %.0f s' % timeout)
            except OSError as e:
                chunk = b''
                self._note('<', 'socket error %s' % e)
            if not chunk:
                self.dead = True
                self._note('<', 'EOF')
                raise ConnLost('server closed the connection',
                               getattr(self, 'fatal', None))
            self.buf += chunk

    def _log_in(self, t, body):
        if t in ('E', 'N'):
            f = error_fields(body)
            self._note('<', '%s %s %s %s' % (t, f.get('S'), f.get('C'),
                                              short(f.get('M', ''), 120)))
        elif t == 'Z':
            self._note('<', 'Z %s' % body.decode())
        elif t == 'C':
            self._note('<', 'C %s' % body[:-1].decode())
        elif t in ('D', 'd', 'S', 'T', 'K', 'R', 't'):
            pass
        else:
            self._note('<', t)

    def close(self, terminate=True):
        if not self.dead and terminate:
            try:
                self.send(self.X())
            except ConnLost:
                pass
        self.dead = True
        try:
            self.sock.close()
        except OSError:
            pass
        self._note('>', 'close' if terminate else 'abrupt close')

    # -- simple queries for setup and monitoring --
    def simple(self, sql):
        """Run a simple Query; return (rows, error fields or None)."""
        self.send(self.Q(sql))
        rows, err = [], None
        while True:
            t, b = self.recv()
            if t == 'D':
                n = struct.unpack('!h', b[:2])[0]
                pos, row = 2, []
                for _ in range(n):
                    ln = struct.unpack('!i', b[pos:pos + 4])[0]
                    pos += 4
                    if ln < 0:
                        row.append(None)
                    else:
                        row.append(b[pos:pos + ln].decode())
                        pos += ln
                rows.append(row)
            elif t == 'E':
                err = error_fields(b)
            elif t == 'Z':
                return rows, err

    def must(self, sql):
        rows, err = self.simple(sql)
        if err:
            raise RuntimeError('%s: %s' % (short(sql), err.get('M')))
        return rows


# ---------------------------------------------------------------------------
# Session model: what the fuzzer knows of its backend's transaction
# ---------------------------------------------------------------------------

# statement kinds that change the model
K_OTHER, K_BEGIN, K_END, K_CHAIN, K_SAVEPOINT, K_RELEASE, K_ROLLBACK_TO, \
    K_SET_LOCAL, K_SET, K_PREPARE, K_FINISH_PREPARED = range(11)


class Stmt:
    def __init__(self, sql, kind=K_OTHER, arg=None):
        self.sql, self.kind, self.arg = sql, kind, arg


class Session:
    def __init__(self, fz, idx):
        self.fz = fz
        self.idx = idx
        self.rng = random.Random('%s/%d' % (fz.seed, idx))
        self.lock = threading.Lock()
        self.conn = None
        self.steps = 0
        self.connections = 0
        self.gid_n = 0
        self.reset_model()
        self.session_limit = 0
        self.session_since = time.monotonic()
        self.quiet = False
        self.seq = 0
        self.pipe_open = False          # messages sent with no Sync yet
        self.pipe_error = False         # an error in the open pipeline
        self.pipe_block = False         # the pipeline began in a block
        self.inflight_since = None      # waiting for replies to work sent
        self.large_objects = []

    def reset_model(self):
        self.status = 'I'
        self.sp = []
        self.aborted = None             # None, 'top' or 'sub'
        self.uncertain = False
        self.local = None               # (ms, since) of SET LOCAL
        self.pending_limits = set()
        self.portals = set()
        self.cursors = set()

    # -- the limit the checks hold this session to --
    def limit_for_check(self):
        """(limit ms, since) or None when the session is exempt."""
        with self.lock:
            if self.uncertain or self.aborted == 'top':
                return None
            if self.local:
                vals = [self.local[0]]
                since = self.local[1]
            else:
                vals = [self.session_limit]
                since = self.session_since
            vals += list(self.pending_limits)
            if 0 in vals:
                return None
            return max(vals), since

    def state_snapshot(self):
        with self.lock:
            pid = self.conn.pid if self.conn and not self.conn.dead else None
            return (pid, self.quiet, self.seq, self.aborted, self.uncertain,
                    self.pipe_open, self.pipe_error, self.pipe_block, self.status)

    def describe(self):
        with self.lock:
            return ('session %d (pid %s, step %d): status=%s savepoints=%s '
                    'aborted=%s limit=%s local=%s pipeline=%s%s' % (
                        self.idx, self.conn.pid if self.conn else None,
                        self.steps, self.status, self.sp, self.aborted,
                        self.session_limit, self.local and self.local[0],
                        self.pipe_open, ' (error)' if self.pipe_error else ''))

    def recent(self):
        c = self.conn
        return list(c.log) if c else []

    # -- bookkeeping around sending and receiving --
    def before_send(self, work):
        """work: the server will work on what we send and we wait for it."""
        c = self.conn
        # read what arrived while we were quiet (a FATAL, usually) first,
        # so that a termination sent while idle is not taken for one sent
        # while working
        if c.pending():
            self.drain()
        with self.lock:
            self.quiet = False
            self.seq += 1
        if work:
            self.inflight_since = time.monotonic()

    def set_quiet(self):
        with self.lock:
            self.quiet = True
            self.seq += 1
        self.inflight_since = None

    def drain(self):
        """Read asynchronous messages that arrived while idle."""
        c = self.conn
        while c.pending():
            t, b = c.recv()
            if t == 'E':
                self.fz.error_seen(self, error_fields(b), idle=True)

    def recv(self):
        c = self.conn
        try:
            t, b = c.recv()
        except ConnLost as e:
            self.lost(e.fatal)
            raise
        if t == 'E':
            f = error_fields(b)
            self.fz.error_seen(self, f, idle=self.inflight_since is None)
            if f.get('S') in ('FATAL', 'PANIC'):
                self.lost(f)
                raise ConnLost('FATAL', f)
        return t, b

    def lost(self, fatal):
        if fatal and self.inflight_since is not None:
            # from the end of the last send: while the backend reads a
            # message it waits for its client
            since = max(self.inflight_since, self.conn.last_send)
            self.fz.check_kill(self, fatal, time.monotonic() - since)
        self.inflight_since = None

    # -- model updates --
    def on_complete(self, st, tag):
        with self.lock:
            k = st.kind
            if k == K_BEGIN:
                self.status = 'T'
            elif k in (K_END, K_PREPARE):
                # later statements of the same message run in a new implicit
                # transaction
                self.sp = []
                self.aborted = None
                self.local = None
                self.portals = set()
                self.status = 'I'
            elif k == K_CHAIN:
                self.sp = []
                self.aborted = None
                self.local = None
                self.portals = set()
                self.status = 'T'
            elif k == K_SAVEPOINT:
                self.sp.append(st.arg)
            elif k == K_RELEASE and st.arg in self.sp:
                del self.sp[len(self.sp) - 1 - self.sp[::-1].index(st.arg):]
            elif k == K_ROLLBACK_TO and st.arg in self.sp:
                del self.sp[len(self.sp) - self.sp[::-1].index(st.arg):]
                self.aborted = None
            elif k == K_SET_LOCAL and self.status == 'T' and not self.sp:
                self.local = (st.arg, time.monotonic())
            elif k == K_SET:
                self.session_limit = st.arg
                self.session_since = time.monotonic()
            elif k == K_ROLLBACK_TO or k == K_RELEASE:
                self.uncertain = True
            if k in (K_SET_LOCAL, K_SET):
                self.pending_limits.discard(st.arg)
        if k == K_FINISH_PREPARED:
            with self.fz.lock:
                self.fz.gids.discard(st.arg)
                self.fz.prepared_finished += 1

    def on_error(self, st):
        with self.lock:
            if st is not None and st.kind in (K_SET_LOCAL, K_SET):
                self.pending_limits.discard(st.arg)
            if self.aborted is None:
                self.aborted = 'sub' if self.sp else 'top'

    def on_ready(self, status):
        with self.lock:
            if status == 'I':
                self.reset_model()
            elif status == 'T':
                self.aborted = None
            elif self.aborted is None:
                self.uncertain = True
            self.status = status
            self.pipe_open = self.pipe_error = self.pipe_block = False

    def note_sending(self, stmts):
        with self.lock:
            for st in stmts:
                if st.kind in (K_SET_LOCAL, K_SET):
                    self.pending_limits.add(st.arg)

    # -- reading replies --
    def read_query(self, stmts, copy_rows=None, copy_pause=0.0):
        """Replies to a simple Query up to ReadyForQuery."""
        i = 0
        while True:
            t, b = self.recv()
            if t == 'C':
                if i < len(stmts):
                    self.on_complete(stmts[i], b[:-1].decode())
                i += 1
            elif t == 'E':
                self.on_error(stmts[i] if i < len(stmts) else None)
                i += 1
            elif t == 'I':
                i += 1
            elif t == 'G':          # COPY FROM STDIN
                self.copy_in(copy_rows or 1, copy_pause)
            elif t == 'Z':
                self.on_ready(b.decode())
                self.set_quiet()
                return

    def copy_in(self, nrows, pause):
        c = self.conn
        rows = [c.copy_data('%d\tfz%d\n' % (j, j)) for j in range(nrows)]
        self.inflight_since = None
        c.send(*rows[:1])
        if pause:
            time.sleep(pause)       # the backend waits for its client
        rest = rows[1:]
        end = c.copy_fail() if self.rng.random() < 0.2 else c.copy_done()
        self.before_send(True)
        c.send(*(rest + [end]))

    def read_pipeline(self, ops, synced):
        """Replies to pipeline ops (kinds, with Stmt for Executes); to
        ReadyForQuery if synced, else to the last op."""
        for kind, st in ops:
            if self.pipe_error:
                break
            while True:
                t, b = self.recv()
                if t == 'E':
                    with self.lock:
                        self.pipe_error = True
                    self.on_error(st)
                    break
                if kind == 'exec':
                    if t == 'C':
                        self.on_complete(st, b[:-1].decode())
                        break
                    if t in ('s', 'I'):
                        break
                elif kind == 'parse' and t == '1':
                    break
                elif kind == 'bind' and t == '2':
                    break
                elif kind == 'close' and t == '3':
                    break
                elif kind == 'dstmt' and t in ('T', 'n'):
                    break
                elif kind == 'dportal' and t in ('T', 'n'):
                    break
        if synced:
            while True:
                t, b = self.recv()
                if t == 'Z':
                    self.on_ready(b.decode())
                    break
        self.set_quiet()

    def read_fastpath(self):
        result = None
        while True:
            t, b = self.recv()
            if t == 'V':
                n = struct.unpack('!i', b[:4])[0]
                result = b[4:4 + n].decode() if n >= 0 else None
            elif t == 'E':
                self.on_error(None)
            elif t == 'Z':
                self.on_ready(b.decode())
                self.set_quiet()
                return result


# ---------------------------------------------------------------------------
# The grammar
# ---------------------------------------------------------------------------

class Grammar:
    """Random statements and actions for one session."""

    def __init__(self, s):
        self.s = s
        self.r = s.rng

    def ms(self):
        return self.r.randint(200, 500)

    def sleep_sql(self):
        return 'SELECT pg_sleep(%.3f)' % (self.r.randint(0, 700) / 1000.0)

    def statement(self):
        """One statement of the body of a transaction."""
        r = self.r
        s = self.s
        row = r.randint(1, 3)
        sp = 's%d' % r.randint(1, 3)
        choices = [
            (6, lambda: Stmt('UPDATE fz_rows SET n = n + 1 WHERE id = %d' % row)),
            (2, lambda: Stmt('SELECT * FROM fz_rows WHERE id = %d FOR UPDATE' % row)),
            (4, lambda: Stmt(self.sleep_sql())),
            (3, lambda: Stmt('SELECT 1')),
            (1, lambda: Stmt('SELECT 1/0')),
            (1, lambda: Stmt('INSERT INTO fz_uniq VALUES (1)')),
            (1, lambda: Stmt('SELEC syntax error')),
            (1, lambda: Stmt('SELECT count(*) FROM fz_lock')),
            (1, lambda: Stmt('LOCK TABLE fz_lock IN ACCESS EXCLUSIVE MODE')),
            (1, lambda: Stmt('INSERT INTO fz_copy VALUES (0, %s)' % "'x'")),
            (1, lambda: Stmt('SELECT fz_imm()')),
            (3, lambda: Stmt('SAVEPOINT %s' % sp, K_SAVEPOINT, sp)),
            (2, lambda: Stmt('RELEASE SAVEPOINT %s' % (s.sp[-1] if s.sp and r.random() < 0.8 else sp),
                             K_RELEASE, s.sp[-1] if s.sp else sp)),
            (3, lambda: self.rollback_to()),
            (1, lambda: Stmt('CALL fz_commit(%d)' % r.choice([0, 50, 300]))),
            (1, lambda: Stmt('CALL fz_rollback(%d)' % r.choice([0, 50, 300]))),
            (1, lambda: Stmt('CALL fz_commit_last()')),
            (1, lambda: self.set_local()),
            (1, lambda: Stmt('DECLARE c%d CURSOR WITH HOLD FOR SELECT g, pg_sleep(0.05) '
                             'FROM generate_series(1, 6) g' % r.randint(1, 2))),
            (1, lambda: Stmt('FETCH 2 FROM c%d' % r.randint(1, 2))),
            (1, lambda: Stmt('CLOSE c%d' % r.randint(1, 2))),
        ]
        return self.pick(choices)

    def rollback_to(self):
        name = self.s.sp[self.r.randrange(len(self.s.sp))] if self.s.sp and \
            self.r.random() < 0.9 else 's%d' % self.r.randint(1, 3)
        return Stmt('ROLLBACK TO SAVEPOINT %s' % name, K_ROLLBACK_TO, name)

    def set_local(self):
        v = self.ms()
        # only at the top level, so that no ROLLBACK TO can revert it
        if self.s.sp:
            return Stmt('SELECT 2')
        return Stmt("SET LOCAL txguard.transaction_timeout = '%dms'" % v,
                    K_SET_LOCAL, v)

    def begin(self):
        return self.pick([
            (6, lambda: Stmt('BEGIN', K_BEGIN)),
            (1, lambda: Stmt('START TRANSACTION ISOLATION LEVEL REPEATABLE READ', K_BEGIN)),
        ])

    def end(self):
        return self.pick([
            (5, lambda: Stmt('COMMIT', K_END)),
            (4, lambda: Stmt('ROLLBACK', K_END)),
            (2, lambda: Stmt('COMMIT AND CHAIN', K_CHAIN)),
            (2, lambda: Stmt('ROLLBACK AND CHAIN', K_CHAIN)),
        ])

    def pick(self, choices):
        total = sum(w for w, _ in choices)
        x = self.r.uniform(0, total)
        for w, f in choices:
            x -= w
            if x <= 0:
                return f()
        return choices[-1][1]()


# ---------------------------------------------------------------------------
# Session actions (one per step)
# ---------------------------------------------------------------------------

def act_query(s, g, stmts=None):
    c = s.conn
    if stmts is None:
        if s.status == 'I' and g.r.random() < 0.6:
            stmts = [g.begin()]
        elif s.status != 'I' and g.r.random() < 0.25:
            stmts = [g.end()]
        else:
            stmts = [g.statement()]
    sql = '; '.join(st.sql for st in stmts)
    s.note_sending(stmts)
    s.before_send(True)
    c.send(c.Q(sql))
    s.read_query(stmts)


def act_multi(s, g):
    """Several statements in one Query (an implicit block if no BEGIN)."""
    r = g.r
    shapes = [
        lambda: [g.begin()] + [g.statement() for _ in range(r.randint(1, 3))],
        lambda: [g.statement() for _ in range(r.randint(2, 3))],
        lambda: [Stmt('ROLLBACK', K_END), Stmt('SELECT 2')],
        lambda: [g.end(), g.statement()],
        lambda: [Stmt('BEGIN', K_BEGIN), Stmt('UPDATE fz_rows SET n = n + 1 WHERE id = %d' % r.randint(1, 3)),
                 Stmt('SAVEPOINT s1', K_SAVEPOINT, 's1'), Stmt('SELECT 1/0')],
    ]
    act_query(s, g, r.choice(shapes)())


def act_pipeline(s, g):
    """Parse/Bind/Execute (and Describe, Close) of several statements, then
    Sync, or Flush and a pause first."""
    r = g.r
    c = s.conn
    msgs, ops, stmts = [], [], []
    n = r.randint(1, 4)
    for i in range(n):
        if s.status == 'I' and i == 0 and r.random() < 0.3:
            st = g.begin()
        elif s.status != 'I' and r.random() < 0.15:
            st = g.end()
        else:
            st = g.statement()
        stmts.append(st)
        name = 'q%d' % r.randint(0, 3) if r.random() < 0.3 else ''
        msgs.append(c.P(st.sql, name))
        ops.append(('parse', None))
        if r.random() < 0.15:
            msgs.append(c.D('S', name))
            ops.append(('dstmt', None))
            if r.random() < 0.3:        # Describe only: no Bind, no Execute
                continue
        portal = 'p%d' % r.randint(1, 2) if r.random() < 0.3 else ''
        msgs.append(c.B(portal, name))
        ops.append(('bind', None))
        if r.random() < 0.1:
            msgs.append(c.D('P', portal))
            ops.append(('dportal', None))
        msgs.append(c.E(portal, r.choice([0, 0, 0, 1, 2])))
        ops.append(('exec', st))
        if portal:
            with s.lock:
                s.portals.add(portal)
        if r.random() < 0.1:
            if r.random() < 0.5:
                msgs.append(c.C('P', portal))
            else:
                msgs.append(c.C('S', name))
            ops.append(('close', None))
    s.note_sending(stmts)
    with s.lock:
        if not s.pipe_open:
            s.pipe_block = s.status != 'I'
        s.pipe_open = True
    if r.random() < 0.35:
        # Flush, read everything, pause with the pipeline open, go on later
        s.before_send(True)
        c.send(*(msgs + [c.H()]))
        s.read_pipeline(ops, synced=False)
        time.sleep(r.choice([0.05, 0.3, 0.8, 1.5]))
        if r.random() < 0.5:
            act_pipeline(s, g)
            return
        s.before_send(True)
        c.send(c.S())
        s.read_pipeline([], synced=True)
    else:
        s.before_send(True)
        c.send(*(msgs + [c.S()]))
        s.read_pipeline(ops, synced=True)


def act_parse_only(s, g):
    """Parse (and Describe) with no Bind, Flush, a pause, then Sync: parse
    analysis opens a transaction and takes locks."""
    r = g.r
    c = s.conn
    st = r.choice([Stmt('SELECT count(*) FROM fz_lock'),
                   Stmt('UPDATE fz_rows SET n = n + 1 WHERE id = %d' % r.randint(1, 3)),
                   Stmt('CALL fz_commit_last()')])
    msgs, ops = [c.P(st.sql)], [('parse', None)]
    if r.random() < 0.5:
        msgs.append(c.D('S'))
        ops.append(('dstmt', None))
    with s.lock:
        if not s.pipe_open:
            s.pipe_block = s.status != 'I'
        s.pipe_open = True
    s.before_send(True)
    c.send(*(msgs + [c.H()]))
    s.read_pipeline(ops, synced=False)
    time.sleep(r.choice([0.1, 0.6, 1.5, 2.0]))
    s.before_send(True)
    if r.random() < 0.3:
        # and execute it after all
        c.send(c.B(), c.E(), c.S())
        s.read_pipeline([('bind', None), ('exec', st)], synced=True)
    else:
        c.send(c.S())
        s.read_pipeline([], synced=True)


def act_portal(s, g):
    """A named portal run in batches (Execute with a row limit), inside a
    block, across the deadline; sometimes with a failing savepoint and a
    ROLLBACK TO in between (a portal bound earlier run after the cancel)."""
    r = g.r
    c = s.conn
    if s.status == 'I':
        act_query(s, g, [Stmt('BEGIN', K_BEGIN)])
        if s.status != 'T':
            return
    sql = 'SELECT g, pg_sleep(0.1) FROM generate_series(1, %d) g' % r.randint(3, 12)
    s.before_send(True)
    c.send(c.P(sql), c.B('pb'), c.E('pb', 2), c.S())
    s.read_pipeline([('parse', None), ('bind', None), ('exec', Stmt(sql))], synced=True)
    for _ in range(r.randint(1, 4)):
        if s.conn.dead:
            return
        if r.random() < 0.3:
            sp = Stmt('SAVEPOINT s1', K_SAVEPOINT, 's1')
            bad = Stmt(g.sleep_sql() if r.random() < 0.5 else 'SELECT 1/0')
            back = Stmt('ROLLBACK TO SAVEPOINT s1', K_ROLLBACK_TO, 's1')
            s.before_send(True)
            c.send(c.P(sp.sql), c.B(), c.E(), c.P(bad.sql), c.B(), c.E(), c.S())
            s.read_pipeline([('parse', None), ('bind', None), ('exec', sp),
                             ('parse', None), ('bind', None), ('exec', bad)], synced=True)
            s.before_send(True)
            c.send(c.Q(back.sql))
            s.read_query([back])
        else:
            time.sleep(r.choice([0, 0.1, 0.4]))
        s.before_send(True)
        c.send(c.E('pb', r.randint(1, 3)), c.S())
        s.read_pipeline([('exec', Stmt(sql))], synced=True)


def act_fastpath(s, g):
    r = g.r
    c = s.conn
    oids = s.fz.oids
    x = r.random()
    if x < 0.4:
        call = c.F(oids['pg_sleep'], ['%.3f' % (r.randint(0, 700) / 1000.0)], 'pg_sleep')
    elif x < 0.55 or not s.large_objects:
        call = c.F(oids['lo_creat'], ['-1'], 'lo_creat')
    else:
        lo = r.choice(s.large_objects)
        y = r.random()
        if y < 0.4:
            call = c.F(oids['lo_open'], [lo, '393216'], 'lo_open')
        elif y < 0.6:
            call = c.F(oids['lowrite'], ['0', 'fuzz'], 'lowrite')
        elif y < 0.8:
            call = c.F(oids['loread'], ['0', '10'], 'loread')
        elif y < 0.9:
            call = c.F(oids['lo_close'], ['0'], 'lo_close')
        else:
            call = c.F(oids['lo_unlink'], [lo], 'lo_unlink')
            s.large_objects.remove(lo)
    s.before_send(True)
    c.send(call)
    res = s.read_fastpath()
    if call[1].startswith('F lo_creat') and res and s.status == 'I':
        s.large_objects.append(res)


def act_copy(s, g):
    r = g.r
    c = s.conn
    if r.random() < 0.5:
        st = Stmt('COPY fz_copy FROM STDIN')
        s.before_send(True)
        c.send(c.Q(st.sql))
        s.read_query([st], copy_rows=r.randint(1, 5),
                     copy_pause=r.choice([0, 0, 0.2, 0.7, 1.5]))
    else:
        st = Stmt('COPY (SELECT g, pg_sleep(0.02) FROM generate_series(1, %d) g) TO STDOUT'
                  % r.randint(1, 20))
        s.before_send(True)
        c.send(c.Q(st.sql))
        s.read_query([st])


def act_pause(s, g):
    time.sleep(g.r.choice([0.05, 0.2, 0.4, 0.7, 1.0, 1.6, 2.2]))


def act_set(s, g):
    if s.status != 'I':
        return act_query(s, g)
    r = g.r
    if r.random() < 0.25:
        st = Stmt('RESET txguard.transaction_timeout', K_SET, 0)
    else:
        v = g.ms()
        st = Stmt("SET txguard.transaction_timeout = '%dms'" % v, K_SET, v)
    act_query(s, g, [st])


def act_appname(s, g):
    """SET application_name, or SET LOCAL in a transaction: the durations
    change key as it is assigned, and back when a SET LOCAL, or a SET in a
    transaction that rolls back, is undone (the checkpoints check that no
    transaction and no wait goes missing or to a key it does not fit)."""
    r = g.r
    local = s.status != 'I' and r.random() < 0.6
    act_query(s, g, [Stmt("SET %sapplication_name = 'fuzz_app_%d'"
                          % ('LOCAL ' if local else '', r.randint(1, 3)))])


def act_prepare(s, g):
    """BEGIN; work; PREPARE TRANSACTION; then COMMIT or ROLLBACK PREPARED
    at once (a prepared transaction left behind would hold its locks)."""
    r = g.r
    if s.status == 'E' or (s.status == 'T' and r.random() < 0.5):
        act_query(s, g, [Stmt('ROLLBACK', K_END)])
        return
    if s.status == 'I':
        act_query(s, g, [Stmt('BEGIN', K_BEGIN)])
        act_query(s, g, [Stmt('UPDATE fz_rows SET n = n + 1 WHERE id = %d' % r.randint(1, 3))])
    if s.status != 'T':
        return
    s.gid_n += 1
    gid = 'fz_%d_%d_%d' % (s.fz.seed, s.idx, s.gid_n)
    st = Stmt("PREPARE TRANSACTION '%s'" % gid, K_PREPARE, gid)
    act_query(s, g, [st])
    with s.fz.lock:
        s.fz.gids.add(gid)
    fin = "%s PREPARED '%s'" % (r.choice(['COMMIT', 'ROLLBACK']), gid)
    st = Stmt(fin, K_FINISH_PREPARED, gid)
    act_query(s, g, [st])


def act_big_commit(s, g):
    """Defect 1 of issue 9: a 40 MB COMMIT, then Parse/Bind of a statement
    whose planning runs PL/pgSQL, with no Sync in between."""
    c = s.conn
    if s.status != 'I':
        return
    # no limit: receiving 40 MB takes longer than the limits the fuzzer sets
    act_query(s, g, [Stmt('RESET txguard.transaction_timeout', K_SET, 0)])
    act_query(s, g, [Stmt('BEGIN', K_BEGIN), Stmt('SELECT 1')])
    if s.status != 'T':
        return
    big = 'COMMIT /* %s */' % ('x' * (40 << 20))
    stmts = [Stmt(big, K_END), Stmt('SELECT fz_imm()')]
    s.before_send(True)
    c.send(c.P(big), c.B(), c.E(), c.P(stmts[1].sql), c.B(), c.E(), c.S())
    s.read_pipeline([('parse', None), ('bind', None), ('exec', stmts[0]),
                     ('parse', None), ('bind', None), ('exec', stmts[1])], synced=True)


def act_hold(s, g):
    """Take a row lock and go idle holding it, sometimes with a failed
    savepoint (the top-level transaction still holds the lock), while the
    others queue for the row: the sentinel's case."""
    r = g.r
    row = r.randint(1, 2)
    stmts = [Stmt('BEGIN', K_BEGIN)]
    if r.random() < 0.5:        # no limit: only the sentinel can end it
        stmts.append(Stmt("SET LOCAL txguard.transaction_timeout = 0", K_SET_LOCAL, 0))
    stmts.append(Stmt('UPDATE fz_rows SET n = n + 1 WHERE id = %d' % row))
    if r.random() < 0.5:
        stmts += [Stmt('SAVEPOINT s1', K_SAVEPOINT, 's1'),
                  Stmt(r.choice(['SELECT 1/0', 'INSERT INTO fz_uniq VALUES (1)']))]
    act_query(s, g, stmts)
    time.sleep(r.choice([0.2, 0.8, 1.5, 2.2, 3.0]))
    if r.random() < 0.3 and not s.conn.dead:
        # work that waits for a lock in parse analysis: working, not idle
        act_query(s, g, [Stmt('SELECT count(*) FROM fz_lock')])


def act_lock(s, g):
    """Hold ACCESS EXCLUSIVE on a table the others read, idle."""
    if s.status != 'I':
        return act_query(s, g)
    act_query(s, g, [Stmt('BEGIN', K_BEGIN),
                     Stmt('LOCK TABLE fz_lock IN ACCESS EXCLUSIVE MODE')])
    time.sleep(g.r.choice([0.1, 0.5, 1.2]))


def act_wait(s, g):
    """Queue for a row with no limit, so that a blocker the sentinel
    misses shows as a long wait."""
    if s.status != 'I':
        return act_query(s, g)
    act_query(s, g, [Stmt('BEGIN', K_BEGIN),
                     Stmt("SET LOCAL txguard.transaction_timeout = 0", K_SET_LOCAL, 0),
                     Stmt('UPDATE fz_rows SET n = n + 1 WHERE id = %d' % g.r.randint(1, 2)),
                     Stmt('COMMIT', K_END)])


def act_disconnect(s, g):
    s.conn.close(terminate=g.r.random() < 0.5)
    s.fz.orphan(s)
    s.conn = None


ACTIONS_IDLE = [(20, act_query), (6, act_multi), (10, act_pipeline), (2, act_parse_only),
                (3, act_portal), (5, act_fastpath), (3, act_copy), (4, act_pause),
                (6, act_set), (2, act_prepare), (3, act_hold), (3, act_wait),
                (2, act_lock), (2, act_disconnect), (2, act_appname)]
ACTIONS_XACT = [(30, act_query), (5, act_multi), (10, act_pipeline), (1, act_parse_only),
                (2, act_portal), (5, act_fastpath), (3, act_copy), (8, act_pause),
                (2, act_prepare), (3, act_disconnect), (2, act_appname)]


# ---------------------------------------------------------------------------
# The fuzzer
# ---------------------------------------------------------------------------

class Fuzzer:
    def __init__(self, a):
        self.a = a
        self.seed = a.seed
        self.path = os.path.join(a.host, '.s.PGSQL.%d' % a.port)
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.failures = []
        self.kinds = collections.Counter()
        self.stop = threading.Event()
        self.pause_req = threading.Event()
        self.parked = 0
        self.resume = threading.Event()
        self.gids = set()
        self.orphans = {}           # pid -> (limit, time closed)
        self.tol = a.tolerance
        self.errors = collections.Counter()
        self.sessions = []
        self.prepared_finished = 0
        self.failed_proc_commits = 0
        self.actions = collections.Counter()
        self.reported = set()

    def connect(self, db, app):
        return Conn(self.path, self.a.user, db, app, self.t0)

    @property
    def steps(self):
        return sum(s.steps for s in self.sessions)

    # -- reporting --
    def fail(self, kind, text, sessions=(), key=None):
        """Report a failure; one per (kind, key): a transaction seen past
        its limit at every check is one failure."""
        # session details first: never take a session's lock under ours
        out = ['FAIL [%s] seed=%d step=%d t=%.3f: %s' % (
            kind, self.seed, self.steps, time.monotonic() - self.t0, text)]
        for s in sessions:
            out.append('  ' + s.describe())
            for line in s.recent():
                out.append('    ' + line)
        with self.lock:
            if key is not None:
                if (kind, key) in self.reported:
                    return
                self.reported.add((kind, key))
            self.kinds[kind] += 1
            n = self.kinds[kind]
            self.failures.append(kind)
            if n > self.a.max_reports:
                if n == self.a.max_reports + 1:
                    print('FAIL [%s] more failures of this kind are counted, not shown'
                          % kind, flush=True)
                return
            print('\n'.join(out), flush=True)

    def error_seen(self, s, f, idle):
        with self.lock:
            self.errors[f.get('C')] += 1
            # a COMMIT that fails inside a procedure (refused past the
            # deadline, or its cancel arrives during it): core counts the
            # procedure's transaction and the one it starts before the error
            # leaves the CALL, txguard one failed (or timed_out) transaction
            # (not one refusing the COMMIT itself, class 2D: invalid
            # transaction termination, where nothing was committed)
            if 'at COMMIT' in f.get('W', '') and \
                    not f.get('C', '').startswith('2D'):
                self.failed_proc_commits += 1
        if f.get('C') in ('XX000', 'XX001', 'XX002') or \
                f.get('S') == 'PANIC' or 'unexpected' in f.get('M', ''):
            self.fail('internal', 'server reported %s %s: %s' % (
                f.get('S'), f.get('C'), f.get('M')), [s])

    def check_kill(self, s, f, working_for):
        """A FATAL that ends a session while it works for us."""
        code = f.get('C')
        if code not in ('25P03', '25P04') or working_for < 0.25:
            return
        what = 'the sentinel (25P03)' if code == '25P03' else \
            'the transaction timeout (25P04)'
        self.fail('kill-while-working:' + code,
                  'session terminated by %s %.3f s after it was sent work it was '
                  'still doing: %s / %s' % (what, working_for, f.get('M'), f.get('D')), [s])

    def orphan(self, s):
        pid = s.conn.pid
        lim = s.limit_for_check()
        with self.lock:
            self.orphans[pid] = (lim, time.monotonic())

    # -- setup --
    def setup(self):
        m = self.connect(self.a.monitor_db, 'fuzz_monitor')
        m.must('CREATE EXTENSION IF NOT EXISTS pg_txguard')
        self.dboid = m.must("SELECT oid FROM pg_database WHERE datname = '%s'"
                            % self.a.db)[0][0]
        self.ibt = float(m.must("SELECT setting::int FROM pg_settings WHERE "
                                "name = 'txguard.idle_blocker_timeout'")[0][0]) / 1000.0
        self.oids = {}
        for name, sig in [('pg_sleep', 'pg_sleep(float8)'), ('lo_creat', 'lo_creat(int4)'),
                          ('lo_open', 'lo_open(oid,int4)'), ('lowrite', 'lowrite(int4,bytea)'),
                          ('loread', 'loread(int4,int4)'), ('lo_close', 'lo_close(int4)'),
                          ('lo_unlink', 'lo_unlink(oid)')]:
            self.oids[name] = int(m.must("SELECT '%s'::regprocedure::oid" % sig)[0][0])
        self.mon = m
        c = self.connect(self.a.db, 'fuzz_setup')
        for sql in [
            'DROP TABLE IF EXISTS fz_rows, fz_uniq, fz_lock, fz_copy',
            'CREATE TABLE fz_rows (id int PRIMARY KEY, n int)',
            'INSERT INTO fz_rows SELECT g, 0 FROM generate_series(1, 4) g',
            'CREATE TABLE fz_uniq (id int PRIMARY KEY)',
            'INSERT INTO fz_uniq VALUES (1)',
            'CREATE TABLE fz_lock (id int)',
            'CREATE TABLE fz_copy (a int, b text)',
            '''CREATE OR REPLACE PROCEDURE fz_commit(ms int) LANGUAGE plpgsql AS $$
               BEGIN
                 UPDATE fz_rows SET n = n + 1 WHERE id = 4;
                 COMMIT;
                 PERFORM pg_sleep(ms / 1000.0);
                 UPDATE fz_rows SET n = n + 1 WHERE id = 4;
                 COMMIT;
                 PERFORM pg_sleep(ms / 2000.0);
               END $$''',
            # COMMIT last: the CALL goes on in a transaction nothing runs in
            '''CREATE OR REPLACE PROCEDURE fz_commit_last() LANGUAGE plpgsql AS $$
               BEGIN
                 UPDATE fz_rows SET n = n + 1 WHERE id = 4;
                 COMMIT;
               END $$''',
            '''CREATE OR REPLACE PROCEDURE fz_rollback(ms int) LANGUAGE plpgsql AS $$
               BEGIN
                 UPDATE fz_rows SET n = n + 1 WHERE id = 4;
                 ROLLBACK;
                 PERFORM pg_sleep(ms / 1000.0);
               END $$''',
            # IMMUTABLE: evaluated while planning, and it runs a query
            '''CREATE OR REPLACE FUNCTION fz_imm() RETURNS int IMMUTABLE
               LANGUAGE plpgsql AS $$
               DECLARE n int;
               BEGIN SELECT count(*) INTO n FROM fz_uniq; RETURN n; END $$''',
        ]:
            c.must(sql)
        for row in c.must("SELECT gid FROM pg_prepared_xacts WHERE gid LIKE 'fz\\_%'"):
            c.must("ROLLBACK PREPARED '%s'" % row[0])
        c.close()
        self.connections = 0
        self.prepared_finished = 0
        self.failed_proc_commits = 0
        self.wait_backends_gone()
        psd, txg, dur = self.stats()
        self.baseline = (psd, txg, dur[0])

    # -- monitoring --
    def query(self, sql):
        try:
            return self.mon.must(sql)
        except (ConnLost, Hang, OSError) as e:
            self.fail('crash', 'monitoring connection lost (%s): the server '
                      'crashed or restarted' % e, self.sessions)
            self.stop.set()
            raise

    def snapshot(self):
        db = self.dboid
        rows = self.query('''
            SELECT 'a', pid, state,
                   coalesce(extract(epoch FROM clock_timestamp() - xact_start), -1),
                   coalesce(extract(epoch FROM clock_timestamp() - state_change), -1),
                   coalesce(wait_event_type, '') || ':' || coalesce(wait_event, ''),
                   coalesce(xact_start::text, '')
              FROM pg_stat_activity
             WHERE datid = %s AND backend_type = 'client backend'
            UNION ALL
            SELECT 't', pid, state,
                   coalesce(extract(epoch FROM clock_timestamp() - xact_start), -1),
                   coalesce(extract(epoch FROM clock_timestamp() - state_since), -1), '', ''
              FROM txguard._transactions() WHERE dbid = %s
            UNION ALL
            SELECT 'w', l.pid, '',
                   coalesce(extract(epoch FROM clock_timestamp() - l.waitstart), 0), 0,
                   array_to_string(pg_blocking_pids(l.pid), ','), ''
              FROM pg_locks l
             WHERE NOT l.granted AND l.pid IN
                   (SELECT pid FROM pg_stat_activity WHERE datid = %s)''' % (db, db, db))
        psa, txg, waits = {}, {}, {}
        for k, pid, state, xa, sa, extra, xs in rows:
            pid = int(pid)
            if k == 'a':
                psa[pid] = (state, float(xa), float(sa), extra, xs)
            elif k == 't':
                txg[pid] = (state, float(xa), float(sa))
            else:
                blockers = [int(x) for x in extra.split(',') if x]
                old = waits.get(pid)
                waits[pid] = (max(float(xa), old[0] if old else 0), blockers)
        return psa, txg, waits

    def session_map(self):
        return {snap[0]: (s, snap) for s in self.sessions
                for snap in [s.state_snapshot()] if snap[0]}

    @staticmethod
    def unclear(snap):
        """A transaction block aborted at its top level while a pipeline is
        open and not yet synced, whether the error came in the pipeline or
        before it: pg_stat_activity shows state 'active' (the messages of
        the pipeline) with no xact_start (the abort cleared it), which says
        neither 'in a transaction' nor 'not'."""
        return snap[5] and snap[3] == 'top' and \
            (snap[7] or snap[8] != 'I')

    def check_once(self):
        before = self.session_map()
        psa, txg, waits = self.snapshot()
        after = self.session_map()
        now = time.monotonic()
        suspects = []
        # deadline: no transaction outlives its limit by more than tol
        for pid, (state, xa, sa, wait, xs) in psa.items():
            if xa < 0:
                continue
            if pid in after:
                lim = after[pid][0].limit_for_check()
                who = after[pid][0]
            elif pid in self.orphans:
                lim, closed = self.orphans[pid]
                who = None
            else:
                continue
            if lim is None:
                continue
            limit, since = lim
            if xa > limit / 1000.0 + self.tol and now - since > self.tol:
                suspects.append(('deadline', pid, who, limit, (state, xa, wait, txg.get(pid))))
        # sentinel: no idle live transaction blocks another for long
        for wpid, (wage, blockers) in waits.items():
            if wage <= self.ibt + self.tol:
                continue
            for b in blockers:
                if b not in psa or b not in after:
                    continue
                bstate, bxa, bsa, _, _ = psa[b]
                s = after[b][0]
                snap = after[b][1]
                if bsa <= self.ibt + self.tol:
                    continue
                if bstate == 'idle in transaction' or (
                        bstate == 'idle in transaction (aborted)' and snap[3] == 'sub'
                        and not snap[4]):
                    suspects.append(('idle-blocker', b, s, wpid, (bstate, bsa, wage)))
        # registry: txguard agrees with pg_stat_activity for quiet sessions
        for pid, (s, snap) in after.items():
            b = before.get(pid)
            if not b or not snap[1] or not b[1][1] or b[1][2] != snap[2]:
                continue
            if self.unclear(snap):
                continue
            a = psa.get(pid)
            in_a = a is not None and (a[0].startswith('idle in transaction') or a[1] >= 0)
            st_a = a and ('active' if a[0] == 'fastpath function call' else a[0])
            t = txg.get(pid)
            if in_a != (t is not None) or (t and st_a != t[0]):
                suspects.append(('registry', pid, s, snap[2], (a, t)))
        if not suspects:
            return
        # re-check once after a short pause
        time.sleep(0.3)
        before2 = self.session_map()
        psa2, txg2, waits2 = self.snapshot()
        after2 = self.session_map()
        for kind, pid, s, x, info in suspects:
            if kind == 'deadline':
                a = psa2.get(pid)
                if not a or a[1] < 0 or a[1] < info[1]:
                    continue
                lim = s.limit_for_check() if s else x
                if s and (lim is None or pid not in after2):
                    continue
                self.fail('deadline', 'pid %d has been in its transaction for %.3f s, '
                          'past its limit of %d ms + %.1f s (pg_stat_activity: state=%r '
                          'wait=%s; txguard: %r)' % (pid, a[1], x, self.tol, a[0], a[3],
                                                    txg2.get(pid)), [s] if s else [],
                          key=(pid, a[4]))
            elif kind == 'idle-blocker':
                a = psa2.get(pid)
                w = waits2.get(x)
                if not a or not w or pid not in w[1] or a[0] != info[0] or a[2] < info[1]:
                    continue
                if pid not in after2:
                    continue
                self.fail('idle-blocker', 'pid %d %s for %.3f s blocks pid %d (waiting %.3f s), '
                          'past idle_blocker_timeout %.0f ms + %.1f s' % (
                              pid, a[0], a[2], x, w[0], self.ibt * 1000, self.tol),
                          [s] + [ss for ss in self.sessions if ss.conn and ss.conn.pid == x],
                          key=(pid, a[4]))
            else:
                b2, a2 = before2.get(pid), after2.get(pid)
                if not b2 or not a2 or not a2[1][1] or not b2[1][1] or b2[1][2] != a2[1][2]:
                    continue
                if self.unclear(a2[1]):
                    continue
                a = psa2.get(pid)
                in_a = a is not None and (a[0].startswith('idle in transaction') or a[1] >= 0)
                st_a = a and ('active' if a[0] == 'fastpath function call' else a[0])
                t = txg2.get(pid)
                if in_a != (t is not None) or (t and st_a != t[0]):
                    sub = 'state' if in_a and t else 'extra-row' if t else 'missing-row'
                    self.fail('registry:' + sub, key=(pid, a2[1][2]), text='pid %d quiescent: pg_stat_activity says %s, '
                              'txguard.transactions says %s' % (
                                  pid, 'state=%r xact_age=%.3f' % (a[0], a[1]) if a else 'no backend',
                                  'state=%r xact_age=%.3f' % (t[0], t[1]) if t else 'no row'),
                              sessions=[s])

    def wait_backends_gone(self, timeout=20.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            n = int(self.query("SELECT count(*) FROM pg_stat_activity WHERE datid = %s"
                               % self.dboid)[0][0])
            if n == 0:
                return True
            time.sleep(0.1)
        self.fail('stats', 'backends of the fuzz database still there %.0f s after '
                  'their sessions closed' % timeout)
        return False

    def stats(self):
        db = self.dboid
        psd = int(self.query('SELECT coalesce(sum(xact_commit + xact_rollback), 0) FROM '
                             'pg_stat_database WHERE datid = %s' % db)[0][0])
        row = self.query('''SELECT coalesce(sum(committed), 0), coalesce(sum(rolled_back), 0),
                                   coalesce(sum(failed), 0), coalesce(sum(abandoned), 0),
                                   coalesce(sum(timed_out), 0), coalesce(sum(terminated), 0),
                                   coalesce(sum(blocker_terminated), 0)
                              FROM txguard._stats() WHERE dbid = %s''' % db)[0]
        dur = self.query('''SELECT coalesce(sum(transactions), 0),
                                   count(*) FILTER (WHERE max_idle > max)
                              FROM txguard._durations() WHERE dbid = %s''' % db)[0]
        return psd, [int(x) for x in row], [int(x) for x in dur]

    def check_stats(self, label):
        """All sessions are closed: outcomes counted == transactions ended."""
        if not self.wait_backends_gone():
            return
        # clean up prepared transactions a session left (it died in between)
        with self.lock:
            gids = sorted(self.gids)
            self.gids.clear()
        if gids:
            c = self.connect(self.a.db, 'fuzz_cleanup')
            self.connections += 1
            for gid in gids:
                if not c.simple("ROLLBACK PREPARED '%s'" % gid)[1]:
                    self.prepared_finished += 1
            c.close()
            self.wait_backends_gone()
        end = time.monotonic() + 3.0
        while True:
            psd, txg, dur = self.stats()
            dpsd = psd - self.baseline[0]
            dtxg = [x - y for x, y in zip(txg, self.baseline[1])]
            adjust = self.a.startup_xacts * self.connections + \
                self.a.prepared_xacts * self.prepared_finished + \
                self.failed_proc_commits
            expect = dpsd - adjust
            if sum(dtxg) == expect or time.monotonic() > end:
                break
            time.sleep(0.2)
        if sum(dtxg) != expect:
            self.fail('stats', '%s: txguard.stats outcomes grew by %d (committed %d, '
                      'rolled_back %d, failed %d, abandoned %d, timed_out %d, terminated %d, '
                      'blocker_terminated %d) but pg_stat_database xact_commit + xact_rollback '
                      'by %d, of which %d for %d connection starts, %d finished prepared '
                      'transactions and %d failed procedure COMMITs: %d transactions %s' % (
                          label, sum(dtxg), *dtxg, dpsd, adjust, self.connections,
                          self.prepared_finished, self.failed_proc_commits,
                          abs(expect - sum(dtxg)),
                          'not counted' if expect > sum(dtxg) else 'counted twice'))
        else:
            print('stats %s: %d transactions ended, outcomes %s' % (label, expect, dtxg),
                  flush=True)
        if dur[0] - self.baseline[2] != sum(dtxg):
            self.fail('stats', '%s: txguard.durations counted %d transactions, the outcomes %d'
                      % (label, dur[0] - self.baseline[2], sum(dtxg)))
        if dur[1] != 0:
            self.fail('stats', '%s: %d keys of txguard.durations have a max_idle longer than '
                      'their longest transaction' % (label, dur[1]))
        self.baseline = (psd, txg, dur[0])
        self.connections = 0
        self.prepared_finished = 0
        self.failed_proc_commits = 0
        with self.lock:
            self.orphans.clear()

    # -- the sessions --
    def run_session(self, s):
        g = Grammar(s)
        while not self.stop.is_set():
            if self.pause_req.is_set():
                if s.conn:
                    s.conn.close(terminate=True)
                    s.conn = None
                with self.lock:
                    self.parked += 1
                self.resume.wait()
                continue
            try:
                if s.conn is None or s.conn.dead:
                    if s.conn is not None:
                        self.orphan(s)
                    s.reset_model()
                    with s.lock:
                        s.session_limit = 0
                        s.session_since = time.monotonic()
                        s.pipe_open = s.pipe_error = s.pipe_block = False
                        s.quiet = False
                    s.large_objects = []
                    s.conn = self.connect(self.a.db, 'fuzz_%d' % s.idx)
                    with self.lock:
                        self.connections += 1
                    s.connections += 1
                    s.set_quiet()
                    if g.r.random() < 0.7:
                        act_set(s, g)
                s.steps += 1
                if g.r.random() < self.a.big_commit_rate:
                    f = act_big_commit
                else:
                    f = g.pick([(w, (lambda f=f: f)) for w, f in
                                (self.acts_idle if s.status == 'I' else self.acts_xact)])
                with self.lock:
                    self.actions[f.__name__[4:]] += 1
                f(s, g)
            except ConnLost:
                if s.conn:
                    s.conn.dead = True
            except OSError as e:
                # cannot connect (the server is down: the monitor reports
                # the crash) or the socket broke
                s.conn = None
                if not self.stop.is_set():
                    time.sleep(0.2)
            except Hang as e:
                self.fail('hang', 'session %d: %s' % (s.idx, e), [s])
                s.conn.close(terminate=False)
            except Exception as e:      # a fuzzer bug must not hide as a pass
                self.fail('fuzzer', 'session %d: %r' % (s.idx, e), [s])
                import traceback
                traceback.print_exc()
                if s.conn:
                    s.conn.close(terminate=False)
                s.conn = None

    def park_all(self, timeout=60.0):
        self.resume.clear()
        with self.lock:
            self.parked = 0
        self.pause_req.set()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if self.parked == len(self.sessions):
                    return True
            try:
                self.check_once()
            except (ConnLost, Hang, OSError):
                return False
            time.sleep(0.1)
        self.fail('hang', 'sessions did not reach the checkpoint in %.0f s' % timeout,
                  self.sessions)
        return False

    def unpark_all(self):
        self.pause_req.clear()
        self.resume.set()

    def run(self):
        only = [x for x in self.a.actions.split(',') if x]
        self.acts_idle = [(w, f) for w, f in ACTIONS_IDLE if not only or f.__name__[4:] in only]
        self.acts_xact = [(w, f) for w, f in ACTIONS_XACT if not only or f.__name__[4:] in only] \
            or [(1, act_query)]
        if not self.acts_idle:
            raise RuntimeError('no action left by --actions %s' % self.a.actions)
        self.setup()
        self.sessions = [Session(self, i) for i in range(self.a.sessions)]
        threads = [threading.Thread(target=self.run_session, args=(s,), daemon=True)
                   for s in self.sessions]
        for t in threads:
            t.start()
        start = time.monotonic()
        secs = self.a.seconds
        cps = [start + secs * (i + 1) / (self.a.checkpoints + 1)
               for i in range(self.a.checkpoints)]
        try:
            while time.monotonic() < start + secs and not self.stop.is_set():
                if cps and time.monotonic() >= cps[0]:
                    cps.pop(0)
                    if self.park_all():
                        self.check_stats('checkpoint at %.0f s' % (time.monotonic() - start))
                    self.unpark_all()
                    continue
                self.check_once()
                time.sleep(0.05)
            if not self.stop.is_set() and self.park_all():
                self.check_stats('end')
        except (ConnLost, Hang, OSError):
            pass
        self.stop.set()
        self.unpark_all()
        for t in threads:
            t.join(timeout=READ_TIMEOUT + 5)
        return time.monotonic() - start


def main():
    env = os.environ.get
    p = argparse.ArgumentParser(description='protocol-sequence fuzzer for pg_txguard')
    p.add_argument('--seconds', type=float, default=float(env('FUZZ_SECONDS', '60')))
    p.add_argument('--seed', type=int, default=int(env('FUZZ_SEED', '1')))
    p.add_argument('--sessions', type=int, default=int(env('FUZZ_SESSIONS', '5')))
    p.add_argument('--host', default=env('PGHOST', '/tmp'))
    p.add_argument('--port', type=int, default=int(env('PGPORT', '5432')))
    p.add_argument('--user', default=env('PGUSER') or env('USER', 'postgres'))
    p.add_argument('--db', default=env('FUZZ_DB', 'fuzz'))
    p.add_argument('--monitor-db', default=env('FUZZ_MONITOR_DB', 'postgres'))
    p.add_argument('--checkpoints', type=int, default=int(env('FUZZ_CHECKPOINTS', '3')))
    p.add_argument('--tolerance', type=float, default=float(env('FUZZ_TOLERANCE', '1.0')))
    p.add_argument('--startup-xacts', type=int, default=int(env('FUZZ_STARTUP_XACTS', '1')))
    p.add_argument('--prepared-xacts', type=int, default=int(env('FUZZ_PREPARED_XACTS', '1')))
    p.add_argument('--big-commit-rate', type=float,
                   default=float(env('FUZZ_BIG_COMMIT_RATE', '0.005')))
    p.add_argument('--actions', default=env('FUZZ_ACTIONS', ''),
                   help='only these actions (comma-separated: query,multi,pipeline,portal,'
                   'parse_only,fastpath,copy,pause,set,prepare,hold,wait,lock,disconnect)')
    p.add_argument('--max-reports', type=int, default=int(env('FUZZ_MAX_REPORTS', '5')))
    a = p.parse_args()
    print('fuzz: start seed=%d seconds=%g sessions=%d socket=%s port=%d db=%s' % (
        a.seed, a.seconds, a.sessions, a.host, a.port, a.db), flush=True)
    fz = Fuzzer(a)
    try:
        took = fz.run()
    except (RuntimeError, OSError, ConnLost, Hang) as e:
        print('fuzz: setup failed: %s' % e, flush=True)
        print('fuzz: seed=%d seconds=%g steps=0 sessions=%d failures=1' % (
            a.seed, a.seconds, a.sessions))
        return 2
    if fz.kinds:
        print('fuzz: failures by kind: %s' % ', '.join(
            '%s=%d' % kv for kv in sorted(fz.kinds.items())))
    print('fuzz: actions: %s' % ', '.join('%s=%d' % kv for kv in sorted(fz.actions.items())))
    print('fuzz: errors seen: %s' % ', '.join('%s=%d' % kv for kv in fz.errors.most_common()))
    if fz.failures:
        print('fuzz: to run again: FUZZ_SEED=%d FUZZ_SESSIONS=%d FUZZ_SECONDS=%g (sessions '
              'interleave by timing, so a run is not replayed exactly: the messages '
              'above show each failing sequence)' % (a.seed, a.sessions, a.seconds))
    print('fuzz: seed=%d seconds=%.0f steps=%d sessions=%d failures=%d' % (
        a.seed, took, fz.steps, a.sessions, len(fz.failures)), flush=True)
    return 1 if fz.failures else 0


if __name__ == '__main__':
    sys.exit(main())
