/*-------------------------------------------------------------------------
 *
 * sentinel.c
 *		The sentinel: a background worker that terminates sessions idle in a
 *		transaction for txguard.idle_blocker_timeout or longer while they
 *		hold a lock another session waits for.
 *
 * Idle transactions that block nobody are left alone, however long they
 * sit.  Each round reads the registry (no lock) for sessions idle in a
 * transaction past the threshold; only when there is one does it look at
 * who waits for a heavyweight lock (their wait events, no lock) and, only
 * when somebody waits, ask the lock manager whom they wait for
 * (pg_blocking_pids).  It wakes every quarter of the timeout, at most
 * once a second.  It also reports transactions past their observe-only
 * deadline (observe.c).
 *
 * Everything a round does (read shared memory, ask the lock manager, send
 * a signal) works during recovery, so the worker also runs on a hot
 * standby, from the moment it is consistent.  It cannot see replay
 * conflicts: a session waiting for a lock the startup process holds has
 * no blocker in pg_blocking_pids.
 *
 * To end a blocker, the sentinel writes a request into the blocker's
 * entry of a shared array (the blocker's pid and the pids it blocks) and
 * sends it SIGTERM.  The blocker, on its way out, finds the request: its
 * emit_log_hook turns "terminating connection due to administrator
 * command" into this module's message (SQLSTATE 25P03), and its exit
 * callback records the event, the log line and the counter.  Only the
 * sentinel writes a request; the blocker only reads its own.
 *
 *-------------------------------------------------------------------------
 */
#include "pg_txguard.h"

#include <signal.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

typedef struct TxgKillRequest
{
	pg_atomic_uint32 pid;		/* the backend to end, 0 when none */
	TimestampTz idle_since;
	int			limit_ms;		/* the sentinel's limit when it decided */
	int			nblocking;
	int			blocking[TXG_EVENT_MAX_BLOCKING];
} TxgKillRequest;

typedef struct TxgSentinel
{
	int			nslots;
	TxgKillRequest requests[FLEXIBLE_ARRAY_MEMBER];
} TxgSentinel;

static TxgSentinel *sentinel = NULL;

PGDLLEXPORT void txg_sentinel_main(Datum arg);

Size
txg_sentinel_shmem_size(void)
{
	return add_size(offsetof(TxgSentinel, requests),
					mul_size(txg_max_backends(), sizeof(TxgKillRequest)));
}

void
txg_sentinel_shmem_init(void)
{
	bool		found;

	sentinel = ShmemInitStruct("pg_txguard sentinel",
							   txg_sentinel_shmem_size(), &found);
	if (!found)
	{
		int			i;

		sentinel->nslots = txg_max_backends();
		for (i = 0; i < sentinel->nslots; i++)
		{
			memset(&sentinel->requests[i], 0, sizeof(TxgKillRequest));
			pg_atomic_init_u32(&sentinel->requests[i].pid, 0);
		}
	}
}

void
txg_sentinel_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;

	/*
	 * It connects to no database and writes nothing (no WAL, no catalog), so
	 * it can run as soon as a hot standby accepts read-only sessions, which
	 * can hold locks others wait for (txguard.lock, table locks) just as on
	 * a primary.  A promotion leaves it running.
	 */
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_txguard");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "txg_sentinel_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "pg_txguard sentinel");
	snprintf(worker.bgw_type, BGW_MAXLEN, "pg_txguard sentinel");
	RegisterBackgroundWorker(&worker);
}

/* a backend starts: no request of the sentinel concerns it */
void
txg_sentinel_attach_backend(void)
{
	ProcNumber	procno = txg_my_proc_number();

	if (sentinel != NULL && procno >= 0 && procno < sentinel->nslots)
		pg_atomic_write_u32(&sentinel->requests[procno].pid, 0);
}

/*
 * In a backend on its way out: did the sentinel ask for this?  If so, fill
 * "event" for the report.
 */
bool
txg_sentinel_requested(TxgEventData *event)
{
	ProcNumber	procno = txg_my_proc_number();
	TxgKillRequest *req;

	if (sentinel == NULL || procno < 0 || procno >= sentinel->nslots)
		return false;
	req = &sentinel->requests[procno];
	if (pg_atomic_read_u32(&req->pid) != (uint32) MyProcPid)
		return false;
	pg_read_barrier();
	if (event != NULL)
	{
		memset(event, 0, sizeof(TxgEventData));
		event->kind = TXG_EVENT_IDLE_BLOCKER_TERMINATE;
		event->event_time = GetCurrentTimestamp();
		/* the sentinel's limit: this backend may not have reloaded yet */
		event->limit_ms = req->limit_ms;
		event->limit_name = "txguard.idle_blocker_timeout";
		event->nblocking = Min(req->nblocking, TXG_EVENT_MAX_BLOCKING);
		memcpy(event->blocking, req->blocking, sizeof(int) * event->nblocking);
	}
	return true;
}

/*
 * emit_log_hook's part: the FATAL of a backend the sentinel terminated
 * says why, with SQLSTATE 25P03.
 */
bool
txg_sentinel_shape_fatal(ErrorData *edata)
{
	TxgEventData event;
	StringInfoData pids;
	int			i;

	if (edata->elevel != FATAL || edata->message_id == NULL ||
		strcmp(edata->message_id, "terminating connection due to administrator command") != 0 ||
		!txg_sentinel_requested(&event))
		return false;

	initStringInfo(&pids);
	for (i = 0; i < event.nblocking; i++)
		appendStringInfo(&pids, "%s%d", i > 0 ? ", " : "", event.blocking[i]);

	edata->sqlerrcode = ERRCODE_IDLE_IN_TRANSACTION_SESSION_TIMEOUT;
	edata->message = pstrdup("terminating connection because it was idle in a transaction that blocked other sessions");
	edata->message_id = "terminating connection because it was idle in a transaction that blocked other sessions";
	edata->detail = psprintf("The session was idle in its transaction for at least %d ms while process %s waited for its locks.",
							 event.limit_ms, pids.data);
	edata->hint = pstrdup("Commit or roll back transactions before waiting on anything outside the database. The limit is set by \"txguard.idle_blocker_timeout\".");
	return true;
}

/* how long to sleep between rounds */
static long
round_interval(void)
{
	if (txg_idle_blocker_timeout <= 0)
		return 10000L;
	return Max(10L, Min(1000L, txg_idle_blocker_timeout / 4L));
}

/* one round: find idle blockers past the threshold and end them */
static void
sentinel_round(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz threshold = TimestampTzPlusMilliseconds(now, -txg_idle_blocker_timeout);
	TxgIdleSession *idle;
	TxgLockWaiters *waiters;
	int			nidle;
	int			i;

	idle = txg_registry_idle_since(threshold, &nidle);
	if (nidle == 0)
		return;					/* the usual case: nothing to ask the lock manager */
	waiters = txg_lock_waiters();
	for (i = 0; i < nidle; i++)
	{
		TxgKillRequest *req;
		int			blocking[TXG_EVENT_MAX_BLOCKING];
		int			nblocking;

		nblocking = txg_blocked_by(waiters, idle[i].pid, blocking,
								   TXG_EVENT_MAX_BLOCKING);
		if (nblocking == 0)
			continue;			/* idle, but harmless */

		/* still the same backend, still idle since then? */
		if (!txg_registry_still_idle(idle[i].procno, idle[i].pid, idle[i].since))
			continue;

		req = &sentinel->requests[idle[i].procno];
		req->idle_since = idle[i].since;
		req->limit_ms = txg_idle_blocker_timeout;
		req->nblocking = Min(nblocking, TXG_EVENT_MAX_BLOCKING);
		memcpy(req->blocking, blocking, sizeof(int) * req->nblocking);
		pg_write_barrier();
		pg_atomic_write_u32(&req->pid, (uint32) idle[i].pid);

		if (kill(idle[i].pid, SIGTERM) != 0)
			ereport(LOG,
					(errmsg("pg_txguard sentinel could not signal process %d: %m",
							idle[i].pid)));
	}
}

void
txg_sentinel_main(Datum arg)
{
	MemoryContext round_context;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* no database: this only shows the worker in pg_stat_activity */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	round_context = AllocSetContextCreate(TopMemoryContext,
										  "pg_txguard sentinel round",
										  ALLOCSET_DEFAULT_SIZES);
	txg_observe_sentinel_started();
	ereport(LOG,
			(errmsg("pg_txguard sentinel started")));

	for (;;)
	{
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(round_interval(), txg_observe_wait()),
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		{
			MemoryContext old = MemoryContextSwitchTo(round_context);

			if (txg_idle_blocker_timeout > 0)
				sentinel_round();
			txg_observe_round();
			MemoryContextSwitchTo(old);
			MemoryContextReset(round_context);
		}
	}
}
