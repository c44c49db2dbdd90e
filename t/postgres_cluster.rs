//! The shared PostgreSQL cluster: it answers queries, and each test's
//! database is separate from the others.
use crate::harness::PgCluster;

#[test]
fn shared_cluster_answers_queries() {
    let pg = PgCluster::shared();
    assert_eq!(pg.psql("postgres", "select 1"), "1");
    assert_eq!(pg.psql("postgres", "show fsync"), "off");
    assert!(pg
        .socket_dir()
        .join(format!(".s.PGSQL.{}", pg.port()))
        .exists());
}

#[test]
fn create_database_gives_distinct_databases() {
    let pg = PgCluster::shared();
    let first = pg.create_database("distinct");
    let second = pg.create_database("distinct");
    assert_ne!(first, second);
    assert_eq!(pg.psql(&first, "select current_database()"), first);
    assert_eq!(pg.psql(&second, "select current_database()"), second);
}

#[test]
fn tables_are_not_shared_between_databases() {
    let pg = PgCluster::shared();
    let mine = pg.create_database("isolated");
    let other = pg.create_database("isolated");
    pg.psql(
        &mine,
        "create table notes (body text); insert into notes values ('hello')",
    );
    assert_eq!(pg.psql(&mine, "select body from notes"), "hello");
    let visible = "select count(*) from pg_tables where tablename = 'notes'";
    assert_eq!(pg.psql(&mine, visible), "1");
    assert_eq!(pg.psql(&other, visible), "0");
}

#[test]
fn conninfo_names_the_socket_and_database() {
    let pg = PgCluster::shared();
    let db = pg.create_database("conninfo");
    let info = pg.conninfo(&db);
    assert!(info.contains(&format!("dbname={db}")), "{info}");
    assert!(
        info.contains(&format!("host={}", pg.socket_dir().display())),
        "{info}"
    );
    assert!(info.contains(&format!("port={}", pg.port())), "{info}");
}

/// httpd children run as www-data and connect over the unix socket.
#[test]
fn www_data_can_connect_over_the_socket() {
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let pg = PgCluster::shared();
    let db = pg.create_database("www_data");
    let out = std::process::Command::new("runuser")
        .args([
            "-u",
            "www-data",
            "--",
            "/usr/bin/psql",
            "-X",
            "-A",
            "-t",
            "-c",
            "select current_database()",
        ])
        .arg(pg.conninfo(&db))
        .current_dir("/")
        .output()
        .expect("run psql as www-data");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), db);
}

/// A restart drops every session: a connection made before it fails, a
/// new one works, and the data survives.
#[test]
fn private_cluster_restarts() {
    use esf_schema::postgres::{Client, NoTls};
    let pg = PgCluster::private();
    let db = pg.create_database("restart");
    pg.psql(
        &db,
        "create table kept (n int); insert into kept values (7)",
    );
    let mut before = Client::connect(&pg.conninfo(&db), NoTls).expect("connect before");
    before
        .simple_query("select 1")
        .expect("query before the restart");

    pg.restart();

    assert!(
        before.simple_query("select 1").is_err(),
        "old connection still works"
    );
    let mut after = Client::connect(&pg.conninfo(&db), NoTls).expect("connect after");
    let kept: i32 = after.query_one("select n from kept", &[]).unwrap().get(0);
    assert_eq!(kept, 7);
}

/// stop() refuses connections until start(); dropping the cluster ends
/// its postmaster.
#[test]
fn private_cluster_stops_starts_and_ends_on_drop() {
    use esf_schema::postgres::{Client, NoTls};
    let pg = PgCluster::private();
    let conninfo = pg.conninfo("postgres");

    pg.stop();
    assert!(
        Client::connect(&conninfo, NoTls).is_err(),
        "connected to a stopped cluster"
    );
    pg.start();
    Client::connect(&conninfo, NoTls).expect("connect after start");

    let pid = pg.postmaster_pid().expect("postmaster.pid");
    assert!(crate::harness::alive(pid));
    drop(pg);
    assert!(
        !crate::harness::alive(pid),
        "postmaster {pid} outlived its cluster"
    );
}
