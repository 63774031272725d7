/*-------------------------------------------------------------------------
 *
 * registry.c
 *		The registry of open transactions: one shared-memory slot per
 *		backend, and the function behind the txguard.transactions view.
 *
 * Slots are indexed by the backend's position in ProcGlobal->allProcs (its
 * ProcNumber), so a backend finds its own slot without a lookup.  Only the
 * owning backend writes its slot, and it takes no lock to do so: like
 * PgBackendStatus's st_changecount, every write is bracketed by two
 * increments of the slot's changecount (odd while a write is in progress),
 * with write barriers in between.  Readers copy the slot and retry until they saw the same even
 * count before and after the copy.  Writes happen inside a critical
 * section, so an error can never leave a slot half written.
 *
 * Statement texts live in a separate area, two buffers of
 * txguard.track_statement_size bytes per slot (first and latest statement).
 * When a transaction has run only one statement, the first buffer serves
 * as the latest too, which saves a copy for every single-statement
 * transaction.
 *
 * The slot of a backend that exits is cleared by its exit callback; after
 * a crash the postmaster creates shared memory anew and every slot starts
 * empty.
 *
 *-------------------------------------------------------------------------
 */
#include "pg_txguard.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/libpq-be.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"

#include "srf.h"

typedef struct TxgSlot
{
	uint32		changecount;	/* odd while the owner writes */
	int			pid;			/* 0 when no backend owns the slot */
	Oid			dbid;
	Oid			userid;			/* the role that logged in */
	bool		in_xact;		/* the fields below are valid */
	bool		live;			/* the top level is not aborted */
	bool		busy;			/* shown idle, but answering a message: see
								 * txg_registry_busy */
	TxgState	state;
	TimestampTz xact_start;
	TimestampTz state_since;
	TimestampTz deadline;		/* 0 when no timeout applies */
	int			observe_limit;	/* txguard.observe_timeout (ms), or 0 */
	uint64		xact_seq;		/* the backend's transactions, numbered while
								 * observe_limit is set */
	int64		statements;
	int			first_len;		/* may be set before the first statement
								 * runs: the one a Parse analysed */
	int			last_len;
	char	   *first;			/* track_statement_size bytes each */
	char	   *last;
	/* who the session is, for reports made by others (the sentinel) */
	char		dbname[NAMEDATALEN];
	char		username[NAMEDATALEN];
	char		appname[NAMEDATALEN];	/* application_name, copied as it
										 * is assigned */
	char		client_addr[64];
} TxgSlot;

typedef struct TxgRegistry
{
	int			nslots;
	int			text_size;		/* txguard.track_statement_size at start */
	TxgSlot		slots[FLEXIBLE_ARRAY_MEMBER];
} TxgRegistry;

static TxgRegistry *registry = NULL;

/* this backend's slot, once attached */
static TxgSlot *MySlot = NULL;

/* this backend's transactions, numbered while it has an observe limit */
static uint64 xact_seq = 0;

/*
 * The next number: unique across the backends that take the same slot in
 * turn (the number of the last transaction reported for a slot outlives
 * its backend: see observe.c), so the backend's pid is part of it.
 */
static inline uint64
next_xact_seq(void)
{
	xact_seq = ((uint64) (uint32) MyProcPid << 32) | ((xact_seq + 1) & 0xFFFFFFFF);
	return xact_seq;
}


/* where txg_registry_busy stores: the slot's flag, or a dummy without one */
static bool busy_dummy = false;
bool	   *txg_registry_busy_flag = &busy_dummy;

/*
 * A write of the slot is bracketed by two increments of its change count,
 * as core brackets a PgBackendStatus write.  Core also enters a critical
 * section, so that an error between the two cannot leave the count odd
 * and readers retrying for ever; no write here can raise an error (plain
 * stores and memcpy, no allocation, no CHECK_FOR_INTERRUPTS), so the
 * per-statement path does without.
 */
static inline void
slot_begin_write(TxgSlot *slot)
{
	slot->changecount++;
	pg_write_barrier();
	slot->busy = false;			/* every write says where the session is */
}

static inline void
slot_end_write(TxgSlot *slot)
{
	pg_write_barrier();
	slot->changecount++;
	Assert((slot->changecount & 1) == 0);
}

Size
txg_registry_shmem_size(void)
{
	Size		size;
	int			nslots = txg_max_backends();

	size = add_size(offsetof(TxgRegistry, slots),
					mul_size(nslots, sizeof(TxgSlot)));
	size = add_size(size, mul_size(mul_size(nslots, 2),
								   txg_track_statement_size));
	return size;
}

/* called from shmem_startup_hook, under AddinShmemInitLock */
void
txg_registry_shmem_init(void)
{
	bool		found;

	registry = ShmemInitStruct("pg_txguard registry",
							   txg_registry_shmem_size(), &found);
	if (!found)
	{
		int			nslots = txg_max_backends();
		char	   *text;
		int			i;

		registry->nslots = nslots;
		registry->text_size = txg_track_statement_size;
		text = (char *) &registry->slots[nslots];
		for (i = 0; i < nslots; i++)
		{
			TxgSlot    *slot = &registry->slots[i];

			memset(slot, 0, sizeof(TxgSlot));
			slot->first = text;
			text += registry->text_size;
			slot->last = text;
			text += registry->text_size;
		}
	}
}

/*
 * The session, not active, becomes active at "now": how long it waited
 * for its client goes to the durations (txguard.durations' max_idle).
 */
static inline void
leave_idle(TxgSlot *slot, TimestampTz now)
{
	txg_stats_note_idle(now - slot->state_since);
}

/* the session's application_name "appname" into its slot (while writing it) */
static void
copy_appname(TxgSlot *slot, const char *appname)
{
	snprintf(slot->appname, sizeof(slot->appname), "%s",
			 appname ? appname : "");
}

/*
 * application_name is being assigned "newval" (from its assign hook, see
 * guc.c): the slot's copy follows, for reports made by others.
 */
void
txg_registry_application_name(const char *newval)
{
	TxgSlot    *slot = MySlot;

	if (slot == NULL)
		return;
	slot_begin_write(slot);
	copy_appname(slot, newval);
	slot_end_write(slot);
}

bool
txg_registry_attached(void)
{
	return registry != NULL;
}

/*
 * Take this backend's slot.  Called once per client backend, from the
 * first hook that runs in it.
 */
void
txg_registry_attach_backend(void)
{
	ProcNumber	procno = txg_my_proc_number();
	TxgSlot    *slot;

	if (registry == NULL || procno < 0 || procno >= registry->nslots)
		return;
	slot = &registry->slots[procno];

	slot_begin_write(slot);
	slot->pid = MyProcPid;
	slot->dbid = MyDatabaseId;
	slot->userid = GetAuthenticatedUserId();
	slot->in_xact = false;
	slot->live = false;
	slot->state = TXG_STATE_NONE;
	slot->statements = 0;
	slot->first_len = slot->last_len = 0;
	slot->observe_limit = txg_observe_timeout;
	snprintf(slot->dbname, sizeof(slot->dbname), "%s",
			 MyProcPort ? MyProcPort->database_name : "");
	snprintf(slot->username, sizeof(slot->username), "%s",
			 MyProcPort ? MyProcPort->user_name : "");
	copy_appname(slot, application_name);
	txg_client_address(slot->client_addr, sizeof(slot->client_addr));
	slot_end_write(slot);

	MySlot = slot;
	txg_registry_busy_flag = &slot->busy;
}

/* release this backend's slot: called at backend exit */
void
txg_registry_detach_backend(void)
{
	TxgSlot    *slot = MySlot;

	if (slot == NULL)
		return;
	slot_begin_write(slot);
	slot->in_xact = false;
	slot->state = TXG_STATE_NONE;
	slot->pid = 0;
	slot_end_write(slot);
	MySlot = NULL;
	txg_registry_busy_flag = &busy_dummy;
}

/* white space as the SQL scanner knows it (scanner_isspace) */
static inline bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
		c == '\v';
}

/*
 * A statement's text as recorded keeps the white space around it in its
 * query string (a statement after the first of a simple Query starts with
 * the blank after the semicolon); the readers take it away.
 */
static const char *
trimmed(const char *text, int len, int *trimmed_len)
{
	while (len > 0 && is_space(*text))
	{
		text++;
		len--;
	}
	while (len > 0 && is_space(text[len - 1]))
		len--;
	*trimmed_len = len;
	return text;
}

/*
 * A transaction's texts as readers see them, from a slot (or a copy of
 * one) with its texts at "first" and "last": trimmed, and the first
 * standing for the latest while there is one statement.
 */
static void
texts_of(const TxgSlot *s, const char *first, const char *last,
		 TxgXactInfo *info)
{
	if (s->first_len <= 0)
		return;
	info->first = trimmed(first, s->first_len, &info->first_len);
	if (s->statements > 1)
		info->last = trimmed(last, s->last_len, &info->last_len);
	else
	{
		info->last = info->first;
		info->last_len = info->first_len;
	}
}

/* number of bytes of text to keep: whole characters, at most text_size */
static inline int
clip_length(const char *text, int len)
{
	if (unlikely(len > registry->text_size))
		len = pg_mbcliplen(text, len, registry->text_size);
	return len;
}

/* what every new transaction's record says */
static pg_attribute_always_inline void
open_record(TxgSlot *slot, TimestampTz xact_start, TimestampTz deadline)
{
	slot->last_len = 0;
	slot->in_xact = true;
	slot->live = true;
	slot->state = TXG_STATE_ACTIVE;
	slot->xact_start = xact_start;
	/* active since it began: core starts it at its message's start time */
	slot->state_since = xact_start;
	slot->deadline = deadline;
	if (unlikely(slot->observe_limit > 0))
	{
		/*
		 * The sentinel may report the transaction (observe.c): it needs to
		 * tell it from the next.
		 */
		slot->xact_seq = next_xact_seq();
	}
}

/*
 * Open the record of a new transaction, active.  "text", when not NULL,
 * is the statement that opens it, counted when "counted" (one write for
 * the usual case of a transaction opened by the statement that runs in
 * it).
 */
void
txg_registry_open(TimestampTz xact_start, TimestampTz deadline,
				  const char *text, int len, bool counted)
{
	TxgSlot    *slot = MySlot;
	int			clipped = 0;

	if (slot == NULL)
		return;
	if (text != NULL)
		clipped = clip_length(text, len);
	slot_begin_write(slot);
	slot->statements = (text != NULL && counted) ? 1 : 0;
	if (text != NULL)
		memcpy(slot->first, text, clipped);
	slot->first_len = clipped;
	open_record(slot, xact_start, deadline);
	slot_end_write(slot);
}

/*
 * The same for the next transaction of a procedure that committed or
 * rolled back: the CALL, the latest statement of the transaction that
 * ended, is its first.
 */
void
txg_registry_open_continued(TimestampTz xact_start, TimestampTz deadline)
{
	TxgSlot    *slot = MySlot;

	if (slot == NULL)
		return;
	slot_begin_write(slot);
	if (slot->statements > 0)
	{
		if (slot->statements > 1)
		{
			memcpy(slot->first, slot->last, slot->last_len);
			slot->first_len = slot->last_len;
		}
		slot->statements = 1;
	}
	else
		slot->first_len = 0;
	open_record(slot, xact_start, deadline);
	slot_end_write(slot);
}

/*
 * The backend leaves with its transaction open (see txg_session_exit): if
 * it was waiting for its client, that wait ends now.
 */
void
txg_registry_exit_idle(TimestampTz now)
{
	TxgSlot    *slot = MySlot;

	if (slot != NULL && slot->in_xact && slot->state != TXG_STATE_ACTIVE)
		leave_idle(slot, now);
}

/* the transaction the slot describes has ended */
void
txg_registry_close(void)
{
	TxgSlot    *slot = MySlot;

	if (slot == NULL || !slot->in_xact)
		return;
	slot_begin_write(slot);
	slot->in_xact = false;
	slot->live = false;
	slot->state = TXG_STATE_NONE;
	slot_end_write(slot);
}

/*
 * A client statement was analysed: the session is active.  "text", when
 * not NULL, is kept as the statement that opened the transaction if none
 * is known yet.
 */
void
txg_registry_parse(const char *text, int len)
{
	TxgSlot    *slot = MySlot;
	int			clipped = 0;
	bool		keep;

	if (slot == NULL || !slot->in_xact)
		return;
	keep = text != NULL && slot->statements == 0 && slot->first_len == 0;
	if (slot->state == TXG_STATE_ACTIVE && !keep)
		return;
	if (keep)
		clipped = clip_length(text, len);
	slot_begin_write(slot);
	if (slot->state != TXG_STATE_ACTIVE)
	{
		TimestampTz now = GetCurrentStatementStartTimestamp();

		leave_idle(slot, now);
		slot->state = TXG_STATE_ACTIVE;
		slot->state_since = now;
	}
	if (keep)
	{
		memcpy(slot->first, text, clipped);
		slot->first_len = clipped;
	}
	slot_end_write(slot);
}

/*
 * A client statement starts: the session is active.  "counted" is false
 * for the statements that open or close a transaction block (BEGIN,
 * COMMIT, ...), which are neither counted nor kept as text.
 */
void
txg_registry_statement(const char *text, int len, bool counted)
{
	TxgSlot    *slot = MySlot;
	int			clipped = 0;

	if (slot == NULL || !slot->in_xact)
		return;
	if (!counted && slot->state == TXG_STATE_ACTIVE)
		return;
	if (counted)
		clipped = clip_length(text, len);

	slot_begin_write(slot);
	if (slot->state != TXG_STATE_ACTIVE)
	{
		TimestampTz now = GetCurrentStatementStartTimestamp();

		leave_idle(slot, now);
		slot->state = TXG_STATE_ACTIVE;
		slot->state_since = now;
	}
	if (counted)
	{
		if (slot->statements++ == 0)
		{
			/* the text a Parse kept is this statement's, or opened it */
			if (slot->first_len == 0)
			{
				memcpy(slot->first, text, clipped);
				slot->first_len = clipped;
			}
		}
		else
		{
			memcpy(slot->last, text, clipped);
			slot->last_len = clipped;
		}
	}
	slot_end_write(slot);
}

/* the session's state changes; "live": the top level is not aborted */
static pg_noinline void
set_active(TxgSlot *slot, bool live)
{
	TimestampTz now = GetCurrentStatementStartTimestamp();

	slot_begin_write(slot);
	if (slot->state != TXG_STATE_ACTIVE)
		leave_idle(slot, now);
	slot->state = TXG_STATE_ACTIVE;
	slot->live = live;
	slot->state_since = now;
	slot_end_write(slot);
}

/*
 * Idle, and idle again: the session answered messages that ran no
 * statement (a Describe, a Close, a Bind with no Execute; see
 * txg_registry_busy), and it waits for its client once more: the wait
 * before them ended when it answered.  Otherwise (a deadline passed while
 * it waited) the same wait goes on.
 */
static pg_noinline void
idle_again(TxgSlot *slot, TxgState state, bool live)
{
	bool		answered = slot->busy;

	slot_begin_write(slot);
	if (answered)
	{
		TimestampTz now = txg_state_change_timestamp();

		leave_idle(slot, now);
		slot->state_since = now;
	}
	slot->state = state;
	slot->live = live;
	slot_end_write(slot);
}

void
txg_registry_set_state(TxgState state, bool live)
{
	TxgSlot    *slot = MySlot;

	if (slot == NULL || !slot->in_xact)
		return;
	if (state == TXG_STATE_ACTIVE)
	{
		/* a wait for the client ends: apart, to keep this path short */
		set_active(slot, live);
		return;
	}
	if (unlikely(slot->state != TXG_STATE_ACTIVE))
	{
		idle_again(slot, state, live);
		return;
	}
	slot_begin_write(slot);
	slot->state = state;
	slot->live = live;
	slot->state_since = txg_state_change_timestamp();
	slot_end_write(slot);
}

/*
 * The session answers a message (a Bind, a Describe) while its slot shows
 * it idle.  Most often a statement follows at once and writes the slot;
 * until then, a plain store is enough to keep readers from taking the
 * session for idle: they show an idle slot that is busy as active, and
 * the sentinel leaves it alone.  The next write of the slot clears it.
 */
void
txg_registry_busy(void)
{
	*txg_registry_busy_flag = true;
}

/* the deadline of the transaction the slot describes (0: none) */
void
txg_registry_set_deadline(TimestampTz deadline)
{
	TxgSlot    *slot = MySlot;

	if (slot == NULL || !slot->in_xact || slot->deadline == deadline)
		return;
	slot_begin_write(slot);
	slot->deadline = deadline;
	slot_end_write(slot);
}

/* the number of this backend's latest transaction (the slot's xact_seq) */
uint64
txg_registry_xact_seq(void)
{
	return xact_seq;
}

/*
 * txguard.observe_timeout changed (SET, SET LOCAL, its end): the limit of
 * the open transaction too, counted from its start.
 */
void
txg_registry_set_observe_limit(int limit_ms)
{
	TxgSlot    *slot = MySlot;

	if (slot == NULL || slot->observe_limit == limit_ms)
		return;
	slot_begin_write(slot);
	if (slot->observe_limit <= 0 && slot->in_xact)
		slot->xact_seq = next_xact_seq();	/* the open transaction had no number */
	slot->observe_limit = limit_ms;
	slot_end_write(slot);
}

/*
 * This backend's transaction as the registry knows it.  The texts point
 * into the backend's own slot, which only this backend writes: they stay
 * valid until its next statement.
 */
bool
txg_registry_self(TxgXactInfo *info)
{
	TxgSlot    *slot = MySlot;

	memset(info, 0, sizeof(TxgXactInfo));
	if (slot == NULL || !slot->in_xact)
		return false;
	info->xact_start = slot->xact_start;
	info->statements = slot->statements;
	texts_of(slot, slot->first, slot->last, info);
	return true;
}

/* ----------------------------------------------------------------
 * Reading
 * ----------------------------------------------------------------
 */

/* a consistent copy of a slot, with its texts */
typedef struct SlotCopy
{
	TxgSlot		slot;
	char	   *first;
	char	   *last;
} SlotCopy;

/*
 * Copy slot i into *copy (texts into the buffers copy->first/last, which
 * must hold text_size bytes).  Returns false when the slot holds no open
 * transaction.
 */
static bool
read_slot(int i, SlotCopy *copy)
{
	volatile TxgSlot *slot = &registry->slots[i];

	for (;;)
	{
		uint32		before;
		uint32		after;

		before = slot->changecount;
		pg_read_barrier();

		memcpy(&copy->slot, (TxgSlot *) slot, sizeof(TxgSlot));
		if (copy->slot.pid != 0 && copy->slot.in_xact)
		{
			copy->slot.first_len = Min(Max(copy->slot.first_len, 0),
									   registry->text_size);
			copy->slot.last_len = Min(Max(copy->slot.last_len, 0),
									  registry->text_size);
			memcpy(copy->first, slot->first, copy->slot.first_len);
			memcpy(copy->last, slot->last, copy->slot.last_len);
		}

		pg_read_barrier();
		after = slot->changecount;
		if (before == after && (before & 1) == 0)
			break;
		CHECK_FOR_INTERRUPTS();
	}
	return copy->slot.pid != 0 && copy->slot.in_xact;
}

static const char *
state_name(TxgState state)
{
	switch (state)
	{
		case TXG_STATE_ACTIVE:
			return "active";
		case TXG_STATE_IDLE:
			return "idle in transaction";
		case TXG_STATE_IDLE_ABORTED:
			return "idle in transaction (aborted)";
		case TXG_STATE_NONE:
			break;
	}
	return NULL;
}

/* is the backend in PGPROC slot "procno" blocked on its client socket? */
bool
txg_waits_for_client(int procno)
{
	uint32		wait = ((volatile PGPROC *) &ProcGlobal->allProcs[procno])->wait_event_info;

	return wait == WAIT_EVENT_CLIENT_READ || wait == WAIT_EVENT_CLIENT_WRITE;
}

/*
 * The state to show for a slot.  A backend is idle from its ReadyForQuery
 * until a hook sees its next message; between the two (parse analysis,
 * rewriting, a plan revalidated at Bind) it may already wait, for a lock
 * say.  An idle backend waits for nothing but its client: any other wait
 * event means it works.
 */
static TxgState
shown_state(TxgState state, bool busy, int procno)
{
	uint32		wait;

	if (state != TXG_STATE_IDLE && state != TXG_STATE_IDLE_ABORTED)
		return state;
	if (busy)
		return TXG_STATE_ACTIVE;
	wait = ((volatile PGPROC *) &ProcGlobal->allProcs[procno])->wait_event_info;
	if (wait == 0 || wait == WAIT_EVENT_CLIENT_READ ||
		wait == WAIT_EVENT_CLIENT_WRITE)
		return state;
	return TXG_STATE_ACTIVE;
}

/* one session waiting for a heavyweight lock, and who it waits for */
typedef struct LockWaiter
{
	int			pid;
	int			nblockers;
	int		   *blockers;
} LockWaiter;

/* every session waiting for a heavyweight lock, at one moment */
struct TxgLockWaiters
{
	int			n;
	LockWaiter *waiters;
};

/*
 * Find the backends that wait for a heavyweight lock (their wait event
 * says so; reading it takes no lock) and ask pg_blocking_pids() whom each
 * waits for.  With nobody waiting, the lock manager is not touched.
 */
TxgLockWaiters *
txg_lock_waiters(void)
{
	TxgLockWaiters *result = palloc0(sizeof(TxgLockWaiters));
	int			i;

	if (registry == NULL)
		return result;
	for (i = 0; i < registry->nslots; i++)
	{
		volatile PGPROC *proc = &ProcGlobal->allProcs[i];
		uint32		wait = proc->wait_event_info;
		int			pid = proc->pid;
		ArrayType  *arr;
		Datum	   *elems;
		int			nelems;
		LockWaiter *w;
		int			j;

		if (pid == 0 || (wait & 0xFF000000) != PG_WAIT_LOCK)
			continue;

		arr = DatumGetArrayTypeP(DirectFunctionCall1(pg_blocking_pids,
													 Int32GetDatum(pid)));
		deconstruct_array(arr, INT4OID, sizeof(int32), true, TYPALIGN_INT,
						  &elems, NULL, &nelems);
		if (nelems == 0)
			continue;

		if (result->waiters == NULL)
			result->waiters = palloc(sizeof(LockWaiter) * registry->nslots);
		w = &result->waiters[result->n++];
		w->pid = pid;
		w->nblockers = nelems;
		w->blockers = palloc(sizeof(int) * nelems);
		for (j = 0; j < nelems; j++)
			w->blockers[j] = DatumGetInt32(elems[j]);
	}
	return result;
}

/*
 * Put the pids of the sessions waiting for a lock "pid" holds into
 * "pids" (room for waiters->n), sorted; return how many there are.
 */
static int
blocked_pids(TxgLockWaiters *waiters, int pid, int *pids)
{
	int			n = 0;
	int			i;

	for (i = 0; i < waiters->n; i++)
	{
		LockWaiter *w = &waiters->waiters[i];
		int			j;

		for (j = 0; j < w->nblockers; j++)
		{
			if (w->blockers[j] == pid)
			{
				pids[n++] = w->pid;
				break;
			}
		}
	}
	/* waiters were collected in proc order; present them by pid */
	for (i = 1; i < n; i++)
	{
		int			p = pids[i];
		int			j = i - 1;

		while (j >= 0 && pids[j] > p)
		{
			pids[j + 1] = pids[j];
			j--;
		}
		pids[j + 1] = p;
	}
	return n;
}

/* the same, as an int[] Datum */
static Datum
blocked_by(TxgLockWaiters *waiters, int pid)
{
	int		   *pids = palloc(sizeof(int) * Max(waiters->n, 1));
	Datum	   *elems = palloc(sizeof(Datum) * Max(waiters->n, 1));
	int			n = blocked_pids(waiters, pid, pids);
	int			i;

	for (i = 0; i < n; i++)
		elems[i] = Int32GetDatum(pids[i]);
	return PointerGetDatum(construct_array(elems, n, INT4OID, sizeof(int32),
										   true, TYPALIGN_INT));
}

/*
 * Fill "pids" with up to "max" pids of sessions waiting for a lock "pid"
 * holds, sorted; returns how many there are in all.
 */
int
txg_blocked_by(TxgLockWaiters *waiters, int pid, int *pids, int max)
{
	int		   *all = palloc(sizeof(int) * Max(waiters->n, 1));
	int			n = blocked_pids(waiters, pid, all);

	memcpy(pids, all, sizeof(int) * Min(n, max));
	pfree(all);
	return n;
}

/* the fields of a slot the sentinel looks at, without the texts */
typedef struct SlotHeader
{
	int			pid;
	bool		in_xact;
	bool		live;
	bool		busy;
	TxgState	state;
	TimestampTz xact_start;
	TimestampTz state_since;
	int			observe_limit;
	uint64		xact_seq;
} SlotHeader;

/*
 * Read slot i's header, once: false when its owner is writing it right
 * now (the caller looks again at its next round).  Takes no lock.
 */
static bool
read_slot_header(int i, SlotHeader *h)
{
	volatile TxgSlot *slot = &registry->slots[i];
	uint32		before = slot->changecount;

	pg_read_barrier();
	h->pid = slot->pid;
	h->in_xact = slot->in_xact;
	h->live = slot->live;
	h->busy = slot->busy;
	h->state = slot->state;
	h->xact_start = slot->xact_start;
	h->state_since = slot->state_since;
	h->observe_limit = slot->observe_limit;
	h->xact_seq = slot->xact_seq;
	pg_read_barrier();
	return before == slot->changecount && (before & 1) == 0;
}

/*
 * Sessions idle in a (live) transaction since "threshold" or earlier, for
 * the sentinel.  Reads only slot headers; takes no lock.
 */
TxgIdleSession *
txg_registry_idle_since(TimestampTz threshold, int *n)
{
	TxgIdleSession *idle = NULL;
	int			count = 0;
	int			i;

	*n = 0;
	if (registry == NULL)
		return NULL;
	for (i = 0; i < registry->nslots; i++)
	{
		SlotHeader h;

		if (!read_slot_header(i, &h))
			continue;			/* changing right now: not idle */
		if (h.pid == 0 || !h.in_xact || !h.live || h.busy ||
			h.state_since > threshold ||
			(h.state != TXG_STATE_IDLE && h.state != TXG_STATE_IDLE_ABORTED))
			continue;
		/* idle as far as we know: but does it wait for its client? */
		if (!txg_waits_for_client(i))
			continue;
		if (idle == NULL)
			idle = palloc(sizeof(TxgIdleSession) * registry->nslots);
		idle[count].procno = i;
		idle[count].pid = h.pid;
		idle[count].since = h.state_since;
		count++;
	}
	*n = count;
	return idle;
}

/*
 * Is the backend in slot "procno" still "pid", idle since "since" in a
 * live transaction, and waiting for its client?
 */
bool
txg_registry_still_idle(int procno, int pid, TimestampTz since)
{
	volatile TxgSlot *slot = &registry->slots[procno];
	uint32		before = slot->changecount;
	bool		same;

	pg_read_barrier();
	same = slot->pid == pid && slot->in_xact && slot->live && !slot->busy &&
		(slot->state == TXG_STATE_IDLE ||
		 slot->state == TXG_STATE_IDLE_ABORTED) &&
		slot->state_since == since;
	pg_read_barrier();
	return same && before == slot->changecount && (before & 1) == 0 &&
		txg_waits_for_client(procno);
}

/* may the current user see the statements of sessions of "userid"? */
static bool
can_see_statements(Oid userid)
{
	return has_privs_of_role(GetUserId(), userid) ||
		has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);
}

#define TRANSACTIONS_COLS 13

PG_FUNCTION_INFO_V1(txguard_transactions);

/*
 * txguard._transactions(): one row per backend inside a transaction.  The
 * txguard.transactions view adds database, role and client columns.
 */
Datum
txguard_transactions(PG_FUNCTION_ARGS)
{
	TxgSrf		srf;
	SlotCopy	copy;
	TxgLockWaiters *waiters;
	TimestampTz now;
	int			i;

	txg_check_loaded();
	txg_srf_begin(fcinfo, &srf);

	copy.first = palloc(registry->text_size);
	copy.last = palloc(registry->text_size);
	waiters = txg_lock_waiters();
	now = GetCurrentTimestamp();

	for (i = 0; i < registry->nslots; i++)
	{
		Datum		values[TRANSACTIONS_COLS];
		bool		nulls[TRANSACTIONS_COLS];
		TxgSlot    *s = &copy.slot;
		bool		visible;

		if (!read_slot(i, &copy))
			continue;

		memset(nulls, 0, sizeof(nulls));
		visible = can_see_statements(s->userid);

		values[0] = Int32GetDatum(s->pid);
		values[1] = ObjectIdGetDatum(s->dbid);
		values[2] = ObjectIdGetDatum(s->userid);
		values[3] = TimestampTzGetDatum(s->xact_start);
		values[4] = DirectFunctionCall2(timestamp_mi,
										TimestampTzGetDatum(Max(now, s->xact_start)),
										TimestampTzGetDatum(s->xact_start));
		values[5] = CStringGetTextDatum(state_name(shown_state(s->state, s->busy, i)));
		values[6] = TimestampTzGetDatum(s->state_since);
		values[7] = Int64GetDatum(s->statements);
		if (visible && s->first_len > 0)
		{
			TxgXactInfo texts;

			texts_of(s, copy.first, copy.last, &texts);
			values[8] = PointerGetDatum(cstring_to_text_with_len(texts.first,
																 texts.first_len));
			values[9] = PointerGetDatum(cstring_to_text_with_len(texts.last,
																 texts.last_len));
		}
		else
			nulls[8] = nulls[9] = true;
		values[10] = BoolGetDatum(TransactionIdIsValid(txg_proc_xid(&ProcGlobal->allProcs[i])));
		values[11] = blocked_by(waiters, s->pid);
		if (s->deadline != 0)
			values[12] = TimestampTzGetDatum(s->deadline);
		else
			nulls[12] = true;

		tuplestore_putvalues(srf.tupstore, srf.tupdesc, values, nulls);
	}

	return (Datum) 0;
}

/*
 * Live transactions with an observe-only deadline (the sentinel's): those
 * whose deadline has passed by "now" are returned, the earliest deadline
 * still to come is put in *next (0 for none).
 */
TxgObserveDue *
txg_registry_observe_due(TimestampTz now, int *n, TimestampTz *next)
{
	TxgObserveDue *due = NULL;
	int			count = 0;
	int			i;

	*n = 0;
	*next = 0;
	if (registry == NULL)
		return NULL;
	for (i = 0; i < registry->nslots; i++)
	{
		SlotHeader h;
		TimestampTz observe;

		if (!read_slot_header(i, &h))
			continue;			/* changing: seen again next round */
		if (h.pid == 0 || !h.in_xact || !h.live || h.observe_limit <= 0)
			continue;
		observe = h.xact_start + (int64) h.observe_limit * 1000;
		if (observe > now)
		{
			if (*next == 0 || observe < *next)
				*next = observe;
			continue;
		}
		if (due == NULL)
			due = palloc(sizeof(TxgObserveDue) * registry->nslots);
		due[count].procno = i;
		due[count].pid = h.pid;
		due[count].xact_start = h.xact_start;
		due[count].limit_ms = h.observe_limit;
		due[count].xact_seq = h.xact_seq;
		count++;
	}
	*n = count;
	return due;
}

/*
 * The transaction number "seq" of backend "pid" in slot "procno", with
 * who the session is, for a report made by another process.  The texts
 * and names are copied into memory of the caller's.  Returns false when
 * the slot holds another transaction by now.
 */
bool
txg_registry_describe(int procno, int pid, uint64 seq,
					  TxgSessionId *who, TxgXactInfo *xact)
{
	SlotCopy	copy;
	TxgSlot    *s = &copy.slot;

	copy.first = palloc(registry->text_size);
	copy.last = palloc(registry->text_size);
	if (!read_slot(procno, &copy) || s->pid != pid || s->xact_seq != seq)
		return false;

	who->pid = s->pid;
	who->dbid = s->dbid;
	who->userid = s->userid;
	who->dbname = pstrdup(s->dbname);
	who->username = pstrdup(s->username);
	who->appname = pstrdup(s->appname);
	who->client_addr = pstrdup(s->client_addr);

	memset(xact, 0, sizeof(TxgXactInfo));
	xact->xact_start = s->xact_start;
	xact->statements = s->statements;
	texts_of(s, copy.first, copy.last, xact);
	return true;
}
