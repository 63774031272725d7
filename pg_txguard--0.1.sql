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

GRANT USAGE ON SCHEMA txguard TO PUBLIC;
GRANT SELECT ON txguard.transactions TO PUBLIC;
GRANT SELECT ON txguard.events TO PUBLIC;
GRANT SELECT ON txguard.stats TO PUBLIC;

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
