/*-------------------------------------------------------------------------
 *
 * upsert_cache.c
 *		The helpers' per-backend caches: their memory, their invalidation,
 *		and when what a stale entry held may be freed.
 *
 * Two caches live under one memory context, "txguard upsert cache":
 *	- what the helpers know about each table (upsert_relinfo.c);
 *	- the prepared statements (upsert_plan.c).
 * One relcache callback, registered on first use, tells both when a table
 * or an index changes (or, with InvalidOid, that anything may have).  The
 * statements also name schemas, collations, operators and operator
 * classes, whose renaming invalidates no table: a change to any of them
 * (rare: DDL) drops every entry.
 *
 * Callbacks can fire in the middle of a call (while a plan runs, or from a
 * trigger that calls the helpers again), so a stale entry is replaced, not
 * freed: its plan or memory context is "buried" here and freed only when
 * no call is in progress.  txg_call_enter() and txg_call_leave() count the
 * calls in progress, nested ones included.
 *
 *-------------------------------------------------------------------------
 */
#include "upsert.h"

#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

MemoryContext txg_cache_cxt = NULL;

static List *txg_dead_plans = NIL;
static List *txg_dead_cxts = NIL;
static int	txg_depth = 0;

static void
txg_relcache_callback(Datum arg, Oid relid)
{
	txg_relinfo_invalidate(relid);
	txg_plan_invalidate(relid);
}

static void
txg_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	txg_relcache_callback(arg, InvalidOid);
}

void
txg_cache_init(void)
{
	if (txg_cache_cxt != NULL)
		return;

	txg_cache_cxt = AllocSetContextCreate(TopMemoryContext,
										  "txguard upsert cache",
										  ALLOCSET_DEFAULT_SIZES);
	txg_relinfo_cache_init();
	txg_plan_cache_init();
	CacheRegisterRelcacheCallback(txg_relcache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, txg_syscache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(COLLOID, txg_syscache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(OPEROID, txg_syscache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(CLAOID, txg_syscache_callback, (Datum) 0);
}

/* free what stale cache entries left behind; only when no call runs */
static void
txg_free_dead(void)
{
	ListCell   *lc;

	if (txg_depth != 0)
		return;
	foreach(lc, txg_dead_plans)
		SPI_freeplan((SPIPlanPtr) lfirst(lc));
	list_free(txg_dead_plans);
	txg_dead_plans = NIL;
	foreach(lc, txg_dead_cxts)
		MemoryContextDelete((MemoryContext) lfirst(lc));
	list_free(txg_dead_cxts);
	txg_dead_cxts = NIL;
}

/* a helper call starts: caches ready, leftovers freed, call counted */
void
txg_call_enter(void)
{
	txg_cache_init();
	txg_free_dead();
	txg_depth++;
}

/*
 * A helper call ends, normally (success) or by an error.  After the last
 * one ends normally, nothing runs the buried plans any more: free them
 * now, so that the plans alive stay within txguard.max_cached_plans
 * between calls.  After an error, wait for the next call (the abort has
 * yet to clean up what was running).
 */
void
txg_call_leave(bool success)
{
	txg_depth--;
	if (success)
		txg_free_dead();
}

void
txg_bury_plan(SPIPlanPtr plan)
{
	MemoryContext old = MemoryContextSwitchTo(txg_cache_cxt);

	txg_dead_plans = lappend(txg_dead_plans, plan);
	MemoryContextSwitchTo(old);
}

void
txg_bury_cxt(MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(txg_cache_cxt);

	txg_dead_cxts = lappend(txg_dead_cxts, cxt);
	MemoryContextSwitchTo(old);
}
