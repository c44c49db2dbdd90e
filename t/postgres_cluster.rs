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
