--
-- upsert_probe: the existing-row lookup probes the arbiter index directly
-- (src/upsert_probe.c) and runs the SELECT statement when anything is
-- unusual.  The probe says so at DEBUG1 ("looked up the key in index ...
-- directly"); where that line is missing, the statement ran.  Results and
-- errors are the same either way.
--
CREATE ROLE regress_txg_probe_none;
CREATE ROLE regress_txg_probe_cols;
CREATE ROLE regress_txg_probe_some;
CREATE TABLE probe_users (
    id bigserial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text
);
INSERT INTO probe_users (email, name) VALUES ('a@x', 'A'), ('b@x', 'B');
GRANT INSERT ON probe_users TO regress_txg_probe_none;
GRANT SELECT (id, email, name), INSERT ON probe_users TO regress_txg_probe_cols;
GRANT SELECT (id, email), INSERT ON probe_users TO regress_txg_probe_some;
GRANT USAGE ON SEQUENCE probe_users_id_seq
    TO regress_txg_probe_none, regress_txg_probe_cols, regress_txg_probe_some;
-- row-level security enabled
CREATE TABLE probe_rls (id serial PRIMARY KEY, owner name NOT NULL, k text NOT NULL UNIQUE);
INSERT INTO probe_rls (owner, k) VALUES ('someone_else', 'hidden'), ('regress_txg_probe_cols', 'mine');
GRANT SELECT, INSERT ON probe_rls TO regress_txg_probe_cols;
GRANT USAGE ON SEQUENCE probe_rls_id_seq TO regress_txg_probe_cols;
ALTER TABLE probe_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY probe_rls_own ON probe_rls USING (owner = current_user)
    WITH CHECK (owner = current_user);
-- partitioned
CREATE TABLE probe_parted (k int PRIMARY KEY, v text) PARTITION BY RANGE (k);
CREATE TABLE probe_parted_1 PARTITION OF probe_parted FOR VALUES FROM (0) TO (100);
INSERT INTO probe_parted VALUES (1, 'one');
-- an expression and partial arbiter
CREATE TABLE probe_expr (id serial PRIMARY KEY, email text NOT NULL, live bool NOT NULL DEFAULT true);
CREATE UNIQUE INDEX probe_expr_lower ON probe_expr (lower(email)) WHERE live;
INSERT INTO probe_expr (email) VALUES ('Mixed@Case');
-- a btree operator class whose functions are in SQL
CREATE FUNCTION probe_cmp(int, int) RETURNS int LANGUAGE sql IMMUTABLE
    AS $$ SELECT CASE WHEN $1 < $2 THEN -1 WHEN $1 > $2 THEN 1 ELSE 0 END $$;
CREATE FUNCTION probe_lt(int, int) RETURNS bool LANGUAGE sql IMMUTABLE AS $$ SELECT $1 < $2 $$;
CREATE FUNCTION probe_le(int, int) RETURNS bool LANGUAGE sql IMMUTABLE AS $$ SELECT $1 <= $2 $$;
CREATE FUNCTION probe_eq(int, int) RETURNS bool LANGUAGE sql IMMUTABLE AS $$ SELECT $1 = $2 $$;
CREATE FUNCTION probe_ge(int, int) RETURNS bool LANGUAGE sql IMMUTABLE AS $$ SELECT $1 >= $2 $$;
CREATE FUNCTION probe_gt(int, int) RETURNS bool LANGUAGE sql IMMUTABLE AS $$ SELECT $1 > $2 $$;
CREATE OPERATOR <<< (LEFTARG = int, RIGHTARG = int, FUNCTION = probe_lt);
CREATE OPERATOR <<= (LEFTARG = int, RIGHTARG = int, FUNCTION = probe_le);
CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = probe_eq);
CREATE OPERATOR >>= (LEFTARG = int, RIGHTARG = int, FUNCTION = probe_ge);
CREATE OPERATOR >>> (LEFTARG = int, RIGHTARG = int, FUNCTION = probe_gt);
CREATE OPERATOR CLASS probe_int_ops FOR TYPE int USING btree AS
    OPERATOR 1 <<<, OPERATOR 2 <<=, OPERATOR 3 ===, OPERATOR 4 >>=,
    OPERATOR 5 >>>, FUNCTION 1 probe_cmp(int, int);
CREATE TABLE probe_sqlcmp (k int NOT NULL, v text);
CREATE UNIQUE INDEX probe_sqlcmp_k ON probe_sqlcmp (k probe_int_ops);
INSERT INTO probe_sqlcmp VALUES (7, 'seven');
-- a value stored out of line
CREATE TABLE probe_toast (k text PRIMARY KEY, big text);
ALTER TABLE probe_toast ALTER COLUMN big SET STORAGE EXTERNAL;
INSERT INTO probe_toast SELECT 'k', string_agg(md5(i::text), '') FROM generate_series(1, 200) i;

-- from here on, the helpers' DEBUG1 lines show where the probe ran
SET client_min_messages = debug1;

-- the existing row: found by the probe, nothing else runs
SELECT * FROM txguard.insert_or_get(NULL::probe_users, '{"email": "a@x", "name": "other"}');
SELECT (r).id, created, updated
  FROM txguard.upsert_created(NULL::probe_users, '{"email": "b@x", "name": "B"}');
-- a new key: the probe finds nothing, the insert runs
SELECT (r).email, (r).name, created
  FROM txguard.insert_or_get_created(NULL::probe_users, '{"email": "c@x", "name": "C"}');
-- a change to make: the probe finds the row, the update runs
SELECT (r).name, created, updated
  FROM txguard.upsert_created(NULL::probe_users, '{"email": "c@x", "name": "C2"}');

-- the probe sees what this transaction did before, as the statement does
BEGIN;
DELETE FROM probe_users WHERE email = 'c@x';
SELECT (r).email, (r).name, created
  FROM txguard.insert_or_get_created(NULL::probe_users, '{"email": "c@x", "name": "C3"}');
UPDATE probe_users SET name = 'C4' WHERE email = 'c@x';
SELECT (r).name, created FROM txguard.insert_or_get_created(NULL::probe_users, '{"email": "c@x"}');
ROLLBACK;

-- batch forms probe each key
SELECT (r).email, (r).name, created
  FROM txguard.insert_or_get_many_created(NULL::probe_users,
        '[{"email": "a@x"}, {"email": "d@x", "name": "D"}]')
 ORDER BY 1;

-- REPEATABLE READ: the probe, with the transaction's snapshot
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT name FROM txguard.insert_or_get(NULL::probe_users, '{"email": "a@x"}');
COMMIT;

-- SERIALIZABLE: the statement runs (its predicate locks are the plan's)
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT name FROM txguard.insert_or_get(NULL::probe_users, '{"email": "a@x"}');
COMMIT;

-- privileges: SELECT on every column is enough for the probe
SET ROLE regress_txg_probe_cols;
SELECT name FROM txguard.insert_or_get(NULL::probe_users, '{"email": "a@x"}');
RESET ROLE;
-- without SELECT, or with SELECT on some columns only, the statement runs
-- and raises its own error
SET ROLE regress_txg_probe_none;
SELECT name FROM txguard.insert_or_get(NULL::probe_users, '{"email": "a@x"}');
RESET ROLE;
SET ROLE regress_txg_probe_some;
SELECT name FROM txguard.insert_or_get(NULL::probe_users, '{"email": "a@x"}');
RESET ROLE;

-- row-level security enabled: the statement runs, with the policies
-- the owner is not subject to the policy, but the statement still runs
SELECT owner, k FROM txguard.insert_or_get(NULL::probe_rls, '{"k": "hidden", "owner": "x"}');
SET ROLE regress_txg_probe_cols;
SELECT owner, k FROM txguard.insert_or_get(NULL::probe_rls, '{"k": "mine", "owner": "regress_txg_probe_cols"}');
-- a row the policy hides: the insert conflicts, the lookup cannot see it
SELECT owner, k FROM txguard.insert_or_get(NULL::probe_rls, '{"k": "hidden", "owner": "regress_txg_probe_cols"}');
RESET ROLE;

-- partitioned tables: the statement runs (it reads every partition)
SELECT * FROM txguard.insert_or_get(NULL::probe_parted, '{"k": 1, "v": "x"}');
-- a partition on its own is an ordinary table
SELECT * FROM txguard.insert_or_get(NULL::probe_parted_1, '{"k": 1, "v": "x"}');

-- expression and partial arbiters are probed with the index's own keys
SELECT email, live FROM txguard.insert_or_get(NULL::probe_expr, '{"email": "MIXED@case"}');

-- a key compared by a function that is not built in: the statement runs
SELECT * FROM txguard.insert_or_get(NULL::probe_sqlcmp, '{"k": 7, "v": "x"}');

-- a row with a value stored out of line comes back whole
SELECT length((r).big), md5((r).big) = (SELECT md5(big) FROM probe_toast) AS same, created
  FROM txguard.insert_or_get_created(NULL::probe_toast, '{"k": "k"}');
SELECT updated
  FROM txguard.upsert_created(NULL::probe_toast,
        jsonb_build_object('k', 'k', 'big', (SELECT big FROM probe_toast)));

RESET client_min_messages;

DROP TABLE probe_users, probe_rls, probe_parted, probe_expr, probe_sqlcmp, probe_toast;
DROP OPERATOR CLASS probe_int_ops USING btree;
DROP OPERATOR FAMILY probe_int_ops USING btree;
DROP OPERATOR <<< (int, int), <<= (int, int), === (int, int), >>= (int, int), >>> (int, int);
DROP FUNCTION probe_cmp(int, int), probe_lt(int, int), probe_le(int, int),
    probe_eq(int, int), probe_ge(int, int), probe_gt(int, int);
DROP ROLE regress_txg_probe_none, regress_txg_probe_cols, regress_txg_probe_some;

-- rows older than a column added with a default: the probe returns the
-- default, as the lookup statement does, whether the row is stored in
-- line or has an out-of-line value; upsert sees nothing to change
CREATE TABLE probe_added (k text UNIQUE, big text);
ALTER TABLE probe_added ALTER big SET STORAGE EXTERNAL;
INSERT INTO probe_added VALUES ('toast', repeat('x', 10000)), ('plain', 'y');
ALTER TABLE probe_added ADD COLUMN c int DEFAULT 42;
SELECT k, c FROM txguard.insert_or_get(NULL::probe_added, '{"k": "toast"}');
SELECT k, c FROM txguard.insert_or_get(NULL::probe_added, '{"k": "plain"}');
SELECT (txguard.insert_or_get(NULL::probe_added, '{"k": "toast"}')).c;
SELECT k, c FROM txguard.insert_or_get_many(NULL::probe_added, '[{"k": "plain"}, {"k": "toast"}]');
SELECT xmin AS before FROM probe_added WHERE k = 'toast' \gset
SELECT created, updated FROM txguard.upsert_created(NULL::probe_added, '{"k": "toast", "c": 42}');
SELECT xmin = :'before'::xid AS same_version FROM probe_added WHERE k = 'toast';
DROP TABLE probe_added;
