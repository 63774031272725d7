--
-- durations: txguard.durations, txguard.duration_histogram and
-- txguard.would_time_out() on transactions of known durations
--
-- A transaction counts for the application_name the session has when it
-- ends: each SET application_name below is counted under the name it sets.
SELECT txguard.reset_stats();
SET application_name = 'regress_dur_known';
BEGIN;
SELECT pg_sleep(0.06);
COMMIT;
SELECT pg_sleep(0.06);
BEGIN;
SELECT pg_sleep(0.03);
SELECT pg_sleep(0.03);
COMMIT;
SET application_name = 'regress_dur_reader';

-- four transactions: the SET, and three of at least 60 ms each
SELECT usename = current_user AS login_role, transactions,
       total >= interval '180 ms' AS total_ok,
       total - mean * transactions BETWEEN interval '0' AND interval '4 us' AS mean_of_total,
       mean >= interval '45 ms' AS mean_ok,
       max >= interval '60 ms' AS max_ok,
       p50 > interval '50 ms' AND p50 <= max AS p50_in_bucket,
       p95 > interval '50 ms' AND p95 <= p99 AND p99 <= max AS p95_p99_ok,
       max_idle < max AS idle_ok
  FROM txguard.durations
 WHERE datname = current_database() AND application_name = 'regress_dur_known';

-- the buckets are cumulative; none of the three is 50 ms or shorter
SELECT count(*) AS bounds,
       count(*) FILTER (WHERE le IS NULL) AS inf_rows,
       min(count) FILTER (WHERE le = interval '1 ms') <= 1 AS first_ok,
       max(count) FILTER (WHERE le = interval '50 ms') AS upto_50ms,
       max(count) FILTER (WHERE le IS NULL) AS total,
       bool_and(count <= total_after) AS cumulative
  FROM (SELECT le, count,
               lead(count, 1, count) OVER (ORDER BY le NULLS LAST) AS total_after
          FROM txguard.duration_histogram
         WHERE datname = current_database()
           AND application_name = 'regress_dur_known') h;

-- the bounds: 1-2-5 in ms, s and min (30 in place of 50), up to 1 h
SELECT string_agg(le::text, ' ' ORDER BY le NULLS LAST) AS bounds
  FROM txguard.duration_histogram
 WHERE datname = current_database() AND application_name = 'regress_dur_known';

-- what a limit would have ended: exact at a bound
SELECT application_name, transactions, ended_longer, counted_from, exact,
       open_longer
  FROM txguard.would_time_out('50 ms')
 WHERE datname = current_database() AND application_name = 'regress_dur_known';
-- rounded down to the bound below otherwise, with a notice
SELECT application_name, transactions, ended_longer, counted_from, exact
  FROM txguard.would_time_out('55 ms')
 WHERE datname = current_database() AND application_name = 'regress_dur_known';
-- beyond the last bound: counted from 1 h; below the first, from 0
SELECT counted_from, exact, ended_longer
  FROM txguard.would_time_out('2 hours')
 WHERE datname = current_database() AND application_name = 'regress_dur_known';
SELECT counted_from, exact, ended_longer
  FROM txguard.would_time_out('0')
 WHERE datname = current_database() AND application_name = 'regress_dur_known';
SELECT counted_from, exact FROM txguard.would_time_out('1 month') LIMIT 1;
-- a limit no duration reaches: counted from itself, nothing ended longer
SELECT counted_from, exact, ended_longer
  FROM txguard.would_time_out('178000000 years')
 WHERE datname = current_database() AND application_name = 'regress_dur_known';
-- bad limits (the second is negative in all: months count as 30 days)
SELECT * FROM txguard.would_time_out('-1 s');
SELECT * FROM txguard.would_time_out('1 mon -200000000 days');
SELECT * FROM txguard.would_time_out(NULL);
SELECT * FROM txguard._durations_longer('3 ms');

-- the key is the login role: SET ROLE does not change it
CREATE ROLE regress_dur_role;
SET application_name = 'regress_dur_role';
SET ROLE regress_dur_role;
SELECT 1 AS as_other_role;
RESET ROLE;
SET application_name = 'regress_dur_reader';
SELECT usename = current_user AS login_role, transactions
  FROM txguard.durations
 WHERE datname = current_database() AND application_name = 'regress_dur_role';
DROP ROLE regress_dur_role;

-- SET LOCAL application_name, one name per transaction: each has its own
-- key, and the name before comes back after each
SET application_name = 'regress_dur_base';
BEGIN;
SET LOCAL application_name = 'regress_dur_req1';
SELECT 1 AS req1;
COMMIT;
BEGIN;
SET LOCAL application_name = 'regress_dur_req2';
SELECT 1 AS req2;
COMMIT;
BEGIN;
SET LOCAL application_name = 'regress_dur_req3';
SELECT 1 AS req3;
COMMIT;
SELECT 1 AS base;
-- a SET rolled back, then another SET
BEGIN;
SET application_name = 'regress_dur_rolled_back';
ROLLBACK;
SET application_name = 'regress_dur_after';
SELECT 1 AS after;
SELECT 2 AS after;
SET application_name = 'regress_dur_reader';
SELECT application_name, transactions FROM txguard.durations
 WHERE datname = current_database()
   AND application_name IN ('regress_dur_base', 'regress_dur_req1',
                            'regress_dur_req2', 'regress_dur_req3',
                            'regress_dur_rolled_back', 'regress_dur_after')
 ORDER BY application_name COLLATE "C";

-- everyone may read the durations
CREATE ROLE regress_dur_reader;
SET ROLE regress_dur_reader;
SELECT count(*) > 0 AS readable FROM txguard.durations;
SELECT count(*) > 0 AS readable FROM txguard.duration_histogram;
SELECT count(*) > 0 AS readable FROM txguard.would_time_out('1 s');
RESET ROLE;
DROP ROLE regress_dur_reader;

-- txguard.stats' longest duration is the durations' longest
SELECT s.max_duration = (SELECT max(max) FROM txguard.durations d
                          WHERE d.datname = current_database()) AS same_max
  FROM txguard.stats s WHERE s.datname = current_database();

-- reset clears them
SELECT txguard.reset_stats();
SELECT count(*) AS known_rows FROM txguard.durations
 WHERE application_name = 'regress_dur_known';
SELECT count(*) AS known_buckets FROM txguard.duration_histogram
 WHERE application_name = 'regress_dur_known';
RESET application_name;
