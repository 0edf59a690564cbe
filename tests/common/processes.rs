//! Real processes for the multi-node tests: redis-servers that can be
//! stopped and restarted on their port, and server nodes (this crate's
//! `comet-chat` binary). Each dies with the test thread that started it
//! (parent-death signal), and is killed on drop.

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

pub fn die_with_parent(command: &mut Command) {
    // SAFETY: prctl only sets this child's parent-death signal.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not open port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A redis-server with an append-only file fsynced on every write, so a
/// restart keeps every message Redis acknowledged.
pub struct Redis {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Redis {
    pub fn start() -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("comet-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut redis = Self {
            port,
            dir,
            child: None,
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it again (after [`stop`](Self::stop)) on the same port and data.
    pub fn restart(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null());
        die_with_parent(&mut command);
        self.child = Some(command.spawn().expect("redis-server must be installed"));
        wait_for_port(self.port, "redis-server");
    }

    /// Freezes it (SIGSTOP): its port still accepts connections, but
    /// nothing is answered, as with a hung or partitioned Redis.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a paused Redis run again (SIGCONT).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        if let Some(child) = &self.child {
            // SAFETY: kill only sends a signal to our own child.
            unsafe { libc::kill(child.id() as i32, signal) };
        }
    }

    /// Kills it (SIGKILL, as a crash would) and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops it (SIGTERM: it flushes and exits) and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One server node on Redis, with short timeouts.
pub struct Node {
    port: u16,
    addr: String,
    pub base: String,
    child: Option<Child>,
}

impl Node {
    pub fn start(redis_url: &str) -> Self {
        let node = Self::spawn(redis_url);
        node.wait_ready();
        node
    }

    /// A node on Redis with these settings too.
    pub fn start_with(redis_url: &str, env: &[(&str, &str)]) -> Self {
        let node = Self::spawn_with(Some(redis_url), None, env);
        node.wait_ready();
        node
    }

    /// Starts it logging everything (debug level) to `log`.
    pub fn start_logging(redis_url: &str, log: &std::path::Path) -> Self {
        let node = Self::spawn_with(Some(redis_url), Some(log), &[]);
        node.wait_ready();
        node
    }

    /// A node on the in-process provider, with these settings too.
    pub fn start_in_process(env: &[(&str, &str)]) -> Self {
        let node = Self::spawn_with(None, None, env);
        node.wait_ready();
        node
    }

    /// Starts it without waiting for it to listen (it waits for Redis).
    pub fn spawn(redis_url: &str) -> Self {
        Self::spawn_with(Some(redis_url), None, &[])
    }

    fn spawn_with(
        redis_url: Option<&str>,
        log: Option<&std::path::Path>,
        env: &[(&str, &str)],
    ) -> Self {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_comet-chat"));
        command
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("LEPTOS_OUTPUT_NAME", "comet-chat")
            .env("LEPTOS_SITE_ROOT", "target/site")
            .env("LEPTOS_SITE_PKG_DIR", "pkg")
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .env("COMET_POLL_TIMEOUT", "1s")
            .env("COMET_IDLE_TIMEOUT", "30s")
            .env("COMET_PRESENCE_WINDOW", super::PRESENCE_WINDOW)
            .env("RUST_LOG", if log.is_some() { "debug" } else { "warn" })
            .stdout(Stdio::null());
        match redis_url {
            Some(url) => command.env("COMET_REDIS_URL", url),
            None => command.env_remove("COMET_REDIS_URL"),
        };
        command.envs(env.iter().copied());
        if let Some(log) = log {
            let file = std::fs::File::create(log).expect("log file");
            command
                .env("NO_COLOR", "1")
                .stdout(file.try_clone().expect("log file"))
                .stderr(file);
        }
        die_with_parent(&mut command);
        let child = command.spawn().expect("the comet-chat binary runs");
        Self {
            port,
            addr: format!("127.0.0.1:{port}"),
            base: format!("http://127.0.0.1:{port}"),
            child: Some(child),
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .expect("the node is running")
    }

    pub fn wait_ready(&self) {
        wait_for_port(self.port, "comet-chat node");
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Asks it to stop (SIGTERM, as a deploy would) without waiting.
    pub fn terminate(&self) {
        if let Some(child) = &self.child {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        }
    }

    /// Waits (at most `timeout`) for it to exit; whether it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if !self.is_running() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Kills it at once (SIGKILL), as a crashed machine would stop.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}
