/*-------------------------------------------------------------------------
 *
 * srf.h
 *		Materialize-mode set-returning functions, the same way on every
 *		supported major.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TXGUARD_SRF_H
#define TXGUARD_SRF_H

#include "fmgr.h"
#include "funcapi.h"
#include "utils/tuplestore.h"

typedef struct TxgSrf
{
	Tuplestorestate *tupstore;
	TupleDesc	tupdesc;
} TxgSrf;

extern void txg_srf_begin(FunctionCallInfo fcinfo, TxgSrf *srf);

#endif							/* TXGUARD_SRF_H */
