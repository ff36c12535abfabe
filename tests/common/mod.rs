//! Helpers shared by the integration tests: the recorded fixtures, and a private Redis.
//!
//! Each test binary includes this module and uses only part of it.
#![allow(dead_code, unused_imports)]

use std::path::PathBuf;

use bytes::BytesMut;
use callbackd::esl::{Frame, FrameDecoder};
pub use callbackd::store::local::free_port;

/// A private `redis-server` for one test, killed when dropped.
pub struct RedisServer(callbackd::store::local::LocalRedis);

impl RedisServer {
    pub fn start() -> Self {
        Self(callbackd::store::local::LocalRedis::start().expect("redis-server must be installed"))
    }

    /// One that keeps its data across [`RedisServer::restart`] (an append-only file).
    pub fn start_durable() -> Self {
        Self(
            callbackd::store::local::LocalRedis::start_durable()
                .expect("redis-server must be installed"),
        )
    }

    pub fn url(&self) -> String {
        self.0.url()
    }

    /// Kill it as a crash would; it stays down until [`RedisServer::restart`].
    pub fn kill(&mut self) {
        self.0.kill();
    }

    pub fn restart(&mut self) {
        self.0.restart().expect("redis-server restarts on its port");
    }
}

/// Where the recordings from a real FreeSWITCH 1.10.12 live (copied from shared/fixtures/esl).
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/esl")
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `.raw` recording, as paths relative to [`fixture_dir`].
pub fn all_raw_fixtures() -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["", "flows/"] {
        let dir = fixture_dir().join(sub);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".raw") {
                out.push(format!("{sub}{name}"));
            }
        }
    }
    out.sort();
    out
}

/// Split a byte stream from FreeSWITCH into frames; panics on leftovers or errors.
pub fn frames(bytes: &[u8]) -> Vec<Frame> {
    split(bytes, FrameDecoder::default())
        .into_iter()
        .map(|(f, _)| f)
        .collect()
}

/// Like [`frames`], with each frame's exact bytes as recorded.
pub fn frames_with_bytes(bytes: &[u8]) -> Vec<(Frame, Vec<u8>)> {
    split(bytes, FrameDecoder::default())
}

/// Split what a client sent (`.sent` files) into command frames with their exact bytes.
pub fn commands(bytes: &[u8]) -> Vec<(Frame, Vec<u8>)> {
    split(bytes, FrameDecoder::for_commands(1 << 20))
}

fn split(bytes: &[u8], mut decoder: FrameDecoder) -> Vec<(Frame, Vec<u8>)> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(frame) = decoder.decode(&mut buf).expect("recording decodes") {
        let end = bytes.len() - buf.len();
        out.push((frame, bytes[at..end].to_vec()));
        at = end;
    }
    assert!(buf.is_empty(), "{} bytes left undecoded", buf.len());
    out
}
