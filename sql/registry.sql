--
-- registry: the txguard.transactions view, seen from the session itself
--
CREATE TEMP TABLE w (x int);
CREATE FUNCTION three_statements() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1;
    PERFORM 2;
    RETURN (SELECT count(*) FROM pg_class WHERE false);
END $$;

-- outside a transaction block, the statement is its own transaction
SELECT state, statements, first_statement, last_statement, wrote, blocking
  FROM txguard.transactions WHERE pid = pg_backend_pid();

-- every column, inside a transaction block
BEGIN;
SELECT 1 AS one;
SELECT pid = pg_backend_pid() AS is_me,
       datname = current_database() AS same_db,
       usename = session_user AS same_user,
       application_name = current_setting('application_name') AS same_app,
       client_addr IS NOT DISTINCT FROM inet_client_addr() AS same_addr,
       xact_start = now() AS xact_start_is_now,
       duration >= interval '0' AS has_duration,
       state,
       state_since >= xact_start AS state_since_ok,
       statements,
       first_statement,
       last_statement,
       wrote,
       blocking
  FROM txguard.transactions WHERE pid = pg_backend_pid();
-- a write gives the transaction an xid
INSERT INTO w VALUES (1);
SELECT statements, wrote FROM txguard.transactions WHERE pid = pg_backend_pid();
COMMIT;

-- BEGIN and START TRANSACTION are not counted; statements in functions are not counted
START TRANSACTION;
SELECT three_statements();
SELECT statements, first_statement, last_statement
  FROM txguard.transactions WHERE pid = pg_backend_pid();
ROLLBACK;

-- several statements in one query string: one implicit transaction
SELECT 1 AS a \; SELECT 2 AS b \; SELECT statements, first_statement, last_statement FROM txguard.transactions WHERE pid = pg_backend_pid();

-- a block opened and closed inside one query string
BEGIN \; SELECT 10 AS c \; COMMIT \; SELECT statements, first_statement FROM txguard.transactions WHERE pid = pg_backend_pid();

-- savepoints are statements of the transaction
BEGIN;
SAVEPOINT s1;
SELECT 1/0;
ROLLBACK TO SAVEPOINT s1;
SELECT state, statements, last_statement FROM txguard.transactions WHERE pid = pg_backend_pid();
COMMIT;

-- an aborted transaction block stays until ROLLBACK
BEGIN;
SELECT 1/0;
SELECT 1;
ROLLBACK;
SELECT statements, first_statement FROM txguard.transactions WHERE pid = pg_backend_pid();

-- a procedure that commits starts a new transaction: the registry follows
CREATE TABLE proc_log (label text, xact_start timestamptz, statements bigint, first_statement text);
CREATE PROCEDURE commit_twice() LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO proc_log SELECT 'first', xact_start, statements, first_statement
      FROM txguard.transactions WHERE pid = pg_backend_pid();
    COMMIT;
    PERFORM pg_sleep(0.01);
    INSERT INTO proc_log SELECT 'second', xact_start, statements, first_statement
      FROM txguard.transactions WHERE pid = pg_backend_pid();
    COMMIT;
END $$;
CALL commit_twice();
SELECT label, statements, first_statement FROM proc_log ORDER BY label;
SELECT (SELECT xact_start FROM proc_log WHERE label = 'first') <
       (SELECT xact_start FROM proc_log WHERE label = 'second') AS new_transaction;

-- statements the client did not send are not counted: a deferred trigger
-- (like a foreign key check) that runs SQL at COMMIT
CREATE TABLE commit_log (statements bigint, last_statement text);
CREATE FUNCTION log_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO commit_log SELECT statements, last_statement
      FROM txguard.transactions WHERE pid = pg_backend_pid();
    RETURN NULL;
END $$;
CREATE TABLE deferred_t (x int);
CREATE CONSTRAINT TRIGGER deferred_log AFTER INSERT ON deferred_t
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION log_at_commit();
BEGIN;
INSERT INTO deferred_t VALUES (1);
SELECT 'last' AS l;
COMMIT;
SELECT * FROM commit_log;
DROP TABLE deferred_t;
DROP FUNCTION log_at_commit();
DROP TABLE commit_log;

-- statement texts: leading and trailing white space is dropped, and a long
-- statement is cut at a character boundary at txguard.track_statement_size bytes
   SELECT 'padded' AS p   \; SELECT '[' || first_statement || ']' AS first FROM txguard.transactions WHERE pid = pg_backend_pid();
SELECT repeat('é', 600) AS long \gset
SELECT octet_length(first_statement) <= 1024 AS within_limit,
       octet_length(first_statement) >= 1023 AS cut_near_limit,
       right(first_statement, 1) AS last_char,
       length(:'long') AS literal_chars
  FROM txguard.transactions WHERE pid = pg_backend_pid();

DROP PROCEDURE commit_twice();
DROP TABLE proc_log;
DROP FUNCTION three_statements();
