//! The publishing clients of the chat scenarios. Publishers are separate
//! clients (not among the N measured ones).
//!
//! - Ours: a publisher logs in, sends through `/api/send_message` on its
//!   own keep-alive connection, and keeps one poll going, as a browser
//!   would, so the server does not reap it as idle during a long run; it
//!   logs out at the end. In the rooms scenario publisher p opens room p
//!   (`create_room`), sends to it, and polls it with the chat room in one
//!   `POST /comet`, as the page of a user in that room would.
//! - Nchan: a publisher is a connection that `POST`s to `/pub/<channel>`
//!   (no login, nothing to keep alive).

use crate::cli::Opts;
use crate::http::Conn;
use crate::nchan;
use crate::proto::{self, CallError};
use crate::rooms;
use crate::stats::Errors;
use crate::subscription::Subscription;
use crate::sys;
use crate::worker::Protocol;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// A kept-alive connection unused for this long is replaced before use.
const STALE: Duration = Duration::from_secs(30);
use tokio_util::sync::CancellationToken;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A publishing client: one connection for sends (and, ours, one for its
/// own polls).
pub struct Publisher {
    pub index: usize,
    server: SocketAddr,
    source: Option<IpAddr>,
    session: Session,
    conn: Option<Conn>,
    /// When the connection last finished a request.
    used: Instant,
    buf: Vec<u8>,
    form: String,
    request_timeout: Duration,
}

/// Who a publisher is to the server.
enum Session {
    /// Ours: a logged-in client, and its own polls.
    Comet {
        token: String,
        /// The room it opened and sends to (rooms scenario); `None`: the
        /// chat room.
        room: Option<String>,
        keepalive: Option<(CancellationToken, JoinHandle<()>)>,
    },
    /// Nchan: anyone may publish to the channel.
    Nchan { channel: String },
}

impl Publisher {
    /// Publisher `index`: logged in (ours) or connected (Nchan).
    pub async fn start(opts: &Opts, index: usize) -> Result<Publisher, CallError> {
        let server = opts.servers[index % opts.servers.len()];
        let source = sys::source_for(server, opts.clients + index, opts.source_addrs);
        let request_timeout = secs(opts.request_timeout);
        let mut buf = Vec::new();
        let (conn, session) = match opts.protocol {
            Protocol::Comet => {
                let name = format!("lg{}-pub{}", opts.run, index);
                let room = opts.rooms.map(|_| rooms::room_name(&opts.run, index));
                let (conn, token) = proto::timed(request_timeout, async {
                    let mut conn = Conn::connect(server, source).await?;
                    let token = proto::login(&mut conn, &name, &mut buf).await?;
                    if let Some(room) = &room {
                        rooms::create_room(&mut conn, &token, room, &mut buf).await?;
                    }
                    Ok::<_, CallError>((conn, token))
                })
                .await?;
                let host = server.to_string();
                let subscription = match &room {
                    None => Subscription::comet(&host, &token, None),
                    Some(room) => Subscription::channels(
                        &host,
                        &token,
                        vec![(rooms::CHAT_ROOM.to_owned(), None), (room.clone(), None)],
                    ),
                };
                let cancel = CancellationToken::new();
                let keepalive = tokio::spawn(keep_polling(
                    server,
                    source,
                    subscription,
                    cancel.clone(),
                    request_timeout,
                    secs(opts.poll_read_timeout),
                ));
                let keepalive = Some((cancel, keepalive));
                (
                    conn,
                    Session::Comet {
                        token,
                        room,
                        keepalive,
                    },
                )
            }
            Protocol::Nchan => {
                let conn = proto::timed(request_timeout, async {
                    Ok(Conn::connect(server, source).await?)
                })
                .await?;
                let channel = nchan::channel(&opts.run);
                (conn, Session::Nchan { channel })
            }
        };
        Ok(Publisher {
            index,
            server,
            source,
            session,
            conn: Some(conn),
            used: Instant::now(),
            buf,
            form: String::new(),
            request_timeout,
        })
    }

    /// `f` on the publisher's connection (reconnected if the server closed
    /// it, or if it sat unused for [`STALE`], as browsers do: a server
    /// closes idle keep-alive connections, ours after 75 s, and a request
    /// written as it does so is lost), within the request timeout; the
    /// connection is dropped on error.
    async fn call<T>(
        &mut self,
        f: impl AsyncFnOnce(&mut Conn, &Session, &mut String, &mut Vec<u8>) -> Result<T, CallError>,
    ) -> Result<T, CallError> {
        if self.used.elapsed() > STALE {
            self.conn = None;
        }
        let r = proto::timed(self.request_timeout, async {
            if self.conn.as_ref().is_none_or(|c| c.closed) {
                self.conn = Some(Conn::connect(self.server, self.source).await?);
            }
            let conn = self.conn.as_mut().expect("connected above");
            f(conn, &self.session, &mut self.form, &mut self.buf).await
        })
        .await;
        if r.is_err() {
            self.conn = None;
        }
        self.used = Instant::now();
        r
    }

    /// Sends message `seq`; returns when it was sent (unix nanos).
    pub async fn send(&mut self, run: &str, seq: u64, pad: usize) -> Result<u64, CallError> {
        let sent = sys::unix_nanos();
        let text = proto::message_text(run, self.index, seq, sent, pad);
        self.call(async |conn, session, form, buf| match session {
            Session::Comet { token, room, .. } => {
                proto::send_message(conn, token, &text, room.as_deref(), form, buf).await
            }
            Session::Nchan { channel } => nchan::publish(conn, channel, &text, buf).await,
        })
        .await
        .map(|()| sent)
    }

    /// How many subscribers Nchan holds (`None` for ours, whose polls say
    /// so themselves).
    pub async fn nchan_subscribers(&mut self) -> Option<Result<u64, CallError>> {
        if !matches!(self.session, Session::Nchan { .. }) {
            return None;
        }
        Some(
            self.call(async |conn, _, _, buf| nchan::subscribers(conn, buf).await)
                .await,
        )
    }

    /// Ours: stops polling and logs out. Nchan: nothing to end.
    pub async fn finish(mut self, errors: &Errors) -> bool {
        let Session::Comet {
            token, keepalive, ..
        } = &mut self.session
        else {
            return true;
        };
        let token = token.clone();
        if let Some((cancel, handle)) = keepalive.take() {
            cancel.cancel();
            let _ = handle.await;
        }
        let r = self
            .call(async |conn, _, _, buf| proto::logout(conn, &token, buf).await)
            .await;
        match r {
            Ok(()) => true,
            Err(e) => {
                errors.add("publisher_logout", &e.kind());
                false
            }
        }
    }
}

/// A publisher's own polls, so it stays a live client; what it receives
/// is not measured.
async fn keep_polling(
    server: SocketAddr,
    source: Option<IpAddr>,
    mut subscription: Subscription,
    cancel: CancellationToken,
    request_timeout: Duration,
    poll_timeout: Duration,
) {
    let mut failures = 0;
    let mut buf = Vec::new();
    let mut conn: Option<Conn> = None;
    while failures < 10 && !cancel.is_cancelled() {
        let round = async {
            if conn.as_ref().is_none_or(|c| c.closed) {
                conn = Some(Conn::connect(server, source).await?);
            }
            let c = conn.as_mut().expect("connected above");
            subscription.send(c, false).await?;
            let head = tokio::time::timeout(request_timeout, c.read_head())
                .await
                .map_err(|_| CallError::Timeout)??;
            tokio::time::timeout(poll_timeout, c.read_body(&head, &mut buf))
                .await
                .map_err(|_| CallError::Timeout)??;
            Ok::<_, CallError>(head)
        };
        let head = tokio::select! {
            _ = cancel.cancelled() => return,
            r = round => r,
        };
        let answered = head.and_then(|head| subscription.answer(&head, &buf, |_| {}).map(|_| ()));
        match answered {
            Ok(()) => failures = 0,
            Err(CallError::Status(410)) => subscription.resynchronise(),
            Err(_) => {
                failures += 1;
                conn = None;
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(300)) => {}
                }
            }
        }
    }
}
