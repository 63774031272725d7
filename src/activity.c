/*-------------------------------------------------------------------------
 *
 * activity.c
 *		Follow a client backend through its statements and transactions,
 *		and keep its registry slot current.
 *
 * Three kinds of events move a backend's slot:
 *
 *	- a top-level statement starts: ExecutorStart (plannable statements) or
 *	  ProcessUtility (utility statements) at nesting level 0.  Statements in
 *	  functions run at a deeper level and are not counted; the nesting level
 *	  is tracked as in pg_stat_statements.
 *	- the backend becomes idle: it sends ReadyForQuery, whose status byte
 *	  ('I', 'T', 'E') is exactly the transaction state the client sees.
 *	  The backend's PQcommMethods are wrapped to see that message; this is
 *	  the one point where both the simple and the extended protocol hand
 *	  control back to the client.
 *	- a transaction ends: the transaction callback (commit, prepare, or a
 *	  rollback the client asked for).  A transaction aborted by an error
 *	  stays in the registry as "idle in transaction (aborted)" until the
 *	  client ends it.
 *
 * The nesting level is restored with PG_CATCH and PG_RE_THROW rather than
 * PG_FINALLY: PG_FINALLY's _do_rethrow flag draws a (false) -Wclobbered
 * warning from gcc at -Os, the optimisation some PostgreSQL builds use,
 * and -Werror would turn it into a build failure.
 *
 * Only regular client backends are tracked.  Set-up happens once per
 * backend, lazily, at its first statement.  Nothing here takes a lock or
 * allocates memory that outlives the statement.
 *
 *-------------------------------------------------------------------------
 */
#include "pg_txguard.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "libpq/libpq.h"
#include "nodes/parsenodes.h"
#include "parser/analyze.h"
#include "parser/scansup.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"

static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static post_parse_analyze_hook_type prev_post_parse_analyze = NULL;

/* the backend's own communication methods, and our copy that wraps them */
static const PQcommMethods *prev_comm_methods = NULL;
static PQcommMethods txg_comm_methods;

/* per-backend set-up: done, or not a backend we track */
static bool backend_ready = false;
static bool backend_ignored = false;

/* depth of statements below the top level */
static int	nesting_level = 0;

/* the running top-level statement's text, for procedures that commit */
static const char *top_text = NULL;
static int	top_len = 0;

/* the running top-level statement is ROLLBACK (or ABORT) */
static bool user_rollback = false;

/* the running top-level statement is CALL or DO: it may commit */
static bool in_call = false;

/*
 * The outcome of a transaction aborted by an error, counted when it ends:
 * failed (or timed_out) when the client rolls it back, abandoned when the
 * client leaves it.  TXG_OUTCOME_COUNT: none.
 */
static TxgOutcome deferred_outcome = TXG_OUTCOME_COUNT;

/* the outcome of the registry's current transaction has been counted */
static bool outcome_recorded = false;

static const char *const outcome_names[] = {
	[TXG_OUTCOME_COMMITTED] = "committed",
	[TXG_OUTCOME_ROLLED_BACK] = "rolled_back",
	[TXG_OUTCOME_FAILED] = "failed",
	[TXG_OUTCOME_ABANDONED] = "abandoned",
	[TXG_OUTCOME_TIMED_OUT] = "timed_out",
	[TXG_OUTCOME_TERMINATED] = "terminated",
	[TXG_OUTCOME_BLOCKER_TERMINATED] = "blocker_terminated",
};

static void backend_exit(int code, Datum arg);
static void xact_callback(XactEvent event, void *arg);
static void subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							 SubTransactionId parentSubid, void *arg);
static int	txg_putmessage(char msgtype, const char *s, size_t len);

/*
 * One-time set-up in a backend: take the registry slot, hook the exit,
 * the transaction callbacks and ReadyForQuery.  Returns whether this
 * backend is tracked.
 */
static bool
backend_setup(void)
{
	if (!txg_is_client_backend() || IsParallelWorker() ||
		MyProc == NULL || !txg_registry_attached() ||
		PqCommMethods == NULL)
	{
		backend_ignored = true;
		return false;
	}

	txg_registry_attach_backend();
	txg_stats_attach_backend();
	txg_sentinel_attach_backend();
	txg_timeout_backend_init();
	before_shmem_exit(backend_exit, (Datum) 0);
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);

	prev_comm_methods = PqCommMethods;
	txg_comm_methods = *PqCommMethods;
	txg_comm_methods.putmessage = txg_putmessage;
	PqCommMethods = &txg_comm_methods;

	backend_ready = true;
	return true;
}

static inline bool
track_this_backend(void)
{
	if (likely(backend_ready))
		return true;
	if (backend_ignored)
		return false;
	return backend_setup();
}

/*
 * Count the outcome of the registry's transaction, once, and log it when
 * it lasted txguard.log_min_duration or longer.
 */
static void
record_outcome(TxgOutcome outcome)
{
	TimestampTz start = txg_registry_xact_start();
	TimestampTz end;

	if (outcome_recorded)
		return;
	if (start == 0)
	{
		/* a transaction no statement of which reached execution */
		start = GetCurrentTransactionStartTimestamp();
	}
	outcome_recorded = true;
	end = GetCurrentTimestamp();
	txg_stats_count(outcome, end - start);
	if (txg_log_min_duration >= 0 &&
		end - start >= (int64) txg_log_min_duration * 1000)
		txg_log_transaction("long_transaction", outcome_names[outcome], end);
}

/*
 * The session ends.  A transaction still open is rolled back by core after
 * this callback: it was ended by the timeout or the sentinel, or the
 * client left it (abandoned).
 */
static void
backend_exit(int code, Datum arg)
{
	if (PqCommMethods == &txg_comm_methods)
		PqCommMethods = prev_comm_methods;

	if (txg_registry_in_xact() && !outcome_recorded)
	{
		TxgEventData event;

		if (txg_timeout_terminated())
			record_outcome(TXG_OUTCOME_TERMINATED);
		else if (txg_sentinel_requested(&event))
		{
			txg_event_report(&event);
			record_outcome(TXG_OUTCOME_BLOCKER_TERMINATED);
		}
		else if (deferred_outcome == TXG_OUTCOME_TIMED_OUT)
			record_outcome(TXG_OUTCOME_TIMED_OUT);
		else
		{
			memset(&event, 0, sizeof(event));
			event.kind = TXG_EVENT_ABANDONED;
			event.event_time = GetCurrentTimestamp();
			event.no_log = !txg_log_abandoned;
			txg_event_report(&event);
			record_outcome(TXG_OUTCOME_ABANDONED);
		}
	}
	txg_timeout_backend_exit();
	txg_stats_detach_backend();
	txg_registry_detach_backend();
	backend_ready = false;
	backend_ignored = true;
}

/* BEGIN, START TRANSACTION, COMMIT, ROLLBACK and PREPARE TRANSACTION */
static bool
is_block_boundary(Node *parsetree, bool *rollback)
{
	*rollback = false;
	switch (txg_transaction_kind(parsetree))
	{
		case TRANS_STMT_ROLLBACK:
			*rollback = true;
			return true;
		case TRANS_STMT_BEGIN:
		case TRANS_STMT_START:
		case TRANS_STMT_COMMIT:
		case TRANS_STMT_PREPARE:
			return true;
		default:
			return false;
	}
}

/*
 * A top-level statement starts.  "location" and "length" delimit it in a
 * query string that may hold several statements (length 0: to the end).
 */
static bool
top_statement(const char *source, int location, int length, bool counted)
{
	const char *text = source ? source : "";
	int			len;

	if (location > 0)
		text += location;
	len = length > 0 ? length : (int) strlen(text);

	/* leading and trailing white space is noise */
	while (len > 0 && scanner_isspace(*text))
	{
		text++;
		len--;
	}
	while (len > 0 && scanner_isspace(text[len - 1]))
		len--;

	top_text = text;
	top_len = len;
	return txg_registry_statement(text, len, counted);
}

/*
 * A statement starts: keep the registry current, start guarding a new
 * transaction, and let the timeout refuse work past the deadline.
 * "parsetree" is the utility statement, NULL for a plannable one.
 */
static void
statement_start(const char *source, int location, int length,
				Node *parsetree, bool top_level)
{
	bool		new_xact;

	if (top_level)
	{
		bool		rollback;
		bool		boundary = is_block_boundary(parsetree, &rollback);

		user_rollback = rollback;
		in_call = parsetree != NULL &&
			(IsA(parsetree, CallStmt) || IsA(parsetree, DoStmt));
		new_xact = top_statement(source, location, length, !boundary);
	}
	else
		new_xact = txg_registry_continue(top_text, top_len);

	if (new_xact)
		txg_timeout_xact_start();
	txg_timeout_statement(parsetree, top_level);
}

/*
 * Is this executor start a statement the client sent?  At nesting level 0
 * there are also statements the client did not send: deferred triggers
 * (foreign key checks) fired by COMMIT, functions evaluated while
 * planning.  The client's statement is the one in debug_query_string
 * (the Bind message's is a copy of it).
 */
static inline bool
is_client_statement(const char *source)
{
	if (nesting_level > 0 || source == NULL || debug_query_string == NULL)
		return false;
	return source == debug_query_string ||
		strcmp(source, debug_query_string) == 0;
}

/* the transaction the registry describes is over */
static void
end_of_xact(bool in_procedure)
{
	if (deferred_outcome != TXG_OUTCOME_COUNT)
		record_outcome(deferred_outcome);
	deferred_outcome = TXG_OUTCOME_COUNT;
	txg_timeout_xact_end(in_procedure);
	txg_registry_xact_end();
	outcome_recorded = false;
	user_rollback = false;
}

/* COMMIT (or END) of a transaction past its deadline rolls back */
static bool
is_commit(Node *parsetree)
{
	return txg_transaction_kind(parsetree) == TRANS_STMT_COMMIT;
}

static PlannedStmt *
rollback_instead(PlannedStmt *pstmt)
{
	PlannedStmt *copy = makeNode(PlannedStmt);
	TransactionStmt *rollback = makeNode(TransactionStmt);

	rollback->kind = TRANS_STMT_ROLLBACK;
	rollback->chain = ((TransactionStmt *) pstmt->utilityStmt)->chain;
	copy->commandType = CMD_UTILITY;
	copy->canSetTag = pstmt->canSetTag;
	copy->utilityStmt = (Node *) rollback;
	copy->stmt_location = pstmt->stmt_location;
	copy->stmt_len = pstmt->stmt_len;
	return copy;
}

static void
txg_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	if (track_this_backend())
		statement_start(queryDesc->sourceText,
						queryDesc->plannedstmt->stmt_location,
						queryDesc->plannedstmt->stmt_len, NULL,
						is_client_statement(queryDesc->sourceText));

	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

static void
txg_ExecutorRun(TXG_EXECUTOR_RUN_ARGS)
{
	/* an Execute message may run a portal bound before the last Sync */
	if (nesting_level == 0 && backend_ready)
	{
		txg_registry_resume();
		txg_timeout_busy();
	}

	nesting_level++;
	PG_TRY();
	{
		if (prev_ExecutorRun)
			prev_ExecutorRun(TXG_EXECUTOR_RUN_PASS);
		else
			standard_ExecutorRun(TXG_EXECUTOR_RUN_PASS);
	}
	PG_CATCH();
	{
		nesting_level--;
		PG_RE_THROW();
	}
	PG_END_TRY();
	nesting_level--;
}

static void
txg_ExecutorFinish(QueryDesc *queryDesc)
{
	nesting_level++;
	PG_TRY();
	{
		if (prev_ExecutorFinish)
			prev_ExecutorFinish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_CATCH();
	{
		nesting_level--;
		PG_RE_THROW();
	}
	PG_END_TRY();
	nesting_level--;
}

/* run the utility statement one nesting level down */
static void
nested_process_utility(TXG_PROCESS_UTILITY_ARGS)
{
	nesting_level++;
	PG_TRY();
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(TXG_PROCESS_UTILITY_PASS);
		else
			standard_ProcessUtility(TXG_PROCESS_UTILITY_PASS);
	}
	PG_CATCH();
	{
		nesting_level--;
		PG_RE_THROW();
	}
	PG_END_TRY();
	nesting_level--;
}

static void
txg_ProcessUtility(TXG_PROCESS_UTILITY_ARGS)
{
	bool		top_level = nesting_level == 0 &&
		context == PROCESS_UTILITY_TOPLEVEL;
	bool		rolled_back = false;

	if (track_this_backend())
	{
		statement_start(queryString, pstmt->stmt_location, pstmt->stmt_len,
						pstmt->utilityStmt, top_level);
		if (top_level && is_commit(pstmt->utilityStmt) &&
			txg_timeout_expired())
		{
			pstmt = rollback_instead(pstmt);
			user_rollback = true;
			rolled_back = true;
		}
	}

	nested_process_utility(TXG_PROCESS_UTILITY_PASS);

	/* as for COMMIT of an aborted transaction block */
	if (rolled_back && qc != NULL)
		SetQueryCompletion(qc, CMDTAG_ROLLBACK, 0);
}

static void
txg_post_parse_analyze(TXG_POST_PARSE_ANALYZE_ARGS)
{
	/* a statement arrived: the backend no longer waits for its client */
	txg_timeout_busy();
	if (prev_post_parse_analyze)
		prev_post_parse_analyze(TXG_POST_PARSE_ANALYZE_PASS);
}

static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			txg_timeout_pre_commit();
			break;
		case XACT_EVENT_COMMIT:
			record_outcome(TXG_OUTCOME_COMMITTED);
			end_of_xact(nesting_level > 0 && in_call);
			break;
		case XACT_EVENT_PREPARE:
			/* its outcome is decided later, by COMMIT/ROLLBACK PREPARED */
			outcome_recorded = true;
			end_of_xact(false);
			break;
		case XACT_EVENT_ABORT:

			/*
			 * A rollback the client asked for ends the transaction, and so
			 * does a ROLLBACK inside a procedure (the only top-level abort
			 * below the top level: errors unwind to it first).  One caused
			 * by an error leaves an aborted transaction block behind (or,
			 * outside a block, ends at ReadyForQuery).
			 */
			if (user_rollback || (nesting_level > 0 && in_call))
			{
				record_outcome(txg_timeout_expired() ? TXG_OUTCOME_TIMED_OUT :
							   TXG_OUTCOME_ROLLED_BACK);
				end_of_xact(nesting_level > 0 && in_call);
			}
			else
			{
				if (!outcome_recorded)
					deferred_outcome = txg_timeout_expired() ?
						TXG_OUTCOME_TIMED_OUT : TXG_OUTCOME_FAILED;
				txg_timeout_flush();
			}
			break;
		default:
			break;
	}
}

static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		txg_timeout_subxact_abort(nesting_level > 0);
}

/* the backend tells the client it is ready for a new query */
static void
ready_for_query(char status)
{
	top_text = NULL;
	top_len = 0;
	user_rollback = false;
	in_call = false;
	nesting_level = 0;

	switch (status)
	{
		case 'T':
			/* COMMIT AND CHAIN started one no statement has shown yet */
			if (txg_registry_idle(false))
				txg_timeout_xact_start();
			break;
		case 'E':
			txg_registry_idle(true);
			break;
		default:
			end_of_xact(false);
			break;
	}
	txg_timeout_idle(status);
}

static int
txg_putmessage(char msgtype, const char *s, size_t len)
{
	if (msgtype == 'Z' && len == 1)
		ready_for_query(s[0]);
	return prev_comm_methods->putmessage(msgtype, s, len);
}

void
txg_activity_init(void)
{
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = txg_ExecutorStart;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = txg_ExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = txg_ExecutorFinish;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = txg_ProcessUtility;
	prev_post_parse_analyze = post_parse_analyze_hook;
	post_parse_analyze_hook = txg_post_parse_analyze;
}
