--
-- upsert_batch: txguard.insert_or_get_many and txguard.upsert_many
--
-- One result per distinct key, in the order of first appearance; repeated
-- keys are folded (insert_or_get: the first wins; upsert: later values
-- override earlier ones, key by key); rows are written in key order.
--
CREATE TABLE products (
    id serial PRIMARY KEY,
    sku text NOT NULL,
    name text,
    price numeric,
    stock int DEFAULT 0
);
CREATE UNIQUE INDEX products_sku ON products (lower(sku));
CREATE TABLE products_log (n serial, op text, sku text);
CREATE FUNCTION products_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.products_log (op, sku) VALUES (TG_OP, NEW.sku);
    RETURN NEW;
END $$;
CREATE TRIGGER products_log AFTER INSERT OR UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION products_log();

SELECT * FROM txguard.insert_or_get(NULL::products, '{"sku": "B", "name": "bee"}');

-- "b" and "B" are one key under lower(sku); "c" comes twice
SELECT * FROM txguard.insert_or_get_many(NULL::products,
    '[{"sku": "c", "name": "first c"},
      {"sku": "a", "name": "ay"},
      {"sku": "b", "name": "not inserted"},
      {"sku": "C", "name": "second c"}]');
-- rows were inserted in key order (a, c), not input order (c, a)
SELECT op, sku FROM products_log ORDER BY n;
SELECT id, sku FROM products ORDER BY id;

SELECT (r).sku, (r).name, created
  FROM txguard.insert_or_get_many_created(NULL::products,
    '[{"sku": "d"}, {"sku": "a"}, {"sku": "D"}]');

-- upsert_many: the later values of a repeated key win, column by column
SELECT (r).sku, (r).name, (r).price, (r).stock, created, updated
  FROM txguard.upsert_many_created(NULL::products,
    '[{"sku": "a", "price": 1},
      {"sku": "e", "name": "ee", "price": 5},
      {"sku": "A", "stock": 10},
      {"sku": "a", "price": 2},
      {"sku": "b", "name": "bee"}]');
SELECT id, sku, name, price, stock FROM products ORDER BY id;
SELECT * FROM txguard.upsert_many(NULL::products, '[{"sku": "e", "stock": 1}]', update_columns => '{stock}');

-- an empty array
SELECT count(*) FROM txguard.insert_or_get_many(NULL::products, '[]');

-- the single-row function per element gives the same rows, duplicates included
SELECT p.id, p.sku
  FROM jsonb_array_elements('[{"sku": "a"}, {"sku": "f"}, {"sku": "A"}]') WITH ORDINALITY AS e(v, n),
       LATERAL txguard.insert_or_get(NULL::products, e.v) AS p
 ORDER BY e.n;

-- a key given in one element and missing in another
SELECT * FROM txguard.insert_or_get_many(NULL::products, '[{"sku": "a"}, {"name": "x"}]');
-- different conflict targets
CREATE UNIQUE INDEX products_name ON products (name);
SELECT * FROM txguard.insert_or_get_many(NULL::products, '[{"sku": "a"}, {"name": "x"}]');
SELECT (r).sku, (r).name, created
  FROM txguard.insert_or_get_many_created(NULL::products, '[{"sku": "g", "name": "x"}, {"sku": "h", "name": "x"}]',
                                          ARRAY['name']);
-- errors name the element
SELECT * FROM txguard.insert_or_get_many(NULL::products, '{"sku": "a"}');
SELECT * FROM txguard.insert_or_get_many(NULL::products, '[{"sku": "a"}, [1]]');
SELECT * FROM txguard.insert_or_get_many(NULL::products, '[{"sku": "a"}, "b"]');
SELECT * FROM txguard.insert_or_get_many(NULL::products, '[{"sku": "a"}, {}]');
SELECT * FROM txguard.insert_or_get_many(NULL::products, '[{"sku": "z1"}, {"sku": "z2", "price": "free"}]');
SELECT * FROM txguard.insert_or_get_many(NULL::products, '[{"sku": "z1"}, {"sku": "z2", "colour": "red"}]');
SELECT * FROM txguard.insert_or_get_many(NULL::products, '[{"sku": "z1"}, {"sku": null}]');
SELECT * FROM txguard.upsert_many(NULL::products, '[{"sku": "z1", "name": "n"}, {"sku": "z2"}]',
                                  ARRAY['lower(sku)'], ARRAY['name']);
SELECT * FROM txguard.insert_or_get_many(NULL::products, NULL);
SELECT count(*) AS products FROM products WHERE sku LIKE 'z%';

-- a composite primary key, sorted column by column
CREATE TABLE stock (warehouse int, item text, qty int, PRIMARY KEY (warehouse, item));
SELECT * FROM txguard.upsert_many(NULL::stock,
    '[{"warehouse": 2, "item": "a", "qty": 1},
      {"warehouse": 1, "item": "b", "qty": 2},
      {"warehouse": 1, "item": "a", "qty": 3},
      {"warehouse": 2, "item": "a", "qty": 4}]');
SELECT * FROM stock ORDER BY warehouse, item;

-- a batch stores what the sequence of single calls would: the key keeps
-- the spelling of its first element, and a later element sets only the
-- columns its own call would update
CREATE TABLE spelled (id serial PRIMARY KEY, sku text NOT NULL, name text, note text);
CREATE UNIQUE INDEX spelled_sku ON spelled (lower(sku));
SELECT sku, name FROM txguard.upsert_many(NULL::spelled,
    '[{"sku": "x", "name": "first"}, {"sku": "X", "name": "second"}]');
SELECT sku, name FROM txguard.upsert(NULL::spelled, '{"sku": "y", "name": "first"}');
SELECT sku, name FROM txguard.upsert(NULL::spelled, '{"sku": "Y", "name": "second"}');
SELECT sku, name FROM txguard.upsert_many(NULL::spelled,
    '[{"sku": "Y", "name": "third"}, {"sku": "y", "name": "fourth"}]');
SELECT sku, name, note FROM txguard.upsert_many(NULL::spelled,
    '[{"sku": "z", "name": "first", "note": "a"}, {"sku": "Z", "name": "second", "note": "b"}]',
    NULL, ARRAY['name']);
SELECT sku, name, note FROM txguard.upsert_many(NULL::spelled,
    '[{"sku": "w"}, {"sku": "W", "note": "b"}]');
SELECT sku, name, note FROM spelled ORDER BY id;
-- a later element without an update column fails as its own call would
SELECT sku, name FROM txguard.upsert_many(NULL::spelled,
    '[{"sku": "v", "name": "first"}, {"sku": "V", "note": "b"}]', NULL, ARRAY['name']);
