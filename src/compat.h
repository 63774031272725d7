/*-------------------------------------------------------------------------
 *
 * compat.h
 *		Differences between the PostgreSQL majors pg_txguard supports
 *		(13 to 19), kept in one place.
 *
 * Every version test of the project lives here, as a static inline wrapper
 * or a #define shim, so that the rest of the code reads as if written for
 * one major.  The notes name the release that changed each interface.
 *
 * Checked against the 13, 15, 17, 18 and 19 (rc1) headers (scripts/pgmatrix
 * builds and tests every one); 14 and 16 sit between those and take the
 * branch their version number selects.  Interfaces that need no shim from
 * 13 to 19: RegisterTimeout, enable_timeout_at/after, disable_timeout,
 * get_timeout_active, get_timeout_finish_time; emit_log_hook; WaitLatch
 * and WL_EXIT_ON_PM_DEATH; RegisterBackgroundWorker with bgw_type,
 * BackgroundWorkerUnblockSignals, BackgroundWorkerInitializeConnection;
 * SignalHandlerForConfigReload, ConfigReloadPending and
 * SignalHandlerForShutdownRequest (postmaster/interrupt.h);
 * RequestNamedLWLockTranche (call it from txg_shmem_request, which runs in
 * the right place on every major); TimestampDifferenceMilliseconds;
 * GetPGProcByNumber; PqCommMethods->putmessage.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TXGUARD_COMPAT_H
#define TXGUARD_COMPAT_H

#include "postgres.h"

#include "access/genam.h"
#include "access/tableam.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_index.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/autovacuum.h"
#include "postmaster/bgworker_internals.h"
#include "replication/walsender.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#if PG_VERSION_NUM >= 140000
#include "utils/backend_status.h"
#endif
#if PG_VERSION_NUM >= 160000
#include "parser/parse_relation.h"
#endif
/* wait events have a header of their own from 14 (pgstat.h stopped including it in 19) */
#if PG_VERSION_NUM >= 140000
#include "utils/wait_event.h"
#endif
/* get_database_oid moved from commands/dbcommands.h to catalog/pg_database.h in 19 */
#if PG_VERSION_NUM >= 190000
#include "catalog/pg_database.h"
#else
#include "commands/dbcommands.h"
#endif

/* PG_MODULE_MAGIC_EXT (18) names the module and its version */
#ifdef PG_MODULE_MAGIC_EXT
#define TXG_MODULE_MAGIC PG_MODULE_MAGIC_EXT(.name = "pg_txguard", .version = "0.1")
#else
#define TXG_MODULE_MAGIC PG_MODULE_MAGIC
#endif

/* MarkGUCPrefixReserved (15) replaced EmitWarningsOnPlaceholders */
#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

/* predefined roles were renamed from DEFAULT_ROLE_* to ROLE_PG_* in 14 */
#if PG_VERSION_NUM < 140000
#define ROLE_PG_READ_ALL_STATS DEFAULT_ROLE_READ_ALL_STATS
#endif

/* shmem_request_hook (15); older majors request space from _PG_init */
#if PG_VERSION_NUM >= 150000
#define TXG_HAVE_SHMEM_REQUEST_HOOK 1
#endif

/*
 * Number of PGPROC slots regular backends, autovacuum workers, background
 * workers and WAL senders can occupy.  MaxBackends is computed before
 * shmem_request_hook from 15 on; older majors compute it only after
 * _PG_init, so do the same arithmetic as InitializeMaxBackends() there.
 */
static inline int
txg_max_backends(void)
{
#if PG_VERSION_NUM >= 150000
	return MaxBackends;
#else
	return MaxConnections + autovacuum_max_workers + 1 +
		max_worker_processes + max_wal_senders;
#endif
}

/*
 * ProcNumber (17) is a PGPROC's index in ProcGlobal->allProcs, the value
 * older majors keep in PGPROC.pgprocno; MyProcNumber replaced
 * MyProc->pgprocno, and INVALID_PROC_NUMBER is -1.
 */
#if PG_VERSION_NUM < 170000
typedef int ProcNumber;
#define INVALID_PROC_NUMBER (-1)
#endif

static inline ProcNumber
txg_my_proc_number(void)
{
#if PG_VERSION_NUM >= 170000
	return MyProcNumber;
#else
	return MyProc != NULL ? MyProc->pgprocno : INVALID_PROC_NUMBER;
#endif
}

/* local transaction id of the top-level transaction: vxid.lxid from 17 */
static inline LocalTransactionId
txg_proc_lxid(PGPROC *proc)
{
#if PG_VERSION_NUM >= 170000
	return proc->vxid.lxid;
#else
	return proc->lxid;
#endif
}

/* top-level xid of a PGPROC: in PGXACT up to 13, in PGPROC from 14 */
static inline TransactionId
txg_proc_xid(PGPROC *proc)
{
#if PG_VERSION_NUM >= 140000
	return proc->xid;
#else
	return ProcGlobal->allPgXact[proc->pgprocno].xid;
#endif
}

/*
 * Hook signatures.  ProcessUtility gained readOnlyTree in 14; ExecutorRun
 * lost execute_once in 18.  TXG_* macros give one spelling of the
 * parameter lists and of the calls.
 */
#if PG_VERSION_NUM >= 140000
#define TXG_PROCESS_UTILITY_ARGS \
	PlannedStmt *pstmt, const char *queryString, bool readOnlyTree, \
	ProcessUtilityContext context, ParamListInfo params, \
	QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc
#define TXG_PROCESS_UTILITY_PASS \
	pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc
#else
#define TXG_PROCESS_UTILITY_ARGS \
	PlannedStmt *pstmt, const char *queryString, \
	ProcessUtilityContext context, ParamListInfo params, \
	QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc
#define TXG_PROCESS_UTILITY_PASS \
	pstmt, queryString, context, params, queryEnv, dest, qc
#endif

#if PG_VERSION_NUM >= 180000
#define TXG_EXECUTOR_RUN_ARGS \
	QueryDesc *queryDesc, ScanDirection direction, uint64 count
#define TXG_EXECUTOR_RUN_PASS queryDesc, direction, count
#else
#define TXG_EXECUTOR_RUN_ARGS \
	QueryDesc *queryDesc, ScanDirection direction, uint64 count, \
	bool execute_once
#define TXG_EXECUTOR_RUN_PASS queryDesc, direction, count, execute_once
#endif

/* post_parse_analyze_hook gained the JumbleState argument in 14, const in 19 */
#if PG_VERSION_NUM >= 190000
#define TXG_POST_PARSE_ANALYZE_ARGS \
	ParseState *pstate, Query *query, const JumbleState *jstate
#define TXG_POST_PARSE_ANALYZE_PASS pstate, query, jstate
#elif PG_VERSION_NUM >= 140000
#define TXG_POST_PARSE_ANALYZE_ARGS \
	ParseState *pstate, Query *query, JumbleState *jstate
#define TXG_POST_PARSE_ANALYZE_PASS pstate, query, jstate
#else
#define TXG_POST_PARSE_ANALYZE_ARGS ParseState *pstate, Query *query
#define TXG_POST_PARSE_ANALYZE_PASS pstate, query
#endif

/* NULLS NOT DISTINCT unique indexes (15); before, NULLs were always distinct */
static inline bool
txg_index_nulls_not_distinct(Form_pg_index index)
{
#if PG_VERSION_NUM >= 150000
	return index->indnullsnotdistinct;
#else
	return false;
#endif
}

/* SQLSTATE 25P04 got its name in 17, with core's transaction_timeout */
#ifndef ERRCODE_TRANSACTION_TIMEOUT
#define ERRCODE_TRANSACTION_TIMEOUT MAKE_SQLSTATE('2','5','P','0','4')
#endif

/*
 * A composite Datum that this server's executor has just built, as a
 * HeapTupleHeader.  Some minor releases (15.20, 17.12) turned
 * DatumGetHeapTupleHeader() from a macro into a function that also marks
 * datum tuples made by older minors (HEAP_IS_DATUM); a module built against
 * their headers then needs a symbol that earlier servers of the same major
 * lack, and fails to load there.  The datums pg_txguard reads come from
 * the running server and are already in its format, so detoasting is all
 * there is to do, on every minor.
 */
static inline HeapTupleHeader
txg_datum_get_tuple_header(Datum d)
{
	return (HeapTupleHeader) PG_DETOAST_DATUM(d);
}

/*
 * When this backend last changed its pg_stat_activity state: PostgreSQL
 * stamps it just before it sends ReadyForQuery, so the registry can take
 * the same time without reading the clock again.  MyBEEntry is exported
 * from 14 (utils/backend_status.h); with track_activities off, or on 13,
 * read the clock.
 */
static inline TimestampTz
txg_state_change_timestamp(void)
{
#if PG_VERSION_NUM >= 140000
	if (likely(pgstat_track_activities && MyBEEntry != NULL))
		return MyBEEntry->st_state_start_timestamp;
#endif
	return GetCurrentTimestamp();
}

/* is this process a regular client backend (not a walsender)? */
static inline bool
txg_is_client_backend(void)
{
	return MyBackendType == B_BACKEND && !am_walsender;
}

/*
 * Start a plain forward index scan (no instrumentation, no ORDER BY keys):
 * index_beginscan took an IndexScanInstrumentation in 18, and scan option
 * flags (SO_NONE for none) in 19.
 */
static inline IndexScanDesc
txg_index_beginscan(Relation heap, Relation index, Snapshot snapshot,
					int nkeys)
{
#if PG_VERSION_NUM >= 190000
	return index_beginscan(heap, index, snapshot, NULL, nkeys, 0, SO_NONE);
#elif PG_VERSION_NUM >= 180000
	return index_beginscan(heap, index, snapshot, NULL, nkeys, 0);
#else
	return index_beginscan(heap, index, snapshot, nkeys, 0);
#endif
}

/*
 * The range table the executor checks for "SELECT t FROM ONLY t AS t":
 * SELECT on the whole row, that is on every column unless on the table
 * (checkAsUser unset: the current user when checked).  16 moved the
 * permissions from the RangeTblEntry to an RTEPermissionInfo kept in a
 * list of their own; *perminfos is NIL before.
 */
static inline void
txg_select_range_table(Relation rel, List **rtable, List **perminfos)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	Bitmapset  *cols = bms_make_singleton(InvalidAttrNumber -
										  FirstLowInvalidHeapAttributeNumber);

	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = AccessShareLock;
	rte->inh = false;
	*perminfos = NIL;
#if PG_VERSION_NUM >= 160000
	{
		RTEPermissionInfo *perminfo = addRTEPermissionInfo(perminfos, rte);

		perminfo->requiredPerms = ACL_SELECT;
		perminfo->selectedCols = cols;
	}
#else
	rte->requiredPerms = ACL_SELECT;
	rte->selectedCols = cols;
#endif
	*rtable = list_make1(rte);
}

/*
 * The executor's permission check of a range table, without raising an
 * error, ExecutorCheckPerms_hook included: ExecCheckRTPerms before 16,
 * ExecCheckPermissions (with the RTEPermissionInfo list) from 16.
 */
static inline bool
txg_check_permissions(List *rtable, List *perminfos)
{
#if PG_VERSION_NUM >= 160000
	return ExecCheckPermissions(rtable, perminfos, false);
#else
	return ExecCheckRTPerms(rtable, false);
#endif
}

/*
 * Where core keeps the assign hook of its string setting "name" (NULL if
 * there is no such string setting), for a module to chain it.  16 exported
 * find_option; before, the settings are looked for in get_guc_variables().
 * 19 keeps a setting's typed fields in a union inside config_generic.
 */
static inline GucStringAssignHook *
txg_string_assign_hook(const char *name)
{
	struct config_generic *conf = NULL;

#if PG_VERSION_NUM >= 160000
	conf = find_option(name, false, true, ERROR);
#else
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();
	int			i;

	for (i = 0; i < n; i++)
	{
		if (strcmp(vars[i]->name, name) == 0)
		{
			conf = vars[i];
			break;
		}
	}
#endif
	if (conf == NULL || conf->vartype != PGC_STRING)
		return NULL;
#if PG_VERSION_NUM >= 190000
	return &conf->_string.assign_hook;
#else
	return &((struct config_string *) conf)->assign_hook;
#endif
}

/*
 * A hash table in shared memory of at most "size" entries: 19 dropped
 * ShmemInitHash's initial size (it was the maximum size as well here).
 */
static inline HTAB *
txg_shmem_init_hash(const char *name, long size, HASHCTL *info, int flags)
{
#if PG_VERSION_NUM >= 190000
	return ShmemInitHash(name, size, info, flags);
#else
	return ShmemInitHash(name, size, size, info, flags);
#endif
}

#endif							/* TXGUARD_COMPAT_H */
