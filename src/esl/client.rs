//! The inbound ESL client: one supervised connection to FreeSWITCH's event socket.
//!
//! It authenticates, subscribes, matches replies to commands, hands BACKGROUND_JOB and
//! CHANNEL_EXECUTE_COMPLETE results to whoever awaits them, and reconnects on its own,
//! telling the consumer about every gap so it can resync instead of trusting stale state.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch, Mutex};

use super::codec::{DecodeError, FrameDecoder, FrameWriter, DEFAULT_MAX_FRAME};
use super::event::{Event, EventError};
use super::frame::{ContentType, Frame};

/// Everything that can go wrong talking to FreeSWITCH.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("event socket I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed frame from FreeSWITCH: {0}")]
    Decode(#[from] DecodeError),
    #[error("malformed event from FreeSWITCH: {0}")]
    Event(#[from] EventError),
    #[error("FreeSWITCH refused the credentials: {0}")]
    AuthFailed(String),
    #[error("FreeSWITCH rejected the connection (ACL): {0}")]
    Rejected(String),
    #[error("unexpected {0} frame during the handshake")]
    Handshake(String),
    #[error("`{command}` failed: {reply}")]
    CommandFailed { command: String, reply: String },
    #[error("refusing to send a command with a line break or an empty part: {0:?}")]
    InvalidCommand(String),
    #[error("not connected to FreeSWITCH")]
    NotConnected,
    #[error("connection to FreeSWITCH lost before the answer came")]
    ConnectionLost,
    #[error("FreeSWITCH did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the event receiver was dropped; the client stopped")]
    ConsumerGone,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Event encoding asked of FreeSWITCH. XML is decoded too, but only plain and json are worth
/// subscribing to: xml is twice the bytes for the same content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventFormat {
    #[default]
    Plain,
    Json,
    Xml,
}

impl EventFormat {
    fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Json => "json",
            Self::Xml => "xml",
        }
    }
}

/// Capped exponential backoff with jitter between connection attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The wait before attempt `n` (0-based): `initial·2ⁿ` capped at `max`, then a random
    /// 50–100 % of it so that many daemons restarting together do not reconnect in lockstep.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.max);
        base.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// The event socket's password: it reaches the socket and nothing else, so no `Debug` of a
/// config (in a log line, a panic, an error chain) can show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// The password itself, for the `auth` line.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Password {
    fn from(password: &str) -> Self {
        Self::new(password)
    }
}

impl From<String> for Password {
    fn from(password: String) -> Self {
        Self(password)
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// How to reach FreeSWITCH and what to ask of it.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` of the event socket.
    pub address: String,
    pub password: Password,
    /// With a user, `userauth user@domain:password` is sent instead of `auth password`.
    pub user: Option<String>,
    pub format: EventFormat,
    /// Event names for `event <format> …`; `CUSTOM` subclasses go in `custom_subclasses`.
    pub events: Vec<String>,
    pub custom_subclasses: Vec<String>,
    /// `filter <header> <value>` pairs applied after every (re)connect.
    pub filters: Vec<(String, String)>,
    pub max_frame: usize,
    /// Events buffered between the socket reader and the consumer.
    pub event_buffer: usize,
    /// How long the reader waits on a full buffer before it drops events and reports a gap.
    pub overflow_grace: Duration,
    /// After this long without a byte from FreeSWITCH, the client sends `api status`…
    pub idle_probe: Duration,
    /// …and reconnects when that gets no answer in this time.
    pub liveness_timeout: Duration,
    /// Deadline for the handshake and for each command's reply.
    pub command_timeout: Duration,
    pub backoff: Backoff,
}

impl ClientConfig {
    pub fn new(address: impl Into<String>, password: impl Into<Password>) -> Self {
        Self {
            address: address.into(),
            password: password.into(),
            user: None,
            format: EventFormat::Plain,
            events: Vec::new(),
            custom_subclasses: Vec::new(),
            filters: Vec::new(),
            max_frame: DEFAULT_MAX_FRAME,
            event_buffer: 65_536,
            overflow_grace: Duration::from_secs(2),
            idle_probe: Duration::from_secs(30),
            liveness_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(10),
            backoff: Backoff::default(),
        }
    }
}

/// What the consumer receives, in order.
#[derive(Debug)]
pub enum Delivery {
    /// Authenticated and subscribed for the first time.
    Connected,
    /// The connection was lost (the reason says why); commands fail until the next connect.
    Disconnected(String),
    /// Connected again after a loss: events were missed, resync what you track.
    Reconnected,
    /// The consumer fell behind for longer than the grace period and `dropped` events were
    /// thrown away: treat like a reconnect and resync.
    Gap {
        dropped: u64,
    },
    Event(Event),
}

/// Counters for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct ClientStats {
    pub frames: AtomicU64,
    pub events: AtomicU64,
    pub bytes: AtomicU64,
    pub dropped: AtomicU64,
    pub connects: AtomicU64,
}

/// What FreeSWITCH answered to a command.
#[derive(Debug, Clone)]
pub struct Reply {
    frame: Frame,
}

impl Reply {
    /// `Reply-Text` of a `command/reply`, or the body of an `api/response`.
    pub fn text(&self) -> String {
        match self.frame.content_type() {
            ContentType::ApiResponse => self.frame.body_text().into_owned(),
            _ => self.frame.reply_text().unwrap_or_default().into_owned(),
        }
    }

    pub fn is_err(&self) -> bool {
        self.text().starts_with("-ERR")
    }

    pub fn frame(&self) -> &Frame {
        &self.frame
    }
}

/// A `bgapi` in flight; [`BackgroundJob::wait`] returns its BACKGROUND_JOB body.
#[derive(Debug)]
pub struct BackgroundJob {
    pub job_uuid: String,
    command: String,
    rx: oneshot::Receiver<Event>,
}

impl BackgroundJob {
    /// The job's result body (`+OK …`); an `-ERR …` body is returned as [`Error::CommandFailed`].
    /// It ends when the job's BACKGROUND_JOB comes or the connection is lost (the job is
    /// lost with it); give a job that may run long a deadline with [`BackgroundJob::wait_for`].
    pub async fn wait(self) -> Result<String> {
        let event = self.rx.await.map_err(|_| Error::ConnectionLost)?;
        let body = event.body().into_owned();
        if body.starts_with("-ERR") {
            return Err(Error::CommandFailed {
                command: self.command,
                reply: body.trim_end().to_owned(),
            });
        }
        Ok(body)
    }
}

impl BackgroundJob {
    /// [`BackgroundJob::wait`], giving up with [`Error::Timeout`] after `limit`: a job
    /// whose result FreeSWITCH never sends must not hold its waiter forever.
    pub async fn wait_for(self, limit: Duration) -> Result<String> {
        tokio::time::timeout(limit, self.wait())
            .await
            .map_err(|_| Error::Timeout(limit))?
    }
}

/// A `sendmsg … execute` in flight; [`Execution::wait`] returns its CHANNEL_EXECUTE_COMPLETE.
/// The completion is handed over by the socket reader itself, so a consumer that falls
/// behind (a [`Delivery::Gap`]) never loses it; the wait ends with it, with the channel's
/// hangup (FreeSWITCH completes every app then), or when the connection is lost.
#[derive(Debug)]
pub struct Execution {
    pub event_uuid: String,
    rx: oneshot::Receiver<Event>,
}

impl Execution {
    pub async fn wait(self) -> Result<Event> {
        self.rx.await.map_err(|_| Error::ConnectionLost)
    }
}

/// The live half of a connection that commands are written to.
struct Link {
    writer: OwnedWriteHalf,
    scratch: FrameWriter,
    /// A command's write was given up on halfway (its future dropped): the socket may hold
    /// half a frame and a reply waiter may wait for nothing, so the link is not used again.
    torn: bool,
}

struct Shared {
    config: ClientConfig,
    link: Mutex<Option<Link>>,
    /// Reply waiters in the order their commands were written: FreeSWITCH answers in order.
    replies: StdMutex<VecDeque<oneshot::Sender<Frame>>>,
    jobs: StdMutex<HashMap<String, oneshot::Sender<Event>>>,
    executions: StdMutex<HashMap<String, oneshot::Sender<Event>>>,
    subscriptions: StdMutex<Subscriptions>,
    stats: ClientStats,
    last_rx: StdMutex<Instant>,
    /// [`Client::shutdown`] is under way: a closed connection is expected, not reported.
    closing: std::sync::atomic::AtomicBool,
    /// A command found the link torn and dropped it: the session ends and reconnects.
    torn: tokio::sync::Notify,
}

/// What to replay after a reconnect, in the order it was asked for.
#[derive(Debug, Clone, Default)]
struct Subscriptions {
    events: Vec<String>,
    custom: Vec<String>,
    filters: Vec<(String, String)>,
}

impl Subscriptions {
    fn add_events<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            // `event plain CUSTOM a::b` names subclasses after the CUSTOM keyword.
            let list = if name.contains("::") {
                &mut self.custom
            } else {
                &mut self.events
            };
            if !list.iter().any(|n| n == name) {
                list.push(name.to_owned());
            }
        }
    }
}

/// A handle on the supervised connection; cheap to clone and share between tasks.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
}

impl Client {
    /// Start the supervisor. It connects in the background; the first [`Delivery`] says when.
    pub fn start(config: ClientConfig) -> (Self, mpsc::Receiver<Delivery>) {
        let (tx, rx) = mpsc::channel(config.event_buffer.max(16));
        let mut subscriptions = Subscriptions {
            filters: config.filters.clone(),
            ..Subscriptions::default()
        };
        subscriptions.add_events(config.events.iter().map(String::as_str));
        subscriptions.add_events(config.custom_subclasses.iter().map(String::as_str));
        let shared = Arc::new(Shared {
            config,
            link: Mutex::new(None),
            replies: StdMutex::default(),
            jobs: StdMutex::default(),
            executions: StdMutex::default(),
            subscriptions: StdMutex::new(subscriptions),
            stats: ClientStats::default(),
            last_rx: StdMutex::new(Instant::now()),
            closing: std::sync::atomic::AtomicBool::new(false),
            torn: tokio::sync::Notify::new(),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let client = Self { shared, shutdown };
        tokio::spawn(supervise(client.clone(), tx, shutdown_rx));
        (client, rx)
    }

    pub fn stats(&self) -> &ClientStats {
        &self.shared.stats
    }

    /// Send `exit` if connected and stop reconnecting. The event channel closes after.
    pub async fn shutdown(&self) {
        // Say so first: the `exit` below makes FreeSWITCH close, which is no outage.
        self.shared.closing.store(true, Ordering::Relaxed);
        let _ = tokio::time::timeout(Duration::from_secs(2), self.command("exit", &[], None)).await;
        let _ = self.shutdown.send(true);
    }

    /// Send one command frame and await its reply. `line` is the verb and its arguments;
    /// `headers` follow it in order; `body`, if any, gets a `Content-Length` unless the
    /// headers already carry one.
    ///
    /// Cancellation: the reply's waiter is queued before the frame is written, under the
    /// link's lock. Dropping this future once the frame is written (a `select!`, a timeout)
    /// leaves the replies matched to their commands; the command still runs on FreeSWITCH,
    /// so only commands safe to have run may be given up on. Dropped while the frame is
    /// being written, it leaves the link torn: the next command closes it and the client
    /// reconnects, rather than send after half a frame. Every wait ends: at the reply, at
    /// the command timeout, or when the connection drops.
    pub async fn command(
        &self,
        line: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Reply> {
        check_line(line)?;
        for (n, v) in headers {
            check_line(n)?;
            check_line(v)?;
            // A length that disagrees with the body would let the body smuggle in commands.
            if n.eq_ignore_ascii_case("Content-Length")
                && v.parse::<usize>().ok() != Some(body.map_or(0, <[u8]>::len))
            {
                return Err(Error::InvalidCommand(format!("{n}: {v}")));
            }
        }
        let rx = {
            let mut guard = self.shared.link.lock().await;
            if guard.as_ref().is_some_and(|l| l.torn) {
                // The session ends: the reader's waiters fail, and the supervisor reconnects.
                *guard = None;
                self.shared.torn.notify_one();
                return Err(Error::ConnectionLost);
            }
            let link = guard.as_mut().ok_or(Error::NotConnected)?;
            link.scratch.clear();
            link.scratch.line(line);
            for (n, v) in headers {
                link.scratch.header(n, v);
            }
            let has_length = headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("Content-Length"));
            match body {
                // The caller spelled the length out itself (some clients write it in lower case).
                Some(b) if has_length => link.scratch.end().raw(b),
                Some(b) => link.scratch.body(b),
                None => link.scratch.end(),
            };
            let (tx, rx) = oneshot::channel();
            self.shared.replies.lock().unwrap().push_back(tx);
            link.torn = true;
            let Link {
                writer, scratch, ..
            } = link;
            if let Err(e) = writer.write_all(scratch.as_bytes()).await {
                // The reader will notice too and fail every waiter, this one included.
                return Err(Error::Io(e));
            }
            link.torn = false;
            rx
        };
        let timeout = self.shared.config.command_timeout;
        let frame = tokio::time::timeout(timeout, rx)
            .await
            .map_err(|_| Error::Timeout(timeout))?
            .map_err(|_| Error::ConnectionLost)?;
        Ok(Reply { frame })
    }

    /// Like [`Client::command`], but a `-ERR` reply becomes [`Error::CommandFailed`].
    async fn command_ok(&self, line: &str, headers: &[(&str, &str)]) -> Result<String> {
        let reply = self.command(line, headers, None).await?;
        let text = reply.text();
        if reply.is_err() {
            return Err(Error::CommandFailed {
                command: line.to_owned(),
                reply: text.trim_end().to_owned(),
            });
        }
        Ok(text)
    }

    /// `api <cmd>`: the response body, or [`Error::CommandFailed`] with FreeSWITCH's `-ERR` text.
    pub async fn api(&self, cmd: &str) -> Result<String> {
        self.command_ok(&format!("api {cmd}"), &[]).await
    }

    /// `bgapi <cmd>` with a Job-UUID chosen here; await the result with [`BackgroundJob::wait`].
    pub async fn bgapi(&self, cmd: &str) -> Result<BackgroundJob> {
        let id = uuid::Uuid::new_v4().to_string();
        self.bgapi_with_job_uuid(cmd, &id).await
    }

    /// [`Client::bgapi`] with the caller's Job-UUID (it must be unique while in flight).
    pub async fn bgapi_with_job_uuid(&self, cmd: &str, job_uuid: &str) -> Result<BackgroundJob> {
        check_word(job_uuid)?;
        let job_uuid = job_uuid.to_owned();
        let (tx, rx) = oneshot::channel();
        self.shared
            .jobs
            .lock()
            .unwrap()
            .insert(job_uuid.clone(), tx);
        let sent = self
            .command_ok(&format!("bgapi {cmd}"), &[("Job-UUID", &job_uuid)])
            .await;
        if let Err(e) = sent {
            self.shared.jobs.lock().unwrap().remove(&job_uuid);
            return Err(e);
        }
        Ok(BackgroundJob {
            job_uuid,
            command: cmd.to_owned(),
            rx,
        })
    }

    /// `sendmsg <uuid>` executing `app` with `arg`, tagged with a fresh Event-UUID whose
    /// CHANNEL_EXECUTE_COMPLETE [`Execution::wait`] returns. With `event_lock` the
    /// application is queued behind the one running instead of running alongside it.
    pub async fn execute(
        &self,
        channel: &str,
        app: &str,
        arg: &str,
        event_lock: bool,
    ) -> Result<Execution> {
        let id = uuid::Uuid::new_v4().to_string();
        self.execute_with_uuid(channel, app, arg, event_lock, &id)
            .await
    }

    /// [`Client::execute`] with the caller's Event-UUID (it must be unique while in flight).
    pub async fn execute_with_uuid(
        &self,
        channel: &str,
        app: &str,
        arg: &str,
        event_lock: bool,
        event_uuid: &str,
    ) -> Result<Execution> {
        check_word(channel)?;
        check_word(app)?;
        check_word(event_uuid)?;
        let (tx, rx) = oneshot::channel();
        self.shared
            .executions
            .lock()
            .unwrap()
            .insert(event_uuid.to_owned(), tx);
        let mut headers = vec![("call-command", "execute"), ("execute-app-name", app)];
        if !arg.is_empty() {
            headers.push(("execute-app-arg", arg));
        }
        if event_lock {
            headers.push(("event-lock", "true"));
        }
        headers.push(("Event-UUID", event_uuid));
        let sent = self
            .command(&format!("sendmsg {channel}"), &headers, None)
            .await;
        let failure = match sent {
            Ok(reply) if reply.is_err() => Some(Error::CommandFailed {
                command: format!("sendmsg {channel} execute {app}"),
                reply: reply.text(),
            }),
            Ok(_) => None,
            Err(e) => Some(e),
        };
        if let Some(e) = failure {
            self.shared.executions.lock().unwrap().remove(event_uuid);
            return Err(e);
        }
        Ok(Execution {
            event_uuid: event_uuid.to_owned(),
            rx,
        })
    }

    /// `event <format> <names…>`; remembered and replayed after a reconnect.
    pub async fn subscribe(&self, events: &[&str]) -> Result<String> {
        {
            let mut subs = self.shared.subscriptions.lock().unwrap();
            subs.add_events(events.iter().copied());
        }
        let format = self.shared.config.format.as_str();
        self.command_ok(&format!("event {format} {}", events.join(" ")), &[])
            .await
    }

    /// `nixevent <names…>`; forgotten for later reconnects too.
    pub async fn unsubscribe(&self, events: &[&str]) -> Result<String> {
        {
            let mut subs = self.shared.subscriptions.lock().unwrap();
            subs.events.retain(|n| !events.contains(&n.as_str()));
            subs.custom.retain(|n| !events.contains(&n.as_str()));
        }
        self.command_ok(&format!("nixevent {}", events.join(" ")), &[])
            .await
    }

    /// `noevents`: stop all events (and forget every subscription).
    pub async fn noevents(&self) -> Result<String> {
        {
            let mut subs = self.shared.subscriptions.lock().unwrap();
            subs.events.clear();
            subs.custom.clear();
        }
        self.command_ok("noevents", &[]).await
    }

    /// `filter <header> <value>`: only events matching some filter are sent. Remembered.
    pub async fn filter(&self, header: &str, value: &str) -> Result<String> {
        check_word(header)?;
        let reply = self
            .command_ok(&format!("filter {header} {value}"), &[])
            .await?;
        self.shared
            .subscriptions
            .lock()
            .unwrap()
            .filters
            .push((header.to_owned(), value.to_owned()));
        Ok(reply)
    }

    /// `filter delete <header> [<value>]`; `filter delete all` with header `all`.
    pub async fn filter_delete(&self, header: &str, value: Option<&str>) -> Result<String> {
        check_word(header)?;
        let line = match value {
            Some(v) => format!("filter delete {header} {v}"),
            None => format!("filter delete {header}"),
        };
        let reply = self.command_ok(&line, &[]).await?;
        self.shared
            .subscriptions
            .lock()
            .unwrap()
            .filters
            .retain(|(h, v)| !(header == "all" || (h == header && value.is_none_or(|x| x == v))));
        Ok(reply)
    }

    /// `linger`: keep the socket open after the channel hangs up (outbound mode).
    pub async fn linger(&self) -> Result<String> {
        self.command_ok("linger", &[]).await
    }

    /// `exit`: FreeSWITCH answers `+OK bye`, sends a disconnect notice and closes.
    pub async fn exit(&self) -> Result<String> {
        self.command_ok("exit", &[]).await
    }

    /// `sendevent <name>` with the given headers (e.g. a CUSTOM event with its subclass).
    pub async fn sendevent(&self, name: &str, headers: &[(&str, &str)]) -> Result<String> {
        check_word(name)?;
        self.command_ok(&format!("sendevent {name}"), headers).await
    }

    async fn handshake(&self, stream: TcpStream) -> Result<(OwnedReadHalf, BytesMut)> {
        let config = &self.shared.config;
        let (mut reader, mut writer) = stream.into_split();
        let mut decoder = FrameDecoder::new(config.max_frame);
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let greeting = read_frame(&mut reader, &mut decoder, &mut buf).await?;
        match greeting.content_type() {
            ContentType::AuthRequest => {}
            ContentType::RudeRejection => {
                return Err(Error::Rejected(greeting.body_text().trim().to_owned()))
            }
            other => return Err(Error::Handshake(format!("{other:?}"))),
        }
        let mut out = FrameWriter::new();
        match &config.user {
            Some(user) => out.line(&format!("userauth {user}:{}", config.password.expose())),
            None => out.line(&format!("auth {}", config.password.expose())),
        };
        out.end();
        check_line(config.password.expose())?;
        writer.write_all(out.as_bytes()).await?;
        let reply = read_frame(&mut reader, &mut decoder, &mut buf).await?;
        let text = reply.reply_text().unwrap_or_default().into_owned();
        if !text.starts_with("+OK") {
            return Err(Error::AuthFailed(text));
        }
        *self.shared.link.lock().await = Some(Link {
            writer,
            scratch: FrameWriter::new(),
            torn: false,
        });
        Ok((reader, buf))
    }

    /// Replay the subscriptions and filters on a fresh connection.
    async fn resubscribe(&self) -> Result<()> {
        let subs = self.shared.subscriptions.lock().unwrap().clone();
        let format = self.shared.config.format.as_str();
        let mut names = subs.events.clone();
        if !subs.custom.is_empty() {
            names.retain(|n| n != "CUSTOM");
            names.push("CUSTOM".into());
            names.extend(subs.custom.iter().cloned());
        }
        if !names.is_empty() {
            self.command_ok(&format!("event {format} {}", names.join(" ")), &[])
                .await?;
        }
        for (header, value) in &subs.filters {
            self.command_ok(&format!("filter {header} {value}"), &[])
                .await?;
        }
        Ok(())
    }

    /// Forget the link and fail everyone waiting on it.
    async fn drop_link(&self) {
        *self.shared.link.lock().await = None;
        self.shared.replies.lock().unwrap().clear();
        self.shared.jobs.lock().unwrap().clear();
        self.shared.executions.lock().unwrap().clear();
    }

    /// Probe a quiet connection with `api status`; an error means the peer is gone.
    async fn liveness(&self) -> Error {
        let config = &self.shared.config;
        loop {
            tokio::time::sleep(config.idle_probe / 4).await;
            let idle = self.shared.last_rx.lock().unwrap().elapsed();
            if idle < config.idle_probe {
                continue;
            }
            match tokio::time::timeout(
                config.liveness_timeout,
                self.command("api status", &[], None),
            )
            .await
            {
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => return e,
                Err(_) => return Error::Timeout(config.liveness_timeout),
            }
        }
    }
}

/// Refuse anything that would end a command line early and smuggle in a second command.
fn check_line(s: &str) -> Result<()> {
    if s.contains(['\n', '\r']) {
        return Err(Error::InvalidCommand(s.to_owned()));
    }
    Ok(())
}

fn check_word(s: &str) -> Result<()> {
    if s.is_empty() || s.contains(|c: char| c.is_whitespace()) {
        return Err(Error::InvalidCommand(s.to_owned()));
    }
    Ok(())
}

async fn read_frame(
    reader: &mut OwnedReadHalf,
    decoder: &mut FrameDecoder,
    buf: &mut BytesMut,
) -> Result<Frame> {
    loop {
        if let Some(frame) = decoder.decode(buf)? {
            return Ok(frame);
        }
        if reader.read_buf(buf).await? == 0 {
            return Err(Error::ConnectionLost);
        }
    }
}

/// The supervisor: connect, authenticate, subscribe, read until the link fails, back off, repeat.
async fn supervise(
    client: Client,
    events: mpsc::Sender<Delivery>,
    mut shutdown: watch::Receiver<bool>,
) {
    let config = client.shared.config.clone();
    let mut attempt = 0u32;
    let mut connected_before = false;
    let sink = EventSink::new(events, config.overflow_grace, &client.shared.stats);
    loop {
        let session = async {
            let stream =
                tokio::time::timeout(config.command_timeout, TcpStream::connect(&config.address))
                    .await
                    .map_err(|_| Error::Timeout(config.command_timeout))??;
            stream.set_nodelay(true)?;
            let (reader, buf) =
                tokio::time::timeout(config.command_timeout, client.handshake(stream))
                    .await
                    .map_err(|_| Error::Timeout(config.command_timeout))??;
            *client.shared.last_rx.lock().unwrap() = Instant::now();
            sink.hold();
            let read = read_loop(&client.shared, reader, buf, &sink);
            tokio::pin!(read);
            // The reader must run while we subscribe: it is what delivers the replies.
            tokio::select! {
                r = &mut read => return r,
                r = client.resubscribe() => r?,
            }
            client.shared.stats.connects.fetch_add(1, Ordering::Relaxed);
            attempt = 0;
            let notice = if connected_before {
                Delivery::Reconnected
            } else {
                Delivery::Connected
            };
            connected_before = true;
            sink.open(notice).await;
            tokio::select! {
                r = &mut read => r,
                e = client.liveness() => Err(e),
                _ = client.shared.torn.notified() => Err(Error::ConnectionLost),
            }
        };
        let outcome = tokio::select! {
            r = session => r,
            _ = stopped(&mut shutdown) => {
                client.drop_link().await;
                return;
            }
        };
        client.drop_link().await;
        if client.shared.closing.load(Ordering::Relaxed) || sink.consumer_gone() {
            return;
        }
        let reason = match outcome {
            Ok(()) => "FreeSWITCH closed the connection".to_owned(),
            Err(e) => e.to_string(),
        };
        tracing::warn!(address = %config.address, %reason, "event socket down");
        if connected_before {
            sink.control(Delivery::Disconnected(reason)).await;
        }
        let delay = config.backoff.delay(attempt);
        attempt = attempt.saturating_add(1);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stopped(&mut shutdown) => return,
        }
    }
}

/// Resolves once [`Client::shutdown`] was called.
async fn stopped(rx: &mut watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Hands events to the consumer without ever blocking the socket for long.
struct EventSink<'a> {
    tx: mpsc::Sender<Delivery>,
    grace: Duration,
    stats: &'a ClientStats,
    dropped: AtomicU64,
    /// Events read while a connection is still subscribing wait here, so the consumer
    /// always sees `Connected`/`Reconnected` before the events of that connection.
    held: StdMutex<Option<Vec<Event>>>,
}

impl<'a> EventSink<'a> {
    fn new(tx: mpsc::Sender<Delivery>, grace: Duration, stats: &'a ClientStats) -> Self {
        Self {
            tx,
            grace,
            stats,
            dropped: AtomicU64::new(0),
            held: StdMutex::new(None),
        }
    }

    /// Start holding events back until [`EventSink::open`].
    fn hold(&self) {
        *self.held.lock().unwrap() = Some(Vec::new());
    }

    /// Deliver `notice`, then the events held back since [`EventSink::hold`].
    async fn open(&self, notice: Delivery) {
        self.control(notice).await;
        let held = self.held.lock().unwrap().take().unwrap_or_default();
        for event in held {
            self.event(event).await;
        }
    }

    /// Control notices are never dropped: they wait for room.
    async fn control(&self, notice: Delivery) {
        let _ = self.tx.send(notice).await;
    }

    /// Deliver an event, waiting up to the grace period for room. Past that the event is
    /// dropped, counted, and a [`Delivery::Gap`] goes out as soon as there is room again.
    async fn event(&self, event: Event) {
        if let Some(held) = self.held.lock().unwrap().as_mut() {
            held.push(event);
            return;
        }
        if self.has_gap() && !self.try_report_gap() {
            return self.drop_one();
        }
        if self
            .tx
            .send_timeout(Delivery::Event(event), self.grace)
            .await
            .is_err()
        {
            self.drop_one();
        }
    }

    fn has_gap(&self) -> bool {
        self.dropped.load(Ordering::Relaxed) > 0
    }

    fn try_report_gap(&self) -> bool {
        let dropped = self.dropped.load(Ordering::Relaxed);
        if self.tx.try_send(Delivery::Gap { dropped }).is_err() {
            return false;
        }
        tracing::warn!(dropped, "event consumer caught up after a gap");
        self.dropped.store(0, Ordering::Relaxed);
        true
    }

    /// Wait for room and report the gap: a burst that ends while the consumer is behind
    /// must not leave its gap unreported until the next event happens to come. `false`
    /// when the consumer is gone for good.
    async fn report_gap_when_possible(&self) -> bool {
        let Ok(permit) = self.tx.reserve().await else {
            return false;
        };
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        tracing::warn!(dropped, "event consumer caught up after a gap");
        permit.send(Delivery::Gap { dropped });
        true
    }

    /// The receiving half was dropped: nobody will read events again.
    fn consumer_gone(&self) -> bool {
        self.tx.is_closed()
    }

    fn drop_one(&self) {
        if !self.has_gap() {
            tracing::error!("event consumer stalled: dropping events until it catches up");
        }
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// Read frames until the connection ends, routing replies, job results and executions.
async fn read_loop(
    shared: &Shared,
    mut reader: OwnedReadHalf,
    mut buf: BytesMut,
    sink: &EventSink<'_>,
) -> Result<()> {
    let mut decoder = FrameDecoder::new(shared.config.max_frame);
    loop {
        while let Some(frame) = decoder.decode(&mut buf)? {
            shared.stats.frames.fetch_add(1, Ordering::Relaxed);
            route(shared, frame, sink).await?;
        }
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(64 * 1024);
        }
        let n = tokio::select! {
            n = reader.read_buf(&mut buf) => n?,
            room = sink.report_gap_when_possible(), if sink.has_gap() => {
                if !room {
                    return Err(Error::ConsumerGone);
                }
                continue;
            }
        };
        if n == 0 {
            return Ok(());
        }
        shared.stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
        *shared.last_rx.lock().unwrap() = Instant::now();
    }
}

async fn route(shared: &Shared, frame: Frame, sink: &EventSink<'_>) -> Result<()> {
    match frame.content_type() {
        ContentType::CommandReply | ContentType::ApiResponse => {
            if let Some(event) = Event::from_frame(&frame)? {
                // Outbound-mode connect reply: it is the channel's data, keep it as an event.
                sink.event(event).await;
            }
            match shared.replies.lock().unwrap().pop_front() {
                Some(waiter) => {
                    let _ = waiter.send(frame);
                }
                None => tracing::warn!(reply = ?frame.reply_text(), "reply nobody waited for"),
            }
        }
        ContentType::EventPlain | ContentType::EventJson | ContentType::EventXml => {
            let Some(event) = Event::from_frame(&frame)? else {
                return Ok(());
            };
            shared.stats.events.fetch_add(1, Ordering::Relaxed);
            hand_to_waiter(shared, &event);
            sink.event(event).await;
        }
        ContentType::DisconnectNotice => {
            tracing::info!(
                disposition = ?frame.headers().text("Content-Disposition"),
                notice = %frame.body_text().trim(),
                "FreeSWITCH disconnect notice"
            );
        }
        ContentType::RudeRejection => {
            return Err(Error::Rejected(frame.body_text().trim().to_owned()));
        }
        ContentType::LogData => {
            tracing::trace!(log = %frame.body_text().trim_end(), "FreeSWITCH log");
        }
        other => tracing::debug!(content_type = ?other, "ignoring frame"),
    }
    Ok(())
}

/// Pass BACKGROUND_JOB and CHANNEL_EXECUTE_COMPLETE to whoever awaits them; every event
/// still reaches the consumer too.
fn hand_to_waiter(shared: &Shared, event: &Event) {
    if event.is("BACKGROUND_JOB") {
        let mut jobs = shared.jobs.lock().unwrap();
        if let Some(tx) = event.job_uuid().and_then(|id| jobs.remove(id.as_ref())) {
            let _ = tx.send(event.clone());
        }
    } else if event.is("CHANNEL_EXECUTE_COMPLETE") {
        let mut executions = shared.executions.lock().unwrap();
        if executions.is_empty() {
            return;
        }
        if let Some(tx) = event
            .application_uuid()
            .and_then(|id| executions.remove(id.as_ref()))
        {
            let _ = tx.send(event.clone());
        }
    }
}
