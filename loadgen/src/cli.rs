//! Command-line options. Hand-parsed (no clap in the dependency tree, and
//! the flags are few): `loadgen <command> [--flag value]…`.

use crate::rooms::Layout;
use crate::worker::{Protocol, Ramp};
use anyhow::{anyhow, bail};
use std::net::SocketAddr;

pub const USAGE: &str = "\
loadgen: load generator for Comet Chat (speaks the real wire protocol)

USAGE
  loadgen <scenario> [options]      run a scenario against --server
  loadgen hello-server [--addr A]   bare hyper hello-world server (prints its address)
  loadgen summarize FILE…           medians of JSON results (one object per line)
  loadgen free-port                 print a free loopback TCP port

SCENARIOS (defaults in brackets)
  idle       N clients hold polls; RSS per held poll      [--clients 10000 --duration 30]
  broadcast  N clients, one publisher sends M messages as fast as it can
                                                          [--clients 1000 --messages 200]
  chat       N clients, R messages/s for T seconds        [--clients 1000 --rate 20 --duration 30]
  hold       N clients over several processes, then one broadcast: who got it, how fast
                                                          [--clients 19000]
  rooms      --rooms N rooms, each opened by its own publisher sending --rate messages/s
             for T seconds; --members M clients in each room; every client joins
             --rooms-per-client K rooms and follows them (and the chat room) with one
             POST /comet poll; clients = N x M / K (the server needs CHAT_SEND_RATE=0:
             creating a room counts as a send)
                                        [--rooms 50 --members 40 --rooms-per-client 1
                                         --rate 5 --duration 20]
  hello      C connections doing back-to-back keep-alive requests for T seconds
             (against `loadgen hello-server`: the machine's request ceiling)
                                                          [--connections 50 --duration 10 --path /]
  stall      attack: fill the history with M long messages, then C connections with a
             tiny receive buffer poll from before them and never read; server RSS and
             open fds at baseline, peak and after --duration; how many the server closed
             (server needs CHAT_MAX_MESSAGE_CHARS > pad, COMET_MAX_POLLS_PER_CLIENT >= C/N)
                                        [--connections 100 --clients 1 --messages 500
                                         --pad 8000 --rcvbuf 4096 --duration 45]
  slowloris  attack: C connections from 127.0.0.1 trickle a request head one byte every
             --trickle-interval s and never finish it, while N normal users (127.0.0.2…)
             log in, send and poll for --duration s at --rate sends/s in all; their
             latency, and how many trickling connections the server refused or closed
                                        [--connections 5000 --clients 4 --rate 10
                                         --duration 30 --trickle-interval 5]

OPTIONS
  --server ADDR            server to use; repeat to spread clients round-robin [127.0.0.1:3000]
  --server-pid PID         server process for RSS (VmRSS) and CPU time, with all its
                           descendants (nginx's workers); repeat per server
  --protocol comet|nchan   comet: our server [comet]; nchan: an nginx with Nchan
                           (GET /sub/<channel> long polls resumed with If-Modified-Since
                           and If-None-Match, POST /pub/<channel>; no login), for idle,
                           broadcast, chat and hold, one --server
  --clients N              simulated browsers (one connection each)
  --procs K                worker processes [ceil(clients / 10000)]; 1 = in this process
  --messages M             broadcast: messages to send [200]
  --rate R                 chat: messages per second, all publishers together [20];
                           rooms: per room (a rate past what the server keeps up
                           with is flat out: a late send goes out at once)
  --rooms N                rooms: rooms, one publisher each (the chat allows 100) [50]
  --members M              rooms: clients in each room [40]
  --rooms-per-client K     rooms: rooms each client follows in its one poll [1]
  --duration SECS          idle: hold time after all polls are held; chat: send time; hello: run time
  --publishers P           chat: publishing clients, each at R/P per second [1]
  --pad BYTES              extra bytes in every message text [0]
  --connections C          hello: connections [50]; stall: stalled readers [100];
                           slowloris: trickling connections [5000]
  --rcvbuf BYTES           stall: SO_RCVBUF of the stalled connections [4096]
  --trickle-interval SECS  slowloris: seconds between two bytes of one connection [5]
  --sends-per-login K      slowloris: a user sends K messages, then logs out and in [5]
  --reconnect              slowloris: a trickling connection the server ends or refuses
                           connects again at its next slot (keeps the pressure on caps)
  --path PATH              hello: request path [/]
  --ramp phased|live       phased: all log in, then all poll (no join storm) [phased];
                           live: each polls right after its login, like arriving browsers
  --setup-concurrency C    logins / first polls in flight, over all processes [96]
                           (keep it under the server's listen backlog, 128 here)
  --source-addrs S         spread connections over 127.0.0.1..127.0.0.S [16]
  --ready-timeout SECS     for logging in, and for all first polls to be held [120]
  --drain-timeout SECS     after the last send, wait this long for deliveries [30]
  --request-timeout SECS   per request (and per poll head) [30]
  --poll-read-timeout SECS a held poll's body [90] (above the server's poll timeout)
  --logout-conns C         connections per process and server for logging out [32]
  --threads T              tokio worker threads per process [cores; chat: 2 x cores,
                           so a reply waiting in a socket is read soon rather than
                           after the server's share of the CPU (the \"when read\" figure)]
  --run ID                 run id in names and texts (letters/digits, max 8) [random]
  --max-secs SECS          hard time bound for the whole run [computed]
  --quickack               diagnostic: ACK every read at once (TCP_QUICKACK), unlike
                           browsers; shows latency lost to Nagle × delayed ACK
  --json                   print one JSON object on stdout (the summary goes to stderr)
  --quiet                  no progress lines
";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Idle,
    Broadcast,
    Chat,
    Hold,
    Rooms,
    Hello,
    Stall,
    Slowloris,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Idle => "idle",
            Scenario::Broadcast => "broadcast",
            Scenario::Chat => "chat",
            Scenario::Hold => "hold",
            Scenario::Rooms => "rooms",
            Scenario::Hello => "hello",
            Scenario::Stall => "stall",
            Scenario::Slowloris => "slowloris",
        }
    }
}

pub enum Command {
    Run(Box<Opts>),
    HelloServer {
        addr: SocketAddr,
        max_secs: f64,
        threads: Option<usize>,
    },
    Summarize(Vec<String>),
    FreePort,
    Worker {
        threads: Option<usize>,
    },
    Help,
}

#[derive(Clone, Debug)]
pub struct Opts {
    pub scenario: Scenario,
    pub servers: Vec<SocketAddr>,
    pub server_pids: Vec<u32>,
    pub protocol: Protocol,
    pub clients: usize,
    pub procs: usize,
    pub messages: u64,
    pub rate: f64,
    pub duration: f64,
    pub publishers: usize,
    pub pad: usize,
    pub connections: usize,
    pub rcvbuf: u32,
    pub trickle_interval: f64,
    pub sends_per_login: usize,
    pub reconnect: bool,
    pub path: String,
    pub ramp: Ramp,
    pub setup_concurrency: usize,
    pub source_addrs: usize,
    pub ready_timeout: f64,
    pub drain_timeout: f64,
    pub request_timeout: f64,
    pub poll_read_timeout: f64,
    pub logout_conns: usize,
    pub threads: Option<usize>,
    pub run: String,
    pub max_secs: f64,
    pub quickack: bool,
    pub json: bool,
    pub quiet: bool,
    /// The rooms scenario's rooms and members.
    pub rooms: Option<Layout>,
}

fn value<T: std::str::FromStr>(flag: &str, v: Option<String>) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    let v = v.ok_or_else(|| anyhow!("{flag} needs a value"))?;
    v.parse::<T>()
        .map_err(|e| anyhow!("bad value for {flag}: {v:?} ({e})"))
}

fn positive(flag: &str, v: f64) -> anyhow::Result<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        bail!("{flag} must be a positive number")
    }
}

pub fn parse(args: Vec<String>) -> anyhow::Result<Command> {
    let mut it = args.into_iter();
    let Some(cmd) = it.next() else {
        return Ok(Command::Help);
    };
    let scenario = match cmd.as_str() {
        "idle" => Scenario::Idle,
        "broadcast" => Scenario::Broadcast,
        "chat" => Scenario::Chat,
        "hold" => Scenario::Hold,
        "rooms" => Scenario::Rooms,
        "hello" => Scenario::Hello,
        "stall" => Scenario::Stall,
        "slowloris" => Scenario::Slowloris,
        "-h" | "--help" | "help" => return Ok(Command::Help),
        "summarize" => return Ok(Command::Summarize(it.collect())),
        "free-port" => return Ok(Command::FreePort),
        "worker" => {
            let mut threads = None;
            while let Some(flag) = it.next() {
                match flag.as_str() {
                    "--threads" => threads = Some(value("--threads", it.next())?),
                    other => bail!("unknown worker option {other}"),
                }
            }
            return Ok(Command::Worker { threads });
        }
        "hello-server" => {
            let mut addr: SocketAddr = "127.0.0.1:3999".parse().expect("valid address");
            let mut max_secs = 6.0 * 3600.0;
            let mut threads = None;
            while let Some(flag) = it.next() {
                match flag.as_str() {
                    "--addr" => addr = value("--addr", it.next())?,
                    "--max-secs" => {
                        max_secs = positive("--max-secs", value("--max-secs", it.next())?)?
                    }
                    "--threads" => threads = Some(value("--threads", it.next())?),
                    other => bail!("unknown hello-server option {other}"),
                }
            }
            if !addr.ip().is_loopback() {
                bail!("hello-server listens on loopback addresses only");
            }
            return Ok(Command::HelloServer {
                addr,
                max_secs,
                threads,
            });
        }
        other => bail!("unknown command {other:?}\n\n{USAGE}"),
    };

    let mut servers: Vec<SocketAddr> = Vec::new();
    let mut server_pids = Vec::new();
    let mut protocol = Protocol::Comet;
    let mut clients = None;
    let mut procs = None;
    let mut messages = None;
    let mut rate = None;
    let mut duration = None;
    let mut publishers = 1;
    let mut pad = None;
    let mut connections = None;
    let mut rcvbuf = 4096;
    let mut trickle_interval = 5.0;
    let mut sends_per_login = 5;
    let mut reconnect = false;
    let mut path = "/".to_owned();
    let mut ramp = Ramp::Phased;
    let mut setup_concurrency = 96;
    let mut source_addrs = 16;
    let mut ready_timeout = 120.0;
    let mut drain_timeout = 30.0;
    let mut request_timeout = 30.0;
    let mut poll_read_timeout = 90.0;
    let mut logout_conns = 32;
    let mut threads = None;
    let mut run = None;
    let mut max_secs = None;
    let mut quickack = false;
    let mut json = false;
    let mut quiet = false;
    let mut rooms = None;
    let mut members = None;
    let mut per_client = None;
    while let Some(flag) = it.next() {
        let f = flag.as_str();
        match f {
            "--server" => servers.push(value(f, it.next())?),
            "--server-pid" => server_pids.push(value(f, it.next())?),
            "--protocol" => {
                protocol = match value::<String>(f, it.next())?.as_str() {
                    "comet" => Protocol::Comet,
                    "nchan" => Protocol::Nchan,
                    other => bail!("--protocol is comet or nchan, not {other:?}"),
                }
            }
            "--clients" => clients = Some(value(f, it.next())?),
            "--procs" => procs = Some(value(f, it.next())?),
            "--messages" => messages = Some(value(f, it.next())?),
            "--rate" => rate = Some(positive(f, value(f, it.next())?)?),
            "--duration" => duration = Some(positive(f, value(f, it.next())?)?),
            "--publishers" => publishers = value(f, it.next())?,
            "--pad" => pad = Some(value(f, it.next())?),
            "--connections" => connections = Some(value(f, it.next())?),
            "--rcvbuf" => rcvbuf = value(f, it.next())?,
            "--trickle-interval" => trickle_interval = positive(f, value(f, it.next())?)?,
            "--sends-per-login" => sends_per_login = value(f, it.next())?,
            "--path" => path = value(f, it.next())?,
            "--ramp" => {
                ramp = match value::<String>(f, it.next())?.as_str() {
                    "phased" => Ramp::Phased,
                    "live" => Ramp::Live,
                    other => bail!("--ramp is phased or live, not {other:?}"),
                }
            }
            "--setup-concurrency" => setup_concurrency = value(f, it.next())?,
            "--source-addrs" => source_addrs = value(f, it.next())?,
            "--ready-timeout" => ready_timeout = positive(f, value(f, it.next())?)?,
            "--drain-timeout" => drain_timeout = positive(f, value(f, it.next())?)?,
            "--request-timeout" => request_timeout = positive(f, value(f, it.next())?)?,
            "--poll-read-timeout" => poll_read_timeout = positive(f, value(f, it.next())?)?,
            "--logout-conns" => logout_conns = value(f, it.next())?,
            "--threads" => threads = Some(value(f, it.next())?),
            "--run" => run = Some(value::<String>(f, it.next())?),
            "--max-secs" => max_secs = Some(positive(f, value(f, it.next())?)?),
            "--rooms" => rooms = Some(value(f, it.next())?),
            "--members" => members = Some(value(f, it.next())?),
            "--rooms-per-client" => per_client = Some(value(f, it.next())?),
            "--quickack" => quickack = true,
            "--reconnect" => reconnect = true,
            "--json" => json = true,
            "--quiet" => quiet = true,
            "-h" | "--help" => return Ok(Command::Help),
            other => bail!("unknown option {other:?} (see loadgen --help)"),
        }
    }
    if servers.is_empty() {
        servers.push("127.0.0.1:3000".parse().expect("valid address"));
    }
    if let Some(bad) = servers.iter().find(|s| !s.ip().is_loopback()) {
        bail!("loopback servers only, not {bad}");
    }
    if protocol == Protocol::Nchan {
        if !matches!(
            scenario,
            Scenario::Idle | Scenario::Broadcast | Scenario::Chat | Scenario::Hold
        ) {
            bail!(
                "--protocol nchan runs idle, broadcast, chat and hold, not {}",
                scenario.name()
            );
        }
        if servers.len() != 1 {
            bail!("--protocol nchan takes one --server");
        }
    }
    let layout = rooms_layout(scenario, rooms, members, per_client, clients.is_some())?;
    let clients: usize = clients.unwrap_or(match scenario {
        Scenario::Rooms => layout.map_or(0, |l| l.clients()),
        Scenario::Idle => 10_000,
        Scenario::Hold => 19_000,
        Scenario::Stall => 1,
        Scenario::Slowloris => 4,
        _ => 1_000,
    });
    let messages: u64 = messages.unwrap_or(if scenario == Scenario::Stall {
        500
    } else {
        200
    });
    let rate = rate.unwrap_or(match scenario {
        Scenario::Slowloris => 10.0,
        Scenario::Rooms => 5.0,
        _ => 20.0,
    });
    let pad: usize = pad.unwrap_or(if scenario == Scenario::Stall { 8000 } else { 0 });
    let connections: usize = connections.unwrap_or(match scenario {
        Scenario::Stall => 100,
        Scenario::Slowloris => 5_000,
        _ => 50,
    });
    if clients == 0 && scenario != Scenario::Hello {
        bail!("--clients must be at least 1");
    }
    if !(1..=1000).contains(&publishers) {
        bail!("--publishers must be 1..=1000");
    }
    if matches!(scenario, Scenario::Broadcast | Scenario::Stall) && messages == 0 {
        bail!("--messages must be at least 1");
    }
    if connections == 0
        && matches!(
            scenario,
            Scenario::Hello | Scenario::Stall | Scenario::Slowloris
        )
    {
        bail!("--connections must be at least 1");
    }
    if sends_per_login == 0 {
        bail!("--sends-per-login must be at least 1");
    }
    if !path.starts_with('/') || path.contains(char::is_whitespace) {
        bail!("--path must start with / and have no spaces");
    }
    let duration = duration.unwrap_or(match scenario {
        Scenario::Idle | Scenario::Chat | Scenario::Slowloris => 30.0,
        Scenario::Rooms => 20.0,
        Scenario::Stall => 45.0,
        Scenario::Hello => 10.0,
        _ => 0.0,
    });
    let procs = procs
        .unwrap_or_else(|| clients.div_ceil(10_000))
        .clamp(1, clients.max(1));
    let run = match run {
        Some(r) => {
            if r.is_empty() || r.len() > 8 || !r.bytes().all(|b| b.is_ascii_alphanumeric()) {
                bail!("--run: 1 to 8 letters or digits");
            }
            r
        }
        None => random_run_id(),
    };
    // Names are `lg<run>-<proc>-<i>`: at most 32 characters.
    let longest = format!("lg{run}-{}-{}", procs, clients);
    if longest.len() > 32 {
        bail!("client names would exceed 32 characters");
    }
    let sending = match scenario {
        Scenario::Broadcast => messages as f64 * request_timeout.min(1.0),
        Scenario::Chat | Scenario::Rooms => duration,
        Scenario::Slowloris => trickle_interval,
        _ => 0.0,
    };
    let max_secs = max_secs.unwrap_or(
        2.0 * ready_timeout + duration + sending + drain_timeout + 180.0 + clients as f64 / 100.0,
    );
    Ok(Command::Run(Box::new(Opts {
        scenario,
        servers,
        server_pids,
        protocol,
        clients,
        procs,
        messages,
        rate,
        duration,
        publishers,
        pad,
        connections,
        rcvbuf,
        trickle_interval,
        sends_per_login,
        reconnect,
        path,
        ramp,
        setup_concurrency,
        source_addrs,
        ready_timeout,
        drain_timeout,
        request_timeout,
        poll_read_timeout,
        logout_conns,
        threads: threads.or_else(|| {
            // With one thread per core the clients get half the CPU while
            // the server answers, and a reply sitting in a socket waits for
            // them: its arrival time does not change, the time it is read
            // (reported too) does.
            matches!(scenario, Scenario::Chat | Scenario::Rooms)
                .then(|| std::thread::available_parallelism().map_or(2, |n| n.get()) * 2)
        }),
        run,
        max_secs,
        quickack,
        json,
        quiet,
        rooms: layout,
    })))
}

/// The rooms scenario's layout (`None` for the others, which refuse its
/// options): its clients follow from it, so `--clients` is refused.
fn rooms_layout(
    scenario: Scenario,
    rooms: Option<usize>,
    members: Option<usize>,
    per_client: Option<usize>,
    clients_given: bool,
) -> anyhow::Result<Option<Layout>> {
    if scenario != Scenario::Rooms {
        if rooms.is_some() || members.is_some() || per_client.is_some() {
            bail!("--rooms, --members and --rooms-per-client are the rooms scenario's");
        }
        return Ok(None);
    }
    if clients_given {
        bail!("rooms: the clients are --rooms x --members / --rooms-per-client, not --clients");
    }
    let layout = Layout {
        rooms: rooms.unwrap_or(50),
        members: members.unwrap_or(40),
        per_client: per_client.unwrap_or(1),
    };
    // The chat opens at most 100 rooms (src/chat/membership.rs); a poll
    // follows at most 64 channels, one of them the chat room.
    if !(1..=100).contains(&layout.rooms) {
        bail!("--rooms must be 1..=100 (the chat opens at most 100)");
    }
    if layout.members == 0 {
        bail!("--members must be at least 1");
    }
    if !(1..=layout.rooms.min(63)).contains(&layout.per_client) {
        bail!("--rooms-per-client must be 1..={}", layout.rooms.min(63));
    }
    Ok(Some(layout))
}

/// Six base-36 characters from the clock and the process id.
fn random_run_id() -> String {
    let nanos = crate::sys::unix_nanos();
    let mut x = nanos ^ ((std::process::id() as u64) << 32) ^ (nanos >> 29);
    // A few rounds of xorshift to spread nearby clocks apart.
    for _ in 0..4 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..6)
        .map(|_| {
            let d = digits[(x % 36) as usize] as char;
            x /= 36;
            d
        })
        .collect()
}

/// The `--threads` flag to pass on to a child process.
pub fn threads_arg(threads: Option<usize>) -> Vec<String> {
    threads
        .map(|t| vec!["--threads".to_owned(), t.to_string()])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(args: &str) -> String {
        match parse(args.split_whitespace().map(str::to_owned).collect()) {
            Ok(_) => panic!("{args:?} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    fn protocol_of(args: &str) -> Protocol {
        match parse(args.split_whitespace().map(str::to_owned).collect()) {
            Ok(Command::Run(opts)) => opts.protocol,
            Ok(_) => panic!("{args:?} is not a scenario"),
            Err(e) => panic!("{args:?}: {e}"),
        }
    }

    #[test]
    fn the_protocol_is_ours_unless_nchan_is_asked_for() {
        assert_eq!(protocol_of("chat"), Protocol::Comet);
        assert_eq!(protocol_of("chat --protocol nchan"), Protocol::Nchan);
        assert!(error_of("chat --protocol websocket").contains("comet or nchan"));
    }

    #[test]
    fn rooms_size_their_clients_from_rooms_members_and_rooms_per_client() {
        let opts = |args: &str| match parse(args.split_whitespace().map(str::to_owned).collect()) {
            Ok(Command::Run(opts)) => opts,
            _ => panic!("{args:?} was refused"),
        };
        let one = opts("rooms");
        assert_eq!(one.clients, 2000);
        assert_eq!(one.rooms.map(|l| l.per_client), Some(1));
        assert_eq!(opts("rooms --rooms-per-client 10").clients, 200);
        assert_eq!(
            opts("rooms --rooms 3 --members 5 --rooms-per-client 2").clients,
            8
        );
        assert!(opts("chat").rooms.is_none());
        assert!(error_of("rooms --clients 10").contains("not --clients"));
        assert!(error_of("rooms --rooms 101").contains("1..=100"));
        assert!(error_of("rooms --rooms 5 --rooms-per-client 6").contains("1..=5"));
        assert!(error_of("chat --rooms 5").contains("rooms scenario"));
    }

    #[test]
    fn nchan_runs_only_the_scenarios_it_can() {
        assert!(error_of("stall --protocol nchan").contains("not stall"));
        assert!(
            error_of("broadcast --protocol nchan --server 127.0.0.1:1 --server 127.0.0.1:2")
                .contains("one --server")
        );
    }
}
