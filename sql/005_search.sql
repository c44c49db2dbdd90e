-- Search (SPEC.md, `GET /search`), in SQL until a search daemon takes it
-- over: a product matches when every query word is a whole token of its
-- name, brand or description; relevance = 3 x (query words in the name)
-- + 2 x (in the brand) + 1 x (in the description).
--
-- A token is a run of letters/digits, lowercased: esf_tokens() below is
-- the SQL twin of esf_data::search::tokens(), which tokenizes the query.
-- Both split first and lowercase each run after (İ lowercases to i and a
-- combining dot, which must stay inside its token), and both lowercase
-- with the full Unicode mappings (ICU here, Rust's str::to_lowercase
-- there: the same final-sigma rule). The ICU collation makes [[:alnum:]]
-- Unicode-aware whatever the database's locale (in a C database it would
-- be ASCII only). ICU's alnum (letters and decimal digits) is a subset of
-- Rust's char::is_alphanumeric, which also counts other numbers (² ½ ①)
-- and the combining marks of the Alphabetic property (many Indic vowel
-- signs): text holding those tokenizes differently on the two sides.
-- Every character of the generated catalog agrees (t/listing_search.rs).
-- "und-x-icu" is there in every cluster built with ICU (Debian's are).
CREATE FUNCTION esf_tokens(t text) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN array_remove(
        string_to_array(
            lower(array_to_string(regexp_split_to_array(t COLLATE "und-x-icu", '[^[:alnum:]]+'), ' ') COLLATE "und-x-icu"),
            ' '),
        '');

-- One row per product: what search filters, scores and sorts on. A table
-- of its own rather than columns of products: generated columns read as
-- NULL in products' BEFORE UPDATE trigger (so every no-op UPDATE would
-- move updated_at), and the search daemon will replace this table whole.
-- Kept by statement triggers on products below, whoever writes them.
CREATE TABLE product_search (
    product_id         int PRIMARY KEY,
    price_cents        int NOT NULL,
    created            date NOT NULL,
    name_tokens        text[] NOT NULL,
    brand_tokens       text[] NOT NULL,
    description_tokens text[] NOT NULL
);

INSERT INTO product_search (product_id, price_cents, created, name_tokens, brand_tokens, description_tokens)
SELECT id, price_cents, created, esf_tokens(name), esf_tokens(brand), esf_tokens(description)
FROM products;

-- A search is `(name_tokens || brand_tokens || description_tokens) @> words`:
-- the index intersects the words' posting lists. The planner's statistics
-- that matter are the index expression's; the arrays' own are not used.
CREATE INDEX product_search_tokens ON product_search
    USING gin ((name_tokens || brand_tokens || description_tokens));
ALTER TABLE product_search
    ALTER COLUMN name_tokens SET STATISTICS 0,
    ALTER COLUMN brand_tokens SET STATISTICS 0,
    ALTER COLUMN description_tokens SET STATISTICS 0;
ANALYZE product_search;

-- After a statement that wrote many rows (an import, a bulk UPDATE): the
-- index's pending list merged (every search would scan it whole) and
-- fresh statistics (without them the planner deems the index useless and
-- every search scans the table), now rather than at autovacuum's next
-- round. Both need the table's owner; other roles leave it to autovacuum.
CREATE FUNCTION product_search_settle(written bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF written >= 1000 AND pg_has_role((SELECT relowner FROM pg_class WHERE oid = 'product_search'::regclass), 'USAGE') THEN
        PERFORM gin_clean_pending_list('product_search_tokens'::regclass);
        ANALYZE product_search;
    END IF;
END
$$;

CREATE FUNCTION product_search_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    written bigint;
BEGIN
    INSERT INTO product_search (product_id, price_cents, created, name_tokens, brand_tokens, description_tokens)
    SELECT id, price_cents, created, esf_tokens(name), esf_tokens(brand), esf_tokens(description)
    FROM new_rows;
    GET DIAGNOSTICS written = ROW_COUNT;
    PERFORM product_search_settle(written);
    RETURN NULL;
END
$$;

-- Only rows whose searched or sorted columns changed are written again
-- (an UPDATE of every product's age range costs no tokenizing); a row
-- whose id changed leaves its old id behind.
CREATE FUNCTION product_search_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    written bigint;
BEGIN
    DELETE FROM product_search AS s
    USING old_rows AS o
    WHERE s.product_id = o.id
      AND NOT EXISTS (SELECT 1 FROM new_rows AS n WHERE n.id = o.id);
    INSERT INTO product_search AS s (product_id, price_cents, created, name_tokens, brand_tokens, description_tokens)
    SELECT n.id, n.price_cents, n.created, esf_tokens(n.name), esf_tokens(n.brand), esf_tokens(n.description)
    FROM new_rows AS n
    LEFT JOIN old_rows AS o ON o.id = n.id
    WHERE o.id IS NULL
       OR (o.price_cents, o.created, o.name, o.brand, o.description)
          IS DISTINCT FROM (n.price_cents, n.created, n.name, n.brand, n.description)
    ON CONFLICT (product_id) DO UPDATE SET
        price_cents = excluded.price_cents,
        created = excluded.created,
        name_tokens = excluded.name_tokens,
        brand_tokens = excluded.brand_tokens,
        description_tokens = excluded.description_tokens;
    GET DIAGNOSTICS written = ROW_COUNT;
    PERFORM product_search_settle(written);
    RETURN NULL;
END
$$;

CREATE FUNCTION product_search_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM product_search AS s USING old_rows AS o WHERE s.product_id = o.id;
    RETURN NULL;
END
$$;

-- The catalog import truncates products (CASCADE follows foreign keys
-- only, and product_search has none: checking one per row would slow the
-- import and lock every product row).
CREATE FUNCTION product_search_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE product_search;
    RETURN NULL;
END
$$;

CREATE TRIGGER product_search_insert AFTER INSERT ON products
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION product_search_insert();
CREATE TRIGGER product_search_update AFTER UPDATE ON products
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION product_search_update();
CREATE TRIGGER product_search_delete AFTER DELETE ON products
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION product_search_delete();
CREATE TRIGGER product_search_truncate AFTER TRUNCATE ON products
    FOR EACH STATEMENT EXECUTE FUNCTION product_search_truncate();
