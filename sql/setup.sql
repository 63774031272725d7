--
-- setup: the extension, its schema and its settings
--
SELECT extname, extrelocatable, nspname
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'pg_txguard';

-- the library is preloaded
SELECT 'pg_txguard' = ANY (string_to_array(current_setting('shared_preload_libraries'), ','))
       AS preloaded;

-- settings: name, default, unit and who may change them
SELECT name, setting, unit, context, vartype
  FROM pg_settings WHERE name LIKE 'txguard.%' ORDER BY name;

-- the schema cannot be moved
ALTER EXTENSION pg_txguard SET SCHEMA public;
