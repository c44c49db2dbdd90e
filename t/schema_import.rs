//! The schema (sql/, applied by esf_schema::migrate) and the catalog import
//! against the real cluster: migrations apply once even when two servers
//! race, the `small` catalog loads whole, and the change triggers send the
//! notifications docs/DATA.md promises.
use crate::harness::PgCluster;
use crate::store_fixture::small_catalog;
use esf_schema::postgres::error::SqlState;
use esf_schema::postgres::fallible_iterator::FallibleIterator;
use esf_schema::postgres::{Client, NoTls};
use esf_schema::{ImportCounts, SchemaError};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

/// How long a test waits for a notification that must come.
const NOTIFY_WAIT: Duration = Duration::from_secs(5);

fn connect(pg: &PgCluster, db: &str) -> Client {
    Client::connect(&pg.conninfo(db), NoTls).expect("connect")
}

/// A fresh database with the schema; returns its name and a client.
fn migrated_database(pg: &PgCluster, prefix: &str) -> (String, Client) {
    let db = pg.create_database(prefix);
    let mut client = connect(pg, &db);
    esf_schema::migrate(&mut client).expect("migrate");
    (db, client)
}

/// A fresh database with the schema and the `small` catalog.
fn catalog_database(pg: &PgCluster, prefix: &str) -> (String, Client) {
    let (db, mut client) = migrated_database(pg, prefix);
    esf_schema::import_catalog(&mut client, small_catalog()).expect("import small");
    (db, client)
}

/// The data lines of a TSV file, split into fields.
fn tsv_rows(path: &Path) -> Vec<Vec<String>> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .map(|line| line.split('\t').map(str::to_string).collect())
        .collect()
}

fn all_migration_names() -> Vec<String> {
    esf_schema::MIGRATIONS
        .iter()
        .map(|m| m.name.to_string())
        .collect()
}

/// The next notification on esf_cache, as a set of tokens (without the
/// change-log sequence number that leads the payload, docs/DATA.md).
fn next_tokens(listener: &mut Client) -> BTreeSet<String> {
    let mut notifications = listener.notifications();
    let note = notifications
        .timeout_iter(NOTIFY_WAIT)
        .next()
        .expect("read notifications")
        .expect("no notification within 5 s");
    assert_eq!(note.channel(), "esf_cache");
    let (seq, tokens) = note.payload().split_once(' ').expect("SEQ TOKENS");
    assert!(seq.parse::<i64>().is_ok(), "a sequence number first: {}", note.payload());
    tokens.split(' ').map(str::to_string).collect()
}

fn tokens(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|t| t.to_string()).collect()
}

fn assert_no_notification(listener: &mut Client) {
    let mut notifications = listener.notifications();
    let late = notifications
        .timeout_iter(Duration::from_millis(300))
        .next()
        .expect("read notifications");
    assert!(
        late.is_none(),
        "unexpected notification {:?}",
        late.map(|n| n.payload().to_string())
    );
}

#[test]
fn migrate_applies_every_migration_then_none() {
    let pg = PgCluster::shared();
    let db = pg.create_database("migrate_once");
    let mut client = connect(pg, &db);

    assert_eq!(
        esf_schema::migrate(&mut client).unwrap(),
        all_migration_names()
    );
    assert!(esf_schema::migrate(&mut client).unwrap().is_empty());

    let recorded = pg.psql(
        &db,
        "select string_agg(version || ' ' || name, ',' order by version) from schema_migrations",
    );
    let expected: Vec<String> = esf_schema::MIGRATIONS
        .iter()
        .map(|m| format!("{} {}", m.version, m.name))
        .collect();
    assert_eq!(recorded, expected.join(","));
}

/// Two app servers starting at once: both succeed, each migration is
/// applied by exactly one of them.
#[test]
fn concurrent_migrations_apply_each_once() {
    let pg = PgCluster::shared();
    let db = pg.create_database("migrate_race");
    let start = Arc::new(Barrier::new(2));
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let mut client = connect(pg, &db);
            let start = start.clone();
            thread::spawn(move || {
                start.wait();
                esf_schema::migrate(&mut client)
            })
        })
        .collect();
    let mut applied: Vec<String> = racers
        .into_iter()
        .flat_map(|racer| racer.join().expect("migrate thread").expect("migrate"))
        .collect();
    applied.sort();
    assert_eq!(applied, all_migration_names());
    assert_eq!(
        pg.psql(&db, "select count(*) from schema_migrations"),
        esf_schema::MIGRATIONS.len().to_string()
    );
}

#[test]
fn import_of_small_matches_the_files() {
    let pg = PgCluster::shared();
    let dir = small_catalog();
    let (db, mut client) = migrated_database(pg, "import_small");
    let categories = tsv_rows(&dir.join("categories.tsv"));
    let products = tsv_rows(&dir.join("products.tsv"));
    let inventory = tsv_rows(&dir.join("inventory.tsv"));
    let expected = ImportCounts {
        categories: categories.len() as u64,
        products: products.len() as u64,
        inventory: inventory.len() as u64,
    };

    assert_eq!(
        esf_schema::import_catalog(&mut client, dir).unwrap(),
        expected
    );
    // A second import replaces the first rather than clashing with it.
    assert_eq!(
        esf_schema::import_catalog(&mut client, dir).unwrap(),
        expected
    );
    assert_eq!(
        pg.psql(&db, "select (select count(*) from categories) || ' ' || (select count(*) from products) || ' ' || (select count(*) from inventory)"),
        format!("{} {} {}", expected.categories, expected.products, expected.inventory)
    );

    // Spot values: the last product's fields, and the first inventory row.
    let last = products.last().unwrap();
    let row = client
        .query_one(
            "select sku, name, price_cents, to_char(created, 'YYYY-MM-DD') from products where id = $1",
            &[&last[0].parse::<i32>().unwrap()],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), last[2]);
    assert_eq!(row.get::<_, String>(1), last[3]);
    assert_eq!(row.get::<_, i32>(2).to_string(), last[7]);
    assert_eq!(row.get::<_, String>(3), last[9]);
    assert_eq!(
        pg.psql(
            &db,
            &format!(
                "select on_hand from inventory where product_id = {}",
                inventory[0][0]
            )
        ),
        inventory[0][1]
    );

    // The biggest category's listing is in (name by code point, id) order,
    // which is Rust's byte order on the UTF-8 names.
    let biggest = products
        .iter()
        .map(|p| p[1].as_str())
        .fold(
            std::collections::HashMap::<&str, usize>::new(),
            |mut counts, c| {
                *counts.entry(c).or_default() += 1;
                counts
            },
        )
        .into_iter()
        .max_by_key(|&(id, n)| (n, std::cmp::Reverse(id)))
        .unwrap()
        .0;
    let mut listing: Vec<(&str, i32)> = products
        .iter()
        .filter(|p| p[1] == biggest)
        .map(|p| (p[3].as_str(), p[0].parse().unwrap()))
        .collect();
    listing.sort();
    let expected_ids: Vec<i32> = listing.iter().map(|&(_, id)| id).collect();
    let listed_ids: Vec<i32> = client
        .query(
            "select id from products where category_id = $1 order by name, id",
            &[&biggest.parse::<i32>().unwrap()],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(listed_ids, expected_ids);
    assert_eq!(
        pg.psql(&db, "select collation_name from information_schema.columns where table_name = 'products' and column_name = 'name'"),
        "C"
    );

    // The indexes and constraints dropped for the load are back, and the
    // listing query uses its index.
    assert_eq!(
        pg.psql(&db, "select string_agg(indexname, ' ' order by indexname) from pg_indexes where tablename in ('categories', 'products', 'inventory')"),
        "categories_parent_id categories_pkey inventory_pkey products_category_name_id products_pkey products_sku_key"
    );
    assert_eq!(
        pg.psql(&db, "select string_agg(conname, ' ' order by conname) from pg_constraint where contype = 'f' and conrelid in ('products'::regclass, 'inventory'::regclass)"),
        "inventory_product_id_fkey products_category_id_fkey"
    );
    let plan = pg.psql(&db, &format!("explain select id from products where category_id = {biggest} order by name, id limit 24"));
    assert!(plan.contains("products_category_name_id"), "{plan}");
}

/// Writes a three-file catalog into `parent`/`name`.
fn write_catalog(
    parent: &Path,
    name: &str,
    categories: &str,
    products: &str,
    inventory: &str,
) -> PathBuf {
    let dir = parent.join(name);
    fs::create_dir(&dir).unwrap();
    fs::write(
        dir.join("categories.tsv"),
        format!("id\tparent_id\tname\tslug\n{categories}"),
    )
    .unwrap();
    fs::write(
        dir.join("products.tsv"),
        format!("id\tcategory_id\tsku\tname\tbrand\tage_min\tage_max\tprice_cents\tdescription\tcreated\n{products}"),
    )
    .unwrap();
    fs::write(
        dir.join("inventory.tsv"),
        format!("product_id\ton_hand\n{inventory}"),
    )
    .unwrap();
    dir
}

const CATEGORIES: &str = "1\t0\tToys\ttoys\n2\t1\tTrains\ttrains\n";
const INVENTORY: &str = "1\t5\n2\t0\n";

#[test]
fn bad_input_is_reported_by_file_and_line_and_changes_nothing() {
    let pg = PgCluster::shared();
    let (db, mut client) = migrated_database(pg, "import_bad");
    let catalogs = crate::harness::state_dir("catalogs-bad-input");
    // Backslashes are data, not COPY escapes.
    let good = write_catalog(
        &catalogs,
        "good",
        CATEGORIES,
        "1\t2\tET-1\tC:\\Trains \\N\tAcme\t3\t6\t1999\tA train.\t2020-01-02\n\
         2\t2\tET-2\tBus\tAcme\t3\t6\t999\tA bus.\t2020-01-03\n",
        INVENTORY,
    );
    esf_schema::import_catalog(&mut client, &good).unwrap();
    assert_eq!(
        pg.psql(&db, "select name from products where id = 1"),
        "C:\\Trains \\N"
    );

    let bad_price = write_catalog(
        &catalogs,
        "bad-price",
        CATEGORIES,
        "3\t2\tET-3\tCar\tAcme\t3\t6\t5\tA car.\t2020-01-02\n\
         4\t2\tET-4\tVan\tAcme\t3\t6\tcheap\tA van.\t2020-01-03\n",
        INVENTORY,
    );
    let error = esf_schema::import_catalog(&mut client, &bad_price)
        .unwrap_err()
        .to_string();
    let products_file = bad_price.join("products.tsv").display().to_string();
    assert!(
        error.starts_with(&format!("{products_file} line 3: column price_cents: ")),
        "{error}"
    );
    assert!(error.contains("cheap"), "{error}");

    let unknown_category = write_catalog(
        &catalogs,
        "bad-category",
        CATEGORIES,
        "1\t9\tET-1\tCar\tAcme\t3\t6\t5\tA car.\t2020-01-02\n2\t2\tET-2\tBus\tAcme\t3\t6\t5\tA bus.\t2020-01-02\n",
        INVENTORY,
    );
    let error = esf_schema::import_catalog(&mut client, &unknown_category)
        .unwrap_err()
        .to_string();
    let products_file = unknown_category.join("products.tsv").display().to_string();
    assert!(error.starts_with(&format!("{products_file}: ")), "{error}");
    assert!(error.contains("(category_id)=(9)"), "{error}");

    let bad_header = write_catalog(&catalogs, "bad-header", CATEGORIES, "", INVENTORY);
    fs::write(
        bad_header.join("inventory.tsv"),
        "product_id,on_hand\n1,5\n",
    )
    .unwrap();
    let error = esf_schema::import_catalog(&mut client, &bad_header).unwrap_err();
    assert!(
        matches!(error, SchemaError::Input { line: Some(1), .. }),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("inventory.tsv line 1: expected the header"),
        "{error}"
    );

    fs::remove_file(bad_header.join("categories.tsv")).unwrap();
    let error = esf_schema::import_catalog(&mut client, &bad_header)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("categories.tsv: cannot open: No such file"),
        "{error}"
    );

    // Every failure rolled back: the good catalog is still there, whole.
    assert_eq!(
        pg.psql(
            &db,
            "select string_agg(name, ',' order by id) from products"
        ),
        "C:\\Trains \\N,Bus"
    );
    fs::remove_dir_all(&catalogs).unwrap();
}

#[test]
fn import_before_migrate_says_so() {
    let pg = PgCluster::shared();
    let db = pg.create_database("import_unmigrated");
    let mut client = connect(pg, &db);
    let error = esf_schema::import_catalog(&mut client, small_catalog()).unwrap_err();
    assert!(matches!(error, SchemaError::NotMigrated), "{error}");
}

#[test]
fn changes_notify_the_cache_keys() {
    let pg = PgCluster::shared();
    let (db, _client) = catalog_database(pg, "notify");
    let mut listener = connect(pg, &db);
    listener.batch_execute("LISTEN esf_cache").unwrap();

    let (category, parent) = {
        let row = pg.psql(&db, "select p.category_id || ' ' || c.parent_id from products p join categories c on c.id = p.category_id where p.id = 42");
        let (category, parent) = row.split_once(' ').unwrap();
        (category.to_string(), parent.to_string())
    };
    assert_ne!(parent, "0", "small's products sit in leaf categories");

    pg.psql(
        &db,
        "update products set price_cents = price_cents + 100 where id = 42",
    );
    assert_eq!(
        next_tokens(&mut listener),
        tokens(&[
            "product:42",
            &format!("catlist:{category}:*"),
            &format!("catlist:{parent}:*")
        ])
    );

    // A move invalidates both the old and the new listing.
    let other = pg.psql(
        &db,
        &format!("select min(id) from categories where parent_id <> 0 and id <> {category}"),
    );
    let other_parent = pg.psql(
        &db,
        &format!("select parent_id from categories where id = {other}"),
    );
    pg.psql(
        &db,
        &format!("update products set category_id = {other} where id = 42"),
    );
    let moved = next_tokens(&mut listener);
    for token in [
        "product:42".to_string(),
        format!("catlist:{category}:*"),
        format!("catlist:{other}:*"),
        format!("catlist:{other_parent}:*"),
    ] {
        assert!(moved.contains(&token), "{token} missing from {moved:?}");
    }

    pg.psql(
        &db,
        "update inventory set on_hand = on_hand + 1 where product_id = 42",
    );
    assert_eq!(next_tokens(&mut listener), tokens(&["inventory:42"]));

    pg.psql(
        &db,
        &format!("update categories set name = name || '!' where id = {category}"),
    );
    assert_eq!(
        next_tokens(&mut listener),
        tokens(&[
            &format!("category:{category}"),
            "categories",
            &format!("catlist:{category}:*"),
            &format!("catlist:{parent}:*")
        ])
    );

    // One statement, one notification, however many rows.
    pg.psql(
        &db,
        "update products set price_cents = price_cents + 1 where id <= 1000",
    );
    assert_eq!(
        next_tokens(&mut listener),
        tokens(&["product:*", "catlist:*"])
    );
    pg.psql(
        &db,
        "update inventory set on_hand = on_hand + 1 where product_id <= 1000",
    );
    assert_eq!(next_tokens(&mut listener), tokens(&["inventory:*"]));
    pg.psql(
        &db,
        "update products set brand = brand where id between 1 and 200",
    );
    assert!(
        next_tokens(&mut listener).contains("product:200"),
        "200 rows still list their keys"
    );
    assert_no_notification(&mut listener);

    // A statement that changes no row sends nothing.
    pg.psql(&db, "update products set price_cents = 1 where id < 0");
    assert_no_notification(&mut listener);

    // Tokens that would not fit in a NOTIFY payload fall back to the prefix form.
    pg.psql(
        &db,
        "select esf_send_cache_notification(1, repeat('x', 8000), 'product:* catlist:*')",
    );
    assert_eq!(
        next_tokens(&mut listener),
        tokens(&["product:*", "catlist:*"])
    );

    pg.psql(&db, "truncate inventory");
    assert_eq!(next_tokens(&mut listener), tokens(&["inventory:*"]));
}

#[test]
fn updated_at_moves_when_a_row_changes() {
    let pg = PgCluster::shared();
    let (db, _client) = catalog_database(pg, "updated_at");
    for (table, key, change) in [
        ("products", "id", "price_cents = price_cents + 1"),
        ("inventory", "product_id", "on_hand = on_hand + 1"),
        ("categories", "id", "name = name || '!'"),
    ] {
        let read = format!("select updated_at from {table} where {key} = 1");
        let before = pg.psql(&db, &read);
        pg.psql(
            &db,
            &format!("update {table} set {key} = {key} where {key} = 1"),
        );
        assert_eq!(
            pg.psql(&db, &read),
            before,
            "{table}: a no-op update moved updated_at"
        );
        pg.psql(&db, &format!("update {table} set {change} where {key} = 1"));
        let after = pg.psql(&db, &read);
        assert_eq!(
            pg.psql(
                &db,
                &format!("select '{after}'::timestamptz > '{before}'::timestamptz")
            ),
            "t",
            "{table}: updated_at {before} -> {after}"
        );
    }
}

/// The same cart (session, cart_version) can be ordered once.
#[test]
fn an_order_per_cart_version() {
    let pg = PgCluster::shared();
    let (_db, mut client) = migrated_database(pg, "orders");
    client
        .batch_execute("insert into sessions (id) values ('s1')")
        .unwrap();
    let place = "insert into orders (session_id, cart_version, name, email, address, total_cents) \
                 values ('s1', $1, 'Ann', 'ann@example.com', '1 Main St', 1999)";
    client.execute(place, &[&1i64]).unwrap();
    let twice = client.execute(place, &[&1i64]).unwrap_err();
    assert_eq!(twice.code(), Some(&SqlState::UNIQUE_VIOLATION), "{twice}");
    client.execute(place, &[&2i64]).unwrap();
}
