//! A `redis-server` of the tests' own: started once per test binary on a
//! free loopback port, and killed with the test process (the thread that
//! starts it lives as long as the process, and the server gets SIGKILL when
//! that thread's process dies).

use super::processes::{die_with_parent, free_port, wait_for_port};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// `redis://127.0.0.1:<port>` of the running server.
pub fn url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let port = free_port();
        let (started, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut command = Command::new("redis-server");
            command
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--dir", "/tmp"])
                .stdout(Stdio::null());
            die_with_parent(&mut command);
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
        wait_for_port(port, "redis-server");
        format!("redis://127.0.0.1:{port}")
    })
}
