//! Reads the FreeSWITCH recordings (`fixtures/esl`) into the sequences the simulator is
//! compared with, so expectations come from the recording, never from hand-copied lists.
//!
//! Shared by the wire and flow tests through `mod support;`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use bytes::BytesMut;
use callbackd::esl::{ContentType, Event, Frame, FrameDecoder};

pub fn fixtures() -> PathBuf {
    std::env::var_os("CALLBACKD_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/esl"))
}

pub fn frames(bytes: &[u8], commands: bool) -> Vec<Frame> {
    let mut dec = if commands {
        FrameDecoder::for_commands(1 << 24)
    } else {
        FrameDecoder::default()
    };
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(f) = dec.decode(&mut buf).expect("recording decodes") {
        out.push(f);
    }
    out
}

/// Events not compared: timing-driven (HEARTBEAT, RE_SCHEDULE), media-codec chatter
/// the simulator does not model (CODEC) and API echoes (one per command, no leg).
pub fn compared(name: &str) -> bool {
    !matches!(name, "HEARTBEAT" | "RE_SCHEDULE" | "CODEC" | "API")
}

/// What a run produced, reduced to what is compared.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Digest {
    /// Per leg (channel name + occurrence), the events in order, without CHANNEL_HANGUP
    /// (whose position against the unwinding apps is a race in FreeSWITCH; the recordings
    /// show both orders for the same situation); its cause is in `hangups`.
    pub legs: Vec<(String, Vec<String>)>,
    pub hangups: Vec<(String, String)>,
    pub jobs: Vec<String>,
    pub replies: Vec<String>,
}

/// Builds a [`Digest`] from frames in arrival order, naming legs `name#n`.
#[derive(Default)]
pub struct Digester {
    pub digest: Digest,
    /// uuid → leg key.
    pub keys: HashMap<String, String>,
    seen: HashMap<String, usize>,
}

impl Digester {
    pub fn key_of(&mut self, uuid: &str, name: &str) -> String {
        if let Some(k) = self.keys.get(uuid) {
            return k.clone();
        }
        let n = self.seen.entry(name.to_owned()).or_default();
        *n += 1;
        let key = format!("{name}#{n}");
        self.keys.insert(uuid.to_owned(), key.clone());
        self.digest.legs.push((key.clone(), Vec::new()));
        key
    }

    /// Replace every known uuid in `text` by its leg key.
    pub fn neutral(&self, text: &str) -> String {
        let mut t = text.to_owned();
        for (u, k) in &self.keys {
            t = t.replace(u.as_str(), k);
        }
        t
    }

    pub fn event(&mut self, ev: &Event) {
        let name = ev.name().unwrap_or_default().into_owned();
        if !compared(&name) {
            return;
        }
        if name == "BACKGROUND_JOB" {
            let body = ev.body().into_owned();
            let n = self.neutral(&body);
            self.digest.jobs.push(n);
            return;
        }
        let (Some(uuid), Some(chan)) = (ev.header("Unique-ID"), ev.header("Channel-Name")) else {
            return;
        };
        let key = self.key_of(&uuid, &chan);
        if name == "CHANNEL_HANGUP" {
            let cause = ev.header("Hangup-Cause").unwrap_or_default().into_owned();
            self.digest.hangups.push((key, cause));
            return;
        }
        let mut line = name.clone();
        if let Some(app) = ev.header("Application") {
            line.push_str(&format!(" {app}"));
        }
        if let Some(r) = ev.header("Application-Response") {
            line.push_str(&format!(" -> {r}"));
        }
        if name == "CHANNEL_CALLSTATE" {
            let from = ev.header("Original-Channel-Call-State").unwrap_or_default();
            let to = ev.header("Channel-Call-State").unwrap_or_default();
            if to == "HANGUP" {
                // Goes with CHANNEL_HANGUP, whose place in the teardown is a race.
                return;
            }
            line.push_str(&format!(" {from}->{to}"));
        }
        if name == "CHANNEL_STATE" {
            line.push_str(&format!(
                " {}",
                ev.header("Channel-State").unwrap_or_default()
            ));
        }
        if let Some(d) = ev.header("DTMF-Digit") {
            line.push_str(&format!(" {d}"));
        }
        let leg = self
            .digest
            .legs
            .iter_mut()
            .find(|(k, _)| *k == key)
            .unwrap();
        leg.1.push(line);
    }

    /// `show channels` rows carry creation dates and codec columns; only the row count
    /// is compared.
    pub fn reply(&mut self, text: &str) {
        let text = match text.strip_prefix("uuid,direction,") {
            Some(rest) => rest.lines().last().unwrap_or_default(),
            None => text,
        };
        let n = self.neutral(text);
        // Uuids of no leg (sendevent's new event) differ on every run.
        let uuid =
            regex::Regex::new("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
                .unwrap();
        self.digest
            .replies
            .push(uuid.replace_all(&n, "<uuid>").into_owned());
    }

    pub fn frame(&mut self, f: &Frame) {
        match f.content_type() {
            ContentType::EventPlain | ContentType::EventJson => {
                if let Ok(Some(ev)) = Event::from_frame(f) {
                    self.event(&ev);
                }
            }
            ContentType::ApiResponse => self.reply(&f.body_text()),
            ContentType::CommandReply => self.reply(&f.reply_text().unwrap_or_default()),
            _ => {}
        }
    }
}

/// The client's commands with the time each was sent (from the transcript).
pub fn commands(name: &str) -> Vec<(f64, Frame)> {
    let dir = fixtures().join("flows");
    let sent = std::fs::read(dir.join(format!("{name}.sent"))).unwrap();
    let transcript = std::fs::read_to_string(dir.join(format!("{name}.transcript"))).unwrap();
    let times: Vec<f64> = transcript
        .lines()
        .filter(|l| l.contains("] >>> "))
        .map(|l| l[1..l.find(']').unwrap()].trim().parse().unwrap())
        .collect();
    let frames = frames(&sent, true);
    assert_eq!(
        times.len(),
        frames.len(),
        "{name}: transcript and .sent disagree"
    );
    times.into_iter().zip(frames).collect()
}

pub fn recorded_digest(name: &str) -> Digest {
    let raw = std::fs::read(fixtures().join("flows").join(format!("{name}.raw"))).unwrap();
    let mut d = Digester::default();
    for f in frames(&raw, false) {
        d.frame(&f);
    }
    d.digest
}
