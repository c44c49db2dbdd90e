-- Change notifications for the object cache (docs/DATA.md): after each
-- statement that changes categories, products or inventory, one
-- NOTIFY esf_cache with the space-separated cache keys (or key prefixes
-- ending in '*') that the change makes stale.
--
-- Statement triggers with transition tables see every changed row at once,
-- so a statement sends one notification however many rows it touched.
-- PostgreSQL allows transition tables only on single-event triggers, hence
-- one trigger per event, all sharing a table's function: TG_OP tells which
-- transition tables exist.

-- More changed rows than this and a statement sends its table's prefix form.
CREATE FUNCTION esf_notify_row_limit() RETURNS int IMMUTABLE LANGUAGE sql
    AS 'SELECT 200';

-- The rows a statement changed, as SQL over the trigger's transition
-- tables: an UPDATE's keys may differ before and after (a product moving
-- category), so both sides count.
CREATE FUNCTION esf_changed_rows(op text) RETURNS text IMMUTABLE LANGUAGE sql AS $$
    SELECT CASE op
        WHEN 'INSERT' THEN 'new_rows'
        WHEN 'DELETE' THEN 'old_rows'
        ELSE '(SELECT * FROM old_rows UNION ALL SELECT * FROM new_rows)'
    END
$$;

-- How many rows the statement touched (an UPDATE's rows once, not twice).
CREATE FUNCTION esf_touched_rows(op text) RETURNS text IMMUTABLE LANGUAGE sql AS $$
    SELECT CASE op WHEN 'DELETE' THEN 'old_rows' ELSE 'new_rows' END
$$;

-- Sends `tokens`, or `prefix_form` when the statement touched too many rows
-- or the tokens would not fit in a NOTIFY payload (under 8000 bytes).
CREATE FUNCTION esf_send_cache_notification(touched bigint, tokens text, prefix_form text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF touched = 0 THEN
        RETURN;
    END IF;
    IF touched > esf_notify_row_limit() OR tokens IS NULL OR octet_length(tokens) >= 8000 THEN
        tokens := prefix_form;
    END IF;
    PERFORM pg_notify('esf_cache', tokens);
END
$$;

-- A product's own key and the listings that show it: its category's
-- (before and after a move) and that category's parent's, since a
-- top-level category lists the products of all its leaves.
CREATE FUNCTION products_notify_cache() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    touched bigint;
    tokens text;
BEGIN
    EXECUTE 'SELECT count(*) FROM ' || esf_touched_rows(TG_OP) INTO touched;
    IF touched <= esf_notify_row_limit() THEN
        EXECUTE format($sql$
            SELECT string_agg(DISTINCT token, ' ')
            FROM %s AS changed
            LEFT JOIN categories AS category ON category.id = changed.category_id
            CROSS JOIN LATERAL (VALUES
                ('product:' || changed.id),
                ('catlist:' || changed.category_id || ':*'),
                ('catlist:' || nullif(category.parent_id, 0) || ':*')
            ) AS key (token)
            WHERE token IS NOT NULL
        $sql$, esf_changed_rows(TG_OP)) INTO tokens;
    END IF;
    PERFORM esf_send_cache_notification(touched, tokens, 'product:* catlist:*');
    RETURN NULL;
END
$$;

CREATE FUNCTION inventory_notify_cache() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    touched bigint;
    tokens text;
BEGIN
    EXECUTE 'SELECT count(*) FROM ' || esf_touched_rows(TG_OP) INTO touched;
    IF touched <= esf_notify_row_limit() THEN
        EXECUTE format($sql$
            SELECT string_agg(DISTINCT 'inventory:' || changed.product_id, ' ')
            FROM %s AS changed
        $sql$, esf_changed_rows(TG_OP)) INTO tokens;
    END IF;
    PERFORM esf_send_cache_notification(touched, tokens, 'inventory:*');
    RETURN NULL;
END
$$;

-- A category's own key, the whole tree, its listing, and its parent's
-- listing (before and after a move), which includes its products.
CREATE FUNCTION categories_notify_cache() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    touched bigint;
    tokens text;
BEGIN
    EXECUTE 'SELECT count(*) FROM ' || esf_touched_rows(TG_OP) INTO touched;
    IF touched <= esf_notify_row_limit() THEN
        EXECUTE format($sql$
            SELECT string_agg(DISTINCT token, ' ')
            FROM %s AS changed
            CROSS JOIN LATERAL (VALUES
                ('category:' || changed.id),
                ('categories'),
                ('catlist:' || changed.id || ':*'),
                ('catlist:' || nullif(changed.parent_id, 0) || ':*')
            ) AS key (token)
            WHERE token IS NOT NULL
        $sql$, esf_changed_rows(TG_OP)) INTO tokens;
    END IF;
    PERFORM esf_send_cache_notification(touched, tokens, 'category:* categories catlist:*');
    RETURN NULL;
END
$$;

-- TRUNCATE has no transition tables (and fires no DELETE trigger): it
-- drops the whole table's keys.
CREATE FUNCTION esf_notify_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('esf_cache', TG_ARGV[0]);
    RETURN NULL;
END
$$;

CREATE TRIGGER products_notify_insert AFTER INSERT ON products
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION products_notify_cache();
CREATE TRIGGER products_notify_update AFTER UPDATE ON products
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION products_notify_cache();
CREATE TRIGGER products_notify_delete AFTER DELETE ON products
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION products_notify_cache();
CREATE TRIGGER products_notify_truncate AFTER TRUNCATE ON products
    FOR EACH STATEMENT EXECUTE FUNCTION esf_notify_truncate('product:* catlist:*');

CREATE TRIGGER inventory_notify_insert AFTER INSERT ON inventory
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION inventory_notify_cache();
CREATE TRIGGER inventory_notify_update AFTER UPDATE ON inventory
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION inventory_notify_cache();
CREATE TRIGGER inventory_notify_delete AFTER DELETE ON inventory
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION inventory_notify_cache();
CREATE TRIGGER inventory_notify_truncate AFTER TRUNCATE ON inventory
    FOR EACH STATEMENT EXECUTE FUNCTION esf_notify_truncate('inventory:*');

CREATE TRIGGER categories_notify_insert AFTER INSERT ON categories
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION categories_notify_cache();
CREATE TRIGGER categories_notify_update AFTER UPDATE ON categories
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION categories_notify_cache();
CREATE TRIGGER categories_notify_delete AFTER DELETE ON categories
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION categories_notify_cache();
CREATE TRIGGER categories_notify_truncate AFTER TRUNCATE ON categories
    FOR EACH STATEMENT EXECUTE FUNCTION esf_notify_truncate('category:* categories catlist:*');
