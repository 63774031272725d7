/*-------------------------------------------------------------------------
 *
 * timeout.c
 *		The server-side transaction timeout: cancel the running statement,
 *		terminate the session idle in the transaction, and let a
 *		transaction past its deadline do no more work.
 *
 * The limit is the smaller non-zero of txguard.transaction_timeout (any
 * user) and txguard.max_transaction_timeout (superuser only: a cap no
 * session can lift).  The deadline is the transaction's start plus the
 * limit; SET, SET LOCAL and RESET of either setting move it at once.
 *
 * Mechanism.  One timeout reason, registered once per client backend, is
 * armed with enable_timeout_at() when a transaction starts.  Its handler
 * runs in the SIGALRM handler, so it only sets flags and the latch:
 *
 *	- when the backend is idle at the client (it has sent ReadyForQuery,
 *	  or waits for client input), it sets ProcDiePending: the only
 *	  interrupt a backend honours while it waits for its client.  The
 *	  session ends with FATAL, which rolls back and releases the locks.
 *	- otherwise it sets QueryCancelPending: the statement fails with an
 *	  ERROR, the transaction is aborted and the session survives.
 *
 * ProcessInterrupts() reports those as "canceling statement due to user
 * request" (57014) and "terminating connection due to administrator
 * command"; emit_log_hook, which sees the ErrorData before it goes to the
 * log and the client, rewrites them into this module's messages with
 * SQLSTATE 25P04 (transaction_timeout).  The report of the enforcement (a
 * LOG line and a txguard.events row) is written right after, from a
 * normal context: the abort callback for a cancel, the exit callback for
 * a termination.
 *
 * No escape.  Once the deadline has passed, every statement but ROLLBACK,
 * ROLLBACK TO SAVEPOINT and COMMIT (which then rolls back) fails with
 * 25P04; a commit by any other route fails in the pre-commit callback.  A
 * function that catches the cancel in an exception block and goes on
 * running gets its session terminated.
 *
 * Cost.  With both settings at 0 (the default) a transaction costs two
 * integer tests.  With a limit, arming and disarming go through timeout.c,
 * which (from PostgreSQL 14) leaves an earlier SIGALRM request in place
 * instead of calling setitimer() again, so back-to-back short
 * transactions cost no system call; see bench/timeout_syscalls.sh.
 *
 * Core's error recovery disables every timeout after each ERROR; the
 * timeout is re-armed at the next statement of a transaction that goes on
 * (after ROLLBACK TO SAVEPOINT).
 *
 *-------------------------------------------------------------------------
 */
#include "pg_txguard.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/elog.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

typedef enum TimeoutAction
{
	ACTION_NONE = 0,
	ACTION_CANCEL,
	ACTION_TERMINATE
} TimeoutAction;

/* how long a function that caught the cancel may take to let it go */
#define ESCAPE_GRACE_MS 500

/*
 * How long a session may stay idle after ROLLBACK TO SAVEPOINT in a
 * transaction past its deadline, to send its ROLLBACK, before it is
 * terminated.
 */
#define IDLE_GRACE_MS 1000

static TimeoutId timeout_id;
static bool timeout_registered = false;

/* the guarded transaction (mainline only) */
static bool guarding = false;
static TimestampTz xact_start = 0;
static TimestampTz deadline = 0;
static int	deadline_limit = 0;
static const char *deadline_setting = NULL;

/* shared with the timer handler */
static volatile sig_atomic_t timer_live = false;	/* handler may act */
static volatile sig_atomic_t expired = false;	/* deadline has passed */
static volatile sig_atomic_t at_client = false; /* idle, waiting for client */
static volatile sig_atomic_t idle_aborted = false;
static volatile sig_atomic_t escape_watch = false;	/* cancel was caught */
static volatile sig_atomic_t requested = ACTION_NONE;

/* an enforcement shown to the client, whose report is still to write */
static bool report_pending = false;

/* this backend's session was ended by the timeout */
static bool terminated = false;
static TxgEventData report;

static emit_log_hook_type prev_emit_log_hook = NULL;

static int
effective_limit(int timeout, int cap, const char **setting)
{
	if (timeout > 0 && (cap <= 0 || timeout <= cap))
	{
		*setting = "txguard.transaction_timeout";
		return timeout;
	}
	if (cap > 0)
	{
		*setting = "txguard.max_transaction_timeout";
		return cap;
	}
	*setting = NULL;
	return 0;
}

/*
 * A cancel we asked for can no longer apply (the transaction ended, or
 * the backend went idle): withdraw it, lest it hit the next statement.
 */
static void
withdraw_cancel(void)
{
	if (requested == ACTION_CANCEL)
	{
		requested = ACTION_NONE;
		QueryCancelPending = false;
	}
}

/* ask for the session to end at the next CHECK_FOR_INTERRUPTS */
static void
request_terminate(void)
{
	requested = ACTION_TERMINATE;
	ProcDiePending = true;
	InterruptPending = true;
	SetLatch(MyLatch);
}

/* runs inside the SIGALRM handler: flags and the latch only */
static void
transaction_timeout_handler(void)
{
	uint32		wait_event;

	if (!timer_live || MyProc == NULL || proc_exit_inprogress)
		return;					/* the transaction, or the backend, is over */
	expired = true;
	if (escape_watch)
	{
		/* a function caught the cancel and kept running */
		request_terminate();
		return;
	}
	if (idle_aborted)
		return;					/* aborted and idle: holds no locks */
	/*
	 * Waiting for the client, to read or to write, only ProcDiePending is
	 * honoured.
	 */
	wait_event = MyProc->wait_event_info;
	if (at_client || wait_event == WAIT_EVENT_CLIENT_READ ||
		wait_event == WAIT_EVENT_CLIENT_WRITE)
		request_terminate();
	else
	{
		requested = ACTION_CANCEL;
		QueryCancelPending = true;
		InterruptPending = true;
		SetLatch(MyLatch);
	}
}

/*
 * (Re)compute the deadline of the guarded transaction from the two
 * settings, and arm or disarm the timer.  A transaction past its deadline
 * keeps it: nothing can extend it any more.
 */
static void
set_deadline(int timeout, int cap)
{
	int			limit;

	if (!guarding || expired)
		return;
	limit = effective_limit(timeout, cap, &deadline_setting);
	deadline_limit = limit;
	if (limit > 0)
	{
		deadline = TimestampTzPlusMilliseconds(xact_start, limit);
		timer_live = true;
		enable_timeout_at(timeout_id, deadline);
	}
	else
	{
		deadline = 0;
		timer_live = false;
		if (get_timeout_active(timeout_id))
			disable_timeout(timeout_id, false);
	}
	txg_registry_set_deadline(deadline);
}

void
txg_timeout_backend_init(void)
{
	if (timeout_registered)
		return;
	timeout_id = RegisterTimeout(USER_TIMEOUT, transaction_timeout_handler);
	timeout_registered = true;
}

/* a transaction starts (its registry record has just been opened) */
void
txg_timeout_xact_start(void)
{
	guarding = true;
	expired = false;
	idle_aborted = false;
	escape_watch = false;
	requested = ACTION_NONE;
	xact_start = txg_registry_xact_start();

	if (txg_transaction_timeout <= 0 && txg_max_transaction_timeout <= 0)
	{
		/* the common case: no limit, nothing to arm */
		deadline = 0;
		deadline_limit = 0;
		timer_live = false;
		return;
	}
	if (!timeout_registered)
		return;
	set_deadline(txg_transaction_timeout, txg_max_transaction_timeout);
}

static bool
is_exit_statement(Node *parsetree)
{
	switch (txg_transaction_kind(parsetree))
	{
		case TRANS_STMT_ROLLBACK:
		case TRANS_STMT_ROLLBACK_TO:
		case TRANS_STMT_COMMIT:
			return true;
		default:
			return false;
	}
}

static int
ms_since(TimestampTz from)
{
	return (int) Min((GetCurrentTimestamp() - from) / 1000, PG_INT32_MAX);
}

/*
 * A statement starts ("parsetree" is its utility statement, NULL for a
 * plannable one).  Re-arm the timer after error recovery disabled it, and
 * refuse work in a transaction past its deadline.
 */
void
txg_timeout_statement(Node *parsetree, bool top_level)
{
	at_client = false;
	idle_aborted = false;
	if (!guarding || deadline == 0)
		return;

	txg_timeout_flush();

	if (!expired && !get_timeout_active(timeout_id))
	{
		if (GetCurrentTimestamp() >= deadline)
			expired = true;
		else
		{
			timer_live = true;
			enable_timeout_at(timeout_id, deadline);
		}
	}
	if (!expired)
		return;

	if (top_level && is_exit_statement(parsetree))
		return;

	if (!top_level && escape_watch)
	{
		/* the function caught our error and runs more SQL: end it */
		request_terminate();
		CHECK_FOR_INTERRUPTS();
	}

	ereport(ERROR,
			(errcode(ERRCODE_TRANSACTION_TIMEOUT),
			 errmsg("canceling statement due to transaction timeout"),
			 errdetail("The transaction has been open for %d ms, longer than its limit of %d ms, and can only be rolled back.",
					   ms_since(xact_start), deadline_limit),
			 errhint("Roll back the transaction.")));
}

/* the backend reads a statement it was sent: it no longer idles */
void
txg_timeout_busy(void)
{
	at_client = false;
	idle_aborted = false;
}

/* the backend sends ReadyForQuery with this transaction status */
void
txg_timeout_idle(char status)
{
	txg_timeout_flush();
	if (status == 'I' || !guarding)
		return;

	idle_aborted = (status == 'E');
	at_client = true;
	withdraw_cancel();			/* one that arrived too late */
	if (status == 'T' && expired && deadline != 0 && timeout_registered)
	{
		/*
		 * Idle in a live transaction past its deadline: only ROLLBACK TO
		 * SAVEPOINT leads here.  Give the client a moment to roll back,
		 * then end the session, which releases the locks.
		 */
		timer_live = true;
		enable_timeout_after(timeout_id, IDLE_GRACE_MS);
	}
}

/*
 * The guarded transaction ended.  "in_procedure": it ended inside a CALL,
 * which goes on in a new transaction at once; guard that one from now,
 * until its first statement gives it its own start time.
 */
void
txg_timeout_xact_end(bool in_procedure)
{
	txg_timeout_flush();
	if (!guarding)
		return;

	guarding = false;
	timer_live = false;
	expired = false;
	idle_aborted = false;
	escape_watch = false;
	withdraw_cancel();
	if (deadline != 0 && get_timeout_active(timeout_id))
		disable_timeout(timeout_id, false);
	deadline = 0;

	if (in_procedure && timeout_registered &&
		(txg_transaction_timeout > 0 || txg_max_transaction_timeout > 0))
	{
		guarding = true;
		xact_start = GetCurrentTimestamp();
		set_deadline(txg_transaction_timeout, txg_max_transaction_timeout);
	}
}

/*
 * A subtransaction was rolled back.  Inside a function after the deadline
 * this is an exception block catching the cancel: if the function then
 * keeps running, end the session.  (If the error is only passing through
 * on its way to the client, error recovery disables the timer first.)
 */
void
txg_timeout_subxact_abort(bool in_function)
{
	txg_timeout_flush();
	if (!in_function || !guarding || !expired || !timeout_registered)
		return;
	escape_watch = true;
	timer_live = true;
	enable_timeout_after(timeout_id, ESCAPE_GRACE_MS);
}

bool
txg_timeout_expired(void)
{
	return guarding && expired;
}

/* write the report of an enforcement the client has already seen */
void
txg_timeout_flush(void)
{
	if (!report_pending)
		return;
	report_pending = false;
	txg_event_report(&report);
}

/* the backend exits: a termination is reported from here */
void
txg_timeout_backend_exit(void)
{
	txg_timeout_flush();
	timer_live = false;
	if (timeout_registered && get_timeout_active(timeout_id))
		disable_timeout(timeout_id, false);
}

/* did the timeout end this session? */
bool
txg_timeout_terminated(void)
{
	return terminated;
}

/* pre-commit: a transaction past its deadline cannot commit */
void
txg_timeout_pre_commit(void)
{
	if (!guarding || !expired)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_TRANSACTION_TIMEOUT),
			 errmsg("cannot commit a transaction that exceeded its timeout"),
			 errdetail("The transaction has been open for %d ms, longer than its limit of %d ms.",
					   ms_since(xact_start), deadline_limit),
			 errhint("The transaction was rolled back.")));
}

void
txg_assign_transaction_timeout(int newval, void *extra)
{
	set_deadline(newval, txg_max_transaction_timeout);
}

void
txg_assign_max_transaction_timeout(int newval, void *extra)
{
	set_deadline(txg_transaction_timeout, newval);
}

/* ----------------------------------------------------------------
 * Shaping the client's error
 * ----------------------------------------------------------------
 */

static bool
message_is(ErrorData *edata, const char *message)
{
	return edata->message_id != NULL && strcmp(edata->message_id, message) == 0;
}

/*
 * Is this the error our cancel request produced?  A statement or lock
 * timeout that fired in the same interrupt is ours too when our deadline
 * came first.
 */
static bool
is_our_cancel(ErrorData *edata)
{
	if (edata->elevel != ERROR)
		return false;
	if (message_is(edata, "canceling statement due to user request"))
		return true;
	if (message_is(edata, "canceling statement due to statement timeout"))
		return get_timeout_finish_time(STATEMENT_TIMEOUT) > deadline;
	if (message_is(edata, "canceling statement due to lock timeout"))
		return get_timeout_finish_time(LOCK_TIMEOUT) > deadline;
	return false;
}

static bool
is_our_termination(ErrorData *edata)
{
	return edata->elevel == FATAL &&
		message_is(edata, "terminating connection due to administrator command");
}

static void
capture_report(TxgEventKind kind)
{
	memset(&report, 0, sizeof(report));
	report.kind = kind;
	report.event_time = GetCurrentTimestamp();
	report.limit_ms = deadline_limit;
	report.limit_name = deadline_setting;
	report.nblocking = txg_blocked_by(txg_lock_waiters(), MyProcPid,
									  report.blocking, TXG_EVENT_MAX_BLOCKING);
	report_pending = true;
}

/* give the client's error this module's SQLSTATE, message, detail and hint */
static void
shape_report(ErrorData *edata, const char *message, const char *advice)
{
	edata->sqlerrcode = ERRCODE_TRANSACTION_TIMEOUT;
	edata->message = pstrdup(message);
	edata->message_id = message;
	edata->detail = psprintf("The transaction had been open for %d ms, longer than its limit of %d ms.",
							 ms_since(xact_start), deadline_limit);
	edata->hint = psprintf("The limit is set by \"%s\". %s",
						   deadline_setting, advice);
}

static void
txg_emit_log_hook(ErrorData *edata)
{
	if (edata->elevel == FATAL && requested == ACTION_NONE)
		(void) txg_sentinel_shape_fatal(edata);
	else if (requested != ACTION_NONE && guarding)
	{
		if (requested == ACTION_CANCEL && is_our_cancel(edata))
		{
			requested = ACTION_NONE;
			capture_report(TXG_EVENT_TIMEOUT_CANCEL);
			shape_report(edata, "canceling statement due to transaction timeout",
						 "Roll back the transaction.");
		}
		else if (requested == ACTION_TERMINATE && is_our_termination(edata))
		{
			requested = ACTION_NONE;
			terminated = true;
			capture_report(TXG_EVENT_TIMEOUT_TERMINATE);
			shape_report(edata, "terminating connection due to transaction timeout",
						 "Commit or roll back transactions before it expires.");
		}
		else if (requested == ACTION_CANCEL && edata->elevel >= ERROR)
			requested = ACTION_NONE;	/* another error came first */
	}

	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/* from _PG_init */
void
txg_timeout_init(void)
{
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = txg_emit_log_hook;
}
