/*-------------------------------------------------------------------------
 *
 * pg_txguard.h
 *		Declarations shared by the files of pg_txguard.
 *
 * Each .c file owns one concern; this header is the list of what one
 * concern offers the others.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_TXGUARD_H
#define PG_TXGUARD_H

#include "compat.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "port/atomics.h"
#include "port/pg_bitutils.h"
#include "nodes/nodes.h"
#include "nodes/parsenodes.h"
#include "storage/lwlock.h"
#include "utils/elog.h"
#include "utils/guc.h"

/*
 * What the files of pg_txguard offer each other is not exported from the
 * library: calls between them are direct, with no trip through the PLT,
 * and the per-statement path is shorter for it.  (PostgreSQL builds
 * modules with -fvisibility=hidden from 16 on; this does the same on
 * every major.)  The SQL-callable functions, _PG_init and the sentinel's
 * entry point are declared outside this header and stay exported.
 */
#pragma GCC visibility push(hidden)

/*
 * What a top-level statement means for the transaction around it.  The
 * session state machine (session.c) needs no more than this of a parse
 * tree.
 */
typedef enum TxgStmtKind
{
	TXG_STMT_OTHER = 0,			/* work: counted, subject to the deadline */
	TXG_STMT_BEGIN,				/* BEGIN, START TRANSACTION */
	TXG_STMT_COMMIT,			/* COMMIT, END */
	TXG_STMT_ROLLBACK,			/* ROLLBACK, ABORT */
	TXG_STMT_ROLLBACK_TO,		/* ROLLBACK TO SAVEPOINT */
	TXG_STMT_PREPARE,			/* PREPARE TRANSACTION */
	TXG_STMT_CALL				/* CALL, DO: may commit inside */
} TxgStmtKind;

static inline TxgStmtKind
txg_statement_kind(Node *parsetree, bool *chain)
{
	*chain = false;
	if (parsetree == NULL)
		return TXG_STMT_OTHER;
	if (IsA(parsetree, CallStmt) || IsA(parsetree, DoStmt))
		return TXG_STMT_CALL;
	if (!IsA(parsetree, TransactionStmt))
		return TXG_STMT_OTHER;
	*chain = ((TransactionStmt *) parsetree)->chain;
	switch (((TransactionStmt *) parsetree)->kind)
	{
		case TRANS_STMT_BEGIN:
		case TRANS_STMT_START:
			return TXG_STMT_BEGIN;
		case TRANS_STMT_COMMIT:
			return TXG_STMT_COMMIT;
		case TRANS_STMT_ROLLBACK:
			return TXG_STMT_ROLLBACK;
		case TRANS_STMT_ROLLBACK_TO:
			return TXG_STMT_ROLLBACK_TO;
		case TRANS_STMT_PREPARE:
			return TXG_STMT_PREPARE;
		default:
			return TXG_STMT_OTHER;
	}
}

/* statements that open or close a block are neither counted nor kept */
static inline bool
txg_stmt_kind_counted(TxgStmtKind kind)
{
	switch (kind)
	{
		case TXG_STMT_BEGIN:
		case TXG_STMT_COMMIT:
		case TXG_STMT_ROLLBACK:
		case TXG_STMT_PREPARE:
			return false;
		case TXG_STMT_OTHER:
		case TXG_STMT_ROLLBACK_TO:
		case TXG_STMT_CALL:
			return true;
	}
	return true;
}

/* guc.c */
extern int	txg_track_statement_size;
extern int	txg_transaction_timeout;
extern int	txg_max_transaction_timeout;
extern int	txg_max_events;
extern bool txg_log_abandoned;
extern int	txg_log_min_duration;
extern int	txg_idle_blocker_timeout;
extern int	txg_observe_timeout;
extern int	txg_max_cached_plans;
extern int	txg_max_duration_keys;
extern void txg_watch_application_name(void);
extern void txg_define_gucs(void);

/* shmem.c */
typedef enum TxgLock
{
	TXG_LOCK_EVENTS = 0,
	TXG_LOCK_STATS,
	TXG_LOCK_COUNT
} TxgLock;

extern void txg_shmem_init_hooks(void);
extern void txg_check_loaded(void);
extern LWLock *txg_lwlock(TxgLock lock);

/* registry.c: one slot per backend, written only by its owner */
typedef enum TxgState
{
	TXG_STATE_NONE = 0,			/* not in a transaction */
	TXG_STATE_ACTIVE,
	TXG_STATE_IDLE,				/* idle in transaction */
	TXG_STATE_IDLE_ABORTED		/* idle in transaction (aborted) */
} TxgState;

extern Size txg_registry_shmem_size(void);
extern void txg_registry_shmem_init(void);
extern bool txg_registry_attached(void);
extern void txg_registry_attach_backend(void);
extern void txg_registry_detach_backend(void);
extern void txg_registry_open(TimestampTz xact_start, TimestampTz deadline,
							  const char *text, int len, bool counted);
extern void txg_registry_open_continued(TimestampTz xact_start,
										TimestampTz deadline);
extern void txg_registry_close(void);
extern void txg_registry_application_name(const char *newval);
extern void txg_registry_exit_idle(TimestampTz now);
extern void txg_registry_parse(const char *text, int len);
extern void txg_registry_statement(const char *text, int len, bool counted);
extern void txg_registry_set_state(TxgState state, bool live);
extern void txg_registry_set_deadline(TimestampTz deadline);
extern void txg_registry_set_observe_limit(int limit_ms);
extern uint64 txg_registry_xact_seq(void);
extern void txg_registry_busy(void);
/* who waits for whose locks, read once and asked about several sessions */
typedef struct TxgLockWaiters TxgLockWaiters;
extern TxgLockWaiters *txg_lock_waiters(void);
extern int	txg_blocked_by(TxgLockWaiters *waiters, int pid, int *pids, int max);
extern bool txg_waits_for_client(int procno);

/* what the registry knows of this backend's transaction, for reports */
typedef struct TxgXactInfo
{
	TimestampTz xact_start;
	int64		statements;
	const char *first;
	int			first_len;
	const char *last;
	int			last_len;
} TxgXactInfo;

extern bool txg_registry_self(TxgXactInfo *info);

/* a session idle in a transaction, for the sentinel */
typedef struct TxgIdleSession
{
	int			procno;
	int			pid;
	TimestampTz since;
} TxgIdleSession;

extern TxgIdleSession *txg_registry_idle_since(TimestampTz threshold, int *n);

/* a live transaction past its observe-only deadline, for the sentinel */
typedef struct TxgObserveDue
{
	int			procno;
	int			pid;
	TimestampTz xact_start;
	int			limit_ms;
	uint64		xact_seq;
} TxgObserveDue;

extern TxgObserveDue *txg_registry_observe_due(TimestampTz now, int *n,
											   TimestampTz *next);
extern bool txg_registry_still_idle(int procno, int pid, TimestampTz since);

/* events.c: ring buffer of recent events, and the log line of each */
typedef enum TxgEventKind
{
	TXG_EVENT_TIMEOUT_CANCEL,
	TXG_EVENT_TIMEOUT_TERMINATE,
	TXG_EVENT_ABANDONED,
	TXG_EVENT_IDLE_BLOCKER_TERMINATE,
	TXG_EVENT_TIMEOUT_OBSERVED
} TxgEventKind;

#define TXG_EVENT_MAX_BLOCKING 32

typedef struct TxgEventData
{
	TxgEventKind kind;
	TimestampTz event_time;
	int			limit_ms;		/* the limit enforced, or 0 */
	const char *limit_name;		/* the setting that set it, or NULL */
	int			nblocking;
	int			blocking[TXG_EVENT_MAX_BLOCKING];
	bool		no_log;			/* record the event, but write no LOG line */
} TxgEventData;

extern Size txg_events_shmem_size(void);
extern void txg_events_shmem_init(void);
/* the session an event is about, as its log line and event name it */
typedef struct TxgSessionId
{
	int			pid;
	Oid			dbid;
	Oid			userid;			/* the role that logged in */
	const char *dbname;
	const char *username;
	const char *appname;
	const char *client_addr;	/* "" for a Unix socket */
} TxgSessionId;

extern void txg_event_report(TxgEventData *event);
extern void txg_event_report_with(TxgEventData *event, const TxgXactInfo *xact);
extern void txg_event_report_for(TxgEventData *event, const TxgSessionId *who,
								 const TxgXactInfo *xact);
extern void txg_client_address(char *buf, size_t size);
extern bool txg_registry_describe(int procno, int pid, uint64 seq,
								  TxgSessionId *who, TxgXactInfo *xact);
extern void txg_log_transaction(const char *event, const char *outcome,
								TimestampTz end);

/* stats.c: per-database outcome counters */
typedef enum TxgOutcome
{
	TXG_OUTCOME_COMMITTED = 0,
	TXG_OUTCOME_ROLLED_BACK,
	TXG_OUTCOME_FAILED,
	TXG_OUTCOME_ABANDONED,
	TXG_OUTCOME_TIMED_OUT,
	TXG_OUTCOME_TERMINATED,
	TXG_OUTCOME_BLOCKER_TERMINATED,
	TXG_OUTCOME_COUNT
} TxgOutcome;

/* databases the counters' table can hold */
#define TXG_MAX_DATABASES	1024

extern Size txg_stats_shmem_size(void);
extern void txg_stats_shmem_init(void);
extern void txg_stats_attach_backend(void);
extern void txg_stats_detach_backend(void);
extern void txg_stats_forget_database(Oid dbid);
extern void txg_stats_count_observed(Oid dbid);
extern void txg_stats_recount(TxgOutcome from, TxgOutcome to);
extern void txg_stats_idle(int64 idle);
extern bool txg_stats_database_exists(Oid dbid);

/* durations.c: transaction durations per (database, role, application) */
#define TXG_DURATION_BOUNDS		22
#define TXG_DURATION_BUCKETS	(TXG_DURATION_BOUNDS + 1)	/* last: +Inf */
#define TXG_MAX_DURATION_KEYS	100000

typedef struct TxgDurations
{
	int64		buckets[TXG_DURATION_BUCKETS];	/* transactions per bucket */
	int64		sum;			/* of their durations, microseconds */
	int64		max;			/* the longest, microseconds */
	int64		max_idle;		/* the longest wait for the client between
								 * two statements, microseconds */
} TxgDurations;

typedef struct TxgDurationKey
{
	Oid			dbid;
	Oid			userid;			/* the role that logged in */
	char		appname[NAMEDATALEN];
	TxgDurations durations;
} TxgDurationKey;

extern PGDLLIMPORT const int64 txg_duration_bounds[TXG_DURATION_BUCKETS];
extern PGDLLIMPORT uint8 txg_duration_first_bucket[64];

/*
 * The histogram bucket of a duration of "us" microseconds: the first
 * whose bound is at least "us".  Per transaction, so without a call or a
 * search: from the duration's power of two, at most two steps.
 */
static inline int
txg_duration_bucket(int64 us)
{
	int			b;

	if (us <= txg_duration_bounds[0])
		return 0;
	b = txg_duration_first_bucket[pg_leftmost_one_pos64((uint64) us)];
	while (us > txg_duration_bounds[b])
		b++;
	return b;
}

extern void txg_durations_init(void);
extern Size txg_durations_shmem_size(void);
extern void txg_durations_shmem_init(void);
extern void txg_durations_merge(TxgDurations *to, const TxgDurations *from);
extern bool txg_durations_are_zero(const TxgDurations *d);
extern void txg_durations_add(Oid dbid, Oid userid, const char *appname,
							  const TxgDurations *d);
extern void txg_durations_forget_database(Oid dbid);
extern void txg_durations_reset(void);
extern void txg_durations_serialize(StringInfo buf);
extern const char *txg_durations_check_file(const char *buf, Size len);
extern int	txg_durations_load_file(const char *buf, bool (*exists) (Oid dbid));
extern int	txg_stats_live_durations(TxgDurationKey *out, int max);

/*
 * A backend's outcome counters and durations (stats.c), here for the
 * per-transaction count below to be inline.
 */
typedef struct TxgCounts
{
	int64		n[TXG_OUTCOME_COUNT];
	int64		max_duration;	/* microseconds */
	int64		observed;		/* past txguard.observe_timeout */
} TxgCounts;

/*
 * A backend's slot.  Its durations are those of its current key: its
 * database, login role, and application_name (copied here when it
 * changes).  Their longest is folded into counts.max_duration when they
 * are handed over, so that a transaction's end updates one maximum.
 */
typedef struct TxgBackendCounts
{
	uint32		changecount;
	uint64		generation;
	Oid			dbid;
	TxgCounts	counts;
	Oid			userid;
	char		appname[NAMEDATALEN];
	TxgDurations durations;
} TxgBackendCounts;

extern PGDLLIMPORT TxgBackendCounts *txg_my_counts;
extern PGDLLIMPORT pg_atomic_uint64 *txg_stats_generation;
extern void txg_stats_application_name(const char *newval);
extern void txg_stats_new_generation(TxgBackendCounts *c, uint64 generation);

/*
 * Start a write of a backend's own counter slot: counts of an older
 * generation (a reset came since) start over.  No critical section:
 * nothing between this and txg_count_end can fail (see registry.c).
 */
static pg_attribute_always_inline void
txg_count_begin(TxgBackendCounts *c)
{
	uint64		generation = pg_atomic_read_u64(txg_stats_generation);

	c->changecount++;
	pg_write_barrier();
	if (unlikely(c->generation != generation))
		txg_stats_new_generation(c, generation);
}

static pg_attribute_always_inline void
txg_count_end(TxgBackendCounts *c)
{
	pg_write_barrier();
	c->changecount++;
}

/*
 * Count a transaction's outcome and its duration in the backend's own
 * slot: the per-transaction path, inline, without a lock.  The slot's key
 * follows application_name as it is assigned (txg_stats_application_name),
 * so there is nothing to check here.  (Before the backend has its slot,
 * and after, txg_my_counts is one that nobody reads.)
 */
static pg_attribute_always_inline void
txg_stats_count(TxgOutcome outcome, int64 duration)
{
	TxgBackendCounts *c = txg_my_counts;

	txg_count_begin(c);
	c->counts.n[outcome]++;
	c->durations.buckets[txg_duration_bucket(duration)]++;
	c->durations.sum += duration;
	if (duration > c->durations.max)
		c->durations.max = duration;
	txg_count_end(c);
}

/*
 * A transaction waited "idle" microseconds for its client between two
 * statements.  Inline, and one comparison with the slot's longest wait:
 * a transaction of several statements passes here at each one.  (After a
 * reset, the slot's longest is that of before until the transaction
 * ends: a shorter wait of the transaction that spans the reset is missed.)
 */
static inline void
txg_stats_note_idle(int64 idle)
{
	if (unlikely(idle > txg_my_counts->durations.max_idle))
		txg_stats_idle(idle);
}

/* sentinel.c: the background worker that ends idle blockers */
extern void txg_sentinel_register(void);
extern Size txg_sentinel_shmem_size(void);
extern void txg_sentinel_shmem_init(void);
extern bool txg_sentinel_requested(TxgEventData *event);
extern void txg_sentinel_attach_backend(void);
extern bool txg_sentinel_shape_fatal(ErrorData *edata);

/* observe.c: txguard.observe_timeout, a limit that is only reported */
extern Size txg_observe_shmem_size(void);
extern void txg_observe_shmem_init(void);
extern void txg_assign_observe_timeout(int newval, void *extra);
extern void txg_observe_ended(TimestampTz start, TimestampTz end);
extern void txg_observe_round(void);
extern void txg_observe_sentinel_started(void);
extern long txg_observe_wait(void);

/*
 * The shortest duration at which the end of a transaction needs a look
 * (txguard.log_min_duration, txguard.observe_timeout), in microseconds;
 * PG_INT64_MAX when neither is set.  Kept by their assign hooks, so that
 * the end of a transaction costs one comparison.
 */
extern PGDLLIMPORT int64 txg_end_threshold;
extern void txg_update_end_threshold(void);

/* timeout.c: the server-side transaction timeout */
extern volatile sig_atomic_t txg_deadline_passed;
extern void txg_timeout_backend_init(void);
extern TimestampTz txg_timeout_guard(TimestampTz xact_start);
extern void txg_timeout_unguard(void);
extern void txg_timeout_rearm(void);
extern void txg_timeout_refuse(void);
extern void txg_timeout_nested(void);
extern void txg_timeout_pre_commit(void);
extern PGDLLIMPORT bool txg_timeout_report_pending;
extern void txg_timeout_flush_report(void);
extern void txg_timeout_keep_looking(void);
extern bool txg_timeout_unseen_end(void);

/* write the report of an enforcement the client has already seen, if any */
static inline void
txg_timeout_flush(void)
{
	if (unlikely(txg_timeout_report_pending))
		txg_timeout_flush_report();
}
extern void txg_timeout_backend_exit(void);
extern bool txg_timeout_terminated(void);
extern void txg_assign_transaction_timeout(int newval, void *extra);
extern void txg_assign_max_transaction_timeout(int newval, void *extra);
extern void txg_timeout_init(void);

/* session.c: the session's lifecycle, one state machine */
typedef enum TxgSessionState
{
	SS_NO_XACT = 0,				/* not in a transaction pg_txguard follows */
	SS_RUNNING,					/* working in a live transaction */
	SS_IDLE,					/* waiting for the client in a live transaction */
	SS_IDLE_SUBABORTED,			/* idle; a subtransaction failed, the
								 * transaction lives and holds its locks */
	SS_ABORTED,					/* working in an aborted transaction block */
	SS_IDLE_ABORTED,			/* idle in an aborted transaction block */
	SS_EXPIRED,					/* working in a live transaction past its
								 * deadline: only its end is accepted */
	SS_IDLE_EXPIRED,			/* idle in a live transaction past its deadline */
	SS_EXITING					/* the backend is on its way out */
} TxgSessionState;

extern PGDLLIMPORT TxgSessionState txg_session_state;
extern PGDLLIMPORT bool txg_session_watch_nested;
extern PGDLLIMPORT bool *txg_registry_busy_flag;

/*
 * The commonest case of txg_session_answer, for the message wrap to take
 * without a call: a live transaction idle at its client answers a message
 * that passes no other hook (the Bind of an INSERT, a Describe).  It is
 * the same transaction, now working; its registry slot says so with one
 * plain store (see txg_registry_busy).  Returns false for any other state.
 */
static inline bool
txg_session_answer_idle(void)
{
	if (txg_session_state != SS_IDLE &&
		txg_session_state != SS_IDLE_SUBABORTED)
		return false;
	txg_session_state = SS_RUNNING;
	*txg_registry_busy_flag = true;
	return true;
}

extern void txg_session_parse(const char *text, int len, TxgStmtKind kind);
extern void txg_session_statement(const char *text, int len,
								  TxgStmtKind kind, bool chain);
extern void txg_session_executor_statement(const char *text, int len);
extern void txg_session_statement_done(bool rolls_back);
extern void txg_session_answer(bool error);
extern void txg_session_nested(void);
extern void txg_session_portal(void);
extern void txg_session_fastpath(Oid fn);
extern void txg_session_call(bool entering);
extern void txg_session_call_failed(bool at_commit);
extern void txg_session_subxact_abort(void);
extern PGDLLIMPORT bool txg_session_committing;
extern void txg_session_pre_commit_expired(void);

/*
 * Pre-commit or pre-prepare: the transaction is committing (an abort from
 * here on is a failed commit, not a rollback); past the deadline it
 * cannot (see txg_session_pre_commit_expired).  Inline: every transaction
 * passes here.
 */
static inline void
txg_session_pre_commit(void)
{
	txg_session_committing = true;
	if (unlikely(txg_deadline_passed))
		txg_session_pre_commit_expired();
}
extern void txg_session_commit(void);
extern void txg_session_abort(void);
extern void txg_session_prepare(void);
extern void txg_session_ready(char status);
extern void txg_session_exit(void);
extern bool txg_session_in_block(void);

/* hooks.c: turns what PostgreSQL tells a backend into session events */
extern void txg_hooks_init(void);
extern PGDLLIMPORT bool txg_in_client_utility;
extern void txg_hooks_nested_statement(void);

#pragma GCC visibility pop

#endif							/* PG_TXGUARD_H */
