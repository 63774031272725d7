/*-------------------------------------------------------------------------
 *
 * upsert.c
 *		Race-free idempotent helpers: txguard.insert_or_get, txguard.upsert
 *		and their "_created" forms that also say what happened; the
 *		algorithm for one row, which the batch ("_many") forms share.
 *
 * Algorithm, for one row with arbiter index I and key K (the values of I's
 * key columns and expressions computed from vals):
 *
 *	1. SELECT the row WHERE I's key = K [AND I's predicate].  Found: return
 *	   it (upsert: first UPDATE the requested columns if any differs).
 *	2. Not found: INSERT ... ON CONFLICT (I's key) [WHERE predicate]
 *	   DO NOTHING RETURNING the row.  A row comes back: it is new.
 *	3. No row (a concurrent transaction committed the key between 1 and 2,
 *	   and ON CONFLICT waited for it): go back to 1, with a fresh snapshot
 *	   in READ COMMITTED.  A concurrent delete between 2 and 1 sends us
 *	   round again; after TXG_MAX_ATTEMPTS rounds we give up with an error
 *	   that names the likely causes.
 *
 * Looking up first means the existing-row path runs one read-only index
 * scan: no row version, no dead tuple, no trigger, no nextval(), not even
 * a transaction id.  The lookup takes no row lock (FOR KEY SHARE would need
 * UPDATE privilege, assign an xid and dirty the page); the row is read as
 * of the statement's snapshot, like any READ COMMITTED read.  ON CONFLICT
 * DO NOTHING makes the insert the one place where concurrent callers meet:
 * the arbiter index decides, so there is never a duplicate and never a
 * unique violation from the arbiter.  In REPEATABLE READ and SERIALIZABLE
 * a conflict with a row the snapshot cannot see raises SQLSTATE 40001,
 * reworded here to say that the transaction must be retried.
 *
 * The arbiter is conflict_columns when given, else inferred from the keys
 * of vals: the primary key when vals has all its columns, else the only
 * unique index all of whose columns are in vals (expression indexes and
 * partial indexes whose predicate the proposed row satisfies included).
 * Lookup, insert and update use the index's own key expressions,
 * collations, equality operators, predicate and NULL semantics.
 *
 * Statements are built as text with every name quoted and qualified
 * (operators as OPERATOR(schema.op), collations and operator classes with
 * their schema); values only travel as parameters, so those statements
 * mean the same under any search_path.  The exception is an index's
 * expressions and predicate, which ruleutils deparses with unqualified
 * built-in names: they are deparsed, and the statements that contain them
 * run, with search_path pinned to pg_catalog, pg_temp.  Only then, because
 * a pinned path costs a GUC save and restore per call, and because the
 * triggers that the statements fire see it too.
 *
 * The helpers are split by concern (see upsert.h for the list); this file
 * holds the algorithm above, the call's set-up from the SQL arguments, and
 * the single-row SQL functions.  The batch forms are in upsert_batch.c.
 *
 *-------------------------------------------------------------------------
 */
#include "upsert.h"

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(txguard_insert_or_get);
PG_FUNCTION_INFO_V1(txguard_insert_or_get_created);
PG_FUNCTION_INFO_V1(txguard_upsert);
PG_FUNCTION_INFO_V1(txguard_upsert_created);


/* ----------------------------------------------------------------
 * Arguments
 * ----------------------------------------------------------------
 */

static void
txg_null_argument(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
			 errmsg("argument \"%s\" must not be null", name)));
}

/* a text[] argument as a list of C strings */
static List *
txg_text_array(ArrayType *arr, const char *argname)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	List	   *result = NIL;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"%s\" must be a one-dimensional array",
						argname)));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument \"%s\" must not contain null elements",
							argname)));
		result = lappend(result, TextDatumGetCString(elems[i]));
	}
	return result;
}

/* the table behind row_type, checked and opened */
void
txg_open_call(FunctionCallInfo fcinfo, TxgCall *call, TxgOp op, bool batch)
{
	Oid			typid = get_fn_expr_argtype(fcinfo->flinfo, 0);
	Oid			relid;
	Relation	rel;
	char		relkind;

	memset(call, 0, sizeof(TxgCall));
	call->op = op;
	call->batch = batch;
	call->ctx_element = -1;
	call->result_cxt = CurrentMemoryContext;

	if (PG_ARGISNULL(1))
		txg_null_argument("vals");

	relid = OidIsValid(typid) ? txg_relid_of_type(typid) : InvalidOid;
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("row_type must be the row type of a table, not type %s",
						format_type_be(typid)),
				 errhint("Pass a null value cast to the table's type, as in NULL::my_table.")));

	rel = relation_open(relid, AccessShareLock);
	relkind = rel->rd_rel->relkind;
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", RelationGetRelationName(rel)),
				 errdetail("txguard helpers insert into ordinary and partitioned tables only.")));
	call->rel = rel;
	call->info = txg_get_relinfo(rel);

	if (PG_NARGS() > 2 && !PG_ARGISNULL(2))
	{
		call->conflict_columns = txg_text_array(PG_GETARG_ARRAYTYPE_P(2),
												"conflict_columns");
		if (call->conflict_columns == NIL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("argument \"conflict_columns\" must not be empty"),
					 errhint("Pass NULL to infer the conflict target from vals.")));
	}
	if (op == TXG_OP_UPSERT && PG_NARGS() > 3 && !PG_ARGISNULL(3))
	{
		call->have_update_columns = true;
		call->update_columns = txg_text_array(PG_GETARG_ARRAYTYPE_P(3),
											  "update_columns");
	}
}

void
txg_close_call(TxgCall *call)
{
	if (call->slot)
		ExecDropSingleTupleTableSlot(call->slot);
	if (call->estate)
		FreeExecutorState(call->estate);
	relation_close(call->rel, NoLock);
}


/* ----------------------------------------------------------------
 * One row
 * ----------------------------------------------------------------
 */

/* a table this wide or narrower has its row compared on the stack */
#define TXG_SMALL_NATTS 32

/* would updating the existing row with vals change any column? */
static bool
txg_row_differs(TxgCall *call, TxgRow *row, Datum existing)
{
	TxgRelInfo *info = call->info;
	TupleDesc	tupdesc = RelationGetDescr(call->rel);
	HeapTupleHeader th = txg_datum_get_tuple_header(existing);
	HeapTupleData tuple;
	Datum		values_buf[TXG_SMALL_NATTS];
	bool		nulls_buf[TXG_SMALL_NATTS];
	Datum	   *values = values_buf;
	bool	   *nulls = nulls_buf;
	int			i;

	if (info->natts > TXG_SMALL_NATTS)
	{
		values = palloc(sizeof(Datum) * info->natts);
		nulls = palloc(sizeof(bool) * info->natts);
	}
	tuple.t_len = HeapTupleHeaderGetDatumLength(th);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = th;
	heap_deform_tuple(&tuple, tupdesc, values, nulls);

	for (i = 0; i < info->natts; i++)
	{
		TxgColumn  *col = &info->cols[i];

		if (!row->update[i])
			continue;
		if (nulls[i] != row->nulls[i])
			return true;
		if (!nulls[i] &&
			!datum_image_eq(values[i], row->values[i], col->typbyval,
							col->typlen))
			return true;
	}
	return false;
}

/*
 * The rounds ran out: the lookup found the row but the update missed it
 * (update_failed), or neither the insert nor the lookup saw a row.
 */
static void
txg_report_attempts_exhausted(TxgCall *call, TxgRow *row, bool update_failed,
							  int attempts)
{
	TxgIndex   *idx = row->arbiter;

	if (update_failed)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not update the row with this key in table \"%s\"",
						call->info->relname),
				 errdetail("The lookup through unique index \"%s\" found the row, but the update did not reach it (%d attempts). Likely causes: concurrent deletes or key changes, a row-level security policy that lets the current user see the row but not update it, or a BEFORE UPDATE trigger that skips the row.",
						   idx->name, attempts),
				 call->batch ?
				 errcontext("element %d of vals", row->ordinal + 1) : 0));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("could not insert or find the row with this key in table \"%s\"",
					call->info->relname),
			 errdetail("The insert added no row, and the lookup through unique index \"%s\" found none (%d attempts). Likely causes: concurrent deletes of the row, a row-level security policy that hides it from the current user, or a BEFORE INSERT trigger that changes the key or skips the row.",
					   idx->name, attempts),
			 call->batch ?
			 errcontext("element %d of vals", row->ordinal + 1) : 0));
}

/* the algorithm of the file header, for one row */
void
txg_process_row(TxgCall *call, TxgRow *row)
{
	bool		update_failed = false;
	int			attempt;

	for (attempt = 1; attempt <= TXG_MAX_ATTEMPTS; attempt++)
	{
		Datum		found;

		CHECK_FOR_INTERRUPTS();
		if (txg_lookup(call, row, &found))
		{
			if (row->nupdate == 0 || !txg_row_differs(call, row, found))
			{
				row->result = found;
				return;
			}
			if (txg_update(call, row, &row->result))
			{
				row->updated = true;
				return;
			}
			/* deleted, or its key changed, since the lookup */
			update_failed = true;
		}
		else
		{
			update_failed = false;
			if (txg_insert(call, row, &row->result))
			{
				row->created = true;
				return;
			}
		}
		/* a transaction snapshot will not change: no use trying again */
		if (IsolationUsesXactSnapshot())
			break;
	}

	txg_report_attempts_exhausted(call, row, update_failed,
								  Min(attempt, TXG_MAX_ATTEMPTS));
}


/* ----------------------------------------------------------------
 * Single-row helpers
 * ----------------------------------------------------------------
 */

/* parse, choose, and run one row; leaves results in *row */
static void
txg_single_run(FunctionCallInfo fcinfo, TxgOp op, TxgRow *row)
{
	TxgCall		call;
	Jsonb	   *vals;
	int			nestlevel = 0;

	txg_open_call(fcinfo, &call, op, false);
	vals = PG_GETARG_JSONB_P(1);
	if (!JB_ROOT_IS_OBJECT(vals) || JB_ROOT_IS_SCALAR(vals))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"vals\" must be a JSON object"),
				 errhint("Pass the row as an object whose keys are column names, as in '{\"email\": \"a@example.com\"}'.")));

	txg_row_init(&call, row, 0);
	txg_parse_object(&call, &vals->root, row);
	row->arbiter = txg_choose_arbiter(&call, row);
	txg_compute_key(&call, row);
	txg_choose_update(&call, row);

	if (row->arbiter->needs_pin)
		nestlevel = txg_pin_search_path();
	txg_process_row(&call, row);
	txg_spi_finish(&call);
	if (row->arbiter->needs_pin)
		txg_unpin_search_path(nestlevel);
	txg_close_call(&call);
}

/* txg_single_run, counting the calls in progress */
static void
txg_single(FunctionCallInfo fcinfo, TxgOp op, TxgRow *row)
{
	txg_call_enter();
	PG_TRY();
	{
		txg_single_run(fcinfo, op, row);
	}
	PG_CATCH();
	{
		txg_call_leave(false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	txg_call_leave(true);
}

/* (r, created[, updated]) for the "_created" forms */
static Datum
txg_status_tuple(FunctionCallInfo fcinfo, TxgRow *row, TupleDesc tupdesc)
{
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	values[0] = row->result;
	values[1] = BoolGetDatum(row->created);
	values[2] = BoolGetDatum(row->updated);
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

static Datum
txg_single_status(FunctionCallInfo fcinfo, TxgOp op)
{
	TupleDesc	tupdesc;
	TxgRow		row;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	txg_single(fcinfo, op, &row);
	return txg_status_tuple(fcinfo, &row, tupdesc);
}

Datum
txguard_insert_or_get(PG_FUNCTION_ARGS)
{
	TxgRow		row;

	txg_single(fcinfo, TXG_OP_INSERT_OR_GET, &row);
	PG_RETURN_DATUM(row.result);
}

Datum
txguard_insert_or_get_created(PG_FUNCTION_ARGS)
{
	return txg_single_status(fcinfo, TXG_OP_INSERT_OR_GET);
}

Datum
txguard_upsert(PG_FUNCTION_ARGS)
{
	TxgRow		row;

	txg_single(fcinfo, TXG_OP_UPSERT, &row);
	PG_RETURN_DATUM(row.result);
}

Datum
txguard_upsert_created(PG_FUNCTION_ARGS)
{
	return txg_single_status(fcinfo, TXG_OP_UPSERT);
}
