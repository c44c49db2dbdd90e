//! Real httpd instances for the tests: each one gets its own directory under
//! target/t/ with a generated httpd.conf that loads the freshly built
//! module, listens on a free loopback port and runs under the chosen MPM.
//!
//! httpd runs with -DFOREGROUND, so its parent process is our child: we can
//! reap it, and nothing outlives the test that started it. It gets its own
//! process group, since prefork's shutdown signals the whole group.
//! Processes are only ever signalled by pid: other tests run instances in
//! parallel.
use super::free_port;
use super::http::{request, Client, HttpResponse};
use super::paths::{module_path, set_mode, state_dir};
use super::process::{children_of, group_members, running_as_root, signal, wait_or_kill};
use std::fs::{self, File};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const APACHE2: &str = "/usr/sbin/apache2";
const MODULES: &str = "/usr/lib/apache2/modules";
const STARTUP: Duration = Duration::from_secs(15);
const SHUTDOWN: Duration = Duration::from_secs(10);
const PORT_ATTEMPTS: usize = 5;
/// Logged (at notice) by the MPM each time a generation is up.
const READY: &str = "resuming normal operations";

/// The MPMs the tests run under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mpm {
    Prefork,
    Event,
}

impl Mpm {
    pub const ALL: [Mpm; 2] = [Mpm::Prefork, Mpm::Event];

    fn name(self) -> &'static str {
        match self {
            Mpm::Prefork => "prefork",
            Mpm::Event => "event",
        }
    }

    /// The LoadModule line and modest process/thread limits.
    fn conf(self) -> String {
        let tuning = match self {
            Mpm::Prefork => {
                "StartServers 2\nMinSpareServers 2\nMaxSpareServers 4\nMaxRequestWorkers 32"
            }
            Mpm::Event => {
                "StartServers 2\nServerLimit 4\nThreadsPerChild 16\nMaxRequestWorkers 64\n\
                 MinSpareThreads 16\nMaxSpareThreads 48"
            }
        };
        let name = self.name();
        format!("LoadModule mpm_{name}_module {MODULES}/mod_mpm_{name}.so\n{tuning}\n")
    }
}

/// Configures an instance: `Httpd::builder(mpm).conf(..).file(..).start()`.
/// `{root}` in conf and file text stands for the instance directory.
pub struct HttpdBuilder {
    mpm: Mpm,
    conf: String,
    files: Vec<(PathBuf, String)>,
    installed_module: bool,
    shipped: Option<Shipped>,
    writable_dirs: Vec<String>,
}

/// A configuration file from apache-conf/, run as shipped: the builder
/// only `Define`s the variables it reads.
struct Shipped {
    file: PathBuf,
    /// The variable that holds the `Listen` address.
    listen_variable: &'static str,
    defines: Vec<(String, String)>,
}

/// Where `installed_module()` puts the module, relative to the instance dir.
const INSTALLED_MODULE: &str = "modules/mod_esf.so";

/// Copies the freshly built module to `dest` the way INSTALL.md says to:
/// under a temporary name, then renamed over the old file (a new inode, so
/// running children keep the old mapping).
pub fn install_module(dest: &Path) {
    make_dir(dest.parent().expect("module dir"));
    let tmp = dest.with_extension("so.tmp");
    fs::copy(module_path(), &tmp).unwrap_or_else(|e| panic!("copy module to {}: {e}", tmp.display()));
    fs::rename(&tmp, dest).unwrap_or_else(|e| panic!("rename to {}: {e}", dest.display()));
}

impl HttpdBuilder {
    /// Loads the module from a copy installed in the instance dir
    /// (`{root}/modules/mod_esf.so`) instead of the build output, so a test
    /// can install a new file over it with [`Httpd::reinstall_module`].
    pub fn installed_module(mut self) -> Self {
        self.installed_module = true;
        self
    }

    /// Runs `apache-conf/FILE` instead of the generated configuration,
    /// with `ESF_STATE` (the instance dir), `ESF_MODULE`, `ESF_NO_USER`
    /// (when not root), `ESF_PREFORK` (under prefork) and
    /// `listen_variable` (`127.0.0.1:PORT`) defined; more with
    /// [`HttpdBuilder::define`]. The file names its pid file httpd.pid and
    /// its error log error.log under ESF_STATE.
    pub fn shipped(mut self, file: &str, listen_variable: &'static str) -> Self {
        let file = super::repo_root().join("apache-conf").join(file);
        assert!(file.is_file(), "{} is missing", file.display());
        self.shipped = Some(Shipped { file, listen_variable, defines: Vec::new() });
        self
    }

    /// Defines `${name}` for a shipped configuration.
    pub fn define(mut self, name: &str, value: &str) -> Self {
        self.shipped.as_mut().expect("define() is for shipped() configurations").defines.push((name.into(), value.into()));
        self
    }

    /// Creates `relative_path` in the instance dir, writable by the user
    /// httpd's children run as (caches, lock directories).
    pub fn writable_dir(mut self, relative_path: &str) -> Self {
        self.writable_dirs.push(relative_path.into());
        self
    }

    /// Appends server-level configuration after the module's LoadModule.
    pub fn conf(mut self, text: &str) -> Self {
        self.conf.push_str(text);
        self.conf.push('\n');
        self
    }

    /// Writes `contents` to `relative_path` in the instance dir before start.
    pub fn file(mut self, relative_path: &str, contents: &str) -> Self {
        self.files.push((relative_path.into(), contents.into()));
        self
    }

    /// Starts the server and waits until it serves; panics with its logs if
    /// it does not come up within 15 s.
    pub fn start(self) -> Httpd {
        let root = self.prepare();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let conf = self.write_conf(&root, port);
            if let Some(httpd) = launch(&root, &conf, port) {
                return httpd;
            }
        }
        panic!(
            "httpd found no free port in {PORT_ATTEMPTS} attempts\n{}",
            logs(&root)
        );
    }

    /// Runs `apache2 -t` on the configuration: (syntax ok, stdout+stderr).
    pub fn configtest(self) -> (bool, String) {
        let root = self.prepare();
        let conf = self.write_conf(&root, free_port());
        let out = Command::new(APACHE2)
            .arg("-t")
            .args(server_args(&root, &conf))
            .output()
            .expect("run apache2 -t");
        fs::remove_dir_all(&root).ok();
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text.into_owned())
    }

    /// Creates the instance dir with its subdirectories and the files.
    fn prepare(&self) -> PathBuf {
        let root = state_dir(&format!("httpd-{}", self.mpm.name()));
        for dir in ["htdocs", "run", "mutex"] {
            make_dir(&root.join(dir));
        }
        for dir in &self.writable_dirs {
            let path = root.join(dir);
            make_dir(&path);
            super::paths::give_to_www_data(&path);
        }
        for (path, contents) in &self.files {
            let path = root.join(path);
            make_dir(path.parent().expect("file parent"));
            fs::write(&path, fill_root(contents, &root))
                .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
            set_mode(&path, 0o644);
        }
        root
    }

    fn write_conf(&self, root: &Path, port: u16) -> PathBuf {
        let module = if self.installed_module {
            let dest = root.join(INSTALLED_MODULE);
            install_module(&dest);
            dest
        } else {
            module_path()
        };
        let text = match &self.shipped {
            Some(shipped) => fill_root(&shipped_conf(shipped, self.mpm, root, port, &module), root) + &fill_root(&self.conf, root),
            None => base_conf(self.mpm, root, port, &module) + &fill_root(&self.conf, root),
        };
        let path = root.join("httpd.conf");
        fs::write(&path, text).expect("write httpd.conf");
        path
    }
}

/// `Define`s for a shipped configuration, then the file itself.
fn shipped_conf(shipped: &Shipped, mpm: Mpm, root: &Path, port: u16, module: &Path) -> String {
    let mut text = format!(
        "Define ESF_STATE \"{}\"\nDefine ESF_MODULE \"{}\"\nDefine {} 127.0.0.1:{port}\n",
        root.display(),
        module.display(),
        shipped.listen_variable
    );
    if !running_as_root() {
        text.push_str("Define ESF_NO_USER\n");
    }
    if mpm == Mpm::Prefork {
        text.push_str("Define ESF_PREFORK\n");
    }
    for (name, value) in &shipped.defines {
        text.push_str(&format!("Define {name} \"{value}\"\n"));
    }
    text + &format!("Include \"{}\"\n", shipped.file.display())
}

/// The configuration every instance starts from.
fn base_conf(mpm: Mpm, root: &Path, port: u16, module: &Path) -> String {
    let user = if running_as_root() {
        "User www-data\nGroup www-data\n"
    } else {
        ""
    };
    let template = format!(
        r#"ServerRoot "{{root}}"
Listen 127.0.0.1:{port}
ServerName 127.0.0.1
PidFile "{{root}}/httpd.pid"
DefaultRuntimeDir "{{root}}/run"
Mutex "file:{{root}}/mutex" default
ErrorLog "{{root}}/error.log"
LogLevel info
LogFormat "%h %l %u %t \"%r\" %>s %b %D" common
CustomLog "{{root}}/access.log" common
{mpm_conf}{user}
LoadModule authz_core_module {MODULES}/mod_authz_core.so
LoadModule mime_module {MODULES}/mod_mime.so
TypesConfig /etc/mime.types
AddType text/html .html

DocumentRoot "{{root}}/htdocs"
<Directory />
    Require all granted
</Directory>
<Location />
    Require all granted
</Location>

LoadModule esf_module "{module}"
"#,
        mpm_conf = mpm.conf(),
        module = module.display(),
    );
    fill_root(&template, root)
}

fn fill_root(text: &str, root: &Path) -> String {
    text.replace("{root}", &root.display().to_string())
}

fn make_dir(dir: &Path) {
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    set_mode(dir, 0o755);
}

fn server_args(root: &Path, conf: &Path) -> [std::ffi::OsString; 4] {
    ["-d".into(), root.into(), "-f".into(), conf.into()]
}

/// Spawns httpd and waits for it; None when the port was taken meanwhile.
fn launch(root: &Path, conf: &Path, port: u16) -> Option<Httpd> {
    let process = spawn_ready(root, conf, port)?;
    let httpd = Httpd {
        port,
        root: root.to_path_buf(),
        process,
    };
    assert_eq!(
        httpd.parent_pid(),
        httpd.pid(),
        "the PidFile does not name the spawned httpd"
    );
    Some(httpd)
}

/// Spawns httpd and waits until it serves; None when the port was taken.
fn spawn_ready(root: &Path, conf: &Path, port: u16) -> Option<Child> {
    for stale in ["error.log", "stderr.log", "httpd.pid"] {
        fs::remove_file(root.join(stale)).ok();
    }
    let output = File::create(root.join("stderr.log")).expect("create stderr.log");
    let mut process = Command::new(APACHE2)
        .args(server_args(root, conf))
        .arg("-DFOREGROUND")
        // prefork's shutdown signals its whole process group: not ours.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(output.try_clone().expect("dup stderr.log"))
        .stderr(output)
        .spawn()
        .expect("spawn apache2");
    if !wait_ready(&mut process, root, port) {
        return None;
    }
    Some(process)
}

/// Polls until the PidFile exists, the port accepts connections, the MPM
/// logged that it is up and forked a child. Returns false when httpd exited
/// because the port was taken; panics with the logs on any other failure.
fn wait_ready(process: &mut Child, root: &Path, port: u16) -> bool {
    let deadline = Instant::now() + STARTUP;
    loop {
        if let Ok(Some(status)) = process.try_wait() {
            let logs = logs(root);
            if logs.contains("Address already in use") {
                return false;
            }
            panic!("httpd exited ({status}) while starting\n{logs}");
        }
        if is_up(root, port, process.id() as i32) {
            return true;
        }
        if Instant::now() > deadline {
            stop_process(process);
            panic!("httpd did not come up within {STARTUP:?}\n{}", logs(root));
        }
        sleep(Duration::from_millis(20));
    }
}

/// The generation is up and serving: listening, logged and with a child.
fn is_up(root: &Path, port: u16, parent: i32) -> bool {
    root.join("httpd.pid").exists()
        && TcpStream::connect(("127.0.0.1", port)).is_ok()
        && error_log(root).contains(READY)
        && !children_of(parent).is_empty()
}

/// SIGTERM to the parent, up to 10 s for it and its children to exit, then
/// SIGKILL for the survivors.
fn stop_process(process: &mut Child) {
    if !matches!(process.try_wait(), Ok(None)) {
        return; // already exited and reaped: its pid may belong to someone else now
    }
    let parent = process.id() as i32;
    let mut pids = children_of(parent);
    pids.push(parent);
    signal(parent, libc::SIGTERM);
    wait_or_kill(&pids, SHUTDOWN);
    process.wait().ok();
    // Children that outlived a killed parent were reparented: wait for them.
    wait_or_kill(&pids, SHUTDOWN);
}

fn error_log(root: &Path) -> String {
    read_lossy(&root.join("error.log"))
}

/// Everything httpd said, for failure messages.
fn logs(root: &Path) -> String {
    format!(
        "instance: {}\n--- error.log\n{}--- stdout/stderr\n{}",
        root.display(),
        error_log(root),
        read_lossy(&root.join("stderr.log"))
    )
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// A running httpd; dropping it stops it.
pub struct Httpd {
    pub port: u16,
    pub root: PathBuf,
    process: Child,
}

impl Httpd {
    pub fn builder(mpm: Mpm) -> HttpdBuilder {
        HttpdBuilder {
            mpm,
            conf: String::new(),
            files: Vec::new(),
            installed_module: false,
            shipped: None,
            writable_dirs: Vec::new(),
        }
    }

    /// Installs the module again over the instance's copy (see
    /// [`HttpdBuilder::installed_module`]); the next graceful restart loads it.
    pub fn reinstall_module(&self) -> PathBuf {
        let dest = self.root.join(INSTALLED_MODULE);
        install_module(&dest);
        dest
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// One GET with `Connection: close`; panics if no response arrives.
    pub fn get(&self, path: &str) -> HttpResponse {
        request(self.port, "GET", path, &[], None)
            .unwrap_or_else(|e| panic!("GET {}: {e}\n{}", self.url(path), logs(&self.root)))
    }

    /// A keep-alive client for this server.
    pub fn client(&self) -> Client {
        Client::new(self.port)
    }

    /// SIGUSR1 to the parent, then waits until the new generation is up:
    /// logged, and with a new child (event logs before forking them).
    pub fn graceful(&self) {
        let generations = self.error_log().matches(READY).count();
        let old_children = self.child_pids();
        signal(self.parent_pid(), libc::SIGUSR1);
        let deadline = Instant::now() + STARTUP;
        let new_generation_up = || {
            self.error_log().matches(READY).count() > generations
                && self
                    .child_pids()
                    .iter()
                    .any(|pid| !old_children.contains(pid))
        };
        while !new_generation_up() {
            assert!(
                Instant::now() < deadline,
                "httpd did not come back from a graceful restart\n{}",
                logs(&self.root)
            );
            sleep(Duration::from_millis(20));
        }
    }

    pub fn error_log(&self) -> String {
        error_log(&self.root)
    }

    /// The parent pid from the PidFile.
    pub fn parent_pid(&self) -> i32 {
        let text = read_lossy(&self.root.join("httpd.pid"));
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("no pid in {}/httpd.pid: {text:?}", self.root.display()))
    }

    /// The live processes the parent has forked.
    pub fn child_pids(&self) -> Vec<i32> {
        children_of(self.parent_pid())
    }

    /// Kills the parent and its children with SIGKILL, as a crash or an
    /// administrator's `kill -9` would; [`Httpd::revive`] starts it again.
    pub fn crash(&mut self) {
        let mut pids = self.child_pids();
        pids.push(self.pid());
        // The whole process group at once (httpd runs in its own): a child
        // the parent forks while we look would otherwise survive, holding
        // the listening socket, and reset the connections it never accepts.
        signal(-self.pid(), libc::SIGKILL);
        self.process.wait().ok();
        wait_or_kill(&pids, SHUTDOWN);
        let deadline = Instant::now() + SHUTDOWN;
        while !group_members(self.pid()).is_empty() && Instant::now() < deadline {
            sleep(Duration::from_millis(20));
        }
    }

    /// Starts a crashed server again, same configuration and port.
    pub fn revive(&mut self) {
        let conf = self.root.join("httpd.conf");
        self.process = spawn_ready(&self.root, &conf, self.port)
            .unwrap_or_else(|| panic!("port {} was taken while httpd was down", self.port));
    }

    /// Requests in access.log so far (the shipped configurations write it;
    /// apache-conf/ logs every request there).
    pub fn access_log_lines(&self) -> usize {
        read_lossy(&self.root.join("access.log")).lines().count()
    }

    /// Stops the server (as dropping it does).
    pub fn stop(self) {}

    /// The spawned process, which is httpd's parent (-DFOREGROUND).
    fn pid(&self) -> i32 {
        self.process.id() as i32
    }
}

impl Drop for Httpd {
    /// Stops the server; keeps the instance dir when the test is failing.
    fn drop(&mut self) {
        stop_process(&mut self.process);
        if !std::thread::panicking() {
            fs::remove_dir_all(&self.root).ok();
        }
    }
}
