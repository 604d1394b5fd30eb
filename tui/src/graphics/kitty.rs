//! The kitty graphics protocol encoder: APC commands (`ESC _ G keys ; payload ESC \`) that
//! send an RGB picture and place it over a block of cells. Pure: pixels in, text out.
//!
//! The picture goes as base64 in chunks of at most 4096 bytes, each but the last a multiple of
//! four and marked `m=1`, the last `m=0`; only the first carries the keys. `q=2` keeps the
//! terminal from answering (an answer would arrive as input). A picture sent again under the
//! same id replaces the old one and its placements, so a playing clip reuses two ids in turn
//! (the new frame is placed before the old one is deleted, so nothing flashes) and the
//! terminal holds at most two of its frames.

use std::fmt::Write as _;

use loopsmith_protocol::control::base64;

/// Largest base64 payload in one escape sequence, as the protocol allows.
pub const CHUNK: usize = 4096;

/// Sends a `width`×`height` packed RGB picture (`f=24`) as image `id` and shows it, scaled by
/// the terminal, over `cols`×`rows` cells from the cursor, which stays where it is (`C=1`).
/// A picture whose size does not match gives an empty string.
pub fn transmit_and_place(
    rgb: &[u8],
    width: u32,
    height: u32,
    id: u32,
    cols: u16,
    rows: u16,
) -> String {
    if width == 0 || height == 0 || rgb.len() as u64 != u64::from(width) * u64::from(height) * 3 {
        return String::new();
    }
    let payload = base64::encode(rgb);
    let chunks = payload.as_bytes().chunks(CHUNK);
    let n = chunks.len();
    let mut out = String::with_capacity(payload.len() + n * 16 + 64);
    for (i, chunk) in chunks.enumerate() {
        let more = u8::from(i + 1 < n);
        out.push_str("\x1b_G");
        if i == 0 {
            let _ = write!(
                out,
                "a=T,f=24,s={width},v={height},i={id},p=1,c={cols},r={rows},C=1,q=2,"
            );
        }
        let _ = write!(out, "m={more};");
        // Base64 is ASCII, so any byte boundary is a character boundary.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\x1b\\");
    }
    out
}

/// Deletes image `id` and frees its data (`d=I`); quietly, whether or not it exists.
pub fn delete(id: u32) -> String {
    format!("\x1b_Ga=d,d=I,i={id},q=2\x1b\\")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Splits kitty output into its commands: (keys, payload) each.
    fn commands(text: &str) -> Vec<(BTreeMap<String, String>, String)> {
        let mut out = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let body = rest.strip_prefix("\x1b_G").expect("APC G");
            let end = body.find("\x1b\\").expect("ST");
            let (control, payload) = body[..end].split_once(';').unwrap_or((&body[..end], ""));
            let keys = control
                .split(',')
                .map(|kv| {
                    let (k, v) = kv.split_once('=').expect("key=value");
                    (k.to_string(), v.to_string())
                })
                .collect();
            out.push((keys, payload.to_string()));
            rest = &body[end + 2..];
        }
        out
    }

    fn picture(width: u32, height: u32) -> Vec<u8> {
        (0..width * height * 3)
            .map(|i| (i * 37 % 251) as u8)
            .collect()
    }

    #[test]
    fn a_large_picture_goes_in_chunks_that_decode_to_the_exact_bytes() {
        let (w, h) = (160, 90);
        let rgb = picture(w, h);
        let text = transmit_and_place(&rgb, w, h, 7, 40, 12);
        let commands = commands(&text);
        assert!(commands.len() > 1, "43,200 bytes need several chunks");

        let (first, _) = &commands[0];
        for (k, v) in [
            ("a", "T"),
            ("f", "24"),
            ("s", "160"),
            ("v", "90"),
            ("i", "7"),
            ("p", "1"),
            ("c", "40"),
            ("r", "12"),
            ("C", "1"),
            ("q", "2"),
        ] {
            assert_eq!(first.get(k).map(String::as_str), Some(v), "{k}");
        }
        let mut payload = String::new();
        for (i, (keys, chunk)) in commands.iter().enumerate() {
            let last = i + 1 == commands.len();
            assert_eq!(keys["m"], if last { "0" } else { "1" });
            if i > 0 {
                assert_eq!(keys.len(), 1, "only the first chunk carries keys");
            }
            assert!(chunk.len() <= CHUNK);
            if !last {
                assert_eq!(chunk.len() % 4, 0);
            }
            payload.push_str(chunk);
        }
        assert_eq!(base64::decode(&payload), Some(rgb));
    }

    #[test]
    fn a_small_picture_is_one_command() {
        let rgb = picture(2, 2);
        let commands = commands(&transmit_and_place(&rgb, 2, 2, 1, 1, 1));
        assert_eq!(commands.len(), 1);
        assert_eq!(commands[0].0["m"], "0");
        assert_eq!(base64::decode(&commands[0].1), Some(rgb));
    }

    #[test]
    fn exactly_one_chunk_of_payload_needs_no_second() {
        // 3,072 bytes are exactly 4,096 base64 characters.
        let rgb = vec![9u8; 3072];
        let commands = commands(&transmit_and_place(&rgb, 32, 32, 1, 4, 2));
        assert_eq!(commands.len(), 1);
        assert_eq!(commands[0].1.len(), CHUNK);
    }

    #[test]
    fn delete_frees_the_image_quietly_and_bad_sizes_send_nothing() {
        let commands = commands(&delete(3));
        assert_eq!(commands.len(), 1);
        let keys = &commands[0].0;
        assert_eq!(
            (&*keys["a"], &*keys["d"], &*keys["i"], &*keys["q"]),
            ("d", "I", "3", "2")
        );
        assert_eq!(transmit_and_place(&[1, 2, 3], 2, 2, 1, 1, 1), "");
        assert_eq!(transmit_and_place(&[], 0, 0, 1, 1, 1), "");
    }
}
