/* pg_txguard--0.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pg_txguard" to load this file. \quit

-- ------------------------------------------------------------------
-- Registry of open transactions
-- ------------------------------------------------------------------

CREATE FUNCTION txguard._transactions(
    OUT pid int4,
    OUT dbid oid,
    OUT userid oid,
    OUT xact_start timestamptz,
    OUT duration interval,
    OUT state text,
    OUT state_since timestamptz,
    OUT statements int8,
    OUT first_statement text,
    OUT last_statement text,
    OUT wrote bool,
    OUT blocking int4[],
    OUT deadline timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'txguard_transactions'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION txguard._transactions() IS
'Internal: the slots of txguard.transactions, without names';

CREATE VIEW txguard.transactions AS
SELECT t.pid,
       d.datname,
       r.rolname AS usename,
       a.application_name,
       a.client_addr,
       t.xact_start,
       t.duration,
       t.state,
       t.state_since,
       t.statements,
       t.first_statement,
       t.last_statement,
       t.wrote,
       t.blocking,
       t.deadline
  FROM txguard._transactions() t
  LEFT JOIN pg_catalog.pg_database d ON d.oid = t.dbid
  LEFT JOIN pg_catalog.pg_roles r ON r.oid = t.userid
  LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = t.pid;

COMMENT ON VIEW txguard.transactions IS
'One row per client session currently inside a transaction';

-- ------------------------------------------------------------------
-- Recent events: enforcements and abandoned transactions
-- ------------------------------------------------------------------

CREATE FUNCTION txguard._events(
    OUT event_time timestamptz,
    OUT kind text,
    OUT pid int4,
    OUT dbid oid,
    OUT userid oid,
    OUT application_name text,
    OUT client_addr text,
    OUT xact_start timestamptz,
    OUT duration interval,
    OUT statements int8,
    OUT first_statement text,
    OUT last_statement text,
    OUT blocking int4[])
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'txguard_events'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION txguard._events() IS
'Internal: the entries of txguard.events, without names';

CREATE VIEW txguard.events AS
SELECT e.event_time,
       e.kind,
       e.pid,
       d.datname,
       r.rolname AS usename,
       e.application_name,
       e.client_addr::inet AS client_addr,
       e.xact_start,
       e.duration,
       e.statements,
       e.first_statement,
       e.last_statement,
       e.blocking
  FROM txguard._events() WITH ORDINALITY AS e(event_time, kind, pid, dbid, userid,
                                              application_name, client_addr, xact_start,
                                              duration, statements, first_statement,
                                              last_statement, blocking, n)
  LEFT JOIN pg_catalog.pg_database d ON d.oid = e.dbid
  LEFT JOIN pg_catalog.pg_roles r ON r.oid = e.userid
 ORDER BY e.n;

COMMENT ON VIEW txguard.events IS
'Recent events of pg_txguard, newest first';

-- ------------------------------------------------------------------
-- Outcome counters per database
-- ------------------------------------------------------------------

CREATE FUNCTION txguard._stats(
    OUT dbid oid,
    OUT committed int8,
    OUT rolled_back int8,
    OUT failed int8,
    OUT abandoned int8,
    OUT timed_out int8,
    OUT terminated int8,
    OUT blocker_terminated int8,
    OUT max_duration interval,
    OUT stats_reset timestamptz,
    OUT observed int8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'txguard_stats'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION txguard._stats() IS
'Internal: the rows of txguard.stats, without names';

CREATE VIEW txguard.stats AS
SELECT d.datname,
       s.committed,
       s.rolled_back,
       s.failed,
       s.abandoned,
       s.timed_out,
       s.terminated,
       s.blocker_terminated,
       s.observed,
       s.max_duration,
       s.stats_reset
  FROM txguard._stats() s
  JOIN pg_catalog.pg_database d ON d.oid = s.dbid;

COMMENT ON VIEW txguard.stats IS
'Transaction outcomes per database since the last txguard.reset_stats()';

CREATE FUNCTION txguard.reset_stats()
RETURNS void
AS 'MODULE_PATHNAME', 'txguard_reset_stats'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION txguard.reset_stats() IS
'Sets every counter of txguard.stats back to zero';

REVOKE ALL ON FUNCTION txguard.reset_stats() FROM PUBLIC;

-- ------------------------------------------------------------------
-- Transaction durations per (database, role, application_name)
-- ------------------------------------------------------------------

CREATE FUNCTION txguard._durations(
    OUT dbid oid,
    OUT userid oid,
    OUT application_name text,
    OUT transactions int8,
    OUT mean interval,
    OUT p50 interval,
    OUT p95 interval,
    OUT p99 interval,
    OUT max interval,
    OUT max_idle interval,
    OUT total interval)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'txguard_durations'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION txguard._durations() IS
'Internal: the rows of txguard.durations, without names';

CREATE VIEW txguard.durations AS
SELECT d.datname,
       r.rolname AS usename,
       s.application_name,
       s.transactions,
       s.mean,
       s.p50,
       s.p95,
       s.p99,
       s.max,
       s.max_idle,
       s.total
  FROM txguard._durations() s
  JOIN pg_catalog.pg_database d ON d.oid = s.dbid
  LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.userid;

COMMENT ON VIEW txguard.durations IS
'Transaction durations per database, role and application_name since the last txguard.reset_stats()';

CREATE FUNCTION txguard._duration_histogram(
    OUT dbid oid,
    OUT userid oid,
    OUT application_name text,
    OUT le interval,
    OUT count int8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'txguard_duration_histogram'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION txguard._duration_histogram() IS
'Internal: the rows of txguard.duration_histogram, without names';

CREATE VIEW txguard.duration_histogram AS
SELECT d.datname,
       r.rolname AS usename,
       h.application_name,
       h.le,
       h.count
  FROM txguard._duration_histogram() h
  JOIN pg_catalog.pg_database d ON d.oid = h.dbid
  LEFT JOIN pg_catalog.pg_roles r ON r.oid = h.userid;

COMMENT ON VIEW txguard.duration_histogram IS
'Transaction durations as cumulative buckets (le NULL: +Inf), per database, role and application_name';

CREATE FUNCTION txguard._duration_bound(
    timeout interval,
    OUT counted_from interval,
    OUT exact boolean)
RETURNS record
AS 'MODULE_PATHNAME', 'txguard_duration_bound'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION txguard._duration_bound(interval) IS
'Internal: the bound of the duration histogram txguard.would_time_out() counts from';

CREATE FUNCTION txguard._durations_longer(
    counted_from interval,
    OUT dbid oid,
    OUT userid oid,
    OUT application_name text,
    OUT transactions int8,
    OUT longer int8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'txguard_durations_longer'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION txguard._durations_longer(interval) IS
'Internal: per key, ended transactions longer than a bound of the duration histogram';

CREATE FUNCTION txguard.would_time_out(
    timeout interval,
    OUT datname name,
    OUT usename name,
    OUT application_name text,
    OUT transactions int8,
    OUT ended_longer int8,
    OUT counted_from interval,
    OUT exact boolean,
    OUT open_longer int8)
RETURNS SETOF record
LANGUAGE sql STRICT VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
WITH bound AS (
    SELECT b.counted_from, b.exact FROM txguard._duration_bound(timeout) b
), ended AS (
    SELECT d.datname, r.rolname AS usename, e.application_name,
           e.transactions, e.longer
      FROM bound, txguard._durations_longer(bound.counted_from) e
      JOIN pg_catalog.pg_database d ON d.oid = e.dbid
      LEFT JOIN pg_catalog.pg_roles r ON r.oid = e.userid
), open AS (
    SELECT t.datname, t.usename,
           COALESCE(t.application_name, '') AS application_name,
           count(*) AS n
      FROM txguard.transactions t
     WHERE pg_catalog.clock_timestamp() - t.xact_start > timeout
     GROUP BY 1, 2, 3
)
SELECT COALESCE(e.datname, o.datname),
       COALESCE(e.usename, o.usename),
       COALESCE(e.application_name, o.application_name),
       COALESCE(e.transactions, 0),
       COALESCE(e.longer, 0),
       bound.counted_from,
       bound.exact,
       COALESCE(o.n, 0)
  FROM bound,
       ended e FULL JOIN open o
         ON o.datname = e.datname AND o.usename = e.usename
        AND o.application_name = e.application_name
$$;

COMMENT ON FUNCTION txguard.would_time_out(interval) IS
'Per database, role and application_name: ended transactions that lasted longer than the limit, and open ones older than it now';

GRANT USAGE ON SCHEMA txguard TO PUBLIC;
GRANT SELECT ON txguard.transactions TO PUBLIC;
GRANT SELECT ON txguard.events TO PUBLIC;
GRANT SELECT ON txguard.stats TO PUBLIC;
GRANT SELECT ON txguard.durations TO PUBLIC;
GRANT SELECT ON txguard.duration_histogram TO PUBLIC;

-- ------------------------------------------------------------------
-- Race-free helpers
-- ------------------------------------------------------------------
--
-- Written in C (src/upsert.c, src/lock.c).  SECURITY INVOKER: the caller's
-- privileges and row-level security apply.  The statements they build name
-- everything schema-qualified; those that contain an index's expressions
-- or predicate run with search_path pinned to pg_catalog, pg_temp (in C,
-- only then: a SET clause here would cost every call a GUC save/restore).

CREATE FUNCTION txguard.insert_or_get(
    row_type anyelement,
    vals jsonb,
    conflict_columns text[] DEFAULT NULL)
RETURNS anyelement
AS 'MODULE_PATHNAME', 'txguard_insert_or_get'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE SECURITY INVOKER;

COMMENT ON FUNCTION txguard.insert_or_get(anyelement, jsonb, text[]) IS
'Insert the row given by vals, or return the row that already holds its key; never a duplicate, never a unique violation';

CREATE FUNCTION txguard.insert_or_get_created(
    row_type anyelement,
    vals jsonb,
    conflict_columns text[] DEFAULT NULL,
    OUT r anyelement,
    OUT created boolean)
RETURNS record
AS 'MODULE_PATHNAME', 'txguard_insert_or_get_created'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE SECURITY INVOKER;

COMMENT ON FUNCTION txguard.insert_or_get_created(anyelement, jsonb, text[]) IS
'txguard.insert_or_get, also telling whether the row was created';

CREATE FUNCTION txguard.upsert(
    row_type anyelement,
    vals jsonb,
    conflict_columns text[] DEFAULT NULL,
    update_columns text[] DEFAULT NULL)
RETURNS anyelement
AS 'MODULE_PATHNAME', 'txguard_upsert'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE SECURITY INVOKER;

COMMENT ON FUNCTION txguard.upsert(anyelement, jsonb, text[], text[]) IS
'Insert the row given by vals, or update the non-key columns of the row that holds its key; writes nothing when nothing would change';

CREATE FUNCTION txguard.upsert_created(
    row_type anyelement,
    vals jsonb,
    conflict_columns text[] DEFAULT NULL,
    update_columns text[] DEFAULT NULL,
    OUT r anyelement,
    OUT created boolean,
    OUT updated boolean)
RETURNS record
AS 'MODULE_PATHNAME', 'txguard_upsert_created'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE SECURITY INVOKER;

COMMENT ON FUNCTION txguard.upsert_created(anyelement, jsonb, text[], text[]) IS
'txguard.upsert, also telling whether the row was created or updated';

CREATE FUNCTION txguard.insert_or_get_many(
    row_type anyelement,
    vals jsonb,
    conflict_columns text[] DEFAULT NULL)
RETURNS SETOF anyelement
AS 'MODULE_PATHNAME', 'txguard_insert_or_get_many'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE SECURITY INVOKER;

COMMENT ON FUNCTION txguard.insert_or_get_many(anyelement, jsonb, text[]) IS
'txguard.insert_or_get for a JSON array of rows: one result per distinct key, in input order';

CREATE FUNCTION txguard.insert_or_get_many_created(
    row_type anyelement,
    vals jsonb,
    conflict_columns text[] DEFAULT NULL,
    OUT r anyelement,
    OUT created boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'txguard_insert_or_get_many_created'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE SECURITY INVOKER;

COMMENT ON FUNCTION txguard.insert_or_get_many_created(anyelement, jsonb, text[]) IS
'txguard.insert_or_get_many, also telling which rows were created';

CREATE FUNCTION txguard.upsert_many(
    row_type anyelement,
    vals jsonb,
    conflict_columns text[] DEFAULT NULL,
    update_columns text[] DEFAULT NULL)
RETURNS SETOF anyelement
AS 'MODULE_PATHNAME', 'txguard_upsert_many'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE SECURITY INVOKER;

COMMENT ON FUNCTION txguard.upsert_many(anyelement, jsonb, text[], text[]) IS
'txguard.upsert for a JSON array of rows: one result per distinct key, in input order';

CREATE FUNCTION txguard.upsert_many_created(
    row_type anyelement,
    vals jsonb,
    conflict_columns text[] DEFAULT NULL,
    update_columns text[] DEFAULT NULL,
    OUT r anyelement,
    OUT created boolean,
    OUT updated boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'txguard_upsert_many_created'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE SECURITY INVOKER;

COMMENT ON FUNCTION txguard.upsert_many_created(anyelement, jsonb, text[], text[]) IS
'txguard.upsert_many, also telling which rows were created or updated';

CREATE FUNCTION txguard.lock(key text, timeout interval DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'txguard_lock'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE SECURITY INVOKER;

COMMENT ON FUNCTION txguard.lock(text, interval) IS
'Take the named transaction-scoped mutex key, waiting at most timeout (default: lock_timeout)';

CREATE FUNCTION txguard.lock_key(key text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'txguard_lock_key'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE SECURITY INVOKER;

COMMENT ON FUNCTION txguard.lock_key(text) IS
'The 64-bit key txguard.lock uses for key: (classid::bigint << 32) | objid in pg_locks, with objsubid 29799';
