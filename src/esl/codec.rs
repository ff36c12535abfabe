//! The ESL wire codec: splits a byte stream into [`Frame`]s and writes frames and commands.
//!
//! Both directions live here so the client and the simulator share one definition of the
//! format: a header block ended by an empty line, then `Content-Length` bytes of body.

use bytes::{Buf, Bytes, BytesMut};
use memchr::memmem;

use super::frame::{Frame, HeaderBlock, HeaderSpan};

/// Frames larger than this are refused unless the decoder is told otherwise. FreeSWITCH's
/// biggest routine frames (`show channels as json` on a loaded switch) stay well below it.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// Why a byte stream could not be split into frames. Every variant ends the connection.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("frame of {size} bytes exceeds the {limit}-byte limit")]
    FrameTooLarge { size: usize, limit: usize },
    #[error("header line without ':' at byte {offset} of a frame")]
    MalformedHeader { offset: usize },
    #[error("Content-Length {0:?} is not a byte count")]
    BadContentLength(String),
}

/// Where the decoder is inside the frame at the head of the buffer.
#[derive(Debug, Clone, Copy)]
enum State {
    /// Looking for the blank line; `scanned` bytes are known to hold none.
    Head { scanned: usize },
    /// Header block parsed (`head_len` bytes incl. the blank line), waiting for the body.
    Body { head_len: usize, body_len: usize },
}

/// Incremental frame splitter. Feed it the read buffer after every read; it never rescans
/// bytes it has already searched, so a stream split at every byte costs linear time.
#[derive(Debug)]
pub struct FrameDecoder {
    max_frame: usize,
    /// Server side: the first line of each frame is a command (`api status`), not a header.
    commands: bool,
    state: State,
    spans: Vec<HeaderSpan>,
    command: Option<(u32, u32)>,
    finder: memmem::Finder<'static>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl FrameDecoder {
    pub fn new(max_frame: usize) -> Self {
        Self {
            max_frame,
            commands: false,
            state: State::Head { scanned: 0 },
            spans: Vec::new(),
            command: None,
            finder: memmem::Finder::new(b"\n\n"),
        }
    }

    /// A decoder for what a client sends: a command line, optional headers, optional body.
    pub fn for_commands(max_frame: usize) -> Self {
        Self {
            commands: true,
            ..Self::new(max_frame)
        }
    }

    /// Take the next complete frame off the front of `buf`, or `None` until more bytes come.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        loop {
            match self.state {
                State::Head { scanned } => {
                    if scanned == 0 {
                        // FreeSWITCH never sends blank lines between frames; a peer that
                        // does should not produce empty frames.
                        let blank = buf.iter().take_while(|&&b| b == b'\n').count();
                        buf.advance(blank);
                    }
                    let from = scanned.saturating_sub(1);
                    let Some(pos) = self.finder.find(&buf[from..]) else {
                        if buf.len() > self.max_frame {
                            return Err(self.too_large(buf.len()));
                        }
                        self.state = State::Head { scanned: buf.len() };
                        return Ok(None);
                    };
                    let head_len = from + pos + 2;
                    if head_len > self.max_frame {
                        return Err(self.too_large(head_len));
                    }
                    self.spans.clear();
                    let block = &buf[..head_len - 1];
                    let (command, block_start) = if self.commands {
                        let end = memchr::memchr(b'\n', block).unwrap_or(block.len());
                        (Some((0, end as u32)), end + 1)
                    } else {
                        (None, 0)
                    };
                    self.command = command;
                    let body_len = parse_header_block(
                        block.get(block_start..).unwrap_or_default(),
                        block_start,
                        &mut self.spans,
                    )?
                    .map(parse_length)
                    .transpose()?
                    .unwrap_or(0);
                    if head_len + body_len > self.max_frame {
                        return Err(self.too_large(head_len + body_len));
                    }
                    self.state = State::Body { head_len, body_len };
                }
                State::Body { head_len, body_len } => {
                    if buf.len() < head_len + body_len {
                        buf.reserve(head_len + body_len - buf.len());
                        return Ok(None);
                    }
                    let mut bytes = buf.split_to(head_len + body_len).freeze();
                    let body = bytes.split_off(head_len);
                    self.state = State::Head { scanned: 0 };
                    let spans = std::mem::take(&mut self.spans);
                    let mut headers = HeaderBlock::new(bytes, spans);
                    if let Some(span) = self.command.take() {
                        headers = headers.with_command(span);
                    }
                    return Ok(Some(Frame::new(headers, body)));
                }
            }
        }
    }

    fn too_large(&mut self, size: usize) -> DecodeError {
        self.state = State::Head { scanned: 0 };
        DecodeError::FrameTooLarge {
            size,
            limit: self.max_frame,
        }
    }
}

/// Index the `Name: value` lines of `block` (each ended by `\n`, the last one may not be)
/// into `spans`, offsets shifted by `base`. Returns the raw `Content-Length` value, if any.
pub(crate) fn parse_header_block<'a>(
    block: &'a [u8],
    base: usize,
    spans: &mut Vec<HeaderSpan>,
) -> Result<Option<&'a [u8]>, DecodeError> {
    let mut content_length = None;
    let mut start = 0;
    while start < block.len() {
        let end = memchr::memchr(b'\n', &block[start..]).map_or(block.len(), |i| start + i);
        let line = &block[start..end];
        if !line.is_empty() {
            let colon = memchr::memchr(b':', line).ok_or(DecodeError::MalformedHeader {
                offset: base + start,
            })?;
            let mut value_start = colon + 1;
            if line.get(value_start) == Some(&b' ') {
                value_start += 1;
            }
            let mut value_end = line.len();
            if value_end > value_start && line[value_end - 1] == b'\r' {
                value_end -= 1;
            }
            let name = &line[..colon];
            let value = &line[value_start..value_end];
            // FreeSWITCH matches header names without regard to case, and clients write
            // `content-length` as often as `Content-Length`.
            if name.eq_ignore_ascii_case(b"Content-Length") {
                content_length = Some(value);
            }
            let at = |i: usize| (base + start + i) as u32;
            spans.push(HeaderSpan {
                name: (at(0), at(colon)),
                value: (at(value_start), at(value_end)),
            });
        }
        start = end + 1;
    }
    Ok(content_length)
}

pub(crate) fn parse_length(raw: &[u8]) -> Result<usize, DecodeError> {
    let bad = || DecodeError::BadContentLength(String::from_utf8_lossy(raw).into_owned());
    if raw.is_empty() || raw.len() > 12 || !raw.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    // At most 12 ASCII digits, so this neither fails nor overflows.
    Ok(raw
        .iter()
        .fold(0usize, |n, d| n * 10 + usize::from(d - b'0')))
}

/// Writes frames the way FreeSWITCH does: `Name: value` lines, then `Content-Length` when a
/// body follows, a blank line, and the body. Used by the client for commands and by the
/// simulator for everything it sends.
#[derive(Debug, Default)]
pub struct FrameWriter {
    buf: Vec<u8>,
}

impl FrameWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A bare command line such as `api status` or `event plain ALL`, which starts a frame.
    pub fn line(&mut self, line: &str) -> &mut Self {
        self.buf.extend_from_slice(line.as_bytes());
        self.buf.push(b'\n');
        self
    }

    pub fn header(&mut self, name: &str, value: &str) -> &mut Self {
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b": ");
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.push(b'\n');
        self
    }

    /// A header whose value is percent-encoded the way FreeSWITCH writes plain event bodies.
    pub fn encoded_header(&mut self, name: &str, value: &str) -> &mut Self {
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b": ");
        super::percent::encode_into(value.as_bytes(), &mut self.buf);
        self.buf.push(b'\n');
        self
    }

    /// A whole event frame as FreeSWITCH sends it: `Content-Length` first, then the
    /// `Content-Type` (`text/event-plain`, `text/event-json`), a blank line and `body`.
    pub fn event(&mut self, content_type: &str, body: &[u8]) -> &mut Self {
        self.header("Content-Length", &body.len().to_string());
        self.header("Content-Type", content_type);
        self.buf.push(b'\n');
        self.buf.extend_from_slice(body);
        self
    }

    /// End the frame with no body.
    pub fn end(&mut self) -> &mut Self {
        self.buf.push(b'\n');
        self
    }

    /// End the frame with `body`, announcing its length in bytes.
    pub fn body(&mut self, body: &[u8]) -> &mut Self {
        self.header("Content-Length", &body.len().to_string());
        self.buf.push(b'\n');
        self.buf.extend_from_slice(body);
        self
    }

    /// Append bytes verbatim: a body whose `Content-Length` the caller wrote itself, as
    /// FreeSWITCH does for events (`Content-Length` before `Content-Type`).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn take(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.buf))
    }

    pub fn clear(&mut self) {
        self.buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esl::frame::ContentType;

    fn decode_all(bytes: &[u8]) -> Vec<Frame> {
        let mut dec = FrameDecoder::default();
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(f) = dec.decode(&mut buf).unwrap() {
            out.push(f);
        }
        assert!(buf.is_empty(), "left over: {:?}", buf);
        out
    }

    #[test]
    fn splits_reply_and_api_response() {
        let frames = decode_all(
            b"Content-Type: command/reply\nReply-Text: +OK Job-UUID: a:b\nJob-UUID: a:b\n\n\
              Content-Type: api/response\nContent-Length: 6\n\n-ERR x",
        );
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].content_type(), ContentType::CommandReply);
        assert_eq!(frames[0].reply_text().unwrap(), "+OK Job-UUID: a:b");
        assert_eq!(frames[1].body().as_ref(), b"-ERR x");
    }

    #[test]
    fn byte_by_byte_equals_whole() {
        let stream =
            b"Content-Type: auth/request\n\nContent-Length: 3\nContent-Type: api/response\n\nabc";
        let mut dec = FrameDecoder::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &b in stream.iter() {
            buf.extend_from_slice(&[b]);
            while let Some(f) = dec.decode(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].body().as_ref(), b"abc");
    }

    #[test]
    fn decodes_client_commands() {
        let mut dec = FrameDecoder::for_commands(DEFAULT_MAX_FRAME);
        let mut buf = BytesMut::from(
            &b"api status\n\nsendmsg u1\ncall-command: execute\ncontent-length: 3\n\nabcexit\n\n"[..],
        );
        let a = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(a.headers().command(), Some("api status"));
        let b = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(b.headers().command(), Some("sendmsg u1"));
        assert_eq!(b.headers().text("call-command").unwrap(), "execute");
        assert_eq!(b.body().as_ref(), b"abc");
        let c = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(c.headers().command(), Some("exit"));
    }

    #[test]
    fn refuses_oversized_frames() {
        let mut dec = FrameDecoder::new(64);
        let mut buf = BytesMut::from(&b"Content-Type: api/response\nContent-Length: 1000\n\n"[..]);
        assert!(matches!(
            dec.decode(&mut buf),
            Err(DecodeError::FrameTooLarge { .. })
        ));
        let mut dec = FrameDecoder::new(64);
        let mut buf = BytesMut::from(&[b'x'; 100][..]);
        assert!(matches!(
            dec.decode(&mut buf),
            Err(DecodeError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        let mut dec = FrameDecoder::default();
        let mut buf = BytesMut::from(&b"no colon here\n\n"[..]);
        assert_eq!(
            dec.decode(&mut buf).unwrap_err(),
            DecodeError::MalformedHeader { offset: 0 }
        );
        let mut dec = FrameDecoder::default();
        let mut buf = BytesMut::from(&b"Content-Length: -5\n\n"[..]);
        assert!(matches!(
            dec.decode(&mut buf),
            Err(DecodeError::BadContentLength(_))
        ));
    }
}
