//! The server under test as processes: what it costs in CPU time and
//! memory, read from `/proc` from outside.
//!
//! A server is one process (ours) or a master with worker processes (nginx
//! with Nchan): `--server-pid` names the process the bench started, and
//! every sample looks up its descendants again, so a worker the master
//! forked (or replaced) is counted the moment it exists. Our server has no
//! children, so the same code measures both.
//!
//! CPU is `utime + stime` of `/proc/<pid>/stat` (all of a process's threads,
//! in clock ticks); memory is `VmRSS` summed over the processes. A summed
//! RSS counts a page two workers share (nginx's shared memory zone) twice:
//! differences between two samples are what the reports use.

use anyhow::Context;
use std::collections::BTreeSet;

/// The processes of the servers under test, found from their root PIDs.
#[derive(Clone, Debug, Default)]
pub struct ServerProcs {
    roots: Vec<u32>,
}

/// One look at the servers' processes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// CPU time used so far by every process counted (user + system).
    pub cpu_secs: f64,
    pub rss_kb: u64,
    pub processes: usize,
}

impl ServerProcs {
    pub fn new(roots: &[u32]) -> Self {
        Self {
            roots: roots.to_vec(),
        }
    }

    /// The roots and all their descendants, now. A root that is gone is an
    /// error (the server died); a child that ends while being read is not.
    pub fn pids(&self) -> anyhow::Result<Vec<u32>> {
        for root in &self.roots {
            anyhow::ensure!(
                std::path::Path::new(&format!("/proc/{root}")).exists(),
                "server process {root} is gone"
            );
        }
        Ok(descendants(&self.roots, &process_table()))
    }

    /// CPU time and RSS summed over every process of the servers; `None`
    /// when no `--server-pid` was given.
    pub fn sample(&self) -> anyhow::Result<Option<Sample>> {
        if self.roots.is_empty() {
            return Ok(None);
        }
        let ticks = clock_ticks_per_sec();
        let mut s = Sample {
            cpu_secs: 0.0,
            rss_kb: 0,
            processes: 0,
        };
        for pid in self.pids()? {
            let path = format!("/proc/{pid}/stat");
            let stat = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                // A worker that ended between the listing and now.
                Err(_) if !self.roots.contains(&pid) => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot read {path}")),
            };
            let fields = parse_stat(&stat).with_context(|| format!("odd {path}: {stat}"))?;
            s.cpu_secs += fields.cpu_ticks as f64 / ticks;
            s.rss_kb += match crate::sys::rss_kb(pid) {
                Ok(kb) => kb,
                Err(_) if !self.roots.contains(&pid) => continue,
                Err(e) => return Err(e),
            };
            s.processes += 1;
        }
        Ok(Some(s))
    }

    /// Summed RSS only (kB), as [`sys::total_rss_kb`](crate::sys::total_rss_kb)
    /// but over the whole process tree.
    pub fn rss_kb(&self) -> anyhow::Result<Option<u64>> {
        Ok(self.sample()?.map(|s| s.rss_kb))
    }

    /// RSS (kB) of each root with its descendants, in the order given:
    /// several servers measured together (nodes and their redis-server)
    /// say which of them holds the memory. `None` without roots.
    pub fn rss_each_kb(&self) -> anyhow::Result<Option<Vec<u64>>> {
        if self.roots.is_empty() {
            return Ok(None);
        }
        let mut each = Vec::with_capacity(self.roots.len());
        for root in &self.roots {
            each.push(ServerProcs::new(&[*root]).rss_kb()?.unwrap_or(0));
        }
        Ok(Some(each))
    }
}

/// What the reports need of one `/proc/<pid>/stat` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct StatFields {
    ppid: u32,
    /// `utime + stime`, in clock ticks.
    cpu_ticks: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in
/// parentheses and may itself hold spaces and parentheses, so the fields
/// are counted from the *last* `)`.
fn parse_stat(line: &str) -> Option<StatFields> {
    let rest = &line[line.rfind(')')? + 1..];
    // After the name: state (3), ppid (4), …, utime (14), stime (15).
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    Some(StatFields {
        ppid: u32::try_from(field(4)?).ok()?,
        cpu_ticks: field(14)? + field(15)?,
    })
}

/// `(pid, ppid)` of every process readable in `/proc`.
fn process_table() -> Vec<(u32, u32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Some((pid, parse_stat(&stat)?.ppid))
    })
    .collect()
}

/// `roots` and every process descended from one of them in `table`
/// (`(pid, ppid)` pairs), roots first, each once.
fn descendants(roots: &[u32], table: &[(u32, u32)]) -> Vec<u32> {
    let mut found: Vec<u32> = Vec::new();
    let mut seen = BTreeSet::new();
    for root in roots {
        if seen.insert(*root) {
            found.push(*root);
        }
    }
    let mut next = 0;
    while next < found.len() {
        let parent = found[next];
        for (pid, _) in table.iter().filter(|(_, ppid)| *ppid == parent) {
            if seen.insert(*pid) {
                found.push(*pid);
            }
        }
        next += 1;
    }
    found
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        // An nginx worker's name has a space; this one has a ") " too.
        let line = "4242 (nginx: a) b) S 4200 4200 4200 0 -1 4194624 120 0 0 0 \
                    37 15 0 0 20 0 1 0 123456 1000000 500 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(StatFields {
                ppid: 4200,
                cpu_ticks: 52
            })
        );
        assert_eq!(parse_stat("4242 (cut short) S 1 2"), None);
        assert_eq!(parse_stat("no parenthesis at all"), None);
    }

    #[test]
    fn descendants_are_children_and_their_children_once() {
        // 10 is the master, 11 and 12 its workers, 13 a worker's child;
        // 20 and its child 21 are someone else's.
        let table = [(10, 1), (11, 10), (12, 10), (13, 12), (20, 1), (21, 20)];
        assert_eq!(descendants(&[10], &table), vec![10, 11, 12, 13]);
        assert_eq!(descendants(&[10, 10], &table), vec![10, 11, 12, 13]);
        assert_eq!(descendants(&[21], &table), vec![21]);
        assert_eq!(descendants(&[], &table), Vec::<u32>::new());
    }

    #[test]
    fn this_process_is_sampled_with_its_cpu_time() {
        let me = ServerProcs::new(&[std::process::id()]);
        let before = me.sample().unwrap().unwrap();
        // Burn a little CPU so the tick count can only grow.
        let mut x = 0u64;
        let until = std::time::Instant::now() + std::time::Duration::from_millis(60);
        while std::time::Instant::now() < until {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let after = me.sample().unwrap().unwrap();
        assert!(before.processes >= 1 && before.rss_kb > 0);
        assert!(
            after.cpu_secs > before.cpu_secs,
            "{} then {}",
            before.cpu_secs,
            after.cpu_secs
        );
        assert!(ServerProcs::default().sample().unwrap().is_none());
        let each = ServerProcs::new(&[std::process::id()]).rss_each_kb();
        assert!(each.unwrap().is_some_and(|kb| kb.len() == 1 && kb[0] > 0));
        assert!(ServerProcs::default().rss_each_kb().unwrap().is_none());
    }
}
