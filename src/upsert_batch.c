/*-------------------------------------------------------------------------
 *
 * upsert_batch.c
 *		The batch helpers: txguard.insert_or_get_many, txguard.upsert_many
 *		and their "_created" forms.
 *
 * A batch is a JSON array of objects, each a proposed row with the same
 * arbiter.  Elements with the same key are one row: insert_or_get keeps
 * the first; upsert folds the later ones into it, as the sequence of
 * single calls would.  The rows are then processed in the arbiter's key
 * order (upsert.c's algorithm, one row at a time), so that two batches
 * with keys in common take their row locks in the same order and cannot
 * deadlock on each other.  The results come back one per key, in the
 * order of first appearance.
 *
 *-------------------------------------------------------------------------
 */
#include "upsert.h"

#include "funcapi.h"
#include "utils/jsonb.h"

#include "srf.h"

PG_FUNCTION_INFO_V1(txguard_insert_or_get_many);
PG_FUNCTION_INFO_V1(txguard_insert_or_get_many_created);
PG_FUNCTION_INFO_V1(txguard_upsert_many);
PG_FUNCTION_INFO_V1(txguard_upsert_many_created);

/* the elements of one batch */
typedef struct TxgBatch
{
	int			nrows;
	TxgRow	   *rows;			/* in input order */
	int		   *order;			/* row numbers in key order */
	bool	   *leader;			/* per row: the first of its key */
	TxgIndex   *arbiter;		/* of every row */
} TxgBatch;

typedef struct TxgSortArg
{
	TxgRow	   *rows;
	TxgIndex   *idx;
} TxgSortArg;

static int
txg_compare_keys(TxgIndex *idx, TxgRow *a, TxgRow *b)
{
	int			i;

	for (i = 0; i < idx->nkeys; i++)
	{
		int32		c;

		if (a->keynulls[i] || b->keynulls[i])
		{
			if (a->keynulls[i] && b->keynulls[i])
				continue;
			return a->keynulls[i] ? 1 : -1;		/* NULLS LAST */
		}
		c = DatumGetInt32(FunctionCall2Coll(&idx->cmp[i], idx->keycoll[i],
											a->keyvals[i], b->keyvals[i]));
		if (c != 0)
			return c < 0 ? -1 : 1;
	}
	return 0;
}

/* sort row numbers by key in index order, then by input position */
static int
txg_sort_cmp(const void *a, const void *b, void *arg)
{
	TxgSortArg *sa = (TxgSortArg *) arg;
	TxgRow	   *ra = &sa->rows[*(const int *) a];
	TxgRow	   *rb = &sa->rows[*(const int *) b];
	int			c = txg_compare_keys(sa->idx, ra, rb);

	if (c != 0)
		return c;
	return (ra->ordinal > rb->ordinal) - (ra->ordinal < rb->ordinal);
}

/*
 * Fold a later row with the same key into the first one (upsert).  By the
 * time the later element's own call would run, the row exists: that call
 * would update the columns it updates, and nothing else.  So only those
 * are taken, and the key keeps the first element's spelling (under
 * lower(sku), "x" then "X" stores "x", as two single calls would).
 */
static void
txg_merge_rows(TxgCall *call, TxgRow *into, TxgRow *from)
{
	int			i;

	for (i = 0; i < call->info->natts; i++)
	{
		if (!from->update[i])
			continue;
		if (!into->present[i])
			into->ncols++;
		into->present[i] = true;
		into->values[i] = from->values[i];
		into->nulls[i] = from->nulls[i];
		if (!into->update[i])
			into->nupdate++;
		into->update[i] = true;
	}
}

/* every element of vals as a proposed row with its arbiter and key */
static void
txg_batch_parse(TxgCall *call, Jsonb *vals, TxgBatch *batch)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			size = JB_ROOT_COUNT(vals);
	int			i = 0;

	batch->rows = palloc0(sizeof(TxgRow) * Max(size, 1));
	batch->order = palloc(sizeof(int) * Max(size, 1));
	batch->leader = palloc0(sizeof(bool) * Max(size, 1));

	it = JsonbIteratorInit(&vals->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		TxgRow	   *row;

		if (tok != WJB_ELEM)
			continue;
		if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("element %d of argument \"vals\" is not a JSON object",
							i + 1),
					 errhint("Pass one object per row, as in '[{\"email\": \"a@example.com\"}, {\"email\": \"b@example.com\"}]'.")));
		row = &batch->rows[i];
		txg_row_init(call, row, i);
		txg_parse_object(call, v.val.binary.data, row);
		row->arbiter = txg_choose_arbiter(call, row);
		if (i > 0 && row->arbiter != batch->rows[0].arbiter)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
					 errmsg("elements of vals have different conflict targets"),
					 errdetail("Element 1 is arbitrated by unique index \"%s\", element %d by unique index \"%s\".",
							   batch->rows[0].arbiter->name, i + 1,
							   row->arbiter->name),
					 errhint("Give every element the same key columns, or pass conflict_columns.")));
		txg_compute_key(call, row);
		batch->order[i] = i;
		i++;
	}
	batch->nrows = i;
	batch->arbiter = i > 0 ? batch->rows[0].arbiter : NULL;
}

/*
 * Sort by key in the index's own order: two batches with common keys
 * then lock (insert, update) them in the same order and cannot deadlock
 * on each other.  Equal keys end up adjacent, first occurrence first.
 */
static void
txg_batch_sort(TxgBatch *batch)
{
	TxgSortArg	sa;

	if (batch->nrows == 0)
		return;
	sa.rows = batch->rows;
	sa.idx = batch->arbiter;
	qsort_arg(batch->order, batch->nrows, sizeof(int), txg_sort_cmp, &sa);
}

/*
 * One leader per key, the first in input order; later duplicates fold
 * into it (upsert) as the sequence of single calls would leave the row.
 */
static void
txg_batch_fold_duplicates(TxgCall *call, TxgBatch *batch)
{
	TxgRow	   *rows = batch->rows;
	int		   *order = batch->order;
	int			i;

	/* what each element's own call would update, checked in input order */
	for (i = 0; i < batch->nrows; i++)
		txg_choose_update(call, &rows[i]);

	for (i = 0; i < batch->nrows; i++)
	{
		TxgRow	   *row = &rows[order[i]];

		if (i > 0 &&
			txg_compare_keys(batch->arbiter, &rows[order[i - 1]], row) == 0)
		{
			int			j = i - 1;

			while (!batch->leader[order[j]])
				j--;
			if (call->op == TXG_OP_UPSERT)
				txg_merge_rows(call, &rows[order[j]], row);
			continue;
		}
		batch->leader[order[i]] = true;
	}
}

/* the leaders, in key order */
static void
txg_batch_process(TxgCall *call, TxgBatch *batch)
{
	bool		pin = batch->arbiter != NULL && batch->arbiter->needs_pin;
	int			nestlevel = 0;
	int			i;

	if (pin)
		nestlevel = txg_pin_search_path();
	for (i = 0; i < batch->nrows; i++)
	{
		if (batch->leader[batch->order[i]])
			txg_process_row(call, &batch->rows[batch->order[i]]);
	}
	txg_spi_finish(call);
	if (pin)
		txg_unpin_search_path(nestlevel);
}

/* results in input order, one per key */
static void
txg_batch_results(TxgBatch *batch, bool status, TxgSrf *srf)
{
	int			i;

	for (i = 0; i < batch->nrows; i++)
	{
		TxgRow	   *row = &batch->rows[i];

		if (!batch->leader[i])
			continue;
		if (status)
		{
			Datum		values[3];
			bool		nulls[3] = {false, false, false};

			values[0] = row->result;
			values[1] = BoolGetDatum(row->created);
			values[2] = BoolGetDatum(row->updated);
			tuplestore_putvalues(srf->tupstore, srf->tupdesc, values, nulls);
		}
		else
		{
			HeapTupleHeader th = txg_datum_get_tuple_header(row->result);
			HeapTupleData tuple;

			tuple.t_len = HeapTupleHeaderGetDatumLength(th);
			ItemPointerSetInvalid(&tuple.t_self);
			tuple.t_tableOid = InvalidOid;
			tuple.t_data = th;
			tuplestore_puttuple(srf->tupstore, &tuple);
		}
	}
}

static void
txg_batch_run(FunctionCallInfo fcinfo, TxgOp op, bool status, TxgSrf *srf)
{
	TxgCall		call;
	TxgBatch	batch;
	Jsonb	   *vals;

	txg_open_call(fcinfo, &call, op, true);
	vals = PG_GETARG_JSONB_P(1);
	if (!JB_ROOT_IS_ARRAY(vals) || JB_ROOT_IS_SCALAR(vals))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"vals\" must be a JSON array of objects"),
				 errhint("Pass one object per row, as in '[{\"email\": \"a@example.com\"}, {\"email\": \"b@example.com\"}]'.")));

	txg_batch_parse(&call, vals, &batch);
	txg_batch_sort(&batch);
	txg_batch_fold_duplicates(&call, &batch);
	txg_batch_process(&call, &batch);
	txg_batch_results(&batch, status, srf);
	txg_close_call(&call);
}

/* txg_batch_run, counting the calls in progress */
static void
txg_batch(FunctionCallInfo fcinfo, TxgOp op, bool status)
{
	TxgSrf		srf;

	txg_srf_begin(fcinfo, &srf);
	txg_call_enter();
	PG_TRY();
	{
		txg_batch_run(fcinfo, op, status, &srf);
	}
	PG_CATCH();
	{
		txg_call_leave(false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	txg_call_leave(true);
}

Datum
txguard_insert_or_get_many(PG_FUNCTION_ARGS)
{
	txg_batch(fcinfo, TXG_OP_INSERT_OR_GET, false);
	return (Datum) 0;
}

Datum
txguard_insert_or_get_many_created(PG_FUNCTION_ARGS)
{
	txg_batch(fcinfo, TXG_OP_INSERT_OR_GET, true);
	return (Datum) 0;
}

Datum
txguard_upsert_many(PG_FUNCTION_ARGS)
{
	txg_batch(fcinfo, TXG_OP_UPSERT, false);
	return (Datum) 0;
}

Datum
txguard_upsert_many_created(PG_FUNCTION_ARGS)
{
	txg_batch(fcinfo, TXG_OP_UPSERT, true);
	return (Datum) 0;
}
