/*-------------------------------------------------------------------------
 *
 * upsert_probe.c
 *		The helpers' lookup as a direct probe of the arbiter index, for the
 *		existing-row path; the lookup statement when anything is unusual.
 *
 * The lookup statement (upsert_plan.c) is
 *	SELECT A FROM ONLY T AS A WHERE (key COLLATE c) OPERATOR(=) $1 ...
 * run through SPI: the plan cache's revalidation, executor start-up and
 * shut-down for one index scan cost about as much as the rest of a call.
 * The probe does what that statement does, without them:
 *
 *	- the same permission check: the executor's, on a range table that
 *	  asks for SELECT on the whole row (ExecCheckRTPerms or
 *	  ExecCheckPermissions, ExecutorCheckPerms_hook included; see
 *	  compat.h), for the current user.  When it says no, the statement
 *	  runs and raises the error it always raised;
 *	- the same snapshot: SPI advances the command counter and, in READ
 *	  COMMITTED, takes a new snapshot for each statement; so does the probe.
 *	  It scans with the snapshot where GetTransactionSnapshot() keeps it,
 *	  without the copy an active snapshot costs: only built-in functions
 *	  run until the scan ends, and none takes another snapshot;
 *	- the same locks: AccessShareLock on the index, kept to the end of the
 *	  transaction, as the executor keeps it; no row lock (the statement
 *	  has no FOR KEY SHARE);
 *	- the same scan: a btree search for the key with the index's equality
 *	  operators and collations (the statement's WHERE clause), then the
 *	  heap fetch of the version the snapshot sees; a partial index holds
 *	  only rows that satisfy its predicate, the statement's other
 *	  condition.  The index AM counts the scan in the statistics views as
 *	  the executor's index scan does;
 *	- the same result: a composite datum of the table's row type, its
 *	  out-of-line values fetched, as a whole-row Var produces it
 *	  (ExecEvalWholeRowVar);
 *	- the same session event: a nested statement (txg_hooks_nested_statement).
 *
 * It leaves the lookup to the statement when the two could differ:
 *	- the arbiter is not a btree index, or its key is compared by functions
 *	  that are not built in (they could run SQL in the middle of the scan),
 *	  or the table is partitioned (the statement reads every partition);
 *	- a NULL key element (NULLS NOT DISTINCT), looked up with IS NULL;
 *	- row-level security is enabled on the table (policies add quals);
 *	- SERIALIZABLE: the predicate locks an index scan takes depend on the
 *	  plan the statement gets, which the probe does not try to match;
 *	- the permission check fails, so that the error is the statement's.
 * Triggers do not fire for reads, so they make no difference.
 *
 * The slot the heap fetch fills is made once per table, with a copy of the
 * table's descriptor (no reference to count), and kept in the TxgRelInfo.
 * It is emptied, its buffer pin released, as soon as the row is copied out.
 * An error in between leaves it holding a pin that the abort releases:
 * such a slot is never touched again, only its memory freed, and the next
 * probe makes a new one.  Nothing the scan runs can call the helpers, so
 * one slot per table is enough.
 *
 *-------------------------------------------------------------------------
 */
#include "upsert.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/* can the probe stand for the lookup statement of this call and row? */
static inline bool
txg_probe_applies(TxgCall *call, TxgRow *row)
{
	TxgRelInfo *info = call->info;

	if (!row->arbiter->probable || !info->only || row->nullmask != 0)
		return false;
	if (call->rel->rd_rel->relrowsecurity || IsolationIsSerializable())
		return false;
	if (info->select_rtable == NIL)
	{
		MemoryContext old = MemoryContextSwitchTo(info->cxt);

		txg_select_range_table(call->rel, &info->select_rtable,
							   &info->select_perminfos);
		MemoryContextSwitchTo(old);
	}
	return txg_check_permissions(info->select_rtable, info->select_perminfos);
}

/*
 * The row in the slot as a composite datum of the table's row type, its
 * out-of-line values fetched, as a whole-row Var makes it; built by core
 * (heap_copy_tuple_as_datum), which knows how this minor marks datums.
 */
static Datum
txg_probe_row_datum(TxgCall *call, TupleTableSlot *slot)
{
	MemoryContext old = MemoryContextSwitchTo(call->result_cxt);
	bool		shouldFree;
	HeapTuple	tup = ExecFetchSlotHeapTuple(slot, false, &shouldFree);
	TupleDesc	desc = slot->tts_tupleDescriptor;
	Datum		d;

	if (HeapTupleHeaderGetNatts(tup->t_data) < desc->natts)
	{
		/* added columns the row predates: their values, as a Var reads */
		HeapTuple	full;

		slot_getallattrs(slot);
		full = heap_form_tuple(desc, slot->tts_values, slot->tts_isnull);
		d = heap_copy_tuple_as_datum(full, desc);
		heap_freetuple(full);
	}
	else
		d = heap_copy_tuple_as_datum(tup, desc);
	Assert(!shouldFree);
	MemoryContextSwitchTo(old);
	return d;
}

/* the table's slot for the probe, made on first use or after an error */
static TupleTableSlot *
txg_probe_slot(TxgRelInfo *info, Relation rel)
{
	MemoryContext old;

	if (info->probe_busy)
	{
		/* the last scan failed: the abort released the slot's pin */
		MemoryContextDelete(info->probe_cxt);
		info->probe_cxt = NULL;
		info->probe_slot = NULL;
		info->probe_busy = false;
	}
	if (info->probe_slot != NULL)
		return info->probe_slot;

	info->probe_cxt = AllocSetContextCreate(info->cxt, "txguard probe slot",
											ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(info->probe_cxt);
	info->probe_slot =
		MakeSingleTupleTableSlot(CreateTupleDescCopyConstr(RelationGetDescr(rel)),
								 table_slot_callbacks(rel));
	MemoryContextSwitchTo(old);
	return info->probe_slot;
}

/*
 * Look the key of *row up in its arbiter index, as the lookup statement
 * would; TXG_PROBE_FALLBACK when the statement must run instead.
 */
TxgProbeResult
txg_probe(TxgCall *call, TxgRow *row, Datum *result)
{
	TxgIndex   *idx = row->arbiter;
	Relation	rel = call->rel;
	Relation	irel;
	ScanKeyData keys[INDEX_MAX_KEYS];
	IndexScanDesc scan;
	TupleTableSlot *slot;
	Snapshot	snapshot;
	bool		found;
	int			i;

	if (!txg_probe_applies(call, row))
		return TXG_PROBE_FALLBACK;

	txg_hooks_nested_statement();
	for (i = 0; i < idx->nkeys; i++)
		ScanKeyEntryInitializeWithInfo(&keys[i], 0, i + 1,
									   BTEqualStrategyNumber,
									   idx->opcintype[i], idx->keycoll[i],
									   &idx->eqfn[i], row->keyvals[i]);

	/*
	 * A statement of its own, as SPI runs one.  The snapshot is used where
	 * GetTransactionSnapshot() keeps it, without a copy: nothing until the
	 * scan ends takes another (the index's comparisons are built in).
	 */
	CommandCounterIncrement();
	snapshot = GetTransactionSnapshot();

	irel = index_open(idx->indexoid, AccessShareLock);
	slot = txg_probe_slot(call->info, rel);
	call->info->probe_busy = true;
	scan = txg_index_beginscan(rel, irel, snapshot, idx->nkeys);
	index_rescan(scan, keys, idx->nkeys, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	if (found)
		*result = txg_probe_row_datum(call, slot);
	ExecClearTuple(slot);
	index_endscan(scan);
	call->info->probe_busy = false;
	index_close(irel, NoLock);

	ereport(DEBUG1,
			(errmsg_internal("txguard: looked up the key in index \"%s\" directly: %s",
							 idx->name, found ? "found" : "not found")));
	return found ? TXG_PROBE_FOUND : TXG_PROBE_NOT_FOUND;
}
