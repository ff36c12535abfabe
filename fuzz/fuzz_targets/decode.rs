//! Fuzz target: whatever bytes a peer sends, the ESL decoder and event parser must answer with
//! frames or an error, never a panic, and must not care where the reads split the stream.
#![no_main]

use bytes::BytesMut;
use callbackd::esl::{Event, Frame, FrameDecoder, DEFAULT_MAX_FRAME};
use libfuzzer_sys::fuzz_target;

/// What a decoder made of a stream: its frames as (header block, body) bytes, and whether it
/// ended on an error, which closes the connection in the client.
struct Outcome {
    frames: Vec<(Vec<(Vec<u8>, Vec<u8>)>, Vec<u8>)>,
    failed: bool,
}

/// Feed `parts` one after the other, the way successive socket reads arrive, taking every
/// complete frame after each.
fn run(mut decoder: FrameDecoder, parts: &[&[u8]]) -> Outcome {
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for part in parts {
        buf.extend_from_slice(part);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    exercise(&frame);
                    let headers = frame
                        .headers()
                        .iter_raw()
                        .map(|(n, v)| (n.to_vec(), v.to_vec()))
                        .collect();
                    frames.push((headers, frame.body().to_vec()));
                }
                Ok(None) => break,
                Err(_) => {
                    return Outcome {
                        frames,
                        failed: true,
                    }
                }
            }
        }
    }
    Outcome {
        frames,
        failed: false,
    }
}

/// Read a frame the way the client and the daemon do; only panics matter here.
fn exercise(frame: &Frame) {
    let _ = frame.content_type();
    let _ = frame.reply_text();
    let _ = frame.body_text();
    let _ = frame.headers().command();
    let _ = frame.headers().raw_ignore_case("content-length");
    let Ok(Some(event)) = Event::from_frame(frame) else {
        return;
    };
    let _ = event.name();
    let _ = event.is("CHANNEL_EXECUTE_COMPLETE");
    let _ = event.subclass();
    let _ = event.unique_id();
    let _ = event.job_uuid();
    let _ = event.application_uuid();
    let _ = event.variable("callbackd_queue");
    let _ = event.raw_header("DTMF-Digit");
    let _ = event.body();
    let _ = event.headers();
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    // The first byte picks where the stream is split between two reads.
    let at = usize::from(cut) * stream.len() / 255;
    let (first, second) = stream.split_at(at);
    for max_frame in [DEFAULT_MAX_FRAME, 64] {
        let split = run(FrameDecoder::new(max_frame), &[first, second]);
        let whole = run(FrameDecoder::new(max_frame), &[stream]);
        // Every error depends on one frame's own bytes, so a read boundary may change
        // neither the frames before it nor whether the stream is refused.
        assert!(
            split.frames == whole.frames,
            "a read boundary changed the frames"
        );
        assert_eq!(
            split.failed, whole.failed,
            "a read boundary changed whether the stream is refused"
        );
        run(FrameDecoder::for_commands(max_frame), &[first, second]);
    }
});
