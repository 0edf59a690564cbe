//! A `redis-server` of the tests' own: started once per test binary on a
//! free loopback port, and killed with the test process (the thread that
//! starts it lives as long as the process, and the server gets SIGKILL when
//! that thread's process dies).

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// `redis://127.0.0.1:<port>` of the running server.
pub fn url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let (started, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut command = Command::new("redis-server");
            command
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--dir", "/tmp"])
                .stdout(Stdio::null());
            // SAFETY: prctl only sets this child's parent-death signal.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let child = command
                .spawn()
                .expect("redis-server must be installed (scripts/test installs it)");
            started.send(()).expect("test thread waits");
            let _keep = child;
            loop {
                std::thread::park();
            }
        });
        wait.recv().expect("redis-server started");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not open port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        format!("redis://127.0.0.1:{port}")
    })
}
