--
-- upsert: txguard.insert_or_get and txguard.upsert, one row at a time
--
-- The existing-row path must write nothing; the arbiter is inferred from
-- the keys of vals or named by conflict_columns.
--
CREATE TABLE users (
    id bigserial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text,
    plan text NOT NULL DEFAULT 'free',
    visits int DEFAULT 0
);
CREATE TABLE users_audit (op text, email text);
CREATE FUNCTION users_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.users_audit VALUES (TG_OP, NEW.email);
    RETURN NEW;
END $$;
CREATE TRIGGER users_audit AFTER INSERT OR UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION users_audit();

-- a new row: inserted, missing keys take the column default
SELECT * FROM txguard.insert_or_get(NULL::users, '{"email": "ann@example.com", "name": "Ann"}');

-- the same key again: the existing row, whatever the other values say
SELECT * FROM txguard.insert_or_get(NULL::users, '{"email": "ann@example.com", "name": "Other"}');

-- the existing-row path writes nothing: no transaction id, no tuple, no
-- trigger, no sequence value
BEGIN;
SELECT id, email FROM txguard.insert_or_get(NULL::users, '{"email": "ann@example.com"}');
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_xid;
COMMIT;
SELECT last_value FROM users_id_seq;
SELECT * FROM users_audit;

-- created tells the two paths apart
SELECT (r).id, (r).email, created
  FROM txguard.insert_or_get_created(NULL::users, '{"email": "bob@example.com"}');
SELECT (r).id, (r).email, created
  FROM txguard.insert_or_get_created(NULL::users, '{"email": "bob@example.com"}');
SELECT (r).*, created
  FROM txguard.insert_or_get_created(NULL::users, '{"email": "bob@example.com"}');

-- the primary key wins when vals has all its columns
SELECT * FROM txguard.insert_or_get(NULL::users, '{"id": 1, "email": "changed@example.com"}');

-- upsert: updates the given non-key columns of the existing row
SELECT * FROM txguard.upsert(NULL::users, '{"email": "ann@example.com", "name": "Ann B", "visits": 3}');
-- ... and writes nothing when nothing would change
BEGIN;
SELECT (r).name, created, updated
  FROM txguard.upsert_created(NULL::users, '{"email": "ann@example.com", "name": "Ann B"}');
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_xid;
COMMIT;
-- update_columns restricts what is updated; other given columns only go
-- into a new row
SELECT (r).name, (r).plan, created, updated
  FROM txguard.upsert_created(NULL::users, '{"email": "ann@example.com", "name": "X", "plan": "pro"}',
                              update_columns => ARRAY['plan']);
SELECT (r).email, (r).name, (r).plan, created, updated
  FROM txguard.upsert_created(NULL::users, '{"email": "cy@example.com", "name": "Cy", "plan": "pro"}',
                              update_columns => ARRAY['plan']);
-- an empty update_columns makes upsert an insert_or_get
SELECT (r).name, created, updated
  FROM txguard.upsert_created(NULL::users, '{"email": "cy@example.com", "name": "Cyril"}',
                              update_columns => '{}');
-- null is a value like any other
SELECT (r).name, updated
  FROM txguard.upsert_created(NULL::users, '{"email": "cy@example.com", "name": null}');
SELECT op, email FROM users_audit ORDER BY op, email;
SELECT id, email, name, plan, visits FROM users ORDER BY id;

--
-- conflict targets
--

-- an expression index: the lookup uses lower(email) like the index does
CREATE TABLE accounts (id serial PRIMARY KEY, email text NOT NULL, note text);
CREATE UNIQUE INDEX accounts_email_ci ON accounts (lower(email));
SELECT * FROM txguard.insert_or_get(NULL::accounts, '{"email": "Dee@Example.com", "note": "first"}');
SELECT * FROM txguard.insert_or_get(NULL::accounts, '{"email": "DEE@example.COM", "note": "second"}');
-- named by the column it uses, or by its expression as pg_indexes shows it
SELECT id FROM txguard.insert_or_get(NULL::accounts, '{"email": "dee@example.com"}', ARRAY['email']);
SELECT id FROM txguard.insert_or_get(NULL::accounts, '{"email": "dee@example.com"}', ARRAY['lower(email)']);
SELECT * FROM txguard.upsert(NULL::accounts, '{"email": "dee@EXAMPLE.com", "note": "updated"}');
-- two indexes on email: the expression picks one, the column name is ambiguous
CREATE UNIQUE INDEX accounts_email ON accounts (email);
SELECT id FROM txguard.insert_or_get(NULL::accounts, '{"email": "Dee@Example.com"}', ARRAY['lower(email)']);
SELECT id FROM txguard.insert_or_get(NULL::accounts, '{"email": "Dee@Example.com"}', ARRAY['email']);
SELECT id FROM txguard.insert_or_get(NULL::accounts, '{"email": "Dee@Example.com"}');
DROP INDEX accounts_email;

-- a partial unique index, when the row satisfies its predicate; columns
-- missing from vals count with their default
CREATE TABLE subscriptions (
    id serial PRIMARY KEY,
    email text NOT NULL,
    cancelled_at date,
    status text NOT NULL DEFAULT 'active'
);
CREATE UNIQUE INDEX subscriptions_live ON subscriptions (email) WHERE cancelled_at IS NULL;
SELECT * FROM txguard.insert_or_get(NULL::subscriptions, '{"email": "eve@example.com"}');
SELECT * FROM txguard.insert_or_get(NULL::subscriptions, '{"email": "eve@example.com", "cancelled_at": null}');
UPDATE subscriptions SET cancelled_at = '2024-01-01';
SELECT * FROM txguard.insert_or_get(NULL::subscriptions, '{"email": "eve@example.com"}');
SELECT * FROM txguard.insert_or_get(NULL::subscriptions, '{"email": "eve@example.com", "cancelled_at": "2024-02-01"}');
SELECT id, email, cancelled_at, status FROM subscriptions ORDER BY id;
CREATE TABLE coupons (code text NOT NULL, status text NOT NULL DEFAULT 'active');
CREATE UNIQUE INDEX coupons_active ON coupons (code) WHERE status = 'active';
SELECT * FROM txguard.insert_or_get(NULL::coupons, '{"code": "C1"}');
SELECT * FROM txguard.insert_or_get(NULL::coupons, '{"code": "C1", "status": "active"}');
SELECT * FROM txguard.insert_or_get(NULL::coupons, '{"code": "C1", "status": "used"}');
SELECT * FROM txguard.insert_or_get(NULL::coupons, '{"code": "C1", "status": "used"}', ARRAY['code']);

-- a multi-column key, given in any order
CREATE TABLE memberships (org int, member int, role text, PRIMARY KEY (org, member));
SELECT * FROM txguard.upsert(NULL::memberships, '{"member": 7, "org": 1, "role": "admin"}');
SELECT * FROM txguard.upsert(NULL::memberships, '{"role": "owner", "org": 1, "member": 7}', ARRAY['member', 'org']);

-- a partitioned table
CREATE TABLE events (region text, id int, payload jsonb, PRIMARY KEY (region, id))
    PARTITION BY LIST (region);
CREATE TABLE events_eu PARTITION OF events FOR VALUES IN ('eu');
CREATE TABLE events_us PARTITION OF events FOR VALUES IN ('us');
SELECT * FROM txguard.insert_or_get(NULL::events, '{"region": "eu", "id": 1, "payload": {"a": 1}}');
SELECT * FROM txguard.insert_or_get(NULL::events, '{"region": "eu", "id": 1, "payload": {"a": 2}}');
SELECT * FROM txguard.upsert(NULL::events, '{"region": "us", "id": 1, "payload": [1, 2]}');
SELECT * FROM txguard.upsert(NULL::events, '{"region": "us", "id": 1, "payload": [3]}');
SELECT tableoid::regclass AS partition, * FROM events ORDER BY region, id;

-- ambiguous: two unique indexes both covered by vals
CREATE TABLE pairs (a int UNIQUE, b int UNIQUE, c int);
SELECT * FROM txguard.insert_or_get(NULL::pairs, '{"a": 1, "b": 1}');
SELECT * FROM txguard.insert_or_get(NULL::pairs, '{"a": 1, "b": 1}', ARRAY['b']);
-- a duplicate of the same definition is no ambiguity
CREATE UNIQUE INDEX pairs_a_again ON pairs (a);
SELECT * FROM txguard.insert_or_get(NULL::pairs, '{"a": 1, "c": 3}');

-- none: no unique index on the given columns
SELECT * FROM txguard.insert_or_get(NULL::pairs, '{"c": 1}');
SELECT * FROM txguard.insert_or_get(NULL::pairs, '{"a": 1, "c": 1}', ARRAY['c']);
SELECT * FROM txguard.insert_or_get(NULL::pairs, '{"a": 1, "c": 1}', ARRAY['a', 'c']);

-- exclusion constraints and deferrable unique constraints cannot arbitrate
CREATE TABLE bookings (room int, during int4range, EXCLUDE USING gist (during WITH &&));
SELECT * FROM txguard.insert_or_get(NULL::bookings, '{"room": 1, "during": "[1,5)"}', ARRAY['during']);
CREATE TABLE tickets (code text CONSTRAINT tickets_code UNIQUE DEFERRABLE, holder text);
SELECT * FROM txguard.insert_or_get(NULL::tickets, '{"code": "A1"}');
SELECT * FROM txguard.insert_or_get(NULL::tickets, '{"code": "A1"}', ARRAY['code']);

-- a NULL key under an ordinary unique index would insert every time
SELECT * FROM txguard.insert_or_get(NULL::pairs, '{"a": null, "c": 1}');
SELECT * FROM txguard.insert_or_get(NULL::accounts, '{"email": null}', ARRAY['lower(email)']);

--
-- columns: defaults, identity, generated, types
--
CREATE SEQUENCE item_seq;
CREATE TABLE items (
    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku text UNIQUE,
    serial int NOT NULL DEFAULT nextval('item_seq'),
    price numeric(8,2),
    qty int,
    total numeric GENERATED ALWAYS AS (price * qty) STORED,
    tags text[],
    attrs jsonb,
    raw json,
    code varchar(3),
    made date DEFAULT '2000-01-01',
    alt int GENERATED BY DEFAULT AS IDENTITY
);
SELECT * FROM txguard.insert_or_get(NULL::items,
    '{"sku": "S1", "price": 1.005, "qty": "2", "tags": ["a", null, "c d"],
      "attrs": {"k": [1, 2]}, "raw": {"z": 1, "a": 2}, "code": "abc"}');
-- no identity, sequence or default evaluated on the existing-row path
SELECT id, sku, serial, alt FROM txguard.insert_or_get(NULL::items, '{"sku": "S1"}');
SELECT last_value, is_called FROM item_seq;
-- strings are the type's text form; JSON scalars fit any type that takes them
SELECT sku, price, qty, tags, attrs, made, alt FROM txguard.insert_or_get(NULL::items,
    '{"sku": "S2", "price": "3", "qty": 4, "tags": "{x,y}", "attrs": "text", "made": "2024-02-29", "alt": 42}');
SELECT sku, attrs, raw FROM txguard.insert_or_get(NULL::items, '{"sku": "S3", "attrs": 5, "raw": true}');
-- upsert compares stored images: 3.00 and "3" are the same numeric(8,2)
SELECT (r).price, updated FROM txguard.upsert_created(NULL::items, '{"sku": "S2", "price": 3}');
SELECT (r).price, (r).total, updated FROM txguard.upsert_created(NULL::items, '{"sku": "S2", "price": 3.5}');

-- errors, each before anything is written
SELECT * FROM txguard.insert_or_get(NULL::items, '{"sku": "E1", "id": 5}');
SELECT * FROM txguard.insert_or_get(NULL::items, '{"sku": "E1", "total": 5}');
SELECT * FROM txguard.insert_or_get(NULL::items, '{"sku": "E1", "qty": "many"}');
SELECT * FROM txguard.insert_or_get(NULL::items, '{"sku": "E1", "qty": 1.5}');
SELECT * FROM txguard.insert_or_get(NULL::items, '{"sku": "E1", "qty": {"n": 1}}');
SELECT * FROM txguard.insert_or_get(NULL::items, '{"sku": "E1", "qty": [1]}');
SELECT * FROM txguard.insert_or_get(NULL::items, '{"sku": "E1", "tags": [["a"]]}');
SELECT * FROM txguard.insert_or_get(NULL::items, '{"sku": "E1", "code": "abcd"}');
SELECT * FROM txguard.insert_or_get(NULL::items, '{"sku": "E1", "made": "yesterday-ish"}');
SELECT * FROM txguard.insert_or_get(NULL::items, '{"sku": "E1", "no_such": 1}');
SELECT * FROM txguard.insert_or_get(NULL::items, '{"sku": "E1", "Sku": 1}');
SELECT count(*) AS items, (SELECT last_value FROM item_seq) AS seq FROM items;

--
-- arguments
--
SELECT * FROM txguard.insert_or_get(NULL::users, NULL);
SELECT * FROM txguard.insert_or_get(NULL::users, '[{"email": "x"}]');
SELECT * FROM txguard.insert_or_get(NULL::users, '"x"');
SELECT * FROM txguard.insert_or_get(NULL::users, '{}');
SELECT * FROM txguard.insert_or_get(NULL::users, '{"email": "x"}', '{}');
SELECT * FROM txguard.insert_or_get(NULL::users, '{"email": "x"}', ARRAY['email', NULL]);
SELECT * FROM txguard.insert_or_get(NULL::users, '{"email": "x"}', '{{email}}');
SELECT * FROM txguard.insert_or_get(NULL::users, '{"email": "x"}', ARRAY['nope']);
SELECT * FROM txguard.insert_or_get(NULL::users, '{"name": "x"}', ARRAY['email']);
SELECT * FROM txguard.upsert(NULL::users, '{"email": "x", "name": "y"}', NULL, ARRAY['email']);
SELECT * FROM txguard.upsert(NULL::users, '{"email": "x", "name": "y"}', NULL, ARRAY['plan']);
SELECT * FROM txguard.upsert(NULL::users, '{"email": "x", "name": "y"}', NULL, ARRAY['nope']);
SELECT * FROM txguard.insert_or_get(NULL::int, '{"a": 1}');
SELECT * FROM txguard.insert_or_get(NULL::record, '{"a": 1}');
CREATE VIEW users_view AS SELECT * FROM users;
SELECT * FROM txguard.insert_or_get(NULL::users_view, '{"email": "x"}');
CREATE TYPE pair AS (a int, b int);
SELECT * FROM txguard.insert_or_get(NULL::pair, '{"a": 1}');
SELECT * FROM txguard.insert_or_get(NULL, '{"a": 1}');
SELECT count(*) AS users FROM users;

--
-- BEFORE triggers
--
-- a trigger that rewrites the key: the second call conflicts on a key the
-- lookup does not search for, and gives up after a bounded number of tries
CREATE TABLE tags (id serial PRIMARY KEY, name text UNIQUE);
CREATE FUNCTION tags_upper() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.name := upper(NEW.name); RETURN NEW; END $$;
CREATE TRIGGER tags_upper BEFORE INSERT ON tags FOR EACH ROW EXECUTE FUNCTION tags_upper();
SELECT * FROM txguard.insert_or_get(NULL::tags, '{"name": "red"}');
SELECT * FROM txguard.insert_or_get(NULL::tags, '{"name": "red"}');
SELECT * FROM txguard.insert_or_get(NULL::tags, '{"name": "RED"}');
-- a trigger that fills in a column: fine
CREATE TABLE notes (id serial PRIMARY KEY, k text UNIQUE, body text, edited int DEFAULT 0);
CREATE FUNCTION notes_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.edited := OLD.edited + 1; RETURN NEW; END $$;
CREATE TRIGGER notes_touch BEFORE UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION notes_touch();
SELECT * FROM txguard.upsert(NULL::notes, '{"k": "n1", "body": "a"}');
SELECT * FROM txguard.upsert(NULL::notes, '{"k": "n1", "body": "b"}');
SELECT * FROM txguard.upsert(NULL::notes, '{"k": "n1", "body": "b"}');
-- a BEFORE UPDATE trigger that skips the row
CREATE FUNCTION notes_freeze() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RETURN NULL; END $$;
CREATE TRIGGER notes_freeze BEFORE UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION notes_freeze();
SELECT * FROM txguard.upsert(NULL::notes, '{"k": "n1", "body": "c"}');

--
-- the plan cache follows changes of the table and its indexes
--
CREATE TABLE kv (k text, v int);
CREATE UNIQUE INDEX kv_k ON kv (k);
SELECT * FROM txguard.upsert(NULL::kv, '{"k": "a", "v": 1}');
ALTER TABLE kv ADD COLUMN w int DEFAULT 7;
SELECT * FROM txguard.upsert(NULL::kv, '{"k": "a", "v": 2}');
ALTER TABLE kv RENAME COLUMN k TO key;
SELECT * FROM txguard.upsert(NULL::kv, '{"key": "a", "v": 3}');
SELECT * FROM txguard.upsert(NULL::kv, '{"k": "a", "v": 3}');
DROP INDEX kv_k;
SELECT * FROM txguard.upsert(NULL::kv, '{"key": "a", "v": 4}');
CREATE UNIQUE INDEX kv_key_ci ON kv (lower(key));
SELECT * FROM txguard.upsert(NULL::kv, '{"key": "A", "v": 5}');
ALTER TABLE kv DROP COLUMN v;
SELECT * FROM txguard.upsert(NULL::kv, '{"key": "A", "w": 6}');
ALTER TABLE kv ALTER COLUMN w TYPE text;
SELECT * FROM txguard.upsert(NULL::kv, '{"key": "b", "w": "six"}');
SELECT * FROM kv ORDER BY key;

--
-- int2vector and oidvector columns from JSON arrays: built as their own
-- input function builds them (lower bound 0)
--
CREATE TABLE vectors (k int PRIMARY KEY, v int2vector, o oidvector);
SELECT k, v, o, v = '7 8'::int2vector AS v_equal, o = '1 2 3'::oidvector AS o_equal,
       v[0] AS v0, v[1] AS v1, o[2] AS o2
  FROM txguard.insert_or_get(NULL::vectors, '{"k": 1, "v": [7, 8], "o": [1, 2, 3]}');
SELECT k, v, o, v = ''::int2vector AS v_empty
  FROM txguard.insert_or_get(NULL::vectors, '{"k": 2, "v": [], "o": []}');
SELECT k, v FROM txguard.insert_or_get(NULL::vectors, '{"k": 3, "v": "4 5"}');
SELECT * FROM txguard.insert_or_get(NULL::vectors, '{"k": 4, "v": [7, null]}');
SELECT * FROM txguard.insert_or_get(NULL::vectors, '{"k": 4, "v": [7, "x"]}');
SELECT * FROM txguard.insert_or_get(NULL::vectors, '{"k": 4, "o": [-1]}');
SELECT k, v = '7 8'::int2vector AS found FROM vectors WHERE v = '7 8'::int2vector;

--
-- a partial index's predicate sees the default the INSERT will use, a
-- domain's when the column has none
--
CREATE DOMAIN live_flag AS boolean DEFAULT true;
CREATE TABLE members (id serial PRIMARY KEY, email text NOT NULL, live live_flag);
CREATE UNIQUE INDEX members_email_live ON members (email) WHERE live;
SELECT (r).email, (r).live, created
  FROM txguard.insert_or_get_created(NULL::members, '{"email": "a@example.com"}');
SELECT (r).email, (r).live, created
  FROM txguard.insert_or_get_created(NULL::members, '{"email": "a@example.com"}');
CREATE DOMAIN claim_status AS text DEFAULT 'active';
CREATE TABLE claims (id serial PRIMARY KEY, k text NOT NULL, status claim_status);
CREATE UNIQUE INDEX claims_k_unset ON claims (k) WHERE status IS NULL;
SELECT (r).k, created FROM txguard.insert_or_get_created(NULL::claims, '{"k": "x"}');
SELECT (r).k, created FROM txguard.insert_or_get_created(NULL::claims, '{"k": "x"}');
SELECT (r).k, (r).status, created
  FROM txguard.insert_or_get_created(NULL::claims, '{"k": "x", "status": null}');
SELECT count(*) AS claims FROM claims;
-- the column's own default wins over the domain's
CREATE TABLE members2 (id serial PRIMARY KEY, email text NOT NULL, live live_flag DEFAULT false);
CREATE UNIQUE INDEX members2_email_live ON members2 (email) WHERE live;
SELECT * FROM txguard.insert_or_get(NULL::members2, '{"email": "a@example.com"}');

--
-- conflict_columns names an index expression as pg_indexes spells it, SQL
-- functions and all
--
CREATE FUNCTION norm_email(text) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT lower(trim($1)) $$;
CREATE FUNCTION norm_name(text) RETURNS text LANGUAGE plpgsql IMMUTABLE
    AS $$ BEGIN RETURN lower($1); END $$;
CREATE TABLE subscribers (id serial PRIMARY KEY, email text NOT NULL, name text);
CREATE UNIQUE INDEX subscribers_norm ON subscribers (norm_email(email));
CREATE UNIQUE INDEX subscribers_email ON subscribers (email);
CREATE UNIQUE INDEX subscribers_name ON subscribers (norm_name(name));
SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'subscribers' ORDER BY indexname;
SELECT (r).email, created FROM txguard.insert_or_get_created(NULL::subscribers,
    '{"email": " Ann@Example.com"}', ARRAY['norm_email(email)']);
SELECT (r).email, created FROM txguard.insert_or_get_created(NULL::subscribers,
    '{"email": "ann@example.com "}', ARRAY['norm_email(email)']);
SELECT (r).email, created FROM txguard.insert_or_get_created(NULL::subscribers,
    '{"email": "ANN@example.com"}', ARRAY['public.norm_email(email)']);
SELECT (r).email, (r).name, created FROM txguard.insert_or_get_created(NULL::subscribers,
    '{"email": "bob@example.com", "name": "Bob"}', ARRAY['norm_name(name)']);
SELECT (r).email, (r).name, created FROM txguard.insert_or_get_created(NULL::subscribers,
    '{"email": "bob2@example.com", "name": "BOB"}', ARRAY['norm_name(name)']);
-- messages spell the expressions as pg_indexes does
SELECT * FROM txguard.insert_or_get(NULL::subscribers, '{"email": "c@example.com"}');
SELECT * FROM txguard.insert_or_get(NULL::subscribers, '{"name": "c"}', ARRAY['norm_name(name)', 'email']);
SELECT * FROM txguard.insert_or_get(NULL::subscribers, '{"email": "c@example.com"}', ARRAY['lower(TRIM(BOTH FROM email))']);
SELECT * FROM txguard.insert_or_get(NULL::subscribers, '{"name": null}', ARRAY['norm_name(name)']);
SELECT count(*) AS subscribers FROM subscribers;

--
-- the arbiter inferred from a set of keys is remembered per table, and
-- forgotten when the table's indexes change, rolled back changes included
--
CREATE TABLE remembered (a int UNIQUE, b int, c int);
SELECT (r).*, created FROM txguard.insert_or_get_created(NULL::remembered, '{"a": 1, "b": 1}');
SELECT (r).*, created FROM txguard.insert_or_get_created(NULL::remembered, '{"a": 1, "b": 2}');
CREATE UNIQUE INDEX remembered_b ON remembered (b);
SELECT (r).*, created FROM txguard.insert_or_get_created(NULL::remembered, '{"a": 1, "b": 2}');
DROP INDEX remembered_b;
ALTER TABLE remembered ADD PRIMARY KEY (b);
SELECT (r).*, created FROM txguard.insert_or_get_created(NULL::remembered, '{"a": 2, "b": 1}');
BEGIN;
ALTER TABLE remembered DROP CONSTRAINT remembered_pkey;
SELECT (r).*, created FROM txguard.insert_or_get_created(NULL::remembered, '{"a": 1, "b": 3}');
ROLLBACK;
SELECT (r).*, created FROM txguard.insert_or_get_created(NULL::remembered, '{"a": 3, "b": 1}');
SELECT * FROM remembered ORDER BY a;
