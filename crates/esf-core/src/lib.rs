//! mod_esf without Apache.
//!
//! Everything here is safe Rust that can be unit-tested without httpd: the
//! values the `Esf…` directives take ([`config`]), the Liquid views
//! ([`templates`], [`view`]), the HTTP shapes a controller sees ([`http`]),
//! the friendly error pages ([`pages`]) and the controllers themselves
//! ([`app`]). The module crate at the repository root adapts httpd's
//! `request_rec` to [`http::Request`] and calls [`app::handle`].
pub mod app;
pub mod controllers;
pub mod config;
pub mod context;
pub mod http;
pub mod pages;
pub mod recycle;
pub mod sealed;
pub mod session;
pub mod status;
pub mod status_page;
pub mod templates;
pub mod throttle;
pub mod view;
