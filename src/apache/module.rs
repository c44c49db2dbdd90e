//! The `module` record httpd looks up by the symbol `esf_module` when it
//! reads `LoadModule esf_module …/mod_esf.so`.
//!
//! It is declared here in Rust rather than in a C shim: rustc does not export
//! a C object's symbols from a cdylib, so LoadModule would not find it.
use std::ffi::{c_int, c_ulong};

use super::config;
use super::ffi;
use super::hooks;

/// Written by httpd (module_index, next, dynamic_load_handle), hence `static mut`.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut esf_module: ffi::module = ffi::module {
    version: ffi::MODULE_MAGIC_NUMBER_MAJOR as c_int,
    minor_version: ffi::MODULE_MAGIC_NUMBER_MINOR as c_int,
    module_index: -1,
    // The name `<IfModule mod_esf.c>` matches, like a C module's __FILE__.
    name: c"mod_esf.c".as_ptr(),
    dynamic_load_handle: std::ptr::null_mut(),
    next: std::ptr::null_mut(),
    magic: ffi::MODULE_MAGIC_COOKIE as c_ulong,
    rewrite_args: None,
    create_dir_config: Some(config::create_dir_config),
    merge_dir_config: Some(config::merge_dir_config),
    create_server_config: Some(config::create_server_config),
    merge_server_config: Some(config::merge_server_config),
    cmds: crate::directives::COMMANDS.as_ptr().cast::<ffi::command_rec>(),
    register_hooks: Some(hooks::register_hooks),
    flags: 0,
};

/// This module's index in httpd's configuration vectors.
pub fn module_index() -> c_int {
    // SAFETY: httpd sets module_index once, while loading the module and
    // before calling any of its functions; afterwards it is only read.
    unsafe { esf_module.module_index }
}
