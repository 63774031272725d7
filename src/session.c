/*-------------------------------------------------------------------------
 *
 * session.c
 *		The lifecycle of a client session, as one explicit state machine.
 *
 * This file is the one place that decides where a session stands: not in
 * a transaction, working or idle in a live transaction, in an aborted
 * one, past its deadline, or on its way out.  The hooks (hooks.c) turn
 * what PostgreSQL tells them into the events below; the registry, the
 * timeout, the outcome counters and the sentinel read the result.
 *
 * States (TxgSessionState, in pg_txguard.h):
 *
 *	SS_NO_XACT			not in a transaction pg_txguard follows
 *	SS_RUNNING			working in a live transaction
 *	SS_IDLE				ReadyForQuery 'T': waiting for the client
 *	SS_IDLE_SUBABORTED	ReadyForQuery 'E', but only a subtransaction failed:
 *						the transaction lives and holds its locks
 *	SS_ABORTED			working in an aborted transaction block (only
 *						its end, or ROLLBACK TO, reaches us)
 *	SS_IDLE_ABORTED		ReadyForQuery 'E' in an aborted block: no locks
 *	SS_EXPIRED			working in a live transaction past its deadline
 *	SS_IDLE_EXPIRED		idle in a live transaction past its deadline
 *	SS_EXITING			the backend is exiting
 *
 * Events, one function each, each switching over every state (no default
 * case, so that the compiler names a state an event forgets):
 *
 *	parse			a client statement was analysed (Query, Parse, or a
 *					plan revalidated at Bind): work starts, and a
 *					transaction opened by it is followed from now on
 *	statement		a client statement starts executing
 *	statement_done	a client's transaction statement returned (a ROLLBACK
 *					is then the client's, an AND CHAIN chains)
 *	call			a top-level CALL or DO starts or ends: its commits and
 *					rollbacks are its own
 *	portal			a portal runs (Execute, even of a portal bound before)
 *	fastpath		a FunctionCall message calls a function
 *	nested			a statement below the client's starts (deadline only)
 *	answer			the backend answers a message in a transaction (a
 *					Describe, Close or Bind that ran no statement)
 *	subxact_abort	a subtransaction was rolled back
 *	pre_commit		the transaction is about to commit or prepare
 *	commit, abort, prepare
 *					the top-level transaction ended (transaction callbacks)
 *	ready			the backend sends ReadyForQuery ('I', 'T' or 'E')
 *	exit			the backend exits
 *
 * The deadline is a flag the timer sets (txg_deadline_passed); each event
 * first folds it into the state (absorb_deadline), so the states that
 * follow a live transaction past its deadline are entered at the next
 * event.  What the timer does at the deadline depends on what the backend
 * is doing at that moment, not on this state: see timeout.c.
 *
 *     NO_XACT --parse/statement/fastpath--> RUNNING --ready T--> IDLE
 *     RUNNING --ready E--> IDLE_SUBABORTED (a savepoint failed)
 *     RUNNING --abort (error, explicit block)--> ABORTED --ready E--> IDLE_ABORTED
 *     RUNNING --commit/abort/prepare--> NO_XACT (or RUNNING: AND CHAIN, procedure)
 *     IDLE*, ABORTED* --statement, portal, fastpath--> RUNNING / ABORTED
 *     ABORTED* --COMMIT/ROLLBACK [AND CHAIN]--> NO_XACT (or RUNNING)
 *     RUNNING, IDLE* --deadline--> EXPIRED / IDLE_EXPIRED --ROLLBACK--> NO_XACT
 *     any --exit--> EXITING
 *
 * Outcomes.  Every transaction that ends in a client backend is counted
 * once, as pg_stat_database counts xact_commit and xact_rollback; a
 * transaction pg_txguard never saw work in (a syntax error, a
 * Describe-only message) is counted from its callback alone.  The outcome
 * of an aborted block is known only when it ends: failed (or timed_out)
 * when the client ends it, abandoned when it leaves.  PREPARE TRANSACTION
 * is not counted: COMMIT or ROLLBACK PREPARED runs in a transaction that
 * is.
 *
 * Nothing here takes a lock or allocates memory on the per-statement
 * path; the state is a small integer in backend-local memory.
 *
 *-------------------------------------------------------------------------
 */
#include "pg_txguard.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/regproc.h"
#include "utils/timestamp.h"

TxgSessionState txg_session_state = SS_NO_XACT;

/* the transaction followed */
static TimestampTz xact_start = 0;
static bool xact_explicit = false;	/* a block: BEGIN, or AND CHAIN */

/* the outcome of an aborted block, counted when the block ends */
static TxgOutcome block_outcome = TXG_OUTCOME_COUNT;

/* ReadyForQuery status of an idle transaction past its deadline */
static char expired_status = 'T';

/* the client statement running now, as far as its transaction cares */
typedef struct TxgRunning
{
	TxgStmtKind kind;
	bool		chain;			/* AND CHAIN */
	bool		done;			/* it returned without error */
	bool		rolls_back;		/* a COMMIT core took for ROLLBACK */
} TxgRunning;

static TxgRunning running;

/* nothing runs: one store (TXG_STMT_OTHER is 0) */
static pg_attribute_always_inline void
forget_running(void)
{
	running = (TxgRunning) {0};
}

/* inside a top-level CALL or DO: its commits and rollbacks are its own */
static bool in_call = false;

/* between pre-commit and commit: an abort now is a commit that failed */
bool		txg_session_committing = false;

/*
 * A procedure rolled back, and goes on in a new transaction.  Or did its
 * COMMIT fail?  From 14 on, core aborts a failed COMMIT inside the
 * procedure, starts a new transaction, and rethrows the error, which then
 * aborts that one too: to the transaction callbacks both look alike.  The
 * difference shows next: an error raised at the procedure's COMMIT that
 * aborts the new transaction before any statement ran in it was that
 * COMMIT failing.  Until then, statements below the client's are watched,
 * cheaply (the flag is tested where the deadline is), and the error that
 * leaves the CALL says where it was raised (txg_session_call_failed).
 */
static TxgOutcome procedure_abort = TXG_OUTCOME_COUNT;
bool		txg_session_watch_nested = false;

static const char *const outcome_names[] = {
	[TXG_OUTCOME_COMMITTED] = "committed",
	[TXG_OUTCOME_ROLLED_BACK] = "rolled_back",
	[TXG_OUTCOME_FAILED] = "failed",
	[TXG_OUTCOME_ABANDONED] = "abandoned",
	[TXG_OUTCOME_TIMED_OUT] = "timed_out",
	[TXG_OUTCOME_TERMINATED] = "terminated",
	[TXG_OUTCOME_BLOCKER_TERMINATED] = "blocker_terminated",
};

static const char *
state_name(TxgSessionState state)
{
	switch (state)
	{
		case SS_NO_XACT:
			return "no transaction";
		case SS_RUNNING:
			return "running";
		case SS_IDLE:
			return "idle in transaction";
		case SS_IDLE_SUBABORTED:
			return "idle with a failed subtransaction";
		case SS_ABORTED:
			return "running in an aborted transaction";
		case SS_IDLE_ABORTED:
			return "idle in an aborted transaction";
		case SS_EXPIRED:
			return "running past the deadline";
		case SS_IDLE_EXPIRED:
			return "idle past the deadline";
		case SS_EXITING:
			return "exiting";
	}
	return "invalid";
}

/* an event that cannot happen in the current state */
static void
unexpected(const char *event)
{
	elog(WARNING, "pg_txguard: unexpected event \"%s\" in session state \"%s\"",
		 event, state_name(txg_session_state));
}

static inline void
set_state(TxgSessionState state)
{
	txg_session_state = state;
}

/* what a transaction past its deadline still accepts */
static inline bool
is_exit(TxgStmtKind kind)
{
	switch (kind)
	{
		case TXG_STMT_COMMIT:	/* turned into a ROLLBACK by the hook */
		case TXG_STMT_ROLLBACK:
		case TXG_STMT_ROLLBACK_TO:
			return true;
		case TXG_STMT_OTHER:
		case TXG_STMT_BEGIN:
		case TXG_STMT_PREPARE:
		case TXG_STMT_CALL:
			return false;
	}
	return false;
}

/* ----------------------------------------------------------------
 * Transactions: open, count, close
 * ----------------------------------------------------------------
 */

/*
 * A transaction that started at "start" and ended at "end" lasted at
 * least one of the limits that look at the end of a transaction: log it,
 * report it as observed.
 */
static pg_noinline void
long_transaction_ended(TxgOutcome outcome, TimestampTz start, TimestampTz end)
{
	if (txg_log_min_duration >= 0 &&
		end - start >= (int64) txg_log_min_duration * 1000)
		txg_log_transaction("long_transaction", outcome_names[outcome], end);
	/* an aborted block was reported, if at all, when its top level aborted */
	if (txg_session_state != SS_ABORTED && txg_session_state != SS_IDLE_ABORTED)
		txg_observe_ended(start, end);
}

/*
 * Count the outcome of a transaction that started at "start", and log it
 * when it lasted txguard.log_min_duration or longer (while the registry
 * still describes it); report it if it passed its observe-only deadline
 * and the sentinel has not yet.
 */
static pg_attribute_always_inline void
count_outcome(TxgOutcome outcome, TimestampTz start, TimestampTz end)
{
	txg_stats_count(outcome, end - start);
	if (unlikely(end - start >= txg_end_threshold))
		long_transaction_ended(outcome, start, end);
}

/*
 * Start following a transaction that started at "start": registry record,
 * deadline.  "continued": a procedure's next transaction, whose first
 * statement is the CALL.  "text": the statement that opens it, if known
 * (see txg_registry_open).
 */
static pg_attribute_always_inline void
xact_open(TimestampTz start, bool explicit_block, bool continued,
		  const char *text, int len, bool counted)
{
	TimestampTz deadline;

	xact_start = start;
	xact_explicit = explicit_block;
	block_outcome = TXG_OUTCOME_COUNT;
	deadline = txg_timeout_guard(start);
	if (continued)
		txg_registry_open_continued(start, deadline);
	else
		txg_registry_open(start, deadline, text, len, counted);
	set_state(SS_RUNNING);
}

/*
 * Stop following the transaction; its outcome has been counted.  What the
 * client's statement was is forgotten too: between transactions nothing
 * is left to reset, so ReadyForQuery 'I' after a transaction costs nothing.
 */
static pg_attribute_always_inline void
xact_close(void)
{
	txg_timeout_unguard();
	txg_registry_close();
	block_outcome = TXG_OUTCOME_COUNT;
	xact_explicit = false;
	forget_running();
	set_state(SS_NO_XACT);
}

/*
 * When the transaction ended, in a transaction callback: the commit or
 * abort record's time when there is one (no clock read), else the clock's.
 */
static inline TimestampTz
callback_end_time(void)
{
	return GetCurrentTransactionStopTimestamp();
}

/*
 * A transaction ended with "outcome" at "end": count it, and stop
 * following it.
 */
static pg_attribute_always_inline void
xact_end(TxgOutcome outcome, TimestampTz end)
{
	txg_timeout_flush();
	count_outcome(outcome, xact_start, end);
	xact_close();
}

/*
 * A transaction we do not follow ended (in its callback): count it.  The
 * timeout may have enforced its limit before any hook saw it (see
 * timeout.c): then it timed out.
 */
static void
untracked_end(TxgOutcome outcome)
{
	if (unlikely(txg_timeout_unseen_end()) && outcome != TXG_OUTCOME_COMMITTED)
		outcome = TXG_OUTCOME_TIMED_OUT;
	count_outcome(outcome, GetCurrentTransactionStartTimestamp(),
				  callback_end_time());
}

/* work runs after a procedure's rollback: it was a rollback indeed */
static void
procedure_goes_on(void)
{
	procedure_abort = TXG_OUTCOME_COUNT;
	txg_session_watch_nested = false;
}

/* the live transaction's deadline passed: enter the matching state */
static inline void
absorb_deadline(void)
{
	if (likely(!txg_deadline_passed))
		return;
	switch (txg_session_state)
	{
		case SS_RUNNING:
			set_state(SS_EXPIRED);
			break;
		case SS_IDLE:
			expired_status = 'T';
			set_state(SS_IDLE_EXPIRED);
			txg_registry_set_state(TXG_STATE_IDLE, true);
			break;
		case SS_IDLE_SUBABORTED:
			expired_status = 'E';
			set_state(SS_IDLE_EXPIRED);
			break;
		case SS_NO_XACT:
		case SS_ABORTED:
		case SS_IDLE_ABORTED:
		case SS_EXPIRED:
		case SS_IDLE_EXPIRED:
		case SS_EXITING:
			break;
	}
}

/* ----------------------------------------------------------------
 * Work starts
 * ----------------------------------------------------------------
 */

/*
 * A client statement has been analysed: for a Query or a Parse message,
 * or a plan revalidated at Bind.  A transaction that starts here (a Parse
 * without Sync opens one, and takes locks) is followed from now on.
 */
void
txg_session_parse(const char *text, int len, TxgStmtKind kind)
{
	if (unlikely(txg_session_watch_nested))
		procedure_goes_on();
	absorb_deadline();
	switch (txg_session_state)
	{
		case SS_NO_XACT:
			/* the text opens the transaction; it is counted when it runs */
			xact_open(GetCurrentTransactionStartTimestamp(), false, false,
					  txg_stmt_kind_counted(kind) ? text : NULL, len, false);
			return;
		case SS_RUNNING:
		case SS_IDLE:
		case SS_IDLE_SUBABORTED:
			set_state(SS_RUNNING);
			break;
		case SS_EXPIRED:
		case SS_IDLE_EXPIRED:
			if (!is_exit(kind))
				txg_timeout_refuse();
			set_state(SS_EXPIRED);
			txg_registry_parse(NULL, 0);
			return;
		case SS_ABORTED:
		case SS_IDLE_ABORTED:
			/* core lets only the statements that end the block through */
			set_state(SS_ABORTED);
			txg_registry_parse(NULL, 0);
			return;
		case SS_EXITING:
			return;
	}
	txg_registry_parse(txg_stmt_kind_counted(kind) ? text : NULL, len);
}

/* an aborted block ends: ROLLBACK or COMMIT, perhaps AND CHAIN */
static void
aborted_block_end(bool chain)
{
	xact_end(block_outcome != TXG_OUTCOME_COUNT ? block_outcome :
			 TXG_OUTCOME_FAILED, GetCurrentTimestamp());
	if (chain)
		xact_open(GetCurrentTimestamp(), true, false, NULL, 0, false);
}

/* a client statement starts executing */
static pg_attribute_always_inline void
statement(const char *text, int len, TxgStmtKind kind, bool chain)
{
	if (unlikely(txg_session_watch_nested))
		procedure_goes_on();
	absorb_deadline();
	switch (txg_session_state)
	{
		case SS_NO_XACT:
			running = (TxgRunning) {.kind = kind, .chain = chain};
			xact_open(GetCurrentTransactionStartTimestamp(), false, false,
					  txg_stmt_kind_counted(kind) ? text : NULL, len, true);
			return;
		case SS_RUNNING:
		case SS_IDLE:
		case SS_IDLE_SUBABORTED:
			set_state(SS_RUNNING);
			break;
		case SS_EXPIRED:
		case SS_IDLE_EXPIRED:
			if (!is_exit(kind))
				txg_timeout_refuse();
			set_state(SS_EXPIRED);
			break;
		case SS_ABORTED:
		case SS_IDLE_ABORTED:
			switch (kind)
			{
				case TXG_STMT_COMMIT:
				case TXG_STMT_ROLLBACK:
				case TXG_STMT_PREPARE:
					/* ends the block when it returns: statement_done */
					set_state(SS_ABORTED);
					break;
				case TXG_STMT_ROLLBACK_TO:
					/* no savepoint can exist: it fails, the block stays */
					set_state(SS_ABORTED);
					break;
				case TXG_STMT_OTHER:
				case TXG_STMT_BEGIN:
				case TXG_STMT_CALL:
					unexpected("statement");
					set_state(SS_ABORTED);
					break;
			}
			break;
		case SS_EXITING:
			return;
	}
	running = (TxgRunning) {.kind = kind, .chain = chain};
	txg_registry_statement(text, len, txg_stmt_kind_counted(kind));
}

void
txg_session_statement(const char *text, int len, TxgStmtKind kind,
					  bool chain)
{
	statement(text, len, kind, chain);
}

/* the same for a statement that starts the executor: the usual kind */
void
txg_session_executor_statement(const char *text, int len)
{
	statement(text, len, TXG_STMT_OTHER, false);
}

/*
 * A client's transaction statement returned without error: a ROLLBACK
 * now really is the client's, an AND CHAIN really chains.  (ROLLBACK AND
 * CHAIN outside a block fails instead, and its transaction with it.)
 */
void
txg_session_statement_done(bool rolls_back)
{
	running.done = true;
	running.rolls_back = rolls_back;
	switch (txg_session_state)
	{
		case SS_RUNNING:
		case SS_EXPIRED:
			/* a block is one once BEGIN has returned: it may fail */
			if (running.kind == TXG_STMT_BEGIN)
				xact_explicit = true;
			break;
		case SS_ABORTED:
			switch (running.kind)
			{
				case TXG_STMT_COMMIT:
				case TXG_STMT_ROLLBACK:
				case TXG_STMT_PREPARE:
					/* the aborted block is over; core cleans it up next */
					aborted_block_end(running.chain);
					break;
				case TXG_STMT_OTHER:
				case TXG_STMT_BEGIN:
				case TXG_STMT_ROLLBACK_TO:
				case TXG_STMT_CALL:
					break;
			}
			break;
		case SS_NO_XACT:
		case SS_IDLE:
		case SS_IDLE_SUBABORTED:
		case SS_IDLE_ABORTED:
		case SS_IDLE_EXPIRED:
		case SS_EXITING:
			break;
	}
}

/*
 * The backend answers a client message: "error", with an ErrorResponse.
 *
 * Messages that run no statement (Describe, Close, Bind of a statement
 * that starts no executor) still open a transaction, and may take locks
 * while revalidating a cached plan: such a transaction is followed from
 * its first answer.  In an aborted transaction (or a failed savepoint)
 * every message but the one that ends it fails, and the session is busy
 * failing them up to the next Sync: an error is its answer.
 *
 * An error has just made core's error recovery disable every timeout; in
 * a failed savepoint nothing else follows (no subtransaction is aborted
 * again), so arm ours again here.  This runs while a message is being
 * sent: it must not fail, so it only moves the state and the timer.
 */
void
txg_session_answer(bool error)
{
	switch (txg_session_state)
	{
		case SS_NO_XACT:
			if (!error && IsTransactionState())
				xact_open(GetCurrentTransactionStartTimestamp(), false, false, NULL, 0, false);
			break;
		case SS_IDLE:
		case SS_IDLE_SUBABORTED:
			/*
			 * The same transaction, now answering a message: the message
			 * wrap most often takes this case itself.
			 */
			(void) txg_session_answer_idle();
			break;
		case SS_IDLE_EXPIRED:
			set_state(SS_EXPIRED);
			txg_registry_busy();
			break;
		case SS_IDLE_ABORTED:
			set_state(SS_ABORTED);
			txg_registry_busy();
			break;
		case SS_RUNNING:
		case SS_EXPIRED:
		case SS_ABORTED:
		case SS_EXITING:
			break;
	}
	if (error)
	{
		switch (txg_session_state)
		{
			case SS_RUNNING:
			case SS_EXPIRED:
				txg_timeout_rearm();
				break;
			case SS_NO_XACT:
			case SS_ABORTED:
			case SS_IDLE_ABORTED:
				/*
				 * Between transactions, in one no hook has seen, or in an
				 * aborted block (not followed): the timer goes on looking
				 * for transactions no hook sees (see timeout.c)
				 */
				txg_timeout_keep_looking();
				break;
			case SS_IDLE:
			case SS_IDLE_SUBABORTED:
			case SS_IDLE_EXPIRED:
			case SS_EXITING:
				break;
		}
	}
}

/*
 * A statement below the client's starts: nothing runs past the deadline;
 * and a procedure that rolled back does work again.
 */
void
txg_session_nested(void)
{
	if (txg_session_watch_nested)
		procedure_goes_on();
	absorb_deadline();
	switch (txg_session_state)
	{
		case SS_EXPIRED:
		case SS_IDLE_EXPIRED:
			txg_timeout_nested();
			break;
		case SS_NO_XACT:
		case SS_RUNNING:
		case SS_IDLE:
		case SS_IDLE_SUBABORTED:
		case SS_ABORTED:
		case SS_IDLE_ABORTED:
		case SS_EXITING:
			break;
	}
}

/*
 * A portal runs: an Execute message, perhaps for a portal bound before the
 * last Sync, which starts no statement; or any executor run below it.
 */
void
txg_session_portal(void)
{
	absorb_deadline();
	switch (txg_session_state)
	{
		case SS_RUNNING:
			break;
		case SS_IDLE:
		case SS_IDLE_SUBABORTED:
			set_state(SS_RUNNING);
			txg_registry_set_state(TXG_STATE_ACTIVE, true);
			break;
		case SS_EXPIRED:
		case SS_IDLE_EXPIRED:
			txg_timeout_refuse();
			break;
		case SS_NO_XACT:
			/* work in a transaction we do not follow (VACUUM's next ones) */
			break;
		case SS_ABORTED:
		case SS_IDLE_ABORTED:
			unexpected("portal");
			break;
		case SS_EXITING:
			break;
	}
}

/* a FunctionCall message calls function "fn" */
void
txg_session_fastpath(Oid fn)
{
	char	   *text;

	absorb_deadline();
	switch (txg_session_state)
	{
		case SS_NO_XACT:
			xact_open(GetCurrentTransactionStartTimestamp(), false, false, NULL, 0, false);
			break;
		case SS_IDLE:
		case SS_IDLE_SUBABORTED:
			set_state(SS_RUNNING);
			break;
		case SS_EXPIRED:
		case SS_IDLE_EXPIRED:
			txg_timeout_refuse();
			return;
		case SS_RUNNING:
			return;
		case SS_ABORTED:
		case SS_IDLE_ABORTED:
			/* core refuses the call before it gets here */
			unexpected("fastpath");
			return;
		case SS_EXITING:
			return;
	}
	forget_running();
	text = psprintf("fastpath function call: %s", format_procedure(fn));
	txg_registry_statement(text, strlen(text), true);
	pfree(text);
}

/* a top-level CALL or DO starts, or has returned */
void
txg_session_call(bool entering)
{
	in_call = entering;
}

/*
 * A top-level CALL or DO fails; "at_commit": the error was raised by one
 * of its COMMITs.  After a procedure's rollback (procedure_abort), only an
 * error raised at COMMIT is that COMMIT failing; any other is a failure of
 * the transaction the procedure went on in, which then counts on its own.
 */
void
txg_session_call_failed(bool at_commit)
{
	in_call = false;
	if (!at_commit && txg_session_watch_nested)
		procedure_goes_on();
}

/* ----------------------------------------------------------------
 * Transactions end
 * ----------------------------------------------------------------
 */

/*
 * A subtransaction was rolled back: ROLLBACK TO, an exception block, or
 * an error at the top level inside a savepoint.  The transaction lives
 * on; core's error recovery has disabled every timeout, so arm ours again.
 */
void
txg_session_subxact_abort(void)
{
	txg_timeout_flush();
	switch (txg_session_state)
	{
		case SS_RUNNING:
		case SS_EXPIRED:
		case SS_IDLE:
		case SS_IDLE_SUBABORTED:
		case SS_IDLE_EXPIRED:
			txg_timeout_rearm();
			break;
		case SS_NO_XACT:
		case SS_ABORTED:
		case SS_IDLE_ABORTED:
		case SS_EXITING:
			break;
	}
}

/*
 * Pre-commit or pre-prepare of a transaction past its deadline (the
 * inline txg_session_pre_commit has marked it as committing): it cannot
 * commit.
 */
void
txg_session_pre_commit_expired(void)
{
	absorb_deadline();
	switch (txg_session_state)
	{
		case SS_EXPIRED:
		case SS_IDLE_EXPIRED:
			txg_timeout_pre_commit();
			break;
		case SS_NO_XACT:
		case SS_RUNNING:
		case SS_IDLE:
		case SS_IDLE_SUBABORTED:
		case SS_ABORTED:
		case SS_IDLE_ABORTED:
		case SS_EXITING:
			break;
	}
}

/* the top-level transaction committed */
void
txg_session_commit(void)
{
	bool		chain = running.kind == TXG_STMT_COMMIT && running.chain &&
		running.done;

	txg_session_committing = false;
	if (unlikely(txg_session_watch_nested))
		procedure_goes_on();
	switch (txg_session_state)
	{
		case SS_RUNNING:
			xact_end(TXG_OUTCOME_COMMITTED, callback_end_time());
			if (in_call)
			{
				/* a procedure committed: it goes on in a new transaction */
				xact_open(GetCurrentTimestamp(), false, true, NULL, 0, false);
			}
			else if (chain)
				xact_open(GetCurrentTimestamp(), true, false, NULL, 0, false);
			break;
		case SS_NO_XACT:
			untracked_end(TXG_OUTCOME_COMMITTED);
			break;
		case SS_EXPIRED:
		case SS_IDLE:
		case SS_IDLE_SUBABORTED:
		case SS_ABORTED:
		case SS_IDLE_ABORTED:
		case SS_IDLE_EXPIRED:
			unexpected("commit");
			xact_end(TXG_OUTCOME_COMMITTED, callback_end_time());
			break;
		case SS_EXITING:
			break;
	}
}

/*
 * The top-level transaction was rolled back: by the client's ROLLBACK, by
 * a procedure's ROLLBACK, or by an error.  An error inside a transaction
 * block leaves the block in place, aborted, until the client ends it;
 * anything else ends the transaction here.
 */
void
txg_session_abort(void)
{
	bool		requested = !txg_session_committing &&
		((running.done && running.kind == TXG_STMT_ROLLBACK) || in_call);
	/*
	 * Core chains after an abort only when the block's end was a rollback:
	 * ROLLBACK, or a COMMIT it turned into one (a failed savepoint, or a
	 * COMMIT past the deadline, see hooks.c).  A COMMIT that fails, on a
	 * deferred constraint say, chains nothing.
	 */
	bool		chain = running.done && running.chain &&
		(running.kind == TXG_STMT_ROLLBACK ||
		 (running.kind == TXG_STMT_COMMIT && running.rolls_back));
	bool		expired;
	TxgOutcome	outcome;

	txg_session_committing = false;
	absorb_deadline();
	expired = txg_session_state == SS_EXPIRED ||
		txg_session_state == SS_IDLE_EXPIRED;
	outcome = expired ? TXG_OUTCOME_TIMED_OUT :
		requested ? TXG_OUTCOME_ROLLED_BACK : TXG_OUTCOME_FAILED;

	switch (txg_session_state)
	{
		case SS_RUNNING:
		case SS_EXPIRED:
		case SS_IDLE:
		case SS_IDLE_SUBABORTED:
		case SS_IDLE_EXPIRED:

			/*
			 * An idle state here: an error in a message no hook saw, a
			 * syntax error say.
			 */
			if (!requested && xact_explicit &&
				running.kind != TXG_STMT_COMMIT &&
				running.kind != TXG_STMT_PREPARE)
			{
				/* an error in a block: it stays, aborted, holding no locks */
				txg_timeout_flush();
				txg_timeout_unguard();
				/* the live part ended here, as far as the limits go */
				if (unlikely(txg_observe_timeout > 0))
					txg_observe_ended(xact_start, callback_end_time());
				block_outcome = outcome;
				set_state(SS_ABORTED);
				txg_registry_set_state(TXG_STATE_ACTIVE, false);
				break;
			}
			if (procedure_abort != TXG_OUTCOME_COUNT && !in_call)
			{
				/* the failed COMMIT of a procedure, rethrown: see above */
				if (procedure_abort == TXG_OUTCOME_ROLLED_BACK)
					txg_stats_recount(TXG_OUTCOME_ROLLED_BACK, TXG_OUTCOME_FAILED);
				procedure_abort = TXG_OUTCOME_COUNT;
				txg_session_watch_nested = false;
				xact_close();
				break;
			}
			xact_end(outcome, callback_end_time());
			if (in_call)
			{
				/* a procedure's ROLLBACK, or its failed COMMIT */
				procedure_abort = outcome;
				txg_session_watch_nested = true;
				xact_open(GetCurrentTimestamp(), false, true, NULL, 0, false);
			}
			else if (chain)
			{
				/* ROLLBACK AND CHAIN, or COMMIT AND CHAIN that rolled back */
				xact_open(GetCurrentTimestamp(), true, false, NULL, 0, false);
			}
			break;
		case SS_NO_XACT:
			untracked_end(outcome);
			break;
		case SS_ABORTED:
		case SS_IDLE_ABORTED:
			/* an aborted block is not aborted again */
			unexpected("abort");
			xact_end(outcome, callback_end_time());
			break;
		case SS_EXITING:
			break;
	}
}

/* PREPARE TRANSACTION: the outcome is decided by COMMIT/ROLLBACK PREPARED */
void
txg_session_prepare(void)
{
	switch (txg_session_state)
	{
		case SS_RUNNING:
			xact_close();
			break;
		case SS_NO_XACT:
			(void) txg_timeout_unseen_end();
			break;
		case SS_EXITING:
			break;
		case SS_EXPIRED:
		case SS_IDLE:
		case SS_IDLE_SUBABORTED:
		case SS_ABORTED:
		case SS_IDLE_ABORTED:
		case SS_IDLE_EXPIRED:
			unexpected("prepare");
			xact_close();
			break;
	}
}

/* ----------------------------------------------------------------
 * The backend waits for its client, or leaves
 * ----------------------------------------------------------------
 */

/* the backend sends ReadyForQuery with transaction status "status" */
void
txg_session_ready(char status)
{
	txg_timeout_flush();
	absorb_deadline();
	/* no statement runs any more, no procedure, no commit */
	forget_running();
	in_call = false;
	txg_session_committing = false;
	if (unlikely(txg_session_watch_nested))
		procedure_goes_on();

	switch (txg_session_state)
	{
		case SS_NO_XACT:
			if (status != 'I')
			{
				unexpected("ready");
				xact_open(GetCurrentTransactionStartTimestamp(), true, false, NULL, 0, false);
				txg_session_ready(status);
			}
			return;
		case SS_RUNNING:
		case SS_IDLE:
		case SS_IDLE_SUBABORTED:
			if (status == 'T' && txg_session_state != SS_IDLE)
			{
				set_state(SS_IDLE);
				txg_registry_set_state(TXG_STATE_IDLE, true);
			}
			else if (status == 'E' && txg_session_state != SS_IDLE_SUBABORTED)
			{
				/* the top level is alive: only a subtransaction failed */
				set_state(SS_IDLE_SUBABORTED);
				txg_registry_set_state(TXG_STATE_IDLE_ABORTED, true);
			}
			else if (status == 'I')
			{
				unexpected("ready");
				xact_close();
			}
			/* else a Sync with nothing before it: still idle, since then */
			break;
		case SS_IDLE_ABORTED:
			if (status == 'I')
			{
				unexpected("ready");
				xact_close();
			}
			break;
		case SS_ABORTED:
			if (status == 'E')
			{
				set_state(SS_IDLE_ABORTED);
				txg_registry_set_state(TXG_STATE_IDLE_ABORTED, false);
			}
			else if (status == 'I')
			{
				/*
				 * The statement that ended the block failed after core had
				 * taken it as the block's end (a cancel during COMMIT AND
				 * CHAIN, say): the block is over all the same.
				 */
				aborted_block_end(false);
			}
			else
			{
				unexpected("ready");
				xact_close();
			}
			break;
		case SS_EXPIRED:
		case SS_IDLE_EXPIRED:
			if (status == 'I')
			{
				unexpected("ready");
				xact_close();
				break;
			}
			if (txg_session_state == SS_EXPIRED ||
				status != expired_status)
			{
				expired_status = status;
				set_state(SS_IDLE_EXPIRED);
				txg_registry_set_state(status == 'E' ? TXG_STATE_IDLE_ABORTED :
									   TXG_STATE_IDLE, true);
			}
			break;
		case SS_EXITING:
			return;
	}
}

/*
 * The backend exits, before core rolls back what is still open: the
 * timeout or the sentinel ended it, or the client left it (abandoned).
 */
void
txg_session_exit(void)
{
	TxgEventData event;

	txg_timeout_flush();
	switch (txg_session_state)
	{
		case SS_NO_XACT:
			/* the timeout may have ended one no hook saw (see timeout.c) */
			if (unlikely(txg_timeout_unseen_end()))
				count_outcome(txg_timeout_terminated() ? TXG_OUTCOME_TERMINATED :
							  TXG_OUTCOME_TIMED_OUT,
							  GetCurrentTransactionStartTimestamp(),
							  GetCurrentTimestamp());
			break;
		case SS_EXITING:
			break;
		case SS_RUNNING:
		case SS_IDLE:
		case SS_IDLE_SUBABORTED:
		case SS_ABORTED:
		case SS_IDLE_ABORTED:
		case SS_EXPIRED:
		case SS_IDLE_EXPIRED:
			txg_registry_exit_idle(GetCurrentTimestamp());
			if (txg_timeout_terminated())
				count_outcome(TXG_OUTCOME_TERMINATED, xact_start,
							  GetCurrentTimestamp());
			else if (txg_sentinel_requested(&event))
			{
				txg_event_report(&event);
				count_outcome(TXG_OUTCOME_BLOCKER_TERMINATED, xact_start,
							  GetCurrentTimestamp());
			}
			else if (block_outcome == TXG_OUTCOME_TIMED_OUT)
				count_outcome(TXG_OUTCOME_TIMED_OUT, xact_start,
							  GetCurrentTimestamp());
			else
			{
				memset(&event, 0, sizeof(event));
				event.kind = TXG_EVENT_ABANDONED;
				event.event_time = GetCurrentTimestamp();
				event.no_log = !txg_log_abandoned;
				/* whom it blocked as it left: its locks are still held */
				event.nblocking = txg_blocked_by(txg_lock_waiters(), MyProcPid,
												 event.blocking,
												 TXG_EVENT_MAX_BLOCKING);
				txg_event_report(&event);
				count_outcome(TXG_OUTCOME_ABANDONED, xact_start,
							  GetCurrentTimestamp());
			}
			txg_timeout_unguard();
			txg_registry_close();
			break;
	}
	set_state(SS_EXITING);
}

/*
 * Is the followed transaction a block the client must end (BEGIN, or AND
 * CHAIN)?  For the wording of the timeout's messages: an autocommit
 * statement has nothing to roll back.
 */
bool
txg_session_in_block(void)
{
	return xact_explicit;
}
