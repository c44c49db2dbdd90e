//! Shared harness for the integration tests: real httpd instances loading the
//! freshly built module, a raw HTTP/1.1 client and a throwaway PostgreSQL
//! cluster.
//!
//! Not every test file uses every helper, hence the allowances.
#![allow(dead_code, unused_imports)]

mod http;
mod httpd;
mod paths;
mod postgres;
mod process;
mod searchd;

pub use http::{request, Client, HttpError, HttpResponse};
pub use httpd::{Httpd, HttpdBuilder, Mpm};
pub use paths::{binary_path, give_to_www_data, module_path, repo_root, state_dir};
pub use postgres::PgCluster;
pub use process::{alive, children_of};
pub use searchd::{exists, searchd_path, Connection as SearchdConnection, Searchd};

use std::net::TcpListener;

/// A loopback TCP port that was free a moment ago. Another process can take
/// it before the caller binds it, so callers retry on "address in use".
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}
