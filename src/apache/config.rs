//! The per-server and per-directory configuration records httpd keeps for
//! the module: created, merged and found again.
//!
//! Each record is a Rust value adopted by the pool httpd gives (the
//! configuration pool of the generation), so it is dropped when a graceful
//! restart throws that generation away.
use std::ffi::{c_char, c_void, CStr};

use esf_core::config::{DirConfig, ServerConfig};

use crate::site::Server;

use super::ffi;
use super::guard;
use super::module::module_index;
use super::pool::Pool;

pub unsafe extern "C" fn create_server_config(p: *mut ffi::apr_pool_t, _s: *mut ffi::server_rec) -> *mut c_void {
    // SAFETY: httpd passes the live configuration pool.
    let pool = unsafe { Pool::from_raw(p) };
    guard::catch(|| pool.adopt(Server::new(ServerConfig::default())).cast(), std::ptr::null_mut)
}

pub unsafe extern "C" fn merge_server_config(p: *mut ffi::apr_pool_t, base: *mut c_void, add: *mut c_void) -> *mut c_void {
    // SAFETY: base and add are records made by create/merge_server_config,
    // alive in the configuration pool; `p` is live.
    let (pool, base, add) = unsafe { (Pool::from_raw(p), &*base.cast::<Server>(), &*add.cast::<Server>()) };
    guard::catch(|| pool.adopt(Server::new(ServerConfig::merge(&base.config, &add.config))).cast(), std::ptr::null_mut)
}

pub unsafe extern "C" fn create_dir_config(p: *mut ffi::apr_pool_t, dir: *mut c_char) -> *mut c_void {
    // SAFETY: `dir` is NULL (server level) or the section's NUL-terminated path.
    let (pool, section) = unsafe { (Pool::from_raw(p), (!dir.is_null()).then(|| CStr::from_ptr(dir))) };
    let section = section.and_then(|s| s.to_str().ok());
    guard::catch(|| pool.adopt(DirConfig::for_section(section)).cast(), std::ptr::null_mut)
}

pub unsafe extern "C" fn merge_dir_config(p: *mut ffi::apr_pool_t, base: *mut c_void, add: *mut c_void) -> *mut c_void {
    // SAFETY: as merge_server_config, for DirConfig records.
    let (pool, base, add) = unsafe { (Pool::from_raw(p), &*base.cast::<DirConfig>(), &*add.cast::<DirConfig>()) };
    guard::catch(|| pool.adopt(DirConfig::merge(base, add)).cast(), std::ptr::null_mut)
}

/// This module's entry in a configuration vector.
///
/// # Safety
/// `vector` must be a live `ap_conf_vector_t` of the running configuration.
unsafe fn module_config(vector: *mut ffi::ap_conf_vector_t) -> *mut c_void {
    // SAFETY: a conf vector is an array of void* indexed by module_index
    // (what the ap_get_module_config macro does).
    unsafe { *vector.cast::<*mut c_void>().add(module_index() as usize) }
}

/// # Safety
/// `s` is a live server_rec; the caller holds the only reference (config time).
pub unsafe fn server_config_mut<'a>(s: *mut ffi::server_rec) -> &'a mut ServerConfig {
    unsafe { &mut (*module_config((*s).module_config).cast::<Server>()).config }
}

/// # Safety
/// `s` is a live server_rec of the running configuration.
pub unsafe fn server<'a>(s: *const ffi::server_rec) -> &'a Server {
    unsafe { &*module_config((*s).module_config).cast::<Server>() }
}

/// Every server of the configuration: the main one, then each vhost.
///
/// # Safety
/// `main` is the live main server_rec (its `next` chain lists the vhosts).
pub unsafe fn all_servers<'a>(main: *const ffi::server_rec) -> Vec<&'a Server> {
    let mut servers = Vec::new();
    let mut s = main;
    while !s.is_null() {
        servers.push(unsafe { server(s) });
        s = unsafe { (*s).next };
    }
    servers
}

/// # Safety
/// `r` is the live request; the record outlives it (configuration pool).
pub unsafe fn dir_config<'a>(r: *const ffi::request_rec) -> &'a DirConfig {
    unsafe { &*module_config((*r).per_dir_config).cast::<DirConfig>() }
}
