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
 * a clean shutdown and read back (then removed) at start.  As PostgreSQL
 * does for its own statistics, counters start from zero after a crash or
 * an immediate shutdown: the file is kept only when the control file says
 * the server was shut down cleanly.  The file carries a CRC-32C and every
 * value is checked before any is used: it is loaded whole or not at all.
 *
 * A database's row lives as long as the database: a backend that counted
 * nothing makes none, DROP DATABASE removes it once it has run, and rows
 * of databases that no longer exist (no directory, in base/ or in a
 * tablespace) are reclaimed when the file is loaded and when the table is
 * full.
 *
 *-------------------------------------------------------------------------
 */
#include "pg_txguard.h"

#include <unistd.h>

#include <sys/stat.h>

#include "catalog/pg_control.h"
#include "catalog/pg_type.h"
#include "common/controldata_utils.h"
#include "common/relpath.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "srf.h"

#define STATS_FILE			PGSTAT_STAT_PERMANENT_DIRECTORY "/pg_txguard.stat"
#define STATS_FILE_MAGIC	0x54584733	/* "TXG3": with durations */
#define STATS_FILE_MAGIC_2	0x54584732	/* "TXG2": without, still read */

/*
 * The file: magic, stats_reset, number of rows, the rows, the durations
 * (durations.c), a CRC-32C of all that.
 */
#define STATS_FILE_HEADER	(sizeof(uint32) + sizeof(TimestampTz) + sizeof(int32))
#define STATS_FILE_MAX_SIZE	(STATS_FILE_HEADER + \
							 TXG_MAX_DATABASES * sizeof(TxgDbCounts) + \
							 2 * sizeof(int32) + \
							 (TXG_MAX_DURATION_KEYS + TXG_MAX_DATABASES) * \
							 sizeof(TxgDurationKey) + \
							 sizeof(pg_crc32c))

/* the longest duration a valid file can hold: a century */
#define STATS_MAX_DURATION	((int64) 36525 * USECS_PER_DAY)


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
	TxgDbCounts dbs[TXG_MAX_DATABASES];
	TxgBackendCounts backends[FLEXIBLE_ARRAY_MEMBER];
} TxgStats;

static TxgStats *stats = NULL;

/*
 * This backend's slot, once attached (MyCounts for short); until then, and
 * once detached, a slot nobody reads, so that the per-transaction count
 * needs no test.
 */
static TxgBackendCounts unread_counts;
static pg_atomic_uint64 unread_generation;

TxgBackendCounts *txg_my_counts = &unread_counts;
#define MyCounts txg_my_counts
#define attached(c) ((c) != &unread_counts)

/* the counters' generation (see txg_stats_count) */
pg_atomic_uint64 *txg_stats_generation = &unread_generation;


/*
 * The slot's change count when a wait of the open transaction last raised
 * its max_idle, and max_idle before this transaction first did: a
 * transaction that changes application_name takes its own wait along to
 * the new key (txg_stats_application_name).  Any count since makes the change
 * count move on.
 */
static uint32 idle_raised_at = 1;	/* odd: never a change count at rest */
static int64 idle_before_xact = 0;

static void stats_shmem_shutdown(int code, Datum arg);
static void reclaim_dropped_databases(void);

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
	to->observed += from->observed;
}

static bool
counts_are_zero(const TxgCounts *counts)
{
	int			i;

	for (i = 0; i < TXG_OUTCOME_COUNT; i++)
		if (counts->n[i] != 0)
			return false;
	return counts->max_duration == 0 && counts->observed == 0;
}

/*
 * Does the database exist?  Asked where the catalogs cannot be read (in
 * the postmaster, at backend exit): its directory does, in base/ or in
 * one of the tablespaces.
 */
bool
txg_stats_database_exists(Oid dbid)
{
	char		path[MAXPGPATH];
	struct stat st;
	DIR		   *dir;
	struct dirent *de;
	bool		found = false;

	snprintf(path, sizeof(path), "base/%u", dbid);
	if (stat(path, &st) == 0)
		return true;
	dir = AllocateDir("pg_tblspc");
	while (!found && (de = ReadDirExtended(dir, "pg_tblspc", LOG)) != NULL)
	{
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "pg_tblspc/%s/%s/%u", de->d_name,
				 TABLESPACE_VERSION_DIRECTORY, dbid);
		found = stat(path, &st) == 0;
	}
	FreeDir(dir);
	return found;
}

/* remove the row at index i of "dbs" (of *ndbs) */
static void
remove_row(TxgDbCounts *dbs, int *ndbs, int i)
{
	dbs[i] = dbs[*ndbs - 1];
	(*ndbs)--;
}

/*
 * Drop the rows of databases that no longer exist from "dbs"; returns
 * how many were dropped.
 */
static int
drop_rows_of_dropped_databases(TxgDbCounts *dbs, int *ndbs)
{
	int			dropped = 0;
	int			i = 0;

	while (i < *ndbs)
	{
		if (txg_stats_database_exists(dbs[i].dbid))
			i++;
		else
		{
			remove_row(dbs, ndbs, i);
			dropped++;
		}
	}
	return dropped;
}

/* the table is full: make room; lock held exclusive */
static void
reclaim_dropped_databases(void)
{
	int			ndbs = stats->ndbs;
	int			dropped = drop_rows_of_dropped_databases(stats->dbs, &ndbs);

	stats->ndbs = ndbs;
	if (dropped > 0)
		ereport(LOG,
				(errmsg_plural("pg_txguard: reclaimed the transaction counters of %d dropped database",
							   "pg_txguard: reclaimed the transaction counters of %d dropped databases",
							   dropped, dropped)));
}

/* DROP DATABASE has run: the database's row goes */
void
txg_stats_forget_database(Oid dbid)
{
	int			i;

	if (stats == NULL || !OidIsValid(dbid))
		return;
	LWLockAcquire(stats->lock, LW_EXCLUSIVE);
	for (i = 0; i < stats->ndbs; i++)
	{
		if (stats->dbs[i].dbid == dbid)
		{
			int			ndbs = stats->ndbs;

			remove_row(stats->dbs, &ndbs, i);
			stats->ndbs = ndbs;
			break;
		}
	}
	txg_durations_forget_database(dbid);
	LWLockRelease(stats->lock);
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
	if (stats->ndbs >= TXG_MAX_DATABASES)
		reclaim_dropped_databases();
	if (stats->ndbs >= TXG_MAX_DATABASES)
	{
		if (!stats->full_warned)
			ereport(LOG,
					(errmsg("pg_txguard: transaction counters are kept for at most %d databases",
							TXG_MAX_DATABASES)));
		stats->full_warned = true;
		return NULL;
	}
	i = stats->ndbs++;
	memset(&stats->dbs[i], 0, sizeof(TxgDbCounts));
	stats->dbs[i].dbid = dbid;
	return &stats->dbs[i];
}

/*
 * Did the server last stop with a clean shutdown?  The control file says
 * so (a standby's clean shutdown included); after a crash or an immediate
 * shutdown it still says the server was running.
 */
static bool
last_shutdown_was_clean(void)
{
	bool		crc_ok;
	ControlFileData *control = get_controlfile(DataDir, &crc_ok);
	bool		clean;

	clean = crc_ok && (control->state == DB_SHUTDOWNED ||
					   control->state == DB_SHUTDOWNED_IN_RECOVERY);
	pfree(control);
	return clean;
}

/*
 * Check the contents of the statistics file, "len" bytes at "buf".
 * Returns NULL if they can be loaded, else why not; "*durations" is set to
 * the durations' part (NULL in a file of the previous format, which has
 * none).
 */
static const char *
check_stats_file(const char *buf, Size len, TimestampTz *stats_reset,
				 int32 *ndbs, TxgDbCounts **dbs, const char **durations)
{
	Size		header = STATS_FILE_HEADER;
	Size		counters;
	uint32		magic;
	pg_crc32c	crc;
	pg_crc32c	stored;
	TimestampTz now = GetCurrentTimestamp();
	const char *problem;
	int			i;
	int			j;

	*durations = NULL;
	if (len < header + sizeof(pg_crc32c))
		return "it is too short";
	memcpy(&magic, buf, sizeof(magic));
	if (magic != STATS_FILE_MAGIC && magic != STATS_FILE_MAGIC_2)
		return "it is not in this version's format";

	memcpy(stats_reset, buf + sizeof(uint32), sizeof(TimestampTz));
	memcpy(ndbs, buf + sizeof(uint32) + sizeof(TimestampTz), sizeof(int32));
	if (*ndbs < 0 || *ndbs > TXG_MAX_DATABASES)
		return "its number of databases is out of range";
	counters = header + *ndbs * sizeof(TxgDbCounts);
	if (magic == STATS_FILE_MAGIC_2 ?
		len != counters + sizeof(pg_crc32c) :
		len < counters + sizeof(pg_crc32c))
		return "its size does not match its number of databases";

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, buf, len - sizeof(pg_crc32c));
	FIN_CRC32C(crc);
	memcpy(&stored, buf + len - sizeof(pg_crc32c), sizeof(pg_crc32c));
	if (!EQ_CRC32C(crc, stored))
		return "its checksum does not match its contents";

	/* a checksum guards against damage, not against a wrong writer */
	if (*stats_reset < 0 || *stats_reset > now)
		return "its reset time is out of range";
	*dbs = (TxgDbCounts *) (buf + header);
	for (i = 0; i < *ndbs; i++)
	{
		TxgDbCounts *entry = &(*dbs)[i];

		if (!OidIsValid(entry->dbid))
			return "it holds a row with no database";
		for (j = 0; j < i; j++)
			if ((*dbs)[j].dbid == entry->dbid)
				return "it holds two rows for one database";
		for (j = 0; j < TXG_OUTCOME_COUNT; j++)
			if (entry->counts.n[j] < 0)
				return "it holds a negative counter";
		if (entry->counts.observed < 0)
			return "it holds a negative counter";
		if (entry->counts.max_duration < 0 ||
			entry->counts.max_duration > STATS_MAX_DURATION)
			return "it holds a longest duration out of range";
	}
	if (magic == STATS_FILE_MAGIC)
	{
		problem = txg_durations_check_file(buf + counters,
										   len - counters - sizeof(pg_crc32c));
		if (problem != NULL)
			return problem;
		*durations = buf + counters;
	}
	return NULL;
}

/*
 * Load the counters written at the last clean shutdown, all or nothing,
 * and remove the file.
 */
static void
load_stats_file(void)
{
	FILE	   *file;
	struct stat st;
	char	   *buf = NULL;
	const char *problem = NULL;
	TimestampTz stats_reset = 0;
	int32		ndbs = 0;
	TxgDbCounts *dbs = NULL;
	const char *durations = NULL;
	int			dropped;

	file = AllocateFile(STATS_FILE, PG_BINARY_R);
	if (file == NULL)
	{
		if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", STATS_FILE)));
		return;
	}

	if (!last_shutdown_was_clean())
	{
		ereport(LOG,
				(errmsg("pg_txguard: transaction counters start from zero"),
				 errdetail("The server did not shut down cleanly, so the file \"%s\" is not loaded, as PostgreSQL does for its own statistics.",
						   STATS_FILE)));
		goto done;
	}
	if (fstat(fileno(file), &st) != 0)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\": %m", STATS_FILE)));
		goto done;
	}
	if (st.st_size > (off_t) STATS_FILE_MAX_SIZE)
		problem = "it is too long";
	else
	{
		buf = palloc(st.st_size + 1);
		if (fread(buf, 1, st.st_size, file) != (size_t) st.st_size)
			problem = "it could not be read whole";
		else
			problem = check_stats_file(buf, st.st_size, &stats_reset, &ndbs,
									   &dbs, &durations);
	}
	if (problem != NULL)
	{
		ereport(LOG,
				(errmsg("pg_txguard: ignoring the statistics file \"%s\": %s",
						STATS_FILE, problem),
				 errdetail("Transaction counters start from zero.")));
		goto done;
	}

	dropped = drop_rows_of_dropped_databases(dbs, &ndbs);
	if (dropped > 0)
		ereport(LOG,
				(errmsg_plural("pg_txguard: dropped the transaction counters of %d database that no longer exists",
							   "pg_txguard: dropped the transaction counters of %d databases that no longer exist",
							   dropped, dropped)));
	if (durations != NULL)
	{
		dropped = txg_durations_load_file(durations, txg_stats_database_exists);
		if (dropped > 0)
			ereport(LOG,
					(errmsg_plural("pg_txguard: dropped the transaction durations of %d key of databases that no longer exist",
								   "pg_txguard: dropped the transaction durations of %d keys of databases that no longer exist",
								   dropped, dropped)));
	}
	stats->stats_reset = stats_reset;
	memcpy(stats->dbs, dbs, ndbs * sizeof(TxgDbCounts));
	stats->ndbs = ndbs;

done:
	if (buf)
		pfree(buf);
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

	txg_stats_generation = &stats->generation;

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
	pg_crc32c	crc;
	StringInfoData durations;

	/* after a crash, or without shared memory, write nothing */
	if (code != 0 || stats == NULL)
		return;

	file = AllocateFile(STATS_FILE ".tmp", PG_BINARY_W);
	if (file == NULL)
		goto error;
	ndbs = stats->ndbs;
	initStringInfo(&durations);
	txg_durations_serialize(&durations);
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, &magic, sizeof(magic));
	COMP_CRC32C(crc, &stats->stats_reset, sizeof(TimestampTz));
	COMP_CRC32C(crc, &ndbs, sizeof(ndbs));
	if (ndbs > 0)
		COMP_CRC32C(crc, stats->dbs, ndbs * sizeof(TxgDbCounts));
	COMP_CRC32C(crc, durations.data, durations.len);
	FIN_CRC32C(crc);
	if (fwrite(&magic, sizeof(magic), 1, file) != 1 ||
		fwrite(&stats->stats_reset, sizeof(TimestampTz), 1, file) != 1 ||
		fwrite(&ndbs, sizeof(ndbs), 1, file) != 1 ||
		(ndbs > 0 && fwrite(stats->dbs, sizeof(TxgDbCounts), ndbs, file) != (size_t) ndbs) ||
		fwrite(durations.data, 1, durations.len, file) != (size_t) durations.len ||
		fwrite(&crc, sizeof(crc), 1, file) != 1)
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
	c->userid = GetAuthenticatedUserId();
	snprintf(c->appname, sizeof(c->appname), "%s",
			 application_name ? application_name : "");
	memset(&c->durations, 0, sizeof(TxgDurations));
	pg_write_barrier();
	c->changecount++;
	END_CRIT_SECTION();
	MyCounts = c;
}

/* a reset came since the slot last counted: its counts start over */
void
txg_stats_new_generation(TxgBackendCounts *c, uint64 generation)
{
	memset(&c->counts, 0, sizeof(TxgCounts));
	memset(&c->durations, 0, sizeof(TxgDurations));
	c->generation = generation;
}


/*
 * Hand the slot's durations over to the table (durations.c), and its
 * longest duration to its counters; lock held exclusive.  Readers hold it
 * too, so they see the durations in one place or the other.
 */
static void
hand_over_durations(TxgBackendCounts *c)
{
	if (c->generation != pg_atomic_read_u64(&stats->generation) ||
		txg_durations_are_zero(&c->durations))
		return;
	txg_durations_add(c->dbid, c->userid, c->appname, &c->durations);
	START_CRIT_SECTION();
	c->changecount++;
	pg_write_barrier();
	c->counts.max_duration = Max(c->counts.max_duration, c->durations.max);
	memset(&c->durations, 0, sizeof(TxgDurations));
	pg_write_barrier();
	c->changecount++;
	END_CRIT_SECTION();
}

/*
 * application_name is being assigned "newval" (from its assign hook, see
 * guc.c: by SET, RESET, SET LOCAL and its end, a function's SET clause,
 * set_config()): if it changes, the durations counted so far go to the old
 * key, and what is counted from now on to the new one.  So a transaction
 * counts for the name it has when it ends (a SET LOCAL is undone after the
 * transaction callbacks count it).  Assign hooks must not fail: this takes
 * the counters' lock, which cannot.
 */
void
txg_stats_application_name(const char *newval)
{
	TxgBackendCounts *c = MyCounts;
	const char *appname = newval ? newval : "";
	bool		idle_of_this_xact;
	int64		this_xact_idle = 0;

	if (!attached(c) || strcmp(c->appname, appname) == 0)
		return;

	/*
	 * The open transaction counts for the new name, and so does its
	 * longest wait if it raised the slot's (see txg_stats_idle): the old
	 * key keeps the longest of before.
	 */
	idle_of_this_xact = idle_raised_at == c->changecount;
	LWLockAcquire(stats->lock, LW_EXCLUSIVE);
	c->changecount++;
	pg_write_barrier();
	if (idle_of_this_xact)
	{
		this_xact_idle = c->durations.max_idle;
		c->durations.max_idle = idle_before_xact;
	}
	pg_write_barrier();
	c->changecount++;
	hand_over_durations(c);
	c->changecount++;
	pg_write_barrier();
	snprintf(c->appname, sizeof(c->appname), "%s", appname);
	c->durations.max_idle = Max(c->durations.max_idle, this_xact_idle);
	pg_write_barrier();
	c->changecount++;
	LWLockRelease(stats->lock);
}

/*
 * The transaction waited "idle" microseconds for its client between two
 * statements (or before it ended), longer than the key's longest wait so
 * far (see txg_stats_note_idle).  Counted in the slot at once; should the
 * transaction change its application_name, txg_stats_application_name
 * takes it along to the new key.
 */
void
txg_stats_idle(int64 idle)
{
	TxgBackendCounts *c = MyCounts;
	bool		same_xact;

	if (!attached(c))
		return;
	/* nothing counted since the last raise: the same transaction */
	same_xact = idle_raised_at == c->changecount;
	txg_count_begin(c);
	if (!same_xact)
		idle_before_xact = c->durations.max_idle;
	if (idle > c->durations.max_idle)
		c->durations.max_idle = idle;
	txg_count_end(c);
	idle_raised_at = c->changecount;
}

/*
 * A transaction of database "dbid" passed its observe-only deadline.  The
 * backend counts its own in its slot; the sentinel, for others, in the
 * database's row.
 */
void
txg_stats_count_observed(Oid dbid)
{
	TxgBackendCounts *c = MyCounts;

	if (stats == NULL)
		return;
	if (attached(c) && c->dbid == dbid)
	{
		txg_count_begin(c);
		c->counts.observed++;
		txg_count_end(c);
		return;
	}
	LWLockAcquire(stats->lock, LW_EXCLUSIVE);
	{
		TxgDbCounts *entry = db_entry(dbid, true);

		if (entry != NULL)
			entry->counts.observed++;
	}
	LWLockRelease(stats->lock);
}

/*
 * An outcome counted earlier turns out to be another: "from" becomes "to"
 * (a procedure's rollback that was its failed COMMIT, see session.c).
 */
void
txg_stats_recount(TxgOutcome from, TxgOutcome to)
{
	TxgBackendCounts *c = MyCounts;

	if (!attached(c) ||
		c->generation != pg_atomic_read_u64(&stats->generation) ||
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

	if (!attached(c))
		return;
	LWLockAcquire(stats->lock, LW_EXCLUSIVE);
	hand_over_durations(c);
	if (c->generation == pg_atomic_read_u64(&stats->generation) &&
		!counts_are_zero(&c->counts))
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
	MyCounts = &unread_counts;
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

#define STATS_COLS 11

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

	dbs = palloc0(sizeof(TxgDbCounts) * (TXG_MAX_DATABASES + stats->nbackends));
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
		dbs[j].counts.max_duration = Max(dbs[j].counts.max_duration,
										 c.durations.max);
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
		values[10] = Int64GetDatum(dbs[i].counts.observed);
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
	txg_durations_reset();
	stats->stats_reset = GetCurrentTimestamp();
	LWLockRelease(stats->lock);
	PG_RETURN_VOID();
}

/*
 * Copy the durations the live backends hold (of the current generation,
 * not yet handed over) into "out", at most "max" of them; returns how
 * many.  The caller holds the lock, shared.
 */
int
txg_stats_live_durations(TxgDurationKey *out, int max)
{
	uint64		generation = pg_atomic_read_u64(&stats->generation);
	int			n = 0;
	int			i;

	for (i = 0; i < stats->nbackends && n < max; i++)
	{
		TxgBackendCounts c;

		read_backend_counts(i, &c);
		if (c.dbid == InvalidOid || c.generation != generation ||
			txg_durations_are_zero(&c.durations))
			continue;
		out[n].dbid = c.dbid;
		out[n].userid = c.userid;
		memcpy(out[n].appname, c.appname, NAMEDATALEN);
		out[n].appname[NAMEDATALEN - 1] = '\0';
		out[n].durations = c.durations;
		n++;
	}
	return n;
}
