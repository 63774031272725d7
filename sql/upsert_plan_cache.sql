--
-- upsert_plan_cache: the helpers keep at most txguard.max_cached_plans
-- prepared statements per backend, the least recently used going first;
-- results stay the same however often plans are evicted and prepared again
--
SHOW txguard.max_cached_plans;
SET txguard.max_cached_plans = 0;
SET txguard.max_cached_plans = 2;

-- the helpers' prepared statements alive in this backend (0 before 14,
-- which has no pg_backend_memory_contexts)
CREATE FUNCTION cached_helper_plans() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    IF to_regclass('pg_catalog.pg_backend_memory_contexts') IS NULL THEN
        RETURN 0;
    END IF;
    EXECUTE $q$SELECT count(*) FROM pg_catalog.pg_backend_memory_contexts
                WHERE name = 'CachedPlanSource'
                  AND ident ~ '^(SELECT txg_row FROM |INSERT INTO \S+ AS txg_row |UPDATE (ONLY )?\S+ AS txg_row )'$q$
       INTO n;
    RETURN n;
END $$;

CREATE TABLE pc_a (k int PRIMARY KEY, v text, w text);
CREATE TABLE pc_b (k text PRIMARY KEY, n int);
CREATE UNIQUE INDEX pc_b_lower ON pc_b (lower(k));

-- many statement shapes, each used again after it was evicted
SELECT * FROM txguard.upsert(NULL::pc_a, '{"k": 1, "v": "a"}');
SELECT * FROM txguard.upsert(NULL::pc_a, '{"k": 1, "w": "b"}');
SELECT * FROM txguard.upsert(NULL::pc_b, '{"k": "x", "n": 1}');
SELECT * FROM txguard.insert_or_get(NULL::pc_a, '{"k": 2, "v": "c", "w": "d"}');
SELECT * FROM txguard.upsert(NULL::pc_a, '{"k": 1, "v": "e"}');
SELECT * FROM txguard.upsert(NULL::pc_a, '{"k": 1, "w": "f"}');
SELECT * FROM txguard.upsert_many(NULL::pc_b, '[{"k": "x", "n": 2}, {"k": "y", "n": 3}]');
SELECT * FROM txguard.upsert(NULL::pc_b, '{"k": "X", "n": 4}', ARRAY['lower(k)']);
SELECT * FROM txguard.insert_or_get(NULL::pc_a, '{"k": 2}');
SELECT cached_helper_plans() <= 2 AS bounded;

-- round and round through more shapes than the cache holds
DO $$
DECLARE
    i int;
BEGIN
    FOR i IN 1..60 LOOP
        PERFORM txguard.upsert(NULL::pc_a,
            jsonb_build_object('k', i % 7, CASE i % 3 WHEN 0 THEN 'v' WHEN 1 THEN 'w' ELSE 'k' END, (i % 7)::text));
        PERFORM txguard.upsert(NULL::pc_b, jsonb_build_object('k', 'k' || (i % 5), 'n', i));
        PERFORM txguard.insert_or_get(NULL::pc_b, jsonb_build_object('k', 'K' || (i % 5)), ARRAY['lower(k)']);
    END LOOP;
END $$;
SELECT cached_helper_plans() <= 2 AS bounded;
SELECT * FROM pc_a ORDER BY k;
SELECT * FROM pc_b ORDER BY k;

-- a single plan at a time still does the whole job
SET txguard.max_cached_plans = 1;
SELECT (r).*, created, updated FROM txguard.upsert_created(NULL::pc_a, '{"k": 10, "v": "new"}');
SELECT (r).*, created, updated FROM txguard.upsert_created(NULL::pc_a, '{"k": 10, "v": "changed"}');
SELECT (r).*, created, updated FROM txguard.upsert_created(NULL::pc_a, '{"k": 10, "v": "changed"}');
SELECT cached_helper_plans() <= 1 AS bounded;
RESET txguard.max_cached_plans;
SELECT * FROM txguard.upsert(NULL::pc_a, '{"k": 10, "v": "again"}');

-- a schema renamed: the statements kept name the table anew
CREATE SCHEMA pc_s1;
CREATE TABLE pc_s1.r (k int PRIMARY KEY, v text);
SELECT * FROM txguard.insert_or_get(NULL::pc_s1.r, '{"k": 1, "v": "a"}');
ALTER SCHEMA pc_s1 RENAME TO pc_s2;
SELECT * FROM txguard.insert_or_get(NULL::pc_s2.r, '{"k": 2, "v": "b"}');
SELECT * FROM txguard.upsert(NULL::pc_s2.r, '{"k": 1, "v": "c"}');
SELECT * FROM pc_s2.r ORDER BY k;
DROP SCHEMA pc_s2 CASCADE;
