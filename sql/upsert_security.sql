--
-- upsert_security: privileges, row-level security, hostile search_path
-- and hostile input
--
-- The helpers are SECURITY INVOKER: the caller's privileges and policies
-- apply to every statement they run.
--
CREATE ROLE regress_txg_writer;
CREATE ROLE regress_txg_reader;
CREATE TABLE docs (
    id serial PRIMARY KEY,
    owner name NOT NULL DEFAULT current_user,
    slug text NOT NULL UNIQUE,
    body text
);
GRANT SELECT, INSERT, UPDATE ON docs TO regress_txg_writer;
GRANT USAGE ON SEQUENCE docs_id_seq TO regress_txg_writer;
GRANT SELECT ON docs TO regress_txg_reader;
INSERT INTO docs (owner, slug) VALUES ('someone_else', 'hidden');

-- privileges: a reader may get an existing row, but not insert one
SET ROLE regress_txg_reader;
SELECT id, slug FROM txguard.insert_or_get(NULL::docs, '{"slug": "hidden"}');
SELECT id, slug FROM txguard.insert_or_get(NULL::docs, '{"slug": "new"}');
SELECT id, slug FROM txguard.upsert(NULL::docs, '{"slug": "hidden", "body": "x"}');
RESET ROLE;

-- column privileges: the update touches only the updated columns
REVOKE UPDATE ON docs FROM regress_txg_writer;
GRANT UPDATE (body) ON docs TO regress_txg_writer;
SET ROLE regress_txg_writer;
SELECT slug, body FROM txguard.upsert(NULL::docs, '{"slug": "hidden", "body": "edited"}');
SELECT slug, owner FROM txguard.upsert(NULL::docs, '{"slug": "hidden", "owner": "regress_txg_writer"}');
RESET ROLE;

-- row-level security: the caller's policies apply
ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY docs_select ON docs FOR SELECT USING (owner = current_user);
CREATE POLICY docs_insert ON docs FOR INSERT WITH CHECK (owner = current_user);
CREATE POLICY docs_update ON docs FOR UPDATE USING (owner = current_user);
SET ROLE regress_txg_writer;
SELECT owner, slug FROM txguard.insert_or_get(NULL::docs, '{"slug": "mine"}');
SELECT owner, slug FROM txguard.insert_or_get(NULL::docs, '{"slug": "mine"}');
SELECT owner, slug, body FROM txguard.upsert(NULL::docs, '{"slug": "mine", "body": "b"}');
-- a row the policies hide: the insert conflicts, the lookup finds nothing
SELECT owner, slug FROM txguard.insert_or_get(NULL::docs, '{"slug": "hidden"}');
-- a row the policies would not let in
SELECT owner, slug FROM txguard.insert_or_get(NULL::docs, '{"slug": "forged", "owner": "someone_else"}');
RESET ROLE;
SELECT owner, slug, body FROM docs ORDER BY id;

-- a hostile search_path: objects that shadow the table, its key
-- expression's function and the equality operator change nothing
CREATE TABLE handles (id serial PRIMARY KEY, handle varchar(40) NOT NULL);
CREATE UNIQUE INDEX handles_ci ON handles (lower(handle));
CREATE SCHEMA regress_evil;
CREATE TABLE regress_evil.handles (id int, handle varchar(40));
CREATE FUNCTION regress_evil.lower(varchar) RETURNS text LANGUAGE sql
    AS $$ SELECT 'pwned'::text $$;
CREATE FUNCTION regress_evil.always(text, text) RETURNS boolean LANGUAGE sql
    AS $$ SELECT true $$;
CREATE OPERATOR regress_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_evil.always);
SET search_path = regress_evil, public;
SELECT lower('Shadowed'::varchar) AS caller_sees;
SELECT * FROM txguard.insert_or_get(NULL::public.handles, '{"handle": "Alice"}');
SELECT * FROM txguard.insert_or_get(NULL::public.handles, '{"handle": "ALICE"}');
SELECT * FROM txguard.insert_or_get(NULL::public.handles, '{"handle": "bob"}');
SELECT count(*) AS shadow_rows FROM regress_evil.handles;
-- a plain column key: every name in the statements is qualified, and
-- triggers see the caller's search_path
CREATE TABLE public.codes (code text PRIMARY KEY, path text);
CREATE TABLE regress_evil.codes (code text, path text);
CREATE FUNCTION public.codes_path() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.path := current_setting('search_path'); RETURN NEW; END $$;
CREATE TRIGGER codes_path BEFORE INSERT ON public.codes
    FOR EACH ROW EXECUTE FUNCTION public.codes_path();
SELECT * FROM txguard.insert_or_get(NULL::public.codes, '{"code": "a"}');
SELECT * FROM txguard.insert_or_get(NULL::public.codes, '{"code": "a"}');
SELECT count(*) AS shadow_rows FROM regress_evil.codes;
RESET search_path;
SELECT * FROM handles ORDER BY id;

-- keys are column names, never SQL; values are parameters, never SQL
SELECT * FROM txguard.insert_or_get(NULL::handles,
    '{"handle": "x", "handle\") VALUES (1); DROP TABLE handles; --": 1}');
SELECT * FROM txguard.insert_or_get(NULL::handles,
    '{"handle": "''); DROP TABLE handles; --"}');
SELECT * FROM txguard.insert_or_get(NULL::handles, '{"handle": "x"}',
    ARRAY['lower(handle)) DO NOTHING; DROP TABLE handles; --']);
-- quoted identifiers everywhere
CREATE TABLE "Odd ""Table""" ("Key Col" text PRIMARY KEY, "select" int, "txg_row" text);
SELECT * FROM txguard.upsert(NULL::"Odd ""Table""", '{"Key Col": "k", "select": 1, "txg_row": "r"}');
SELECT * FROM txguard.upsert(NULL::"Odd ""Table""", '{"Key Col": "k", "select": 2}');
SELECT count(*) AS handles FROM handles;

DROP TABLE docs;
DROP ROLE regress_txg_writer;
DROP ROLE regress_txg_reader;
