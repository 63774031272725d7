/*-------------------------------------------------------------------------
 *
 * pg_txguard.c
 *		Module entry point: _PG_init wires up the parts of pg_txguard.
 *
 * pg_txguard keeps a per-backend registry of open transactions in shared
 * memory and follows each client backend through its statements and
 * transactions with executor, utility and transaction hooks.  The work is
 * split by concern: guc.c (settings), shmem.c (shared memory), registry.c
 * (the slots and the txguard.transactions view), session.c (the session
 * state machine), hooks.c (the hooks that feed it), timeout.c, sentinel.c,
 * events.c, stats.c, upsert.c and lock.c.
 *
 * The library must be preloaded: its shared memory is sized and created
 * by the postmaster.  Loaded any other way, _PG_init refuses.
 *
 *-------------------------------------------------------------------------
 */
#include "pg_txguard.h"

#include "fmgr.h"
#include "miscadmin.h"

TXG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_txguard must be loaded via \"shared_preload_libraries\""),
				 errhint("Add pg_txguard to \"shared_preload_libraries\" in postgresql.conf and restart the server.")));

	txg_define_gucs();
	txg_watch_application_name();
	txg_durations_init();
	txg_shmem_init_hooks();
	txg_hooks_init();
	txg_timeout_init();
	txg_sentinel_register();
}
