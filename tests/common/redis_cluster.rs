//! A Redis Cluster of the tests' own: three primaries, each with one
//! replica, on free loopback ports (and their bus ports, +10 000), each
//! node in its own temporary directory. A short node timeout (1 s) makes a
//! replica take over from a killed primary in a few seconds. Nodes are
//! killed by PID when the cluster is dropped, and die with the thread that
//! started them.

use super::processes::{die_with_parent, wait_for_port};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct Cluster {
    pub ports: Vec<u16>,
    dir: PathBuf,
    nodes: Vec<Option<Child>>,
}

/// The seeds of a cluster shared by the tests of one binary that do not
/// break it (started on first use, on a thread that lives as long as the
/// process).
pub fn shared_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let (started, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let cluster = Cluster::start();
            started.send(cluster.url()).expect("test thread waits");
            let _keep = cluster;
            loop {
                std::thread::park();
            }
        });
        wait.recv().expect("the cluster started")
    })
}

/// A free loopback port whose cluster bus port (+10 000) is free too.
fn free_cluster_port() -> u16 {
    loop {
        let port = super::processes::free_port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// What `redis-cli` prints for `args` sent to the node on `port`.
pub fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli must be installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Cluster {
    /// Six nodes, the cluster created over them, and every node agreeing
    /// that it is `ok`.
    pub fn start() -> Self {
        let ports: Vec<u16> = (0..6).map(|_| free_cluster_port()).collect();
        let dir =
            std::env::temp_dir().join(format!("comet-cluster-{}-{}", ports[0], std::process::id()));
        let mut cluster = Self {
            nodes: ports.iter().map(|_| None).collect(),
            ports: ports.clone(),
            dir,
        };
        for &port in &ports {
            cluster.restart(port);
        }
        let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli must be installed");
        assert!(created.success(), "redis-cli --cluster create failed");
        cluster.wait_ok();
        cluster
    }

    /// Every node as a seed: `redis://127.0.0.1:<p1>,redis://127.0.0.1:<p2>,…`.
    pub fn url(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts the node on `port` (again, after [`kill`](Self::kill): with
    /// its `nodes.conf`, it rejoins, as a replica if it was replaced).
    pub fn restart(&mut self, port: u16) {
        let dir = self.dir.join(port.to_string());
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ])
            .args(["--cluster-node-timeout", "1000"])
            .args(["--cluster-replica-validity-factor", "0"])
            // Replicas in sync at once, not after the default 5 s delay.
            .args(["--repl-diskless-sync-delay", "0"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null());
        die_with_parent(&mut command);
        let index = self.index(port);
        self.nodes[index] = Some(command.spawn().expect("redis-server must be installed"));
        wait_for_port(port, "redis-server (cluster node)");
    }

    /// Kills the node on `port` (SIGKILL, as a crash would).
    pub fn kill(&mut self, port: u16) {
        let index = self.index(port);
        if let Some(mut child) = self.nodes[index].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn index(&self, port: u16) -> usize {
        self.ports
            .iter()
            .position(|&p| p == port)
            .expect("a node of this cluster")
    }

    fn running(&self) -> Vec<u16> {
        self.ports
            .iter()
            .zip(&self.nodes)
            .filter(|(_, child)| child.is_some())
            .map(|(port, _)| *port)
            .collect()
    }

    /// Waits until every running node says `cluster_state:ok` and every
    /// replica is in sync with its primary (`master_link_status:up`).
    pub fn wait_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for port in self.running() {
            while !cli(port, &["cluster", "info"]).contains("cluster_state:ok") {
                assert!(Instant::now() < deadline, "cluster not ok on {port}");
                std::thread::sleep(Duration::from_millis(50));
            }
            loop {
                let replication = cli(port, &["info", "replication"]);
                if replication.contains("role:master")
                    || replication.contains("master_link_status:up")
                {
                    break;
                }
                assert!(Instant::now() < deadline, "replica {port} not in sync");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// The slot of `key`.
    pub fn slot(&self, key: &str) -> u16 {
        cli(self.running()[0], &["cluster", "keyslot", key])
            .trim()
            .parse()
            .expect("a slot number")
    }

    /// The port of the primary serving `slot`, as the running node on
    /// `asking` sees it (`CLUSTER NODES`), if one does.
    pub fn primary_seen_by(asking: u16, slot: u16) -> Option<u16> {
        cli(asking, &["cluster", "nodes"]).lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = fields.get(2)?;
            if !flags.contains("master") || flags.contains("fail") {
                return None;
            }
            let serves = fields[8..].iter().any(|range| {
                let (from, to) = range.split_once('-').unwrap_or((range, range));
                match (from.parse::<u16>(), to.parse::<u16>()) {
                    (Ok(from), Ok(to)) => (from..=to).contains(&slot),
                    _ => false,
                }
            });
            let port = fields[1]
                .split('@')
                .next()?
                .rsplit(':')
                .next()?
                .parse()
                .ok()?;
            serves.then_some(port)
        })
    }

    /// The port of the primary serving `slot`.
    pub fn primary_of(&self, slot: u16) -> u16 {
        Self::primary_seen_by(self.running()[0], slot).expect("a primary serves the slot")
    }

    /// Waits until every running node sees a primary other than `old`
    /// serving `slot`, and the cluster is `ok` again; that primary's port.
    pub fn wait_failover(&self, slot: u16, old: u16) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let seen: Vec<Option<u16>> = self
                .running()
                .iter()
                .map(|&port| Self::primary_seen_by(port, slot))
                .collect();
            if let Some(Some(new)) = seen.first() {
                if *new != old && seen.iter().all(|s| *s == Some(*new)) {
                    self.wait_ok();
                    return *new;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no replica took over slot {slot}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The ports of the primaries.
    pub fn primaries(&self) -> Vec<u16> {
        let mut primaries: Vec<u16> = (0..16384)
            .step_by(1024)
            .map(|slot| self.primary_of(slot))
            .collect();
        primaries.sort_unstable();
        primaries.dedup();
        primaries
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.nodes.iter_mut().filter_map(Option::take) {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
