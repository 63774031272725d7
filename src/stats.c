/*-------------------------------------------------------------------------
 *
 * stats.c
 *		Per-database transaction outcome counters: the txguard.stats view,
 *		txguard.reset_stats(), and their survival across clean restarts.
 *
 * Counting takes no lock.  Each backend counts its own outcomes in its
 * own slot (indexed like the registry, written only by its owner under a
 * change counter).  A backend belongs to one database for life, so its
 * slot is that database's share.  When the backend exits, it adds its
 * counts to the per-database table under the stats LWLock and clears its
 * slot in the same critical step; readers take the lock in shared mode and
 * sum the table and the live slots, so they never see a count twice or
 * miss one.
 *
 * Reset bumps a generation number; a slot counted under an older
 * generation is worth nothing, and its owner starts it over at its next
 * count.  Backends only read the generation (an atomic read of a value
 * that almost never changes).
 *
 * Like pg_stat_statements, the table is written to a file in pg_stat/ at
 * shutdown and read back (then removed) at start; after a crash no file
 * was written, so the counters start from zero.
 *
 *-------------------------------------------------------------------------
 */
#include "pg_txguard.h"

#include <unistd.h>

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "srf.h"

#define STATS_FILE			PGSTAT_STAT_PERMANENT_DIRECTORY "/pg_txguard.stat"
#define STATS_FILE_MAGIC	0x54584731	/* "TXG1" */

/* databases the table can hold */
#define STATS_MAX_DATABASES 1024

typedef struct TxgCounts
{
	int64		n[TXG_OUTCOME_COUNT];
	int64		max_duration;	/* microseconds */
} TxgCounts;

typedef struct TxgBackendCounts
{
	uint32		changecount;
	uint64		generation;
	Oid			dbid;
	TxgCounts	counts;
} TxgBackendCounts;

typedef struct TxgDbCounts
{
	Oid			dbid;
	TxgCounts	counts;
} TxgDbCounts;

typedef struct TxgStats
{
	LWLock	   *lock;
	pg_atomic_uint64 generation;
	TimestampTz stats_reset;
	int			nbackends;
	int			ndbs;
	bool		full_warned;
	TxgDbCounts dbs[STATS_MAX_DATABASES];
	TxgBackendCounts backends[FLEXIBLE_ARRAY_MEMBER];
} TxgStats;

static TxgStats *stats = NULL;
static TxgBackendCounts *MyCounts = NULL;

static void stats_shmem_shutdown(int code, Datum arg);

Size
txg_stats_shmem_size(void)
{
	return add_size(offsetof(TxgStats, backends),
					mul_size(txg_max_backends(), sizeof(TxgBackendCounts)));
}

static inline void
counts_add(TxgCounts *to, const TxgCounts *from)
{
	int			i;

	for (i = 0; i < TXG_OUTCOME_COUNT; i++)
		to->n[i] += from->n[i];
	to->max_duration = Max(to->max_duration, from->max_duration);
}

/* the table entry of a database, created if need be; lock held exclusive */
static TxgDbCounts *
db_entry(Oid dbid, bool create)
{
	int			i;

	for (i = 0; i < stats->ndbs; i++)
		if (stats->dbs[i].dbid == dbid)
			return &stats->dbs[i];
	if (!create)
		return NULL;
	if (stats->ndbs >= STATS_MAX_DATABASES)
	{
		if (!stats->full_warned)
			ereport(LOG,
					(errmsg("pg_txguard: transaction counters are kept for at most %d databases",
							STATS_MAX_DATABASES)));
		stats->full_warned = true;
		return NULL;
	}
	i = stats->ndbs++;
	memset(&stats->dbs[i], 0, sizeof(TxgDbCounts));
	stats->dbs[i].dbid = dbid;
	return &stats->dbs[i];
}

static void
load_stats_file(void)
{
	FILE	   *file;
	uint32		magic;
	int32		ndbs;
	int			i;

	file = AllocateFile(STATS_FILE, PG_BINARY_R);
	if (file == NULL)
	{
		if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", STATS_FILE)));
		return;
	}
	if (fread(&magic, sizeof(magic), 1, file) != 1 ||
		magic != STATS_FILE_MAGIC ||
		fread(&stats->stats_reset, sizeof(TimestampTz), 1, file) != 1 ||
		fread(&ndbs, sizeof(ndbs), 1, file) != 1 ||
		ndbs < 0 || ndbs > STATS_MAX_DATABASES)
		goto bad;
	for (i = 0; i < ndbs; i++)
		if (fread(&stats->dbs[i], sizeof(TxgDbCounts), 1, file) != 1)
			goto bad;
	stats->ndbs = ndbs;
	FreeFile(file);
	unlink(STATS_FILE);
	return;

bad:
	ereport(LOG,
			(errmsg("ignoring invalid pg_txguard statistics file \"%s\"", STATS_FILE)));
	stats->ndbs = 0;
	FreeFile(file);
	unlink(STATS_FILE);
}

/* called from shmem_startup_hook, under AddinShmemInitLock */
void
txg_stats_shmem_init(void)
{
	bool		found;

	stats = ShmemInitStruct("pg_txguard stats", txg_stats_shmem_size(), &found);
	if (!found)
	{
		memset(stats, 0, txg_stats_shmem_size());
		stats->lock = txg_lwlock(TXG_LOCK_STATS);
		pg_atomic_init_u64(&stats->generation, 1);
		stats->nbackends = txg_max_backends();
		stats->stats_reset = GetCurrentTimestamp();
		load_stats_file();
	}

	/* the postmaster writes the table out at shutdown */
	if (!IsUnderPostmaster)
		on_shmem_exit(stats_shmem_shutdown, (Datum) 0);
}

static void
stats_shmem_shutdown(int code, Datum arg)
{
	FILE	   *file;
	uint32		magic = STATS_FILE_MAGIC;
	int32		ndbs;

	/* after a crash, or without shared memory, write nothing */
	if (code != 0 || stats == NULL)
		return;

	file = AllocateFile(STATS_FILE ".tmp", PG_BINARY_W);
	if (file == NULL)
		goto error;
	ndbs = stats->ndbs;
	if (fwrite(&magic, sizeof(magic), 1, file) != 1 ||
		fwrite(&stats->stats_reset, sizeof(TimestampTz), 1, file) != 1 ||
		fwrite(&ndbs, sizeof(ndbs), 1, file) != 1 ||
		(ndbs > 0 && fwrite(stats->dbs, sizeof(TxgDbCounts), ndbs, file) != (size_t) ndbs))
		goto error;
	if (FreeFile(file))
	{
		file = NULL;
		goto error;
	}
	(void) durable_rename(STATS_FILE ".tmp", STATS_FILE, LOG);
	return;

error:
	ereport(LOG,
			(errcode_for_file_access(),
			 errmsg("could not write file \"%s\": %m", STATS_FILE ".tmp")));
	if (file)
		FreeFile(file);
	unlink(STATS_FILE ".tmp");
}

/* take this backend's counter slot */
void
txg_stats_attach_backend(void)
{
	ProcNumber	procno = txg_my_proc_number();
	TxgBackendCounts *c;

	if (stats == NULL || procno < 0 || procno >= stats->nbackends)
		return;
	c = &stats->backends[procno];
	START_CRIT_SECTION();
	c->changecount++;
	pg_write_barrier();
	c->dbid = MyDatabaseId;
	c->generation = pg_atomic_read_u64(&stats->generation);
	memset(&c->counts, 0, sizeof(TxgCounts));
	pg_write_barrier();
	c->changecount++;
	END_CRIT_SECTION();
	MyCounts = c;
}

/* count one outcome; the per-transaction path: no lock */
void
txg_stats_count(TxgOutcome outcome, int64 duration)
{
	TxgBackendCounts *c = MyCounts;
	uint64		generation;

	if (c == NULL)
		return;
	generation = pg_atomic_read_u64(&stats->generation);

	/* no critical section: nothing here can fail (see registry.c) */
	c->changecount++;
	pg_write_barrier();
	if (c->generation != generation)
	{
		memset(&c->counts, 0, sizeof(TxgCounts));
		c->generation = generation;
	}
	c->counts.n[outcome]++;
	if (duration > c->counts.max_duration)
		c->counts.max_duration = duration;
	pg_write_barrier();
	c->changecount++;
}

/*
 * An outcome counted earlier turns out to be another: "from" becomes "to"
 * (a procedure's rollback that was its failed COMMIT, see session.c).
 */
void
txg_stats_recount(TxgOutcome from, TxgOutcome to)
{
	TxgBackendCounts *c = MyCounts;

	if (c == NULL || c->generation != pg_atomic_read_u64(&stats->generation) ||
		c->counts.n[from] == 0)
		return;
	START_CRIT_SECTION();
	c->changecount++;
	pg_write_barrier();
	c->counts.n[from]--;
	c->counts.n[to]++;
	pg_write_barrier();
	c->changecount++;
	END_CRIT_SECTION();
}

/* the backend exits: move its counts into its database's entry */
void
txg_stats_detach_backend(void)
{
	TxgBackendCounts *c = MyCounts;

	if (c == NULL)
		return;
	LWLockAcquire(stats->lock, LW_EXCLUSIVE);
	if (c->generation == pg_atomic_read_u64(&stats->generation))
	{
		TxgDbCounts *entry = db_entry(c->dbid, true);

		if (entry != NULL)
			counts_add(&entry->counts, &c->counts);
	}
	START_CRIT_SECTION();
	c->changecount++;
	pg_write_barrier();
	memset(&c->counts, 0, sizeof(TxgCounts));
	c->dbid = InvalidOid;
	pg_write_barrier();
	c->changecount++;
	END_CRIT_SECTION();
	LWLockRelease(stats->lock);
	MyCounts = NULL;
}

static void
read_backend_counts(int i, TxgBackendCounts *copy)
{
	volatile TxgBackendCounts *c = &stats->backends[i];

	for (;;)
	{
		uint32		before = c->changecount;

		pg_read_barrier();
		memcpy(copy, (TxgBackendCounts *) c, sizeof(TxgBackendCounts));
		pg_read_barrier();
		if (before == c->changecount && (before & 1) == 0)
			break;
		CHECK_FOR_INTERRUPTS();
	}
}

#define STATS_COLS 10

PG_FUNCTION_INFO_V1(txguard_stats);

/* txguard._stats(): one row per database with counts */
Datum
txguard_stats(PG_FUNCTION_ARGS)
{
	TxgSrf		srf;
	TxgDbCounts *dbs;
	int			ndbs;
	TimestampTz stats_reset;
	uint64		generation;
	int			i;

	txg_check_loaded();
	txg_srf_begin(fcinfo, &srf);

	dbs = palloc0(sizeof(TxgDbCounts) * (STATS_MAX_DATABASES + stats->nbackends));
	LWLockAcquire(stats->lock, LW_SHARED);
	generation = pg_atomic_read_u64(&stats->generation);
	stats_reset = stats->stats_reset;
	ndbs = stats->ndbs;
	memcpy(dbs, stats->dbs, sizeof(TxgDbCounts) * ndbs);
	for (i = 0; i < stats->nbackends; i++)
	{
		TxgBackendCounts c;
		int			j;

		read_backend_counts(i, &c);
		if (c.dbid == InvalidOid || c.generation != generation)
			continue;
		for (j = 0; j < ndbs; j++)
			if (dbs[j].dbid == c.dbid)
				break;
		if (j == ndbs)
		{
			dbs[ndbs].dbid = c.dbid;
			ndbs++;
		}
		counts_add(&dbs[j].counts, &c.counts);
	}
	LWLockRelease(stats->lock);

	for (i = 0; i < ndbs; i++)
	{
		Datum		values[STATS_COLS];
		bool		nulls[STATS_COLS];
		int			j;

		memset(nulls, 0, sizeof(nulls));
		values[0] = ObjectIdGetDatum(dbs[i].dbid);
		for (j = 0; j < TXG_OUTCOME_COUNT; j++)
			values[1 + j] = Int64GetDatum(dbs[i].counts.n[j]);
		values[8] = DirectFunctionCall2(timestamp_mi,
										TimestampTzGetDatum(dbs[i].counts.max_duration),
										TimestampTzGetDatum(0));
		values[9] = TimestampTzGetDatum(stats_reset);
		tuplestore_putvalues(srf.tupstore, srf.tupdesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(txguard_reset_stats);

/* txguard.reset_stats(): forget every count */
Datum
txguard_reset_stats(PG_FUNCTION_ARGS)
{
	txg_check_loaded();
	LWLockAcquire(stats->lock, LW_EXCLUSIVE);
	pg_atomic_fetch_add_u64(&stats->generation, 1);
	stats->ndbs = 0;
	stats->full_warned = false;
	stats->stats_reset = GetCurrentTimestamp();
	LWLockRelease(stats->lock);
	PG_RETURN_VOID();
}
