/*-------------------------------------------------------------------------
 *
 * upsert.h
 *		What the files of the race-free helpers (txguard.insert_or_get,
 *		txguard.upsert and their forms) offer each other.
 *
 * The helpers are split by concern:
 *
 *	upsert.c			the algorithm for one row, the call's set-up, and
 *						the single-row SQL functions
 *	upsert_batch.c		the batch ("_many") SQL functions
 *	upsert_cache.c		the per-backend caches' memory, their invalidation,
 *						and when stale entries may be freed
 *	upsert_relinfo.c	what the helpers know about a table and its unique
 *						indexes (TxgRelInfo), cached per table
 *	upsert_row.c		a jsonb object of vals as a proposed row
 *	upsert_key.c		defaults, predicates and the key of a proposed row
 *	upsert_arbiter.c	choosing the arbiter index and the columns to update
 *	upsert_plan.c		building, caching and running the statements
 *	upsert_probe.c		the lookup as a direct probe of the arbiter index,
 *						when nothing calls for the statement
 *
 *-------------------------------------------------------------------------
 */
#ifndef TXGUARD_UPSERT_H
#define TXGUARD_UPSERT_H

#include "pg_txguard.h"

#include "access/htup_details.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/bitmapset.h"
#include "nodes/pg_list.h"
#include "nodes/primnodes.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/relcache.h"

#pragma GCC visibility push(hidden)

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
	int			namelen;		/* strlen(name) */
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
	Node	   *rawexprs[INDEX_MAX_KEYS];	/* expression as stored, or NULL */
	char	   *matchtext[INDEX_MAX_KEYS];	/* column name, or expression as
											 * pg_indexes spells it with search_path
											 * pg_catalog */
	char	   *infertext[INDEX_MAX_KEYS];	/* ON CONFLICT inference element */
	char	   *lookuptext[INDEX_MAX_KEYS]; /* "(key COLLATE c) OPERATOR(=)" */
	Oid			keytype[INDEX_MAX_KEYS];
	int16		keylen[INDEX_MAX_KEYS];
	bool		keybyval[INDEX_MAX_KEYS];
	Oid			keycoll[INDEX_MAX_KEYS];
	FmgrInfo	cmp[INDEX_MAX_KEYS];	/* btree order, for batch sorting */
	Oid			opcintype[INDEX_MAX_KEYS];	/* the operator class's type */
	FmgrInfo	eqfn[INDEX_MAX_KEYS];	/* btree equality, for the probe */
	bool		probe_runs_sql; /* a key's comparison is not built in */
	bool		probable;		/* a btree index whose search runs only
								 * built-in functions: the probe can search
								 * it (see upsert_probe.c) */
	List	   *pred;			/* planned predicate (implicit AND), or NIL */
	List	   *rawpred;		/* the predicate as stored, for equal() */
	char	   *predtext;		/* the predicate, for messages */
	char	   *predsql;		/* the predicate, for statements */
	Bitmapset  *keycols;		/* attnums the key uses */
	Bitmapset  *predcols;		/* attnums the predicate uses */
} TxgIndex;

/* what the helpers know about a table; one memory context each */
typedef struct TxgRelInfo
{
	Oid			relid;
	Oid			reltype;		/* the table's row type */
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
	/* the probe's permission check: what the lookup statement would ask */
	List	   *select_rtable;
	List	   *select_perminfos;	/* NIL before 16 */
	/* the probe's slot for the table's rows, kept between calls */
	MemoryContext probe_cxt;	/* holds the slot; NULL when there is none */
	TupleTableSlot *probe_slot;
	bool		probe_busy;		/* a scan into the slot has not ended */
	/* the arbiter last inferred from the keys of vals alone, and those keys */
	TxgIndex   *inferred_arbiter;
	bool	   *inferred_present;	/* natts entries, as TxgRow.present */
} TxgRelInfo;

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
	bool	   *update;			/* per attribute: column to update (set by
								 * txg_choose_update) */
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
	MemoryContext result_cxt;	/* where results go (the caller's) */
	bool		spi_connected;	/* by the first statement that runs */
	EState	   *estate;			/* for expressions and predicates */
	TupleTableSlot *slot;
	/* error context */
	const char *ctx_column;
	int			ctx_element;
} TxgCall;

/* upsert_cache.c */
extern MemoryContext txg_cache_cxt;
extern void txg_cache_init(void);
extern void txg_call_enter(void);
extern void txg_call_leave(bool success);
extern void txg_bury_plan(SPIPlanPtr plan);
extern void txg_bury_cxt(MemoryContext cxt);

/*
 * Deparsed index expressions and predicates name built-in functions and
 * operators unqualified.  They are deparsed, parsed and run with
 * search_path = pg_catalog, pg_temp (as RestrictSearchPath() does from
 * PostgreSQL 17 on), so that no schema of the caller's search_path can
 * capture them.  Returns the GUC nest level for txg_unpin_search_path();
 * an error unwinds it with the (sub)transaction.
 */
static inline int
txg_pin_search_path(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	return nestlevel;
}

static inline void
txg_unpin_search_path(int nestlevel)
{
	AtEOXact_GUC(true, nestlevel);
}

/* upsert_relinfo.c */
extern void txg_relinfo_cache_init(void);
extern void txg_relinfo_invalidate(Oid relid);
extern Oid	txg_relid_of_type(Oid typid);
extern TxgRelInfo *txg_get_relinfo(Relation rel);
extern AttrNumber txg_find_column(TxgRelInfo *info, const char *name, int len);
extern char *txg_key_spelling(TxgRelInfo *info, TxgIndex *idx, int i);
extern char *txg_index_columns(TxgRelInfo *info, TxgIndex *idx);

/* upsert_row.c */
extern void txg_row_init(TxgCall *call, TxgRow *row, int ordinal);
extern void txg_parse_object(TxgCall *call, JsonbContainer *container,
							 TxgRow *row);

/* upsert_key.c */
extern bool txg_predicate_holds(TxgCall *call, TxgRow *row, TxgIndex *idx);
extern void txg_compute_key(TxgCall *call, TxgRow *row);

/* upsert_arbiter.c */
extern TxgIndex *txg_choose_arbiter(TxgCall *call, TxgRow *row);
extern void txg_choose_update(TxgCall *call, TxgRow *row);

/* upsert_plan.c */
extern void txg_plan_cache_init(void);
extern void txg_plan_invalidate(Oid relid);
extern void txg_spi_finish(TxgCall *call);
extern bool txg_lookup(TxgCall *call, TxgRow *row, Datum *result);
extern bool txg_insert(TxgCall *call, TxgRow *row, Datum *result);
extern bool txg_update(TxgCall *call, TxgRow *row, Datum *result);

/* upsert_probe.c */
typedef enum TxgProbeResult
{
	TXG_PROBE_FOUND,
	TXG_PROBE_NOT_FOUND,
	TXG_PROBE_FALLBACK			/* run the lookup statement instead */
} TxgProbeResult;

extern TxgProbeResult txg_probe(TxgCall *call, TxgRow *row, Datum *result);

/* upsert.c */
extern void txg_open_call(FunctionCallInfo fcinfo, TxgCall *call, TxgOp op,
						  bool batch);
extern void txg_close_call(TxgCall *call);
extern void txg_process_row(TxgCall *call, TxgRow *row);

#pragma GCC visibility pop

#endif							/* TXGUARD_UPSERT_H */
