/*-------------------------------------------------------------------------
 *
 * upsert.c
 *		Race-free idempotent helpers: txguard.insert_or_get, txguard.upsert,
 *		their "_created" forms that also say what happened, and their
 *		batch ("_many") forms.
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
 * Caches, both per backend under one memory context:
 *	- TxgRelInfo per table: columns with their input functions, the unique
 *	  and exclusion indexes with their keys, texts and operators;
 *	- prepared SPI plans per (table, arbiter, statement kind, column set,
 *	  null key pattern).
 * A relcache callback marks both stale when the table or one of its
 * indexes changes.  Callbacks can fire in the middle of a call (while a
 * plan runs, or from a trigger that calls these functions again), so stale
 * entries are replaced, and the old plans and relation data are freed only
 * when no call is in progress (txg_depth == 0).
 *
 *-------------------------------------------------------------------------
 */
#include "pg_txguard.h"

#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/relation.h"
#include "access/stratnum.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_index.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"

#include "srf.h"

/* rounds of lookup + insert before giving up (READ COMMITTED) */
#define TXG_MAX_ATTEMPTS 10

/* one bit per possible attribute number */
#define TXG_COLSET_BYTES ((MaxHeapAttributeNumber / 8) + 1)

typedef enum TxgOp
{
	TXG_OP_INSERT_OR_GET,
	TXG_OP_UPSERT
} TxgOp;

typedef enum TxgPlanKind
{
	TXG_PLAN_LOOKUP,
	TXG_PLAN_INSERT,
	TXG_PLAN_UPDATE
} TxgPlanKind;

/* a column of the table, as the helpers need it */
typedef struct TxgColumn
{
	char	   *name;
	bool		dropped;
	char		identity;
	char		generated;
	Oid			typid;
	int32		typmod;
	int16		typlen;
	bool		typbyval;
	Oid			basetype;		/* typid without domains */
	bool		isjson;			/* basetype is json or jsonb */
	Oid			elemtype;		/* element type if basetype is an array */
	FmgrInfo	infunc;
	Oid			ioparam;
	Expr	   *defexpr;		/* planned non-volatile default, or NULL */
	bool		defvolatile;	/* the default cannot be evaluated early */
} TxgColumn;

/* a unique index or exclusion constraint of the table */
typedef struct TxgIndex
{
	Oid			indexoid;
	char	   *name;
	bool		primary;
	bool		unique;
	bool		exclusion;
	bool		immediate;
	bool		nulls_not_distinct;
	bool		usable;			/* key refers only to ordinary columns */
	bool		needs_pin;		/* statements contain deparsed expressions */
	int			nkeys;
	AttrNumber	keys[INDEX_MAX_KEYS];	/* 0 for an expression */
	Expr	   *exprs[INDEX_MAX_KEYS];	/* planned expression, or NULL */
	char	   *keytext[INDEX_MAX_KEYS];	/* "col" or "(expr)", quoted */
	char	   *matchtext[INDEX_MAX_KEYS];	/* as conflict_columns names it */
	char	   *infertext[INDEX_MAX_KEYS];	/* ON CONFLICT inference element */
	char	   *lookuptext[INDEX_MAX_KEYS]; /* "(key COLLATE c) OPERATOR(=)" */
	Oid			keytype[INDEX_MAX_KEYS];
	int16		keylen[INDEX_MAX_KEYS];
	bool		keybyval[INDEX_MAX_KEYS];
	Oid			keycoll[INDEX_MAX_KEYS];
	FmgrInfo	cmp[INDEX_MAX_KEYS];	/* btree order, for batch sorting */
	List	   *pred;			/* planned predicate (implicit AND), or NIL */
	List	   *rawpred;		/* the predicate as stored, for equal() */
	char	   *predtext;
	Bitmapset  *keycols;		/* attnums the key uses */
	Bitmapset  *predcols;		/* attnums the predicate uses */
	char	   *coltext;		/* "(a, lower(b))" for messages */
} TxgIndex;

/* what the helpers know about a table; one memory context each */
typedef struct TxgRelInfo
{
	Oid			relid;
	bool		valid;
	MemoryContext cxt;
	char		relkind;
	char	   *relname;
	char	   *qualname;		/* quoted, schema-qualified */
	char	   *alias;			/* a name no column has */
	bool		only;			/* SELECT/UPDATE with ONLY */
	int			natts;
	TxgColumn  *cols;
	int			nindexes;
	TxgIndex   *indexes;
} TxgRelInfo;

typedef struct TxgRelEntry
{
	Oid			relid;			/* hash key */
	TxgRelInfo *info;
} TxgRelEntry;

typedef struct TxgPlanKey
{
	Oid			relid;
	Oid			indexoid;
	int32		kind;
	uint32		nullmask;		/* key columns that are NULL */
	uint8		cols[TXG_COLSET_BYTES]; /* inserted or updated columns */
} TxgPlanKey;

typedef struct TxgPlanEntry
{
	TxgPlanKey	key;			/* hash key */
	SPIPlanPtr	plan;
	bool		valid;
} TxgPlanEntry;

/* one proposed row */
typedef struct TxgRow
{
	int			ordinal;		/* position in the input, from 0 */
	int			ncols;			/* columns given */
	Datum	   *values;			/* per attribute */
	bool	   *nulls;
	bool	   *present;
	TxgIndex   *arbiter;
	Datum		keyvals[INDEX_MAX_KEYS];
	bool		keynulls[INDEX_MAX_KEYS];
	uint32		nullmask;
	bool	   *update;			/* per attribute: column to update */
	int			nupdate;
	/* results */
	Datum		result;
	bool		created;
	bool		updated;
} TxgRow;

/* one call of a helper */
typedef struct TxgCall
{
	TxgOp		op;
	bool		batch;
	Relation	rel;
	TxgRelInfo *info;
	List	   *conflict_columns;	/* of char *, NIL if not given */
	bool		have_update_columns;
	List	   *update_columns; /* of char * */
	EState	   *estate;			/* for expressions and predicates */
	TupleTableSlot *slot;
	/* error context */
	const char *ctx_column;
	int			ctx_element;
} TxgCall;

static MemoryContext txg_cache_cxt = NULL;
static HTAB *txg_relinfos = NULL;
static HTAB *txg_plans = NULL;
static List *txg_dead_plans = NIL;
static List *txg_dead_cxts = NIL;
static int	txg_depth = 0;

PG_FUNCTION_INFO_V1(txguard_insert_or_get);
PG_FUNCTION_INFO_V1(txguard_insert_or_get_created);
PG_FUNCTION_INFO_V1(txguard_insert_or_get_many);
PG_FUNCTION_INFO_V1(txguard_insert_or_get_many_created);
PG_FUNCTION_INFO_V1(txguard_upsert);
PG_FUNCTION_INFO_V1(txguard_upsert_created);
PG_FUNCTION_INFO_V1(txguard_upsert_many);
PG_FUNCTION_INFO_V1(txguard_upsert_many_created);


/* ----------------------------------------------------------------
 * Caches
 * ----------------------------------------------------------------
 */

static void
txg_relcache_callback(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	TxgRelEntry *rentry;
	TxgPlanEntry *pentry;

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

	hash_seq_init(&status, txg_plans);
	while ((pentry = hash_seq_search(&status)) != NULL)
	{
		if (relid == InvalidOid || pentry->key.relid == relid ||
			pentry->key.indexoid == relid)
			pentry->valid = false;
	}
}

static void
txg_cache_init(void)
{
	HASHCTL		ctl;

	if (txg_cache_cxt != NULL)
		return;

	txg_cache_cxt = AllocSetContextCreate(TopMemoryContext,
										  "txguard upsert cache",
										  ALLOCSET_DEFAULT_SIZES);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(TxgRelEntry);
	ctl.hcxt = txg_cache_cxt;
	txg_relinfos = hash_create("txguard upsert relations", 32, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(TxgPlanKey);
	ctl.entrysize = sizeof(TxgPlanEntry);
	ctl.hcxt = txg_cache_cxt;
	txg_plans = hash_create("txguard upsert plans", 64, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	CacheRegisterRelcacheCallback(txg_relcache_callback, (Datum) 0);
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

static void
txg_bury_plan(SPIPlanPtr plan)
{
	MemoryContext old = MemoryContextSwitchTo(txg_cache_cxt);

	txg_dead_plans = lappend(txg_dead_plans, plan);
	MemoryContextSwitchTo(old);
}

static void
txg_bury_cxt(MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(txg_cache_cxt);

	txg_dead_cxts = lappend(txg_dead_cxts, cxt);
	MemoryContextSwitchTo(old);
}


/*
 * Deparsed index expressions and predicates name built-in functions and
 * operators unqualified.  They are deparsed, parsed and run with
 * search_path = pg_catalog, pg_temp (as RestrictSearchPath() does from
 * PostgreSQL 17 on), so that no schema of the caller's search_path can
 * capture them.  Returns the GUC nest level for txg_unpin_search_path();
 * an error unwinds it with the (sub)transaction.
 */
static int
txg_pin_search_path(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	return nestlevel;
}

static void
txg_unpin_search_path(int nestlevel)
{
	AtEOXact_GUC(true, nestlevel);
}


/* ----------------------------------------------------------------
 * What we know about a table
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

static void
txg_build_index(TxgRelInfo *info, Relation rel, Relation irel, TxgIndex *idx,
				List *dpcontext)
{
	Form_pg_index form = irel->rd_index;
	List	   *exprs = RelationGetIndexExpressions(irel);
	ListCell   *lc = list_head(exprs);
	oidvector  *indclass;
	Datum		d;
	bool		isnull;
	bool		whole = false;
	StringInfoData cols;
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

	initStringInfo(&cols);
	appendStringInfoChar(&cols, '(');
	for (i = 0; i < idx->nkeys; i++)
	{
		AttrNumber	attnum = form->indkey.values[i];
		StringInfoData buf;
		char	   *collname = NULL;

		idx->keys[i] = attnum;
		idx->keycoll[i] = irel->rd_indcollation[i];
		if (OidIsValid(idx->keycoll[i]))
			collname = txg_collation_name(idx->keycoll[i]);

		if (attnum > 0)
		{
			TxgColumn  *col = &info->cols[attnum - 1];

			idx->exprs[i] = NULL;
			idx->keytype[i] = col->typid;
			idx->keytext[i] = pstrdup(quote_identifier(col->name));
			idx->matchtext[i] = col->name;
			idx->keycols = bms_add_member(idx->keycols, attnum);
		}
		else if (attnum == 0)
		{
			Node	   *expr = (Node *) lfirst(lc);
			char	   *text;

			lc = lnext(exprs, lc);
			idx->keytype[i] = exprType(expr);
			text = deparse_expression(expr, dpcontext, false, false);
			idx->matchtext[i] = text;
			idx->keytext[i] = psprintf("(%s)", text);
			idx->keycols = bms_join(idx->keycols,
									txg_expr_columns(expr, &whole));
			idx->exprs[i] = expression_planner((Expr *) copyObject(expr));
		}
		else
		{
			/* an index on a system column */
			whole = true;
			idx->keytype[i] = InvalidOid;
			idx->keytext[i] = pstrdup("?");
			idx->matchtext[i] = idx->keytext[i];
		}
		appendStringInfo(&cols, "%s%s", i > 0 ? ", " : "", idx->matchtext[i]);

		if (!idx->unique || whole)
			continue;

		get_typlenbyval(idx->keytype[i], &idx->keylen[i], &idx->keybyval[i]);

		/* ON CONFLICT (key COLLATE c opclass, ...) */
		initStringInfo(&buf);
		appendStringInfoString(&buf, idx->keytext[i]);
		if (collname)
			appendStringInfo(&buf, " COLLATE %s", collname);
		appendStringInfo(&buf, " %s", txg_opclass_name(indclass->values[i]));
		idx->infertext[i] = buf.data;

		/* WHERE (key COLLATE c) OPERATOR(s.=) $n */
		{
			Oid			opfamily = irel->rd_opfamily[i];
			Oid			opcintype = irel->rd_opcintype[i];
			Oid			eqop;
			Oid			cmpproc;

			eqop = get_opfamily_member(opfamily, opcintype, opcintype,
									   BTEqualStrategyNumber);
			cmpproc = get_opfamily_proc(opfamily, opcintype, opcintype,
										BTORDER_PROC);
			if (!OidIsValid(eqop) || !OidIsValid(cmpproc))
				elog(ERROR, "missing btree support for index \"%s\"",
					 idx->name);
			fmgr_info_cxt(cmpproc, &idx->cmp[i], info->cxt);
			initStringInfo(&buf);
			if (collname)
				appendStringInfo(&buf, "(%s COLLATE %s) ",
								 idx->keytext[i], collname);
			else
				appendStringInfo(&buf, "%s ", idx->keytext[i]);
			appendStringInfoString(&buf, txg_operator_name(eqop));
			idx->lookuptext[i] = buf.data;
		}
	}
	appendStringInfoChar(&cols, ')');
	idx->coltext = cols.data;

	idx->rawpred = RelationGetIndexPredicate(irel);
	if (idx->rawpred != NIL)
	{
		idx->predtext =
			deparse_expression((Node *) make_ands_explicit(idx->rawpred),
							   dpcontext, false, false);
		idx->predcols = txg_expr_columns((Node *) idx->rawpred, &whole);
		idx->pred = (List *)
			expression_planner((Expr *) copyObject(idx->rawpred));
	}
	idx->usable = !whole;
	for (i = 0; i < idx->nkeys; i++)
		if (idx->exprs[i] != NULL)
			idx->needs_pin = true;
	if (idx->predtext != NULL)
		idx->needs_pin = true;
}

static TxgRelInfo *
txg_build_relinfo(Relation rel)
{
	MemoryContext cxt;
	MemoryContext old;
	TxgRelInfo *info;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	List	   *indexes;
	List	   *dpcontext;
	ListCell   *lc;
	int			i;
	int			n;

	cxt = AllocSetContextCreate(txg_cache_cxt, "txguard upsert relation",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);

	info = palloc0(sizeof(TxgRelInfo));
	info->relid = RelationGetRelid(rel);
	/* valid from the start: an invalidation while we read must stick */
	info->valid = true;
	info->cxt = cxt;
	info->relkind = rel->rd_rel->relkind;
	info->relname = pstrdup(RelationGetRelationName(rel));
	info->qualname = txg_qualified(RelationGetNamespace(rel), info->relname);
	info->only = (info->relkind == RELKIND_RELATION);
	info->natts = tupdesc->natts;
	info->cols = palloc0(sizeof(TxgColumn) * Max(info->natts, 1));

	for (i = 0; i < info->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		TxgColumn  *col = &info->cols[i];
		Oid			infunc;

		col->name = pstrdup(NameStr(att->attname));
		col->dropped = att->attisdropped;
		if (col->dropped)
			continue;
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

		if (att->atthasdef || att->attidentity)
		{
			Node	   *def = build_column_default(rel, i + 1);

			if (def != NULL)
			{
				col->defvolatile = contain_volatile_functions(def);
				if (!col->defvolatile)
					col->defexpr = expression_planner((Expr *) def);
			}
		}
	}

	/* an alias for the table that no column shadows */
	for (n = 0;; n++)
	{
		char	   *alias = n == 0 ? pstrdup("txg_row") : psprintf("txg_row%d", n);
		bool		clash = false;

		for (i = 0; i < info->natts && !clash; i++)
			clash = strcmp(info->cols[i].name, alias) == 0;
		if (!clash)
		{
			info->alias = alias;
			break;
		}
	}

	dpcontext = deparse_context_for(info->relname, info->relid);
	indexes = RelationGetIndexList(rel);
	info->indexes = palloc0(sizeof(TxgIndex) * Max(list_length(indexes), 1));
	foreach(lc, indexes)
	{
		Relation	irel = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index form = irel->rd_index;

		if (form->indisvalid && form->indislive &&
			(form->indisunique || form->indisexclusion))
			txg_build_index(info, rel, irel, &info->indexes[info->nindexes++],
							dpcontext);
		index_close(irel, NoLock);
	}

	MemoryContextSwitchTo(old);
	return info;
}

static TxgRelInfo *
txg_get_relinfo(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	TxgRelEntry *entry;
	bool		found;
	int			nestlevel;

	entry = hash_search(txg_relinfos, &relid, HASH_ENTER, &found);
	if (!found)
		entry->info = NULL;
	if (entry->info != NULL && entry->info->valid)
		return entry->info;
	if (entry->info != NULL)
		txg_bury_cxt(entry->info->cxt);
	entry->info = NULL;
	nestlevel = txg_pin_search_path();
	entry->info = txg_build_relinfo(rel);
	txg_unpin_search_path(nestlevel);
	return entry->info;
}


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
static void
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

	if (PG_ARGISNULL(1))
		txg_null_argument("vals");

	relid = OidIsValid(typid) ? get_typ_typrelid(typid) : InvalidOid;
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

static void
txg_close_call(TxgCall *call)
{
	if (call->slot)
		ExecDropSingleTupleTableSlot(call->slot);
	if (call->estate)
		FreeExecutorState(call->estate);
	relation_close(call->rel, NoLock);
}

/* attnum of a column by name, 0 if there is none */
static AttrNumber
txg_find_column(TxgRelInfo *info, const char *name, int len)
{
	int			i;

	for (i = 0; i < info->natts; i++)
	{
		TxgColumn  *col = &info->cols[i];

		if (!col->dropped && strncmp(col->name, name, len) == 0 &&
			col->name[len] == '\0')
			return i + 1;
	}
	return 0;
}


/* ----------------------------------------------------------------
 * jsonb to column values
 * ----------------------------------------------------------------
 */

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
			return txg_array_value(col, v);
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("cannot assign a JSON %s to column \"%s\" of type %s",
						txg_jsonb_kind(v), col->name,
						format_type_with_typemod(col->typid, col->typmod)),
				 errhint("Pass the value as a string in the type's text form.")));
	}
	return InputFunctionCall(&col->infunc, txg_scalar_text(v), col->ioparam,
							 col->typmod);
}

static void
txg_row_init(TxgCall *call, TxgRow *row, int ordinal)
{
	int			natts = call->info->natts;

	memset(row, 0, sizeof(TxgRow));
	row->ordinal = ordinal;
	row->values = palloc0(sizeof(Datum) * Max(natts, 1));
	row->nulls = palloc0(sizeof(bool) * Max(natts, 1));
	row->present = palloc0(sizeof(bool) * Max(natts, 1));
}

/* one JSON object of vals into a proposed row */
static void
txg_parse_object(TxgCall *call, JsonbContainer *container, TxgRow *row)
{
	TxgRelInfo *info = call->info;
	JsonbIterator *it = JsonbIteratorInit(container);
	JsonbValue	v;
	JsonbIteratorToken tok;
	AttrNumber	attnum = 0;
	ErrorContextCallback errcb;

	errcb.callback = txg_value_error_callback;
	errcb.arg = call;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			TxgColumn  *col;

			attnum = txg_find_column(info, v.val.string.val, v.val.string.len);
			if (attnum == 0)
			{
				call->ctx_column = NULL;
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("column \"%s\" of relation \"%s\" does not exist",
								pnstrdup(v.val.string.val, v.val.string.len),
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
		}
		else if (tok == WJB_VALUE)
		{
			TxgColumn  *col = &info->cols[attnum - 1];

			call->ctx_column = col->name;
			call->ctx_element = call->batch ? row->ordinal : -1;
			row->values[attnum - 1] = txg_column_value(col, &v,
													   &row->nulls[attnum - 1]);
			call->ctx_column = NULL;
			if (!row->present[attnum - 1])
				row->ncols++;
			row->present[attnum - 1] = true;
		}
	}
	error_context_stack = errcb.previous;
}


/* ----------------------------------------------------------------
 * Expressions over the proposed row
 * ----------------------------------------------------------------
 */

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
static bool
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

/* the arbiter's key values for the proposed row */
static void
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
		{
			if (!idx->nulls_not_distinct)
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 idx->keys[i] > 0 ?
						 errmsg("null value in conflict column \"%s\" of table \"%s\"",
								idx->matchtext[i], call->info->relname) :
						 errmsg("null value of conflict key expression \"%s\" of table \"%s\"",
								idx->matchtext[i], call->info->relname),
						 errdetail("Unique index \"%s\" treats null values as distinct, so a row with a null key would be inserted again on every call.",
								   idx->name),
						 call->batch ?
						 errcontext("element %d of vals", row->ordinal + 1) : 0));
			row->nullmask |= (1U << i);
		}
	}
	if (call->estate)
		ResetExprContext(GetPerTupleExprContext(call->estate));
}


/* ----------------------------------------------------------------
 * Choosing the arbiter
 * ----------------------------------------------------------------
 */

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
txg_index_list(List *indexes)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, indexes)
	{
		TxgIndex   *idx = (TxgIndex *) lfirst(lc);

		appendStringInfo(&buf, "%s\"%s\" %s", buf.len > 0 ? ", " : "",
						 idx->name, idx->coltext);
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

static TxgIndex *
txg_choose_arbiter(TxgCall *call, TxgRow *row)
{
	TxgRelInfo *info = call->info;
	List	   *candidates = NIL;
	List	   *unusable = NIL;
	List	   *outside = NIL;	/* partial indexes the row falls outside */
	Bitmapset  *given = NULL;
	TxgIndex   *chosen;
	ListCell   *lc;
	int			i;

	for (i = 0; i < info->natts; i++)
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

	if (call->conflict_columns != NIL)
	{
		Bitmapset  *named = NULL;
		bool		all_columns = true;

		/* every name is a column or an index key expression */
		foreach(lc, call->conflict_columns)
		{
			const char *name = (const char *) lfirst(lc);
			AttrNumber	attnum = txg_find_column(info, name, strlen(name));
			bool		known = attnum > 0;

			if (attnum > 0)
				named = bms_add_member(named, attnum);
			else
				all_columns = false;
			for (i = 0; i < info->nindexes && !known; i++)
			{
				int			k;

				for (k = 0; k < info->indexes[i].nkeys && !known; k++)
					known = strcmp(info->indexes[i].matchtext[k], name) == 0;
			}
			if (!known)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("column \"%s\" of relation \"%s\" does not exist",
								name, info->relname),
						 errdetail("The entries of conflict_columns name columns, or index expressions as pg_indexes shows them.")));
		}

		/* first the indexes whose key elements are exactly the names */
		for (i = 0; i < info->nindexes; i++)
		{
			TxgIndex   *idx = &info->indexes[i];

			if (idx->usable && txg_index_matches_names(idx, call->conflict_columns))
				candidates = lappend(candidates, idx);
		}
		/* else those whose key uses exactly the named columns */
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
				outside = lappend(outside, idx);
				candidates = foreach_delete_current(candidates, lc);
			}
		}
	}
	else
	{
		for (i = 0; i < info->nindexes; i++)
		{
			TxgIndex   *idx = &info->indexes[i];

			if (idx->primary && idx->usable &&
				bms_is_subset(idx->keycols, given))
			{
				candidates = list_make1(idx);
				break;
			}
		}
		if (candidates == NIL)
		{
			for (i = 0; i < info->nindexes; i++)
			{
				TxgIndex   *idx = &info->indexes[i];

				if (!idx->usable || !bms_is_subset(idx->keycols, given))
					continue;
				if (!txg_predicate_holds(call, row, idx))
				{
					outside = lappend(outside, idx);
					continue;
				}
				if (idx->unique && idx->immediate)
					candidates = lappend(candidates, idx);
				else
					unusable = lappend(unusable, idx);
			}
			if (candidates == NIL && unusable != NIL)
				candidates = unusable;
		}
	}

	/* indexes with the same definition arbitrate alike: keep one */
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

	if (candidates == NIL)
	{
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
							 txg_index_list(outside));
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
	if (list_length(candidates) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
				 errmsg("conflict target of table \"%s\" is ambiguous",
						info->relname),
				 errdetail("Candidate unique indexes: %s.",
						   txg_index_list(candidates)),
				 errhint("Pass conflict_columns to choose one, for example ARRAY['%s'].",
						 ((TxgIndex *) linitial(candidates))->matchtext[0])));

	chosen = (TxgIndex *) linitial(candidates);
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

	/* the whole key must come from vals */
	i = -1;
	while ((i = bms_next_member(chosen->keycols, i)) >= 0)
		if (!row->present[i - 1])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
					 errmsg("column \"%s\" of the conflict target is missing from vals",
							info->cols[i - 1].name),
					 errdetail("The conflict target is unique index \"%s\" %s.",
							   chosen->name, chosen->coltext)));
	return chosen;
}

/* upsert: the columns to update */
static void
txg_choose_update(TxgCall *call, TxgRow *row)
{
	TxgRelInfo *info = call->info;
	int			i;

	row->update = palloc0(sizeof(bool) * Max(info->natts, 1));
	row->nupdate = 0;
	if (call->op != TXG_OP_UPSERT)
		return;

	if (call->have_update_columns)
	{
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
								   row->arbiter->name, row->arbiter->coltext)));
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
	else
	{
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
}


/* ----------------------------------------------------------------
 * Statements
 * ----------------------------------------------------------------
 */

static void
txg_plan_key(TxgPlanKey *key, TxgCall *call, TxgRow *row, TxgPlanKind kind)
{
	int			i;

	memset(key, 0, sizeof(TxgPlanKey));
	key->relid = call->info->relid;
	key->indexoid = row->arbiter->indexoid;
	key->kind = (int32) kind;
	if (kind != TXG_PLAN_INSERT)
		key->nullmask = row->nullmask;
	for (i = 0; i < call->info->natts; i++)
	{
		bool		set = (kind == TXG_PLAN_INSERT) ? row->present[i] :
		(kind == TXG_PLAN_UPDATE) ? row->update[i] : false;

		if (set)
			key->cols[i / 8] |= (uint8) (1 << (i % 8));
	}
}

/* WHERE key = $n ... [AND predicate]; parameters from *paramno on */
static void
txg_append_key_condition(StringInfo buf, TxgIndex *idx, uint32 nullmask,
						 Oid *types, int *paramno)
{
	int			i;

	appendStringInfoString(buf, " WHERE ");
	for (i = 0; i < idx->nkeys; i++)
	{
		if (i > 0)
			appendStringInfoString(buf, " AND ");
		if (nullmask & (1U << i))
			appendStringInfo(buf, "%s IS NULL", idx->keytext[i]);
		else
		{
			types[*paramno] = idx->keytype[i];
			(*paramno)++;
			appendStringInfo(buf, "%s $%d", idx->lookuptext[i], *paramno);
		}
	}
	if (idx->predtext)
		appendStringInfo(buf, " AND (%s)", idx->predtext);
}

static SPIPlanPtr
txg_build_plan(TxgCall *call, TxgRow *row, TxgPlanKind kind)
{
	TxgRelInfo *info = call->info;
	TxgIndex   *idx = row->arbiter;
	StringInfoData buf;
	Oid		   *types = palloc(sizeof(Oid) * (info->natts + INDEX_MAX_KEYS + 1));
	int			nparams = 0;
	SPIPlanPtr	plan;
	int			i;

	initStringInfo(&buf);
	switch (kind)
	{
		case TXG_PLAN_LOOKUP:
			appendStringInfo(&buf, "SELECT %s FROM %s%s AS %s",
							 info->alias, info->only ? "ONLY " : "",
							 info->qualname, info->alias);
			txg_append_key_condition(&buf, idx, row->nullmask, types, &nparams);
			break;

		case TXG_PLAN_INSERT:
			{
				StringInfoData vals;

				initStringInfo(&vals);
				appendStringInfo(&buf, "INSERT INTO %s AS %s (",
								 info->qualname, info->alias);
				for (i = 0; i < info->natts; i++)
				{
					if (!row->present[i])
						continue;
					types[nparams++] = info->cols[i].typid;
					appendStringInfo(&buf, "%s%s", nparams > 1 ? ", " : "",
									 quote_identifier(info->cols[i].name));
					appendStringInfo(&vals, "%s$%d", nparams > 1 ? ", " : "",
									 nparams);
				}
				appendStringInfo(&buf, ") VALUES (%s) ON CONFLICT (", vals.data);
				for (i = 0; i < idx->nkeys; i++)
					appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "",
									 idx->infertext[i]);
				appendStringInfoChar(&buf, ')');
				if (idx->predtext)
					appendStringInfo(&buf, " WHERE %s", idx->predtext);
				appendStringInfo(&buf, " DO NOTHING RETURNING %s", info->alias);
			}
			break;

		case TXG_PLAN_UPDATE:
			appendStringInfo(&buf, "UPDATE %s%s AS %s SET ",
							 info->only ? "ONLY " : "", info->qualname,
							 info->alias);
			for (i = 0; i < info->natts; i++)
			{
				if (!row->update[i])
					continue;
				types[nparams++] = info->cols[i].typid;
				appendStringInfo(&buf, "%s%s = $%d", nparams > 1 ? ", " : "",
								 quote_identifier(info->cols[i].name), nparams);
			}
			txg_append_key_condition(&buf, idx, row->nullmask, types, &nparams);
			appendStringInfo(&buf, " RETURNING %s", info->alias);
			break;
	}

	plan = SPI_prepare(buf.data, nparams, types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s",
			 buf.data, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return plan;
}

static SPIPlanPtr
txg_get_plan(TxgCall *call, TxgRow *row, TxgPlanKind kind)
{
	TxgPlanKey	key;
	TxgPlanEntry *entry;
	bool		found;
	SPIPlanPtr	plan;

	txg_plan_key(&key, call, row, kind);
	entry = hash_search(txg_plans, &key, HASH_ENTER, &found);
	if (found && entry->valid && entry->plan != NULL)
		return entry->plan;
	if (!found)
		entry->plan = NULL;
	if (entry->plan != NULL)
		txg_bury_plan(entry->plan);
	entry->plan = NULL;
	entry->valid = true;		/* before building: an invalidation sticks */
	plan = txg_build_plan(call, row, kind);
	entry->plan = plan;
	return plan;
}

/*
 * Run a plan; a serialization failure gets the advice to retry, and the
 * one ON CONFLICT raises for an invisible conflicting row a message that
 * says what happened.
 */
static bool
txg_execute(TxgCall *call, SPIPlanPtr plan, Datum *values, char *nulls,
			TxgPlanKind kind, Datum *result)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			ret = 0;

	PG_TRY();
	{
		ret = SPI_execute_plan(plan, values, nulls, false,
							   kind == TXG_PLAN_LOOKUP ? 1 : 0);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_T_R_SERIALIZATION_FAILURE)
			PG_RE_THROW();
		FlushErrorState();
		if (kind == TXG_PLAN_INSERT && edata->message_id != NULL &&
			strcmp(edata->message_id,
				   "could not serialize access due to concurrent update") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to a concurrent insert of the same key"),
					 errdetail("Another transaction committed a row with this key in table \"%s\" after this transaction's snapshot was taken, so this transaction can neither see it nor insert its own.",
							   call->info->relname),
					 errhint("Retry the transaction.")));
		if (edata->hint == NULL)
			edata->hint = pstrdup("Retry the transaction.");
		ReThrowError(edata);
	}
	PG_END_TRY();

	if (ret < 0)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0 || SPI_tuptable == NULL)
	{
		if (SPI_tuptable)
			SPI_freetuptable(SPI_tuptable);
		return false;
	}

	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, 1, &isnull);

		if (isnull)
			elog(ERROR, "unexpected null row");
		*result = SPI_datumTransfer(d, false, -1);
	}
	SPI_freetuptable(SPI_tuptable);
	return true;
}

static bool
txg_lookup(TxgCall *call, TxgRow *row, Datum *result)
{
	TxgIndex   *idx = row->arbiter;
	SPIPlanPtr	plan = txg_get_plan(call, row, TXG_PLAN_LOOKUP);
	Datum		values[INDEX_MAX_KEYS];
	char		nulls[INDEX_MAX_KEYS];
	int			n = 0;
	int			i;

	for (i = 0; i < idx->nkeys; i++)
	{
		if (row->keynulls[i])
			continue;
		values[n] = row->keyvals[i];
		nulls[n++] = ' ';
	}
	return txg_execute(call, plan, values, nulls, TXG_PLAN_LOOKUP, result);
}

/*
 * The row must be written, and the transaction cannot write (a hot
 * standby, or READ ONLY): say so in the caller's terms, rather than with
 * the internal statement's "cannot execute INSERT".
 */
static void
txg_refuse_read_only(TxgCall *call, TxgPlanKind kind)
{
	const char *relname = call->info->relname;

	if (!XactReadOnly)
		return;
	if (RecoveryInProgress())
	{
		if (kind == TXG_PLAN_INSERT)
			ereport(ERROR,
					(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
					 errmsg("cannot insert into table \"%s\" during recovery", relname),
					 errdetail("No row of \"%s\" holds the given key, and a standby cannot write a new one.", relname),
					 errhint("Call it on the primary.")));
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot update table \"%s\" during recovery", relname),
				 errdetail("The row of \"%s\" that holds the given key differs from the given values, and a standby cannot change it.", relname),
				 errhint("Call it on the primary.")));
	}
	if (kind == TXG_PLAN_INSERT)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot insert into table \"%s\" in a read-only transaction", relname),
				 errdetail("No row of \"%s\" holds the given key, and a read-only transaction cannot write a new one.", relname),
				 errhint("Call it in a read-write transaction.")));
	ereport(ERROR,
			(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
			 errmsg("cannot update table \"%s\" in a read-only transaction", relname),
			 errdetail("The row of \"%s\" that holds the given key differs from the given values, and a read-only transaction cannot change it.", relname),
			 errhint("Call it in a read-write transaction.")));
}

static bool
txg_insert(TxgCall *call, TxgRow *row, Datum *result)
{
	SPIPlanPtr	plan;
	int			natts = call->info->natts;
	Datum	   *values = palloc(sizeof(Datum) * Max(natts, 1));
	char	   *nulls = palloc(sizeof(char) * Max(natts, 1));
	int			n = 0;
	int			i;

	txg_refuse_read_only(call, TXG_PLAN_INSERT);
	plan = txg_get_plan(call, row, TXG_PLAN_INSERT);
	for (i = 0; i < natts; i++)
	{
		if (!row->present[i])
			continue;
		values[n] = row->values[i];
		nulls[n++] = row->nulls[i] ? 'n' : ' ';
	}
	return txg_execute(call, plan, values, nulls, TXG_PLAN_INSERT, result);
}

static bool
txg_update(TxgCall *call, TxgRow *row, Datum *result)
{
	TxgIndex   *idx = row->arbiter;
	SPIPlanPtr	plan;
	int			natts = call->info->natts;
	Datum	   *values = palloc(sizeof(Datum) * (natts + INDEX_MAX_KEYS));
	char	   *nulls = palloc(sizeof(char) * (natts + INDEX_MAX_KEYS));
	int			n = 0;
	int			i;

	txg_refuse_read_only(call, TXG_PLAN_UPDATE);
	plan = txg_get_plan(call, row, TXG_PLAN_UPDATE);

	for (i = 0; i < natts; i++)
	{
		if (!row->update[i])
			continue;
		values[n] = row->values[i];
		nulls[n++] = row->nulls[i] ? 'n' : ' ';
	}
	for (i = 0; i < idx->nkeys; i++)
	{
		if (row->keynulls[i])
			continue;
		values[n] = row->keyvals[i];
		nulls[n++] = ' ';
	}
	return txg_execute(call, plan, values, nulls, TXG_PLAN_UPDATE, result);
}

/* would updating the existing row with vals change any column? */
static bool
txg_row_differs(TxgCall *call, TxgRow *row, Datum existing)
{
	TxgRelInfo *info = call->info;
	TupleDesc	tupdesc = RelationGetDescr(call->rel);
	HeapTupleHeader th = txg_datum_get_tuple_header(existing);
	HeapTupleData tuple;
	Datum	   *values = palloc(sizeof(Datum) * Max(info->natts, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(info->natts, 1));
	int			i;

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

/* the algorithm of the file header, for one row */
static void
txg_process_row(TxgCall *call, TxgRow *row)
{
	TxgIndex   *idx = row->arbiter;
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

	if (update_failed)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not update the row with this key in table \"%s\"",
						call->info->relname),
				 errdetail("The lookup through unique index \"%s\" found the row, but the update did not reach it (%d attempts). Likely causes: concurrent deletes or key changes, a row-level security policy that lets the current user see the row but not update it, or a BEFORE UPDATE trigger that skips the row.",
						   idx->name, Min(attempt, TXG_MAX_ATTEMPTS)),
				 call->batch ?
				 errcontext("element %d of vals", row->ordinal + 1) : 0));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("could not insert or find the row with this key in table \"%s\"",
					call->info->relname),
			 errdetail("The insert added no row, and the lookup through unique index \"%s\" found none (%d attempts). Likely causes: concurrent deletes of the row, a row-level security policy that hides it from the current user, or a BEFORE INSERT trigger that changes the key or skips the row.",
					   idx->name, Min(attempt, TXG_MAX_ATTEMPTS)),
			 call->batch ?
			 errcontext("element %d of vals", row->ordinal + 1) : 0));
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
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	txg_process_row(&call, row);
	SPI_finish();
	if (row->arbiter->needs_pin)
		txg_unpin_search_path(nestlevel);
	txg_close_call(&call);
}

/* txg_single_run, counting the calls in progress */
static void
txg_single(FunctionCallInfo fcinfo, TxgOp op, TxgRow *row)
{
	txg_cache_init();
	txg_free_dead();
	txg_depth++;
	PG_TRY();
	{
		txg_single_run(fcinfo, op, row);
	}
	PG_FINALLY();
	{
		txg_depth--;
	}
	PG_END_TRY();
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


/* ----------------------------------------------------------------
 * Batch helpers
 * ----------------------------------------------------------------
 */

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

/* fold a later row with the same key into the first one (upsert) */
static void
txg_merge_rows(TxgCall *call, TxgRow *into, TxgRow *from)
{
	int			i;

	for (i = 0; i < call->info->natts; i++)
	{
		if (!from->present[i])
			continue;
		if (!into->present[i])
			into->ncols++;
		into->present[i] = true;
		into->values[i] = from->values[i];
		into->nulls[i] = from->nulls[i];
	}
}

static void
txg_batch_run(FunctionCallInfo fcinfo, TxgOp op, bool status, TxgSrf *srf)
{
	TxgCall		call;
	Jsonb	   *vals;
	TxgRow	   *rows;
	int		   *order;
	bool	   *leader;
	int			nrows;
	int			i;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	TxgSortArg	sa = {NULL, NULL};
	bool		pin;
	int			nestlevel = 0;

	txg_open_call(fcinfo, &call, op, true);
	vals = PG_GETARG_JSONB_P(1);
	if (!JB_ROOT_IS_ARRAY(vals) || JB_ROOT_IS_SCALAR(vals))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"vals\" must be a JSON array of objects"),
				 errhint("Pass one object per row, as in '[{\"email\": \"a@example.com\"}, {\"email\": \"b@example.com\"}]'.")));

	nrows = JB_ROOT_COUNT(vals);
	rows = palloc0(sizeof(TxgRow) * Max(nrows, 1));
	order = palloc(sizeof(int) * Max(nrows, 1));
	leader = palloc0(sizeof(bool) * Max(nrows, 1));

	/* parse every element and compute its key */
	it = JsonbIteratorInit(&vals->root);
	i = 0;
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
		row = &rows[i];
		txg_row_init(&call, row, i);
		txg_parse_object(&call, v.val.binary.data, row);
		row->arbiter = txg_choose_arbiter(&call, row);
		if (i > 0 && row->arbiter != rows[0].arbiter)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
					 errmsg("elements of vals have different conflict targets"),
					 errdetail("Element 1 is arbitrated by unique index \"%s\", element %d by unique index \"%s\".",
							   rows[0].arbiter->name, i + 1,
							   row->arbiter->name),
					 errhint("Give every element the same key columns, or pass conflict_columns.")));
		txg_compute_key(&call, row);
		order[i] = i;
		i++;
	}
	nrows = i;

	/*
	 * Sort by key in the index's own order: two batches with common keys
	 * then lock (insert, update) them in the same order and cannot
	 * deadlock on each other.  Equal keys end up adjacent, first
	 * occurrence first.
	 */
	if (nrows > 0)
	{
		sa.rows = rows;
		sa.idx = rows[0].arbiter;
		qsort_arg(order, nrows, sizeof(int), txg_sort_cmp, &sa);
	}

	/* one leader per key; later duplicates fold into it */
	for (i = 0; i < nrows; i++)
	{
		TxgRow	   *row = &rows[order[i]];

		if (i > 0 && txg_compare_keys(sa.idx, &rows[order[i - 1]], row) == 0)
		{
			int			j = i - 1;

			while (!leader[order[j]])
				j--;
			if (op == TXG_OP_UPSERT)
				txg_merge_rows(&call, &rows[order[j]], row);
			continue;
		}
		leader[order[i]] = true;
	}
	for (i = 0; i < nrows; i++)
		if (leader[i])
			txg_choose_update(&call, &rows[i]);

	pin = nrows > 0 && rows[0].arbiter->needs_pin;
	if (pin)
		nestlevel = txg_pin_search_path();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	for (i = 0; i < nrows; i++)
	{
		if (leader[order[i]])
			txg_process_row(&call, &rows[order[i]]);
	}
	SPI_finish();
	if (pin)
		txg_unpin_search_path(nestlevel);

	/* results in input order, one per key */
	for (i = 0; i < nrows; i++)
	{
		TxgRow	   *row = &rows[i];

		if (!leader[i])
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
	txg_close_call(&call);
}

/* txg_batch_run, counting the calls in progress */
static void
txg_batch(FunctionCallInfo fcinfo, TxgOp op, bool status)
{
	TxgSrf		srf;

	txg_cache_init();
	txg_free_dead();
	txg_srf_begin(fcinfo, &srf);
	txg_depth++;
	PG_TRY();
	{
		txg_batch_run(fcinfo, op, status, &srf);
	}
	PG_FINALLY();
	{
		txg_depth--;
	}
	PG_END_TRY();
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
