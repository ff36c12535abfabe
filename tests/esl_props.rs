//! Property tests for the ESL codec: any frame sequence survives any split of the stream,
//! and no byte string makes the decoder panic.
//!
//! Frames are written with the same `FrameWriter` the simulator uses, so both ends agree.

use bytes::BytesMut;
use callbackd::esl::{percent, Event, FrameDecoder, FrameWriter};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct TestFrame {
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

fn header_name() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9_-]{0,20}".prop_filter("Content-Length is the codec's own", |n| {
        !n.eq_ignore_ascii_case("content-length")
    })
}

fn frame() -> impl Strategy<Value = TestFrame> {
    (
        prop::collection::vec((header_name(), "[ -~]{0,40}"), 1..8),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..200)),
    )
        .prop_map(|(headers, body)| TestFrame {
            // A value may not start with a space: the codec strips the one after ':'.
            headers: headers
                .into_iter()
                .map(|(n, v)| (n, v.trim_start().to_owned()))
                .collect(),
            body,
        })
}

fn encode(frames: &[TestFrame]) -> Vec<u8> {
    let mut w = FrameWriter::new();
    for f in frames {
        for (n, v) in &f.headers {
            w.header(n, v);
        }
        match &f.body {
            Some(b) => w.body(b),
            None => w.end(),
        };
    }
    w.take().to_vec()
}

proptest! {
    #[test]
    fn frames_roundtrip_across_any_split(
        frames in prop::collection::vec(frame(), 1..12),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let stream = encode(&frames);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut decoder = FrameDecoder::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for w in points.windows(2) {
            buf.extend_from_slice(&stream[w[0]..w[1]]);
            while let Some(f) = decoder.decode(&mut buf).unwrap() {
                got.push(f);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got.len(), frames.len());
        for (g, want) in got.iter().zip(&frames) {
            for (n, _) in &want.headers {
                // A repeated name reads as its first occurrence, like FreeSWITCH's lookup.
                let first = want.headers.iter().find(|(m, _)| m == n).unwrap();
                prop_assert_eq!(g.headers().raw(n), Some(first.1.as_bytes()));
            }
            prop_assert_eq!(g.body().as_ref(), want.body.as_deref().unwrap_or_default());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048), limit in 16usize..4096) {
        let mut decoder = FrameDecoder::new(limit);
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(frame)) = decoder.decode(&mut buf) {
            if let Ok(Some(event)) = Event::from_frame(&frame) {
                let _ = (event.name(), event.body(), event.headers());
            }
        }
    }

    #[test]
    fn percent_encoding_roundtrips(value in ".{0,64}") {
        let mut out = Vec::new();
        percent::encode_into(value.as_bytes(), &mut out);
        prop_assert!(!out.contains(&b'\n') && !out.contains(&b' '));
        prop_assert_eq!(percent::decode(&out), value);
    }
}
