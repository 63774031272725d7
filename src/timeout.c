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
 * armed with enable_timeout_at() when a live transaction starts to be
 * followed (session.c decides when).  Its handler runs in the SIGALRM
 * handler, so it only sets flags and the latch, and it decides from what
 * the backend is doing at that moment, read from its own wait event:
 *
 *	- waiting for its client (ClientRead, ClientWrite: idle in the
 *	  transaction, a pipeline waiting for its next message, COPY FROM
 *	  STDIN waiting for data, a client that does not read): it sets
 *	  ProcDiePending, the only interrupt a backend honours there.  The
 *	  session ends with FATAL, which rolls back and releases the locks.
 *	- anything else (a statement, parse analysis, a fast-path call, a lock
 *	  wait): it sets QueryCancelPending, so the work fails with an ERROR
 *	  and the session survives; and it arms itself again for the end of
 *	  a grace period.
 *
 * At the end of the grace period (GRACE_MS after the handler found the
 * deadline passed), a transaction still live is ended by
 * terminating the session, whatever it does: a cancel can be lost (it
 * arrives as the backend starts to read its next message, which discards
 * it), caught (an exception block that goes on), or leave a live
 * transaction behind (it failed a statement inside a savepoint, and the
 * client went idle).  Aborted transaction blocks are not followed (they
 * hold no locks), and an ended transaction disarms the handler.
 *
 * ProcessInterrupts() reports those as "canceling statement due to user
 * request" (57014) and "terminating connection due to administrator
 * command"; emit_log_hook, which sees the ErrorData before it goes to the
 * log and the client, rewrites them into this module's messages with
 * SQLSTATE 25P04 (transaction_timeout).  The report of the enforcement (a
 * LOG line and a txguard.events row) is written right after, from a
 * normal context (the next session event).
 *
 * No escape.  Once the deadline has passed, session.c refuses every
 * statement, portal, fast-path call and parse but ROLLBACK, ROLLBACK TO
 * SAVEPOINT and COMMIT (which then rolls back) with 25P04; a commit by any
 * other route fails in the pre-commit callback.
 *
 * Core's error recovery disables every timeout after each ERROR; the
 * subtransaction abort that follows, and ReadyForQuery in a live
 * transaction, arm ours again.
 *
 * Transactions no hook has seen yet.  A transaction opens when a message
 * arrives, but pg_txguard follows it from the first hook its work passes:
 * the end of parse analysis, the executor, a utility statement.  Before
 * that, parse analysis (a Query, a Parse) or a cached plan's revalidation
 * (a Bind) may wait for a lock, as long as its holder keeps it.  So while
 * a limit is set, the timer is never left idle: between transactions the
 * handler arms it again one limit ahead (an idle session wakes once per
 * limit), and when it finds the backend in a transaction no hook has seen
 * (and not inside a client's utility statement, whose own next
 * transactions, VACUUM's say, are not followed), it takes that
 * transaction's start from core and enforces the limit as for a followed
 * one.  The transaction then fails with the same error, is counted as
 * timed_out, and is reported with the text of the message that opened it.
 *
 * Cost.  With both settings at 0 (the default) a transaction costs two
 * integer tests.  With a limit, the timer is not disarmed at the end of a
 * transaction, and a new transaction whose deadline comes after the one
 * the timer is armed for leaves it alone: the timer fires early, and the
 * handler, finding the deadline still ahead, arms it again.  So a stream
 * of short transactions reschedules the timer once per limit, not once
 * per transaction, and costs no system call; see
 * bench/timeout_syscalls.sh.
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
#include "mb/pg_wchar.h"
#include "tcop/tcopprot.h"
#include "utils/elog.h"
#include "utils/memutils.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

typedef enum TimeoutAction
{
	ACTION_NONE = 0,
	ACTION_CANCEL,
	ACTION_TERMINATE
} TimeoutAction;

/*
 * How long after its deadline a live transaction may still be open: time
 * for a canceled statement's client to roll back, for a function that
 * caught the cancel to let it go.  Then the session is terminated.
 */
#define GRACE_MS 500

static TimeoutId timeout_id;
static bool timeout_registered = false;

/* the limit the settings give, kept current by their assign hooks */
static int	current_limit = 0;
static const char *current_setting = NULL;

/* the followed live transaction (mainline only) */
static bool guarding = false;
static TimestampTz xact_start = 0;
static TimestampTz deadline = 0;
static int	deadline_limit = 0;
static const char *deadline_setting = NULL;

/* when a transaction past its deadline is terminated if still live */
static TimestampTz grace_until = 0;

/* when the timer was last armed for (it may have fired or been disabled) */
static TimestampTz armed_until = 0;

/* shared with the timer handler */
volatile sig_atomic_t txg_deadline_passed = false;
static volatile sig_atomic_t timer_live = false;	/* handler may act */
static volatile sig_atomic_t requested = ACTION_NONE;

/* an enforcement shown to the client, whose report is still to write */
bool		txg_timeout_report_pending = false;

/* our cancel reached the running work (and may have been caught) */
static bool cancel_delivered = false;

/*
 * The handler enforces the limit on a transaction no hook has seen (see
 * the file header); and the text of the message that opened it, copied
 * when the error is shaped, for the report.
 */
static volatile sig_atomic_t unseen = false;
static char *unseen_text = NULL;
static int	unseen_len = 0;

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
 * A cancel we asked for can no longer apply (the transaction ended):
 * withdraw it, lest it hit the next statement.
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

/* arm the timer; also from the handler (see transaction_timeout_handler) */
static void
arm(TimestampTz at)
{
	armed_until = at;
	enable_timeout_at(timeout_id, at);
}

static inline bool
waits_for_client(uint32 wait_event)
{
	return wait_event == WAIT_EVENT_CLIENT_READ ||
		wait_event == WAIT_EVENT_CLIENT_WRITE;
}

/*
 * Is the backend in a transaction that no hook has seen?  Read in the
 * handler: plain reads of values the mainline sets.
 */
static inline bool
in_unseen_transaction(void)
{
	/*
	 * A client's message is being processed (not a transaction core runs
	 * by itself while the session is idle, to deliver a notification say)
	 */
	return txg_session_state == SS_NO_XACT && !txg_in_client_utility &&
		debug_query_string != NULL &&
		txg_proc_lxid(MyProc) != InvalidLocalTransactionId;
}

/*
 * The handler, with no followed transaction: look for one no hook has
 * seen, or look again one limit from now.  Returns whether the limit of
 * such a transaction was reached (deadline and the rest set as for a
 * followed one).
 */
static bool
unseen_deadline(TimestampTz now)
{
	TimestampTz start;
	TimestampTz at;

	if (current_limit <= 0)
		return false;			/* no limit: nothing to look for */
	if (!in_unseen_transaction())
	{
		arm(TimestampTzPlusMilliseconds(now, current_limit));
		return false;
	}
	/*
	 * The message's start, which is the transaction's (core takes it from
	 * there) and is set before the transaction starts, so never one left
	 * from an earlier transaction.
	 */
	start = GetCurrentStatementStartTimestamp();
	at = TimestampTzPlusMilliseconds(start, current_limit);
	if (now < at)
	{
		arm(at);
		return false;
	}
	unseen = true;
	xact_start = start;
	deadline = at;
	deadline_limit = current_limit;
	deadline_setting = current_setting;
	timer_live = true;
	return true;
}

/*
 * Runs inside the SIGALRM handler: flags, the latch, and timeout.c's own
 * enable_timeout_at() (the handler runs only while timeout.c's state is
 * consistent, with SIGALRM blocked, as for core's repeating timeouts).
 */
static void
transaction_timeout_handler(void)
{
	if (MyProc == NULL || proc_exit_inprogress)
		return;					/* the backend is over */
	if (!timer_live &&
		!unseen_deadline(GetCurrentTimestamp()))
		return;
	if (!txg_deadline_passed)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (now < deadline)
		{
			/* armed for an earlier transaction: see set_deadline */
			arm(deadline);
			return;
		}
		txg_deadline_passed = true;

		/*
		 * The grace period runs from now, not from the deadline: a deadline
		 * moved into the past (SET LOCAL of a smaller limit) gets one too.
		 */
		grace_until = TimestampTzPlusMilliseconds(now, GRACE_MS);
		if (!waits_for_client(MyProc->wait_event_info))
		{
			requested = ACTION_CANCEL;
			QueryCancelPending = true;
			InterruptPending = true;
			SetLatch(MyLatch);
			arm(grace_until);
			return;
		}
	}
	/* at its client at the deadline, or still live after the grace */
	request_terminate();
}

/*
 * (Re)compute the deadline of the followed transaction from the two
 * settings, and arm the timer (or leave it to fire for nothing).  A
 * transaction past its deadline keeps it: nothing can extend it any more.
 */
static void
set_deadline(void)
{
	if (!guarding || txg_deadline_passed)
		return;
	deadline_limit = current_limit;
	deadline_setting = current_setting;
	if (current_limit > 0)
	{
		deadline = TimestampTzPlusMilliseconds(xact_start, current_limit);
		timer_live = true;

		/*
		 * A timer still armed for an earlier transaction's deadline, which
		 * comes first, will do: when it fires, the handler arms the timer
		 * again for this deadline.  So back-to-back transactions cost no
		 * rescheduling, and no clock read, until the earlier one is due.
		 */
		if (armed_until > deadline || !get_timeout_active(timeout_id))
			arm(deadline);
	}
	else
	{
		deadline = 0;
		timer_live = false;
	}
}

/* the settings changed: the limit, and the running transaction's deadline */
static void
settings_changed(int timeout, int cap)
{
	current_limit = effective_limit(timeout, cap, &current_setting);
	set_deadline();
	if (guarding && !txg_deadline_passed)
		txg_registry_set_deadline(deadline);
	txg_timeout_keep_looking();
}

/*
 * While a limit is set, keep the timer armed (see the file header):
 * from a limit's change, the backend's start, and an error (whose
 * recovery disabled every timeout).
 */
void
txg_timeout_keep_looking(void)
{
	TimestampTz at;

	if (current_limit <= 0 || !timeout_registered)
		return;
	at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), current_limit);
	/* armed, but for later than one limit from now (the limit was lowered) */
	if (!get_timeout_active(timeout_id) || armed_until > at)
		arm(at);
}

void
txg_timeout_backend_init(void)
{
	if (timeout_registered)
		return;
	timeout_id = RegisterTimeout(USER_TIMEOUT, transaction_timeout_handler);
	timeout_registered = true;
	txg_timeout_keep_looking();
}

/*
 * Follow a live transaction that started at "start": arm the timer.
 * Returns the deadline, 0 for none.
 */
TimestampTz
txg_timeout_guard(TimestampTz start)
{
	/* the last transaction's state was cleared when it was unguarded */
	guarding = true;
	xact_start = start;
	if (likely(current_limit <= 0) || !timeout_registered)
		return 0;				/* the common case: no limit, nothing to arm */
	if (unlikely(txg_deadline_passed))
		return deadline;		/* enforced before any hook saw it: leave the
								 * grace period's timer alone */
	deadline_limit = current_limit;
	deadline_setting = current_setting;
	deadline = TimestampTzPlusMilliseconds(start, current_limit);
	timer_live = true;
	/* see set_deadline: a timer armed for an earlier deadline will do */
	if (armed_until > deadline || !get_timeout_active(timeout_id))
		arm(deadline);
	return deadline;
}

/*
 * Stop following the transaction: it ended, or its top level aborted (an
 * aborted block holds no locks).  The timer is left to fire for nothing,
 * unless the next transaction moves it first.
 */
void
txg_timeout_unguard(void)
{
	if (!guarding && !unseen)
		return;
	guarding = false;
	unseen = false;
	if (unlikely(timer_live))
	{
		timer_live = false;
		deadline = 0;
		deadline_limit = 0;
		cancel_delivered = false;
		txg_deadline_passed = false;
		withdraw_cancel();
	}
}

/*
 * Core's error recovery disabled every timeout: arm ours again, at the
 * deadline, or at the end of the grace period once it has passed.
 */
void
txg_timeout_rearm(void)
{
	if (!timer_live || get_timeout_active(timeout_id))
		return;
	arm(txg_deadline_passed ? grace_until : deadline);
}

/* work in a transaction past its deadline: refuse it */
void
txg_timeout_refuse(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_TRANSACTION_TIMEOUT),
			 errmsg("canceling statement due to transaction timeout"),
			 errdetail("The transaction reached its limit of %d ms and can only be rolled back.",
					   deadline_limit),
			 txg_session_in_block() ? errhint("Roll back the transaction.") : 0));
}

/*
 * More SQL runs inside a function in a transaction past its deadline.  If
 * our cancel already reached the function, it caught it and goes on: end
 * the session.  Otherwise refuse the statement.
 */
void
txg_timeout_nested(void)
{
	/* consumed, not withdrawn: it reached the function, which caught it */
	if (requested == ACTION_CANCEL && !QueryCancelPending)
		cancel_delivered = true;
	if (cancel_delivered)
	{
		request_terminate();
		CHECK_FOR_INTERRUPTS();
	}
	txg_timeout_refuse();
}

/* write the report of an enforcement the client has already seen */
void
txg_timeout_flush_report(void)
{
	txg_timeout_report_pending = false;
	if (unseen)
	{
		/* no registry record: the transaction's start, and its message */
		TxgXactInfo xact;

		memset(&xact, 0, sizeof(xact));
		xact.xact_start = xact_start;
		/* its one statement started: its analysis, or its plan's check */
		xact.statements = unseen_len > 0 ? 1 : 0;
		xact.first = xact.last = unseen_text;
		xact.first_len = xact.last_len = unseen_len;
		txg_event_report_with(&report, &xact);
	}
	else
		txg_event_report(&report);
}

/*
 * A transaction no hook followed ended (session.c counts it).  Returns
 * whether the handler enforced the limit on it: it timed out; and forgets
 * it, as txg_timeout_unguard forgets a followed one.
 */
bool
txg_timeout_unseen_end(void)
{
	bool		timed_out = unseen;

	if (timed_out)
	{
		txg_timeout_flush();
		txg_timeout_unguard();
		txg_timeout_keep_looking();
	}
	return timed_out;
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
	ereport(ERROR,
			(errcode(ERRCODE_TRANSACTION_TIMEOUT),
			 errmsg("cannot commit a transaction that exceeded its timeout"),
			 errdetail("The transaction reached its limit of %d ms.",
					   deadline_limit),
			 errhint("The transaction was rolled back.")));
}

void
txg_assign_transaction_timeout(int newval, void *extra)
{
	settings_changed(newval, txg_max_transaction_timeout);
}

void
txg_assign_max_transaction_timeout(int newval, void *extra)
{
	settings_changed(txg_transaction_timeout, newval);
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
	txg_timeout_report_pending = true;
}

/*
 * give the client's error this module's SQLSTATE, message, detail and
 * hint; "advice" (or NULL) ends the hint
 */
static void
shape_report(ErrorData *edata, const char *message, const char *advice)
{
	edata->sqlerrcode = ERRCODE_TRANSACTION_TIMEOUT;
	edata->message = pstrdup(message);
	edata->message_id = message;
	edata->detail = psprintf("The transaction reached its limit of %d ms.",
							 deadline_limit);
	if (advice != NULL)
		edata->hint = psprintf("The limit is set by \"%s\". %s",
							   deadline_setting, advice);
	else
		edata->hint = psprintf("The limit is set by \"%s\".",
							   deadline_setting);
}

static void
txg_emit_log_hook(ErrorData *edata)
{
	if (edata->elevel == FATAL && requested == ACTION_NONE)
		(void) txg_sentinel_shape_fatal(edata);
	else if (requested != ACTION_NONE && (guarding || unseen))
	{
		if (unseen && unseen_text == NULL)
			unseen_text = MemoryContextAlloc(TopMemoryContext,
											 txg_track_statement_size + 1);
		if (unseen)
		{
			/* the message that opened it is running now */
			const char *text = debug_query_string ? debug_query_string : "";

			unseen_len = strlen(text);
			if (unseen_len > txg_track_statement_size)
				unseen_len = pg_mbcliplen(text, unseen_len,
										  txg_track_statement_size);
			memcpy(unseen_text, text, unseen_len);
		}
		if (requested == ACTION_CANCEL && is_our_cancel(edata))
		{
			requested = ACTION_NONE;
			cancel_delivered = true;
			capture_report(TXG_EVENT_TIMEOUT_CANCEL);
			/* an autocommit statement has nothing to roll back */
			shape_report(edata, "canceling statement due to transaction timeout",
						 txg_session_in_block() ? "Roll back the transaction." : NULL);
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
