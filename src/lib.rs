//! mod_esf: an Apache httpd 2.4 module that serves dynamic sites from
//! compiled Rust inside httpd's own children.
//!
//! ```apache
//! LoadModule esf_module /usr/lib/apache2/modules/mod_esf.so
//! EsfTemplates /srv/store/templates
//! <Location /store>
//!     SetHandler esf
//! </Location>
//! ```
//!
//! Layout:
//! - [`apache`]: the one unsafe layer over httpd/APR (module record, hooks,
//!   configuration records, requests, error log);
//! - [`directives`]: every `Esf…` directive, one function each;
//! - [`handler`]: what a request for `SetHandler esf` runs;
//! - [`site`]: a server's settings and, in a child, its data layer;
//! - [`status`]: the status page (`SetHandler esf-status`) and the figures
//!   each child counts for it;
//! - [`recycle`]: a child's graceful exit past `EsfMaxRequestsPerChild` or
//!   `EsfMaxChildMemory`;
//! - [`procfs`]: what /proc says about this child and its siblings;
//! - the crate `esf-core`: everything that needs no Apache (directive
//!   values, templates, controllers, pages), unit-tested on its own.
pub mod apache;
pub mod directives;
pub mod handler;
pub mod procfs;
pub mod recycle;
pub mod site;
pub mod status;
