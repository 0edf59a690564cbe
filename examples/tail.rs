//! The chat in a terminal, on `comet`'s native client.
//!
//! ```sh
//! cargo run --example tail --features ssr,client -- http://127.0.0.1:3000 ada
//! ```
//!
//! Logs in as `ada` (`POST /api/login`, the token from the `comet_token`
//! cookie), prints the recent messages (`POST /api/recent_messages`, which
//! also gives the cursor to poll from), then the live chat from
//! `comet::client`'s stream: one line per message (`name: text`; presence
//! as `* ada joined`). Each line typed on stdin is sent
//! (`POST /api/send_message`); at the end of stdin it logs out and exits.
//!
//! The chat goes to stdout, one line per message, so it can be piped; what
//! concerns the terminal's user (connected, reconnecting, errors) goes to
//! stderr. This is a program's user interface, not a server's log, hence
//! `println!` rather than `tracing`.

use comet::client::{Auth, Client, Event};
use comet_chat::chat::lines::{Line, LineKind};
use comet_chat::chat::{History, CHANNEL};
use reqwest::{header, redirect, StatusCode};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_stream::wrappers::LinesStream;
use tokio_stream::StreamExt;

/// What the main loop waits for: a line typed, the end of typing, or the
/// chat's next event.
enum Input {
    Typed(String),
    Eof,
    Chat(Event),
}

/// The chat's HTTP endpoints this program calls besides the poll.
struct Chat {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Chat {
    /// Logs in as `name`: the private token from the session cookie.
    async fn login(base: &str, name: &str) -> Result<Chat, String> {
        // The token is in the login's own answer; a redirect followed would
        // lose it.
        let http = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let response = http
            .post(format!("{base}/api/login"))
            .form(&[("username", name)])
            .send()
            .await
            .map_err(|e| format!("cannot reach {base}: {e}"))?;
        let token = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(session_token);
        match token {
            Some(token) if !response.status().is_client_error() => Ok(Chat {
                http,
                base: base.to_owned(),
                token,
            }),
            _ => Err(refusal(response).await),
        }
    }

    async fn call(
        &self,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> Result<reqwest::Response, String> {
        let response = self
            .http
            .post(format!("{}/api/{endpoint}", self.base))
            .bearer_auth(&self.token)
            .form(form)
            .send()
            .await
            .map_err(|e| format!("{endpoint}: {e}"))?;
        if response.status().is_success() || response.status().is_redirection() {
            Ok(response)
        } else {
            Err(refusal(response).await)
        }
    }

    async fn history(&self) -> Result<History, String> {
        self.call("recent_messages", &[])
            .await?
            .json()
            .await
            .map_err(|e| format!("recent_messages: {e}"))
    }

    async fn send(&self, text: &str) -> Result<(), String> {
        self.call("send_message", &[("text", text)]).await.map(drop)
    }

    async fn logout(&self) -> Result<(), String> {
        self.call("logout", &[]).await.map(drop)
    }
}

/// The token of a session cookie (`comet_token=…`, or its `__Host-` form).
fn session_token(set_cookie: &str) -> Option<String> {
    let pair = set_cookie.split(';').next()?.trim();
    let pair = pair.strip_prefix("__Host-").unwrap_or(pair);
    pair.strip_prefix("comet_token=")
        .filter(|token| !token.is_empty())
        .map(str::to_owned)
}

/// A refused call, as the chat says it (its answers carry the sentence).
async fn refusal(response: reqwest::Response) -> String {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    match (status, text.trim()) {
        (StatusCode::TOO_MANY_REQUESTS, "") => "too many requests; wait a moment".to_owned(),
        (status, "") => format!("the chat answered {status}"),
        (_, text) => text.to_owned(),
    }
}

/// Prints the lines of one message: `name: text`, `* ada joined`.
fn print(message: &comet::Message) {
    for line in Line::from_message(message) {
        match line.kind {
            LineKind::Chat => println!("{}: {}", line.from, line.text),
            LineKind::Private => {
                let to = line.to.as_deref().unwrap_or("?");
                println!("{} → {to}: {}", line.from, line.text)
            }
            LineKind::Join | LineKind::Leave | LineKind::Notice => println!("* {}", line.text),
        }
    }
}

async fn run(base: &str, name: &str) -> Result<(), String> {
    let chat = Chat::login(base, name).await?;
    let history = chat.history().await?;
    history.messages.iter().for_each(print);
    eprintln!(
        "* connected as {} (type to send, end of input to leave)",
        history.me.name
    );

    let client = Client::new(base, Auth::Bearer(chat.token.clone()));
    let events = client
        .messages(CHANNEL, Some(history.cursor))
        .map(Input::Chat);
    // End of input is an item of its own, so the loop can log out on it.
    let typed = LinesStream::new(BufReader::new(tokio::io::stdin()).lines())
        .map_while(Result::ok)
        .map(Input::Typed)
        .chain(tokio_stream::once(Input::Eof));
    let mut inputs = typed.merge(events);

    while let Some(input) = inputs.next().await {
        match input {
            Input::Typed(text) if text.trim().is_empty() => {}
            Input::Typed(text) => {
                if let Err(e) = chat.send(&text).await {
                    eprintln!("* not sent: {e}");
                }
            }
            Input::Eof => break,
            Input::Chat(Event::Message(message)) => print(&message),
            Input::Chat(Event::Gap) => {
                eprintln!("* some messages were missed while away");
            }
            Input::Chat(Event::Retrying { error, after }) => {
                eprintln!("* reconnecting in {:.1} s: {error}", after.as_secs_f64());
            }
            Input::Chat(Event::Ended) => return Err("the session ended".to_owned()),
            Input::Chat(Event::Failed(error)) => return Err(error.to_string()),
        }
    }
    chat.logout().await
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, name] = args.as_slice() else {
        eprintln!("usage: tail <base url> <name>   e.g. tail http://127.0.0.1:3000 ada");
        std::process::exit(2);
    };
    let code = match run(base.trim_end_matches('/'), name).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("* {e}");
            1
        }
    };
    // Exit here rather than by returning: a runtime shutting down waits for
    // its stdin reader, a blocking read that only a newline would end.
    std::process::exit(code);
}
