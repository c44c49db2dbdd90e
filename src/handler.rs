//! What `SetHandler esf` runs for a request: the controllers of esf-core,
//! and the page a visitor gets when one of them panics.
use esf_core::app;
use esf_core::config::DirConfig;
use esf_core::http::{Request, Response};

/// The response for one request in a section configured by `config`.
pub fn respond(config: &DirConfig, req: &mut dyn Request) -> Response {
    app::handle(config, req)
}

/// The 500 page sent after a panic (the panic itself is in the error log).
pub fn panic_page(config: &DirConfig) -> Response {
    app::error_page(config, 500, "Something went wrong on our side. Please try again in a moment.")
}
