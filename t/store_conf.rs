//! Configuration snippets the module's tests share.
use crate::harness::{repo_root, Httpd, HttpdBuilder, Mpm};

/// Exactly the minimal configuration of INSTALL.md: the repository's
/// templates and one `<Location>` handed to mod_esf.
pub fn minimal(mpm: Mpm) -> HttpdBuilder {
    Httpd::builder(mpm).conf(&format!(
        "EsfTemplates {}\n<Location /store>\n    SetHandler esf\n</Location>",
        repo_root().join("templates").display()
    ))
}

/// The same, with the test-only panic route switched on.
pub fn with_panic_route(mpm: Mpm) -> HttpdBuilder {
    minimal(mpm).conf("<Location /store>\n    EsfPanicTest On\n</Location>")
}
