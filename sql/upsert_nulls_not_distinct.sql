--
-- upsert_nulls_not_distinct: NULL keys under a NULLS NOT DISTINCT unique
-- index (PostgreSQL 15 and later only)
--
-- There, NULL is a key value like any other: the lookup searches for it
-- with IS NULL, and a second call finds the first row.
--
CREATE TABLE settings (
    id serial PRIMARY KEY,
    scope text,
    name text NOT NULL,
    value text,
    UNIQUE NULLS NOT DISTINCT (scope, name)
);
SELECT * FROM txguard.insert_or_get(NULL::settings, '{"scope": null, "name": "tz", "value": "UTC"}');
SELECT * FROM txguard.insert_or_get(NULL::settings, '{"scope": null, "name": "tz", "value": "CET"}');
SELECT * FROM txguard.insert_or_get(NULL::settings, '{"scope": "eu", "name": "tz", "value": "CET"}');
SELECT * FROM txguard.upsert(NULL::settings, '{"scope": null, "name": "tz", "value": "GMT"}');
SELECT (r).id, (r).scope, (r).value, created, updated
  FROM txguard.upsert_many_created(NULL::settings,
    '[{"scope": "eu", "name": "tz", "value": "EET"},
      {"scope": null, "name": "tz", "value": "GMT"},
      {"scope": null, "name": "lang", "value": "en"},
      {"scope": null, "name": "tz", "value": "UTC"}]');
SELECT * FROM settings ORDER BY id;

-- an expression key that evaluates to NULL
CREATE TABLE aliases (id serial PRIMARY KEY, alias text);
CREATE UNIQUE INDEX aliases_ci ON aliases (lower(alias)) NULLS NOT DISTINCT;
SELECT * FROM txguard.insert_or_get(NULL::aliases, '{"alias": null}');
SELECT * FROM txguard.insert_or_get(NULL::aliases, '{"alias": null}');
SELECT * FROM txguard.insert_or_get(NULL::aliases, '{"alias": "X"}');
SELECT * FROM txguard.insert_or_get(NULL::aliases, '{"alias": "x"}');
SELECT * FROM aliases ORDER BY id;
