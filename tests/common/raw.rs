//! Raw HTTP/1.x over TCP for the HTTP front's own tests: servers started
//! in-process with a stop switch, and a client that writes exact bytes and
//! reads answers one by one (so pipelining, framing and closes are seen as
//! they are on the wire, which an HTTP client library would hide).

use super::http::{serve_on_loopback_until, test_config};
use comet::serve::{self, Limits};
use comet_chat::server;
use leptos::config::LeptosOptions;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Longest any single step of these tests may take before it is a failure.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A server on a loopback port, and the switch that stops it.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    /// `serve`'s task: done once the server has stopped.
    pub done: JoinHandle<()>,
}

impl Server {
    /// Serves `routes` with `limits` until [`stop`](Self::stop).
    pub fn start(routes: impl Into<serve::Routes> + Send + 'static, limits: Limits) -> Server {
        let (stop, stopped) = oneshot::channel::<()>();
        let (addr, done) = serve_on_loopback_until(routes, limits, async move {
            let _ = stopped.await;
        });
        Server {
            addr,
            stop: Some(stop),
            done,
        }
    }

    /// The chat app, configured as [`test_config`] does with `overrides`.
    pub async fn chat(overrides: &[(&str, &str)]) -> Server {
        let config = test_config(overrides);
        let options = LeptosOptions::builder().output_name("comet-chat").build();
        let provider = server::provider(&config)
            .await
            .expect("in-process provider");
        let (routes, _comet) = server::build(&config, provider, options);
        Server::start(routes, config.http.clone())
    }

    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn connect(&self) -> Conn {
        Conn::new(TcpStream::connect(self.addr).await.unwrap())
    }
}

/// One answer as read off the wire.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client connection: what it wrote, and bytes read but not yet used.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream.write_all(bytes.as_ref()).await.unwrap();
    }

    /// Reads more bytes; 0 at end of stream (a reset counts as the end).
    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(PATIENCE, self.stream.read(&mut chunk))
            .await
            .expect("the server answers or closes in time")
            .unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// The next answer's head: status and headers (interim ones included).
    pub async fn head(&mut self) -> (u16, Vec<(String, String)>) {
        loop {
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut slots);
            if let httparse::Status::Complete(len) = response.parse(&self.buf).unwrap() {
                let status = response.code.unwrap();
                let headers = response
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                self.buf.drain(..len);
                return (status, headers);
            }
            assert!(self.fill().await > 0, "connection closed mid-head");
        }
    }

    /// The next final answer, its body framed as its headers say (`HEAD`
    /// answers: pass `head_request`).
    pub async fn answer_to(&mut self, head_request: bool) -> Answer {
        let (status, headers) = loop {
            let (status, headers) = self.head().await;
            if status != 100 {
                break (status, headers);
            }
        };
        let mut answer = Answer {
            status,
            headers,
            body: Vec::new(),
        };
        if head_request {
            return answer;
        }
        if let Some(length) = answer.header("content-length") {
            let length: usize = length.parse().unwrap();
            while self.buf.len() < length {
                assert!(self.fill().await > 0, "connection closed mid-body");
            }
            answer.body = self.buf.drain(..length).collect();
        } else if answer.header("transfer-encoding") == Some("chunked") {
            answer.body = self.chunked().await;
        } else {
            while self.fill().await > 0 {}
            answer.body = std::mem::take(&mut self.buf);
        }
        answer
    }

    pub async fn answer(&mut self) -> Answer {
        self.answer_to(false).await
    }

    async fn chunked(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                assert!(self.fill().await > 0, "connection closed mid-chunk");
            };
            let size = usize::from_str_radix(
                std::str::from_utf8(&self.buf[..line_end]).unwrap().trim(),
                16,
            )
            .unwrap();
            self.buf.drain(..line_end + 2);
            while self.buf.len() < size + 2 {
                assert!(self.fill().await > 0, "connection closed mid-chunk");
            }
            body.extend(self.buf.drain(..size));
            self.buf.drain(..2);
            if size == 0 {
                return body;
            }
        }
    }

    /// Whether the server closes the connection (after whatever it still
    /// sends): reads to the end.
    pub async fn closed(&mut self) -> bool {
        while self.fill().await > 0 {}
        true
    }

    /// Everything until the server closes.
    pub async fn rest(&mut self) -> Vec<u8> {
        while self.fill().await > 0 {}
        std::mem::take(&mut self.buf)
    }
}

/// A GET of `path` on HTTP/1.1.
pub fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n")
}
