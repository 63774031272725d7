--
-- timeout: txguard.transaction_timeout and txguard.max_transaction_timeout
--
-- The DETAIL of a timeout error gives times in ms, which vary from run to
-- run; terse verbosity leaves it out, and t/002_timeout.pl checks it.
\set VERBOSITY terse
SELECT current_user AS superuser \gset
CREATE ROLE regress_txg_app LOGIN;
GRANT CREATE ON SCHEMA public TO regress_txg_app;
CREATE TABLE tt (id int PRIMARY KEY, v int);
INSERT INTO tt VALUES (1, 0);
GRANT SELECT, UPDATE ON tt TO regress_txg_app;

-- units
SET txguard.transaction_timeout = '30s';
SHOW txguard.transaction_timeout;
SELECT setting, unit FROM pg_settings WHERE name = 'txguard.transaction_timeout';
DO $$ BEGIN
    SET txguard.transaction_timeout = -1;
EXCEPTION WHEN invalid_parameter_value THEN
    RAISE NOTICE 'negative value rejected: %', SQLSTATE;
END $$;
SET txguard.transaction_timeout = 'soon';
RESET txguard.transaction_timeout;

-- a running statement is canceled; the session survives
SET txguard.transaction_timeout = '300ms';
SELECT pg_sleep(2);
\echo :LAST_ERROR_SQLSTATE
SELECT 'session survives' AS ok;

-- an explicit block: canceled, then aborted until ROLLBACK
BEGIN;
UPDATE tt SET v = v + 1 WHERE id = 1;
SELECT pg_sleep(2);
SELECT 1;
ROLLBACK;
SELECT v AS rolled_back FROM tt WHERE id = 1;

-- short transactions are never touched, however many
SET txguard.transaction_timeout = '600ms';
SELECT count(*) AS events_before FROM txguard.events \gset
SELECT pg_sleep(0.3);
SELECT pg_sleep(0.3);
BEGIN;
SELECT pg_sleep(0.2);
COMMIT;
SELECT pg_sleep(0.3) AS after_commit_nothing_fires;
SELECT count(*) - :events_before AS new_events FROM txguard.events;

-- the events, newest first
SELECT kind, statements, first_statement, last_statement, blocking,
       duration >= interval '300ms' AS took_limit
  FROM txguard.events ORDER BY event_time DESC LIMIT 2;

SET txguard.transaction_timeout = '300ms';

-- no escape: after ROLLBACK TO SAVEPOINT, only rollback is accepted
BEGIN;
SAVEPOINT s;
SELECT pg_sleep(2);
ROLLBACK TO SAVEPOINT s;
SELECT 1;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- and COMMIT rolls back, work done before the savepoint included
BEGIN;
UPDATE tt SET v = 100 WHERE id = 1;
SAVEPOINT s;
SELECT pg_sleep(2);
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT v AS not_committed FROM tt WHERE id = 1;
RESET txguard.transaction_timeout;

-- COMMIT AND CHAIN: the chained transaction has its own deadline
SET txguard.transaction_timeout = '20s';
BEGIN;
SELECT 1 AS before_chain;
COMMIT AND CHAIN;
SELECT deadline - xact_start AS chained_limit, statements
  FROM txguard.transactions WHERE pid = pg_backend_pid();
COMMIT;
SET txguard.transaction_timeout = '300ms';
BEGIN;
COMMIT AND CHAIN;
SELECT pg_sleep(2);
ROLLBACK;

-- after an error and ROLLBACK TO SAVEPOINT in the same query string, the
-- next statement is still bounded
BEGIN;
SAVEPOINT s;
SELECT 1 / count(*) FROM pg_class WHERE false;
ROLLBACK TO SAVEPOINT s \; SELECT pg_sleep(2);
ROLLBACK;

-- SET, SET LOCAL and RESET move the deadline of the running transaction
SET txguard.transaction_timeout = '20s';
BEGIN;
SELECT deadline - xact_start AS limit_20s FROM txguard.transactions WHERE pid = pg_backend_pid();
SET LOCAL txguard.transaction_timeout = '5s';
SELECT deadline - xact_start AS limit_5s FROM txguard.transactions WHERE pid = pg_backend_pid();
RESET txguard.transaction_timeout;
SELECT deadline - xact_start AS limit_off FROM txguard.transactions WHERE pid = pg_backend_pid();
SET LOCAL txguard.transaction_timeout = '200ms';
SELECT pg_sleep(2);
ROLLBACK;
-- SET LOCAL ends with its transaction
SHOW txguard.transaction_timeout;
RESET txguard.transaction_timeout;

-- the cap: only superusers may set it, and no session can lift it
SET txguard.max_transaction_timeout = '10s';
SET txguard.transaction_timeout = '1h';
BEGIN;
SELECT deadline - xact_start AS capped FROM txguard.transactions WHERE pid = pg_backend_pid();
COMMIT;
RESET txguard.transaction_timeout;
SET ROLE regress_txg_app;
SET txguard.max_transaction_timeout = 0;
RESET txguard.max_transaction_timeout;
SET txguard.transaction_timeout = 0;
BEGIN;
SELECT deadline - xact_start AS still_capped FROM txguard.transactions WHERE pid = pg_backend_pid();
COMMIT;
RESET ROLE;
ALTER ROLE regress_txg_app SET txguard.max_transaction_timeout = '300ms';
\c - regress_txg_app
SHOW txguard.max_transaction_timeout;
SET txguard.transaction_timeout = '1h';
SELECT pg_sleep(2);
\echo :LAST_ERROR_SQLSTATE
-- events: a role sees the statements of its own sessions only
SELECT kind, usename = current_user AS own, first_statement FROM txguard.events
 ORDER BY event_time DESC LIMIT 2;
\c - :superuser
RESET txguard.max_transaction_timeout;

-- statement_timeout first: the client sees the statement timeout
SET txguard.transaction_timeout = '1s';
SET statement_timeout = '100ms';
SELECT pg_sleep(2);
-- the transaction timeout first
SET txguard.transaction_timeout = '100ms';
SET statement_timeout = '1s';
SELECT pg_sleep(2);
RESET statement_timeout;
RESET txguard.transaction_timeout;

-- a prepared transaction is not subject to the timeout
SET txguard.transaction_timeout = '300ms';
BEGIN;
UPDATE tt SET v = 7 WHERE id = 1;
PREPARE TRANSACTION 'regress_txg_prepared';
RESET txguard.transaction_timeout;
SELECT pg_sleep(0.6);
SELECT gid FROM pg_prepared_xacts;
COMMIT PREPARED 'regress_txg_prepared';
SELECT v AS prepared_committed FROM tt WHERE id = 1;
SET txguard.transaction_timeout = '800ms';

-- each transaction a procedure commits has its own deadline
CREATE PROCEDURE sleepy_commits(n int, pause float8) LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..n LOOP
        PERFORM pg_sleep(pause);
        UPDATE tt SET v = i WHERE id = 1;
        COMMIT;
    END LOOP;
END $$;
CALL sleepy_commits(3, 0.3);
SELECT v AS three_commits FROM tt WHERE id = 1;
CALL sleepy_commits(1, 2);
SELECT v AS unchanged FROM tt WHERE id = 1;
RESET txguard.transaction_timeout;

DROP PROCEDURE sleepy_commits(int, float8);
DROP TABLE tt;
REVOKE CREATE ON SCHEMA public FROM regress_txg_app;
DROP ROLE regress_txg_app;
