//! Declaring directives to httpd.
//!
//! A directive is a safe Rust function over a [`DirectiveCx`]; [`take1`]
//! and [`take_argv`] turn one into the `command_rec` httpd reads,
//! with a trampoline that converts the C arguments, catches panics and hands
//! an `Err` back as the configuration error (which `apachectl -t` prints
//! with the file and line).
use std::ffi::{c_char, c_int, c_void, CStr};

use esf_core::config::{DirConfig, DirectiveError, DirectiveResult, ServerConfig};

use super::config;
use super::ffi;
use super::guard;
use super::pool::Pool;

/// What a directive handler may touch while the configuration is read.
pub struct DirectiveCx<'a> {
    cmd: &'a mut ffi::cmd_parms,
    dir: *mut DirConfig,
}

impl DirectiveCx<'_> {
    /// The settings of the server or `<VirtualHost>` being read.
    pub fn server_config(&mut self) -> &mut ServerConfig {
        // SAFETY: cmd->server is the server being configured; its config was
        // made by our create_server_config; reading the configuration is
        // single-threaded, so this is the only reference.
        unsafe { config::server_config_mut(self.cmd.server) }
    }

    /// The settings of the section (`<Location>`, ...) being read.
    pub fn dir_config(&mut self) -> &mut DirConfig {
        // SAFETY: mconfig is the section's config, made by our
        // create_dir_config; single-threaded as above.
        unsafe { &mut *self.dir }
    }

    /// Whether the directive is inside a `<VirtualHost>`.
    pub fn in_virtual_host(&self) -> bool {
        // SAFETY: cmd->server is the live server_rec being configured.
        unsafe { (*self.cmd.server).is_virtual != 0 }
    }

    /// `path` made absolute against ServerRoot, as httpd does for its own
    /// directives (a relative `EsfTemplates templates` means ServerRoot/templates).
    pub fn server_root_relative(&self, path: &str) -> std::path::PathBuf {
        // SAFETY: cmd->pool is live; the C copy is NUL-terminated; the result
        // is NULL or a NUL-terminated pool string.
        unsafe {
            let pool = Pool::from_raw(self.cmd.pool);
            let full = ffi::ap_server_root_relative(pool.as_raw(), pool.c_str(path));
            if full.is_null() {
                return path.into();
            }
            std::path::PathBuf::from(CStr::from_ptr(full).to_string_lossy().into_owned())
        }
    }
}

pub type TakeOne = fn(&mut DirectiveCx, &str) -> DirectiveResult<()>;
pub type TakeArgv = fn(&mut DirectiveCx, &[&str]) -> DirectiveResult<()>;

/// Where a directive may appear.
#[derive(Clone, Copy)]
pub enum Context {
    /// Server config and `<VirtualHost>`.
    Server,
    /// Also `<Location>`, `<Directory>` and friends.
    Anywhere,
}

impl Context {
    const fn bits(self) -> c_int {
        (match self {
            Context::Server => ffi::RSRC_CONF,
            Context::Anywhere => ffi::RSRC_CONF | ffi::ACCESS_CONF,
        }) as c_int
    }
}

/// One entry of the directive table handed to httpd.
#[repr(transparent)]
pub struct Command(ffi::command_rec);

// SAFETY: a Command only holds pointers to 'static C strings and functions,
// and httpd never writes to the table.
unsafe impl Sync for Command {}

pub const fn take1(name: &'static CStr, handler: TakeOne, context: Context, help: &'static CStr) -> Command {
    command(name, ffi::cmd_func { take1: Some(take1_trampoline) }, handler as *mut c_void, context, ffi::cmd_how_TAKE1, help)
}

pub const fn take_argv(name: &'static CStr, handler: TakeArgv, context: Context, help: &'static CStr) -> Command {
    command(name, ffi::cmd_func { take_argv: Some(take_argv_trampoline) }, handler as *mut c_void, context, ffi::cmd_how_TAKE_ARGV, help)
}

/// The all-NULL entry that ends the table.
pub const END: Command = Command(ffi::command_rec {
    name: std::ptr::null(),
    func: ffi::cmd_func { no_args: None },
    cmd_data: std::ptr::null_mut(),
    req_override: 0,
    args_how: 0,
    errmsg: std::ptr::null(),
});

const fn command(
    name: &'static CStr,
    func: ffi::cmd_func,
    handler: *mut c_void,
    context: Context,
    how: ffi::cmd_how,
    help: &'static CStr,
) -> Command {
    Command(ffi::command_rec { name: name.as_ptr(), func, cmd_data: handler, req_override: context.bits(), args_how: how, errmsg: help.as_ptr() })
}

/// Converts one C argument; `None` when it is not UTF-8.
///
/// # Safety
/// `arg` must be a NUL-terminated string that lives for `'a`.
unsafe fn arg<'a>(arg: *const c_char) -> Option<&'a str> {
    unsafe { CStr::from_ptr(arg) }.to_str().ok()
}

/// Runs a handler for `cmd`: panics and errors become the message httpd prints.
///
/// # Safety
/// `cmd` and `mconfig` are what httpd passed to the directive function.
unsafe fn run(cmd: *mut ffi::cmd_parms, mconfig: *mut c_void, body: impl FnOnce(&mut DirectiveCx) -> DirectiveResult<()>) -> *const c_char {
    // SAFETY: httpd passes a valid cmd_parms whose pool lives at least as
    // long as the configuration, and our dir config as mconfig.
    let (pool, name) = unsafe { (Pool::from_raw((*cmd).pool), directive_name(cmd)) };
    let mut cx = DirectiveCx { cmd: unsafe { &mut *cmd }, dir: mconfig.cast() };
    let result = guard::catch(|| body(&mut cx), || Err(DirectiveError::new(name, "", "the module failed reading this directive (see the error log)")));
    match result {
        Ok(()) => std::ptr::null(),
        Err(e) => pool.c_str(&e.to_string()),
    }
}

/// The directive's name as written in the table (for panic messages).
unsafe fn directive_name(cmd: *mut ffi::cmd_parms) -> &'static str {
    // SAFETY: cmd->cmd points into our static table, whose names are 'static.
    unsafe { CStr::from_ptr((*(*cmd).cmd).name) }.to_str().unwrap_or("Esf directive")
}

fn not_utf8(name: &'static str) -> DirectiveError {
    DirectiveError::new(name, "(not UTF-8)", "expected UTF-8 text")
}

unsafe extern "C" fn take1_trampoline(cmd: *mut ffi::cmd_parms, mconfig: *mut c_void, w: *const c_char) -> *const c_char {
    // SAFETY: cmd->info is the TakeOne that `take1` stored as cmd_data;
    // `w` is httpd's NUL-terminated argument, alive during the call.
    unsafe {
        let handler: TakeOne = std::mem::transmute::<*mut c_void, TakeOne>((*cmd).info);
        let name = directive_name(cmd);
        run(cmd, mconfig, |cx| handler(cx, arg(w).ok_or_else(|| not_utf8(name))?))
    }
}

unsafe extern "C" fn take_argv_trampoline(cmd: *mut ffi::cmd_parms, mconfig: *mut c_void, argc: c_int, argv: *const *mut c_char) -> *const c_char {
    // SAFETY: cmd->info is the TakeArgv stored by `take_argv`; argv holds
    // argc NUL-terminated strings alive during the call.
    unsafe {
        let handler: TakeArgv = std::mem::transmute::<*mut c_void, TakeArgv>((*cmd).info);
        let name = directive_name(cmd);
        let raw = std::slice::from_raw_parts(argv, usize::try_from(argc).unwrap_or(0));
        let args: Option<Vec<&str>> = raw.iter().map(|&a| arg(a)).collect();
        run(cmd, mconfig, |cx| handler(cx, &args.ok_or_else(|| not_utf8(name))?))
    }
}
