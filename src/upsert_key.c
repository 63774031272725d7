/*-------------------------------------------------------------------------
 *
 * upsert_key.c
 *		Expressions over a proposed row: the defaults its missing columns
 *		will take, whether it satisfies a partial index's predicate, and
 *		its key under the arbiter.
 *
 * The row is loaded into a virtual slot of the call (TxgCall.slot), with
 * the non-volatile default of each missing column an expression needs;
 * a volatile default cannot be known before the insert, so a predicate
 * that needs one does not hold.  Per-row memory lives in the per-tuple
 * context of the call's EState and is reset after each row.
 *
 *-------------------------------------------------------------------------
 */
#include "upsert.h"

#include "executor/executor.h"
#include "utils/datum.h"
#include "utils/rel.h"

/*
 * Load the proposed row into the call's slot, with the default of each
 * missing column in "needed" that has a non-volatile one.  Returns false
 * if a needed column's default is volatile (it cannot be known before the
 * insert).
 */
static bool
txg_load_slot(TxgCall *call, TxgRow *row, Bitmapset *needed)
{
	TxgRelInfo *info = call->info;
	ExprContext *econtext;
	TupleTableSlot *slot;
	int			m = -1;

	if (call->estate == NULL)
	{
		call->estate = CreateExecutorState();
		call->slot = MakeSingleTupleTableSlot(CreateTupleDescCopy(RelationGetDescr(call->rel)),
											  &TTSOpsVirtual);
	}
	slot = call->slot;
	econtext = GetPerTupleExprContext(call->estate);
	ResetExprContext(econtext);

	ExecClearTuple(slot);
	memcpy(slot->tts_values, row->values, sizeof(Datum) * info->natts);
	memcpy(slot->tts_isnull, row->nulls, sizeof(bool) * info->natts);
	while ((m = bms_next_member(needed, m)) >= 0)
	{
		TxgColumn  *col = &info->cols[m - 1];

		if (row->present[m - 1])
			continue;
		if (col->defvolatile)
			return false;
		slot->tts_isnull[m - 1] = true;
		slot->tts_values[m - 1] = (Datum) 0;
	}
	ExecStoreVirtualTuple(slot);
	econtext->ecxt_scantuple = slot;

	/* defaults second: a generated column's expression reads the others */
	m = -1;
	while ((m = bms_next_member(needed, m)) >= 0)
	{
		TxgColumn  *col = &info->cols[m - 1];
		ExprState  *es;

		if (row->present[m - 1] || col->defexpr == NULL)
			continue;
		es = ExecInitExpr(col->defexpr, NULL);
		slot->tts_values[m - 1] =
			ExecEvalExprSwitchContext(es, econtext, &slot->tts_isnull[m - 1]);
	}
	return true;
}

/* does the proposed row satisfy the index's predicate? */
bool
txg_predicate_holds(TxgCall *call, TxgRow *row, TxgIndex *idx)
{
	ExprState  *qual;

	if (idx->pred == NIL)
		return true;
	if (!txg_load_slot(call, row, bms_union(idx->predcols, idx->keycols)))
		return false;
	qual = ExecInitQual(idx->pred, NULL);
	return ExecQual(qual, GetPerTupleExprContext(call->estate));
}

/* a NULL key element: a key value, or an error if NULLs are distinct */
static void
txg_check_null_key(TxgCall *call, TxgRow *row, TxgIndex *idx, int i)
{
	if (!idx->nulls_not_distinct)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 idx->keys[i] > 0 ?
				 errmsg("null value in conflict column \"%s\" of table \"%s\"",
						idx->matchtext[i], call->info->relname) :
				 errmsg("null value of conflict key expression \"%s\" of table \"%s\"",
						txg_key_spelling(call->info, idx, i),
						call->info->relname),
				 errdetail("Unique index \"%s\" treats null values as distinct, so a row with a null key would be inserted again on every call.",
						   idx->name),
				 call->batch ?
				 errcontext("element %d of vals", row->ordinal + 1) : 0));
	row->nullmask |= (1U << i);
}

/* the arbiter's key values for the proposed row */
void
txg_compute_key(TxgCall *call, TxgRow *row)
{
	TxgIndex   *idx = row->arbiter;
	bool		loaded = false;
	int			i;

	row->nullmask = 0;
	for (i = 0; i < idx->nkeys; i++)
	{
		if (idx->keys[i] > 0)
		{
			row->keyvals[i] = row->values[idx->keys[i] - 1];
			row->keynulls[i] = row->nulls[idx->keys[i] - 1];
		}
		else
		{
			ExprState  *es;
			Datum		d;
			bool		isnull;

			if (!loaded)
			{
				/* every key column is in vals: checked by the caller */
				(void) txg_load_slot(call, row, idx->keycols);
				loaded = true;
			}
			es = ExecInitExpr(idx->exprs[i], NULL);
			d = ExecEvalExprSwitchContext(es,
										  GetPerTupleExprContext(call->estate),
										  &isnull);
			row->keynulls[i] = isnull;
			row->keyvals[i] = isnull ? (Datum) 0 :
				datumCopy(d, idx->keybyval[i], idx->keylen[i]);
		}
		if (row->keynulls[i])
			txg_check_null_key(call, row, idx, i);
	}
	if (call->estate)
		ResetExprContext(GetPerTupleExprContext(call->estate));
}
