//! Integration tests: a real httpd loading the freshly built module.
mod harness;
mod harness_selftest;
mod postgres_cluster;
