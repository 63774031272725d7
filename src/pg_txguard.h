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
#include "nodes/nodes.h"
#include "nodes/parsenodes.h"
#include "storage/lwlock.h"
#include "utils/elog.h"

/* the kind of a transaction control statement, or -1 for any other */
static inline int
txg_transaction_kind(Node *parsetree)
{
	if (parsetree == NULL || !IsA(parsetree, TransactionStmt))
		return -1;
	return (int) ((TransactionStmt *) parsetree)->kind;
}

/* guc.c */
extern int	txg_track_statement_size;
extern int	txg_transaction_timeout;
extern int	txg_max_transaction_timeout;
extern int	txg_max_events;
extern bool txg_log_abandoned;
extern int	txg_log_min_duration;
extern int	txg_idle_blocker_timeout;
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
extern bool txg_registry_in_xact(void);
extern bool txg_registry_statement(const char *text, int len, bool counted);
extern bool txg_registry_continue(const char *text, int len);
extern bool txg_registry_idle(bool aborted);
extern void txg_registry_resume(void);
extern void txg_registry_xact_end(void);
extern void txg_registry_set_deadline(TimestampTz deadline);
extern TimestampTz txg_registry_xact_start(void);
/* who waits for whose locks, read once and asked about several sessions */
typedef struct TxgLockWaiters TxgLockWaiters;
extern TxgLockWaiters *txg_lock_waiters(void);
extern int	txg_blocked_by(TxgLockWaiters *waiters, int pid, int *pids, int max);

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
extern bool txg_registry_still_idle(int procno, int pid, TimestampTz since);

/* events.c: ring buffer of recent events, and the log line of each */
typedef enum TxgEventKind
{
	TXG_EVENT_TIMEOUT_CANCEL,
	TXG_EVENT_TIMEOUT_TERMINATE,
	TXG_EVENT_ABANDONED,
	TXG_EVENT_IDLE_BLOCKER_TERMINATE
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
extern void txg_event_report(TxgEventData *event);
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

extern Size txg_stats_shmem_size(void);
extern void txg_stats_shmem_init(void);
extern void txg_stats_attach_backend(void);
extern void txg_stats_detach_backend(void);
extern void txg_stats_count(TxgOutcome outcome, int64 duration);

/* sentinel.c: the background worker that ends idle blockers */
extern void txg_sentinel_register(void);
extern Size txg_sentinel_shmem_size(void);
extern void txg_sentinel_shmem_init(void);
extern bool txg_sentinel_requested(TxgEventData *event);
extern void txg_sentinel_attach_backend(void);
extern bool txg_sentinel_shape_fatal(ErrorData *edata);

/* timeout.c: the server-side transaction timeout */
extern void txg_timeout_backend_init(void);
extern void txg_timeout_xact_start(void);
extern void txg_timeout_statement(Node *parsetree, bool top_level);
extern void txg_timeout_busy(void);
extern void txg_timeout_idle(char status);
extern void txg_timeout_xact_end(bool in_procedure);
extern void txg_timeout_subxact_abort(bool in_function);
extern bool txg_timeout_expired(void);
extern void txg_timeout_pre_commit(void);
extern void txg_timeout_flush(void);
extern void txg_timeout_backend_exit(void);
extern bool txg_timeout_terminated(void);
extern void txg_assign_transaction_timeout(int newval, void *extra);
extern void txg_assign_max_transaction_timeout(int newval, void *extra);
extern void txg_timeout_init(void);

/* activity.c: follows the backend through statements and transactions */
extern void txg_activity_init(void);

#endif							/* PG_TXGUARD_H */
