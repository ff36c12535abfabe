//! The event socket: TCP listener, one session per connection, and FreeSWITCH's command
//! set for inbound connections (auth, event, filter, api, bgapi, sendmsg, exit, …).
//!
//! Reply texts are the ones recorded from FreeSWITCH 1.10.12 (`fixtures/esl`).

use std::cell::Cell;
use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::apps::{AppFrame, Origin};
use super::core::{Core, CoreMsg, Out, Timer};
use super::event::SimEvent;
use super::subscription::{event_type, Format, Subscription};
use crate::esl::{Frame, FrameDecoder, FrameWriter, DEFAULT_MAX_FRAME};

/// After this many events lost to a full queue ([`super::SimConfig::listener_queue`]) a
/// listener is dropped, as FreeSWITCH does (`MAX_MISSED`).
const MAX_MISSED: u32 = 500;

const GOODBYE: &str = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n";

/// One inbound connection as the core sees it: its subscriptions and filters.
#[derive(Debug)]
pub struct Session {
    tx: mpsc::Sender<Out>,
    /// Events dropped because the client did not keep up.
    lost: Cell<u32>,
    authed: bool,
    subs: Subscription,
    /// A blocking `api originate` is running: later commands wait, as FreeSWITCH answers
    /// one connection's commands in order.
    pub busy: bool,
    pub backlog: VecDeque<Frame>,
}

impl Session {
    pub fn send(&self, bytes: Bytes) {
        if self.tx.try_send(Out::Bytes(bytes)).is_err() {
            self.lost.set(self.lost.get() + 1);
        }
    }

    /// A client so far behind that FreeSWITCH would have dropped it.
    pub fn hopeless(&self) -> bool {
        self.lost.get() > MAX_MISSED
    }

    /// The format to send `ev` in, or `None` when this listener does not get it.
    pub fn wants(&self, ev: &SimEvent) -> Option<Format> {
        self.subs.wants(ev)
    }

    /// Whether this listener subscribed to events like `ev` (its filters aside).
    pub fn subscribes_to(&self, ev: &SimEvent) -> bool {
        self.subs.subscribes_to(ev)
    }

    fn reply(&self, text: &str) {
        let mut w = FrameWriter::new();
        w.header("Content-Type", "command/reply")
            .header("Reply-Text", text)
            .end();
        self.send(w.take());
    }

    fn api_response(&self, body: &str) {
        let mut w = FrameWriter::new();
        w.header("Content-Type", "api/response")
            .body(body.as_bytes());
        self.send(w.take());
    }

    fn goodbye(&self) {
        let mut w = FrameWriter::new();
        w.header("Content-Type", "text/disconnect-notice")
            .body(GOODBYE.as_bytes());
        self.send(w.take());
        let _ = self.tx.try_send(Out::Close);
    }
}

/// Accept connections forever, handing each to a reader and a writer task.
pub async fn listen(listener: TcpListener, core: mpsc::UnboundedSender<CoreMsg>, queue: usize) {
    let mut next_sid = 0u64;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        next_sid += 1;
        tokio::spawn(connection(next_sid, stream, core.clone(), queue));
    }
}

async fn connection(
    sid: u64,
    stream: TcpStream,
    core: mpsc::UnboundedSender<CoreMsg>,
    queue: usize,
) {
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel(queue);
    if core.send(CoreMsg::Accept { sid, tx }).is_err() {
        return;
    }
    let write = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(64 * 1024);
        while let Some(out) = rx.recv().await {
            let mut close = false;
            // Coalesce whatever is queued into one write: at thousands of events per
            // second, one syscall per event would dominate.
            let mut next = Some(out);
            while let Some(out) = next.take() {
                match out {
                    Out::Bytes(b) => batch.extend_from_slice(&b),
                    Out::Close => close = true,
                }
                if close || batch.len() > 256 * 1024 {
                    break;
                }
                next = rx.try_recv().ok();
            }
            if writer.write_all(&batch).await.is_err() {
                return;
            }
            batch.clear();
            if close {
                break;
            }
        }
        // Closed by `exit`, or dropped by the core for falling behind.
        let _ = writer.shutdown().await;
    });
    let mut decoder = FrameDecoder::for_commands(DEFAULT_MAX_FRAME);
    let mut buf = BytesMut::with_capacity(8192);
    'read: loop {
        match reader.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    if core.send(CoreMsg::Frame { sid, frame }).is_err() {
                        break 'read;
                    }
                }
                Ok(None) => break,
                Err(_) => break 'read,
            }
        }
    }
    let _ = core.send(CoreMsg::Closed { sid });
    let _ = write.await;
}

impl Core {
    pub fn accept(&mut self, sid: u64, tx: mpsc::Sender<Out>) {
        if self.now_us() < self.outage_until {
            return;
        }
        let session = Session {
            tx,
            lost: Cell::new(0),
            authed: false,
            subs: Subscription::default(),
            busy: false,
            backlog: VecDeque::new(),
        };
        let mut w = FrameWriter::new();
        w.header("Content-Type", "auth/request").end();
        session.send(w.take());
        self.sessions.insert(sid, session);
    }

    pub fn on_frame(&mut self, sid: u64, frame: Frame) {
        let Some(session) = self.sessions.get_mut(&sid) else {
            return;
        };
        if session.busy {
            session.backlog.push_back(frame);
            return;
        }
        self.command(sid, &frame);
    }

    /// Run the commands a blocking api held back, until one blocks again.
    pub fn resume(&mut self, sid: u64) {
        if let Some(session) = self.sessions.get_mut(&sid) {
            session.busy = false;
        }
        loop {
            let Some(session) = self.sessions.get_mut(&sid) else {
                return;
            };
            if session.busy {
                return;
            }
            let Some(frame) = session.backlog.pop_front() else {
                return;
            };
            self.command(sid, &frame);
        }
    }

    /// Serve one command, or hold an `api`/`bgapi` back while the switch is slow
    /// ([`super::Switch::slow_api`]); the session's later commands wait behind it, as they
    /// do behind FreeSWITCH's one command thread per connection.
    fn command(&mut self, sid: u64, frame: &Frame) {
        let (delay, until) = self.slow_api;
        let verb = frame.headers().command().unwrap_or_default();
        let api = verb.starts_with("api ") || verb.starts_with("bgapi ");
        let authed = self.sessions.get(&sid).is_some_and(|s| s.authed);
        if api && authed && self.now_us() < until {
            if let Some(session) = self.sessions.get_mut(&sid) {
                session.busy = true;
            }
            let frame = Box::new(frame.clone());
            self.after(delay, Timer::SlowCommand { sid, frame });
            return;
        }
        self.serve(sid, frame);
    }

    /// A command held back by a slow switch, served now; then what queued behind it.
    pub fn serve_slow_command(&mut self, sid: u64, frame: &Frame) {
        if let Some(session) = self.sessions.get_mut(&sid) {
            session.busy = false;
        }
        self.serve(sid, frame);
        // A blocking api (`originate`) it served holds the session until it completes.
        if !self.sessions.get(&sid).is_some_and(|s| s.busy) {
            self.resume(sid);
        }
    }

    fn serve(&mut self, sid: u64, frame: &Frame) {
        let line = frame
            .headers()
            .command()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let (verb, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let rest = rest.trim();
        let Some(session) = self.sessions.get_mut(&sid) else {
            return;
        };
        if !session.authed {
            match verb {
                "auth" | "userauth" => {
                    let password = if verb == "auth" {
                        rest
                    } else {
                        rest.rsplit_once(':').map_or("", |(_, p)| p)
                    };
                    if password == self.config.password {
                        session.authed = true;
                        session.reply("+OK accepted");
                    } else {
                        session.reply("-ERR invalid");
                        session.goodbye();
                        self.sessions.remove(&sid);
                    }
                }
                "exit" => {
                    session.reply("+OK bye");
                    session.goodbye();
                    self.sessions.remove(&sid);
                }
                _ => session.reply("-ERR command not found"),
            }
            return;
        }
        match verb {
            "event" => match session.subs.event(rest) {
                Ok(()) => session.reply(&format!(
                    "+OK event listener enabled {}",
                    session.subs.format.as_str()
                )),
                Err(e) => session.reply(&e.to_string()),
            },
            "nixevent" => match session.subs.nixevent(rest) {
                Ok(()) => session.reply("+OK events nixed"),
                Err(e) => session.reply(&e.to_string()),
            },
            "noevents" => {
                if session.subs.noevents() {
                    session.reply("+OK no longer listening for events");
                } else {
                    session.reply("-ERR not listening for events");
                }
            }
            "filter" => {
                let text = session.subs.filter(rest);
                session.reply(&text);
            }
            // Inbound connections control no session, so FreeSWITCH refuses both.
            "linger" | "nolinger" => session.reply("-ERR not controlling a session"),
            "exit" => {
                session.reply("+OK bye");
                session.goodbye();
                // Nothing more goes out: the writer sends what is queued, then closes.
                self.sessions.remove(&sid);
            }
            "api" => {
                let reply = self.api(rest, Some(sid));
                if let Some(text) = reply {
                    if let Some(s) = self.sessions.get(&sid) {
                        s.api_response(&text);
                    }
                } else if let Some(s) = self.sessions.get_mut(&sid) {
                    s.busy = true;
                }
            }
            "bgapi" => {
                let job = frame
                    .headers()
                    .raw_ignore_case("Job-UUID")
                    .map(|j| String::from_utf8_lossy(j).into_owned())
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                let mut w = FrameWriter::new();
                w.header("Content-Type", "command/reply")
                    .header("Reply-Text", &format!("+OK Job-UUID: {job}"))
                    .header("Job-UUID", &job)
                    .end();
                session.send(w.take());
                self.bgapi(rest, job);
            }
            "sendmsg" => {
                let text = self.sendmsg(rest, frame);
                if let Some(s) = self.sessions.get(&sid) {
                    s.reply(&text);
                }
            }
            "sendevent" => {
                let text = self.sendevent(rest, frame);
                if let Some(s) = self.sessions.get(&sid) {
                    s.reply(&text);
                }
            }
            _ => session.reply("-ERR command not found"),
        }
    }

    /// Set when `api originate` completes: answer the held command, then run the backlog.
    pub fn finish_blocking_api(&mut self, sid: u64, text: &str) {
        if let Some(s) = self.sessions.get(&sid) {
            s.api_response(text);
        }
        self.resume(sid);
    }

    /// `sendmsg <uuid>` with `call-command: execute` (or `hangup`).
    fn sendmsg(&mut self, uuid: &str, frame: &Frame) -> String {
        let h = frame.headers();
        let get = |n: &str| {
            h.raw_ignore_case(n)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let uuid = uuid.trim().to_owned();
        if !self.channels.contains_key(&uuid) {
            return format!("-ERR invalid session id [{uuid}]");
        }
        match get("call-command").as_deref() {
            Some("execute") => {
                let app = get("execute-app-name").unwrap_or_default();
                let mut arg = get("execute-app-arg").unwrap_or_default();
                if arg.is_empty() && !frame.body().is_empty() {
                    arg = frame.body_text().into_owned();
                }
                let app_uuid =
                    get("Event-UUID").unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                let locked = matches!(get("event-lock").as_deref(), Some("true"));
                let mut echo = vec![("Command".to_owned(), format!("sendmsg {uuid}"))];
                echo.extend(
                    h.iter_raw()
                        .map(|(n, v)| {
                            (
                                String::from_utf8_lossy(n).into_owned(),
                                String::from_utf8_lossy(v).into_owned(),
                            )
                        })
                        .filter(|(n, _)| !n.eq_ignore_ascii_case("content-length")),
                );
                let id = self.new_frame_id();
                let frame =
                    AppFrame::new(id, &app, &arg, app_uuid, Origin::Message { echo, locked });
                self.enqueue(&uuid, frame);
                "+OK".into()
            }
            Some("hangup") => {
                let cause = get("hangup-cause").unwrap_or_else(|| "NORMAL_CLEARING".into());
                self.defer(super::calls::Effect::Kill { uuid, cause });
                "+OK".into()
            }
            Some(other) => format!("-ERR unsupported call-command {other}"),
            None => "-ERR invalid command".into(),
        }
    }

    /// `sendevent <NAME>` with headers: fired as given, answered with the new event's uuid.
    fn sendevent(&mut self, name: &str, frame: &Frame) -> String {
        let event_uuid = uuid::Uuid::new_v4().to_string();
        let h = frame.headers();
        let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        // The frame itself is the event (FreeSWITCH parses every frame into one, typed
        // CLONE); a known name after the verb retypes it.
        let kind = event_type(name.trim()).unwrap_or("CLONE");
        let mut ev = match h.raw_ignore_case("Event-Subclass").map(text) {
            Some(sub) if kind == "CUSTOM" => {
                let mut ev = SimEvent::custom(&sub);
                ev.add("Event-Subclass", sub);
                ev
            }
            _ => SimEvent::new(kind),
        };
        ev.add("Command", format!("sendevent {}", name.trim()));
        for (n, v) in h.iter_raw() {
            let n = text(n);
            // The subclass was added first already; the length belongs to the frame.
            let skip = n.eq_ignore_ascii_case("content-length")
                || (n.eq_ignore_ascii_case("Event-Subclass") && ev.subclass.is_some());
            if !skip {
                ev.add(n, text(v));
            }
        }
        ev.add("Event-UUID", event_uuid.clone());
        let mut full = self.core_headers_after(ev, ("mod_event_socket.c", "parse_command", 2520));
        if !frame.body().is_empty() {
            full.body = Some(frame.body_text().into_owned());
        }
        // An event naming a live channel is handed to that channel, not fired.
        let for_channel = full
            .get("Unique-ID")
            .is_some_and(|u| self.channels.contains_key(u));
        if !for_channel {
            self.emit(full);
        }
        format!("+OK {event_uuid}")
    }
}
