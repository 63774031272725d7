/*-------------------------------------------------------------------------
 *
 * shmem.c
 *		Shared memory of pg_txguard: sizing, creation, and the check that
 *		it exists.
 *
 * The space is requested from shmem_request_hook (15 and later) or from
 * _PG_init (older majors), and created in shmem_startup_hook under
 * AddinShmemInitLock.  After a crash the postmaster creates shared memory
 * anew and this hook runs again, so every structure starts empty.  Each
 * part (registry, ...) sizes and initialises its own area.
 *
 *-------------------------------------------------------------------------
 */
#include "pg_txguard.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

#ifdef TXG_HAVE_SHMEM_REQUEST_HOOK
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif

static Size
txg_shmem_size(void)
{
	Size		size = txg_registry_shmem_size();

	size = add_size(size, txg_events_shmem_size());
	size = add_size(size, txg_durations_shmem_size());
	size = add_size(size, txg_stats_shmem_size());
	size = add_size(size, txg_sentinel_shmem_size());
	size = add_size(size, txg_observe_shmem_size());
	return size;
}

static void
txg_shmem_request(void)
{
#ifdef TXG_HAVE_SHMEM_REQUEST_HOOK
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(txg_shmem_size());
	RequestNamedLWLockTranche("pg_txguard", TXG_LOCK_COUNT);
}

static void
txg_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	txg_registry_shmem_init();
	txg_events_shmem_init();
	txg_durations_shmem_init();
	txg_stats_shmem_init();
	txg_sentinel_shmem_init();
	txg_observe_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

void
txg_shmem_init_hooks(void)
{
#ifdef TXG_HAVE_SHMEM_REQUEST_HOOK
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = txg_shmem_request;
#else
	txg_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = txg_shmem_startup;
}

/* one of pg_txguard's LWLocks (named tranche "pg_txguard") */
LWLock *
txg_lwlock(TxgLock lock)
{
	return &(GetNamedLWLockTranche("pg_txguard"))[lock].lock;
}

/*
 * Raise an error unless pg_txguard's shared memory exists: SQL functions
 * call this first, so that a server started without the library preloaded
 * answers with an error instead of touching memory that is not there.
 */
void
txg_check_loaded(void)
{
	if (!txg_registry_attached())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_txguard must be loaded via \"shared_preload_libraries\""),
				 errhint("Add pg_txguard to \"shared_preload_libraries\" in postgresql.conf and restart the server.")));
}
