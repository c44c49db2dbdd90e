//! Integration tests: a real httpd (Debian's apache2) loading the freshly
//! built module, and a real PostgreSQL cluster under target/.
mod harness;
mod store_conf;

mod configtest;
mod graceful;
mod harness_selftest;
mod hello;
mod panic;
mod postgres_cluster;
mod schema_import;
mod data_layer;
mod models;
mod store_fixture;
mod store;
mod templates;
mod listing_search;
mod check_store;
mod tier_fixture;
mod front_tier;
mod deploy;
mod bring_up;
mod mod_perl;
mod searchd;
mod status;
mod recycling;
