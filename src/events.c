/*-------------------------------------------------------------------------
 *
 * events.c
 *		Recent events (enforcements, abandoned transactions) in a ring
 *		buffer in shared memory, the txguard.events view, and the server
 *		log line written for each event.
 *
 * The ring holds txguard.max_events entries; the newest overwrites the
 * oldest.  Events are rare (a timeout fires, a session leaves a
 * transaction open), so one LWLock of pg_txguard's named tranche guards
 * the ring: writers take it exclusively, readers shared.  Nothing here
 * runs on the per-statement path.
 *
 * Each event is also written to the server log as one LOG line of
 * key=value fields, for servers whose log is read by machines; the view
 * serves users who cannot read the log (managed services).
 *
 *-------------------------------------------------------------------------
 */
#include "pg_txguard.h"

#include "catalog/pg_type.h"
#include "common/ip.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "srf.h"

typedef struct TxgEvent
{
	uint64		seq;			/* 0: never written */
	TxgEventKind kind;
	TimestampTz event_time;
	int			pid;
	Oid			dbid;
	Oid			userid;
	char		appname[NAMEDATALEN];
	char		client_addr[NI_MAXHOST];	/* "" for Unix sockets */
	TimestampTz xact_start;
	int64		statements;
	int			nblocking;
	int			blocking[TXG_EVENT_MAX_BLOCKING];
	int			first_len;
	int			last_len;
	char	   *first;
	char	   *last;
} TxgEvent;

typedef struct TxgEvents
{
	LWLock	   *lock;
	uint64		next_seq;		/* sequence number of the next event */
	int			size;			/* txguard.max_events at start */
	int			text_size;
	TxgEvent	events[FLEXIBLE_ARRAY_MEMBER];
} TxgEvents;

static TxgEvents *ring = NULL;

static const char *const kind_names[] = {
	[TXG_EVENT_TIMEOUT_CANCEL] = "timeout_cancel",
	[TXG_EVENT_TIMEOUT_TERMINATE] = "timeout_terminate",
	[TXG_EVENT_ABANDONED] = "abandoned",
	[TXG_EVENT_IDLE_BLOCKER_TERMINATE] = "idle_blocker_terminate",
	[TXG_EVENT_TIMEOUT_OBSERVED] = "timeout_observed",
};

static const char *const action_names[] = {
	[TXG_EVENT_TIMEOUT_CANCEL] = "cancel",
	[TXG_EVENT_TIMEOUT_TERMINATE] = "terminate",
	[TXG_EVENT_ABANDONED] = NULL,
	[TXG_EVENT_IDLE_BLOCKER_TERMINATE] = "terminate",
	[TXG_EVENT_TIMEOUT_OBSERVED] = NULL,
};

Size
txg_events_shmem_size(void)
{
	Size		size;

	size = add_size(offsetof(TxgEvents, events),
					mul_size(txg_max_events, sizeof(TxgEvent)));
	size = add_size(size, mul_size(mul_size(txg_max_events, 2),
								   txg_track_statement_size));
	return size;
}

/* called from shmem_startup_hook, under AddinShmemInitLock */
void
txg_events_shmem_init(void)
{
	bool		found;

	ring = ShmemInitStruct("pg_txguard events", txg_events_shmem_size(),
						   &found);
	if (!found)
	{
		char	   *text;
		int			i;

		ring->lock = txg_lwlock(TXG_LOCK_EVENTS);
		ring->next_seq = 1;
		ring->size = txg_max_events;
		ring->text_size = txg_track_statement_size;
		text = (char *) &ring->events[ring->size];
		for (i = 0; i < ring->size; i++)
		{
			memset(&ring->events[i], 0, sizeof(TxgEvent));
			ring->events[i].first = text;
			text += ring->text_size;
			ring->events[i].last = text;
			text += ring->text_size;
		}
	}
}

/* the client's address as text, "" for a Unix socket or no client */
void
txg_client_address(char *buf, size_t size)
{
	buf[0] = '\0';
	if (MyProcPort == NULL)
		return;
	switch (MyProcPort->raddr.addr.ss_family)
	{
		case AF_INET:
		case AF_INET6:
			break;
		default:
			return;
	}
	if (pg_getnameinfo_all(&MyProcPort->raddr.addr, MyProcPort->raddr.salen,
						   buf, size, NULL, 0, NI_NUMERICHOST) != 0)
		buf[0] = '\0';
	else
		clean_ipv6_addr(MyProcPort->raddr.addr.ss_family, buf);
}

/* append a key=value field, quoting the value when it needs it */
static void
append_field(StringInfo buf, const char *key, const char *value, int len)
{
	bool		quote = false;
	int			i;

	if (value == NULL)
	{
		appendStringInfo(buf, " %s=", key);
		return;
	}
	if (len < 0)
		len = strlen(value);
	for (i = 0; i < len && !quote; i++)
		if (value[i] == ' ' || value[i] == '"' || value[i] == '=' ||
			value[i] == '\\' || (unsigned char) value[i] < 0x20)
			quote = true;
	appendStringInfo(buf, " %s=", key);
	if (!quote && len > 0)
	{
		appendBinaryStringInfo(buf, value, len);
		return;
	}
	appendStringInfoChar(buf, '"');
	for (i = 0; i < len; i++)
	{
		char		c = value[i];

		if (c == '"' || c == '\\')
		{
			appendStringInfoChar(buf, '\\');
			appendStringInfoChar(buf, c);
		}
		else if (c == '\n')
			appendStringInfoString(buf, "\\n");
		else if (c == '\r')
			appendStringInfoString(buf, "\\r");
		else if (c == '\t')
			appendStringInfoString(buf, "\\t");
		else
			appendStringInfoChar(buf, c);
	}
	appendStringInfoChar(buf, '"');
}

static void
append_blocking(StringInfo buf, const TxgEventData *event)
{
	int			i;

	appendStringInfoString(buf, " blocking={");
	for (i = 0; i < event->nblocking && i < TXG_EVENT_MAX_BLOCKING; i++)
		appendStringInfo(buf, "%s%d", i > 0 ? "," : "", event->blocking[i]);
	appendStringInfoChar(buf, '}');
}

/*
 * A timestamp as the server log's line prefix shows it (%m): in
 * log_timezone, with milliseconds, "2026-11-22 10:15:02.113 UTC".  The
 * session's TimeZone (timestamptz_to_str) could differ from the prefix of
 * the same line.
 */
static char *
format_log_time(TimestampTz ts)
{
	pg_time_t	stamp = timestamptz_to_time_t(ts);
	struct pg_tm *tm = pg_localtime(&stamp, log_timezone);
	char		date[64];
	char		zone[32];
	int			ms = (int) ((ts % USECS_PER_SEC + USECS_PER_SEC) % USECS_PER_SEC / 1000);

	if (tm == NULL)
		return pstrdup(timestamptz_to_str(ts));
	pg_strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", tm);
	pg_strftime(zone, sizeof(zone), "%Z", tm);
	return psprintf("%s.%03d %s", date, ms, zone);
}

/* "1.234 s" */
static char *
format_duration(TimestampTz from, TimestampTz to)
{
	int64		us = Max(to - from, 0);

	return psprintf("%.3f s", (double) us / 1000000.0);
}

/*
 * The fields every log line of pg_txguard has: who, and which
 * transaction, with its duration up to "end".
 */
static void
append_session_and_xact(StringInfo buf, const TxgSessionId *who,
						const TxgXactInfo *xact, TimestampTz end)
{
	appendStringInfo(buf, " pid=%d", who->pid);
	append_field(buf, "user", who->username, -1);
	append_field(buf, "database", who->dbname, -1);
	append_field(buf, "application_name", who->appname, -1);
	append_field(buf, "client_addr",
				 who->client_addr[0] ? who->client_addr : "local", -1);
	append_field(buf, "xact_start",
				 xact->xact_start ? format_log_time(xact->xact_start) : NULL, -1);
	append_field(buf, "duration", format_duration(xact->xact_start, end), -1);
}

static void
append_statements(StringInfo buf, const TxgXactInfo *xact)
{
	appendStringInfo(buf, " statements=" INT64_FORMAT, xact->statements);
	append_field(buf, "first_statement", xact->first, xact->first_len);
	append_field(buf, "last_statement", xact->last, xact->last_len);
}

static void
emit_line(StringInfo buf)
{
	ereport(LOG,
			(errmsg_internal("%s", buf->data),
			 errhidestmt(true),
			 errhidecontext(true)));
	pfree(buf->data);
}

/*
 * Log the end of this backend's transaction ("event" long_transaction),
 * with its outcome.
 */
/* this backend as the log lines and events name it */
static void
this_session(TxgSessionId *who, char *addr, size_t addr_size)
{
	txg_client_address(addr, addr_size);
	who->pid = MyProcPid;
	who->dbid = MyDatabaseId;
	/* the role that logged in, as in pg_stat_activity: not a role switched to */
	who->userid = GetAuthenticatedUserId();
	who->dbname = MyProcPort ? MyProcPort->database_name : NULL;
	who->username = MyProcPort ? MyProcPort->user_name : NULL;
	who->appname = application_name ? application_name : "";
	who->client_addr = addr;
}

void
txg_log_transaction(const char *event, const char *outcome, TimestampTz end)
{
	TxgXactInfo xact;
	TxgSessionId who;
	char		addr[NI_MAXHOST];
	StringInfoData buf;

	if (!txg_registry_self(&xact))
		return;
	this_session(&who, addr, sizeof(addr));
	initStringInfo(&buf);
	appendStringInfoString(&buf, "pg_txguard:");
	append_field(&buf, "event", event, -1);
	append_field(&buf, "outcome", outcome, -1);
	append_session_and_xact(&buf, &who, &xact, end);
	append_statements(&buf, &xact);
	emit_line(&buf);
}

/*
 * Record an event about this backend's transaction: one LOG line and one
 * entry in the ring.  Call from a normal (non-signal) context, while the
 * registry still describes the transaction.
 */
void
txg_event_report(TxgEventData *event)
{
	TxgXactInfo xact;
	TxgSessionId who;
	char		addr[NI_MAXHOST];

	txg_registry_self(&xact);
	this_session(&who, addr, sizeof(addr));
	txg_event_report_for(event, &who, &xact);
}

/* the same, for a transaction described by "xact" (not the registry) */
void
txg_event_report_with(TxgEventData *event, const TxgXactInfo *xact)
{
	TxgSessionId who;
	char		addr[NI_MAXHOST];

	this_session(&who, addr, sizeof(addr));
	txg_event_report_for(event, &who, xact);
}

/*
 * Record an event about the transaction "xact" of the session "who",
 * which may be another backend's (the sentinel reports for others).
 */
void
txg_event_report_for(TxgEventData *event, const TxgSessionId *who,
					 const TxgXactInfo *xact)
{
	StringInfoData buf;
	TxgEvent   *e;
	int			nblocking = Min(event->nblocking, TXG_EVENT_MAX_BLOCKING);

	initStringInfo(&buf);
	appendStringInfoString(&buf, "pg_txguard:");
	append_field(&buf, "event", kind_names[event->kind], -1);
	if (action_names[event->kind] != NULL)
		append_field(&buf, "action", action_names[event->kind], -1);
	append_session_and_xact(&buf, who, xact, event->event_time);
	if (event->limit_ms > 0)
	{
		char	   *limit = psprintf("%d ms", event->limit_ms);

		append_field(&buf, "limit", limit, -1);
		append_field(&buf, "limit_setting", event->limit_name, -1);
	}
	append_statements(&buf, xact);
	append_blocking(&buf, event);
	if (event->no_log)
		pfree(buf.data);
	else
		emit_line(&buf);

	if (ring == NULL)
		return;

	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	e = &ring->events[(ring->next_seq - 1) % ring->size];
	e->seq = ring->next_seq++;
	e->kind = event->kind;
	e->event_time = event->event_time;
	e->pid = who->pid;
	e->dbid = who->dbid;
	e->userid = who->userid;
	snprintf(e->appname, sizeof(e->appname), "%s", who->appname);
	snprintf(e->client_addr, sizeof(e->client_addr), "%s", who->client_addr);
	e->xact_start = xact->xact_start;
	e->statements = xact->statements;
	e->nblocking = nblocking;
	memcpy(e->blocking, event->blocking, sizeof(int) * nblocking);
	e->first_len = Min(xact->first_len, ring->text_size);
	e->last_len = Min(xact->last_len, ring->text_size);
	if (e->first_len > 0)
		memcpy(e->first, xact->first, e->first_len);
	if (e->last_len > 0)
		memcpy(e->last, xact->last, e->last_len);
	LWLockRelease(ring->lock);
}

#define EVENTS_COLS 13

PG_FUNCTION_INFO_V1(txguard_events);

/*
 * txguard._events(): the ring, newest first.  The txguard.events view adds
 * database and role names.
 */
Datum
txguard_events(PG_FUNCTION_ARGS)
{
	TxgSrf		srf;
	TxgEvent   *copy;
	int			n = 0;
	uint64		seq;
	int			i;

	txg_check_loaded();
	if (ring == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_txguard must be loaded via \"shared_preload_libraries\"")));
	txg_srf_begin(fcinfo, &srf);

	/*
	 * Copy the events recorded under the lock, and build tuples after
	 * releasing it.  The copy is sized for what the ring holds, not for its
	 * capacity: a ring of a million entries with 1 MB texts that holds a
	 * few events costs a few events to read.  (An allocation that fails
	 * under the lock is an ordinary error: the abort releases the lock.)
	 */
	LWLockAcquire(ring->lock, LW_SHARED);
	for (seq = ring->next_seq - 1; seq >= 1 && n < ring->size; seq--)
	{
		if (ring->events[(seq - 1) % ring->size].seq != seq)
			break;
		n++;
	}
	copy = palloc(sizeof(TxgEvent) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		TxgEvent   *e = &ring->events[(ring->next_seq - 2 - i) % ring->size];

		copy[i] = *e;
		copy[i].first = palloc(Max(e->first_len, 1));
		copy[i].last = palloc(Max(e->last_len, 1));
		memcpy(copy[i].first, e->first, e->first_len);
		memcpy(copy[i].last, e->last, e->last_len);
	}
	LWLockRelease(ring->lock);

	for (i = 0; i < n; i++)
	{
		TxgEvent   *e = &copy[i];
		Datum		values[EVENTS_COLS];
		bool		nulls[EVENTS_COLS];
		Datum	   *blocking;
		bool		visible;
		int			j;

		memset(nulls, 0, sizeof(nulls));
		visible = has_privs_of_role(GetUserId(), e->userid) ||
			has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);

		values[0] = TimestampTzGetDatum(e->event_time);
		values[1] = CStringGetTextDatum(kind_names[e->kind]);
		values[2] = Int32GetDatum(e->pid);
		values[3] = ObjectIdGetDatum(e->dbid);
		values[4] = ObjectIdGetDatum(e->userid);
		values[5] = CStringGetTextDatum(e->appname);
		/* as in pg_stat_activity, the address is private too */
		if (visible && e->client_addr[0] != '\0')
			values[6] = CStringGetTextDatum(e->client_addr);
		else
			nulls[6] = true;
		if (e->xact_start != 0)
		{
			values[7] = TimestampTzGetDatum(e->xact_start);
			values[8] = DirectFunctionCall2(timestamp_mi,
											TimestampTzGetDatum(e->event_time),
											TimestampTzGetDatum(e->xact_start));
		}
		else
			nulls[7] = nulls[8] = true;
		values[9] = Int64GetDatum(e->statements);
		if (visible && e->statements > 0)
		{
			values[10] = PointerGetDatum(cstring_to_text_with_len(e->first, e->first_len));
			values[11] = PointerGetDatum(cstring_to_text_with_len(e->last, e->last_len));
		}
		else
			nulls[10] = nulls[11] = true;
		blocking = palloc(sizeof(Datum) * Max(e->nblocking, 1));
		for (j = 0; j < e->nblocking; j++)
			blocking[j] = Int32GetDatum(e->blocking[j]);
		values[12] = PointerGetDatum(construct_array(blocking, e->nblocking,
													 INT4OID, sizeof(int32),
													 true, TYPALIGN_INT));
		tuplestore_putvalues(srf.tupstore, srf.tupdesc, values, nulls);
	}

	return (Datum) 0;
}
