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
#include "common/int128.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
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

/* the bytes of a TxgDurationKey that are its key (the hash table's) */
#define KEY_SIZE			offsetof(TxgDurationKey, durations)

/*
 * The shared table: keys in a hash table of at most "capacity" entries,
 * and the "(other)" rows, one per database, in an array.  Under the
 * counters' lock (TXG_LOCK_STATS).
 */
typedef struct TxgDurationTable
{
	int			capacity;		/* txguard.max_duration_keys at start */
	int			nothers;
	bool		keys_full_warned;
	bool		others_full_warned;
	bool		reclaimed;		/* keys of dropped databases looked for
								 * since the table last lost a key */
	TxgDurationKey others[TXG_MAX_DATABASES];
} TxgDurationTable;

static TxgDurationTable *table = NULL;
static HTAB *keys = NULL;

/* an "(other)" row: the database's, with no role and no name */
#define is_other_row(k)		(!OidIsValid((k)->userid))

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
	return add_size(sizeof(TxgDurationTable),
					hash_estimate_size(Max(txg_max_duration_keys, 1),
									   sizeof(TxgDurationKey)));
}

/* called from shmem_startup_hook, under AddinShmemInitLock, before stats */
void
txg_durations_shmem_init(void)
{
	bool		found;
	HASHCTL		info;

	table = ShmemInitStruct("pg_txguard durations",
							sizeof(TxgDurationTable), &found);
	if (!found)
	{
		memset(table, 0, sizeof(TxgDurationTable));
		table->capacity = txg_max_duration_keys;
	}
	memset(&info, 0, sizeof(info));
	info.keysize = KEY_SIZE;
	info.entrysize = sizeof(TxgDurationKey);
	keys = txg_shmem_init_hash("pg_txguard duration keys",
							   Max(txg_max_duration_keys, 1),
							   &info, HASH_ELEM | HASH_BLOBS);
}

/* a + b, at most PG_INT64_MAX (both are not negative) */
static inline int64
add_saturating(int64 a, int64 b)
{
	int64		r;

	return pg_add_s64_overflow(a, b, &r) ? PG_INT64_MAX : r;
}

/* add "from" to "to"; counts and sums stop at their largest value */
void
txg_durations_merge(TxgDurations *to, const TxgDurations *from)
{
	int			i;

	for (i = 0; i < TXG_DURATION_BUCKETS; i++)
		to->buckets[i] = add_saturating(to->buckets[i], from->buckets[i]);
	/* a clock set back can make a transaction's end precede its start */
	to->sum = add_saturating(to->sum, Max(from->sum, 0));
	to->max = Max(to->max, from->max);
	to->max_idle = Max(to->max_idle, from->max_idle);
}

static int64
transactions_of(const TxgDurations *d)
{
	int64		n = 0;
	int			i;

	for (i = 0; i < TXG_DURATION_BUCKETS; i++)
		n = add_saturating(n, d->buckets[i]);
	return n;
}

bool
txg_durations_are_zero(const TxgDurations *d)
{
	return transactions_of(d) == 0 && d->max_idle == 0;
}

/* a key, zero-padded: the hash table compares its bytes */
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

/* remove entry i of "rows" (of *n) */
static void
remove_entry(TxgDurationKey *rows, int *n, int i)
{
	rows[i] = rows[*n - 1];
	(*n)--;
}

/*
 * Remove the rows of databases "gone" says are gone; returns how many.
 * Lock held exclusive.
 */
static int
remove_rows_of(bool (*gone) (Oid dbid, void *arg), void *arg)
{
	HASH_SEQ_STATUS seq;
	TxgDurationKey *entry;
	int			removed = 0;
	int			i;

	hash_seq_init(&seq, keys);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		if (gone(entry->dbid, arg))
		{
			hash_search(keys, entry, HASH_REMOVE, NULL);
			removed++;
		}
	}
	for (i = table->nothers - 1; i >= 0; i--)
	{
		if (gone(table->others[i].dbid, arg))
		{
			remove_entry(table->others, &table->nothers, i);
			removed++;
		}
	}
	if (removed > 0)
		table->reclaimed = false;
	return removed;
}

/*
 * Is the database gone (no directory)?  Asked once per database of a pass:
 * "arg" is the pass's list of (dbid, exists) answers so far.
 */
typedef struct DatabaseAnswers
{
	int			n;
	Oid			dbid[TXG_MAX_DATABASES];
	bool		exists[TXG_MAX_DATABASES];
} DatabaseAnswers;

static bool
database_gone(Oid dbid, void *arg)
{
	DatabaseAnswers *answers = (DatabaseAnswers *) arg;
	bool		exists;
	int			i;

	for (i = 0; i < answers->n; i++)
		if (answers->dbid[i] == dbid)
			return !answers->exists[i];
	exists = txg_stats_database_exists(dbid);
	if (answers->n < TXG_MAX_DATABASES)
	{
		answers->dbid[answers->n] = dbid;
		answers->exists[answers->n++] = exists;
	}
	return !exists;
}

/*
 * The table of keys is full: drop the keys of databases dropped without a
 * DROP DATABASE run by a client (those go at once), once until the table
 * loses a key again.  Lock held exclusive.
 */
static void
reclaim_dropped_databases(void)
{
	DatabaseAnswers *answers;
	int			removed;

	if (table->reclaimed)
		return;
	answers = palloc0(sizeof(DatabaseAnswers));
	removed = remove_rows_of(database_gone, answers);
	pfree(answers);
	table->reclaimed = true;
	if (removed > 0)
		ereport(LOG,
				(errmsg_plural("pg_txguard: reclaimed the transaction durations of %d key of dropped databases",
							   "pg_txguard: reclaimed the transaction durations of %d keys of dropped databases",
							   removed, removed)));
}

/*
 * The row of a key, made if there is room, else its database's "(other)"
 * row; NULL when neither can be had.  Lock held exclusive.
 */
static TxgDurationKey *
key_row(const TxgDurationKey *key)
{
	TxgDurationKey *entry;
	bool		found;

	entry = hash_search(keys, key, HASH_FIND, NULL);
	if (entry != NULL)
		return entry;
	if (hash_get_num_entries(keys) >= table->capacity && table->capacity > 0)
		reclaim_dropped_databases();
	if (hash_get_num_entries(keys) < table->capacity)
	{
		entry = hash_search(keys, key, HASH_ENTER_NULL, &found);
		if (entry != NULL)
		{
			if (!found)
				memset(&entry->durations, 0, sizeof(TxgDurations));
			return entry;
		}
	}
	if (!table->keys_full_warned)
		ereport(LOG,
				(errmsg("pg_txguard: transaction durations are kept for at most %d keys",
						table->capacity),
				 errdetail("Durations of further (database, role, application_name) keys are counted in the \"(other)\" row of their database."),
				 errhint("Raise \"txguard.max_duration_keys\" to keep more keys.")));
	table->keys_full_warned = true;
	return other_row(key->dbid);
}

/*
 * A backend hands over the durations it counted for a key (it exits, or
 * its application_name changed).  Lock held exclusive.
 */
void
txg_durations_add(Oid dbid, Oid userid, const char *appname,
				  const TxgDurations *d)
{
	TxgDurationKey key;
	TxgDurationKey *row;

	if (table == NULL || txg_durations_are_zero(d))
		return;
	fill_key(&key, dbid, userid, appname);
	row = key_row(&key);
	if (row != NULL)
		txg_durations_merge(&row->durations, d);
}

static bool
database_is(Oid dbid, void *arg)
{
	return dbid == *(Oid *) arg;
}

/* DROP DATABASE has run: the database's rows go.  Lock held exclusive. */
void
txg_durations_forget_database(Oid dbid)
{
	if (table != NULL)
		(void) remove_rows_of(database_is, &dbid);
}

static bool
any_database(Oid dbid, void *arg)
{
	return true;
}

/* txguard.reset_stats(); lock held exclusive */
void
txg_durations_reset(void)
{
	if (table == NULL)
		return;
	(void) remove_rows_of(any_database, NULL);
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
	HASH_SEQ_STATUS seq;
	TxgDurationKey *entry;
	int32		n;

	n = hash_get_num_entries(keys);
	appendBinaryStringInfo(buf, (char *) &n, sizeof(n));
	hash_seq_init(&seq, keys);
	while ((entry = hash_seq_search(&seq)) != NULL)
		appendBinaryStringInfo(buf, (char *) entry, sizeof(TxgDurationKey));
	n = table->nothers;
	appendBinaryStringInfo(buf, (char *) &n, sizeof(n));
	appendBinaryStringInfo(buf, (char *) table->others,
						   n * sizeof(TxgDurationKey));
}

/*
 * The largest count a valid file can hold in a bucket, 2^46: the buckets
 * of every row the file can hold add up without overflow, with room for
 * decades of counting at a million transactions a second.
 */
#define COUNT_MAX_VALID		(INT64CONST(1) << 46)

static const char *
check_durations(const TxgDurations *d)
{
	int64		n = 0;
	int			i;

	for (i = 0; i < TXG_DURATION_BUCKETS; i++)
	{
		if (d->buckets[i] < 0)
			return "it holds a negative count of durations";
		if (d->buckets[i] > COUNT_MAX_VALID)
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

static int
compare_keys(const void *a, const void *b)
{
	return memcmp(a, b, KEY_SIZE);
}

/*
 * Check "n" entries at "rows" (a copy: its keys are padded with zeroes
 * here); "others": the "(other)" rows.
 */
static const char *
check_entries(TxgDurationKey *rows, int n, bool others)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		TxgDurationKey *k = &rows[i];
		const char *end = memchr(k->appname, '\0', NAMEDATALEN);
		const char *problem;

		if (!OidIsValid(k->dbid))
			return "it holds durations with no database";
		if (end == NULL)
			return "it holds an application_name that does not end";
		memset(k->appname + (end - k->appname), 0,
			   NAMEDATALEN - (end - k->appname));
		if (others ? (OidIsValid(k->userid) || k->appname[0] != '\0') :
			!OidIsValid(k->userid))
			return "it holds durations with a malformed key";
		if ((problem = check_durations(&k->durations)) != NULL)
			return problem;
	}
	/* one row per key: sorted, a key and the next differ */
	qsort(rows, n, sizeof(TxgDurationKey), compare_keys);
	for (i = 1; i < n; i++)
		if (compare_keys(&rows[i - 1], &rows[i]) == 0)
			return "it holds two rows of durations for one key";
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
		TxgDurationKey *copy = palloc(Max(nkeys, 1) * sizeof(TxgDurationKey));
		TxgDurationKey *others = palloc(Max(nothers, 1) * sizeof(TxgDurationKey));

		memcpy(copy, buf + sizeof(int32), nkeys * sizeof(TxgDurationKey));
		memcpy(others, buf + keys_size + sizeof(int32),
			   nothers * sizeof(TxgDurationKey));
		problem = check_entries(copy, nkeys, false);
		if (problem == NULL)
			problem = check_entries(others, nothers, true);
		pfree(copy);
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
	/* a load finds what a reclaim would */
	table->reclaimed = true;
	return dropped;
}

/* ----------------------------------------------------------------
 * Readers
 * ----------------------------------------------------------------
 */

/* the reader's index of its rows: key -> position */
typedef struct RowIndexEntry
{
	char		key[KEY_SIZE];
	int			row;
} RowIndexEntry;

/*
 * Every row with durations: the table's, plus what the live backends
 * counted since they last handed theirs over, added as they would be.
 */
static TxgDurationKey *
gather_rows(int *nrows)
{
	int			nbackends = txg_max_backends();
	int			maxrows;
	TxgDurationKey *rows;
	TxgDurationKey *live;
	int			nlive;
	int			nkeys;
	int			capacity;
	int			n = 0;
	int			i;
	HASH_SEQ_STATUS seq;
	TxgDurationKey *entry;
	HASHCTL		info;
	HTAB	   *index;

	txg_check_loaded();
	maxrows = table->capacity + TXG_MAX_DATABASES + nbackends;
	rows = palloc(sizeof(TxgDurationKey) * maxrows);
	live = palloc(sizeof(TxgDurationKey) * nbackends);

	LWLockAcquire(txg_lwlock(TXG_LOCK_STATS), LW_SHARED);
	capacity = table->capacity;
	hash_seq_init(&seq, keys);
	while ((entry = hash_seq_search(&seq)) != NULL)
		rows[n++] = *entry;
	nkeys = n;
	for (i = 0; i < table->nothers; i++)
		rows[n++] = table->others[i];
	nlive = txg_stats_live_durations(live, nbackends);
	LWLockRelease(txg_lwlock(TXG_LOCK_STATS));

	memset(&info, 0, sizeof(info));
	info.keysize = KEY_SIZE;
	info.entrysize = sizeof(RowIndexEntry);
	info.hcxt = CurrentMemoryContext;
	index = hash_create("pg_txguard duration rows", Max(n + nlive, 16), &info,
						HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	/* the table's keys are zero-padded (fill_key): fit to look up */
	for (i = 0; i < n; i++)
	{
		RowIndexEntry *e = hash_search(index, &rows[i], HASH_ENTER, NULL);

		e->row = i;
	}

	for (i = 0; i < nlive; i++)
	{
		TxgDurationKey k;
		RowIndexEntry *e;
		bool		found;

		fill_key(&k, live[i].dbid, live[i].userid, live[i].appname);
		e = hash_search(index, &k, HASH_FIND, NULL);
		if (e == NULL && nkeys >= capacity)
		{
			/* no room for the key: its database's "(other)" row */
			fill_key(&k, live[i].dbid, InvalidOid, "");
			e = hash_search(index, &k, HASH_ENTER, &found);
			if (!found)
			{
				e->row = n;
				rows[n++] = k;
			}
		}
		else if (e == NULL)
		{
			e = hash_search(index, &k, HASH_ENTER, NULL);
			e->row = n;
			rows[n++] = k;
			nkeys++;
		}
		txg_durations_merge(&rows[e->row].durations, &live[i].durations);
	}
	hash_destroy(index);
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
key_values(const TxgDurationKey *row, Datum *values, bool *nulls)
{
	values[0] = ObjectIdGetDatum(row->dbid);
	if (is_other_row(row))
	{
		nulls[1] = true;
		values[2] = CStringGetTextDatum("(other)");
	}
	else
	{
		values[1] = ObjectIdGetDatum(row->userid);
		values[2] = CStringGetTextDatum(row->appname);
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

#define DURATIONS_COLS 11

PG_FUNCTION_INFO_V1(txguard_durations);

/* txguard._durations(): one row per key with transactions */
Datum
txguard_durations(PG_FUNCTION_ARGS)
{
	TxgSrf		srf;
	TxgDurationKey *rows;
	int			nrows;
	int			i;

	rows = gather_rows(&nrows);
	txg_srf_begin(fcinfo, &srf);
	for (i = 0; i < nrows; i++)
	{
		const TxgDurations *d = &rows[i].durations;
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
		values[10] = interval_datum(Max(d->sum, 0));
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
	TxgDurationKey *rows;
	int			nrows;
	int			i;

	rows = gather_rows(&nrows);
	txg_srf_begin(fcinfo, &srf);
	for (i = 0; i < nrows; i++)
	{
		const TxgDurations *d = &rows[i].durations;
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
 * comparison, computed exactly; saturates at the int64 range (so an
 * infinite interval, from 17 on, is the longest or the shortest).
 */
static int64
interval_microseconds(const Interval *iv)
{
	INT128		us = int64_to_int128(iv->time);

	int128_add_int64_mul_int64(&us,
							   (int64) iv->month * DAYS_PER_MONTH + iv->day,
							   USECS_PER_DAY);
	if (int128_compare(us, int64_to_int128(PG_INT64_MAX)) > 0)
		return PG_INT64_MAX;
	if (int128_compare(us, int64_to_int128(PG_INT64_MIN)) < 0)
		return PG_INT64_MIN;
	return int128_to_int64(us);
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

static char *
interval_text(Datum interval)
{
	return DatumGetCString(DirectFunctionCall1(interval_out, interval));
}

PG_FUNCTION_INFO_V1(txguard_duration_bound);

/*
 * txguard._duration_bound(limit): the histogram bound from which ended
 * transactions are counted as longer than "limit", and whether that is
 * exact.  A limit no duration reaches (the int64 range's end, infinity)
 * stands for itself: nothing lasted longer.
 */
Datum
txguard_duration_bound(PG_FUNCTION_ARGS)
{
	Datum		limit = PG_GETARG_DATUM(0);
	int64		us = interval_microseconds(DatumGetIntervalP(limit));
	int			b;
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (us < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a transaction limit cannot be negative"),
				 errdetail("The limit given was \"%s\".", interval_text(limit))));
	if (us == PG_INT64_MAX)
	{
		values[0] = limit;
		values[1] = BoolGetDatum(true);
	}
	else
	{
		int64		from;
		bool		exact;

		b = bound_at_or_below(us);
		from = b < 0 ? 0 : txg_duration_bounds[b];
		exact = b >= 0 && from == us;
		if (!exact)
			ereport(NOTICE,
					(errmsg("limit \"%s\" is not a bound of the duration histogram",
							interval_text(limit)),
					 errdetail("Ended transactions are counted when they lasted longer than \"%s\", the nearest bound below, so the count may include some that did not reach the limit.",
							   interval_text(interval_datum(from))),
					 errhint("The bounds are the values of \"le\" in txguard.duration_histogram.")));
		values[0] = interval_datum(from);
		values[1] = BoolGetDatum(exact);
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

#define LONGER_COLS 5

PG_FUNCTION_INFO_V1(txguard_durations_longer);

/*
 * txguard._durations_longer(bound): per key, its ended transactions and
 * how many lasted longer than "bound", a bound of the histogram, 0, or a
 * limit no duration reaches (see txguard_duration_bound).
 */
Datum
txguard_durations_longer(PG_FUNCTION_ARGS)
{
	int64		us = interval_microseconds(PG_GETARG_INTERVAL_P(0));
	int			b = bound_at_or_below(us);
	TxgSrf		srf;
	TxgDurationKey *rows;
	int			nrows;
	int			i;

	/* nothing lasted longer than a limit at the end of the range */
	if (us == PG_INT64_MAX)
		b = TXG_DURATION_BUCKETS;
	else if (us != (b < 0 ? 0 : txg_duration_bounds[b]))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ended transactions can only be counted from a bound of the duration histogram"),
				 errhint("Call txguard.would_time_out(), which rounds the limit to a bound.")));
	rows = gather_rows(&nrows);
	txg_srf_begin(fcinfo, &srf);
	for (i = 0; i < nrows; i++)
	{
		const TxgDurations *d = &rows[i].durations;
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
