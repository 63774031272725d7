/*-------------------------------------------------------------------------
 *
 * upsert_arbiter.c
 *		Choosing the arbiter of a proposed row (the unique index whose key
 *		finds and protects it) and, for upsert, the columns to update.
 *
 * With conflict_columns, the arbiter is the index whose key elements are
 * exactly the names given (columns, or index expressions as pg_indexes
 * spells them); failing that, the index whose key uses exactly the named
 * columns.  Without it, the arbiter is inferred from the keys of vals:
 * the primary key when vals has all its columns, else the only unique
 * index all of whose columns are in vals.  Either way, a partial index
 * qualifies only if the proposed row satisfies its predicate, indexes with
 * the same definition count as one, and the one left must be a unique,
 * non-deferrable index whose whole key comes from vals.
 *
 * An arbiter inferred from the keys of vals alone (no partial index's
 * predicate had to be evaluated for the row) is remembered in the table's
 * TxgRelInfo with those keys: the next row with the same keys gets it
 * without the search.  It goes with the TxgRelInfo when the table or one
 * of its indexes changes.
 *
 *-------------------------------------------------------------------------
 */
#include "upsert.h"

#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

static bool
txg_same_index(TxgIndex *a, TxgIndex *b)
{
	int			i;

	if (a->nkeys != b->nkeys || !equal(a->rawpred, b->rawpred))
		return false;
	for (i = 0; i < a->nkeys; i++)
	{
		if (a->keys[i] != b->keys[i] || a->keycoll[i] != b->keycoll[i] ||
			strcmp(a->keytext[i], b->keytext[i]) != 0 ||
			(a->infertext[i] == NULL) != (b->infertext[i] == NULL) ||
			(a->infertext[i] && strcmp(a->infertext[i], b->infertext[i]) != 0))
			return false;
	}
	return true;
}

/* the candidates as "\"name\" (a, b)" for messages */
static char *
txg_index_list(TxgRelInfo *info, List *indexes)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, indexes)
	{
		TxgIndex   *idx = (TxgIndex *) lfirst(lc);

		appendStringInfo(&buf, "%s\"%s\" %s", buf.len > 0 ? ", " : "",
						 idx->name, txg_index_columns(info, idx));
		if (idx->predtext)
			appendStringInfo(&buf, " WHERE %s", idx->predtext);
	}
	return buf.data;
}

/* the given columns as "a, b" */
static char *
txg_present_list(TxgCall *call, TxgRow *row)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < call->info->natts; i++)
		if (row->present[i])
			appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "",
							 quote_identifier(call->info->cols[i].name));
	return buf.data;
}

static char *
txg_name_list(List *names)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, names)
	{
		const char *name = (const char *) lfirst(lc);
		bool		isexpr = strchr(name, '(') != NULL;

		appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "",
						 isexpr ? name : quote_identifier(name));
	}
	return buf.data;
}

static bool
txg_name_in(List *names, const char *name)
{
	ListCell   *lc;

	foreach(lc, names)
		if (strcmp((const char *) lfirst(lc), name) == 0)
			return true;
	return false;
}

/*
 * The key element of some index that name spells, as its matchtext; NULL
 * if there is none.  An expression may be spelt as pg_indexes shows it
 * under search_path pg_catalog (the matchtext itself, with non-catalog
 * functions schema-qualified) or under the caller's search_path; the
 * second needs a deparse, so it is tried only when the first fails.
 */
static char *
txg_index_key_named(TxgRelInfo *info, const char *name)
{
	int			i;
	int			k;

	for (i = 0; i < info->nindexes; i++)
		for (k = 0; k < info->indexes[i].nkeys; k++)
			if (strcmp(info->indexes[i].matchtext[k], name) == 0)
				return info->indexes[i].matchtext[k];
	for (i = 0; i < info->nindexes; i++)
	{
		TxgIndex   *idx = &info->indexes[i];

		for (k = 0; k < idx->nkeys; k++)
			if (idx->rawexprs[k] != NULL &&
				strcmp(txg_key_spelling(info, idx, k), name) == 0)
				return idx->matchtext[k];
	}
	return NULL;
}

/* does the index's key consist exactly of the named columns/expressions? */
static bool
txg_index_matches_names(TxgIndex *idx, List *names)
{
	int			i;
	int			distinct = 0;
	ListCell   *lc;

	for (i = 0; i < idx->nkeys; i++)
		if (!txg_name_in(names, idx->matchtext[i]))
			return false;
	/* and every name is a key element (names may repeat) */
	foreach(lc, names)
	{
		bool		found = false;

		for (i = 0; i < idx->nkeys && !found; i++)
			found = strcmp(idx->matchtext[i], (char *) lfirst(lc)) == 0;
		if (!found)
			return false;
		distinct++;
	}
	return distinct > 0;
}

/* the columns vals gives, as attnums; an empty object is an error */
static Bitmapset *
txg_given_columns(TxgCall *call, TxgRow *row)
{
	Bitmapset  *given = NULL;
	int			i;

	for (i = 0; i < call->info->natts; i++)
		if (row->present[i])
			given = bms_add_member(given, i + 1);
	if (given == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 call->batch ?
				 errmsg("element %d of argument \"vals\" is an empty object",
						row->ordinal + 1) :
				 errmsg("argument \"vals\" is an empty object"),
				 errdetail("The row needs at least the columns of its key.")));
	return given;
}

/*
 * Check that every name of conflict_columns is a column or an index key
 * expression; returns the named columns, whether all names are columns,
 * and in *keys the names with each expression spelt as its matchtext.
 */
static Bitmapset *
txg_named_columns(TxgCall *call, bool *all_columns, List **keys)
{
	TxgRelInfo *info = call->info;
	Bitmapset  *named = NULL;
	ListCell   *lc;

	*all_columns = true;
	*keys = NIL;
	foreach(lc, call->conflict_columns)
	{
		char	   *name = (char *) lfirst(lc);
		AttrNumber	attnum = txg_find_column(info, name, strlen(name));
		char	   *key;

		if (attnum > 0)
		{
			named = bms_add_member(named, attnum);
			*keys = lappend(*keys, name);
			continue;
		}
		*all_columns = false;
		key = txg_index_key_named(info, name);
		*keys = lappend(*keys, key);
		if (key == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of relation \"%s\" does not exist",
							name, info->relname),
					 errdetail("The entries of conflict_columns name columns, or index expressions as pg_indexes shows them.")));
	}
	return named;
}

/*
 * Candidates named by conflict_columns: the indexes whose key elements
 * are exactly the names, else those whose key uses exactly the named
 * columns; a partial index the row falls outside goes to *outside.
 */
static List *
txg_candidates_by_names(TxgCall *call, TxgRow *row, List **outside)
{
	TxgRelInfo *info = call->info;
	List	   *candidates = NIL;
	Bitmapset  *named;
	bool		all_columns;
	List	   *keys;
	ListCell   *lc;
	int			i;

	named = txg_named_columns(call, &all_columns, &keys);
	for (i = 0; i < info->nindexes; i++)
	{
		TxgIndex   *idx = &info->indexes[i];

		if (idx->usable && txg_index_matches_names(idx, keys))
			candidates = lappend(candidates, idx);
	}
	if (candidates == NIL && all_columns)
	{
		for (i = 0; i < info->nindexes; i++)
		{
			TxgIndex   *idx = &info->indexes[i];

			if (idx->usable && bms_equal(idx->keycols, named))
				candidates = lappend(candidates, idx);
		}
	}
	/* a partial index cannot arbitrate a row outside its predicate */
	foreach(lc, candidates)
	{
		TxgIndex   *idx = (TxgIndex *) lfirst(lc);

		if (idx->pred != NIL && !txg_predicate_holds(call, row, idx))
		{
			*outside = lappend(*outside, idx);
			candidates = foreach_delete_current(candidates, lc);
		}
	}
	return candidates;
}

/*
 * Candidates inferred from the keys of vals: the primary key if they
 * cover it; else every unique index they cover whose predicate the row
 * satisfies (immediate ones first: a deferrable one is a candidate only
 * to be reported).
 */
static List *
txg_candidates_by_keys(TxgCall *call, TxgRow *row, Bitmapset *given,
					   List **outside, bool *by_row)
{
	TxgRelInfo *info = call->info;
	List	   *candidates = NIL;
	List	   *unusable = NIL;
	int			i;

	for (i = 0; i < info->nindexes; i++)
	{
		TxgIndex   *idx = &info->indexes[i];

		if (idx->primary && idx->usable &&
			bms_is_subset(idx->keycols, given))
			return list_make1(idx);
	}
	for (i = 0; i < info->nindexes; i++)
	{
		TxgIndex   *idx = &info->indexes[i];

		if (!idx->usable || !bms_is_subset(idx->keycols, given))
			continue;
		if (idx->pred != NIL)
			*by_row = true;
		if (!txg_predicate_holds(call, row, idx))
		{
			*outside = lappend(*outside, idx);
			continue;
		}
		if (idx->unique && idx->immediate)
			candidates = lappend(candidates, idx);
		else
			unusable = lappend(unusable, idx);
	}
	return candidates != NIL ? candidates : unusable;
}

/* indexes with the same definition arbitrate alike: keep the first */
static List *
txg_drop_duplicate_indexes(List *candidates)
{
	ListCell   *lc;

	foreach(lc, candidates)
	{
		TxgIndex   *idx = (TxgIndex *) lfirst(lc);
		ListCell   *lc2;

		foreach(lc2, candidates)
		{
			if (lc2 == lc)
				break;
			if (txg_same_index((TxgIndex *) lfirst(lc2), idx))
			{
				candidates = foreach_delete_current(candidates, lc);
				break;
			}
		}
	}
	return candidates;
}

static void
txg_report_no_arbiter(TxgCall *call, TxgRow *row, List *outside)
{
	TxgRelInfo *info = call->info;
	char	   *cols = call->conflict_columns ?
		txg_name_list(call->conflict_columns) : txg_present_list(call, row);
	StringInfoData detail;

	initStringInfo(&detail);
	if (call->conflict_columns)
		appendStringInfo(&detail,
						 "No unique index of the table has exactly the key (%s).",
						 cols);
	else
		appendStringInfo(&detail,
						 "No unique index of the table has all its columns among the keys of vals (%s).",
						 cols);
	if (outside != NIL)
		appendStringInfo(&detail,
						 " The row does not satisfy the predicate of partial unique index %s.",
						 txg_index_list(info, outside));
	appendStringInfoString(&detail,
						   " Without a unique index, a check followed by an insert cannot be made race-free: concurrent callers would both insert.");
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
			 errmsg("table \"%s\" has no unique index on the given columns",
					info->relname),
			 errdetail_internal("%s", detail.data),
			 call->conflict_columns ?
			 errhint("Create one: CREATE UNIQUE INDEX ON %s (%s);",
					 info->qualname, cols) :
			 errhint("Create one on the columns that identify a row, for example: CREATE UNIQUE INDEX ON %s (%s);",
					 info->qualname, cols)));
}

static void
txg_report_ambiguous(TxgCall *call, List *candidates)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
			 errmsg("conflict target of table \"%s\" is ambiguous",
					call->info->relname),
			 errdetail("Candidate unique indexes: %s.",
					   txg_index_list(call->info, candidates)),
			 errhint("Pass conflict_columns to choose one, for example ARRAY['%s'].",
					 txg_key_spelling(call->info,
									  (TxgIndex *) linitial(candidates), 0))));
}

/*
 * The chosen index must be able to arbitrate, as ON CONFLICT requires,
 * and the whole of its key must come from vals.
 */
static void
txg_check_arbiter(TxgCall *call, TxgRow *row, TxgIndex *chosen)
{
	int			i;

	if (chosen->exclusion)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot use exclusion constraint \"%s\" as conflict target",
						chosen->name),
				 errdetail("An exclusion constraint does not identify one row by its key, so there is no row to return.")));
	if (!chosen->immediate)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot use deferrable unique constraint \"%s\" as conflict target",
						chosen->name),
				 errdetail("ON CONFLICT does not support deferrable unique constraints as arbiters."),
				 errhint("Declare the constraint NOT DEFERRABLE, or create a separate unique index.")));

	i = -1;
	while ((i = bms_next_member(chosen->keycols, i)) >= 0)
		if (!row->present[i - 1])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
					 errmsg("column \"%s\" of the conflict target is missing from vals",
							call->info->cols[i - 1].name),
					 errdetail("The conflict target is unique index \"%s\" %s.",
							   chosen->name,
							   txg_index_columns(call->info, chosen))));
}

/* the arbiter remembered for rows with the keys of this one, or NULL */
static inline TxgIndex *
txg_remembered_arbiter(TxgRelInfo *info, TxgRow *row)
{
	if (info->inferred_arbiter == NULL ||
		memcmp(info->inferred_present, row->present,
			   sizeof(bool) * info->natts) != 0)
		return NULL;
	return info->inferred_arbiter;
}

static void
txg_remember_arbiter(TxgRelInfo *info, TxgRow *row, TxgIndex *chosen)
{
	if (info->inferred_present == NULL)
		info->inferred_present =
			MemoryContextAlloc(info->cxt, sizeof(bool) * Max(info->natts, 1));
	memcpy(info->inferred_present, row->present, sizeof(bool) * info->natts);
	info->inferred_arbiter = chosen;
}

TxgIndex *
txg_choose_arbiter(TxgCall *call, TxgRow *row)
{
	Bitmapset  *given;
	List	   *candidates;
	List	   *outside = NIL;	/* partial indexes the row falls outside */
	bool		by_row = false; /* a predicate was evaluated for the row */
	TxgIndex   *chosen;

	if (call->conflict_columns == NIL)
	{
		chosen = txg_remembered_arbiter(call->info, row);
		if (chosen != NULL)
			return chosen;
	}

	given = txg_given_columns(call, row);
	if (call->conflict_columns != NIL)
		candidates = txg_candidates_by_names(call, row, &outside);
	else
		candidates = txg_candidates_by_keys(call, row, given, &outside,
											&by_row);
	candidates = txg_drop_duplicate_indexes(candidates);

	if (candidates == NIL)
		txg_report_no_arbiter(call, row, outside);
	if (list_length(candidates) > 1)
		txg_report_ambiguous(call, candidates);
	chosen = (TxgIndex *) linitial(candidates);
	txg_check_arbiter(call, row, chosen);
	if (call->conflict_columns == NIL && !by_row)
		txg_remember_arbiter(call->info, row, chosen);
	return chosen;
}

/* upsert: the columns update_columns names, checked against the row */
static void
txg_named_update_columns(TxgCall *call, TxgRow *row)
{
	TxgRelInfo *info = call->info;
	ListCell   *lc;

	foreach(lc, call->update_columns)
	{
		const char *name = (const char *) lfirst(lc);
		AttrNumber	attnum = txg_find_column(info, name, strlen(name));

		if (attnum == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of relation \"%s\" does not exist",
							name, info->relname)));
		if (bms_is_member(attnum, row->arbiter->keycols))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
					 errmsg("cannot update column \"%s\" of the conflict target",
							name),
					 errdetail("The row is found by unique index \"%s\" %s.",
							   row->arbiter->name,
							   txg_index_columns(info, row->arbiter))));
		if (!row->present[attnum - 1])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
					 errmsg("update column \"%s\" is missing from vals", name),
					 call->batch ?
					 errcontext("element %d of vals", row->ordinal + 1) : 0));
		if (!row->update[attnum - 1])
			row->nupdate++;
		row->update[attnum - 1] = true;
	}
}

/* upsert: the columns to update (none for insert_or_get) */
void
txg_choose_update(TxgCall *call, TxgRow *row)
{
	TxgRelInfo *info = call->info;
	int			i;

	/* row->update is all false, from txg_row_init() */
	row->nupdate = 0;
	if (call->op != TXG_OP_UPSERT)
		return;

	if (call->have_update_columns)
	{
		txg_named_update_columns(call, row);
		return;
	}
	/* by default every given column outside the key */
	for (i = 0; i < info->natts; i++)
	{
		if (row->present[i] &&
			!bms_is_member(i + 1, row->arbiter->keycols))
		{
			row->update[i] = true;
			row->nupdate++;
		}
	}
}
