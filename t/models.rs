//! The Models and the PostgreSQL handles, in-process against the real
//! cluster and real LMDB files: transactions roll back, checkout is all or
//! nothing, carts are written through so another app server reads them.
use esf_data::db::DbError;
use esf_data::order::{Checkout, Customer, Order};
use esf_data::product::Product;
use esf_data::session::Session;
use esf_data::{DataLayer, DataSettings};

use crate::harness::PgCluster;
use crate::store_fixture::{cache_dir, store_database};

fn layer(cluster: &PgCluster, db: &str) -> DataLayer {
    DataLayer::open(&DataSettings {
        database: Some(cluster.conninfo(db)),
        pool_size: 2,
        cache_dir: Some(cache_dir()),
        cache_size: 64 << 20,
        cache_readers: 64,
        search: None,
    })
    .expect("open data layer")
}

fn on_hand(cluster: &PgCluster, db: &str, product: i32) -> i32 {
    cluster.psql(db, &format!("SELECT on_hand FROM inventory WHERE product_id = {product}")).trim().parse().unwrap()
}

fn customer() -> Customer {
    Customer { name: "Ann <Shopper>".into(), email: "ann@example.com".into(), address: "1 Main St".into() }
}

#[test]
fn a_transaction_rolls_back_on_error_and_on_panic() {
    let cluster = PgCluster::shared();
    let db = store_database(cluster, "rollback");
    let data = layer(cluster, &db);
    let before = on_hand(cluster, &db, 1);
    let pool = data.db().unwrap();

    let result: Result<(), DbError> = pool.handle().unwrap().transaction(|tx| {
        tx.execute("UPDATE inventory SET on_hand = on_hand + 1000 WHERE product_id = $1", &[&1i32])?;
        Err(DbError::Unavailable("refused on purpose".into()))
    });
    assert!(result.is_err());
    assert_eq!(on_hand(cluster, &db, 1), before, "rolled back on Err");

    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _: Result<(), DbError> = pool.handle().unwrap().transaction(|tx| {
            tx.execute("UPDATE inventory SET on_hand = on_hand + 1000 WHERE product_id = $1", &[&1i32])?;
            panic!("a bug in the middle of a transaction");
        });
    }));
    assert!(panicked.is_err());
    assert_eq!(on_hand(cluster, &db, 1), before, "rolled back on panic");
    let stats = pool.stats();
    assert_eq!(stats.in_use, 0);
    assert!(stats.broken >= 1, "a connection used by a panicking thread is closed, not pooled: {stats:?}");

    // The pool goes on serving, and a constraint error is a Query error.
    let err = pool.handle().unwrap().execute("UPDATE inventory SET on_hand = -1 WHERE product_id = $1", &[&1i32]).unwrap_err();
    assert!(err.is_check_violation(), "{err}");
    assert!(Product::load(&data, 1).unwrap().is_some());
}

#[test]
fn checkout_is_all_or_nothing_and_never_twice() {
    let cluster = PgCluster::shared();
    let db = store_database(cluster, "checkout");
    let data = layer(cluster, &db);
    cluster.psql(&db, "UPDATE inventory SET on_hand = 5 WHERE product_id = 2; UPDATE inventory SET on_hand = 1 WHERE product_id = 3");

    Session::add_to_cart(&data, "s1", 2, 2).unwrap();
    let session = Session::add_to_cart(&data, "s1", 3, 4).unwrap();
    assert_eq!(session.lines.len(), 2);

    let outcome = Order::place(&data, "s1", Some(session.cart_version), &customer()).unwrap();
    assert!(matches!(outcome, Checkout::OutOfStock { product_id: 3, .. }), "{outcome:?}");
    assert_eq!(on_hand(cluster, &db, 2), 5, "nothing taken");
    assert_eq!(cluster.psql(&db, "SELECT count(*) FROM orders"), "0");
    assert_eq!(Session::load(&data, "s1").unwrap().unwrap().lines.len(), 2, "the cart is intact");

    let session = Session::set_quantity(&data, "s1", 3, 1).unwrap();
    let Checkout::Placed(order_id) = Order::place(&data, "s1", Some(session.cart_version), &customer()).unwrap() else { panic!("not placed") };
    assert_eq!(on_hand(cluster, &db, 2), 3);
    assert_eq!(on_hand(cluster, &db, 3), 0);
    assert!(Session::load(&data, "s1").unwrap().unwrap().lines.is_empty(), "the cart is emptied");

    // The same cart submitted again: the same order, not a second one.
    assert_eq!(Order::place(&data, "s1", Some(session.cart_version), &customer()).unwrap(), Checkout::AlreadyPlaced(order_id));
    assert_eq!(cluster.psql(&db, "SELECT count(*) FROM orders"), "1");

    let order = Order::load_for(&data, order_id, "s1").unwrap().expect("the owner sees it");
    assert_eq!(order.lines.len(), 2);
    assert_eq!(order.name, "Ann <Shopper>");
    assert!(Order::load_for(&data, order_id, "someone-else").unwrap().is_none(), "nobody else does");
}

#[test]
fn carts_are_written_through_for_other_app_servers() {
    let cluster = PgCluster::shared();
    let db = store_database(cluster, "writethrough");
    let server_a = layer(cluster, &db);
    let server_b = layer(cluster, &db); // its own LMDB cache

    Session::add_to_cart(&server_a, "s2", 4, 98).unwrap();
    let session = Session::add_to_cart(&server_a, "s2", 4, 5).unwrap();
    assert_eq!(session.lines[0].qty, 99, "capped at 99");
    drop(server_a); // the app server is lost

    let picked_up = Session::load(&server_b, "s2").unwrap().expect("read back from PostgreSQL");
    assert_eq!(picked_up, session);
}
