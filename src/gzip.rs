//! One gzip stream from a large part compressed once and a small part compressed per
//! request. The large part is kept as raw deflate blocks ending in a sync flush (byte
//! aligned, not final); a fresh compressor deflates the small part after it, with no
//! back-references across; the trailer carries the CRC of both, combined. Every gzip
//! reader takes the result as a single member, unlike two concatenated members, which
//! some clients (curl, browsers) stop reading after the first.

use std::io::Write;

use bytes::Bytes;
use flate2::write::DeflateEncoder;
use flate2::Compression;

/// Gzip header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// The compressed large part, kept between requests.
#[derive(Clone)]
pub struct Head {
    deflated: Bytes,
    crc: crc32fast::Hasher,
    len: u64,
}

impl Head {
    pub fn new(data: &[u8]) -> Head {
        let mut encoder = DeflateEncoder::new(Vec::with_capacity(data.len() / 6 + 64), level());
        // Writing into a Vec cannot fail.
        let _ = encoder.write_all(data);
        // A sync flush ends the data on a byte boundary without a final block.
        let _ = encoder.flush();
        let deflated = std::mem::take(encoder.get_mut());
        let mut crc = crc32fast::Hasher::new();
        crc.update(data);
        Head {
            deflated: Bytes::from(deflated),
            crc,
            len: data.len() as u64,
        }
    }

    /// The whole gzip stream of the head's data followed by `tail`, as chunks to send in
    /// order (the head's bytes are shared, not copied).
    pub fn with_tail(&self, tail: &[u8]) -> Vec<Bytes> {
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
        vec![
            Bytes::from_static(&HEADER),
            self.deflated.clone(),
            Bytes::from(rest),
        ]
    }

    /// Compressed bytes of the head.
    pub fn len(&self) -> usize {
        self.deflated.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deflated.is_empty()
    }
}

/// The fast level: scrape bodies compress well enough, and quickly.
fn level() -> Compression {
    Compression::fast()
}

/// A complete gzip stream of `data`.
pub fn compress(data: &[u8]) -> Bytes {
    let chunks = Head::new(data).with_tail(b"");
    let mut out = Vec::with_capacity(chunks.iter().map(Bytes::len).sum());
    for chunk in chunks {
        out.extend_from_slice(&chunk);
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(chunks: &[Bytes]) -> Vec<u8> {
        let stream: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
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
        let compressed = Head::new(&head);
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
        let stream: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        let mut all = Vec::new();
        flate2::read::MultiGzDecoder::new(&stream[..])
            .read_to_end(&mut all)
            .unwrap();
        assert_eq!(all, expected);
    }

    #[test]
    fn empty_parts() {
        assert_eq!(gunzip(&Head::new(b"").with_tail(b"")), b"");
        assert_eq!(gunzip(&Head::new(b"").with_tail(b"x")), b"x");
        assert_eq!(gunzip(&[compress(b"abc")]), b"abc");
    }
}
