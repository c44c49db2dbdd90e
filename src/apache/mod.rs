//! The only layer that touches httpd and APR.
//!
//! Every `unsafe` block and raw pointer of the module lives below this
//! module (httpd and APR, and in [`lmdb_readers`] the one LMDB call that
//! the safe binding lacks); what it exports is safe: [`Request`] (read a request, send a
//! response), [`DirectiveCx`] (what a directive may configure), the
//! directive table builders and error-log writing. Every function httpd
//! calls catches panics ([`guard`]) so none unwinds into C.
mod child_stop;
mod config;
mod directive;
mod ffi;
mod guard;
mod hooks;
mod lmdb_readers;
pub mod log;
mod module;
mod mpm;
mod pool;
mod request;
mod shm;
mod status_shm;

pub use child_stop::{stop_gracefully as stop_child_gracefully, StopError};
pub use directive::{take1, take_argv, Command, Context, DirectiveCx, END};
pub use request::Request;
