--
-- upsert_lock: txguard.lock, a named transaction-scoped mutex
--
-- (Waiting and timeouts between sessions: specs/upsert_lock.spec.)
--

-- held until the transaction ends, shown in pg_locks in its own namespace
BEGIN;
SELECT txguard.lock('month-end close');
SELECT locktype, mode, granted, objsubid,
       ((classid::bigint << 32) | objid::bigint) = txguard.lock_key('month-end close') AS same_key
  FROM pg_locks
 WHERE locktype = 'advisory' AND pid = pg_backend_pid();
-- re-entrant within the transaction
SELECT txguard.lock('month-end close', '1 second');
COMMIT;
SELECT count(*) AS held_after_commit FROM pg_locks
 WHERE locktype = 'advisory' AND pid = pg_backend_pid();

-- released on rollback too
BEGIN;
SELECT txguard.lock('k1');
ROLLBACK;
SELECT count(*) AS held_after_rollback FROM pg_locks
 WHERE locktype = 'advisory' AND pid = pg_backend_pid();

-- separate from pg_advisory_lock's key space
BEGIN;
SELECT pg_advisory_xact_lock(txguard.lock_key('k2'));
SELECT txguard.lock('k2', '0');
SELECT objsubid, count(*) FROM pg_locks
 WHERE locktype = 'advisory' AND pid = pg_backend_pid()
 GROUP BY objsubid ORDER BY objsubid;
COMMIT;

-- the key is a 64-bit hash of the text's bytes
SELECT txguard.lock_key('month-end close') = txguard.lock_key('month-end ' || 'close') AS stable;
SELECT txguard.lock_key('a') <> txguard.lock_key('A') AS case_sensitive;

-- arguments
SELECT txguard.lock(NULL);
SELECT txguard.lock('k', '-1 second');
SELECT txguard.lock_key(NULL) IS NULL AS strict;
-- the sign is checked before milliseconds are rounded
SELECT txguard.lock('k', '-1 ms');
SELECT txguard.lock('k', '-0.5 ms');
SELECT txguard.lock('k', '-1 us');
SELECT txguard.lock('k', '1 day -0.5 ms');
SELECT txguard.lock('k', '0.5 ms');
