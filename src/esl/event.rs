//! FreeSWITCH events in the three formats a listener can ask for: plain, json and xml.
//!
//! A plain event keeps its headers as spans over the frame's buffer and percent-decodes a
//! value only when it is read; json and xml events are parsed up front (they are opt-in).

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::codec::{parse_header_block, parse_length, DecodeError};
use super::frame::{ContentType, Frame, HeaderBlock};
use super::percent;

/// Why a frame that claims to be an event could not be read as one.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("plain event: {0}")]
    Plain(#[from] DecodeError),
    #[error("plain event body shorter than its Content-Length ({have} < {want})")]
    ShortBody { have: usize, want: usize },
    #[error("json event: {0}")]
    Json(#[from] serde_json::Error),
    #[error("xml event: {0}")]
    Xml(&'static str),
}

#[derive(Debug, Clone)]
enum Repr {
    Plain { headers: HeaderBlock, body: Bytes },
    Json(Map<String, Value>),
    Xml(XmlEvent),
}

#[derive(Debug, Clone, Default)]
struct XmlEvent {
    /// Names and values after XML unescaping; values are still percent-encoded, as sent.
    headers: Vec<(String, String)>,
    body: String,
}

/// One FreeSWITCH event. Header values come back percent-decoded whatever the format.
#[derive(Debug, Clone)]
pub struct Event {
    repr: Repr,
}

impl Event {
    /// Read the event carried by `frame`, or `None` when the frame is not an event.
    pub fn from_frame(frame: &Frame) -> Result<Option<Self>, EventError> {
        let repr = match frame.content_type() {
            ContentType::EventPlain => parse_plain(frame.body())?,
            ContentType::EventJson => Repr::Json(serde_json::from_slice(frame.body())?),
            ContentType::EventXml => Repr::Xml(parse_xml(&frame.body_text())?),
            // The outbound `connect` reply is a CHANNEL_DATA event written into the envelope.
            ContentType::CommandReply if frame.headers().raw("Event-Name").is_some() => {
                Repr::Plain {
                    headers: frame.headers().clone(),
                    body: Bytes::new(),
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(Self { repr }))
    }

    /// The value of header `name`, percent-decoded.
    pub fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        match &self.repr {
            Repr::Plain { headers, .. } => headers.decoded(name),
            Repr::Json(map) => map.get(name).map(json_text),
            Repr::Xml(x) => x
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| percent::decode(v.as_bytes())),
        }
    }

    /// Raw bytes of a plain header, for callers that compare without decoding (fast path).
    pub fn raw_header(&self, name: &str) -> Option<&[u8]> {
        match &self.repr {
            Repr::Plain { headers, .. } => headers.raw(name),
            Repr::Json(map) => map.get(name).and_then(Value::as_str).map(str::as_bytes),
            Repr::Xml(x) => x
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_bytes()),
        }
    }

    /// A channel variable: the `variable_<name>` header.
    pub fn variable(&self, name: &str) -> Option<Cow<'_, str>> {
        self.header(&format!("variable_{name}"))
    }

    /// `Event-Name`, e.g. `CHANNEL_PARK`; CUSTOM events also have a [`Event::subclass`].
    pub fn name(&self) -> Option<Cow<'_, str>> {
        self.header("Event-Name")
    }

    /// Whether this is the event `name`, compared without decoding or allocating.
    pub fn is(&self, name: &str) -> bool {
        self.raw_header("Event-Name") == Some(name.as_bytes())
    }

    pub fn subclass(&self) -> Option<Cow<'_, str>> {
        self.header("Event-Subclass")
    }

    pub fn unique_id(&self) -> Option<Cow<'_, str>> {
        self.header("Unique-ID")
    }

    pub fn job_uuid(&self) -> Option<Cow<'_, str>> {
        self.header("Job-UUID")
    }

    pub fn application_uuid(&self) -> Option<Cow<'_, str>> {
        self.header("Application-UUID")
    }

    /// The body: a BACKGROUND_JOB result, a json `_body`, an xml `<body>`; empty when none.
    pub fn body(&self) -> Cow<'_, str> {
        match &self.repr {
            Repr::Plain { body, .. } => String::from_utf8_lossy(body),
            Repr::Json(map) => map.get("_body").map(json_text).unwrap_or_default(),
            Repr::Xml(x) => Cow::Borrowed(&x.body),
        }
    }

    /// Every header in order (json: key order as received), names and decoded values.
    pub fn headers(&self) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
        match &self.repr {
            Repr::Plain { headers, .. } => headers
                .iter_raw()
                .map(|(n, v)| (String::from_utf8_lossy(n), percent::decode(v)))
                .collect(),
            Repr::Json(map) => map
                .iter()
                .filter(|(k, _)| k.as_str() != "_body")
                .map(|(k, v)| (Cow::Borrowed(k.as_str()), json_text(v)))
                .collect(),
            Repr::Xml(x) => x
                .headers
                .iter()
                .map(|(n, v)| (Cow::Borrowed(n.as_str()), percent::decode(v.as_bytes())))
                .collect(),
        }
    }
}

fn json_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

/// A plain event body is itself a header block; `Content-Length` inside it announces a
/// nested body (BACKGROUND_JOB results, some CUSTOM events).
fn parse_plain(body: &Bytes) -> Result<Repr, EventError> {
    let (head_end, rest_start) = match memchr::memmem::find(body, b"\n\n") {
        Some(i) => (i, i + 2),
        None => (body.len(), body.len()),
    };
    let mut spans = Vec::with_capacity(64);
    let nested = parse_header_block(&body[..head_end], 0, &mut spans)?
        .map(parse_length)
        .transpose()?;
    let nested_body = match nested {
        Some(want) => {
            let have = body.len() - rest_start;
            if have < want {
                return Err(EventError::ShortBody { have, want });
            }
            body.slice(rest_start..rest_start + want)
        }
        None => Bytes::new(),
    };
    Ok(Repr::Plain {
        headers: HeaderBlock::new(body.clone(), spans),
        body: nested_body,
    })
}

/// FreeSWITCH's xml events have one fixed shape: `<event><headers><Name>value</Name>…
/// </headers><body>…</body></event>`, so a small scanner reads them without an XML crate.
fn parse_xml(text: &str) -> Result<XmlEvent, EventError> {
    let start = text
        .find("<headers>")
        .ok_or(EventError::Xml("no <headers>"))?;
    let end = text
        .find("</headers>")
        .ok_or(EventError::Xml("no </headers>"))?;
    let mut rest = text
        .get(start + "<headers>".len()..end)
        .ok_or(EventError::Xml("misplaced </headers>"))?;
    let mut event = XmlEvent::default();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let inner = rest
            .strip_prefix('<')
            .ok_or(EventError::Xml("text outside a header element"))?;
        let close = inner.find('>').ok_or(EventError::Xml("unclosed tag"))?;
        let name = &inner[..close];
        let after = &inner[close + 1..];
        let closing = format!("</{name}>");
        let value_end = after
            .find(&closing)
            .ok_or(EventError::Xml("header element not closed"))?;
        event
            .headers
            .push((unescape_xml(name), unescape_xml(&after[..value_end])));
        rest = &after[value_end + closing.len()..];
    }
    if let (Some(b), Some(e)) = (text.find("<body>"), text.rfind("</body>")) {
        if b < e {
            event.body = unescape_xml(&text[b + "<body>".len()..e]);
        }
    }
    Ok(event)
}

fn unescape_xml(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esl::codec::FrameDecoder;
    use bytes::BytesMut;

    fn one(bytes: &[u8]) -> Event {
        let mut buf = BytesMut::from(bytes);
        let frame = FrameDecoder::default().decode(&mut buf).unwrap().unwrap();
        Event::from_frame(&frame).unwrap().unwrap()
    }

    #[test]
    fn plain_event_with_nested_body() {
        let body = "Event-Name: BACKGROUND_JOB\nJob-UUID: j1\nContent-Length: 4\n\n+OK\n";
        let frame = format!(
            "Content-Length: {}\nContent-Type: text/event-plain\n\n{body}",
            body.len()
        );
        let ev = one(frame.as_bytes());
        assert!(ev.is("BACKGROUND_JOB"));
        assert_eq!(ev.job_uuid().unwrap(), "j1");
        assert_eq!(ev.body(), "+OK\n");
    }

    #[test]
    fn xml_event() {
        let body = "<event>\n  <headers>\n    <Event-Name>DTMF</Event-Name>\n    <DTMF-Digit>%23</DTMF-Digit>\n    <X>a&amp;b</X>\n  </headers>\n</event>";
        let frame = format!(
            "Content-Length: {}\nContent-Type: text/event-xml\n\n{body}",
            body.len()
        );
        let ev = one(frame.as_bytes());
        assert_eq!(ev.name().unwrap(), "DTMF");
        assert_eq!(ev.header("DTMF-Digit").unwrap(), "#");
        assert_eq!(ev.header("X").unwrap(), "a&b");
    }
}
