-- Sessions, carts and orders (SPEC.md, "Sessions" and checkout). Written
-- through by the app servers so that losing one loses no cart.

CREATE TABLE sessions (
    id           text PRIMARY KEY,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    -- Bumped on every cart change; an order records the version it was made
    -- from, which is what makes a double checkout detectable.
    cart_version bigint NOT NULL DEFAULT 0
);

CREATE TABLE cart_lines (
    session_id text NOT NULL REFERENCES sessions ON DELETE CASCADE,
    product_id int NOT NULL REFERENCES products,
    qty        int NOT NULL CHECK (qty BETWEEN 1 AND 99),
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, product_id)
);
-- The foreign key from cart_lines needs this for a product's DELETE.
CREATE INDEX cart_lines_product_id ON cart_lines (product_id);

CREATE TABLE orders (
    id           bigserial PRIMARY KEY,
    session_id   text NOT NULL REFERENCES sessions,
    cart_version bigint NOT NULL,
    name         text NOT NULL,
    email        text NOT NULL,
    address      text NOT NULL,
    total_cents  bigint NOT NULL CHECK (total_cents >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- One order per cart state: submitting the same cart twice fails here.
    UNIQUE (session_id, cart_version)
);

-- No foreign key to products: an order keeps its name and price as sold,
-- and survives the product's removal or a catalog re-import.
CREATE TABLE order_lines (
    order_id   bigint NOT NULL REFERENCES orders ON DELETE CASCADE,
    product_id int NOT NULL,
    name       text NOT NULL,
    qty        int NOT NULL CHECK (qty BETWEEN 1 AND 99),
    unit_cents int NOT NULL CHECK (unit_cents >= 0),
    PRIMARY KEY (order_id, product_id)
);
