//! What `SetHandler esf` runs for a request: the controllers of esf-core in
//! the context of the request's server, and the page a visitor gets when
//! one of them panics.
use esf_core::app;
use esf_core::config::DirConfig;
use esf_core::context::Context;
use esf_core::http::{Request as _, Response};
use esf_core::throttle::Counters;

use crate::apache::Request;
use crate::site::{MpmLimits, Server};

/// The response for one request in a section configured by `config`.
pub fn respond(config: &DirConfig, server: &Server, limits: impl FnOnce() -> MpmLimits, req: &mut Request) -> Response {
    let mount = config.mount_for(req.path(), req.section_path());
    let keys = server.keys();
    let cx = Context {
        pages: app::pages(config, mount),
        data: server.data(limits),
        keys: keys.map(|(k, _)| k),
        sealer: keys.map(|(_, s)| s),
        throttle: config.throttle.zip(server.throttle_slots().map(Counters::new)),
        origin: config.origin.as_deref(),
    };
    app::handle(config, &cx, req)
}

/// The 500 page sent after a panic (the panic itself is in the error log).
pub fn panic_page(config: &DirConfig, req: &Request) -> Response {
    let mount = config.mount_for(req.path(), req.section_path());
    app::error_page(config, mount, 500, "Something went wrong on our side. Please try again in a moment.")
}
