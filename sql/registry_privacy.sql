--
-- registry_privacy: whose statement texts a role may see
--
-- As in pg_stat_activity, statement texts of another role's session are
-- NULL unless the caller is a superuser, a member of pg_read_all_stats or
-- a member of that role.  The session's role is the one that logged in.
--
CREATE ROLE regress_txg_reader LOGIN;
CREATE ROLE regress_txg_stats LOGIN IN ROLE pg_read_all_stats;
SELECT current_user AS superuser \gset

-- another role does not see the superuser session's texts
SET ROLE regress_txg_reader;
SELECT usename = session_user AS logged_in_user, statements,
       first_statement, last_statement
  FROM txguard.transactions WHERE pid = pg_backend_pid();
RESET ROLE;

-- members of pg_read_all_stats do
SET ROLE regress_txg_stats;
SELECT first_statement IS NOT NULL AS sees_text
  FROM txguard.transactions WHERE pid = pg_backend_pid();
RESET ROLE;

-- a role that logged in sees its own session
\c - regress_txg_reader
SELECT usename, first_statement IS NOT NULL AS sees_text
  FROM txguard.transactions WHERE pid = pg_backend_pid();
\c - :superuser
SELECT session_user <> 'regress_txg_reader' AS back_as_superuser;

DROP ROLE regress_txg_reader;
DROP ROLE regress_txg_stats;
