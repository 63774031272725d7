/*-------------------------------------------------------------------------
 *
 * upsert_relinfo.c
 *		What the helpers know about a table: its columns, its unique
 *		indexes and exclusion constraints with their keys, texts and
 *		operators (TxgRelInfo), cached per table.
 *
 * A TxgRelInfo is built from the relcache on first use and kept in its own
 * memory context under txg_cache_cxt.  The relcache callback of
 * upsert_cache.c marks it stale when the table or one of its indexes
 * changes; the next call builds a new one and buries the old context
 * (freed when no call is in progress).
 *
 * The TxgRelInfo used last is also kept aside, so that a call on the same
 * table as the one before finds it (and the table behind its row type)
 * without a hash or syscache lookup.  It is forgotten when its entry is
 * replaced, before its memory context is buried.
 *
 * Reading a table's indexes takes locks, and taking a lock processes
 * pending invalidations: one may arrive while a TxgRelInfo is being built,
 * before there is an entry to mark stale.  As relcache.c does with its
 * in_progress_list, each build in progress is on a stack that the
 * invalidation marks (the table, or one of the indexes read so far); a
 * marked build is thrown away and done again, so a unique index committed
 * by another session while the helpers read the table's index list is
 * never missed (specs/upsert_invalidation.spec).
 *
 * Index expressions and predicates are deparsed here, with search_path
 * pinned (see txg_pin_search_path()): the texts go into statements that
 * run with the same path.
 *
 *-------------------------------------------------------------------------
 */
#include "upsert.h"

#include "access/nbtree.h"
#include "access/relation.h"
#include "access/stratnum.h"
#include "access/transam.h"
#include "catalog/pg_am.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_index.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"

typedef struct TxgRelEntry
{
	Oid			relid;			/* hash key */
	TxgRelInfo *info;
} TxgRelEntry;

static HTAB *txg_relinfos = NULL;

/* the TxgRelInfo returned last, valid or not; NULL once it is replaced */
static TxgRelInfo *txg_last_relinfo = NULL;

/* a TxgRelInfo being built, innermost first */
typedef struct TxgBuild
{
	Oid			relid;
	List	   *indexoids;		/* the indexes it reads */
	bool		invalidated;	/* one of them changed meanwhile */
	struct TxgBuild *outer;
} TxgBuild;

static TxgBuild *txg_builds = NULL;

void
txg_relinfo_cache_init(void)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(TxgRelEntry);
	ctl.hcxt = txg_cache_cxt;
	txg_relinfos = hash_create("txguard upsert relations", 32, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* from the relcache callback: relid (a table or index) changed */
void
txg_relinfo_invalidate(Oid relid)
{
	HASH_SEQ_STATUS status;
	TxgRelEntry *rentry;
	TxgBuild   *build;

	for (build = txg_builds; build != NULL; build = build->outer)
		if (relid == InvalidOid || build->relid == relid ||
			list_member_oid(build->indexoids, relid))
			build->invalidated = true;

	hash_seq_init(&status, txg_relinfos);
	while ((rentry = hash_seq_search(&status)) != NULL)
	{
		TxgRelInfo *info = rentry->info;
		int			i;

		if (info == NULL || !info->valid)
			continue;
		if (relid == InvalidOid || info->relid == relid)
			info->valid = false;
		for (i = 0; i < info->nindexes && info->valid; i++)
			if (info->indexes[i].indexoid == relid)
				info->valid = false;
	}
}


/* ----------------------------------------------------------------
 * Names of catalog objects, as statements spell them
 * ----------------------------------------------------------------
 */

/* "schema"."name" of a catalog object, from its syscache tuple */
static char *
txg_qualified(Oid nspid, const char *name)
{
	return quote_qualified_identifier(get_namespace_name(nspid), name);
}

static char *
txg_collation_name(Oid collid)
{
	HeapTuple	tup;
	Form_pg_collation form;
	char	   *result;

	tup = SearchSysCache1(COLLOID, ObjectIdGetDatum(collid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for collation %u", collid);
	form = (Form_pg_collation) GETSTRUCT(tup);
	result = txg_qualified(form->collnamespace, NameStr(form->collname));
	ReleaseSysCache(tup);
	return result;
}

static char *
txg_opclass_name(Oid opclass)
{
	HeapTuple	tup;
	Form_pg_opclass form;
	char	   *result;

	tup = SearchSysCache1(CLAOID, ObjectIdGetDatum(opclass));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator class %u", opclass);
	form = (Form_pg_opclass) GETSTRUCT(tup);
	result = txg_qualified(form->opcnamespace, NameStr(form->opcname));
	ReleaseSysCache(tup);
	return result;
}

/* OPERATOR("schema".op), the unambiguous spelling of an operator */
static char *
txg_operator_name(Oid oproid)
{
	HeapTuple	tup;
	Form_pg_operator form;
	char	   *result;

	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(oproid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator %u", oproid);
	form = (Form_pg_operator) GETSTRUCT(tup);
	result = psprintf("OPERATOR(%s.%s)",
					  quote_identifier(get_namespace_name(form->oprnamespace)),
					  NameStr(form->oprname));
	ReleaseSysCache(tup);
	return result;
}

/* attnums (> 0) used by an expression; *whole set when it uses more */
static Bitmapset *
txg_expr_columns(Node *expr, bool *whole)
{
	Bitmapset  *raw = NULL;
	Bitmapset  *result = NULL;
	int			m = -1;

	pull_varattnos(expr, 1, &raw);
	while ((m = bms_next_member(raw, m)) >= 0)
	{
		AttrNumber	attnum = m + FirstLowInvalidHeapAttributeNumber;

		if (attnum > 0)
			result = bms_add_member(result, attnum);
		else
			*whole = true;		/* whole-row or system column */
	}
	return result;
}


/* ----------------------------------------------------------------
 * An index
 * ----------------------------------------------------------------
 */

/* key element i is a column of the table */
static void
txg_index_key_column(TxgRelInfo *info, TxgIndex *idx, int i, AttrNumber attnum)
{
	TxgColumn  *col = &info->cols[attnum - 1];

	idx->exprs[i] = NULL;
	idx->keytype[i] = col->typid;
	idx->keytext[i] = pstrdup(quote_identifier(col->name));
	idx->matchtext[i] = col->name;
	idx->keycols = bms_add_member(idx->keycols, attnum);
}

/*
 * Key element i is an expression: "expr" as the index's expressions come
 * from the relcache, constant-folded and with SQL functions inlined, and
 * "raw" as stored, as the user wrote it.  Statements use the first (the
 * planner folds theirs the same way); names, as pg_indexes shows them, the
 * second.
 */
static void
txg_index_key_expression(TxgIndex *idx, int i, Node *expr, Node *raw,
						 List *dpcontext, bool *whole)
{
	char	   *text;

	idx->keytype[i] = exprType(expr);
	text = deparse_expression(expr, dpcontext, false, false);
	idx->keytext[i] = psprintf("(%s)", text);
	idx->rawexprs[i] = raw;
	idx->matchtext[i] = deparse_expression(raw, dpcontext, false, false);
	idx->keycols = bms_join(idx->keycols, txg_expr_columns(expr, whole));
	idx->exprs[i] = expression_planner((Expr *) copyObject(expr));
}

/*
 * How statements name key element i of a unique index: the ON CONFLICT
 * inference element "key COLLATE c opclass", the lookup's
 * "(key COLLATE c) OPERATOR(s.=)", and the btree order for batch sorting.
 */
static void
txg_index_key_operators(TxgRelInfo *info, Relation irel, TxgIndex *idx, int i,
						Oid opclass)
{
	Oid			opfamily = irel->rd_opfamily[i];
	Oid			opcintype = irel->rd_opcintype[i];
	char	   *collname = NULL;
	StringInfoData buf;
	Oid			eqop;
	Oid			cmpproc;

	if (OidIsValid(idx->keycoll[i]))
		collname = txg_collation_name(idx->keycoll[i]);

	get_typlenbyval(idx->keytype[i], &idx->keylen[i], &idx->keybyval[i]);

	/* ON CONFLICT (key COLLATE c opclass, ...) */
	initStringInfo(&buf);
	appendStringInfoString(&buf, idx->keytext[i]);
	if (collname)
		appendStringInfo(&buf, " COLLATE %s", collname);
	appendStringInfo(&buf, " %s", txg_opclass_name(opclass));
	idx->infertext[i] = buf.data;

	/* WHERE (key COLLATE c) OPERATOR(s.=) $n */
	eqop = get_opfamily_member(opfamily, opcintype, opcintype,
							   BTEqualStrategyNumber);
	cmpproc = get_opfamily_proc(opfamily, opcintype, opcintype,
								BTORDER_PROC);
	if (!OidIsValid(eqop) || !OidIsValid(cmpproc))
		elog(ERROR, "missing btree support for index \"%s\"", idx->name);
	fmgr_info_cxt(cmpproc, &idx->cmp[i], info->cxt);
	idx->opcintype[i] = opcintype;
	fmgr_info_cxt(get_opcode(eqop), &idx->eqfn[i], info->cxt);
	if (cmpproc >= FirstGenbkiObjectId ||
		idx->eqfn[i].fn_oid >= FirstGenbkiObjectId)
		idx->probe_runs_sql = true;
	initStringInfo(&buf);
	if (collname)
		appendStringInfo(&buf, "(%s COLLATE %s) ", idx->keytext[i], collname);
	else
		appendStringInfo(&buf, "%s ", idx->keytext[i]);
	appendStringInfoString(&buf, txg_operator_name(eqop));
	idx->lookuptext[i] = buf.data;
}

/* a partial index's predicate: planned, as stored, deparsed twice */
static void
txg_index_predicate(TxgIndex *idx, Relation irel, List *dpcontext,
					bool *whole)
{
	idx->rawpred = RelationGetIndexPredicate(irel);
	if (idx->rawpred == NIL)
		return;
	idx->predtext =
		deparse_expression((Node *) make_ands_explicit(idx->rawpred),
						   dpcontext, false, false);

	/*
	 * Statements spell implicit casts out: "WHERE live" over a domain over
	 * boolean reads back as a different expression that ON CONFLICT cannot
	 * match to the index, "WHERE (live)::boolean" as the same one.
	 */
	idx->predsql =
		deparse_expression((Node *) make_ands_explicit(idx->rawpred),
						   dpcontext, false, true);
	idx->predcols = txg_expr_columns((Node *) idx->rawpred, whole);
	idx->pred = (List *)
		expression_planner((Expr *) copyObject(idx->rawpred));
}

/*
 * The index's expressions as stored in pg_index.indexprs, before the
 * relcache folds constants and inlines SQL functions: what
 * pg_get_indexdef() deparses.
 */
static List *
txg_index_stored_expressions(Relation irel)
{
	Datum		d;
	bool		isnull;

	d = SysCacheGetAttr(INDEXRELID, irel->rd_indextuple,
						Anum_pg_index_indexprs, &isnull);
	if (isnull)
		return NIL;
	return (List *) stringToNode(TextDatumGetCString(d));
}

static void
txg_build_index(TxgRelInfo *info, Relation irel, TxgIndex *idx,
				List *dpcontext)
{
	Form_pg_index form = irel->rd_index;
	List	   *exprs = RelationGetIndexExpressions(irel);
	List	   *rawexprs = txg_index_stored_expressions(irel);
	ListCell   *lc = list_head(exprs);
	ListCell   *rlc = list_head(rawexprs);
	oidvector  *indclass;
	Datum		d;
	bool		isnull;
	bool		whole = false;
	int			i;

	idx->indexoid = RelationGetRelid(irel);
	idx->name = pstrdup(RelationGetRelationName(irel));
	idx->primary = form->indisprimary;
	idx->unique = form->indisunique;
	idx->exclusion = form->indisexclusion;
	idx->immediate = form->indimmediate;
	idx->nulls_not_distinct = txg_index_nulls_not_distinct(form);
	idx->nkeys = IndexRelationGetNumberOfKeyAttributes(irel);

	d = SysCacheGetAttr(INDEXRELID, irel->rd_indextuple,
						Anum_pg_index_indclass, &isnull);
	Assert(!isnull);
	indclass = (oidvector *) DatumGetPointer(d);

	for (i = 0; i < idx->nkeys; i++)
	{
		AttrNumber	attnum = form->indkey.values[i];

		idx->keys[i] = attnum;
		idx->keycoll[i] = irel->rd_indcollation[i];
		if (attnum > 0)
			txg_index_key_column(info, idx, i, attnum);
		else if (attnum == 0)
		{
			txg_index_key_expression(idx, i, (Node *) lfirst(lc),
									 (Node *) lfirst(rlc), dpcontext, &whole);
			lc = lnext(exprs, lc);
			rlc = lnext(rawexprs, rlc);
		}
		else
		{
			/* an index on a system column */
			whole = true;
			idx->keytype[i] = InvalidOid;
			idx->keytext[i] = pstrdup("?");
			idx->matchtext[i] = idx->keytext[i];
		}

		if (idx->unique && !whole)
			txg_index_key_operators(info, irel, idx, i, indclass->values[i]);
	}
	txg_index_predicate(idx, irel, dpcontext, &whole);
	idx->usable = !whole;
	idx->probable = idx->usable && idx->unique && !idx->probe_runs_sql &&
		irel->rd_rel->relam == BTREE_AM_OID;
	for (i = 0; i < idx->nkeys; i++)
		if (idx->exprs[i] != NULL)
			idx->needs_pin = true;
	if (idx->predtext != NULL)
		idx->needs_pin = true;
}


/* ----------------------------------------------------------------
 * A table
 * ----------------------------------------------------------------
 */

/*
 * The default an INSERT without the column will use: the column's own
 * (or its identity sequence), else its domain's DEFAULT, as the rewriter
 * decides in build_column_default().  Only a non-volatile one can be
 * evaluated ahead of the insert, for a partial index's predicate.
 */
static void
txg_column_default(TxgColumn *col, Relation rel, AttrNumber attnum)
{
	Node	   *def = build_column_default(rel, attnum);

	if (def == NULL)
		return;
	col->defvolatile = contain_volatile_functions(def);
	if (!col->defvolatile)
		col->defexpr = expression_planner((Expr *) def);
}

static void
txg_build_column(TxgColumn *col, Relation rel, int i, MemoryContext cxt)
{
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), i);
	Oid			infunc;

	col->name = pstrdup(NameStr(att->attname));
	col->namelen = strlen(col->name);
	col->dropped = att->attisdropped;
	if (col->dropped)
		return;
	col->identity = att->attidentity;
	col->generated = att->attgenerated;
	col->typid = att->atttypid;
	col->typmod = att->atttypmod;
	col->typlen = att->attlen;
	col->typbyval = att->attbyval;
	col->basetype = getBaseType(col->typid);
	col->isjson = (col->basetype == JSONOID || col->basetype == JSONBOID);
	col->elemtype = col->isjson ? InvalidOid :
		get_element_type(col->basetype);
	getTypeInputInfo(col->typid, &infunc, &col->ioparam);
	fmgr_info_cxt(infunc, &col->infunc, cxt);

	txg_column_default(col, rel, i + 1);
}

/* an alias for the table that no column shadows */
static char *
txg_choose_alias(TxgRelInfo *info)
{
	int			n;

	for (n = 0;; n++)
	{
		char	   *alias = n == 0 ? pstrdup("txg_row") : psprintf("txg_row%d", n);
		bool		clash = false;
		int			i;

		for (i = 0; i < info->natts && !clash; i++)
			clash = strcmp(info->cols[i].name, alias) == 0;
		if (!clash)
			return alias;
	}
}

static TxgRelInfo *
txg_build_relinfo(Relation rel, MemoryContext cxt, TxgBuild *build)
{
	MemoryContext old;
	TxgRelInfo *info;
	List	   *indexes;
	List	   *dpcontext;
	ListCell   *lc;
	int			i;

	old = MemoryContextSwitchTo(cxt);

	info = palloc0(sizeof(TxgRelInfo));
	info->relid = RelationGetRelid(rel);
	info->reltype = rel->rd_rel->reltype;
	info->valid = true;
	info->cxt = cxt;
	info->relkind = rel->rd_rel->relkind;
	info->relname = pstrdup(RelationGetRelationName(rel));
	info->qualname = txg_qualified(RelationGetNamespace(rel), info->relname);
	info->only = (info->relkind == RELKIND_RELATION);
	info->natts = RelationGetDescr(rel)->natts;
	info->cols = palloc0(sizeof(TxgColumn) * Max(info->natts, 1));
	for (i = 0; i < info->natts; i++)
		txg_build_column(&info->cols[i], rel, i, cxt);
	info->alias = txg_choose_alias(info);

	dpcontext = deparse_context_for(info->relname, info->relid);
	indexes = RelationGetIndexList(rel);
	build->indexoids = indexes;
	info->indexes = palloc0(sizeof(TxgIndex) * Max(list_length(indexes), 1));
	foreach(lc, indexes)
	{
		Relation	irel = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index form = irel->rd_index;

		if (form->indisvalid && form->indislive &&
			(form->indisunique || form->indisexclusion))
			txg_build_index(info, irel, &info->indexes[info->nindexes++],
							dpcontext);
		index_close(irel, NoLock);
	}

	MemoryContextSwitchTo(old);
	return info;
}

/*
 * The table whose row type is typid, InvalidOid if it is not a table's.
 * The table of the last call is known without a syscache lookup: a row
 * type belongs to its table for the table's whole life, and dropping the
 * table invalidates its TxgRelInfo.
 */
Oid
txg_relid_of_type(Oid typid)
{
	TxgRelInfo *last = txg_last_relinfo;

	if (last != NULL && last->valid && last->reltype == typid)
		return last->relid;
	return get_typ_typrelid(typid);
}

/* forget a TxgRelInfo whose memory context is about to be buried */
static void
txg_bury_relinfo(TxgRelInfo *info)
{
	if (txg_last_relinfo == info)
		txg_last_relinfo = NULL;
	txg_bury_cxt(info->cxt);
}

/*
 * What the helpers know about rel, which the caller has opened and locked
 * (so that any invalidation of it has been received).
 */
TxgRelInfo *
txg_get_relinfo(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	TxgRelEntry *entry;
	TxgRelInfo *info;
	bool		found;
	int			nestlevel;

	info = txg_last_relinfo;
	if (info != NULL && info->relid == relid && info->valid)
		return info;

	entry = hash_search(txg_relinfos, &relid, HASH_ENTER, &found);
	if (!found)
		entry->info = NULL;
	if (entry->info != NULL && entry->info->valid)
	{
		txg_last_relinfo = entry->info;
		return entry->info;
	}
	if (entry->info != NULL)
		txg_bury_relinfo(entry->info);
	entry->info = NULL;

	nestlevel = txg_pin_search_path();
	for (;;)
	{
		TxgBuild	build;
		MemoryContext cxt;

		cxt = AllocSetContextCreate(txg_cache_cxt, "txguard upsert relation",
									ALLOCSET_SMALL_SIZES);
		build.relid = relid;
		build.indexoids = NIL;
		build.invalidated = false;
		build.outer = txg_builds;
		txg_builds = &build;
		PG_TRY();
		{
			info = txg_build_relinfo(rel, cxt, &build);
		}
		PG_CATCH();
		{
			txg_builds = build.outer;
			MemoryContextDelete(cxt);
			PG_RE_THROW();
		}
		PG_END_TRY();
		txg_builds = build.outer;
		if (!build.invalidated)
			break;
		/* no one has seen it yet: free it now, and read again */
		MemoryContextDelete(cxt);
	}
	txg_unpin_search_path(nestlevel);

	/* a nested call may have built one meanwhile */
	if (entry->info != NULL)
		txg_bury_relinfo(entry->info);
	entry->info = info;
	txg_last_relinfo = info;
	return info;
}

/*
 * Key element i of an index as pg_indexes spells it for the caller: a
 * column's name, or the stored expression deparsed under the current
 * search_path (so "norm_email(email)" when the function's schema is on the
 * path, "public.norm_email(email)" when not).  For messages and for
 * matching names of conflict_columns; call it with the caller's
 * search_path in place, not the pinned one.
 */
char *
txg_key_spelling(TxgRelInfo *info, TxgIndex *idx, int i)
{
	if (idx->rawexprs[i] == NULL)
		return idx->matchtext[i];
	return deparse_expression(idx->rawexprs[i],
							  deparse_context_for(info->relname, info->relid),
							  false, false);
}

/* the key of an index as "(a, norm_email(b))", for messages */
char *
txg_index_columns(TxgRelInfo *info, TxgIndex *idx)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '(');
	for (i = 0; i < idx->nkeys; i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "",
						 txg_key_spelling(info, idx, i));
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/* attnum of a column by name, 0 if there is none */
AttrNumber
txg_find_column(TxgRelInfo *info, const char *name, int len)
{
	int			i;

	for (i = 0; i < info->natts; i++)
	{
		TxgColumn  *col = &info->cols[i];

		if (col->namelen == len && !col->dropped &&
			memcmp(col->name, name, len) == 0)
			return i + 1;
	}
	return 0;
}
