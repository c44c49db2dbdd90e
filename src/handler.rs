//! What `SetHandler esf` runs for a request: the controllers of esf-core,
//! and the page a visitor gets when one of them panics.
use esf_core::app;
use esf_core::config::DirConfig;
use esf_core::http::{Request as _, Response};
use esf_data::DataLayer;

use crate::apache::Request;

/// The response for one request in a section configured by `config`.
pub fn respond(config: &DirConfig, data: Option<&DataLayer>, req: &mut Request) -> Response {
    let mount = config.mount_for(req.path(), req.section_path());
    app::handle(config, mount, data, req)
}

/// The 500 page sent after a panic (the panic itself is in the error log).
pub fn panic_page(config: &DirConfig, req: &Request) -> Response {
    let mount = config.mount_for(req.path(), req.section_path());
    app::error_page(config, mount, 500, "Something went wrong on our side. Please try again in a moment.")
}
