/*-------------------------------------------------------------------------
 *
 * hooks.c
 *		The hooks pg_txguard installs in a client backend, each turning what
 *		PostgreSQL tells it into one event of the session state machine
 *		(session.c).
 *
 *	post_parse_analyze		a client statement was analysed (Query, Parse,
 *							plan revalidation at Bind)	-> parse
 *	ExecutorStart			a client statement starts	-> statement
 *							one below it starts			-> nested
 *	ProcessUtility			the same, for utility statements; CALL and DO
 *							are bracketed so that their commits are known
 *	ExecutorRun				a portal runs				-> portal
 *	object_access_hook		a FunctionCall message runs a function (the
 *							fast path sees no other hook)	-> fastpath
 *	transaction callbacks	pre-commit, commit, abort, prepare,
 *							subtransaction abort
 *	putmessage				ReadyForQuery				-> ready
 *	before_shmem_exit		the backend exits			-> exit
 *	ClientAuthentication	the client has authenticated: the callbacks
 *							and the message wrap go in at once
 *
 * A client statement is told from one a function runs by its text: every
 * message that runs a client statement sets debug_query_string to the
 * statement's source text (the same pointer, or for Bind a copy of it),
 * while statements in functions, deferred triggers and functions
 * evaluated while planning have texts of their own.  The hooks keep no
 * pointer into a statement's text past the call: what must outlive it is
 * copied into the registry at once.
 *
 * Only regular client backends are followed.  Set-up happens once per
 * backend, in two halves: the callbacks once the client has authenticated,
 * the registry slot and the counters at its first ReadyForQuery.  On the
 * per-statement path nothing here takes a lock, allocates memory, or sets up an exception handler
 * (only CALL and DO, which may commit, get one).
 *
 *-------------------------------------------------------------------------
 */
#include "pg_txguard.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/objectaccess.h"
#include "executor/executor.h"
#include "libpq/auth.h"
#include "libpq/libpq.h"
#include "nodes/parsenodes.h"
#include "parser/analyze.h"
#include "storage/ipc.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/memutils.h"

static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static post_parse_analyze_hook_type prev_post_parse_analyze = NULL;
static object_access_hook_type prev_object_access = NULL;
static ClientAuthentication_hook_type prev_client_authentication = NULL;

/* the backend's own communication methods, and our copy that wraps them */
static const PQcommMethods *prev_comm_methods = NULL;
static PQcommMethods txg_comm_methods;
static int	(*prev_putmessage) (char msgtype, const char *s, size_t len) = NULL;

/* a client's utility statement runs (see process_client_utility) */
bool		txg_in_client_utility = false;

/* per-backend set-up: done, or not a backend we track */
static bool backend_ready = false;
static bool backend_ignored = false;

static void backend_exit(int code, Datum arg);
static void xact_callback(XactEvent event, void *arg);
static void subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							 SubTransactionId parentSubid, void *arg);
static int	txg_putmessage(char msgtype, const char *s, size_t len);

/* the hooks of a backend are in (callbacks, exit, ReadyForQuery) */
static bool hooks_in = false;

/*
 * The first half of a backend's set-up: the transaction callbacks, the
 * exit callback and the wrap of the backend's messages.  Done as soon as
 * the client has authenticated, so that no transaction of the session
 * escapes them, not even one whose first message passes no other hook (a
 * syntax error, a Describe).  Returns whether this backend is tracked.
 */
static bool
backend_hook_in(void)
{
	if (hooks_in)
		return true;
	if (!txg_is_client_backend() || IsParallelWorker() ||
		MyProc == NULL || !txg_registry_attached() ||
		PqCommMethods == NULL)
	{
		backend_ignored = true;
		return false;
	}

	before_shmem_exit(backend_exit, (Datum) 0);
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);

	prev_comm_methods = PqCommMethods;
	prev_putmessage = PqCommMethods->putmessage;
	txg_comm_methods = *PqCommMethods;
	txg_comm_methods.putmessage = txg_putmessage;
	PqCommMethods = &txg_comm_methods;

	hooks_in = true;
	return true;
}

/*
 * The second half, once the backend is connected to its database (at its
 * first ReadyForQuery, or its first hook): take the registry slot and the
 * counters, register the timeout.  Returns whether this backend is
 * tracked.
 */
static bool
backend_setup(void)
{
	if (!backend_hook_in())
		return false;

	txg_registry_attach_backend();
	txg_stats_attach_backend();
	txg_sentinel_attach_backend();
	txg_timeout_backend_init();
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

/* the client has authenticated: hook in before its first message */
static void
txg_client_authentication(Port *port, int status)
{
	if (prev_client_authentication)
		prev_client_authentication(port, status);
	if (status == STATUS_OK)
		(void) backend_hook_in();
}

/* the session ends: settle what is still open, give the slot back */
static void
backend_exit(int code, Datum arg)
{
	if (PqCommMethods == &txg_comm_methods)
		PqCommMethods = prev_comm_methods;
	txg_session_exit();
	txg_timeout_backend_exit();
	txg_stats_detach_backend();
	txg_registry_detach_backend();
	backend_ready = false;
	backend_ignored = true;
}

/*
 * Is a statement with this source text the client's own?  See the file
 * header.
 */
static pg_attribute_always_inline bool
client_source(const char *source, bool executor)
{
	if (source == NULL || debug_query_string == NULL || txg_in_client_utility)
		return false;
	if (source == debug_query_string)
		return true;
	/*
	 * An executor that starts may also be that of a portal a Bind message
	 * made from a named prepared statement, told without comparing texts:
	 * only exec_bind_message gives a portal a prepStmtName, and the portal
	 * being started or run is the ActivePortal; its own statements have its
	 * own copy of the text, while anything nested in them (functions,
	 * triggers) has texts of its own.
	 */
	if (executor && ActivePortal != NULL &&
		ActivePortal->prepStmtName != NULL &&
		ActivePortal->sourceText == source)
		return true;
	return strcmp(source, debug_query_string) == 0;
}

static inline bool
is_client_text(const char *source)
{
	return client_source(source, false);
}

/* the same for an executor that starts */
static inline bool
is_client_executor(const char *source)
{
	return client_source(source, true);
}

/*
 * The statement at "location" and "length" in a query string that may
 * hold several (length 0: to the end).  The white space around it is
 * kept: the registry trims it when the text is read, not on every
 * statement.
 */
static inline const char *
statement_text(const char *source, int location, int length, int *len)
{
	const char *text = source;

	if (location > 0)
		text += location;
	*len = length > 0 ? length : (int) strlen(text);
	return text;
}

static void
txg_post_parse_analyze(TXG_POST_PARSE_ANALYZE_ARGS)
{
	if (track_this_backend())
	{
		if (is_client_text(pstate->p_sourcetext))
		{
			const char *text = NULL;
			int			len = 0;
			bool		chain;
			TxgStmtKind kind = txg_statement_kind(query->utilityStmt, &chain);

			if (txg_stmt_kind_counted(kind))
				text = statement_text(pstate->p_sourcetext, query->stmt_location,
									  query->stmt_len, &len);
			txg_session_parse(text, len, kind);
		}
		else if (unlikely(txg_deadline_passed || txg_session_watch_nested))
			txg_session_nested();
	}
	if (prev_post_parse_analyze)
		prev_post_parse_analyze(TXG_POST_PARSE_ANALYZE_PASS);
}

/*
 * A statement nested in the client's that does not pass the executor: the
 * helpers' direct index lookup (upsert_probe.c), which stands for a
 * SELECT.  The session hears of it as the executor hooks would tell it.
 */
void
txg_hooks_nested_statement(void)
{
	if (track_this_backend() &&
		unlikely(txg_deadline_passed || txg_session_watch_nested))
		txg_session_nested();
}

static void
txg_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	if (track_this_backend())
	{
		if (is_client_executor(queryDesc->sourceText))
		{
			const char *text;
			int			len;

			text = statement_text(queryDesc->sourceText,
								  queryDesc->plannedstmt->stmt_location,
								  queryDesc->plannedstmt->stmt_len, &len);
			txg_session_executor_statement(text, len);
		}
		else if (unlikely(txg_deadline_passed || txg_session_watch_nested))
			txg_session_nested();
	}

	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

static inline void
call_executor_run(TXG_EXECUTOR_RUN_ARGS)
{
	if (prev_ExecutorRun)
		prev_ExecutorRun(TXG_EXECUTOR_RUN_PASS);
	else
		standard_ExecutorRun(TXG_EXECUTOR_RUN_PASS);
}

static pg_noinline void
portal_runs(TXG_EXECUTOR_RUN_ARGS)
{
	if (backend_ready)
		txg_session_portal();
	call_executor_run(TXG_EXECUTOR_RUN_PASS);
}

/* (the usual case, a statement running, has no stack frame) */
static void
txg_ExecutorRun(TXG_EXECUTOR_RUN_ARGS)
{
	/* an Execute message may run a portal bound before the last Sync */
	if (unlikely(txg_session_state != SS_RUNNING || txg_deadline_passed))
		portal_runs(TXG_EXECUTOR_RUN_PASS);
	else
		call_executor_run(TXG_EXECUTOR_RUN_PASS);
}

/* COMMIT (or END) of a transaction past its deadline rolls back */
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

static inline void
call_process_utility(TXG_PROCESS_UTILITY_ARGS)
{
	if (prev_ProcessUtility)
		prev_ProcessUtility(TXG_PROCESS_UTILITY_PASS);
	else
		standard_ProcessUtility(TXG_PROCESS_UTILITY_PASS);
}

/*
 * Was the error that leaves a CALL or DO raised by a COMMIT of the
 * procedure?  PL/pgSQL's context line of the innermost function says
 * "at COMMIT".  Only the error path of CALL and DO asks.
 */
static bool
error_raised_at_commit(void)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	ErrorData  *edata = CopyErrorData();
	bool		at_commit = false;

	MemoryContextSwitchTo(old);
	if (edata->context != NULL)
	{
		const char *eol = strchr(edata->context, '\n');
		const char *hit = strstr(edata->context, " at COMMIT");

		at_commit = hit != NULL && (eol == NULL || hit < eol);
	}
	FreeErrorData(edata);
	return at_commit;
}

/*
 * A client's utility statement other than BEGIN, COMMIT and the like.
 * While it runs, an executor started with the client's text is its own
 * (EXPLAIN ANALYZE, CREATE TABLE AS, COPY (query), DECLARE CURSOR), not a
 * statement of the client's; and a CALL or DO commits and rolls back on
 * its own account.  Both facts must not outlive an error, hence the
 * exception handler, which only these statements pay for.
 */
static pg_noinline void
process_client_utility(TxgStmtKind kind, TXG_PROCESS_UTILITY_ARGS)
{
	txg_in_client_utility = true;
	if (kind == TXG_STMT_CALL)
		txg_session_call(true);
	PG_TRY();
	{
		call_process_utility(TXG_PROCESS_UTILITY_PASS);
	}
	PG_CATCH();
	{
		txg_in_client_utility = false;
		if (kind == TXG_STMT_CALL)
			txg_session_call_failed(error_raised_at_commit());
		PG_RE_THROW();
	}
	PG_END_TRY();
	txg_in_client_utility = false;
	if (kind == TXG_STMT_CALL)
		txg_session_call(false);
}

static void
txg_ProcessUtility(TXG_PROCESS_UTILITY_ARGS)
{
	TxgStmtKind kind = TXG_STMT_OTHER;
	bool		client = false;
	bool		rolled_back = false;

	if (track_this_backend())
	{
		if (context == PROCESS_UTILITY_TOPLEVEL && !txg_in_client_utility)
		{
			const char *text;
			int			len;
			bool		chain;

			kind = txg_statement_kind(pstmt->utilityStmt, &chain);
			if (txg_stmt_kind_counted(kind))
				text = statement_text(queryString, pstmt->stmt_location,
									  pstmt->stmt_len, &len);
			else
			{
				/* BEGIN, COMMIT and the like: their text is not kept */
				text = NULL;
				len = 0;
			}
			txg_session_statement(text, len, kind, chain);
			client = !IsA(pstmt->utilityStmt, TransactionStmt);
			if (kind == TXG_STMT_COMMIT && txg_session_state == SS_EXPIRED)
			{
				pstmt = rollback_instead(pstmt);
				rolled_back = true;
			}
		}
		else if (unlikely(txg_deadline_passed || txg_session_watch_nested))
			txg_session_nested();
	}

	if (client)
	{
		Oid			dropped = InvalidOid;

		/*
		 * DROP DATABASE: its counters go with it.  Its files are gone once
		 * the statement returns (which is why it cannot run in a
		 * transaction block), whatever happens to the transaction around.
		 */
		if (unlikely(IsA(pstmt->utilityStmt, DropdbStmt)))
			dropped = get_database_oid(((DropdbStmt *) pstmt->utilityStmt)->dbname,
									   true);
		process_client_utility(kind, TXG_PROCESS_UTILITY_PASS);
		if (unlikely(OidIsValid(dropped)))
			txg_stats_forget_database(dropped);
	}
	else
	{
		call_process_utility(TXG_PROCESS_UTILITY_PASS);
		/* as for COMMIT of an aborted transaction block */
		if (rolled_back && qc != NULL)
			SetQueryCompletion(qc, CMDTAG_ROLLBACK, 0);
		/* core reports a COMMIT it takes for a ROLLBACK as one */
		if (kind != TXG_STMT_OTHER)
			txg_session_statement_done(rolled_back ||
									   (qc != NULL && qc->commandTag == CMDTAG_ROLLBACK));
	}
}

/*
 * A function is about to run.  Outside any client message, with the
 * session not already working, that is a FunctionCall message: the fast
 * path runs no statement and passes no other hook.
 */
static pg_noinline void
function_call_message(ObjectAccessType access, Oid classId, Oid objectId,
					  int subId, void *arg)
{
	if ((txg_session_state != SS_RUNNING || txg_deadline_passed) &&
		track_this_backend())
		txg_session_fastpath(objectId);
	if (prev_object_access)
		prev_object_access(access, classId, objectId, subId, arg);
}

/* (called at every function's set-up: the usual case has no stack frame) */
static void
txg_object_access(ObjectAccessType access, Oid classId, Oid objectId,
				  int subId, void *arg)
{
	if (unlikely(debug_query_string == NULL) &&
		access == OAT_FUNCTION_EXECUTE)
		function_call_message(access, classId, objectId, subId, arg);
	else if (prev_object_access)
		prev_object_access(access, classId, objectId, subId, arg);
}

static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			txg_session_pre_commit();
			break;
		case XACT_EVENT_COMMIT:
			txg_session_commit();
			break;
		case XACT_EVENT_PREPARE:
			txg_session_prepare();
			break;
		case XACT_EVENT_ABORT:
			txg_session_abort();
			break;
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			break;
	}
}

static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		txg_session_subxact_abort();
}

/*
 * ReadyForQuery, errors, and the answers to messages that pass no other
 * hook (Bind of a statement that starts no executor, Describe, Close).
 * Notices, notifications and parameter reports answer no message.
 */
static pg_noinline int
message_sent(char msgtype, const char *s, size_t len)
{
	if (unlikely(!backend_ready))
	{
		/* hooked in at authentication: connected once ReadyForQuery is due */
		if (msgtype != 'Z' || !backend_setup())
			return prev_putmessage(msgtype, s, len);
	}
	if (msgtype == 'Z')
	{
		if (len == 1)
			txg_session_ready(s[0]);
	}
	else if (msgtype != 'N' && msgtype != 'A' && msgtype != 'S')
		txg_session_answer(msgtype == 'E');
	return prev_putmessage(msgtype, s, len);
}

/*
 * The usual cases cost a few tests and no stack frame: a row or a
 * completion while working, ReadyForQuery 'I' between transactions, where
 * nothing is left to do, and the answer to a Bind or a Describe in an idle
 * transaction.
 */
static int
txg_putmessage(char msgtype, const char *s, size_t len)
{
	if (likely(txg_session_state == SS_RUNNING))
	{
		if (likely(msgtype != 'Z' && msgtype != 'E'))
			return prev_putmessage(msgtype, s, len);
	}
	else if (msgtype == 'Z')
	{
		if (txg_session_state == SS_NO_XACT && len == 1 && s[0] == 'I' &&
			likely(backend_ready))
			return prev_putmessage(msgtype, s, len);
	}
	else if (msgtype != 'E' && msgtype != 'N' && msgtype != 'A' &&
			 msgtype != 'S' && txg_session_answer_idle())
		return prev_putmessage(msgtype, s, len);
	return message_sent(msgtype, s, len);
}

void
txg_hooks_init(void)
{
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = txg_ExecutorStart;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = txg_ExecutorRun;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = txg_ProcessUtility;
	prev_post_parse_analyze = post_parse_analyze_hook;
	post_parse_analyze_hook = txg_post_parse_analyze;
	prev_object_access = object_access_hook;
	object_access_hook = txg_object_access;
	prev_client_authentication = ClientAuthentication_hook;
	ClientAuthentication_hook = txg_client_authentication;
}
