-- The catalog: categories, products and their stock (SPEC.md, "Data set").
-- updated_at feeds Last-Modified; a BEFORE UPDATE trigger keeps it current
-- whoever writes the row (mod_esf, psql, an import).

CREATE TABLE categories (
    id         int PRIMARY KEY,
    parent_id  int NOT NULL,  -- 0 = top level
    name       text NOT NULL,
    slug       text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX categories_parent_id ON categories (parent_id);

CREATE TABLE products (
    id          int PRIMARY KEY,
    category_id int NOT NULL REFERENCES categories,
    sku         text NOT NULL UNIQUE,
    -- Listings order by code point (SPEC.md), whatever the database locale.
    name        text COLLATE "C" NOT NULL,
    brand       text NOT NULL,
    age_min     int NOT NULL,
    age_max     int NOT NULL,
    price_cents int NOT NULL CHECK (price_cents >= 0),
    description text NOT NULL,
    created     date NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- A category page is a range scan of this index: (name, id) is its order.
CREATE INDEX products_category_name_id ON products (category_id, name, id);

CREATE TABLE inventory (
    product_id int PRIMARY KEY REFERENCES products,
    on_hand    int NOT NULL CHECK (on_hand >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Only a real change moves updated_at: a no-op UPDATE must not make every
-- cached copy look stale to a conditional GET.
CREATE FUNCTION esf_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW IS DISTINCT FROM OLD THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER categories_touch_updated_at BEFORE UPDATE ON categories
    FOR EACH ROW EXECUTE FUNCTION esf_touch_updated_at();
CREATE TRIGGER products_touch_updated_at BEFORE UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION esf_touch_updated_at();
CREATE TRIGGER inventory_touch_updated_at BEFORE UPDATE ON inventory
    FOR EACH ROW EXECUTE FUNCTION esf_touch_updated_at();
