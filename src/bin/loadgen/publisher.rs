//! The publishing clients of the chat scenarios: separate clients (not
//! among the N measured ones), each logged in, sending through
//! `/api/send_message` on its own keep-alive connection, and keeping one
//! poll going, as a browser would, so the server does not reap it as idle
//! during a long run.

use crate::cli::Opts;
use crate::http::Conn;
use crate::proto::{self, CallError};
use crate::stats::Errors;
use crate::sys;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A publishing client: one connection for sends, one for its own polls.
pub struct Publisher {
    pub index: usize,
    server: SocketAddr,
    source: Option<IpAddr>,
    token: String,
    conn: Option<Conn>,
    buf: Vec<u8>,
    form: String,
    request_timeout: Duration,
    keepalive: Option<(CancellationToken, JoinHandle<()>)>,
}

impl Publisher {
    pub async fn login(opts: &Opts, index: usize) -> Result<Publisher, CallError> {
        let server = opts.servers[index % opts.servers.len()];
        let source = sys::source_for(server, opts.clients + index, opts.source_addrs);
        let request_timeout = secs(opts.request_timeout);
        let name = format!("lg{}-pub{}", opts.run, index);
        let mut buf = Vec::new();
        let (conn, token) = tokio::time::timeout(request_timeout, async {
            let mut conn = Conn::connect(server, source).await?;
            let token = proto::login(&mut conn, &name, &mut buf).await?;
            Ok::<_, CallError>((conn, token))
        })
        .await
        .unwrap_or(Err(CallError::Timeout))?;
        let cancel = CancellationToken::new();
        let keepalive = tokio::spawn(keep_polling(
            server,
            source,
            token.clone(),
            cancel.clone(),
            request_timeout,
            secs(opts.poll_read_timeout),
        ));
        Ok(Publisher {
            index,
            server,
            source,
            token,
            conn: Some(conn),
            buf,
            form: String::new(),
            request_timeout,
            keepalive: Some((cancel, keepalive)),
        })
    }

    /// Sends message `seq`; returns when it was sent (unix nanos).
    pub async fn send(&mut self, run: &str, seq: u64, pad: usize) -> Result<u64, CallError> {
        let sent = sys::unix_nanos();
        let text = proto::message_text(run, self.index, seq, sent, pad);
        let r = tokio::time::timeout(self.request_timeout, async {
            if self.conn.as_ref().is_none_or(|c| c.closed) {
                self.conn = Some(Conn::connect(self.server, self.source).await?);
            }
            let conn = self.conn.as_mut().expect("connected above");
            proto::send_message(conn, &self.token, &text, &mut self.form, &mut self.buf).await
        })
        .await
        .unwrap_or(Err(CallError::Timeout));
        if r.is_err() {
            self.conn = None;
        }
        r.map(|()| sent)
    }

    /// Stops polling and logs out.
    pub async fn finish(mut self, errors: &Errors) -> bool {
        if let Some((cancel, handle)) = self.keepalive.take() {
            cancel.cancel();
            let _ = handle.await;
        }
        let r = tokio::time::timeout(self.request_timeout, async {
            if self.conn.as_ref().is_none_or(|c| c.closed) {
                self.conn = Some(Conn::connect(self.server, self.source).await?);
            }
            let conn = self.conn.as_mut().expect("connected above");
            proto::logout(conn, &self.token, &mut self.buf).await
        })
        .await
        .unwrap_or(Err(CallError::Timeout));
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
    token: String,
    cancel: CancellationToken,
    request_timeout: Duration,
    poll_timeout: Duration,
) {
    let mut cursor: Option<String> = None;
    let mut failures = 0;
    let mut buf = Vec::new();
    let mut conn: Option<Conn> = None;
    let request = proto::PollRequest::new(&server.to_string(), &token);
    while failures < 10 && !cancel.is_cancelled() {
        let round = async {
            if conn.as_ref().is_none_or(|c| c.closed) {
                conn = Some(Conn::connect(server, source).await?);
            }
            let c = conn.as_mut().expect("connected above");
            proto::send_poll(c, &request, cursor.as_deref(), false).await?;
            let head = tokio::time::timeout(request_timeout, c.read_head())
                .await
                .map_err(|_| CallError::Timeout)??;
            tokio::time::timeout(poll_timeout, c.read_body(&head, &mut buf))
                .await
                .map_err(|_| CallError::Timeout)??;
            Ok::<u16, CallError>(head.status)
        };
        let status = tokio::select! {
            _ = cancel.cancelled() => return,
            r = round => r,
        };
        match status {
            Ok(200) => {
                failures = 0;
                if let Ok(reply) = proto::parse_poll(&buf) {
                    if let Some(last) = reply.messages.last() {
                        cursor = Some(last.id.clone().into_owned());
                    }
                }
            }
            Ok(410) => cursor = None,
            _ => {
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
