//! Events as the simulated switch builds them, and their plain and json renderings.
//!
//! An event is rendered once per format and the bytes are shared by every listener, so
//! thousands of channels cost one encoding per event, not one per connection.

use std::borrow::Cow;

use crate::esl::{percent, FrameWriter};

/// One event: its name, ordered headers and an optional body (BACKGROUND_JOB results).
#[derive(Debug, Clone)]
pub struct SimEvent {
    pub name: &'static str,
    pub subclass: Option<String>,
    headers: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    pub body: Option<String>,
}

impl SimEvent {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            subclass: None,
            headers: Vec::with_capacity(96),
            body: None,
        }
    }

    pub fn custom(subclass: &str) -> Self {
        let mut e = Self::new("CUSTOM");
        e.subclass = Some(subclass.to_owned());
        e
    }

    /// Append a header. FreeSWITCH leaves out headers whose value is empty, and so does this.
    pub fn add(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<Cow<'static, str>>) {
        let value = value.into();
        if !value.is_empty() {
            self.headers.push((name.into(), value));
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }

    pub fn into_headers(self) -> Vec<(String, String)> {
        self.headers
            .into_iter()
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect()
    }

    /// The `text/event-plain` frame: values percent-encoded, a nested body announced by its
    /// own `Content-Length` inside the event body.
    pub fn write_plain(&self, scratch: &mut FrameWriter, out: &mut FrameWriter) {
        scratch.clear();
        for (n, v) in &self.headers {
            scratch.encoded_header(n, v);
        }
        match &self.body {
            Some(body) => scratch.body(body.as_bytes()),
            None => scratch.end(),
        };
        out.event("text/event-plain", scratch.as_bytes());
    }

    /// The `text/event-xml` frame: values percent-encoded as in plain events, the body
    /// XML-escaped after a `Content-Length` element.
    pub fn write_xml(&self, scratch: &mut Vec<u8>, out: &mut FrameWriter) {
        scratch.clear();
        scratch.extend_from_slice(b"<event>\n  <headers>\n");
        for (n, v) in &self.headers {
            scratch.extend_from_slice(format!("    <{n}>").as_bytes());
            percent::encode_into(v.as_bytes(), scratch);
            scratch.extend_from_slice(format!("</{n}>\n").as_bytes());
        }
        scratch.extend_from_slice(b"  </headers>\n");
        if let Some(body) = &self.body {
            let escaped = body
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            scratch.extend_from_slice(
                format!(
                    "  <Content-Length>{}</Content-Length>\n  <body>{escaped}</body>\n",
                    body.len()
                )
                .as_bytes(),
            );
        }
        scratch.extend_from_slice(b"</event>\n");
        out.event("text/event-xml", scratch);
    }

    /// The `text/event-json` frame: one object in header order, the body under `_body`
    /// after its length. Written by hand because FreeSWITCH repeats keys (a broadcast's
    /// echo has two `Event-Name`s) and a JSON map would fold them.
    pub fn write_json(&self, scratch: &mut Vec<u8>, out: &mut FrameWriter) {
        fn pair(buf: &mut Vec<u8>, name: &str, value: &str) {
            if buf.len() > 1 {
                buf.push(b',');
            }
            // Writing a str into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *buf, name);
            buf.push(b':');
            let _ = serde_json::to_writer(&mut *buf, value);
        }
        scratch.clear();
        scratch.push(b'{');
        for (n, v) in &self.headers {
            pair(scratch, n, v);
        }
        if let Some(body) = &self.body {
            pair(scratch, "Content-Length", &body.len().to_string());
            pair(scratch, "_body", body);
        }
        scratch.push(b'}');
        out.event("text/event-json", scratch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esl::{Event, FrameDecoder};
    use bytes::BytesMut;

    fn decode(bytes: &[u8]) -> Event {
        let mut buf = BytesMut::from(bytes);
        let frame = FrameDecoder::default().decode(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty());
        Event::from_frame(&frame).unwrap().unwrap()
    }

    #[test]
    fn plain_and_json_roundtrip_through_the_client_codec() {
        let mut e = SimEvent::new("BACKGROUND_JOB");
        e.add("Event-Name", "BACKGROUND_JOB");
        e.add("Job-Command-Arg", "{a=b}loopback/cbq/default &park()");
        e.add("Empty", "");
        e.body = Some("+OK x\n".into());
        let (mut scratch, mut out) = (FrameWriter::new(), FrameWriter::new());
        e.write_plain(&mut scratch, &mut out);
        assert!(out.as_bytes().starts_with(b"Content-Length: "));
        let ev = decode(out.as_bytes());
        assert_eq!(
            ev.header("Job-Command-Arg").unwrap(),
            "{a=b}loopback/cbq/default &park()"
        );
        assert!(ev.header("Empty").is_none());
        assert_eq!(ev.body(), "+OK x\n");
        let mut out = FrameWriter::new();
        e.write_json(&mut Vec::new(), &mut out);
        let ev = decode(out.as_bytes());
        assert_eq!(ev.body(), "+OK x\n");
        assert!(ev.is("BACKGROUND_JOB"));
    }

    #[test]
    fn json_keeps_repeated_keys_in_order_like_freeswitch() {
        let mut e = SimEvent::new("PRIVATE_COMMAND");
        e.add("Event-Name", "COMMAND");
        e.add("lead-frames", "5");
        e.add("Event-Name", "PRIVATE_COMMAND");
        let mut out = FrameWriter::new();
        e.write_json(&mut Vec::new(), &mut out);
        let text = String::from_utf8(out.take().to_vec()).unwrap();
        assert!(text.ends_with(
            "{\"Event-Name\":\"COMMAND\",\"lead-frames\":\"5\",\"Event-Name\":\"PRIVATE_COMMAND\"}"
        ));
    }
}
