//! The messages between the driver and its workers, and what a worker
//! reports. They cross a process boundary as JSON lines (`procs.rs`), so
//! they are plain serde types; [`WorkerResult`] merges exactly (sums,
//! maxima and histogram counts), which is what lets `--procs K` report the
//! same figures as one process would.

use crate::stats::{merge_errors, Histogram};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ramp {
    Phased,
    Live,
}

/// Which server the clients talk to, and so which protocol they speak.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    /// Our server: log in, long-poll `/comet/chat`, send through `/api/`.
    #[default]
    Comet,
    /// nginx with Nchan: no login, long-poll `/sub/<channel>`, publish to
    /// `/pub/<channel>` (see `nchan.rs`).
    Nchan,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Comet => "comet",
            Protocol::Nchan => "nchan",
        }
    }
}

/// What a worker needs to know; sent to a child process as its first line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerConfig {
    pub run: String,
    pub protocol: Protocol,
    pub proc_index: usize,
    pub servers: Vec<SocketAddr>,
    /// Global index of this worker's first client (for server and source
    /// address assignment).
    pub first_client: usize,
    pub clients: usize,
    pub source_addrs: usize,
    pub setup_concurrency: usize,
    pub ramp: Ramp,
    pub request_timeout_ms: u64,
    pub poll_read_timeout_ms: u64,
    pub ready_timeout_ms: u64,
    pub logout_conns: usize,
    pub quickack: bool,
    pub quiet: bool,
    /// The rooms scenario: which rooms each client joins and follows in
    /// its one poll of several channels.
    #[serde(default)]
    pub rooms: Option<crate::rooms::Layout>,
}

/// Driver → worker.
#[derive(Debug, Serialize, Deserialize)]
pub enum Cmd {
    /// Phased ramp: every process has logged in; fetch cursors and poll.
    StartPolling,
    /// Report the number of polls held right now.
    Sample,
    /// Publishing is over: `expected[p]` messages were sent by publisher
    /// `p`. Keep polling until every client has them all, at most `drain_ms`.
    Stop { expected: Vec<u64>, drain_ms: u64 },
    /// Log every client out, then end.
    Logout,
    /// End now (logging out what can be, briefly).
    Abort,
}

/// Worker → driver.
#[derive(Debug, Serialize, Deserialize)]
pub enum Event {
    LoggedIn {
        ok: usize,
        failed: usize,
    },
    /// Every logged-in client holds its first poll (or failed, or the ready
    /// timeout passed).
    Ready {
        ready: usize,
        held: usize,
        failed: usize,
    },
    Held {
        held: usize,
    },
    Result(Box<WorkerResult>),
    LoggedOut {
        ok: usize,
        failed: usize,
        errors: BTreeMap<String, u64>,
    },
    /// The worker cannot go on (child processes only).
    Fatal(String),
}

/// One worker's measurements; results of several workers merge exactly.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkerResult {
    pub clients: usize,
    pub logged_in: usize,
    /// Clients whose first poll was accepted: the ones expected to receive.
    pub ready: usize,
    /// Ready clients that got every expected message.
    pub complete: usize,
    /// Ready clients that got at least one expected message.
    pub got_any: usize,
    pub expected: u64,
    /// Our messages received (duplicates included).
    pub deliveries: u64,
    pub lost: u64,
    pub lost_clients: usize,
    pub duplicated: u64,
    pub duplicated_clients: usize,
    pub out_of_order: u64,
    pub out_of_order_clients: usize,
    /// Deliveries that are not this run's chat messages (joins, leaves…).
    pub other_messages: u64,
    pub polls: u64,
    pub poll_timeouts: u64,
    /// Send → arrival at the client's socket.
    pub latency: Histogram,
    /// Send → read by the client's code.
    pub read_latency: Histogram,
    pub first_delivery_ns: u64,
    pub last_delivery_ns: u64,
    pub errors: BTreeMap<String, u64>,
}

impl WorkerResult {
    pub fn merge(&mut self, o: &WorkerResult) {
        self.clients += o.clients;
        self.logged_in += o.logged_in;
        self.ready += o.ready;
        self.complete += o.complete;
        self.got_any += o.got_any;
        self.expected += o.expected;
        self.deliveries += o.deliveries;
        self.lost += o.lost;
        self.lost_clients += o.lost_clients;
        self.duplicated += o.duplicated;
        self.duplicated_clients += o.duplicated_clients;
        self.out_of_order += o.out_of_order;
        self.out_of_order_clients += o.out_of_order_clients;
        self.other_messages += o.other_messages;
        self.polls += o.polls;
        self.poll_timeouts += o.poll_timeouts;
        self.latency.merge(&o.latency);
        self.read_latency.merge(&o.read_latency);
        if o.first_delivery_ns > 0
            && (self.first_delivery_ns == 0 || o.first_delivery_ns < self.first_delivery_ns)
        {
            self.first_delivery_ns = o.first_delivery_ns;
        }
        self.last_delivery_ns = self.last_delivery_ns.max(o.last_delivery_ns);
        merge_errors(&mut self.errors, &o.errors);
    }
}
