//! One ESL frame as it came off the wire: an envelope header block and an optional body.
//!
//! A frame owns one shared buffer and keeps its headers as offsets into it, so decoding a
//! frame costs one allocation for the index and none per header.

use std::borrow::Cow;

use bytes::Bytes;

use super::percent;

/// Byte offsets of one `Name: value` line inside a frame's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderSpan {
    pub name: (u32, u32),
    pub value: (u32, u32),
}

/// A header block kept as spans over a shared buffer.
///
/// The envelope of every frame is one, and so is the body of a `text/event-plain` frame.
#[derive(Debug, Clone)]
pub struct HeaderBlock {
    buf: Bytes,
    spans: Vec<HeaderSpan>,
    /// The command line of a client frame (`api status`); FreeSWITCH's frames have none.
    command: Option<(u32, u32)>,
}

impl HeaderBlock {
    pub(crate) fn new(buf: Bytes, spans: Vec<HeaderSpan>) -> Self {
        Self {
            buf,
            spans,
            command: None,
        }
    }

    pub(crate) fn with_command(mut self, span: (u32, u32)) -> Self {
        self.command = Some(span);
        self
    }

    /// The first line of a frame decoded with [`super::FrameDecoder::for_commands`].
    pub fn command(&self) -> Option<&str> {
        self.command
            .and_then(|span| std::str::from_utf8(self.slice(span)).ok())
    }

    fn slice(&self, (start, end): (u32, u32)) -> &[u8] {
        &self.buf[start as usize..end as usize]
    }

    /// The raw (undecoded) value of the first header called `name`, compared exactly.
    pub fn raw(&self, name: &str) -> Option<&[u8]> {
        let name = name.as_bytes();
        self.spans
            .iter()
            .find(|s| self.slice(s.name) == name)
            .map(|s| self.slice(s.value))
    }

    /// Like [`HeaderBlock::raw`] but ignoring ASCII case, as FreeSWITCH reads client headers.
    pub fn raw_ignore_case(&self, name: &str) -> Option<&[u8]> {
        let name = name.as_bytes();
        self.spans
            .iter()
            .find(|s| self.slice(s.name).eq_ignore_ascii_case(name))
            .map(|s| self.slice(s.value))
    }

    /// The value of `name` as text, with no percent-decoding (envelope headers are sent as is).
    pub fn text(&self, name: &str) -> Option<Cow<'_, str>> {
        self.raw(name).map(String::from_utf8_lossy)
    }

    /// The value of `name`, percent-decoded the way FreeSWITCH encodes plain event headers.
    pub fn decoded(&self, name: &str) -> Option<Cow<'_, str>> {
        self.raw(name).map(percent::decode)
    }

    /// Every header in wire order as raw `(name, value)` byte pairs.
    pub fn iter_raw(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.spans
            .iter()
            .map(|s| (self.slice(s.name), self.slice(s.value)))
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// A decoded ESL frame: envelope headers plus the `Content-Length` body, if any.
#[derive(Debug, Clone)]
pub struct Frame {
    headers: HeaderBlock,
    body: Bytes,
}

/// The `Content-Type` values FreeSWITCH 1.10 sends, and anything else kept verbatim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType<'a> {
    AuthRequest,
    CommandReply,
    ApiResponse,
    EventPlain,
    EventJson,
    EventXml,
    LogData,
    DisconnectNotice,
    RudeRejection,
    /// A frame without `Content-Type`: the outbound-mode `connect` reply puts it late, so this
    /// only shows for frames that truly lack one.
    Missing,
    Other(&'a str),
}

impl Frame {
    pub(crate) fn new(headers: HeaderBlock, body: Bytes) -> Self {
        Self { headers, body }
    }

    pub fn headers(&self) -> &HeaderBlock {
        &self.headers
    }

    /// The body bytes (empty when the frame had no `Content-Length`).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    pub fn content_type(&self) -> ContentType<'_> {
        match self.headers.raw("Content-Type") {
            None => ContentType::Missing,
            Some(b"auth/request") => ContentType::AuthRequest,
            Some(b"command/reply") => ContentType::CommandReply,
            Some(b"api/response") => ContentType::ApiResponse,
            Some(b"text/event-plain") => ContentType::EventPlain,
            Some(b"text/event-json") => ContentType::EventJson,
            Some(b"text/event-xml") => ContentType::EventXml,
            Some(b"log/data") => ContentType::LogData,
            Some(b"text/disconnect-notice") => ContentType::DisconnectNotice,
            Some(b"text/rude-rejection") => ContentType::RudeRejection,
            Some(other) => ContentType::Other(std::str::from_utf8(other).unwrap_or("")),
        }
    }

    /// `Reply-Text` of a `command/reply`. The outbound `connect` reply is a whole channel
    /// event in the envelope and percent-encodes it (`%2BOK%0A`); inbound replies send it as
    /// is, and may legitimately contain `%` (a filter value), so only the former is decoded.
    pub fn reply_text(&self) -> Option<Cow<'_, str>> {
        if self.headers.raw("Event-Name").is_some() {
            self.headers.decoded("Reply-Text")
        } else {
            self.headers.text("Reply-Text")
        }
    }

    pub fn body_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}
