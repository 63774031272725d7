/*-------------------------------------------------------------------------
 *
 * observe.c
 *		txguard.observe_timeout: a transaction limit that is only reported.
 *
 * A session's limit is written into its registry slot when it changes
 * (by SET, SET LOCAL, or the end of a SET LOCAL), never per transaction:
 * a live transaction's observe-only deadline is its start plus the limit
 * in force.  Past it, the transaction is reported once (one LOG line,
 * event=timeout_observed, with the fields of an enforcement; one
 * txguard.events row; one count in txguard.stats.observed) and otherwise
 * left alone.  It is independent of txguard.transaction_timeout and the
 * cap: a deadline both reach is enforced and also reported here.  A limit
 * set inside a transaction counts from the transaction's start, as
 * txguard.transaction_timeout's does.
 *
 * Two processes can see a deadline pass.  The sentinel looks at the
 * registry four times a second once any session has set the limit (the
 * first to set it wakes the sentinel), and
 * reports for sessions idle or working alike.  The backend itself checks
 * when its transaction ends, or its top level aborts (an aborted block
 * holds no locks: like the real limit, this one stops there), in case
 * that came first; that costs one comparison at the end of every
 * transaction (txg_end_threshold), nothing at its start.  Each claims the
 * report by swapping the transaction's number into the backend's entry of
 * a shared array; only the one that succeeds reports.
 *
 *-------------------------------------------------------------------------
 */
#include "pg_txguard.h"

#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* how often the sentinel looks, once any session has set the limit (ms) */
#define OBSERVE_ROUND_MS	250

typedef struct TxgObserveShared
{
	pg_atomic_uint32 in_use;	/* some session has set the limit */
	int			sentinel;		/* the sentinel's PGPROC number, or -1 */
	int			nslots;
	pg_atomic_uint64 reported[FLEXIBLE_ARRAY_MEMBER];	/* per backend: the
														 * number of the last
														 * transaction reported */
} TxgObserveShared;

static TxgObserveShared *observe = NULL;

Size
txg_observe_shmem_size(void)
{
	return add_size(offsetof(TxgObserveShared, reported),
					mul_size(txg_max_backends(), sizeof(pg_atomic_uint64)));
}

/* called from shmem_startup_hook, under AddinShmemInitLock */
void
txg_observe_shmem_init(void)
{
	bool		found;
	int			i;

	observe = ShmemInitStruct("pg_txguard observe", txg_observe_shmem_size(),
							  &found);
	if (!found)
	{
		pg_atomic_init_u32(&observe->in_use, 0);
		observe->sentinel = -1;
		observe->nslots = txg_max_backends();
		for (i = 0; i < observe->nslots; i++)
			pg_atomic_init_u64(&observe->reported[i], 0);
		/* set in postgresql.conf: the postmaster's value counts too */
		if (txg_observe_timeout > 0)
			pg_atomic_write_u32(&observe->in_use, 1);
	}
}

/* the sentinel has started: backends can wake it */
void
txg_observe_sentinel_started(void)
{
	if (observe != NULL)
		observe->sentinel = txg_my_proc_number();
}

/*
 * The first session to set the limit wakes the sentinel, which sleeps up
 * to ten seconds while nobody uses it (one SetLatch in the server's life).
 */
static void
first_use(void)
{
	uint32		unused = 0;
	int			sentinel;

	if (pg_atomic_read_u32(&observe->in_use) != 0 ||
		!pg_atomic_compare_exchange_u32(&observe->in_use, &unused, 1))
		return;
	sentinel = observe->sentinel;
	if (sentinel >= 0 && sentinel < (int) ProcGlobal->allProcCount)
		SetLatch(&GetPGProcByNumber(sentinel)->procLatch);
}

void
txg_assign_observe_timeout(int newval, void *extra)
{
	txg_observe_timeout = newval;	/* as core will, for what follows */
	txg_update_end_threshold();
	/* (the postmaster leaves shared memory alone) */
	if (newval > 0 && observe != NULL && IsUnderPostmaster)
		first_use();
	txg_registry_set_observe_limit(newval);
}

/*
 * Claim the report of transaction "seq" of the backend in slot "procno":
 * true for the one process that gets it.
 */
static bool
claim(int procno, uint64 seq)
{
	uint64		last;

	if (observe == NULL || procno < 0 || procno >= observe->nslots)
		return false;
	last = pg_atomic_read_u64(&observe->reported[procno]);
	while (last != seq)
	{
		if (pg_atomic_compare_exchange_u64(&observe->reported[procno], &last, seq))
			return true;
	}
	return false;
}

static void
fill_event(TxgEventData *event, TimestampTz when, int limit_ms,
		   TxgLockWaiters *waiters, int pid)
{
	memset(event, 0, sizeof(TxgEventData));
	event->kind = TXG_EVENT_TIMEOUT_OBSERVED;
	event->event_time = when;
	event->limit_ms = limit_ms;
	event->limit_name = "txguard.observe_timeout";
	event->nblocking = txg_blocked_by(waiters, pid, event->blocking,
									  TXG_EVENT_MAX_BLOCKING);
}

/*
 * This backend's transaction, started at "start", ends (or its top level
 * aborts) at "end": if that is past its observe-only deadline, report it,
 * unless the sentinel already has.  The registry still describes the
 * transaction.
 */
void
txg_observe_ended(TimestampTz start, TimestampTz end)
{
	TxgEventData event;

	if (txg_observe_timeout <= 0 ||
		end - start < (int64) txg_observe_timeout * 1000 ||
		!claim(txg_my_proc_number(), txg_registry_xact_seq()))
		return;
	fill_event(&event, end, txg_observe_timeout, txg_lock_waiters(), MyProcPid);
	txg_event_report(&event);
	txg_stats_count_observed(MyDatabaseId);
}

/* the earliest deadline still to come at the sentinel's last round */
static TimestampTz next_deadline = 0;

/*
 * The sentinel's round: report the live transactions past their deadline
 * that nobody has reported yet.
 */
void
txg_observe_round(void)
{
	TimestampTz now;
	TxgObserveDue *due;
	TxgLockWaiters *waiters = NULL;
	int			n;
	int			i;

	if (observe == NULL || pg_atomic_read_u32(&observe->in_use) == 0)
		return;
	now = GetCurrentTimestamp();
	due = txg_registry_observe_due(now, &n, &next_deadline);
	for (i = 0; i < n; i++)
	{
		TxgSessionId who;
		TxgXactInfo xact;
		TxgEventData event;

		if (pg_atomic_read_u64(&observe->reported[due[i].procno]) == due[i].xact_seq)
			continue;			/* reported already */
		/* copy it first: if it ends meanwhile, it still passed its deadline */
		if (!txg_registry_describe(due[i].procno, due[i].pid, due[i].xact_seq,
								   &who, &xact))
			continue;
		if (!claim(due[i].procno, due[i].xact_seq))
			continue;
		if (waiters == NULL)
			waiters = txg_lock_waiters();
		fill_event(&event, now, due[i].limit_ms, waiters, due[i].pid);
		txg_event_report_for(&event, &who, &xact);
		txg_stats_count_observed(who.dbid);
	}
}

/* how long the sentinel may sleep before its next observe round (ms) */
long
txg_observe_wait(void)
{
	long		wait = OBSERVE_ROUND_MS;

	if (observe == NULL || pg_atomic_read_u32(&observe->in_use) == 0)
		return LONG_MAX;
	if (next_deadline != 0)
	{
		long		until = (long) ((next_deadline - GetCurrentTimestamp()) / 1000) + 1;

		wait = Max(1L, Min(wait, until));
	}
	return wait;
}
