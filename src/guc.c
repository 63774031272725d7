/*-------------------------------------------------------------------------
 *
 * guc.c
 *		The txguard.* settings.
 *
 * Every setting is defined here, with the context that decides who may
 * change it; README.md documents each one.  The "txguard" prefix is
 * reserved, so a misspelt txguard.* name is reported instead of being
 * kept as a placeholder.
 *
 *-------------------------------------------------------------------------
 */
#include "pg_txguard.h"

#include "utils/guc.h"

/* bytes of statement text kept per slot (first and latest statement) */
int			txg_track_statement_size = 1024;

void
txg_define_gucs(void)
{
	DefineCustomIntVariable("txguard.track_statement_size",
							"Sets the number of bytes kept of the first and of the latest statement of each open transaction.",
							"Longer statements are truncated at a character boundary.",
							&txg_track_statement_size,
							1024,
							100,
							1024 * 1024,
							PGC_POSTMASTER,
							GUC_UNIT_BYTE,
							NULL,
							NULL,
							NULL);

	MarkGUCPrefixReserved("txguard");
}
