--
-- stats: txguard.stats and txguard.reset_stats()
--
SELECT txguard.reset_stats();
BEGIN;
SELECT 1 AS one;
ROLLBACK;
SELECT 1 / count(*) FROM pg_class WHERE false;
BEGIN;
SELECT 1 / count(*) FROM pg_class WHERE false;
ROLLBACK;
BEGIN;
SELECT 1 AS two;
COMMIT;
-- reset_stats committed after the reset, and so did the block above
SELECT committed, rolled_back, failed, abandoned, timed_out, terminated,
       blocker_terminated, max_duration > interval '0' AS has_max,
       stats_reset <= now() AS reset_before_now
  FROM txguard.stats WHERE datname = current_database();

-- only superusers may reset, unless granted
CREATE ROLE regress_txg_resetter;
SET ROLE regress_txg_resetter;
SELECT txguard.reset_stats();
RESET ROLE;
GRANT EXECUTE ON FUNCTION txguard.reset_stats() TO regress_txg_resetter;
SET ROLE regress_txg_resetter;
SELECT txguard.reset_stats();
-- only the reset's own transaction has been counted since
SELECT committed, rolled_back, failed FROM txguard.stats WHERE datname = current_database();
RESET ROLE;
REVOKE EXECUTE ON FUNCTION txguard.reset_stats() FROM regress_txg_resetter;
DROP ROLE regress_txg_resetter;
