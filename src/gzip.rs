//! One gzip stream from a large part compressed once and a small part compressed per
//! request. The large part is kept as raw deflate blocks ending in a sync flush (byte
//! aligned, not final); a fresh compressor deflates the small part after it, with no
//! back-references across; the trailer carries the CRC of both, combined. Every gzip
//! reader takes the result as a single member, unlike two concatenated members, which
//! some clients (curl, browsers) stop reading after the first.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use flate2::write::DeflateEncoder;
use flate2::Compression;

use crate::exposition::Body;

/// Gzip header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// The compressed large part, kept between requests.
#[derive(Clone)]
pub struct Head {
    /// The gzip header and the deflated data, sent as they are by every request.
    start: Arc<[Bytes]>,
    deflated_len: usize,
    crc: crc32fast::Hasher,
    len: u64,
}

impl Head {
    /// Compresses `data`, given as the chunks it is made of.
    pub fn new(data: &[Bytes]) -> Head {
        let len: usize = data.iter().map(Bytes::len).sum();
        let mut encoder = DeflateEncoder::new(Vec::with_capacity(len / 6 + 64), level());
        let mut crc = crc32fast::Hasher::new();
        for chunk in data {
            // Writing into a Vec cannot fail.
            let _ = encoder.write_all(chunk);
            crc.update(chunk);
        }
        // A sync flush ends the data on a byte boundary without a final block.
        let _ = encoder.flush();
        let deflated = std::mem::take(encoder.get_mut());
        Head {
            deflated_len: deflated.len(),
            start: Arc::from([Bytes::from_static(&HEADER), Bytes::from(deflated)]),
            crc,
            len: len as u64,
        }
    }

    /// The whole gzip stream of the head's data followed by `tail` (the head's bytes are
    /// shared, not copied).
    pub fn with_tail(&self, tail: &[u8]) -> Body {
        let mut encoder = DeflateEncoder::new(Vec::with_capacity(tail.len() / 3 + 64), level());
        let _ = encoder.write_all(tail);
        let mut rest = encoder.finish().unwrap_or_default();
        let mut tail_crc = crc32fast::Hasher::new();
        tail_crc.update(tail);
        let mut crc = self.crc.clone();
        crc.combine(&tail_crc);
        rest.extend_from_slice(&crc.finalize().to_le_bytes());
        // ISIZE: the uncompressed length modulo 2^32, as RFC 1952 says.
        let size = (self.len + tail.len() as u64) as u32;
        rest.extend_from_slice(&size.to_le_bytes());
        Body {
            shared: Arc::clone(&self.start),
            own: vec![Bytes::from(rest)],
        }
    }

    /// Compressed bytes of the head.
    pub fn len(&self) -> usize {
        self.deflated_len
    }

    pub fn is_empty(&self) -> bool {
        self.deflated_len == 0
    }
}

/// The fast level: scrape bodies compress well enough, and quickly.
fn level() -> Compression {
    Compression::fast()
}

/// A complete gzip stream of `data`.
pub fn compress(data: &[u8]) -> Bytes {
    Bytes::from(Head::new(&[]).with_tail(data).to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(body: &Body) -> Vec<u8> {
        let stream = body.to_vec();
        // GzDecoder reads one member only: the test fails if there were two.
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&stream[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn head_and_tail_make_one_member() {
        let head: Vec<u8> = b"whatsapp_up{target=\"a\"} 1\n".repeat(5000);
        let tail = b"process_open_fds 7\n# EOF\n";
        // The head in several chunks, as /metrics gives it.
        let (first, second) = head.split_at(1000);
        let compressed = Head::new(&[
            Bytes::copy_from_slice(first),
            Bytes::copy_from_slice(second),
        ]);
        assert!(compressed.len() < head.len() / 10);
        let chunks = compressed.with_tail(tail);
        let mut expected = head.clone();
        expected.extend_from_slice(tail);
        assert_eq!(gunzip(&chunks), expected);
        // The head serves any number of tails.
        assert_eq!(
            gunzip(&compressed.with_tail(b"other\n")),
            [head.as_slice(), b"other\n"].concat()
        );
        // flate2's multi-member reader agrees on where the stream ends.
        let stream = chunks.to_vec();
        let mut all = Vec::new();
        flate2::read::MultiGzDecoder::new(&stream[..])
            .read_to_end(&mut all)
            .unwrap();
        assert_eq!(all, expected);
    }

    #[test]
    fn empty_parts() {
        assert_eq!(gunzip(&Head::new(&[]).with_tail(b"")), b"");
        assert_eq!(gunzip(&Head::new(&[Bytes::new()]).with_tail(b"x")), b"x");
        let whole = Body {
            shared: Arc::from([compress(b"abc")]),
            own: Vec::new(),
        };
        assert_eq!(gunzip(&whole), b"abc");
    }
}
