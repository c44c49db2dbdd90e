//! Ending this child gracefully from inside it: it stops taking
//! connections, finishes every request in flight on every thread, then
//! exits through the MPM's own graceful path (the one a graceful restart
//! uses), after which the parent forks a replacement as it needs.
//!
//! httpd offers modules no call for this, so each MPM is asked the way its
//! parent asks it:
//!
//! - prefork: `AP_SIG_GRACEFUL` (SIGUSR1). A prefork child's handler for it
//!   closes the child's copies of the listening sockets, marks the MPM
//!   stopping and sets `die_now`; the connection being served ends after
//!   the current response (the keep-alive loop stops when the MPM is
//!   stopping) and the child exits. The signal is raised on the calling
//!   thread, which is the one serving the request, so the handler runs
//!   synchronously at a point where this thread holds no lock.
//! - event and worker: the pipe of death. Their children block every
//!   signal but let the main thread take SIGTERM, and the main thread
//!   sits in `read(pod, 1 byte)`; on `'!'` it starts the graceful stop, on
//!   EINTR it checks whether one was asked for and reads again. The pipe is
//!   shared by all the children of a listener bucket, so a byte written to
//!   it would stop whichever child reads it first. Instead this child puts
//!   a pipe of its own, holding `'!'`, in place of its pipe-of-death
//!   descriptor (dup3 swaps the descriptor atomically; the blocked read
//!   keeps the old pipe) and sends SIGTERM to its main thread: the read is
//!   interrupted, the next read gets the `'!'` and the MPM stops the child
//!   exactly as on a graceful restart. The descriptor is found once per
//!   generation in the parent: the FIFOs that appear while the MPM's
//!   open_logs hook runs (it opens the pipes of death there), checked again
//!   in the child by inode.
use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::ffi;

/// A pipe end: descriptor, device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fifo {
    fd: c_int,
    dev: u64,
    ino: u64,
    readable: bool,
}

/// FIFOs open before the MPM's open_logs hook ran.
static BEFORE_MPM: Mutex<Vec<Fifo>> = Mutex::new(Vec::new());
/// Read ends of the pipes of death of this generation (one per listener
/// bucket); inherited by each child at fork.
static PIPES_OF_DEATH: Mutex<Vec<Fifo>> = Mutex::new(Vec::new());

/// Modules whose open_logs hook opens pipes of death.
struct HookNames([*const c_char; 3]);
// SAFETY: pointers to 'static C strings, never written.
unsafe impl Sync for HookNames {}
static POD_MPMS: HookNames = HookNames([c"event.c".as_ptr(), c"worker.c".as_ptr(), std::ptr::null()]);
static CORE: HookNames = HookNames([c"core.c".as_ptr(), std::ptr::null(), std::ptr::null()]);

/// Registers the open_logs hooks that find the pipes of death: one just
/// before the MPM's, one just after (before core opens the error logs).
///
/// # Safety
/// Called from register_hooks.
pub unsafe fn register_hooks() {
    const FIRST: c_int = ffi::APR_HOOK_REALLY_FIRST as c_int;
    // SAFETY: the name arrays are 'static and NULL-terminated; the
    // functions live as long as the module.
    unsafe {
        ffi::ap_hook_open_logs(Some(before_mpm_open_logs), std::ptr::null(), POD_MPMS.0.as_ptr(), FIRST);
        ffi::ap_hook_open_logs(Some(after_mpm_open_logs), POD_MPMS.0.as_ptr(), CORE.0.as_ptr(), FIRST);
    }
}

unsafe extern "C" fn before_mpm_open_logs(_: *mut ffi::apr_pool_t, _: *mut ffi::apr_pool_t, _: *mut ffi::apr_pool_t, _: *mut ffi::server_rec) -> c_int {
    super::guard::catch(|| *BEFORE_MPM.lock() = open_fifos(), || ());
    ffi::OK as c_int
}

unsafe extern "C" fn after_mpm_open_logs(_: *mut ffi::apr_pool_t, _: *mut ffi::apr_pool_t, _: *mut ffi::apr_pool_t, _: *mut ffi::server_rec) -> c_int {
    super::guard::catch(
        || {
            let before = std::mem::take(&mut *BEFORE_MPM.lock());
            let new: Vec<Fifo> = open_fifos().into_iter().filter(|f| !before.contains(f)).collect();
            // A pipe of death is a new pipe with both ends open here.
            let pods = new.iter().filter(|f| f.readable && new.iter().any(|w| !w.readable && (w.dev, w.ino) == (f.dev, f.ino))).copied().collect();
            *PIPES_OF_DEATH.lock() = pods;
        },
        || (),
    );
    ffi::OK as c_int
}

/// `fstat` of `fd` when it is a FIFO.
fn fifo(fd: c_int) -> Option<Fifo> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes a whole struct stat on success; fcntl(F_GETFL)
    // reads only the descriptor's flags. A closed descriptor fails both.
    unsafe {
        if libc::fstat(fd, st.as_mut_ptr()) != 0 {
            return None;
        }
        let st = st.assume_init();
        if st.st_mode & libc::S_IFMT != libc::S_IFIFO {
            return None;
        }
        let flags = libc::fcntl(fd, libc::F_GETFL);
        (flags >= 0).then_some(Fifo { fd, dev: st.st_dev, ino: st.st_ino, readable: flags & libc::O_ACCMODE == libc::O_RDONLY })
    }
}

/// Every FIFO this process has open.
fn open_fifos() -> Vec<Fifo> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<c_int>().ok()).filter_map(fifo).collect()
}

/// Why the child could not be asked to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopError {
    /// The MPM is still starting the child: ask again on a later request.
    NotYet,
    /// It never will be (unknown MPM, no pipe of death found, ...).
    Unable(String),
}

/// SIGTERM's handler in this child when child_init ran: the MPM's
/// "exit now" one, which event and worker replace with a harmless one
/// once the main thread is ready to read the pipe of death.
static SIGTERM_HANDLER_AT_START: AtomicUsize = AtomicUsize::new(0);

fn sigterm_handler() -> usize {
    let mut current = std::mem::MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: with a NULL new action, sigaction only writes the current one.
    unsafe {
        if libc::sigaction(libc::SIGTERM, std::ptr::null(), current.as_mut_ptr()) != 0 {
            return 0;
        }
        current.assume_init().sa_sigaction
    }
}

/// Notes what the child starts with (call from child_init).
pub fn note_child_start() {
    SIGTERM_HANDLER_AT_START.store(sigterm_handler(), Ordering::Relaxed);
}

/// Asks the MPM to stop this child gracefully (see the module doc); the
/// request being served is not affected.
pub fn stop_gracefully() -> Result<(), StopError> {
    match super::mpm::name() {
        "prefork" => {
            // SAFETY: raise(3) delivers AP_SIG_GRACEFUL to this thread
            // before it returns; prefork's handler (installed before the
            // child started) only closes the child's listening sockets and
            // sets flags, and this thread holds no lock of httpd's or APR's.
            match unsafe { libc::raise(libc::SIGUSR1) } {
                0 => Ok(()),
                _ => Err(StopError::Unable(format!("raise(SIGUSR1) failed: {}", std::io::Error::last_os_error()))),
            }
        }
        "event" | "worker" => wake_main_thread_with_graceful_byte(),
        other => Err(StopError::Unable(format!("the {other} MPM has no graceful stop that mod_esf knows"))),
    }
}

fn wake_main_thread_with_graceful_byte() -> Result<(), StopError> {
    // Until the main thread has swapped in its SIGTERM handler, SIGTERM
    // would end the child at once.
    if sigterm_handler() == SIGTERM_HANDLER_AT_START.load(Ordering::Relaxed) {
        return Err(StopError::NotYet);
    }
    let candidates = PIPES_OF_DEATH.lock().clone();
    let ours: Vec<Fifo> = candidates.into_iter().filter(|pod| fifo(pod.fd) == Some(*pod)).collect();
    let [pod] = ours[..] else {
        return Err(StopError::Unable(format!("found {} pipes of death in this child, expected one", ours.len())));
    };
    let os_error = |what: &str| StopError::Unable(format!("{what}: {}", std::io::Error::last_os_error()));
    let mut ends = [0 as c_int; 2];
    let byte = [ffi::AP_MPM_PODX_GRACEFUL_CHAR];
    // SAFETY: pipe2 fills `ends` with two new descriptors; write reads one
    // byte from `byte`. dup3 replaces descriptor `pod.fd` (which this
    // child owns: the MPM's pipe of death, checked by inode just above)
    // atomically, with no window where the number is free for another
    // open; the main thread's read already under way keeps the old pipe.
    // The new write end stays open for the life of the process (the main
    // thread stops reading after the '!'). tgkill targets the main thread
    // (tid == pid), the only one with SIGTERM unblocked in these MPMs; its
    // handler there does nothing but interrupt the read.
    unsafe {
        if libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(os_error("pipe2"));
        }
        if libc::write(ends[1], byte.as_ptr().cast::<c_void>(), 1) != 1 {
            let e = os_error("write");
            libc::close(ends[0]);
            libc::close(ends[1]);
            return Err(e);
        }
        if libc::dup3(ends[0], pod.fd, libc::O_CLOEXEC) < 0 {
            let e = os_error("dup3");
            libc::close(ends[0]);
            libc::close(ends[1]);
            return Err(e);
        }
        libc::close(ends[0]);
        let pid = libc::getpid();
        if libc::syscall(libc::SYS_tgkill, pid, pid, libc::SIGTERM) != 0 {
            return Err(os_error("tgkill"));
        }
    }
    Ok(())
}
