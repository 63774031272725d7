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

/* the transaction timeout (ms, 0 = off) and the cap users cannot lift */
int			txg_transaction_timeout = 0;
int			txg_max_transaction_timeout = 0;

/* a limit that is only reported (ms, 0 = off) */
int			txg_observe_timeout = 0;

/* entries of the txguard.events ring */
int			txg_max_events = 1000;

/* log sessions that end with a transaction open */
bool		txg_log_abandoned = true;

/* log transactions that lasted at least this long (ms, -1 = off) */
int			txg_log_min_duration = -1;

/* the sentinel ends sessions idle this long in a transaction that blocks */
int			txg_idle_blocker_timeout = 0;

/* prepared statements the race-free helpers keep per session */
int			txg_max_cached_plans = 256;
int			txg_max_duration_keys = 1000;

/*
 * The durations (stats.c) and the registry's copy for reports made by
 * others (registry.c) follow the session's application_name.  Comparing
 * the variable's pointer with the one seen last is not enough: the string
 * a rolled-back SET LOCAL frees can be allocated again, at the same
 * address, for the next value.  So the setting's assign hook is chained,
 * as pg_txguard chains PostgreSQL's other hooks, to see every assignment
 * (SET, RESET, SET LOCAL and its end, a function's SET clause,
 * set_config()): the durations change key, and the registry's copy
 * changes, there and then.
 */
static GucStringAssignHook prev_assign_application_name = NULL;

/*
 * The shortest duration at which a transaction's end needs a look: see
 * txg_end_threshold.
 */
int64		txg_end_threshold = PG_INT64_MAX;

void
txg_update_end_threshold(void)
{
	int64		threshold = PG_INT64_MAX;

	if (txg_log_min_duration >= 0)
		threshold = (int64) txg_log_min_duration * 1000;
	if (txg_observe_timeout > 0)
		threshold = Min(threshold, (int64) txg_observe_timeout * 1000);
	txg_end_threshold = threshold;
}

static void
assign_log_min_duration(int newval, void *extra)
{
	txg_log_min_duration = newval;
	txg_update_end_threshold();
}

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

	DefineCustomIntVariable("txguard.transaction_timeout",
							"Sets the longest time a transaction may stay open, counted from its start.",
							"A running statement is canceled, a session idle in the transaction is terminated. Zero turns this off.",
							&txg_transaction_timeout,
							0,
							0,
							INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL,
							txg_assign_transaction_timeout,
							NULL);

	DefineCustomIntVariable("txguard.max_transaction_timeout",
							"Sets a limit on transaction duration that sessions cannot raise or turn off.",
							"The effective limit is the smaller non-zero value of this and txguard.transaction_timeout. Zero means no cap.",
							&txg_max_transaction_timeout,
							0,
							0,
							INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL,
							txg_assign_max_transaction_timeout,
							NULL);

	DefineCustomIntVariable("txguard.observe_timeout",
							"Reports transactions that stay open longer than this, and does nothing else.",
							"At the deadline a LOG line, a txguard.events row and a count in txguard.stats record the transaction, once; it goes on. Zero turns this off.",
							&txg_observe_timeout,
							0,
							0,
							INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL,
							txg_assign_observe_timeout,
							NULL);

	DefineCustomIntVariable("txguard.max_events",
							"Sets the number of recent events kept in txguard.events.",
							NULL,
							&txg_max_events,
							1000,
							10,
							1000000,
							PGC_POSTMASTER,
							0,
							NULL,
							NULL,
							NULL);

	DefineCustomBoolVariable("txguard.log_abandoned",
							 "Logs sessions that end with a transaction still open.",
							 "The client quit or the connection dropped inside a transaction, which was then rolled back.",
							 &txg_log_abandoned,
							 true,
							 PGC_SUSET,
							 0,
							 NULL,
							 NULL,
							 NULL);

	DefineCustomIntVariable("txguard.log_min_duration",
							"Logs every transaction that lasted at least this long, with its outcome.",
							"-1 turns this off, 0 logs every transaction.",
							&txg_log_min_duration,
							-1,
							-1,
							INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL,
							assign_log_min_duration,
							NULL);

	DefineCustomIntVariable("txguard.idle_blocker_timeout",
							"Terminates sessions idle in a transaction this long while they block other sessions.",
							"Idle transactions that block nobody are left alone. Zero turns this off.",
							&txg_idle_blocker_timeout,
							0,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("txguard.max_cached_plans",
							"Sets the number of prepared statements the race-free helpers keep in each session.",
							"Past this number, the least recently used statement is dropped, and prepared again when next needed.",
							&txg_max_cached_plans,
							256,
							1,
							1000000,
							PGC_USERSET,
							0,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("txguard.max_duration_keys",
							"Sets the number of (database, role, application_name) keys whose transaction durations are kept.",
							"Once this many keys are kept, the durations of new keys are counted in one \"(other)\" row per database.",
							&txg_max_duration_keys,
							1000,
							0,
							TXG_MAX_DURATION_KEYS,
							PGC_POSTMASTER,
							0,
							NULL,
							NULL,
							NULL);

	MarkGUCPrefixReserved("txguard");
}

static void
assign_application_name(const char *newval, void *extra)
{
	if (prev_assign_application_name)
		prev_assign_application_name(newval, extra);
	txg_stats_application_name(newval);
	txg_registry_application_name(newval);
}

/* follow the assignments of application_name: from _PG_init */
void
txg_watch_application_name(void)
{
	GucStringAssignHook *hook = txg_string_assign_hook("application_name");

	if (hook == NULL)
		elog(ERROR, "could not find the setting \"application_name\"");
	prev_assign_application_name = *hook;
	*hook = assign_application_name;
}
