//! FreeSWITCH's percent-encoding of plain event header values, in both directions.
//!
//! Decoding happens only when a value is read, so the hot path never touches values nobody asks for.

use std::borrow::Cow;

/// Decode `%XX` escapes like `switch_url_decode`: a `%` not followed by two hex digits is kept,
/// `+` stays a plus, and bytes that are not UTF-8 are replaced rather than rejected.
pub fn decode(raw: &[u8]) -> Cow<'_, str> {
    if memchr::memchr(b'%', raw).is_none() {
        return String::from_utf8_lossy(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' && i + 2 < raw.len() {
            if let (Some(h), Some(l)) = (hex(raw[i + 1]), hex(raw[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether FreeSWITCH leaves `b` as is in a plain event value (`switch_url_encode`): printable
/// ASCII passes except its "unsafe" set; controls and bytes above `~` are escaped too.
fn is_unreserved(b: u8) -> bool {
    (b' '..=b'~').contains(&b) && !b" \"#%&+:;<=>?@[\\]^`{|}".contains(&b)
}

/// Append `value` percent-encoded the way FreeSWITCH writes plain event headers.
pub fn encode_into(value: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in value {
        if is_unreserved(b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_freeswitch_escapes() {
        assert_eq!(decode(b"local_stream%3A//moh"), "local_stream://moh");
        assert_eq!(decode(b"2026-11-22%2003%3A02%3A10"), "2026-11-22 03:02:10");
        assert_eq!(decode(b"%23"), "#");
        assert_eq!(decode(b"100%"), "100%");
        assert_eq!(decode(b"%zz%4"), "%zz%4");
        assert_eq!(decode(b"a+b"), "a+b");
    }

    #[test]
    fn encode_roundtrips() {
        let mut out = Vec::new();
        encode_into(b"Sun, 22 Nov 2026 03:02:10 GMT #%;", &mut out);
        assert_eq!(
            out,
            b"Sun,%2022%20Nov%202026%2003%3A02%3A10%20GMT%20%23%25%3B"
        );
        assert_eq!(decode(&out), "Sun, 22 Nov 2026 03:02:10 GMT #%;");
    }
}
