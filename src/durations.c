/*-------------------------------------------------------------------------
 *
 * durations.c
 *		Transaction durations per (database, role, application_name): the
 *		txguard.durations and txguard.duration_histogram views, and what
 *		txguard.would_time_out() counts of ended transactions.
 *
 * A transaction's duration runs from its first statement to its end.  It
 * is counted in a histogram of fixed buckets, Prometheus-style: bucket i
 * holds the durations above bound i-1 and up to bound i, the last one
 * those above one hour.  The bounds follow a 1-2-5 scale in each unit
 * (ms, s, min), where 30 takes the place of 50 in seconds and minutes
 * (60 starts the next unit, and 30 s is a common limit):
 *
 *	1, 2, 5, 10, 20, 50, 100, 200, 500 ms, 1, 2, 5, 10, 20, 30 s,
 *	1, 2, 5, 10, 20, 30 min, 1 h
 *
 * With each key go the sum of the durations (for the mean), the longest,
 * and the longest time a transaction sat idle at its client between two
 * statements (the signature of a missing Rollback()).
 *
 * Where the counts live, as for the outcome counters (stats.c): a backend
 * counts its transactions in its own counter slot, without a lock; the
 * slot is for the backend's database, login role and application_name of
 * the moment.  When application_name changes, and when the backend exits,
 * the slot's durations are added to the key's entry of the shared table
 * here, under the counters' lock (they are reset and saved with the
 * counters, so they share its lock); readers take that lock in shared
 * mode and add the live slots to what the table holds, so a transaction
 * is never seen twice nor missed.
 *
 * The table holds at most txguard.max_duration_keys keys:
 * application_name is chosen by clients, so the bound keeps a client from
 * filling shared memory.  Once the table is full, a new key's durations
 * are counted in one "(other)" row for its database.  Rows go with their
 * database (DROP DATABASE, or a database found gone when the table is
 * loaded), and all of them with txguard.reset_stats().  They are written
 * to the counters' file at a clean shutdown and loaded back with it.
 *
 *-------------------------------------------------------------------------
 */
#include "pg_txguard.h"

#include <math.h>

#include "access/htup_details.h"
#include "common/int.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "srf.h"

/* the upper bounds of the buckets, in microseconds; the last one: +Inf */
const int64 txg_duration_bounds[TXG_DURATION_BUCKETS] = {
	INT64CONST(1000), INT64CONST(2000), INT64CONST(5000),
	INT64CONST(10000), INT64CONST(20000), INT64CONST(50000),
	INT64CONST(100000), INT64CONST(200000), INT64CONST(500000),
	INT64CONST(1000000), INT64CONST(2000000), INT64CONST(5000000),
	INT64CONST(10000000), INT64CONST(20000000), INT64CONST(30000000),
	INT64CONST(60000000), INT64CONST(120000000), INT64CONST(300000000),
	INT64CONST(600000000), INT64CONST(1200000000), INT64CONST(1800000000),
	INT64CONST(3600000000),
	PG_INT64_MAX
};

/*
 * For each power of two 2^k, the first bucket whose bound is at least
 * 2^k: a duration of d microseconds, 2^k <= d < 2^(k+1), is in that
 * bucket or one of the next two (bounds are at least 1.5 times apart).
 */
uint8		txg_duration_first_bucket[64];

/* the longest duration a valid file can hold: a century */
#define DURATION_MAX_VALID	((int64) 36525 * USECS_PER_DAY)

typedef struct TxgDurationTable
{
	int			capacity;		/* txguard.max_duration_keys at start */
	int			nkeys;
	int			nothers;
	bool		keys_full_warned;
	bool		others_full_warned;
	/* the "(other)" rows, one per database, once the keys are full */
	TxgDurationKey others[TXG_MAX_DATABASES];
	TxgDurationKey keys[FLEXIBLE_ARRAY_MEMBER];
} TxgDurationTable;

static TxgDurationTable *table = NULL;

/* a row as the readers see it */
typedef struct DurationRow
{
	TxgDurationKey key;
	bool		other;
} DurationRow;

void
txg_durations_init(void)
{
	int			k;

	for (k = 0; k < 64; k++)
	{
		uint64		low = (uint64) 1 << k;
		int			b = 0;

		while (b < TXG_DURATION_BOUNDS && (uint64) txg_duration_bounds[b] < low)
			b++;
		txg_duration_first_bucket[k] = b;
	}
}

Size
txg_durations_shmem_size(void)
{
	return add_size(offsetof(TxgDurationTable, keys),
					mul_size(txg_max_duration_keys, sizeof(TxgDurationKey)));
}

/* called from shmem_startup_hook, under AddinShmemInitLock, before stats */
void
txg_durations_shmem_init(void)
{
	bool		found;

	table = ShmemInitStruct("pg_txguard durations",
							txg_durations_shmem_size(), &found);
	if (!found)
	{
		memset(table, 0, txg_durations_shmem_size());
		table->capacity = txg_max_duration_keys;
	}
}

/* add "from" to "to" */
void
txg_durations_merge(TxgDurations *to, const TxgDurations *from)
{
	int			i;

	for (i = 0; i < TXG_DURATION_BUCKETS; i++)
		to->buckets[i] += from->buckets[i];
	to->sum += from->sum;
	to->max = Max(to->max, from->max);
	to->max_idle = Max(to->max_idle, from->max_idle);
}

static int64
transactions_of(const TxgDurations *d)
{
	int64		n = 0;
	int			i;

	for (i = 0; i < TXG_DURATION_BUCKETS; i++)
		n += d->buckets[i];
	return n;
}

bool
txg_durations_are_zero(const TxgDurations *d)
{
	return transactions_of(d) == 0 && d->max_idle == 0;
}

static inline bool
same_key(const TxgDurationKey *k, Oid dbid, Oid userid, const char *appname)
{
	return k->dbid == dbid && k->userid == userid &&
		strcmp(k->appname, appname) == 0;
}

static void
fill_key(TxgDurationKey *k, Oid dbid, Oid userid, const char *appname)
{
	memset(k, 0, sizeof(TxgDurationKey));
	k->dbid = dbid;
	k->userid = userid;
	snprintf(k->appname, NAMEDATALEN, "%s", appname);
}

/* the "(other)" row of a database, made if need be; lock held exclusive */
static TxgDurationKey *
other_row(Oid dbid)
{
	int			i;

	for (i = 0; i < table->nothers; i++)
		if (table->others[i].dbid == dbid)
			return &table->others[i];
	if (table->nothers >= TXG_MAX_DATABASES)
	{
		if (!table->others_full_warned)
			ereport(LOG,
					(errmsg("pg_txguard: transaction durations are kept for at most %d databases",
							TXG_MAX_DATABASES)));
		table->others_full_warned = true;
		return NULL;
	}
	i = table->nothers++;
	fill_key(&table->others[i], dbid, InvalidOid, "");
	return &table->others[i];
}

/*
 * The entry of a key, made if there is room, else its database's
 * "(other)" row; NULL when neither can be had.  Lock held exclusive.
 */
static TxgDurationKey *
key_row(Oid dbid, Oid userid, const char *appname)
{
	int			i;

	for (i = 0; i < table->nkeys; i++)
		if (same_key(&table->keys[i], dbid, userid, appname))
			return &table->keys[i];
	if (table->nkeys < table->capacity)
	{
		i = table->nkeys++;
		fill_key(&table->keys[i], dbid, userid, appname);
		return &table->keys[i];
	}
	if (!table->keys_full_warned)
		ereport(LOG,
				(errmsg("pg_txguard: transaction durations are kept for at most %d keys",
						table->capacity),
				 errdetail("Durations of further (database, role, application_name) keys are counted in the \"(other)\" row of their database."),
				 errhint("Raise \"txguard.max_duration_keys\" to keep more keys.")));
	table->keys_full_warned = true;
	return other_row(dbid);
}

/*
 * A backend hands over the durations it counted for a key (it exits, or
 * its application_name changed).  Lock held exclusive.
 */
void
txg_durations_add(Oid dbid, Oid userid, const char *appname,
				  const TxgDurations *d)
{
	TxgDurationKey *row;

	if (table == NULL || txg_durations_are_zero(d))
		return;
	row = key_row(dbid, userid, appname);
	if (row != NULL)
	{
		txg_durations_merge(&row->durations, d);
		/* a clock set back can make a transaction's end precede its start */
		row->durations.sum = Max(row->durations.sum, 0);
	}
}

/* remove entry i of "rows" (of *n) */
static void
remove_entry(TxgDurationKey *rows, int *n, int i)
{
	rows[i] = rows[*n - 1];
	(*n)--;
}

/* DROP DATABASE has run: the database's rows go.  Lock held exclusive. */
void
txg_durations_forget_database(Oid dbid)
{
	int			i;

	if (table == NULL)
		return;
	for (i = table->nkeys - 1; i >= 0; i--)
		if (table->keys[i].dbid == dbid)
			remove_entry(table->keys, &table->nkeys, i);
	for (i = table->nothers - 1; i >= 0; i--)
		if (table->others[i].dbid == dbid)
			remove_entry(table->others, &table->nothers, i);
}

/* txguard.reset_stats(); lock held exclusive */
void
txg_durations_reset(void)
{
	if (table == NULL)
		return;
	table->nkeys = 0;
	table->nothers = 0;
	table->keys_full_warned = false;
	table->others_full_warned = false;
}

/* ----------------------------------------------------------------
 * The counters' file: the durations' part
 * ----------------------------------------------------------------
 *
 * int32 nkeys, the keys, int32 nothers, the "(other)" rows, each a
 * TxgDurationKey.  stats.c writes it after the counters, under the file's
 * checksum, and hands it back here to check and load.
 */

/* append the table to "buf"; at shutdown, nothing else runs */
void
txg_durations_serialize(StringInfo buf)
{
	int32		n;

	n = table->nkeys;
	appendBinaryStringInfo(buf, (char *) &n, sizeof(n));
	appendBinaryStringInfo(buf, (char *) table->keys,
						   n * sizeof(TxgDurationKey));
	n = table->nothers;
	appendBinaryStringInfo(buf, (char *) &n, sizeof(n));
	appendBinaryStringInfo(buf, (char *) table->others,
						   n * sizeof(TxgDurationKey));
}

static const char *
check_durations(const TxgDurations *d)
{
	int64		n = 0;
	int			i;

	for (i = 0; i < TXG_DURATION_BUCKETS; i++)
	{
		if (d->buckets[i] < 0)
			return "it holds a negative count of durations";
		if (d->buckets[i] > PG_INT64_MAX / TXG_DURATION_BUCKETS)
			return "it holds a count of durations out of range";
		n += d->buckets[i];
	}
	if (d->max < 0 || d->max > DURATION_MAX_VALID ||
		d->max_idle < 0 || d->max_idle > DURATION_MAX_VALID)
		return "it holds a longest duration out of range";
	if (d->sum < 0 || (n == 0 && (d->sum != 0 || d->max != 0)))
		return "it holds a sum of durations out of range";
	/* the sum of n durations is at most n times the longest */
	if (n > 0 && d->sum / n > d->max)
		return "it holds a sum of durations out of range";
	/* the longest is in the bucket it belongs to, or an earlier one is empty */
	if (n > 0 && d->max > 0 &&
		d->buckets[txg_duration_bucket(d->max)] == 0)
		return "it holds a longest duration outside its histogram";
	return NULL;
}

/* check "n" entries at "rows"; "others": the "(other)" rows */
static const char *
check_entries(const TxgDurationKey *rows, int n, bool others)
{
	int			i;
	int			j;

	for (i = 0; i < n; i++)
	{
		const TxgDurationKey *k = &rows[i];
		const char *problem;

		if (!OidIsValid(k->dbid))
			return "it holds durations with no database";
		if (memchr(k->appname, '\0', NAMEDATALEN) == NULL)
			return "it holds an application_name that does not end";
		if (others ? (OidIsValid(k->userid) || k->appname[0] != '\0') :
			!OidIsValid(k->userid))
			return "it holds durations with a malformed key";
		for (j = 0; j < i; j++)
			if (rows[j].dbid == k->dbid && rows[j].userid == k->userid &&
				strcmp(rows[j].appname, k->appname) == 0)
				return "it holds two rows of durations for one key";
		if ((problem = check_durations(&k->durations)) != NULL)
			return problem;
	}
	return NULL;
}

/*
 * Check the durations' part of the counters' file, "len" bytes at "buf":
 * NULL if it can be loaded, else why not.
 */
const char *
txg_durations_check_file(const char *buf, Size len)
{
	int32		nkeys;
	int32		nothers;
	Size		keys_size;
	const char *problem;

	if (len < sizeof(int32))
		return "its durations are cut short";
	memcpy(&nkeys, buf, sizeof(int32));
	if (nkeys < 0 || nkeys > TXG_MAX_DURATION_KEYS)
		return "its number of duration keys is out of range";
	keys_size = sizeof(int32) + nkeys * sizeof(TxgDurationKey);
	if (len < keys_size + sizeof(int32))
		return "its durations are cut short";
	memcpy(&nothers, buf + keys_size, sizeof(int32));
	if (nothers < 0 || nothers > TXG_MAX_DATABASES)
		return "its number of \"(other)\" rows is out of range";
	if (len != keys_size + sizeof(int32) + nothers * sizeof(TxgDurationKey))
		return "its size does not match its number of durations";
	/* the entries are not aligned in the buffer: check copies */
	{
		TxgDurationKey *keys = palloc(Max(nkeys, 1) * sizeof(TxgDurationKey));
		TxgDurationKey *others = palloc(Max(nothers, 1) * sizeof(TxgDurationKey));

		memcpy(keys, buf + sizeof(int32), nkeys * sizeof(TxgDurationKey));
		memcpy(others, buf + keys_size + sizeof(int32),
			   nothers * sizeof(TxgDurationKey));
		problem = check_entries(keys, nkeys, false);
		if (problem == NULL)
			problem = check_entries(others, nothers, true);
		pfree(keys);
		pfree(others);
	}
	return problem;
}

/*
 * Load the durations' part of the counters' file, checked above.  Keys
 * past txguard.max_duration_keys (lowered since) join their database's
 * "(other)" row; rows of databases "exists" does not find are dropped.
 * Returns how many rows were dropped.
 */
int
txg_durations_load_file(const char *buf, bool (*exists) (Oid dbid))
{
	int32		nkeys;
	int32		nothers;
	int			dropped = 0;
	int			i;
	TxgDurationKey k;

	memcpy(&nkeys, buf, sizeof(int32));
	buf += sizeof(int32);
	for (i = 0; i < nkeys; i++, buf += sizeof(TxgDurationKey))
	{
		memcpy(&k, buf, sizeof(k));
		if (!exists(k.dbid))
			dropped++;
		else
			txg_durations_add(k.dbid, k.userid, k.appname, &k.durations);
	}
	memcpy(&nothers, buf, sizeof(int32));
	buf += sizeof(int32);
	for (i = 0; i < nothers; i++, buf += sizeof(TxgDurationKey))
	{
		TxgDurationKey *row;

		memcpy(&k, buf, sizeof(k));
		if (!exists(k.dbid))
		{
			dropped++;
			continue;
		}
		row = other_row(k.dbid);
		if (row != NULL)
			txg_durations_merge(&row->durations, &k.durations);
	}
	return dropped;
}

/* ----------------------------------------------------------------
 * Readers
 * ----------------------------------------------------------------
 */

static DurationRow *
find_row(DurationRow *rows, int n, const TxgDurationKey *k, bool other)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		if (rows[i].other != other || rows[i].key.dbid != k->dbid)
			continue;
		if (other || same_key(&rows[i].key, k->dbid, k->userid, k->appname))
			return &rows[i];
	}
	return NULL;
}

/*
 * Every row with durations: the table's, plus what the live backends
 * counted since they last handed theirs over, added as they would be.
 */
static DurationRow *
gather_rows(int *nrows)
{
	int			nbackends = txg_max_backends();
	int			maxrows;
	DurationRow *rows;
	TxgDurationKey *live;
	int			nlive;
	int			nkeys;
	int			capacity;
	int			n = 0;
	int			i;

	txg_check_loaded();
	maxrows = table->capacity + TXG_MAX_DATABASES + nbackends;
	rows = palloc(sizeof(DurationRow) * maxrows);
	live = palloc(sizeof(TxgDurationKey) * nbackends);

	LWLockAcquire(txg_lwlock(TXG_LOCK_STATS), LW_SHARED);
	capacity = table->capacity;
	nkeys = table->nkeys;
	for (i = 0; i < table->nkeys; i++)
	{
		rows[n].key = table->keys[i];
		rows[n++].other = false;
	}
	for (i = 0; i < table->nothers; i++)
	{
		rows[n].key = table->others[i];
		rows[n++].other = true;
	}
	nlive = txg_stats_live_durations(live, nbackends);
	LWLockRelease(txg_lwlock(TXG_LOCK_STATS));

	for (i = 0; i < nlive; i++)
	{
		DurationRow *row = find_row(rows, n, &live[i], false);

		if (row == NULL && nkeys < capacity)
		{
			row = &rows[n++];
			row->key = live[i];
			row->other = false;
			memset(&row->key.durations, 0, sizeof(TxgDurations));
			nkeys++;
		}
		else if (row == NULL)
		{
			row = find_row(rows, n, &live[i], true);
			if (row == NULL)
			{
				row = &rows[n++];
				fill_key(&row->key, live[i].dbid, InvalidOid, "");
				row->other = true;
			}
		}
		txg_durations_merge(&row->key.durations, &live[i].durations);
	}
	pfree(live);
	*nrows = n;
	return rows;
}

static Datum
interval_datum(int64 us)
{
	Interval   *result = palloc0(sizeof(Interval));

	result->time = us;
	return IntervalPGetDatum(result);
}

/* the key's columns: dbid, userid, application_name */
static void
key_values(const DurationRow *row, Datum *values, bool *nulls)
{
	values[0] = ObjectIdGetDatum(row->key.dbid);
	if (row->other)
	{
		nulls[1] = true;
		values[2] = CStringGetTextDatum("(other)");
	}
	else
	{
		values[1] = ObjectIdGetDatum(row->key.userid);
		values[2] = CStringGetTextDatum(row->key.appname);
	}
}

/*
 * The q-quantile of "n" durations, estimated from the histogram: the
 * duration of rank ceil(q * n) (the nearest-rank definition), placed
 * linearly inside the bucket that holds it, whose upper end is taken as
 * the longest duration when that is shorter (or the bucket is the last).
 * So the last rank is the longest duration, exactly.
 */
static int64
quantile(const TxgDurations *d, int64 n, double q)
{
	double		rank = Max(ceil(q * n), 1);
	int64		below = 0;
	int			b;

	for (b = 0; b < TXG_DURATION_BUCKETS; b++)
	{
		double		lower;
		double		upper;

		if (d->buckets[b] == 0)
			continue;
		if (below + d->buckets[b] >= rank)
		{
			lower = b == 0 ? 0 : (double) txg_duration_bounds[b - 1];
			upper = b == TXG_DURATION_BOUNDS ? (double) d->max :
				Min((double) txg_duration_bounds[b], (double) d->max);
			if (upper < lower)
				upper = lower;
			return (int64) (lower + (upper - lower) * (rank - below) /
							d->buckets[b]);
		}
		below += d->buckets[b];
	}
	return d->max;
}

#define DURATIONS_COLS 10

PG_FUNCTION_INFO_V1(txguard_durations);

/* txguard._durations(): one row per key with transactions */
Datum
txguard_durations(PG_FUNCTION_ARGS)
{
	TxgSrf		srf;
	DurationRow *rows;
	int			nrows;
	int			i;

	rows = gather_rows(&nrows);
	txg_srf_begin(fcinfo, &srf);
	for (i = 0; i < nrows; i++)
	{
		const TxgDurations *d = &rows[i].key.durations;
		int64		n = transactions_of(d);
		Datum		values[DURATIONS_COLS];
		bool		nulls[DURATIONS_COLS];

		if (txg_durations_are_zero(d))
			continue;
		memset(nulls, 0, sizeof(nulls));
		key_values(&rows[i], values, nulls);
		values[3] = Int64GetDatum(n);
		if (n > 0)
		{
			values[4] = interval_datum(Max(d->sum, 0) / n);
			values[5] = interval_datum(quantile(d, n, 0.50));
			values[6] = interval_datum(quantile(d, n, 0.95));
			values[7] = interval_datum(quantile(d, n, 0.99));
			values[8] = interval_datum(d->max);
		}
		else
			nulls[4] = nulls[5] = nulls[6] = nulls[7] = nulls[8] = true;
		values[9] = interval_datum(d->max_idle);
		tuplestore_putvalues(srf.tupstore, srf.tupdesc, values, nulls);
	}
	return (Datum) 0;
}

#define HISTOGRAM_COLS 5

PG_FUNCTION_INFO_V1(txguard_duration_histogram);

/* txguard._duration_histogram(): per key, one row per bucket, cumulative */
Datum
txguard_duration_histogram(PG_FUNCTION_ARGS)
{
	TxgSrf		srf;
	DurationRow *rows;
	int			nrows;
	int			i;

	rows = gather_rows(&nrows);
	txg_srf_begin(fcinfo, &srf);
	for (i = 0; i < nrows; i++)
	{
		const TxgDurations *d = &rows[i].key.durations;
		int64		count = 0;
		int			b;

		if (transactions_of(d) == 0)
			continue;
		for (b = 0; b < TXG_DURATION_BUCKETS; b++)
		{
			Datum		values[HISTOGRAM_COLS];
			bool		nulls[HISTOGRAM_COLS];

			memset(nulls, 0, sizeof(nulls));
			key_values(&rows[i], values, nulls);
			if (b < TXG_DURATION_BOUNDS)
				values[3] = interval_datum(txg_duration_bounds[b]);
			else
				nulls[3] = true;
			count += d->buckets[b];
			values[4] = Int64GetDatum(count);
			tuplestore_putvalues(srf.tupstore, srf.tupdesc, values, nulls);
		}
	}
	return (Datum) 0;
}

/*
 * An interval as microseconds, a month being 30 days as in interval
 * comparison; saturates (an infinite interval is the longest).
 */
static int64
interval_microseconds(const Interval *iv)
{
	int64		days;
	int64		us;

	if (pg_mul_s64_overflow((int64) iv->month, DAYS_PER_MONTH, &days) ||
		pg_add_s64_overflow(days, (int64) iv->day, &days) ||
		pg_mul_s64_overflow(days, USECS_PER_DAY, &us) ||
		pg_add_s64_overflow(us, iv->time, &us))
	{
		/* the largest unit decides the sign */
		if (iv->month != 0)
			return iv->month > 0 ? PG_INT64_MAX : PG_INT64_MIN;
		return iv->day > 0 ? PG_INT64_MAX : PG_INT64_MIN;
	}
	return us;
}

/*
 * The bucket bound at or below "us": its index (-1 below the first bound,
 * which counts every transaction).
 */
static int
bound_at_or_below(int64 us)
{
	int			b = -1;

	while (b + 1 < TXG_DURATION_BOUNDS && txg_duration_bounds[b + 1] <= us)
		b++;
	return b;
}

PG_FUNCTION_INFO_V1(txguard_duration_bound);

/*
 * txguard._duration_bound(limit): the histogram bound from which ended
 * transactions are counted as longer than "limit", and whether that is
 * exact.
 */
Datum
txguard_duration_bound(PG_FUNCTION_ARGS)
{
	Interval   *limit = PG_GETARG_INTERVAL_P(0);
	int64		us = interval_microseconds(limit);
	int			b;
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	bool		exact;
	int64		from;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (us < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a transaction limit cannot be negative"),
				 errdetail("The limit given was %s.",
						   DatumGetCString(DirectFunctionCall1(interval_out,
															   IntervalPGetDatum(limit))))));
	b = bound_at_or_below(us);
	from = b < 0 ? 0 : txg_duration_bounds[b];
	exact = b >= 0 && from == us;
	if (!exact)
		ereport(NOTICE,
				(errmsg("%s is not a bound of the duration histogram",
						DatumGetCString(DirectFunctionCall1(interval_out,
															IntervalPGetDatum(limit)))),
				 errdetail("Ended transactions are counted when they lasted longer than %s, the nearest bound below, so the count may include some that did not reach the limit.",
						   DatumGetCString(DirectFunctionCall1(interval_out,
															   interval_datum(from)))),
				 errhint("The bounds are the values of \"le\" in txguard.duration_histogram.")));
	values[0] = interval_datum(from);
	values[1] = BoolGetDatum(exact);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

#define LONGER_COLS 5

PG_FUNCTION_INFO_V1(txguard_durations_longer);

/*
 * txguard._durations_longer(bound): per key, its ended transactions and
 * how many lasted longer than "bound", a bound of the histogram (or 0).
 */
Datum
txguard_durations_longer(PG_FUNCTION_ARGS)
{
	int64		us = interval_microseconds(PG_GETARG_INTERVAL_P(0));
	int			b = bound_at_or_below(us);
	TxgSrf		srf;
	DurationRow *rows;
	int			nrows;
	int			i;

	if (us != (b < 0 ? 0 : txg_duration_bounds[b]))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ended transactions can only be counted from a bound of the duration histogram"),
				 errhint("Call txguard.would_time_out(), which rounds the limit to a bound.")));
	rows = gather_rows(&nrows);
	txg_srf_begin(fcinfo, &srf);
	for (i = 0; i < nrows; i++)
	{
		const TxgDurations *d = &rows[i].key.durations;
		int64		longer = 0;
		int			j;
		Datum		values[LONGER_COLS];
		bool		nulls[LONGER_COLS];

		if (transactions_of(d) == 0)
			continue;
		for (j = b + 1; j < TXG_DURATION_BUCKETS; j++)
			longer += d->buckets[j];
		memset(nulls, 0, sizeof(nulls));
		key_values(&rows[i], values, nulls);
		values[3] = Int64GetDatum(transactions_of(d));
		values[4] = Int64GetDatum(longer);
		tuplestore_putvalues(srf.tupstore, srf.tupdesc, values, nulls);
	}
	return (Datum) 0;
}
