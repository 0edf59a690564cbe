//! Logging every client out at the end of a scenario, so the server is
//! clean for the next one. The clients' own connections are gone by then
//! (they were holding polls, and are closed first), so a few connections
//! per server do the logouts one after another; with nobody polling, each
//! "left" message is stored once instead of being fanned out to everyone.

use crate::http::Conn;
use crate::proto::{self, CallError};
use crate::stats::Errors;
use crate::sys;
use crate::worker::WorkerConfig;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Logs out every `(server index, token)` session over at most
/// `cfg.logout_conns` connections per server, within `timeout` overall.
/// Returns how many logged out, how many did not, and the errors met.
pub async fn logout_all(
    cfg: &WorkerConfig,
    sessions: &[(usize, String)],
    timeout: Duration,
) -> (usize, usize, BTreeMap<String, u64>) {
    let errors = Arc::new(Errors::default());
    let request_timeout = Duration::from_millis(cfg.request_timeout_ms);
    let mut tasks = Vec::new();
    for (s, server) in cfg.servers.iter().enumerate() {
        let tokens: Vec<String> = sessions
            .iter()
            .filter(|(server, _)| *server == s)
            .map(|(_, token)| token.clone())
            .collect();
        let conns = cfg.logout_conns.clamp(1, tokens.len().max(1));
        let per = tokens.len().div_ceil(conns).max(1);
        for (k, chunk) in tokens.chunks(per).enumerate() {
            let chunk = chunk.to_vec();
            let server = *server;
            let source = sys::source_for(server, cfg.first_client + k, cfg.source_addrs);
            let errors = errors.clone();
            tasks.push(tokio::spawn(async move {
                let mut ok = 0usize;
                let mut conn: Option<Conn> = None;
                let mut buf = Vec::new();
                for token in &chunk {
                    let mut done = false;
                    for _attempt in 0..2 {
                        let r = tokio::time::timeout(request_timeout, async {
                            if conn.as_ref().is_none_or(|c| c.closed) {
                                conn = Some(Conn::connect(server, source).await?);
                            }
                            let c = conn.as_mut().expect("connected above");
                            proto::logout(c, token, &mut buf).await
                        })
                        .await
                        .unwrap_or(Err(CallError::Timeout));
                        match r {
                            Ok(()) => {
                                done = true;
                                break;
                            }
                            Err(e) => {
                                errors.add("logout", &e.kind());
                                conn = None;
                                if !matches!(e, CallError::Http(_)) {
                                    break;
                                }
                            }
                        }
                    }
                    ok += usize::from(done);
                }
                (ok, chunk.len())
            }));
        }
    }
    let total = sessions.len();
    let mut ok = 0;
    let joined = tokio::time::timeout(timeout, async {
        for t in tasks {
            if let Ok((n, _)) = t.await {
                ok += n;
            }
        }
    })
    .await;
    if joined.is_err() {
        errors.add("logout", "overall_timeout");
    }
    (ok, total - ok.min(total), errors.snapshot())
}
