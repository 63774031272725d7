/*-------------------------------------------------------------------------
 *
 * lock.c
 *		txguard.lock: a named, transaction-scoped mutex.
 *
 * For critical sections a unique index cannot express ("only one job per
 * customer may run the month-end close at a time").  The lock is an
 * advisory lock in ExclusiveLock mode held until the transaction ends, on
 * the lock tag
 *
 *		(MyDatabaseId, hash >> 32, hash & 0xffffffff, TXG_LOCK_NAMESPACE)
 *
 * where hash is the 64-bit hash_bytes_extended() of the key's bytes.  The
 * fourth field, which pg_locks shows as objsubid, is 1 for
 * pg_advisory_lock(bigint) and 2 for pg_advisory_lock(int, int);
 * TXG_LOCK_NAMESPACE keeps txguard's keys apart from both, so the only
 * collisions are those of two txguard keys with the same 64-bit hash.
 *
 * Waiting goes through the lock manager, so the deadlock detector,
 * lock_timeout and statement_timeout apply as to any lock.  A timeout
 * argument replaces lock_timeout for this one wait: LockTimeout is set
 * around LockAcquire() and restored whatever happens.  A timeout of zero
 * means "do not wait".
 *
 *-------------------------------------------------------------------------
 */
#include "pg_txguard.h"

#include "common/hashfn.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

/* locktag_field4 of txguard.lock's advisory locks ("tg") */
#define TXG_LOCK_NAMESPACE 0x7467

/* seed of the key hash (documented: it fixes which tag a key maps to) */
#define TXG_LOCK_SEED UINT64CONST(0x7478677561726431)

PG_FUNCTION_INFO_V1(txguard_lock);
PG_FUNCTION_INFO_V1(txguard_lock_key);

static uint64
txg_lock_hash(text *key)
{
	return hash_bytes_extended((const unsigned char *) VARDATA_ANY(key),
							   VARSIZE_ANY_EXHDR(key), TXG_LOCK_SEED);
}

/*
 * An interval as milliseconds, for LockTimeout; -1 if negative.  Months
 * count 30 days, as everywhere in PostgreSQL; each term fits in int64 for
 * any field values, and so does their sum.
 *
 * The interval is ms * 1000 + rem microseconds, with |rem| < 1000 and rem
 * of the sign of iv->time.  Its sign is decided before rounding: a
 * fraction of a millisecond below zero ('-0.5 ms') is negative, not zero.
 */
static int64
txg_interval_ms(Interval *iv)
{
	int64		ms;
	int64		rem = iv->time % 1000;

	ms = (int64) iv->month * DAYS_PER_MONTH * (USECS_PER_DAY / 1000) +
		(int64) iv->day * (USECS_PER_DAY / 1000) +
		iv->time / 1000;
	if (ms < 0 || (ms == 0 && rem < 0))
		return -1;
	/* round up: a timeout of one microsecond still waits a little */
	if (rem > 0)
		ms++;
	return ms;
}

Datum
txguard_lock(PG_FUNCTION_ARGS)
{
	text	   *key;
	char	   *keystr;
	uint64		hash;
	LOCKTAG		tag;
	bool		have_timeout = !PG_ARGISNULL(1);
	volatile int64 ms = 0;
	int			save_timeout = LockTimeout;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"key\" must not be null")));
	key = PG_GETARG_TEXT_PP(0);
	keystr = text_to_cstring(key);
	hash = txg_lock_hash(key);
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (hash >> 32),
						 (uint32) hash, TXG_LOCK_NAMESPACE);

	if (have_timeout)
	{
		ms = txg_interval_ms(PG_GETARG_INTERVAL_P(1));
		if (ms < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("timeout must not be negative")));
	}

	if (have_timeout && ms == 0)
	{
		if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("could not obtain lock \"%s\" without waiting",
							keystr),
					 errdetail("Another transaction holds it.")));
		PG_RETURN_VOID();
	}

	PG_TRY();
	{
		/* beyond INT_MAX ms (24.8 days), wait without limit */
		if (have_timeout)
			LockTimeout = ms > INT_MAX ? 0 : (int) ms;
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
	}
	PG_CATCH();
	{
		LockTimeout = save_timeout;
		if (geterrcode() != ERRCODE_LOCK_NOT_AVAILABLE)
			PG_RE_THROW();
		/* the lock manager has cleaned up its wait; say which lock it was */
		FlushErrorState();
		if (have_timeout)
			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("could not obtain lock \"%s\" within " INT64_FORMAT " ms",
							keystr, (int64) ms),
					 errdetail("Another transaction held it for the whole timeout.")));
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("could not obtain lock \"%s\" within \"lock_timeout\" (%d ms)",
						keystr, save_timeout),
				 errdetail("Another transaction held it for the whole timeout.")));
	}
	PG_END_TRY();
	LockTimeout = save_timeout;

	PG_RETURN_VOID();
}

/* the 64 bits of a key, as pg_locks shows them in classid and objid */
Datum
txguard_lock_key(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64((int64) txg_lock_hash(PG_GETARG_TEXT_PP(0)));
}
