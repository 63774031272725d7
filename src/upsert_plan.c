/*-------------------------------------------------------------------------
 *
 * upsert_plan.c
 *		The helpers' statements: their text, the cache of their prepared
 *		plans, and running them.
 *
 * Three kinds of statement, for a table T (alias A), arbiter index I:
 *	lookup	SELECT A FROM [ONLY] T AS A WHERE <I's key> = $n ... [AND pred]
 *	insert	INSERT INTO T AS A (cols) VALUES ($1, ...)
 *			ON CONFLICT (<I's inference elements>) [WHERE pred]
 *			DO NOTHING RETURNING A
 *	update	UPDATE [ONLY] T AS A SET col = $n, ... WHERE <I's key> ...
 *			RETURNING A
 * Every name is quoted and qualified, operators are spelt
 * OPERATOR(schema.op); values only travel as parameters.  A NULL key
 * element (NULLS NOT DISTINCT) is looked up with IS NULL.
 *
 * Plans are prepared with SPI and kept per (table, arbiter, statement
 * kind, column set, NULL pattern of the key), at most
 * txguard.max_cached_plans of them: past that, the least recently used
 * goes.  An invalidation marks a plan stale; the next use prepares it
 * again.  A plan replaced or evicted may still be running (a trigger can
 * call the helpers again), so it is buried, and freed when no call is in
 * progress (see upsert_cache.c).
 *
 *-------------------------------------------------------------------------
 */
#include "upsert.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "lib/ilist.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

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
	dlist_node	lru;			/* in txg_plan_lru */
} TxgPlanEntry;

static HTAB *txg_plans = NULL;

/* the entries, most recently used first, and how many there are */
static dlist_head txg_plan_lru = DLIST_STATIC_INIT(txg_plan_lru);
static int	txg_nplans = 0;

void
txg_plan_cache_init(void)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(TxgPlanKey);
	ctl.entrysize = sizeof(TxgPlanEntry);
	ctl.hcxt = txg_cache_cxt;
	txg_plans = hash_create("txguard upsert plans", 64, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* from the relcache callback: relid (a table or index) changed */
void
txg_plan_invalidate(Oid relid)
{
	HASH_SEQ_STATUS status;
	TxgPlanEntry *pentry;

	hash_seq_init(&status, txg_plans);
	while ((pentry = hash_seq_search(&status)) != NULL)
	{
		if (relid == InvalidOid || pentry->key.relid == relid ||
			pentry->key.indexoid == relid)
			pentry->valid = false;
	}
}

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


/* ----------------------------------------------------------------
 * Statement texts
 * ----------------------------------------------------------------
 */

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
	if (idx->predsql)
		appendStringInfo(buf, " AND (%s)", idx->predsql);
}

static void
txg_lookup_text(StringInfo buf, TxgRelInfo *info, TxgRow *row, Oid *types,
				int *nparams)
{
	appendStringInfo(buf, "SELECT %s FROM %s%s AS %s",
					 info->alias, info->only ? "ONLY " : "",
					 info->qualname, info->alias);
	txg_append_key_condition(buf, row->arbiter, row->nullmask, types, nparams);
}

static void
txg_insert_text(StringInfo buf, TxgRelInfo *info, TxgRow *row, Oid *types,
				int *nparams)
{
	TxgIndex   *idx = row->arbiter;
	StringInfoData vals;
	int			i;

	initStringInfo(&vals);
	appendStringInfo(buf, "INSERT INTO %s AS %s (",
					 info->qualname, info->alias);
	for (i = 0; i < info->natts; i++)
	{
		if (!row->present[i])
			continue;
		types[(*nparams)++] = info->cols[i].typid;
		appendStringInfo(buf, "%s%s", *nparams > 1 ? ", " : "",
						 quote_identifier(info->cols[i].name));
		appendStringInfo(&vals, "%s$%d", *nparams > 1 ? ", " : "",
						 *nparams);
	}
	appendStringInfo(buf, ") VALUES (%s) ON CONFLICT (", vals.data);
	for (i = 0; i < idx->nkeys; i++)
		appendStringInfo(buf, "%s%s", i > 0 ? ", " : "",
						 idx->infertext[i]);
	appendStringInfoChar(buf, ')');
	if (idx->predsql)
		appendStringInfo(buf, " WHERE %s", idx->predsql);
	appendStringInfo(buf, " DO NOTHING RETURNING %s", info->alias);
}

static void
txg_update_text(StringInfo buf, TxgRelInfo *info, TxgRow *row, Oid *types,
				int *nparams)
{
	int			i;

	appendStringInfo(buf, "UPDATE %s%s AS %s SET ",
					 info->only ? "ONLY " : "", info->qualname,
					 info->alias);
	for (i = 0; i < info->natts; i++)
	{
		if (!row->update[i])
			continue;
		types[(*nparams)++] = info->cols[i].typid;
		appendStringInfo(buf, "%s%s = $%d", *nparams > 1 ? ", " : "",
						 quote_identifier(info->cols[i].name), *nparams);
	}
	txg_append_key_condition(buf, row->arbiter, row->nullmask, types, nparams);
	appendStringInfo(buf, " RETURNING %s", info->alias);
}

static SPIPlanPtr
txg_build_plan(TxgCall *call, TxgRow *row, TxgPlanKind kind)
{
	TxgRelInfo *info = call->info;
	StringInfoData buf;
	Oid		   *types = palloc(sizeof(Oid) * (info->natts + INDEX_MAX_KEYS + 1));
	int			nparams = 0;
	SPIPlanPtr	plan;

	initStringInfo(&buf);
	switch (kind)
	{
		case TXG_PLAN_LOOKUP:
			txg_lookup_text(&buf, info, row, types, &nparams);
			break;
		case TXG_PLAN_INSERT:
			txg_insert_text(&buf, info, row, types, &nparams);
			break;
		case TXG_PLAN_UPDATE:
			txg_update_text(&buf, info, row, types, &nparams);
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


/* ----------------------------------------------------------------
 * The plan cache
 * ----------------------------------------------------------------
 */

/* drop least recently used entries until at most max remain, keep aside */
static void
txg_plan_evict(int max, TxgPlanEntry *keep)
{
	while (txg_nplans > max && !dlist_is_empty(&txg_plan_lru))
	{
		TxgPlanEntry *victim = dlist_tail_element(TxgPlanEntry, lru,
												  &txg_plan_lru);

		if (victim == keep)
			break;
		dlist_delete(&victim->lru);
		if (victim->plan != NULL)
			txg_bury_plan(victim->plan);
		if (hash_search(txg_plans, &victim->key, HASH_REMOVE, NULL) == NULL)
			elog(ERROR, "txguard plan cache is corrupted");
		txg_nplans--;
	}
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
	if (found)
	{
		/* most recently used: to the head */
		dlist_delete(&entry->lru);
		dlist_push_head(&txg_plan_lru, &entry->lru);
	}
	else
	{
		entry->plan = NULL;
		entry->valid = false;
		dlist_push_head(&txg_plan_lru, &entry->lru);
		txg_nplans++;
	}
	/* the limit may also have been lowered since the last call */
	txg_plan_evict(txg_max_cached_plans, entry);

	if (entry->valid && entry->plan != NULL)
		return entry->plan;
	if (entry->plan != NULL)
		txg_bury_plan(entry->plan);
	entry->plan = NULL;
	entry->valid = true;		/* before building: an invalidation sticks */
	plan = txg_build_plan(call, row, kind);
	entry->plan = plan;
	return plan;
}


/* ----------------------------------------------------------------
 * Running the statements
 * ----------------------------------------------------------------
 */

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

/*
 * SPI, connected by the first statement a call runs: the existing-row path
 * through the probe runs none.
 */
static void
txg_spi_connect(TxgCall *call)
{
	if (call->spi_connected)
		return;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	call->spi_connected = true;
}

void
txg_spi_finish(TxgCall *call)
{
	if (!call->spi_connected)
		return;
	SPI_finish();
	call->spi_connected = false;
}

/*
 * The row with the key of *row, if there is one: through the index
 * directly when upsert_probe.c can, else by the lookup statement.
 */
bool
txg_lookup(TxgCall *call, TxgRow *row, Datum *result)
{
	TxgIndex   *idx = row->arbiter;
	SPIPlanPtr	plan;
	Datum		values[INDEX_MAX_KEYS];
	char		nulls[INDEX_MAX_KEYS];
	int			n = 0;
	int			i;

	switch (txg_probe(call, row, result))
	{
		case TXG_PROBE_FOUND:
			return true;
		case TXG_PROBE_NOT_FOUND:
			return false;
		case TXG_PROBE_FALLBACK:
			break;
	}

	txg_spi_connect(call);
	plan = txg_get_plan(call, row, TXG_PLAN_LOOKUP);

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

/* insert *row unless its key exists; the new row, if one was inserted */
bool
txg_insert(TxgCall *call, TxgRow *row, Datum *result)
{
	SPIPlanPtr	plan;
	int			natts = call->info->natts;
	Datum	   *values;
	char	   *nulls;
	int			n = 0;
	int			i;

	txg_refuse_read_only(call, TXG_PLAN_INSERT);
	txg_spi_connect(call);
	plan = txg_get_plan(call, row, TXG_PLAN_INSERT);
	values = palloc(sizeof(Datum) * Max(natts, 1));
	nulls = palloc(sizeof(char) * Max(natts, 1));

	for (i = 0; i < natts; i++)
	{
		if (!row->present[i])
			continue;
		values[n] = row->values[i];
		nulls[n++] = row->nulls[i] ? 'n' : ' ';
	}
	return txg_execute(call, plan, values, nulls, TXG_PLAN_INSERT, result);
}

/* update the row with the key of *row; the new version, if it was found */
bool
txg_update(TxgCall *call, TxgRow *row, Datum *result)
{
	TxgIndex   *idx = row->arbiter;
	SPIPlanPtr	plan;
	int			natts = call->info->natts;
	Datum	   *values;
	char	   *nulls;
	int			n = 0;
	int			i;

	txg_refuse_read_only(call, TXG_PLAN_UPDATE);
	txg_spi_connect(call);
	plan = txg_get_plan(call, row, TXG_PLAN_UPDATE);
	values = palloc(sizeof(Datum) * (natts + INDEX_MAX_KEYS));
	nulls = palloc(sizeof(char) * (natts + INDEX_MAX_KEYS));

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
