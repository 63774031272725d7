/*-------------------------------------------------------------------------
 *
 * upsert_row.c
 *		A jsonb object of vals as a proposed row (TxgRow): one value of
 *		the column's type per key, and which columns were given.
 *
 * A JSON string goes through the column type's input function, numbers
 * and booleans through their text; null is SQL NULL (checked against a
 * domain's NOT NULL).  json and jsonb columns take any JSON value as is;
 * array columns also take a JSON array of scalars, and so do int2vector
 * and oidvector columns (built by their own input function).  Errors raised while a
 * value is read carry a CONTEXT line naming the column (and, in a batch,
 * the element).
 *
 *-------------------------------------------------------------------------
 */
#include "upsert.h"

#include "catalog/pg_attribute.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"

static void
txg_value_error_callback(void *arg)
{
	TxgCall    *call = (TxgCall *) arg;

	if (call->ctx_column == NULL)
		return;
	if (call->ctx_element >= 0)
		errcontext("element %d of vals, column \"%s\" of table \"%s\"",
				   call->ctx_element + 1, call->ctx_column,
				   call->info->relname);
	else
		errcontext("value for column \"%s\" of table \"%s\"",
				   call->ctx_column, call->info->relname);
}

static const char *
txg_jsonb_kind(JsonbValue *v)
{
	if (v->type == jbvBinary)
		return JsonContainerIsObject(v->val.binary.data) ? "object" : "array";
	return "value";
}

/* the text of a JSON scalar, as a type's input function wants it */
static char *
txg_scalar_text(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		default:
			elog(ERROR, "unexpected jsonb value type %d", (int) v->type);
	}
	return NULL;				/* keep compiler quiet */
}

/* the JSON text of any jsonb value */
static char *
txg_json_text(JsonbValue *v)
{
	Jsonb	   *jb;

	if (v->type == jbvBinary)
		return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
	jb = JsonbValueToJsonb(v);
	return JsonbToCString(NULL, &jb->root, VARSIZE(jb));
}

/* a JSON array to a one-dimensional array of the column's type */
static Datum
txg_array_value(TxgColumn *col, JsonbValue *v)
{
	JsonbIterator *it = JsonbIteratorInit(v->val.binary.data);
	JsonbValue	elem;
	JsonbIteratorToken tok;
	Oid			infunc;
	Oid			ioparam;
	FmgrInfo	flinfo;
	int16		elmlen;
	bool		elmbyval;
	char		elmalign;
	Datum	   *elems;
	bool	   *nulls;
	int			n = 0;
	int			size = 8;
	int			dims[1];
	int			lbs[1] = {1};
	Datum		result;

	getTypeInputInfo(col->elemtype, &infunc, &ioparam);
	fmgr_info(infunc, &flinfo);
	get_typlenbyvalalign(col->elemtype, &elmlen, &elmbyval, &elmalign);
	elems = palloc(sizeof(Datum) * size);
	nulls = palloc(sizeof(bool) * size);

	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (n == size)
		{
			size *= 2;
			elems = repalloc(elems, sizeof(Datum) * size);
			nulls = repalloc(nulls, sizeof(bool) * size);
		}
		if (elem.type == jbvBinary)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("cannot assign a nested JSON %s to an element of column \"%s\" of type %s",
							txg_jsonb_kind(&elem), col->name,
							format_type_with_typemod(col->typid, col->typmod)),
					 errhint("Pass the array as a string in the type's text form, for example \"{{1,2},{3,4}}\".")));
		nulls[n] = (elem.type == jbvNull);
		elems[n] = nulls[n] ? (Datum) 0 :
			InputFunctionCall(&flinfo, txg_scalar_text(&elem), ioparam,
							  col->typmod);
		n++;
	}
	dims[0] = n;
	result = PointerGetDatum(construct_md_array(elems, nulls, n > 0 ? 1 : 0,
												dims, lbs, col->elemtype,
												elmlen, elmbyval, elmalign));
	if (col->typid != col->basetype)
		domain_check(result, false, col->typid, NULL, CurrentMemoryContext);
	return result;
}

/*
 * A JSON array to an int2vector or oidvector column.  These types look
 * like arrays but have conventions of their own (one dimension, lower
 * bound 0, no nulls), which only their input function knows: the elements
 * are read with the element type's input function, as for arrays, then
 * written out separated by spaces and given to the column type's input
 * function (a domain's checks included).
 */
static Datum
txg_vector_value(TxgColumn *col, JsonbValue *v)
{
	JsonbIterator *it = JsonbIteratorInit(v->val.binary.data);
	JsonbValue	elem;
	JsonbIteratorToken tok;
	Oid			infunc;
	Oid			outfunc;
	Oid			ioparam;
	bool		isvarlena;
	FmgrInfo	inflinfo;
	FmgrInfo	outflinfo;
	StringInfoData text;

	getTypeInputInfo(col->elemtype, &infunc, &ioparam);
	fmgr_info(infunc, &inflinfo);
	getTypeOutputInfo(col->elemtype, &outfunc, &isvarlena);
	fmgr_info(outfunc, &outflinfo);
	initStringInfo(&text);

	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
	{
		Datum		d;

		if (tok != WJB_ELEM)
			continue;
		if (elem.type == jbvBinary)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("cannot assign a nested JSON %s to an element of column \"%s\" of type %s",
							txg_jsonb_kind(&elem), col->name,
							format_type_with_typemod(col->typid, col->typmod)),
					 errhint("Pass a flat array of numbers, as in [1, 2].")));
		if (elem.type == jbvNull)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("cannot assign a null element to column \"%s\" of type %s",
							col->name,
							format_type_with_typemod(col->typid, col->typmod)),
					 errdetail("Type %s holds no null elements.",
							   format_type_be(col->basetype))));
		d = InputFunctionCall(&inflinfo, txg_scalar_text(&elem), ioparam, -1);
		appendStringInfo(&text, "%s%s", text.len > 0 ? " " : "",
						 OutputFunctionCall(&outflinfo, d));
	}
	return InputFunctionCall(&col->infunc, text.data, col->ioparam,
							 col->typmod);
}

/* a jsonb value of vals to a value of the column's type */
static Datum
txg_column_value(TxgColumn *col, JsonbValue *v, bool *isnull)
{
	*isnull = false;
	if (v->type == jbvNull)
	{
		*isnull = true;
		/* a domain may reject nulls */
		if (col->typid != col->basetype)
			return InputFunctionCall(&col->infunc, NULL, col->ioparam,
									 col->typmod);
		return (Datum) 0;
	}
	if (col->isjson)
		return InputFunctionCall(&col->infunc, txg_json_text(v), col->ioparam,
								 col->typmod);
	if (v->type == jbvBinary)
	{
		if (OidIsValid(col->elemtype) && !JsonContainerIsObject(v->val.binary.data))
		{
			if (col->basetype == INT2VECTOROID || col->basetype == OIDVECTOROID)
				return txg_vector_value(col, v);
			return txg_array_value(col, v);
		}
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("cannot assign a JSON %s to column \"%s\" of type %s",
						txg_jsonb_kind(v), col->name,
						format_type_with_typemod(col->typid, col->typmod)),
				 errhint("Pass the value as a string in the type's text form.")));
	}
	/* text's input function copies the string: copy it only once */
	if (v->type == jbvString && col->infunc.fn_oid == F_TEXTIN)
		return PointerGetDatum(cstring_to_text_with_len(v->val.string.val,
														v->val.string.len));
	return InputFunctionCall(&col->infunc, txg_scalar_text(v), col->ioparam,
							 col->typmod);
}

/* an empty proposed row: its per-attribute arrays in one allocation */
void
txg_row_init(TxgCall *call, TxgRow *row, int ordinal)
{
	int			natts = Max(call->info->natts, 1);
	char	   *space;

	memset(row, 0, sizeof(TxgRow));
	row->ordinal = ordinal;
	space = palloc0(MAXALIGN(sizeof(Datum) * natts) + 3 * sizeof(bool) * natts);
	row->values = (Datum *) space;
	space += MAXALIGN(sizeof(Datum) * natts);
	row->nulls = (bool *) space;
	row->present = row->nulls + natts;
	row->update = row->present + natts;
}

/* the column a key of vals names; one an INSERT may give a value */
static AttrNumber
txg_key_column(TxgCall *call, TxgRow *row, JsonbValue *key)
{
	TxgRelInfo *info = call->info;
	AttrNumber	attnum;
	TxgColumn  *col;

	attnum = txg_find_column(info, key->val.string.val, key->val.string.len);
	if (attnum == 0)
	{
		call->ctx_column = NULL;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						pnstrdup(key->val.string.val, key->val.string.len),
						info->relname),
				 call->batch ?
				 errdetail("The key is in element %d of vals.",
						   row->ordinal + 1) : 0));
	}
	col = &info->cols[attnum - 1];
	if (col->identity == ATTRIBUTE_IDENTITY_ALWAYS)
		ereport(ERROR,
				(errcode(ERRCODE_GENERATED_ALWAYS),
				 errmsg("cannot insert a non-DEFAULT value into column \"%s\"",
						col->name),
				 errdetail("Column \"%s\" is an identity column defined as GENERATED ALWAYS.",
						   col->name),
				 errhint("Leave the column out of vals, or declare it GENERATED BY DEFAULT.")));
	if (col->generated)
		ereport(ERROR,
				(errcode(ERRCODE_GENERATED_ALWAYS),
				 errmsg("cannot insert a non-DEFAULT value into column \"%s\"",
						col->name),
				 errdetail("Column \"%s\" is a generated column.",
						   col->name),
				 errhint("Leave the column out of vals.")));
	return attnum;
}

/*
 * One JSON object of vals into a proposed row.  The keys are read where
 * jsonb keeps them, as its iterator reads them (the object's first
 * JsonContainerSize() entries, in storage order), and each value is
 * fetched by its key: the same pairs in the same order, without the
 * iterator's allocations.
 */
void
txg_parse_object(TxgCall *call, JsonbContainer *container, TxgRow *row)
{
	TxgRelInfo *info = call->info;
	int			npairs = JsonContainerSize(container);
	char	   *keydata = (char *) &container->children[npairs * 2];
	ErrorContextCallback errcb;
	int			i;

	Assert(JsonContainerIsObject(container));
	errcb.callback = txg_value_error_callback;
	errcb.arg = call;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	for (i = 0; i < npairs; i++)
	{
		JsonbValue	key;
		JsonbValue	v;
		AttrNumber	attnum;
		TxgColumn  *col;

		key.type = jbvString;
		key.val.string.val = keydata + getJsonbOffset(container, i);
		key.val.string.len = getJsonbLength(container, i);
		attnum = txg_key_column(call, row, &key);
		if (getKeyJsonValueFromContainer(container, key.val.string.val,
										 key.val.string.len, &v) == NULL)
			elog(ERROR, "jsonb object has no value for its own key");

		col = &info->cols[attnum - 1];
		call->ctx_column = col->name;
		call->ctx_element = call->batch ? row->ordinal : -1;
		row->values[attnum - 1] = txg_column_value(col, &v,
												   &row->nulls[attnum - 1]);
		call->ctx_column = NULL;
		if (!row->present[attnum - 1])
			row->ncols++;
		row->present[attnum - 1] = true;
	}
	error_context_stack = errcb.previous;
}
