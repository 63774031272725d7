/*-------------------------------------------------------------------------
 *
 * pg_txguard.h
 *		Declarations shared by the files of pg_txguard.
 *
 * Each .c file owns one concern; this header is the list of what one
 * concern offers the others.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_TXGUARD_H
#define PG_TXGUARD_H

#include "compat.h"

#include "datatype/timestamp.h"

/* guc.c */
extern int	txg_track_statement_size;
extern void txg_define_gucs(void);

/* shmem.c */
extern void txg_shmem_init_hooks(void);
extern void txg_check_loaded(void);

/* registry.c: one slot per backend, written only by its owner */
typedef enum TxgState
{
	TXG_STATE_NONE = 0,			/* not in a transaction */
	TXG_STATE_ACTIVE,
	TXG_STATE_IDLE,				/* idle in transaction */
	TXG_STATE_IDLE_ABORTED		/* idle in transaction (aborted) */
} TxgState;

extern Size txg_registry_shmem_size(void);
extern void txg_registry_shmem_init(void);
extern bool txg_registry_attached(void);
extern void txg_registry_attach_backend(void);
extern void txg_registry_detach_backend(void);
extern bool txg_registry_in_xact(void);
extern void txg_registry_statement(const char *text, int len, bool counted);
extern void txg_registry_continue(const char *text, int len);
extern void txg_registry_idle(bool aborted);
extern void txg_registry_xact_end(void);

/* activity.c: follows the backend through statements and transactions */
extern void txg_activity_init(void);

#endif							/* PG_TXGUARD_H */
