//! The normal users of `slowloris`: each on its own address, in a loop,
//! logs in on a fresh connection (a connection cap or a full accept queue
//! shows here), holds a poll on a second connection as a browser does,
//! sends, and times the poll's answer carrying that very message; after a
//! few sends it logs out and in again.

use crate::http::Conn;
use crate::proto::{self, timed, CallError, PollRequest};
use crate::stats::{AtomicHistogram, Errors};
use crate::sys;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The normal users' measurements.
#[derive(Default)]
pub struct Users {
    pub login: AtomicHistogram,
    pub send: AtomicHistogram,
    pub poll: AtomicHistogram,
    pub logins: AtomicU64,
    pub sends: AtomicU64,
    pub errors: Errors,
}

pub struct User {
    pub index: usize,
    pub server: SocketAddr,
    pub source: Option<IpAddr>,
    pub run: String,
    pub limit: Duration,
    /// Send number `s` of this user goes out at `first + s * every`.
    pub first: Instant,
    pub every: Duration,
    pub end: Instant,
    pub sends_per_login: usize,
    pub out: Arc<Users>,
}

fn ns(since: Instant) -> u64 {
    since.elapsed().as_nanos() as u64
}

impl User {
    /// When send number `seq` of this user is due.
    fn slot(&self, seq: u64) -> Instant {
        self.first + self.every.mul_f64(seq as f64)
    }

    pub async fn run(self) {
        let mut seq = 0u64;
        let mut login_no = 0;
        let mut buf = Vec::new();
        while self.slot(seq) < self.end {
            // Log in when the next send is due, not before: a connection
            // left idle until then could meet the server's idle timeout.
            tokio::time::sleep_until(self.slot(seq)).await;
            let name = format!("lg{}-u{}-{}", self.run, self.index, login_no);
            login_no += 1;
            let t = Instant::now();
            let login = timed(self.limit, async {
                let mut conn = Conn::connect(self.server, self.source).await?;
                let token = proto::login(&mut conn, &name, &mut buf).await?;
                Ok((conn, token))
            })
            .await;
            let (mut conn, token) = match login {
                Ok(v) => v,
                Err(e) => {
                    self.out.errors.add("user_login", &e.kind());
                    seq += 1;
                    tokio::time::sleep_until(self.slot(seq)).await;
                    continue;
                }
            };
            self.out.login.record(ns(t));
            self.out.logins.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = self.session(&mut conn, &token, &mut seq).await {
                self.out.errors.add(e.0, &e.1.kind());
                tokio::time::sleep_until(self.slot(seq)).await;
            }
            let out = timed(self.limit, async {
                if conn.closed {
                    conn = Conn::connect(self.server, self.source).await?;
                }
                proto::logout(&mut conn, &token, &mut buf).await
            })
            .await;
            if let Err(e) = out {
                self.out.errors.add("user_logout", &e.kind());
            }
        }
    }

    /// Up to `sends_per_login` sends, each with a poll held on a second
    /// connection, as a browser does.
    async fn session(
        &self,
        conn: &mut Conn,
        token: &str,
        seq: &mut u64,
    ) -> Result<(), (&'static str, CallError)> {
        let mut buf = Vec::new();
        let mut cursor = timed(
            self.limit,
            proto::recent_cursor(conn, token, None, &mut buf),
        )
        .await
        .map_err(|e| ("user_history", e))?;
        let mut poller = timed(self.limit, async {
            Ok(Conn::connect(self.server, self.source).await?)
        })
        .await
        .map_err(|e| ("user_poll", e))?;
        let request = PollRequest::new(&self.server.to_string(), token);
        let prefix = proto::run_prefix(&self.run);
        let mut form = String::new();
        for _ in 0..self.sends_per_login {
            let at = self.slot(*seq);
            if at >= self.end {
                break;
            }
            tokio::time::sleep_until(at).await;
            let mine = *seq;
            *seq += 1;
            // The poll is held (its head came back) before the send.
            let mut head = timed(self.limit, async {
                proto::send_poll(&mut poller, &request, Some(&cursor), true).await?;
                Ok(poller.read_head().await?)
            })
            .await
            .map_err(|e| ("user_poll", e))?;
            if head.status != 200 {
                return Err(("user_poll", CallError::Status(head.status)));
            }
            let t = Instant::now();
            let text = proto::message_text(&self.run, self.index, mine, sys::unix_nanos(), 0);
            let send = timed(self.limit, async {
                proto::send_message(conn, token, &text, None, &mut form, &mut buf).await?;
                Ok(ns(t))
            });
            let answer = timed(self.limit, async {
                let mut body = Vec::new();
                loop {
                    poller.read_body(&head, &mut body).await?;
                    let reply = proto::parse_poll(&body)?;
                    let mut found = false;
                    for m in &reply.messages {
                        let text = m
                            .contents
                            .as_ref()
                            .and_then(|c| c.text.as_deref())
                            .unwrap_or("");
                        found |= proto::parse_text(text, &prefix)
                            .is_some_and(|(p, s, _)| p == self.index && s == mine);
                    }
                    if let Some(last) = reply.messages.last() {
                        cursor = last.id.clone().into_owned();
                    }
                    if found {
                        return Ok(ns(t));
                    }
                    proto::send_poll(&mut poller, &request, Some(&cursor), false).await?;
                    head = poller.read_head().await?;
                    if head.status != 200 {
                        return Err(CallError::Status(head.status));
                    }
                }
            });
            let (sent, answered) = tokio::join!(send, answer);
            let sent = sent.map_err(|e| ("user_send", e))?;
            self.out.send.record(sent);
            self.out.sends.fetch_add(1, Ordering::Relaxed);
            let answered = answered.map_err(|e| ("user_poll", e))?;
            self.out.poll.record(answered);
        }
        Ok(())
    }
}
