//! The commands that talk to a running daemon through its HTTP API: `status`, `callbacks
//! list|show|create|cancel`, `agents list` and `events`. Human tables by default, the
//! API's own JSON with `--json`.
//!
//! Exit codes scripts can rely on: 0 done, 1 refused or not found (the API's error is
//! printed), 2 bad usage (clap's), 3 daemon unreachable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use futures_util::StreamExt;
use serde_json::Value;

use crate::config::{ApiRole, Config};

/// A refused request: exit status 1.
pub const EXIT_REFUSED: u8 = 1;
/// The daemon did not answer: exit status 3.
pub const EXIT_UNREACHABLE: u8 = 3;

/// Why a remote command failed, with the exit status it means.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("the daemon's API at {url} did not answer: {cause}")]
    Unreachable { url: String, cause: String },
    #[error("{status}: {code}: {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("{0}")]
    Usage(String),
}

impl RemoteError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Unreachable { .. } => EXIT_UNREACHABLE,
            Self::Refused { .. } => EXIT_REFUSED,
            Self::Usage(_) => 2,
        }
    }
}

/// Where the daemon's API is and which token to use.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The API's base URL (default: the config's [http] listen address).
    #[arg(long, env = "CALLBACKD_API", global = true)]
    pub api: Option<String>,
    /// A bearer token (default: the config's first admin token).
    #[arg(long, env = "CALLBACKD_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// The daemon's config file, for the API's address and a token.
    #[arg(long, env = "CALLBACKD_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct CallbacksArgs {
    #[command(subcommand)]
    pub command: CallbacksCommand,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Subcommand)]
pub enum CallbacksCommand {
    /// Callbacks, newest request first.
    List {
        #[arg(long)]
        queue: Option<String>,
        /// waiting, offered, dialing, retry_wait, connected or closed.
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        agent: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One callback with its history.
    Show { id: String },
    /// Ask for a callback (number rules of the line, as on the phone).
    Create {
        #[arg(long)]
        queue: String,
        #[arg(long)]
        line: String,
        #[arg(long)]
        number: String,
    },
    /// Withdraw a callback; phones ringing for it stop.
    Cancel { id: String },
}

#[derive(Debug, Args)]
pub struct AgentsArgs {
    #[command(subcommand)]
    pub command: AgentsCommand,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Every agent with their state.
    List,
}

#[derive(Debug, Args)]
pub struct WebhooksArgs {
    #[command(subcommand)]
    pub command: WebhooksCommand,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// The events receivers did not take for a whole retry window.
    Dead,
    /// Send a dead letter again (as `dead` lists it: webhook, queue, id).
    Replay {
        webhook: String,
        queue: String,
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only this queue's events.
    #[arg(long)]
    pub queue: Option<String>,
    /// Start after this event id (the stream's); by default from now.
    #[arg(long)]
    pub after: Option<String>,
    /// Keep following; without it, stop once no event came for 2 s.
    #[arg(long)]
    pub follow: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// A client for one daemon's API.
struct Remote {
    base: String,
    token: String,
    http: reqwest::Client,
    json: bool,
}

impl Remote {
    fn new(args: &ApiArgs) -> Result<Self, RemoteError> {
        let config = match &args.config {
            Some(path) => Some(Config::load(path).map_err(|e| RemoteError::Usage(e.to_string()))?),
            None => None,
        };
        let http_settings = config.as_ref().and_then(|c| c.http.as_ref());
        let base = match (&args.api, http_settings) {
            (Some(url), _) => url.trim_end_matches('/').to_owned(),
            (None, Some(h)) => format!("http://{}", h.listen),
            (None, None) => {
                return Err(RemoteError::Usage(
                    "give --api URL, or --config with an [http] table".into(),
                ))
            }
        };
        let token = match (&args.token, http_settings) {
            (Some(t), _) => t.clone(),
            (None, Some(h)) => h
                .tokens
                .iter()
                .find(|t| t.role == ApiRole::Admin)
                .map(|t| t.secret.clone())
                .ok_or_else(|| {
                    RemoteError::Usage("the config has no admin token; give --token".into())
                })?,
            (None, None) => return Err(RemoteError::Usage("give --token".into())),
        };
        Ok(Self {
            base,
            token,
            http: reqwest::Client::new(),
            json: args.json,
        })
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> RemoteError {
        RemoteError::Unreachable {
            url: self.base.clone(),
            cause: e.to_string(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, RemoteError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(10));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|e| self.unreachable(e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.unreachable(e))?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        // Readiness answers 503 with its figures, which is what `status` shows.
        if status.is_success() || path == "/health/ready" {
            return Ok(value);
        }
        Err(refused(status.as_u16(), &value, &text))
    }

    async fn get(&self, path: &str) -> Result<Value, RemoteError> {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// Print `value` as JSON, or as `table` makes it.
    fn print(&self, value: &Value, table: impl FnOnce(&Value)) {
        if self.json {
            println!("{value}");
        } else {
            table(value);
        }
    }
}

/// The API's error answer `value` (its raw `body` when it is not the error shape).
fn refused(status: u16, value: &Value, body: &str) -> RemoteError {
    let error = &value["error"];
    RemoteError::Refused {
        status,
        code: error["code"].as_str().unwrap_or("unknown").to_owned(),
        message: error["message"].as_str().unwrap_or(body).to_owned(),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// `callbackd reload`: the daemon reads its config file again, as on SIGHUP.
pub async fn reload(args: StatusArgs) -> Result<(), RemoteError> {
    let remote = Remote::new(&args.api)?;
    remote
        .call(reqwest::Method::POST, "/v1/reload", None)
        .await?;
    println!("config reloaded");
    Ok(())
}

pub async fn status(args: StatusArgs) -> Result<(), RemoteError> {
    let remote = Remote::new(&args.api)?;
    let ready = remote.get("/health/ready").await?;
    let queues = remote.get("/v1/queues").await?;
    let agents = remote.get("/v1/agents").await?;
    let all = serde_json::json!({"ready": ready, "queues": queues, "agents": agents});
    remote.print(&all, |all| {
        let r = &all["ready"];
        println!(
            "ready {}  (redis {}, freeswitch {}, draining {})\n",
            text(&r["ready"]),
            text(&r["redis"]),
            text(&r["freeswitch"]),
            text(&r["draining"])
        );
        println!(
            "{:<16} {:>8} {:>10} {:>14}",
            "queue", "waiting", "callbacks", "callbacks ever"
        );
        for q in all["queues"].as_array().into_iter().flatten() {
            println!(
                "{:<16} {:>8} {:>10} {:>14}",
                text(&q["name"]),
                text(&q["waiting"]),
                text(&q["callbacks_in_queue"]),
                text(&q["callbacks_total"])
            );
        }
        println!("\n{:<16} {:<15} ringing for", "agent", "state");
        for a in all["agents"].as_array().into_iter().flatten() {
            println!(
                "{:<16} {:<15} {}",
                text(&a["id"]),
                text(&a["state"]),
                text(&a["ringing_for"])
            );
        }
    });
    Ok(())
}

fn callback_row(c: &Value) {
    println!(
        "{:<36} {:<10} {:<16} {:<11} {:<16} {}",
        text(&c["id"]),
        text(&c["queue"]),
        text(&c["number"]),
        text(&c["state"]),
        text(&c["closed_reason"]),
        c["agents"]
            .as_array()
            .map(|a| a.iter().map(text).collect::<Vec<_>>().join(","))
            .unwrap_or_default()
    );
}

fn callback_header() {
    println!(
        "{:<36} {:<10} {:<16} {:<11} {:<16} agents",
        "id", "queue", "number", "state", "closed"
    );
}

pub async fn callbacks(args: CallbacksArgs) -> Result<(), RemoteError> {
    let remote = Remote::new(&args.api)?;
    match args.command {
        CallbacksCommand::List {
            queue,
            state,
            agent,
            limit,
        } => {
            let mut query = vec![format!("limit={limit}")];
            for (key, value) in [("queue", queue), ("state", state), ("agent", agent)] {
                if let Some(v) = value {
                    query.push(format!("{key}={}", encode(&v)));
                }
            }
            let page = remote
                .get(&format!("/v1/callbacks?{}", query.join("&")))
                .await?;
            remote.print(&page, |page| {
                callback_header();
                page["callbacks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .for_each(callback_row);
            });
        }
        CallbacksCommand::Show { id } => {
            let shown = remote
                .get(&format!("/v1/callbacks/{}", encode(&id)))
                .await?;
            remote.print(&shown, |c| {
                callback_header();
                callback_row(c);
                println!();
                for e in c["history"].as_array().into_iter().flatten() {
                    println!(
                        "{:<18} {:<20} agent {}",
                        text(&e["id"]),
                        text(&e["kind"]),
                        text(&e["fields"]["agent"])
                    );
                }
            });
        }
        CallbacksCommand::Create {
            queue,
            line,
            number,
        } => {
            let body = serde_json::json!({"queue": queue, "line": line, "number": number});
            let created = remote
                .call(reqwest::Method::POST, "/v1/callbacks", Some(body))
                .await?;
            remote.print(&created, |c| println!("{}", text(&c["id"])));
        }
        CallbacksCommand::Cancel { id } => {
            let path = format!("/v1/callbacks/{}", encode(&id));
            remote.call(reqwest::Method::DELETE, &path, None).await?;
            if !remote.json {
                println!("canceled {id}");
            }
        }
    }
    Ok(())
}

pub async fn agents(args: AgentsArgs) -> Result<(), RemoteError> {
    let remote = Remote::new(&args.api)?;
    match args.command {
        AgentsCommand::List => {
            let agents = remote.get("/v1/agents").await?;
            remote.print(&agents, |agents| {
                println!(
                    "{:<16} {:<15} {:<24} ringing for",
                    "agent", "state", "queues"
                );
                for a in agents.as_array().into_iter().flatten() {
                    let queues = a["queues"]
                        .as_array()
                        .map(|q| q.iter().map(text).collect::<Vec<_>>().join(","))
                        .unwrap_or_default();
                    println!(
                        "{:<16} {:<15} {:<24} {}",
                        text(&a["id"]),
                        text(&a["state"]),
                        queues,
                        text(&a["ringing_for"])
                    );
                }
            });
        }
    }
    Ok(())
}

pub async fn webhooks(args: WebhooksArgs) -> Result<(), RemoteError> {
    let remote = Remote::new(&args.api)?;
    match args.command {
        WebhooksCommand::Dead => {
            let dead = remote.get("/v1/webhooks/dead").await?;
            remote.print(&dead, |dead| {
                println!(
                    "{:<12} {:<12} {:<22} {:<18} {:>8}  last error",
                    "webhook", "queue", "id", "kind", "attempts"
                );
                for d in dead.as_array().into_iter().flatten() {
                    println!(
                        "{:<12} {:<12} {:<22} {:<18} {:>8}  {}",
                        text(&d["webhook"]),
                        text(&d["queue"]),
                        text(&d["id"]),
                        text(&d["kind"]),
                        text(&d["attempts"]),
                        text(&d["error"])
                    );
                }
            });
        }
        WebhooksCommand::Replay { webhook, queue, id } => {
            let path = format!(
                "/v1/webhooks/{}/dead/{}/{}/replay",
                encode(&webhook),
                encode(&queue),
                encode(&id)
            );
            remote.call(reqwest::Method::POST, &path, None).await?;
            if !remote.json {
                println!("replaying {id} to {webhook}");
            }
        }
    }
    Ok(())
}

/// How long `events` without `--follow` waits for the next event before it stops.
const IDLE: Duration = Duration::from_secs(2);

pub async fn events(args: EventsArgs) -> Result<(), RemoteError> {
    let remote = Remote::new(&args.api)?;
    let mut query = Vec::new();
    if let Some(q) = &args.queue {
        query.push(format!("queue={}", encode(q)));
    }
    if let Some(a) = &args.after {
        query.push(format!("after={}", encode(a)));
    }
    let url = format!("{}/v1/events?{}", remote.base, query.join("&"));
    let resp = remote
        .http
        .get(url)
        .bearer_auth(&remote.token)
        .send()
        .await
        .map_err(|e| remote.unreachable(e))?;
    if !resp.status().is_success() {
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        return Err(refused(status, &value, &body));
    }
    let mut body = resp.bytes_stream();
    let mut pending = String::new();
    loop {
        let next = if args.follow {
            body.next().await
        } else {
            match tokio::time::timeout(IDLE, body.next()).await {
                Ok(next) => next,
                Err(_) => return Ok(()),
            }
        };
        let Some(chunk) = next else { return Ok(()) };
        let chunk = chunk.map_err(|e| remote.unreachable(e))?;
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find("\n\n") {
            let frame: String = pending.drain(..end + 2).collect();
            let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            let Ok(event) = serde_json::from_str::<Value>(data) else {
                continue;
            };
            if remote.json {
                println!("{event}");
            } else {
                let fields = &event["fields"];
                println!(
                    "{:<18} {:<16} {:<20} entry {} agent {}",
                    text(&event["id"]),
                    text(&event["stream"]),
                    text(&event["kind"]),
                    text(&fields["entry"]),
                    text(&fields["agent"])
                );
            }
        }
    }
}

/// Percent-encode a query or path value: ids and names are plain, but a typo may not be.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
